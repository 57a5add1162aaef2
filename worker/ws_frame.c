/*
 * ws_frame.c - the RFC 6455 frame codec of the worker's WebSocket server.
 *
 * Called by the session layer (ws.c) with the bytes read from a socket,
 * by tests/unit/test_ws.c and by the fuzzer.  It keeps per-connection state
 * small (a 14-byte header, a 125-byte control payload, and a message
 * buffer that exists only while a message is being received) and never
 * allocates more than max_message bytes for a message: the size is checked
 * against each frame header before any payload is buffered.
 *
 * Why not wslay: its event context alone costs about 8.8 KiB per session
 * (measured with mallinfo2 over 100 wslay_event_context_server_init calls),
 * more than the whole per-session budget of an idle subscriber, and it
 * frames every queued message per session, where push encodes a change
 * once and writes the same bytes to every subscriber.  This parser is
 * about 250 lines and fuzzed (tests/fuzz/fuzz_ws.c).
 *
 * Must not: touch sockets, log, or keep pointers into the caller's input
 * after returning.
 */
#include "ws_frame.h"

#include <errno.h>
#include <string.h>

void ws_parser_init(ws_parser_t *p, uint32_t max_message)
{
	memset(p, 0, sizeof(*p));
	p->max_message = max_message;
	p->hdr_need = 2;
}

void ws_parser_release(ws_parser_t *p)
{
	buf_free(&p->msg);
}

/* ---- UTF-8 ------------------------------------------------------------- */

bool ws_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false; /* continuation byte, overlong lead or > U+10FFFF */
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
			return false;
		i += n + 1;
	}
	return true;
}

/* ---- Encoding ------------------------------------------------------------ */

