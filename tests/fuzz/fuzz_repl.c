/*
 * fuzz_repl.c - libFuzzer target for the replicator's frame decoder
 * (replicator/proto.c), the parser any TCP client of [cluster] listen
 * reaches before the handshake.  The input is a byte stream as it would
 * arrive on a connection: frames are cut with repl_frame_len and each is
 * decoded; the input is also decoded whole as one payload.  A malformed
 * frame must give an error (the replicator then closes that connection
 * only); nothing may crash, leak or read out of bounds, and whatever
 * decodes must be readable through the accessors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../replicator/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t sink;

static void touch(const repl_msg_t *m)
{
	for (int i = 0; i < 3; i++)
		for (size_t k = 0; k < m->s[i].len; k++)
			sink += (unsigned char)m->s[i].ptr[k];
	for (uint32_t i = 0; i < m->nlist; i++) {
		if (m->type == REPL_DIGEST) {
			repl_digest_t d;
			repl_msg_digest(m, i, &d);
			sink += d.count + d.service.len +
			        (unsigned char)d.service.ptr[d.service.len - 1];
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

	if (repl_decode((const char *)p, n, &m) == 0) {
		if (m.type <= 0 || m.type >= REPL_TYPE_MAX)
			abort();
		touch(&m);
		repl_msg_free(&m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, len;

	decode(data, size);
	while (off < size) {
		int rc = repl_frame_len(data + off, size - off, &len);
		if (rc < 0)
			break; /* -EAGAIN: wait for more; -EMSGSIZE: close */
		decode(data + off + REPL_FRAME_HDR, len);
		off += REPL_FRAME_HDR + len;
	}
	return 0;
}
