/*
 * auth.h - credentials (module auth/): JSON Web Tokens (HS256) for the
 * management and console APIs.
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

#endif
