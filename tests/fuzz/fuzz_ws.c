/*
 * fuzz_ws.c - libFuzzer target for the WebSocket frame parser
 * (worker/ws_frame.c): arbitrary bytes as what a client sends after the
 * handshake.  The first byte picks the message size limit and how the rest
 * is cut into reads.  Checked on every input:
 *   - nothing crashes, leaks or reads out of bounds (ASan/UBSan);
 *   - every text message handed up is valid UTF-8, NUL-terminated and
 *     within the limit; every control payload is at most 125 bytes;
 *   - the events (messages, controls, final error) are the same whether
 *     the input arrives in one read, byte by byte, or in the chosen cuts:
 *     the parser's state machine must not depend on read boundaries.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../../worker/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
	uint32_t max;
	XXH64_state_t *h;
	unsigned events;
} run_t;

static int on_text(void *ctx, char *msg, size_t len)
{
	run_t *r = ctx;
	uint8_t tag = 'T';

	if (len > r->max || msg[len] != '\0' || !ws_utf8_valid((const uint8_t *)msg, len))
		abort();
	XXH64_update(r->h, &tag, 1);
	XXH64_update(r->h, &len, sizeof(len));
	XXH64_update(r->h, msg, len);
	r->events++;
	return 0;
}

static int on_control(void *ctx, enum ws_opcode op, const uint8_t *p, size_t len)
{
	run_t *r = ctx;
	uint8_t tag = (uint8_t)op;

	if (len > WS_CONTROL_MAX)
		abort();
	XXH64_update(r->h, &tag, 1);
	XXH64_update(r->h, &len, sizeof(len));
	XXH64_update(r->h, p, len);
	r->events++;
	/* The session stops reading after a close, as ws.c does. */
	return op == WS_OP_CLOSE ? -1 : 0;
}

static const ws_parser_cb_t cb = {on_text, on_control};

/* Feed in pieces of `cut` bytes (0: all at once); hash of the events. */
static uint64_t run(const uint8_t *data, size_t size, uint32_t max, size_t cut)
{
	ws_parser_t p;
	run_t r = {max, XXH64_createState(), 0};
	uint8_t *copy = malloc(size ? size : 1);
	size_t off = 0;
	int rc = 0;
	uint64_t h;

	if (copy == NULL || r.h == NULL)
		abort();
	memcpy(copy, data, size);
	XXH64_reset(r.h, 0);
	ws_parser_init(&p, max);
	while (off < size && rc == 0) {
		size_t n = cut == 0 || size - off < cut ? size - off : cut;
		rc = ws_parser_feed(&p, copy + off, n, &cb, &r);
		off += n;
	}
	if (rc > 0 && (uint32_t)rc != p.error)
		abort();
	XXH64_update(r.h, &rc, sizeof(rc));
	h = XXH64_digest(r.h);
	ws_parser_release(&p);
	XXH64_freeState(r.h);
	free(copy);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t max;
	size_t cut;
	uint64_t whole;

	if (size < 1)
		return 0;
	max = 125u + ((uint32_t)(data[0] & 0x0F) << 8); /* 125 .. 3965 */
	cut = (size_t)(data[0] >> 4) + 1;
	data++;
	size--;
	whole = run(data, size, max, 0);
	if (run(data, size, max, 1) != whole || run(data, size, max, cut) != whole)
		abort();
	return 0;
}
