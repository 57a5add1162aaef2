/*
 * buf.c - the growable output buffer of shm.h (shm_buf_t).
 * Used by readers to receive copied-out JSON; never placed in the region.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/shm.h"

int shm_buf_reserve(shm_buf_t *b, size_t extra)
{
	if (b->cap - b->len >= extra + 1)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra + 1) {
		if (cap > (SIZE_MAX >> 1))
			return -ENOMEM;
		cap <<= 1;
	}
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int shm_buf_append(shm_buf_t *b, const void *p, size_t n)
{
	int rc = shm_buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

void shm_buf_free(shm_buf_t *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