size_t ws_frame_header(uint8_t *hdr, enum ws_opcode op, uint64_t len)
{
	hdr[0] = (uint8_t)(0x80 | (unsigned)op);
	if (len < 126) {
		hdr[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xFFFF) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

size_t ws_close_payload(uint8_t *out, uint16_t code, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;

	if (n > WS_CONTROL_MAX - 2)
		n = WS_CONTROL_MAX - 2;
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	/* a payload, not a string: NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
	memcpy(out + 2, reason ? reason : "", n);
	return 2 + n;
}

/* ---- Parsing -------------------------------------------------------------- */

static int ws__fail(ws_parser_t *p, uint32_t code)
{
	p->error = code;
	return (int)code;
}

static bool ws__is_control(uint8_t op)
{
	return (op & 0x8) != 0;
}

/* RFC 6455 §7.4: codes an endpoint may send. */
static bool ws__close_code_ok(uint16_t code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

/* The first two header bytes: everything that can be refused early. */
static int ws__check_start(ws_parser_t *p)
{
	uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
	uint8_t op = b0 & 0x0F, len7 = b1 & 0x7F;

	p->fin = (b0 & 0x80) != 0;
	p->opcode = op;
	if (b0 & 0x70)
		return ws__fail(p, WS_CLOSE_PROTOCOL); /* no extension was negotiated */
	if (!(b1 & 0x80))
		return ws__fail(p, WS_CLOSE_PROTOCOL); /* client frames must be masked */
	switch (op) {
	case WS_OP_CONT:
		if (!p->in_message)
			return ws__fail(p, WS_CLOSE_PROTOCOL);
		break;
	case WS_OP_TEXT:
		if (p->in_message)
			return ws__fail(p, WS_CLOSE_PROTOCOL);
		break;
	case WS_OP_BINARY:
		return ws__fail(p, WS_CLOSE_UNACCEPTABLE);
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		if (!p->fin || len7 > WS_CONTROL_MAX)
			return ws__fail(p, WS_CLOSE_PROTOCOL);
		break;
	default:
		return ws__fail(p, WS_CLOSE_PROTOCOL);
	}
	p->hdr_need = (uint8_t)(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
	return 0;
}

/* The whole header is in: payload length, size limit, mask. */
static int ws__header_done(ws_parser_t *p)
{
	uint8_t len7 = p->hdr[1] & 0x7F;
	uint64_t len = len7;
	size_t off = 2;

	if (len7 == 126) {
		len = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
		off = 4;
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | p->hdr[2 + i];
		if (len >> 63)
			return ws__fail(p, WS_CLOSE_PROTOCOL);
		off = 10;
	}
	memcpy(p->mask, p->hdr + off, 4);
	p->remaining = len;
	p->frame_pos = 0;
	if (ws__is_control(p->opcode)) {
		p->ctl_len = 0;
		return 0;
	}
	if (p->opcode == WS_OP_TEXT)
		p->msg.len = 0;
	if (len > p->max_message || p->msg.len + len > p->max_message)
		return ws__fail(p, WS_CLOSE_TOO_BIG);
	p->in_message = true;
	if (buf_reserve(&p->msg, (size_t)len) != 0)
		return ws__fail(p, WS_CLOSE_INTERNAL);
	return 0;
}

static int ws__control_done(ws_parser_t *p, const ws_parser_cb_t *cb, void *ctx)
{
	if (p->opcode == WS_OP_CLOSE && p->ctl_len > 0) {
		uint16_t code;

		if (p->ctl_len == 1)
			return ws__fail(p, WS_CLOSE_PROTOCOL);
		code = (uint16_t)((p->ctl[0] << 8) | p->ctl[1]);
		if (!ws__close_code_ok(code))
			return ws__fail(p, WS_CLOSE_PROTOCOL);
		if (!ws_utf8_valid(p->ctl + 2, p->ctl_len - 2u))
			return ws__fail(p, WS_CLOSE_BAD_DATA);
	}
	return cb->on_control(ctx, (enum ws_opcode)p->opcode, p->ctl, p->ctl_len);
}

static int ws__data_done(ws_parser_t *p, const ws_parser_cb_t *cb, void *ctx)
{
	int rc;

	if (!p->fin)
		return 0;
	p->in_message = false;
	if (!ws_utf8_valid((const uint8_t *)p->msg.data, p->msg.len))
		return ws__fail(p, WS_CLOSE_BAD_DATA);
	if (p->msg.data == NULL && buf_reserve(&p->msg, 0) != 0)
		return ws__fail(p, WS_CLOSE_INTERNAL);
	p->msg.data[p->msg.len] = '\0';
	rc = cb->on_text(ctx, p->msg.data, p->msg.len);
	p->msg.len = 0;
	return rc;
}

/* Unmask and store up to `len` payload bytes; returns how many were used. */
static size_t ws__payload(ws_parser_t *p, uint8_t *data, size_t len)
{
	size_t n = p->remaining < len ? (size_t)p->remaining : len;
	uint8_t *dst;

	for (size_t k = 0; k < n; k++)
		data[k] ^= p->mask[(p->frame_pos + k) & 3];
	if (ws__is_control(p->opcode)) {
		dst = p->ctl + p->ctl_len;
		p->ctl_len = (uint8_t)(p->ctl_len + n);
	} else {
		dst = (uint8_t *)p->msg.data + p->msg.len; /* reserved in header_done */
		p->msg.len += n;
	}
	memcpy(dst, data, n);
	p->remaining -= n;
	p->frame_pos += n;
	return n;
}

int ws_parser_feed(ws_parser_t *p, uint8_t *data, size_t len, const ws_parser_cb_t *cb, void *ctx)
{
	size_t i = 0;
	int rc;

	if (p->error)
		return (int)p->error;
	while (i < len) {
		if (p->hdr_len < p->hdr_need) {
			size_t take = p->hdr_need - p->hdr_len;
			if (take > len - i)
				take = len - i;
			memcpy(p->hdr + p->hdr_len, data + i, take);
			p->hdr_len = (uint8_t)(p->hdr_len + take);
			i += take;
			if (p->hdr_len == 2 && (rc = ws__check_start(p)) != 0)
				return rc;
			if (p->hdr_len < p->hdr_need)
				continue;
			if ((rc = ws__header_done(p)) != 0)
				return rc;
		}
		if (p->remaining > 0) {
			i += ws__payload(p, data + i, len - i);
			if (p->remaining > 0)
				break;
		}
		/* A whole frame: reset for the next header first, so a callback
		 * that stops the parser leaves it consistent. */
		p->hdr_len = 0;
		p->hdr_need = 2;
		rc = ws__is_control(p->opcode) ? ws__control_done(p, cb, ctx)
		                               : ws__data_done(p, cb, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}
