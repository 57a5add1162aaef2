/*
 * password.c - password hashing and random secrets (include/artemis/auth.h).
 *
 * Called by the workers' login, password and user handlers and by the
 * master's creation of the first admin.  Argon2id comes from libsodium
 * (crypto_pwhash_str*), randomness from its randombytes (getrandom(2)).
 * Must not log: everything here is a secret or derived from one.
 */
#include "artemis/auth.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

static int password__cost_ok(const auth_cost_t *cost)
{
	return cost->opslimit >= crypto_pwhash_OPSLIMIT_MIN &&
	       cost->opslimit <= crypto_pwhash_OPSLIMIT_MAX &&
	       cost->memlimit >= crypto_pwhash_MEMLIMIT_MIN &&
	       cost->memlimit <= crypto_pwhash_MEMLIMIT_MAX;
}

int auth_password_hash(const char *pw, size_t len, const auth_cost_t *cost, char out[AUTH_HASH_MAX])
{
	_Static_assert(AUTH_HASH_MAX >= crypto_pwhash_STRBYTES, "room for a hash");
	if (sodium_init() < 0)
		return -ENOMEM;
	if (!password__cost_ok(cost))
		return -EINVAL;
	if (crypto_pwhash_str(out, pw, len, cost->opslimit, cost->memlimit) != 0)
		return -ENOMEM; /* libsodium fails only when it cannot get the memory */
	return 0;
}

int auth_password_verify(const char *hash, const char *pw, size_t len)
{
	if (sodium_init() < 0)
		return -ENOMEM;
	if (strncmp(hash, crypto_pwhash_argon2id_STRPREFIX,
	            sizeof(crypto_pwhash_argon2id_STRPREFIX) - 1) != 0)
		return -EINVAL;
	return crypto_pwhash_str_verify(hash, pw, len) == 0 ? 0 : -EACCES;
}

bool auth_password_needs_rehash(const char *hash, const auth_cost_t *cost)
{
	if (sodium_init() < 0 || !password__cost_ok(cost))
		return false;
	return crypto_pwhash_str_needs_rehash(hash, cost->opslimit, cost->memlimit) != 0;
}

void auth_password_dummy(const char *pw, size_t len, const auth_cost_t *cost)
{
	static char dummy[AUTH_HASH_MAX];
	static auth_cost_t made;
	char random[32];

	if (dummy[0] == '\0' || made.opslimit != cost->opslimit ||
	    made.memlimit != cost->memlimit) {
		if (auth_random_password(random, sizeof(random)) < 0 ||
		    auth_password_hash(random, strlen(random), cost, dummy) < 0) {
			dummy[0] = '\0';
			return;
		}
		made = *cost;
	}
	(void)auth_password_verify(dummy, pw, len);
}

int auth_random_hex(char *out, size_t out_len, size_t nbytes)
{
	unsigned char raw[64];

	if (nbytes == 0 || nbytes > sizeof(raw) || out_len < nbytes * 2 + 1 || sodium_init() < 0)
		return -EINVAL;
	randombytes_buf(raw, nbytes);
	sodium_bin2hex(out, out_len, raw, nbytes);
	sodium_memzero(raw, sizeof(raw));
	return 0;
}

int auth_random_password(char *out, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

	if (len < 2 || sodium_init() < 0)
		return -EINVAL;
	for (size_t i = 0; i + 1 < len; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[len - 1] = '\0';
	return 0;
}
