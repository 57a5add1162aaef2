/*
 * fuzz_jwt.c - libFuzzer target for the token verifier (auth/jwt.c):
 * arbitrary bytes as the bearer token of a request.  Checked on every
 * input: nothing crashes or reads out of bounds (ASan/UBSan); a token is
 * accepted only if it is byte for byte what jwt_sign makes for the claims
 * it carried (so no other spelling, header or signature gets through).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[] = "fuzzing key, 32 bytes long......";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jwt_claims_t c;
	buf_t again = {0};

	if (jwt_verify((const char *)data, size, key, sizeof(key) - 1, 0, &c) != 0)
		return 0;
	if (jwt_sign(&c, key, sizeof(key) - 1, &again) != 0 || again.len != size ||
	    memcmp(again.data, data, size) != 0)
		abort();
	buf_free(&again);
	return 0;
}
