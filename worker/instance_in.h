/*
 * instance_in.h - worker-internal: a decoded Instance (json.h) turned into
 * the registry's input (instance_in.c).  Shared by the register endpoint,
 * the Java peers' replication endpoints and, through
 * include/artemis/instance.h, the replicator.
 */
#ifndef ARTEMIS_WORKER_INSTANCE_IN_H
#define ARTEMIS_WORKER_INSTANCE_IN_H

#include "artemis/shm.h"
#include "json.h"

/* Encode the stored form into `stored` (reset first) and point si's fields
 * into in and stored; then shm_instance_validate.  0 or a negative error
 * (*field names the culprit when known). */
int json_instance_to_shm(const json_instance_t *in, shm_buf_t *stored, shm_instance_in_t *si,
                         const char **field);

#endif
