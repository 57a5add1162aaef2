/*
 * codec.h - the JSON codec (module codec/), used by the workers' API
 * handlers, the replicator and the CLI alike:
 *   codec/json_in.c      lenient input on jansson (keys matched as Jackson)
 *   codec/instance.c     an Instance decoded, checked, encoded, displayed
 *   codec/instance_in.c  an Instance turned into the registry's input
 *   codec/json_fast.c    allocation-free scanners for the hottest requests
 *   codec/json_out.c     the Java-shaped writer and the envelope
 *
 * Input: request bodies are parsed with jansson; object keys are matched
 * case-insensitively with underscores ignored (API.md §0 and §A), so
 * "serviceId", "ServiceID" and "service_id" are the same key.  When a key
 * occurs twice under such matching the last one wins, as with Jackson.
 *
 * Output: camelCase keys in alphabetical order with null fields included,
 * as Spring's SORT_PROPERTIES_ALPHABETICALLY writes them.  The writers append
 * to an buf_t; they never truncate (a failed allocation is -ENOMEM).
 *
 * Nothing here touches the registry or the network.
 */
#ifndef ARTEMIS_CODEC_H
#define ARTEMIS_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/buf.h"
#include "artemis/shm.h"

/* Longest "http://" + ip + ":" + port derived when url is missing. */
#define JSON_DERIVED_URL_MAX (SHM_MAX_IP + 32)

/* One Instance of a request, decoded.  Strings point into the jansson tree
 * (or into derived_url); ptr == NULL means absent or JSON null. */
typedef struct json_instance {
	shm_str_t region;
	shm_str_t zone;
	shm_str_t group;
	shm_str_t service;
	shm_str_t instance;
	shm_str_t machine;
	shm_str_t ip;
	shm_str_t protocol;
	shm_str_t url;
	shm_str_t health;
	shm_str_t status;
	int32_t port;     /* 0 when absent (a Java primitive int) */
	json_t *metadata; /* borrowed object, NULL when absent or null */
	bool legacy;      /* metadata has a non-blank "java_registry" */
	char derived_url[JSON_DERIVED_URL_MAX];
} json_instance_t;

/* Decode errors.  -EINVAL: the JSON is valid but has the wrong shape
 * (Jackson would refuse it: HTTP 400).  -ENAMETOOLONG: a field exceeds its
 * SHM_MAX_* limit (a per-instance bad-request); *field names it. */

/* Parse a request body.  An empty body is an error, as Spring's "Required
 * request body is missing".  Returns 0, or -EINVAL with a message in err. */
int json_parse_body(const char *body, size_t len, json_t **out, char *err, size_t err_len);

/* Member of an object by canonical name: lowercase, no underscores
 * ("serviceid").  NULL when obj is not an object or has no such key.  When
 * several keys match, the last wins. */
json_t *json_member(const json_t *obj, const char *canon);

/* The member's string value; {NULL, 0} when absent or not a string. */
shm_str_t json_member_str(const json_t *obj, const char *canon);

/* Canonical form of a key into buf (lowercase, underscores removed).
 * Returns false when it does not fit. */
bool json_canon_key(const char *key, char *buf, size_t buf_len);

/* A string-typed value as Jackson would coerce it: strings as is, numbers
 * and booleans as their text (written into scratch), null -> ptr NULL.
 * -EINVAL for objects and arrays. */
int json_to_str(const json_t *v, shm_str_t *out, char *scratch, size_t scratch_len);

/* Decode one Instance object.  inst points into obj afterwards.  A missing
 * or blank url with non-blank ip and a port > 0 is derived as http://ip:port.
 * Field limits (SHM_MAX_*) are checked here; *field names the culprit. */
int json_instance_decode(json_t *obj, json_instance_t *inst, const char **field);

/* Append the Instance's response form: sorted keys, nulls included. */
int json_instance_encode(const json_instance_t *inst, buf_t *out);

/* Instance.toString(): lowercase "region/zone/service[/group]/instance",
 * with "null" for absent parts, as Java prints them.  Always terminated;
 * returns the length written. */
size_t json_instance_display(const json_instance_t *inst, char *buf, size_t buf_len);

/* The registry key of a decoded instance. */
void json_instance_key(const json_instance_t *inst, shm_key_t *key);

/* Heartbeat fast path: decode {"instances":[{..},..]} without jansson when
 * the body has the common plain shape (ASCII strings without escapes,
 * integer ports, string-valued metadata, at most max instances, every
 * field within its limit).  out[i] points into body (metadata is left
 * NULL; legacy false); spans[i] is instance i's object text, for the rare
 * response that must echo it.  -EAGAIN: not that shape, use the jansson
 * path (which also produces every error).  Never a different verdict. */
int json_fast_instances(const char *body, size_t len, json_instance_t *out, shm_str_t *spans,
                        size_t max, size_t *n);

/* Lookup fast path: {"regionId","zoneId","discoveryConfigs":[{..},..]}
 * with plain strings (or null) for those keys, any other keys skipped,
 * at most JSON_FAST_CONFIGS non-null configs.  Same contract as above:
 * -EAGAIN means "use jansson", never a different verdict. */
#define JSON_FAST_CONFIGS 64

typedef struct {
	shm_str_t service;
	shm_str_t region;
	shm_str_t zone;
} json_lookup_cfg_t;

typedef struct {
	shm_str_t region;
	shm_str_t zone;
	size_t n;
	json_lookup_cfg_t cfg[JSON_FAST_CONFIGS];
} json_lookup_t;

int json_fast_lookup(const char *body, size_t len, json_lookup_t *out);

/* The length of the JSON text value that starts at s[0] ('{', '[' or '"'),
 * following strings (and their escapes) and nesting, without validating the
 * rest: for splitting JSON this process wrote itself.  0 when it does not
 * end within n bytes. */
size_t json_value_len(const char *s, size_t n);

/* ---- Writers ---------------------------------------------------------- */

/* Append s as a JSON string literal (quoted, escaped); ptr NULL -> null. */
int json_put_str(buf_t *b, const char *s, size_t len);
int json_put_cstr(buf_t *b, const char *s); /* NULL -> null */
int json_put_raw(buf_t *b, const char *s);  /* literal text */
int json_put_u64(buf_t *b, uint64_t v);
int json_put_i64(buf_t *b, int64_t v);
int json_put_bool(buf_t *b, bool v);

/* A jansson value, compact, keys in insertion order (metadata maps keep
 * the order they were sent in, as Java's HashMap order is unspecified). */
int json_put_value(buf_t *b, const json_t *v);

/* The responseStatus object, e.g. {"errorCode":"success","message":"","status":"success"}. */
int json_put_status(buf_t *b, const char *status, const char *code, const char *message);

/* ---- Instance to registry input (instance_in.c) ------------------------ */

/* Encode the stored form into `stored` (reset first) and point si's fields
 * into in and stored; then shm_instance_validate.  0 or a negative error
 * (*field names the culprit when known).  The register endpoint, the Java
 * peers' replication endpoints and the replicator all come through here, so
 * an instance is stored byte for byte the same whichever path brought it. */
int json_instance_to_shm(const json_instance_t *in, buf_t *stored, shm_instance_in_t *si,
                         const char **field);

/* A reusable parser of Instance JSON text (the replicator's records):
 * keys matched case-insensitively with underscores ignored, the url derived
 * from ip and port when missing, the limits checked, the stored form
 * re-encoded (sorted keys, nulls included). */
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
