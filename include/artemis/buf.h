/*
 * buf.h - the growable byte buffer every module writes into (util/buf.c).
 *
 * A buf_t starts zeroed ({0}) and grows with malloc.  Its error is sticky:
 * the first failed allocation sets b->err (-ENOMEM), and every later append
 * is a no-op that returns the same error.  A serializer may therefore append
 * freely and check once at the end (buf_error), instead of testing every
 * call.  The data is always NUL-terminated after a successful append (the
 * NUL is not counted in len).  Never placed in shared memory.
 */
#ifndef ARTEMIS_BUF_H
#define ARTEMIS_BUF_H

#include <stddef.h>

typedef struct {
	char *data;
	size_t len;
	size_t cap;
	int err; /* 0, or the first error (sticky) */
} buf_t;

/* Room for `extra` more bytes (and the NUL).  0 or the sticky error. */
int buf_reserve(buf_t *b, size_t extra);
/* Append n bytes.  0 or the sticky error. */
int buf_append(buf_t *b, const void *p, size_t n);
/* Append a NUL-terminated string. */
int buf_puts(buf_t *b, const char *s);
/* Append printf-formatted text. */
int buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forget the contents and the error; keep the memory. */
void buf_reset(buf_t *b);
/* The sticky error (0 when every append so far succeeded). */
static inline int buf_error(const buf_t *b)
{
	return b->err;
}
/* Free the memory and zero the buffer. */
void buf_free(buf_t *b);

#endif
