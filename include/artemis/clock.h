/*
 * clock.h - the two clocks every process reads (util/clock.c).
 *
 * Wall time (CLOCK_REALTIME) is what leases, change times and answers carry:
 * epoch milliseconds, as Java's.  Monotonic time schedules timers, timeouts
 * and backoff, so a step of the wall clock cannot stall or hurry them.
 */
#ifndef ARTEMIS_CLOCK_H
#define ARTEMIS_CLOCK_H

#include <stdint.h>

/* Epoch milliseconds (CLOCK_REALTIME). */
uint64_t clock_wall_ms(void);
/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t clock_mono_ms(void);
/* Nanoseconds of CLOCK_MONOTONIC (latency measurements). */
uint64_t clock_mono_ns(void);
/* Milliseconds of CLOCK_MONOTONIC_COARSE: a few ms stale, no syscall cost
 * (per-request timestamps on hot paths). */
uint64_t clock_mono_coarse_ms(void);

#endif
