/*
 * cache.h - worker-internal: each worker's cache of serialized Service
 * responses (cache.c), keyed by (exact-case serviceId, service version).
 *
 * The registry keeps every instance's JSON; a Service response is those
 * bytes concatenated plus a fixed frame.  This cache keeps the whole frame
 * per service and checks it against shm_service_info()'s version on every
 * use, so a lookup of an unchanged service is a probe and a memcpy.  One
 * process, one event loop: no locking.
 */
#ifndef ARTEMIS_WORKER_CACHE_H
#define ARTEMIS_WORKER_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "artemis/shm.h"

#define CACHE_SLOTS 4096 /* direct-mapped entries */

/* Append the Service JSON of `service` (exact case) to out:
 * {"instances":[..]|null,"logicInstances":..,"metadata":null,
 *  "routeRules":..,"serviceId":"..."}, without the instances operated
 * down ("[]" when that leaves none), with the routing data of API.md §4.10
 * (null when management has none for the service).
 * *count (optional) gets the number of instances listed.
 * Returns 0, or a negative errno from the registry (-EBUSY) or -ENOMEM. */
int cache_put_service(shm_t *shm, shm_str_t service, buf_t *out, uint32_t *count);
/* The same with only the instances of a routing variant
 * (mgmt_route_decide; 0 = every instance). */
int cache_put_service_routed(shm_t *shm, shm_str_t service, uint32_t variant, buf_t *out,
                             uint32_t *count);

/* Drop every entry (tests; a worker whose region changed). */
void cache_clear(void);

#endif
