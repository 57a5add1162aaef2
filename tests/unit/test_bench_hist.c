/*
 * test_bench_hist.c - bench/hist.c, the load generator's latency histogram:
 * bucket arithmetic (every value falls in the bucket whose bounds hold it,
 * buckets tile the range, relative width within the promised precision),
 * percentiles against a sorted reference, min/max/mean, merge, and values
 * beyond the range.  bench/ is not part of libartemis.a: the source is
 * included here directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "../../bench/hist.c"

static hist_t *new_hist(void)
{
	hist_t *h = malloc(sizeof(*h));
	assert_non_null(h);
	hist_init(h);
	return h;
}

static void test_index_bounds(void **state)
{
	(void)state;
	/* Exact region. */
	for (uint64_t v = 0; v < HIST_SUB; v++) {
		assert_int_equal(hist_index(v), v);
		assert_int_equal(hist_bucket_low((unsigned)v), v);
		assert_int_equal(hist_bucket_high((unsigned)v), v);
	}
	/* Buckets tile [0, HIST_MAX_VALUE] without gaps or overlaps. */
	for (unsigned i = 1; i < HIST_BUCKETS; i++)
		assert_int_equal(hist_bucket_low(i), hist_bucket_high(i - 1) + 1);
	assert_int_equal(hist_bucket_high(HIST_BUCKETS - 1), HIST_MAX_VALUE);
	assert_int_equal(hist_index(HIST_MAX_VALUE), HIST_BUCKETS - 1);
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	/* Pseudo-random values land in the bucket that holds them, and the
	 * bucket is at most 1/HIST_HALF of its low bound wide. */
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int k = 0; k < 200000; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t v = x >> (x % 60 + 4);
		if (v > HIST_MAX_VALUE)
			continue;
		unsigned i = hist_index(v);
		assert_true(hist_bucket_low(i) <= v && v <= hist_bucket_high(i));
		uint64_t width = hist_bucket_high(i) - hist_bucket_low(i) + 1;
		assert_true(width == 1 || width * HIST_HALF <= hist_bucket_low(i));
	}
	/* Powers of two start a bucket. */
	for (unsigned b = HIST_SUB_BITS; b < 47; b++)
		assert_int_equal(hist_bucket_low(hist_index(UINT64_C(1) << b)), UINT64_C(1) << b);
}

static void test_empty(void **state)
{
	(void)state;
	hist_t *h = new_hist();
	assert_int_equal(h->count, 0);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 100), 0);
	assert_true(hist_mean(h) == 0.0);
	free(h);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Percentiles agree with a sorted reference within the bucket precision,
 * never below the true value. */
static void test_percentiles_vs_reference(void **state)
{
	(void)state;
	enum { N = 100000 };
	uint64_t *ref = malloc(sizeof(*ref) * N);
	assert_non_null(ref);
	hist_t *h = new_hist();
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		/* A latency-like spread: 20 us .. ~20 ms, heavy tail. */
		uint64_t v = 20000 + (x % 1000000) * (x % 1000000 < 990000 ? 1 : 20);
		ref[i] = v;
		hist_record(h, v);
	}
	qsort(ref, N, sizeof(*ref), cmp_u64);
	static const double ps[] = {0, 1, 25, 50, 90, 99, 99.9, 99.99};
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		size_t rank = (size_t)(ps[k] / 100.0 * N + 0.999999);
		if (rank == 0)
			rank = 1;
		uint64_t truth = ref[rank - 1];
		uint64_t got = hist_percentile(h, ps[k]);
		assert_true(got >= truth);
		assert_true(got - truth <= truth / HIST_HALF + 1);
	}
	assert_int_equal(hist_percentile(h, 100), ref[N - 1]);
	assert_int_equal(h->min, ref[0]);
	assert_int_equal(h->max, ref[N - 1]);
	assert_int_equal(h->count, N);
	free(ref);
	free(h);
}

static void test_exact_small_values(void **state)
{
	(void)state;
	hist_t *h = new_hist();
	for (uint64_t v = 1; v <= 100; v++)
		hist_record(h, v);
	assert_int_equal(hist_percentile(h, 50), 50);
	assert_int_equal(hist_percentile(h, 90), 90);
	assert_int_equal(hist_percentile(h, 99), 99);
	assert_int_equal(hist_percentile(h, 99.9), 100);
	assert_int_equal(hist_percentile(h, 100), 100);
	assert_int_equal(hist_percentile(h, 0), 1);
	assert_true(hist_mean(h) == 50.5);
	free(h);
}

static void test_merge(void **state)
{
	(void)state;
	hist_t *a = new_hist(), *b = new_hist(), *all = new_hist();
	for (uint64_t v = 0; v < 5000; v++) {
		uint64_t w = v * 997 + 3;
		hist_record(v % 2 ? a : b, w);
		hist_record(all, w);
	}
	hist_t *empty = new_hist();
	hist_merge(a, empty); /* merging nothing changes nothing (min stays) */
	hist_merge(a, b);
	assert_memory_equal(a, all, sizeof(*a));
	free(a);
	free(b);
	free(all);
	free(empty);
}

static void test_out_of_range(void **state)
{
	(void)state;
	hist_t *h = new_hist();
	hist_record(h, 1000);
	hist_record(h, UINT64_MAX / 2);
	assert_int_equal(h->max, UINT64_MAX / 2);
	assert_int_equal(hist_percentile(h, 100), UINT64_MAX / 2);
	/* The 50th percentile is the small value's bucket bound; the large one
	 * is clamped into the last bucket, whose bound is reported below max. */
	assert_int_equal(hist_percentile(h, 50), hist_bucket_high(hist_index(1000)));
	assert_true(hist_percentile(h, 50) - 1000 <= 1000 / HIST_HALF);
	assert_int_equal(hist_percentile(h, 99), HIST_MAX_VALUE);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_index_bounds),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_percentiles_vs_reference),
	    cmocka_unit_test(test_exact_small_values),
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_out_of_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
