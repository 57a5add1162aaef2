/*
 * clock.c - the wall and monotonic clocks of clock.h.
 */
#include "artemis/clock.h"

#include <time.h>

static uint64_t clock__ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t clock_wall_ms(void)
{
	return clock__ms(CLOCK_REALTIME);
}

uint64_t clock_mono_ms(void)
{
	return clock__ms(CLOCK_MONOTONIC);
}

uint64_t clock_mono_coarse_ms(void)
{
	return clock__ms(CLOCK_MONOTONIC_COARSE);
}

uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
