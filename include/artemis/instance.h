/*
 * instance.h - an Instance JSON (API.md §1.1) turned into the registry's
 * input, exactly as the register endpoint does it (worker/instance.c, over
 * the worker's JSON codec): keys matched case-insensitively with
 * underscores ignored, the url derived from ip and port when missing, the
 * field limits checked, and the stored form re-encoded (sorted keys, nulls
 * included).  The replicator uses it for the records it receives, so a
 * replicated instance is stored byte for byte as a local register would.
 */
#ifndef ARTEMIS_INSTANCE_H
#define ARTEMIS_INSTANCE_H

#include <stddef.h>

#include "artemis/shm.h"

typedef struct instance_parser instance_parser_t;

instance_parser_t *instance_parser_new(void);
void instance_parser_free(instance_parser_t *p);

/* Parse one Instance object's JSON text and fill *si (origin fields 0).
 * si's strings point into p and stay valid until the next call or free.
 * Returns 0; -EINVAL when the text is not an Instance object or a required
 * field (regionId, serviceId, instanceId, url) is blank; -ENAMETOOLONG or
 * -E2BIG for a field or the stored form over its limit; -ENOMEM.  *field
 * (when not NULL) names the offending field. */
int instance_parse(instance_parser_t *p, const char *json, size_t len, shm_instance_in_t *si,
                   const char **field);

#endif
