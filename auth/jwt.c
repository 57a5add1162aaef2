/*
 * jwt.c - HS256 JSON Web Tokens (include/artemis/auth.h).
 *
 * Called by the workers' authentication of management requests and by
 * login/refresh.  Base64url and HMAC-SHA-256 come from libsodium, JSON from
 * jansson.  The verifier is written for hostile input: bounded length,
 * the signature checked (constant time) before the payload is parsed, the
 * header pinned to HS256.  Must not log: tokens are credentials.
 */
#include "artemis/auth.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char jwt__header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static int jwt__b64_append(buf_t *out, const void *bin, size_t n)
{
	size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	int rc = buf_reserve(out, len);

	if (rc < 0)
		return rc;
	sodium_bin2base64(out->data + out->len, len, bin, n,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	out->len += len - 1; /* the encoder's NUL is not content */
	return 0;
}

static void jwt__mac(const uint8_t *key, size_t key_len, const char *msg, size_t n,
                     uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, key_len);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, n);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

static int jwt__payload(const jwt_claims_t *c, char **out)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "sub", c->sub, "username",
	                      c->username, "role", c->role, "sid", c->sid, "iat",
	                      (json_int_t)c->iat, "exp", (json_int_t)c->exp);

	if (o == NULL)
		return -ENOMEM;
	*out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return *out ? 0 : -ENOMEM;
}

int jwt_sign(const jwt_claims_t *c, const uint8_t *key, size_t key_len, buf_t *out)
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES];
	size_t start = out->len;
	char *payload = NULL;

	if (key_len == 0 || memchr(c->sub, 0, sizeof(c->sub)) == NULL ||
	    memchr(c->username, 0, sizeof(c->username)) == NULL ||
	    memchr(c->role, 0, sizeof(c->role)) == NULL ||
	    memchr(c->sid, 0, sizeof(c->sid)) == NULL)
		return -EINVAL;
	if (sodium_init() < 0 || jwt__payload(c, &payload) < 0)
		return -ENOMEM;
	jwt__b64_append(out, jwt__header, sizeof(jwt__header) - 1);
	buf_append(out, ".", 1);
	jwt__b64_append(out, payload, strlen(payload));
	free(payload);
	if (buf_error(out) < 0)
		return buf_error(out);
	jwt__mac(key, key_len, out->data + start, out->len - start, mac);
	buf_append(out, ".", 1);
	jwt__b64_append(out, mac, sizeof(mac));
	return buf_error(out);
}

static bool jwt__b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Decode one base64url part into dst (at most cap bytes); -EINVAL when it
 * is not strict base64url without padding or does not fit.  The alphabet is
 * checked here: libsodium's decoder maps some bytes outside it (found by
 * fuzz_jwt), which would make a token malleable. */
static int jwt__b64_decode(const char *p, size_t n, uint8_t *dst, size_t cap, size_t *len)
{
	const char *end = NULL;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!jwt__b64url_char((unsigned char)p[i]))
			return -EINVAL;
	if (sodium_base642bin(dst, cap, p, n, NULL, len, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != p + n)
		return -EINVAL;
	return 0;
}

static int jwt__str_claim(json_t *o, const char *name, char *dst, size_t cap)
{
	json_t *v = json_object_get(o, name);
	size_t n;

	if (!json_is_string(v))
		return -EINVAL;
	n = json_string_length(v);
	if (n == 0 || n >= cap || memchr(json_string_value(v), 0, n) != NULL)
		return -EINVAL;
	memcpy(dst, json_string_value(v), n + 1);
	return 0;
}

static int jwt__claims(const uint8_t *json, size_t n, jwt_claims_t *out)
{
	json_t *o = json_loadb((const char *)json, n, JSON_REJECT_DUPLICATES, NULL);
	json_t *iat, *exp;
	int rc = -EINVAL;

	if (!json_is_object(o))
		goto done;
	iat = json_object_get(o, "iat");
	exp = json_object_get(o, "exp");
	if (!json_is_integer(iat) || !json_is_integer(exp))
		goto done;
	memset(out, 0, sizeof(*out));
	if (jwt__str_claim(o, "sub", out->sub, sizeof(out->sub)) < 0 ||
	    jwt__str_claim(o, "username", out->username, sizeof(out->username)) < 0 ||
	    jwt__str_claim(o, "role", out->role, sizeof(out->role)) < 0 ||
	    jwt__str_claim(o, "sid", out->sid, sizeof(out->sid)) < 0)
		goto done;
	out->iat = json_integer_value(iat);
	out->exp = json_integer_value(exp);
	rc = 0;
done:
	json_decref(o);
	return rc;
}

int jwt_verify(const char *token, size_t len, const uint8_t *key, size_t key_len, int64_t now_s,
               jwt_claims_t *out)
{
	uint8_t mac[crypto_auth_hmacsha256_BYTES], want[crypto_auth_hmacsha256_BYTES];
	uint8_t part[JWT_MAX_TOKEN];
	const char *dot1, *dot2;
	size_t n;
	int rc;

	if (token == NULL || len == 0 || len > JWT_MAX_TOKEN || key_len == 0 || sodium_init() < 0)
		return -EINVAL;
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
		return -EINVAL;
	/* The signature first: nothing of a forged token is parsed. */
	if (jwt__b64_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), mac, sizeof(mac), &n) < 0 ||
	    n != sizeof(mac))
		return -EINVAL;
	jwt__mac(key, key_len, token, (size_t)(dot2 - token), want);
	if (sodium_memcmp(mac, want, sizeof(mac)) != 0)
		return -EACCES;
	if (jwt__b64_decode(token, (size_t)(dot1 - token), part, sizeof(part), &n) < 0 ||
	    n != sizeof(jwt__header) - 1 || memcmp(part, jwt__header, n) != 0)
		return -EINVAL; /* only our own header: alg pinned to HS256 */
	if (jwt__b64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), part, sizeof(part), &n) < 0)
		return -EINVAL;
	if ((rc = jwt__claims(part, n, out)) < 0)
		return rc;
	return now_s >= out->exp ? -ETIME : 0;
}
