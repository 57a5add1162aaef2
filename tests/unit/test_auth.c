/*
 * test_auth.c - auth/jwt.c: tokens round-trip; a token signed with another
 * key, tampered in any byte, with alg "none" or another header, expired,
 * truncated, padded, with a claim missing or mistyped, or over-long is
 * refused with the documented error.  auth/password.c: Argon2id hashes
 * verify, salt, refuse a wrong password or a foreign hash, are made again
 * when the cost changes; random passwords and hex.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "artemis/auth.h"

static const uint8_t key[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN (sizeof(key) - 1)

static jwt_claims_t claims(void)
{
	jwt_claims_t c;

	memset(&c, 0, sizeof(c));
	snprintf(c.sub, sizeof(c.sub), "42");
	snprintf(c.username, sizeof(c.username), "alice");
	snprintf(c.role, sizeof(c.role), "operator");
	snprintf(c.sid, sizeof(c.sid), "s-0001");
	c.iat = 1700000000;
	c.exp = 1700003600;
	return c;
}

static void sign(const jwt_claims_t *c, buf_t *out)
{
	buf_reset(out);
	assert_int_equal(jwt_sign(c, key, KEYLEN, out), 0);
}

/* Build a token from raw header and payload JSON, signed with key. */
static void forge(const char *header, const char *payload, const uint8_t *k, size_t klen,
                  buf_t *out)
{
	char part[1024];
	uint8_t mac[crypto_auth_hmacsha256_BYTES];

	buf_reset(out);
	sodium_bin2base64(part, sizeof(part), (const uint8_t *)header, strlen(header),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_puts(out, part);
	buf_puts(out, ".");
	sodium_bin2base64(part, sizeof(part), (const uint8_t *)payload, strlen(payload),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_puts(out, part);
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, k, klen);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)out->data, out->len);
	crypto_auth_hmacsha256_final(&st, mac);
	buf_puts(out, ".");
	sodium_bin2base64(part, sizeof(part), mac, sizeof(mac),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_puts(out, part);
	assert_int_equal(buf_error(out), 0);
}

static void test_round_trip(void **state)
{
	(void)state;
	jwt_claims_t c = claims(), got;
	buf_t t = {0};

	sign(&c, &t);
	assert_null(strchr(t.data, '='));
	assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, c.iat + 10, &got), 0);
	assert_string_equal(got.sub, "42");
	assert_string_equal(got.username, "alice");
	assert_string_equal(got.role, "operator");
	assert_string_equal(got.sid, "s-0001");
	assert_int_equal(got.iat, c.iat);
	assert_int_equal(got.exp, c.exp);
	/* Expiry: the last second before exp is valid, exp itself is not. */
	assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, c.exp - 1, &got), 0);
	assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, c.exp, &got), -ETIME);
	buf_free(&t);
}

static void test_wrong_key_and_tampering(void **state)
{
	(void)state;
	jwt_claims_t c = claims(), got;
	buf_t t = {0};
	static const uint8_t other[] = "another key of the same length!!";

	sign(&c, &t);
	assert_int_equal(jwt_verify(t.data, t.len, other, sizeof(other) - 1, c.iat, &got), -EACCES);
	/* Every single-byte change is refused (never accepted). */
	for (size_t i = 0; i < t.len; i++) {
		char saved = t.data[i];
		for (int d = 1; d < 128; d += 37) {
			t.data[i] = (char)((saved + d) & 0x7f);
			if (t.data[i] == saved)
				continue;
			assert_int_not_equal(jwt_verify(t.data, t.len, key, KEYLEN, c.iat, &got),
			                     0);
		}
		t.data[i] = saved;
	}
	/* Bytes outside base64url that a lenient decoder would map to the same
	 * bits (libsodium maps some high bytes: found by fuzz_jwt). */
	for (size_t i = 0; i < t.len; i++) {
		char saved = t.data[i];
		for (int b = 0x80; b < 0x100; b++) {
			t.data[i] = (char)b;
			assert_int_not_equal(jwt_verify(t.data, t.len, key, KEYLEN, c.iat, &got),
			                     0);
		}
		t.data[i] = saved;
	}
	/* Truncated anywhere, or with something appended. */
	for (size_t n = 0; n < t.len; n++)
		assert_int_not_equal(jwt_verify(t.data, n, key, KEYLEN, c.iat, &got), 0);
	buf_puts(&t, "=");
	assert_int_not_equal(jwt_verify(t.data, t.len, key, KEYLEN, c.iat, &got), 0);
	buf_free(&t);
}

