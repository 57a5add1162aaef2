/*
 * auth.c - the handshake proof of the shared [cluster] key (libsodium).
 *
 * Each side of a connection sends a fresh random nonce in its HELLO and
 * then proves it holds the key with crypto_auth (HMAC-SHA-512-256) over a
 * message binding the role (connector or acceptor), both nonces and both
 * node names.  Neither the key nor anything derived from it without a
 * nonce crosses the wire; a proof made for one connection, role or pair of
 * names is worthless for any other.  The key authenticates peers; it does
 * not encrypt the stream (run replication on a private network).
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define AUTH_LABEL   "artemis-repl-1"
#define AUTH_MSG_MAX (sizeof(AUTH_LABEL) + 1 + 2 * REPL_NONCE_BYTES + 2 * 64 + 2)

void repl_auth_key(const char *cluster_key, uint8_t key[REPL_KEY_BYTES])
{
	crypto_generichash_state st;

	if (sodium_init() < 0)
		abort(); /* no usable randomness: nothing here can be safe */
	crypto_generichash_init(&st, NULL, 0, REPL_KEY_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)AUTH_LABEL, sizeof(AUTH_LABEL));
	crypto_generichash_update(&st, (const unsigned char *)cluster_key, strlen(cluster_key));
	crypto_generichash_final(&st, key, REPL_KEY_BYTES);
}

void repl_auth_nonce(uint8_t nonce[REPL_NONCE_BYTES])
{
	randombytes_buf(nonce, REPL_NONCE_BYTES);
}

static size_t auth__msg(uint8_t *msg, bool connector, const uint8_t *prover_nonce,
                        const uint8_t *verifier_nonce, const char *prover, const char *verifier)
{
	size_t n = 0, pl = strnlen(prover, 63), vl = strnlen(verifier, 63);

	memcpy(msg + n, AUTH_LABEL, sizeof(AUTH_LABEL) - 1);
	n += sizeof(AUTH_LABEL) - 1;
	msg[n++] = connector ? 'C' : 'A';
	memcpy(msg + n, verifier_nonce, REPL_NONCE_BYTES); /* the challenge */
	n += REPL_NONCE_BYTES;
	memcpy(msg + n, prover_nonce, REPL_NONCE_BYTES);
	n += REPL_NONCE_BYTES;
	memcpy(msg + n, prover, pl);
	n += pl;
	msg[n++] = '\0';
	memcpy(msg + n, verifier, vl);
	n += vl;
	msg[n++] = '\0';
	return n;
}

void repl_auth_proof(const uint8_t key[REPL_KEY_BYTES], bool connector,
                     const uint8_t own_nonce[REPL_NONCE_BYTES],
                     const uint8_t peer_nonce[REPL_NONCE_BYTES], const char *own_name,
                     const char *peer_name, uint8_t mac[REPL_MAC_BYTES])
{
	uint8_t msg[AUTH_MSG_MAX];
	size_t n = auth__msg(msg, connector, own_nonce, peer_nonce, own_name, peer_name);

	crypto_auth(mac, msg, n, key);
}

int repl_auth_verify(const uint8_t key[REPL_KEY_BYTES], bool peer_is_connector,
                     const uint8_t peer_nonce[REPL_NONCE_BYTES],
                     const uint8_t own_nonce[REPL_NONCE_BYTES], const char *peer_name,
                     const char *own_name, const uint8_t *mac, size_t mac_len)
{
	uint8_t msg[AUTH_MSG_MAX];

	if (mac_len != REPL_MAC_BYTES)
		return -EACCES;
	size_t n = auth__msg(msg, peer_is_connector, peer_nonce, own_nonce, peer_name, own_name);
	return crypto_auth_verify(mac, msg, n, key) == 0 ? 0 : -EACCES;
}
