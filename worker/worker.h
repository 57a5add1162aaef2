/*
 * worker.h - worker-internal: the state one worker process shares between
 * its transport (worker.c, http_*.c, ws.c) and its API handlers (api*.c).
 * One worker = one process = one event loop: no locking inside a worker.
 */
#ifndef ARTEMIS_WORKER_WORKER_H
#define ARTEMIS_WORKER_WORKER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "artemis/config.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"

typedef struct {
	const config_t *cfg;
	shm_t *shm;
	struct event_base *base;
	int slot;      /* worker slot number, 0-based */
	bool draining; /* QUIT received: finish and exit */
	uint64_t started_ms;
	unsigned connections; /* open HTTP connections of this worker */
	mgmt_t *mgmt;         /* its management store connection, or NULL */
} worker_t;

/* The one worker of this process (set by worker_main). */
extern worker_t *g_worker;

#endif
