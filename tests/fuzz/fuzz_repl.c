/*
 * fuzz_repl.c - libFuzzer target for what the replicator parses from a
 * connection (replicator/proto.c, replicator/seal.c): anything that can
 * open a TCP connection to [cluster] listen reaches the frame cutter and
 * the decoder before the handshake, and the tag check after it.
 *
 * The input is a byte stream as it would arrive on a connection: frames
 * are cut with repl_frame_len, and each one is
 *   - decoded as a handshake frame (in clear),
 *   - opened as a sealed frame with a session key the input cannot know
 *     (it must be refused, whatever its length, without reading outside
 *     it),
 *   - sealed and opened again with a key, then decoded: what a peer that
 *     holds the key could send (the round trip must give back the same
 *     payload).
 * The input is also decoded whole as one payload.  A malformed frame must
 * give an error (the replicator then closes that connection only); nothing
 * may crash, leak or read out of bounds, and whatever decodes must be
 * readable through the accessors.
 *
 * The node knows the management kinds (replicator/mgmt.c): a ROW that
 * decodes is checked against its table (mgmt_repl_row_check, the test a
 * receiver makes before it touches its store), and encoded again: that
 * must decode to the same row.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../replicator/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t sink;

static void decode(const uint8_t *p, size_t n);

static bool same_value(const mgmt_value_t *a, const mgmt_value_t *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case MGMT_V_INT:
		return a->i == b->i;
	case MGMT_V_REAL:
		return memcmp(&a->d, &b->d, sizeof(a->d)) == 0 || (a->d != a->d && b->d != b->d);
	case MGMT_V_TEXT:
	case MGMT_V_BLOB:
		return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
	default:
		return true;
	}
}

/* A ROW: its table's check, and the round trip through the encoder. */
static void touch_row(const repl_msg_t *m)
{
	static repl_enc_t e;
	static int ready;
	char err[MGMT_MAX_ERR];
	mgmt_row_t row, again;
	repl_msg_t m2;

	if (!ready) {
		repl_enc_init(&e);
		ready = 1;
	}
	repl_msg_row(m, &row);
	if (((repl_kinds_known() >> row.kind) & 1) == 0)
		abort(); /* refused by the decoder */
	int rc = mgmt_repl_row_check(&row, err, sizeof(err));
	if (rc != 0 && rc != -EINVAL)
		abort();
	sink += (size_t)rc + strlen(err);
	repl_enc_row(&e, &row);
	if (repl_enc_end(&e) != 0)
		return; /* larger than a frame once its integers are packed */
	if (repl_decode(e.b.data + REPL_FRAME_HDR, e.b.len - REPL_FRAME_HDR, &m2) != 0 ||
	    m2.type != REPL_ROW)
		abort();
	repl_msg_row(&m2, &again);
	if (again.kind != row.kind || again.deleted != row.deleted || again.nvals != row.nvals ||
	    (row.hlc > 0 && again.hlc != row.hlc) || again.origin_len != row.origin_len)
		abort();
	for (uint32_t i = 0; i < row.nvals; i++)
		if (!same_value(&row.vals[i], &again.vals[i]))
			abort();
	repl_msg_free(&m2);
}

static void touch(const repl_msg_t *m)
{
	for (int i = 0; i < 3; i++)
		for (size_t k = 0; k < m->s[i].len; k++)
			sink += (unsigned char)m->s[i].ptr[k];
	if (m->type == REPL_ROW) {
		touch_row(m);
		return;
	}
	for (uint32_t i = 0; i < m->nlist; i++) {
		if (m->type == REPL_DIGEST) {
			repl_digest_t d;
			repl_msg_digest(m, i, &d);
			if (((repl_kinds_known() >> d.kind) & 1) == 0)
				abort(); /* kinds not known are refused */
			sink += d.count + d.name.len + (unsigned char)d.name.ptr[d.name.len - 1];
		} else {
			shm_key_t k;
			repl_msg_key(m, i, &k);
			sink += (unsigned char)k.region.ptr[k.region.len - 1] +
			        (unsigned char)k.service.ptr[k.service.len - 1] +
			        (unsigned char)k.instance.ptr[k.instance.len - 1];
		}
	}
}

static void decode(const uint8_t *p, size_t n)
{
	repl_msg_t m;
	int rc = repl_decode((const char *)p, n, &m);

	if (rc == 0) {
		if (m.type <= 0 || m.type >= REPL_TYPE_MAX)
			abort();
		touch(&m);
		repl_msg_free(&m);
	} else if (rc != -EPROTO && rc != -EPROTONOSUPPORT) {
		abort();
	}
}

/* One frame (header + len bytes). */
static void frame(const uint8_t *f, size_t len)
{
	static repl_seal_t tx, rx;
	static int keyed;
	uint8_t *copy = malloc(REPL_FRAME_HDR + len + REPL_TAG_BYTES);

	if (!keyed) {
		uint8_t key[REPL_KEY_BYTES], th[REPL_HASH_BYTES];
		repl_auth_key("fuzz-cluster-key-0123456789", key);
		repl_hello_hash("fuzz", 4, th);
		repl_session_keys(key, th, true, true, &tx, &rx);
		keyed = 1;
	}
	if (copy == NULL)
		return;
	decode(f + REPL_FRAME_HDR, len);
	/* opened without the key: refused, and the sequence stays */
	memcpy(copy, f, REPL_FRAME_HDR + len);
	uint64_t seq = rx.seq;
	if (repl_open(&rx, copy, len) == 0 || rx.seq != seq)
		abort();
	/* sealed by a peer with the key: opens to the same payload */
	if (len <= REPL_MAX_FRAME) {
		repl_seal_t out = rx; /* a sender in step with rx */
		out.encrypt = (len & 1) != 0;
		repl_seal_t in = rx;
		in.encrypt = out.encrypt;
		repl_seal(&out, f, len, copy);
		if (repl_open(&in, copy, len + REPL_TAG_BYTES) != 0 ||
		    memcmp(copy + REPL_FRAME_HDR, f + REPL_FRAME_HDR, len) != 0)
			abort();
		decode(copy + REPL_FRAME_HDR, len);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, len;

	repl_kinds_set(mgmt_repl_kinds());
	decode(data, size);
	while (off < size) {
		int rc = repl_frame_len(data + off, size - off, &len);
		if (rc < 0)
			break; /* -EAGAIN: wait for more; -EMSGSIZE: close */
		frame(data + off, len);
		off += REPL_FRAME_HDR + len;
	}
	return 0;
}
