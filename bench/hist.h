/*
 * hist.h - a log-linear latency histogram (the HdrHistogram idea, small).
 *
 * Values (nanoseconds in artemis-bench, but any unit works) below 2^HIST_SUB_BITS
 * are counted exactly; above, each power of two is split into
 * 2^(HIST_SUB_BITS-1) equal buckets, so a reported percentile is never more
 * than 1/2^(HIST_SUB_BITS-1) (0.8 %) above the true value.  Values beyond
 * HIST_MAX_VALUE land in the last bucket; the exact maximum and minimum are
 * kept aside.  Recording is a few instructions and never allocates; the
 * histogram is a plain struct, so histograms are merged by adding counts.
 *
 * Used by the load generator (bench/) only; tests/unit/test_bench_hist.c
 * includes hist.c directly.
 */
#ifndef ARTEMIS_BENCH_HIST_H
#define ARTEMIS_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS  8
#define HIST_SUB       (1u << HIST_SUB_BITS) /* exact region: [0, 256) */
#define HIST_HALF      (HIST_SUB / 2)        /* buckets per power of two */
#define HIST_MAX_SHIFT 40                    /* up to 2^47 (~39 h in ns) */
#define HIST_BUCKETS   (HIST_SUB + HIST_MAX_SHIFT * HIST_HALF)
#define HIST_MAX_VALUE ((UINT64_C(1) << (HIST_SUB_BITS + HIST_MAX_SHIFT - 1)) * 2 - 1)

typedef struct {
	uint64_t count;
	uint64_t sum; /* for the mean; wraps only after ~584 years of ns */
	uint64_t min;
	uint64_t max;
	uint64_t buckets[HIST_BUCKETS];
} hist_t;

void hist_init(hist_t *h);
void hist_record(hist_t *h, uint64_t value);
void hist_merge(hist_t *dst, const hist_t *src);

/* The smallest bucket upper bound at or below which at least p percent
 * (0..100) of the values lie, clamped to [min, max]; 0 when empty.
 * hist_percentile(h, 100) == max. */
uint64_t hist_percentile(const hist_t *h, double p);
double hist_mean(const hist_t *h);

/* Bucket arithmetic, exposed for the unit test. */
unsigned hist_index(uint64_t value);
uint64_t hist_bucket_low(unsigned index);
uint64_t hist_bucket_high(unsigned index);

#endif
