/*
 * codec_int.h - what the codec's files share and nobody else sees: the
 * table of Instance fields (canonical key, display name, limit) and the
 * small helpers the decoder and the fast scanners both use.
 */
#ifndef ARTEMIS_CODEC_INT_H
#define ARTEMIS_CODEC_INT_H

#include "artemis/codec.h"

enum json__field {
	F_NONE = -1,
	F_REGION,
	F_ZONE,
	F_GROUP,
	F_SERVICE,
	F_INSTANCE,
	F_MACHINE,
	F_IP,
	F_PROTOCOL,
	F_URL,
	F_HEALTH,
	F_STATUS,
	F_PORT,
	F_METADATA,
	F_COUNT
};

typedef struct {
	const char *canon;
	const char *name; /* camelCase, for messages */
	size_t max;
} json__field_desc_t;

extern const json__field_desc_t json__fields[F_COUNT];

/* Only spaces, tabs and line breaks (or empty). */
bool json__blank(shm_str_t s);
/* The field a key names (canonical matching), or F_NONE. */
enum json__field json__field_of(const char *key);
/* The string slot of a field in inst (NULL for port and metadata). */
shm_str_t *json__str_field(json_instance_t *inst, enum json__field f);
/* url = http://ip:port when url is missing or blank and ip, port are set. */
void json__derive_url(json_instance_t *inst);

#endif
