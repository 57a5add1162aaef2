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
/* A management write (a handler begun with MGMT_WRITE or MGMT_ADMIN) ended:
 * code NULL for success, else the errorCode it answered. */
void metrics_mgmt_op(const http_request_t *req, const char *code);
/* n InstanceChange messages written to push sessions. */
void metrics_push(uint32_t n);

/* Open WebSocket sessions of this process, by the kinds of
 * status/websocket/connection.json (ws.c).  Gauges: metrics_ws_reset()
 * zeroes this process's entries at start, since a predecessor in the same
 * entry may have died with sessions open. */
enum metrics_ws_kind { METRICS_WS_REGISTRY = 0, METRICS_WS_DISCOVERY = 1 };
void metrics_ws_session(enum metrics_ws_kind kind, int delta);
void metrics_ws_reset(void);
/* The node's totals over every process. */
void metrics_ws_totals(uint64_t *registry, uint64_t *discovery);

/* The Prometheus text format 0.0.4 exposition of the node. */
int metrics_render(buf_t *out);

#endif
