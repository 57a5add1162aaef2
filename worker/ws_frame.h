/*
 * ws_frame.h - worker-internal: the RFC 6455 frame codec (ws_frame.c).
 *
 * Pure byte handling, no sockets and no events: the session layer (ws.c)
 * feeds it what it reads, the unit tests and the fuzzer (tests/fuzz/
 * fuzz_ws.c) feed it anything.  The parser enforces the rules of a server
 * endpoint: client frames must be masked, no extensions (RSV bits clear),
 * control frames are unfragmented and at most 125 bytes, continuation
 * frames only inside a fragmented message, a message no larger than
 * max_message, text messages valid UTF-8, binary messages refused.  A
 * violation stops the parser with the close code to send.
 */
#ifndef ARTEMIS_WORKER_WS_FRAME_H
#define ARTEMIS_WORKER_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/shm.h"

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes used here (RFC 6455 §7.4.1). */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNACCEPTABLE = 1003, /* binary frames: Spring's "not acceptable" */
	WS_CLOSE_NO_STATUS = 1005,    /* never sent: a close frame without a code */
	WS_CLOSE_BAD_DATA = 1007,     /* text that is not UTF-8 */
	WS_CLOSE_POLICY = 1008,       /* slow consumer */
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
};

/* Largest frame header a server writes: 2 + 8 (no mask). */
#define WS_FRAME_HDR_MAX 10
#define WS_CONTROL_MAX   125

/* What the parser hands up.  Return 0 to go on; anything else stops
 * ws_parser_feed at once (the session was closed) and is returned. */
typedef struct {
	/* A complete, validated text message; data is NUL-terminated (the
	 * terminator is not counted in len) and valid during the call. */
	int (*on_text)(void *ctx, char *data, size_t len);
	/* ping, pong or close with its payload (close: already validated). */
	int (*on_control)(void *ctx, enum ws_opcode op, const uint8_t *data, size_t len);
} ws_parser_cb_t;

typedef struct {
	uint32_t max_message; /* bytes of one (reassembled) message */
	uint32_t error;       /* close code once the parser failed, else 0 */
	/* The frame being read. */
	uint8_t hdr[14];
	uint8_t hdr_len;
	uint8_t hdr_need; /* bytes of the header once its length is known */
	uint8_t opcode;
	bool fin;
	uint8_t mask[4];
	uint64_t remaining; /* payload bytes of this frame still to come */
	uint64_t frame_pos; /* payload bytes of this frame seen (mask index) */
	/* The message being reassembled (data frames). */
	bool in_message; /* a text message was started and not finished */
	buf_t msg;
	/* The control frame being read (may arrive between fragments). */
	uint8_t ctl[WS_CONTROL_MAX];
	uint8_t ctl_len;
} ws_parser_t;

void ws_parser_init(ws_parser_t *p, uint32_t max_message);
/* Free the message buffer (the parser stays usable). */
void ws_parser_release(ws_parser_t *p);

/* Parse bytes (the parser unmasks them in place, hence non-const).
 * Returns 0 when all was consumed, a positive close code when the input
 * broke a rule (p->error keeps it; further input is ignored), or what a
 * callback returned to stop. */
int ws_parser_feed(ws_parser_t *p, uint8_t *data, size_t len, const ws_parser_cb_t *cb, void *ctx);

/* Write an unmasked server frame header for a payload of len bytes;
 * returns the header length (2..10). */
size_t ws_frame_header(uint8_t *hdr, enum ws_opcode op, uint64_t len);

/* Build a close payload: code (network order) and a reason. */
size_t ws_close_payload(uint8_t *out, uint16_t code, const char *reason);

/* True when [s, s+len) is well-formed UTF-8 (no overlongs, surrogates or
 * code points above U+10FFFF). */
bool ws_utf8_valid(const uint8_t *s, size_t len);

#endif
