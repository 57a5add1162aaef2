/*
 * versioned.h - worker-internal: the versioned cache behind services.json
 * and services-delta.json (versioned.c), Java's VersionedCacheManager.
 *
 * Java rebuilds a snapshot of every service every 30 s after a 60 s
 * initial delay, keeps the last 3, and versions each by the epoch ms of its
 * rebuild.  Workers are separate processes, so here a version is not "when
 * this worker rebuilt" but the wall-clock 30 s boundary the snapshot
 * belongs to (floor(now / 30000) * 30000): every worker names the same
 * period with the same version, and a client may take a version from one
 * worker to another.  A worker builds the snapshot of a period when it is
 * first asked for it in that period.  A management change starts a new
 * version at its own time (shared through the region).  Instances operated
 * down are left out, and services left empty by that.  See
 * docs/API-NOTES.md.
 */
#ifndef ARTEMIS_WORKER_VERSIONED_H
#define ARTEMIS_WORKER_VERSIONED_H

#include <stdint.h>

#include "artemis/shm.h"

#define VERSIONED_INTERVAL_MS   30000
#define VERSIONED_INIT_DELAY_MS 60000
#define VERSIONED_COUNT         3

/* Append the services array ("[svc,..]", services with instances only) and
 * return its version through *version (0 before the first period, when the
 * data is computed live).  started_ms is when this node started serving. */
int versioned_services(shm_t *shm, uint64_t now_ms, uint64_t started_ms, buf_t *out,
                       uint64_t *version);

/* The services array as it is now, the instances operated down included
 * (POST /api/discovery/services.json, MANAGEMENT.md §3.3). */
int versioned_services_all(shm_t *shm, buf_t *out);

/* Append the delta object {"<serviceId>":[InstanceChange..],..} from the
 * snapshot `version` to the newest one, whose version goes to *newest.
 * -ENOENT when `version` is not a held snapshot or no newer one exists
 * ("Delta is not found."). */
int versioned_delta(shm_t *shm, uint64_t now_ms, uint64_t started_ms, uint64_t version, buf_t *out,
                    uint64_t *newest);

/* Drop every snapshot (tests). */
void versioned_reset(void);

/* Build a snapshot now with the given version (tests). */
int versioned_force(shm_t *shm, uint64_t version);

#endif
