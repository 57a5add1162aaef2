/*
 * auth.c - the handshake proof of the shared [cluster] key and the session
 * keys that protect every frame after it (libsodium).
 *
 * Each side of a connection sends a fresh random nonce in its HELLO.  The
 * transcript is a hash of both HELLO payloads (the connector's first); each
 * side then proves it holds the key with crypto_auth (HMAC-SHA-512-256)
 * over its role and the transcript.  Neither the key nor anything derived
 * from it without the nonces crosses the wire; a proof made for one
 * connection, role or pair of HELLOs is worthless for any other, and
 * nothing a HELLO says (name, incarnation, node state, flags) can be
 * altered on the way without the proofs failing.
 *
 * The session keys (one per direction) are derived from the key and the
 * transcript: a keyed BLAKE2b gives the connection's master key, and
 * crypto_kdf derives the connector-to-acceptor (1) and acceptor-to-
 * connector (2) keys from it.  seal.c uses them.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define AUTH_LABEL   "artemis-repl-2"
#define AUTH_KDF_CTX "artrepl2"
#define AUTH_KDF_C2A 1
#define AUTH_KDF_A2C 2

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

void repl_hello_hash(const void *payload, size_t len, uint8_t out[REPL_HASH_BYTES])
{
	crypto_generichash(out, REPL_HASH_BYTES, payload, len, NULL, 0);
}

void repl_transcript(const uint8_t connector_hello[REPL_HASH_BYTES],
                     const uint8_t acceptor_hello[REPL_HASH_BYTES], uint8_t th[REPL_HASH_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, REPL_HASH_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)AUTH_LABEL " transcript",
	                          sizeof(AUTH_LABEL " transcript"));
	crypto_generichash_update(&st, connector_hello, REPL_HASH_BYTES);
	crypto_generichash_update(&st, acceptor_hello, REPL_HASH_BYTES);
	crypto_generichash_final(&st, th, REPL_HASH_BYTES);
}

static size_t auth__msg(uint8_t *msg, bool connector, const uint8_t th[REPL_HASH_BYTES])
{
	size_t n = sizeof(AUTH_LABEL) - 1;

	memcpy(msg, AUTH_LABEL, n);
	msg[n++] = connector ? 'C' : 'A';
	memcpy(msg + n, th, REPL_HASH_BYTES);
	return n + REPL_HASH_BYTES;
}

void repl_auth_proof(const uint8_t key[REPL_KEY_BYTES], bool connector,
                     const uint8_t th[REPL_HASH_BYTES], uint8_t mac[REPL_MAC_BYTES])
{
	uint8_t msg[sizeof(AUTH_LABEL) + REPL_HASH_BYTES];
	size_t n = auth__msg(msg, connector, th);

	crypto_auth(mac, msg, n, key);
}

int repl_auth_verify(const uint8_t key[REPL_KEY_BYTES], bool peer_is_connector,
                     const uint8_t th[REPL_HASH_BYTES], const uint8_t *mac, size_t mac_len)
{
	uint8_t msg[sizeof(AUTH_LABEL) + REPL_HASH_BYTES];

	if (mac_len != REPL_MAC_BYTES)
		return -EACCES;
	size_t n = auth__msg(msg, peer_is_connector, th);
	return crypto_auth_verify(mac, msg, n, key) == 0 ? 0 : -EACCES;
}

void repl_session_keys(const uint8_t key[REPL_KEY_BYTES], const uint8_t th[REPL_HASH_BYTES],
                       bool connector, bool encrypt, repl_seal_t *tx, repl_seal_t *rx)
{
	uint8_t master[crypto_kdf_KEYBYTES];
	uint8_t in[sizeof(AUTH_LABEL " session") + REPL_HASH_BYTES];

	memcpy(in, AUTH_LABEL " session", sizeof(AUTH_LABEL " session"));
	memcpy(in + sizeof(AUTH_LABEL " session"), th, REPL_HASH_BYTES);
	crypto_generichash(master, sizeof(master), in, sizeof(in), key, REPL_KEY_BYTES);
	memset(tx, 0, sizeof(*tx));
	memset(rx, 0, sizeof(*rx));
	crypto_kdf_derive_from_key(tx->key, REPL_KEY_BYTES, connector ? AUTH_KDF_C2A : AUTH_KDF_A2C,
	                           AUTH_KDF_CTX, master);
	crypto_kdf_derive_from_key(rx->key, REPL_KEY_BYTES, connector ? AUTH_KDF_A2C : AUTH_KDF_C2A,
	                           AUTH_KDF_CTX, master);
	tx->encrypt = rx->encrypt = encrypt;
	sodium_memzero(master, sizeof(master));
}