static void test_headers_and_claims(void **state)
{
	(void)state;
	jwt_claims_t got;
	buf_t t = {0};
	const char *good = "{\"exp\":2000000000,\"iat\":1,\"role\":\"admin\",\"sid\":\"s\","
	                   "\"sub\":\"1\",\"username\":\"root\"}";

	/* A correctly signed token with our exact header passes... */
	forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", good, key, KEYLEN, &t);
	assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, 5, &got), 0);
	assert_string_equal(got.role, "admin");
	/* ...any other header does not, even signed with the key. */
	forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", good, key, KEYLEN, &t);
	assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, 5, &got), -EINVAL);
	forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", good, key, KEYLEN, &t);
	assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, 5, &got), -EINVAL);
	/* alg none with an empty signature. */
	assert_int_not_equal(jwt_verify("eyJhbGciOiJub25lIn0.e30.", 24, key, KEYLEN, 5, &got), 0);
	/* Claims missing, mistyped, duplicated or too long. */
	const char *bad[] = {
	    "{\"exp\":2000000000,\"iat\":1,\"role\":\"admin\",\"sid\":\"s\",\"sub\":\"1\"}",
	    "{\"exp\":\"2000000000\",\"iat\":1,\"role\":\"admin\",\"sid\":\"s\",\"sub\":\"1\","
	    "\"username\":\"root\"}",
	    "{\"exp\":2000000000,\"iat\":1,\"role\":\"admin\",\"sid\":\"s\",\"sub\":1,"
	    "\"username\":\"root\"}",
	    "{\"exp\":2000000000,\"iat\":1,\"role\":\"admin\",\"role\":\"viewer\",\"sid\":\"s\","
	    "\"sub\":\"1\",\"username\":\"root\"}",
	    "{\"exp\":2000000000,\"iat\":1,\"role\":\"administrator-of-all\",\"sid\":\"s\","
	    "\"sub\":\"1\",\"username\":\"root\"}",
	    "[1,2,3]",
	    "not json",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", bad[i], key, KEYLEN, &t);
		assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, 5, &got), -EINVAL);
	}
	/* Over-long input is refused unread. */
	char big[JWT_MAX_TOKEN + 2];
	memset(big, 'a', sizeof(big));
	assert_int_equal(jwt_verify(big, sizeof(big), key, KEYLEN, 5, &got), -EINVAL);
	assert_int_equal(jwt_verify(NULL, 3, key, KEYLEN, 5, &got), -EINVAL);
	buf_free(&t);
}

static void test_sign_limits(void **state)
{
	(void)state;
	jwt_claims_t c = claims();
	buf_t t = {0};

	memset(c.username, 'x', sizeof(c.username)); /* not terminated */
	assert_int_equal(jwt_sign(&c, key, KEYLEN, &t), -EINVAL);
	c = claims();
	assert_int_equal(jwt_sign(&c, key, 0, &t), -EINVAL);
	/* A quote in a claim is escaped, not injected. */
	snprintf(c.username, sizeof(c.username), "a\",\"role\":\"admin");
	jwt_claims_t got;
	sign(&c, &t);
	assert_int_equal(jwt_verify(t.data, t.len, key, KEYLEN, c.iat, &got), 0);
	assert_string_equal(got.role, "operator");
	assert_string_equal(got.username, "a\",\"role\":\"admin");
	buf_free(&t);
}

static const auth_cost_t cheap = {1, 8192 * 1024};

static void test_passwords(void **state)
{
	char h1[AUTH_HASH_MAX], h2[AUTH_HASH_MAX];
	(void)state;
	assert_int_equal(auth_password_hash("correct horse", 13, &cheap, h1), 0);
	assert_int_equal(auth_password_hash("correct horse", 13, &cheap, h2), 0);
	assert_non_null(strstr(h1, "$argon2id$"));
	assert_string_not_equal(h1, h2); /* salted */
	assert_int_equal(auth_password_verify(h1, "correct horse", 13), 0);
	assert_int_equal(auth_password_verify(h2, "correct horse", 13), 0);
	assert_int_equal(auth_password_verify(h1, "correct horsE", 13), -EACCES);
	assert_int_equal(auth_password_verify(h1, "correct hors", 12), -EACCES);
	assert_int_equal(auth_password_verify("$2y$10$bcrypt", "x", 1), -EINVAL);
	assert_int_equal(auth_password_verify("", "x", 1), -EINVAL);
	/* The cost is in the hash: another one asks for a new hash. */
	auth_cost_t more = {2, 8192 * 1024};
	assert_false(auth_password_needs_rehash(h1, &cheap));
	assert_true(auth_password_needs_rehash(h1, &more));
	auth_cost_t bad = {0, 1};
	assert_int_equal(auth_password_hash("x", 1, &bad, h2), -EINVAL);
	auth_password_dummy("anything", 8, &cheap); /* costs a check, answers nothing */
}

static void test_random(void **state)
{
	char a[33], b[33], pw[21];
	(void)state;
	assert_int_equal(auth_random_hex(a, sizeof(a), 16), 0);
	assert_int_equal(auth_random_hex(b, sizeof(b), 16), 0);
	assert_int_equal(strlen(a), 32);
	assert_int_equal(strspn(a, "0123456789abcdef"), 32);
	assert_string_not_equal(a, b);
	assert_int_equal(auth_random_hex(a, 32, 16), -EINVAL); /* no room for the NUL */
	assert_int_equal(auth_random_password(pw, sizeof(pw)), 0);
	assert_int_equal(strlen(pw), 20);
	for (size_t i = 0; i < 20; i++)
		assert_true((pw[i] >= 'a' && pw[i] <= 'z') || (pw[i] >= 'A' && pw[i] <= 'Z') ||
		            (pw[i] >= '0' && pw[i] <= '9'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_wrong_key_and_tampering),
	    cmocka_unit_test(test_headers_and_claims),
	    cmocka_unit_test(test_sign_limits),
	    cmocka_unit_test(test_passwords),
	    cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
