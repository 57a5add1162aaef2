/*
 * hist.c - the log-linear latency histogram of hist.h.
 *
 * Index of a value v:
 *   v < HIST_SUB:  v itself (exact);
 *   otherwise:     with m the position of v's top bit and s = m - (SUB_BITS-1)
 *                  (s >= 1), the top SUB_BITS bits of v, (v >> s), lie in
 *                  [HALF, SUB); the index is SUB + (s-1)*HALF + ((v >> s) - HALF).
 * Each bucket therefore spans 2^s values: relative width <= 1/HALF.
 */
#include "hist.h"

#include <string.h>

void hist_init(hist_t *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	if (v > HIST_MAX_VALUE)
		v = HIST_MAX_VALUE;
	unsigned top = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = top - (HIST_SUB_BITS - 1);
	return HIST_SUB + (shift - 1) * HIST_HALF + (unsigned)((v >> shift) - HIST_HALF);
}

uint64_t hist_bucket_low(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned shift = (i - HIST_SUB) / HIST_HALF + 1;
	uint64_t mant = (i - HIST_SUB) % HIST_HALF + HIST_HALF;
	return mant << shift;
}

uint64_t hist_bucket_high(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned shift = (i - HIST_SUB) / HIST_HALF + 1;
	return hist_bucket_low(i) + (UINT64_C(1) << shift) - 1;
}

void hist_record(hist_t *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void hist_merge(hist_t *dst, const hist_t *src)
{
	if (!src->count)
		return;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t hist_percentile(const hist_t *h, double p)
{
	if (!h->count)
		return 0;
	if (p >= 100.0)
		return h->max;
	if (p < 0)
		p = 0;
	/* The rank of the value asked for, 1-based: ceil(p% of count), >= 1. */
	double want = p / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want || rank == 0)
		rank++;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double hist_mean(const hist_t *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}
