/*
 * metrics.h - worker-internal: the API's counters (metrics.c).
 *
 * Counters live in this process's entry of the region's per-process
 * counter array (shm_proc_counters), so GET /metrics on any worker sums
 * every process and reports the node's totals.  Incrementing is a relaxed
 * atomic add on memory only this process writes: no lock, no syscall.
 */
#ifndef ARTEMIS_WORKER_METRICS_H
#define ARTEMIS_WORKER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "artemis/shm.h"
#include "http.h"

/* A handled failure (responseStatus other than success) on req's route. */
void metrics_fail(const http_request_t *req);
void metrics_rate_limited(void);
void metrics_cache(bool hit);

/* The Prometheus text format 0.0.4 exposition of the node. */
int metrics_render(shm_buf_t *out);

#endif
