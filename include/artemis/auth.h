/*
 * auth.h - credentials (module auth/): JSON Web Tokens (HS256) for the
 * management and console APIs (auth/jwt.c), and passwords (auth/password.c).
 *
 * A token is header.payload.signature, each part base64url without padding
 * (RFC 7519).  The header must be exactly HS256 (`alg` other than "HS256",
 * including "none", is refused: no algorithm confusion); the signature is
 * HMAC-SHA-256 over "header.payload" with the node's secret, compared in
 * constant time.  Claims: sub (the user id, a string), username, role, sid
 * (the session), iat and exp (epoch seconds).
 *
 * Nothing here logs: a token is a secret.
 */
#ifndef ARTEMIS_AUTH_H
#define ARTEMIS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/buf.h"

#define JWT_MAX_TOKEN 4096 /* longer input is refused unread */

typedef struct {
	char sub[32];
	char username[128];
	char role[16];
	char sid[64];
	int64_t iat; /* epoch seconds */
	int64_t exp;
} jwt_claims_t;

/* Append the signed token for c to out.  0, -EINVAL (a claim does not fit
 * the limits above or key_len is 0), or the buffer's error. */
int jwt_sign(const jwt_claims_t *c, const uint8_t *key, size_t key_len, buf_t *out);

/* Check a token and fill *out.  0; -EINVAL malformed (not three base64url
 * parts of JSON objects, wrong alg/typ, a claim missing, mistyped or too
 * long); -EACCES bad signature; -ETIME expired (now_s >= exp).  The
 * signature is checked before anything of the payload is trusted. */
int jwt_verify(const char *token, size_t len, const uint8_t *key, size_t key_len, int64_t now_s,
               jwt_claims_t *out);

/* ---- Passwords (auth/password.c) -------------------------------------------------------
 *
 * Argon2id through libsodium's crypto_pwhash_str: the stored form carries
 * its salt and cost ("$argon2id$v=19$m=...,t=...,p=1$..."), verification is
 * constant-time, and a hash made with another cost than the configured one
 * is made again at the next successful login (auth_password_needs_rehash).
 * The cost is [auth] password_memlimit_kib and password_opslimit.
 */

#define AUTH_HASH_MAX 128 /* crypto_pwhash_STRBYTES, with its NUL */

typedef struct {
	uint64_t opslimit;
	size_t memlimit; /* bytes */
} auth_cost_t;

/* 0 and the hash in out; -EINVAL (cost out of libsodium's range), -ENOMEM. */
int auth_password_hash(const char *pw, size_t len, const auth_cost_t *cost,
                       char out[AUTH_HASH_MAX]);
/* 0 when pw matches hash; -EACCES when it does not; -EINVAL when hash is
 * not an Argon2id string. */
int auth_password_verify(const char *hash, const char *pw, size_t len);
bool auth_password_needs_rehash(const char *hash, const auth_cost_t *cost);
/* The work of a failed verification, for a user that does not exist: a
 * check against a hash of a random password made once per process with
 * this cost (no user enumeration through timing). */
void auth_password_dummy(const char *pw, size_t len, const auth_cost_t *cost);

/* Random text from the kernel's CSPRNG: `nbytes` bytes as lowercase hex
 * (out holds 2 * nbytes + 1), or a password of len - 1 characters of
 * [A-Za-z0-9] (about 5.95 bits each).  0 or -EINVAL (no room). */
int auth_random_hex(char *out, size_t out_len, size_t nbytes);
int auth_random_password(char *out, size_t len);

#endif
