/*
 * cache.c - per-worker cache of serialized Service responses.
 *
 * Called by the discovery handlers.  Entries are direct-mapped by a hash of
 * the exact-case serviceId and validated by the service's version from the
 * registry, which changes on every register, unregister and removal of the
 * service's instances (heartbeats do not change the stored data, so they do
 * not invalidate), and by the management projection's generation, which
 * changes on every pull-out and pull-in and every routing change.  Responses
 * leave out the instances operated down (mgmt_service_read) and carry the
 * service's routing data (mgmt_route_frame); on the Rust paths an entry
 * holds one routing variant (the instances one group of a rule, or the
 * canary pool, gets: mgmt_service_read_routed, with routeRules [] since the
 * routing is applied: mgmt_route_frame_routed), keyed with the service.  Total cached bytes are
 * bounded by CACHE_MAX_BYTES; a response that does not fit is served uncached.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "api.h"
#include "artemis/codec.h"
#include "artemis/mgmt.h"
#include "metrics.h"

typedef struct {
	uint64_t version;
	uint64_t mgmt_gen; /* the projection's generation it was built with */
	buf_t body;
	size_t name_len;
	uint32_t count;
	uint32_t variant; /* the routing variant (0: every instance) */
	bool used;
	char name[SHM_MAX_SERVICE + 1];
} cache_entry_t;

static cache_entry_t cache__slots[CACHE_SLOTS];
static size_t cache__bytes;
static shm_t *cache__shm;

void cache_clear(void)
{
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		buf_free(&cache__slots[i].body);
		memset(&cache__slots[i], 0, sizeof(cache__slots[i]));
	}
	cache__bytes = 0;
}

/* The members after the instances: the routing data (mgmt_route_frame:
 * logicInstances, metadata, routeRules), then serviceId. */
static int cache__frame_tail(shm_t *shm, buf_t *out, shm_str_t service, bool routed)
{
	int rc = service.len > SHM_MAX_SERVICE
	             ? json_put_raw(out, ",\"logicInstances\":null,\"metadata\":null,"
	                                 "\"routeRules\":null")
	         : routed ? mgmt_route_frame_routed(shm, service, out)
	                  : mgmt_route_frame(shm, service, out);

	if (rc < 0)
		return rc;
	json_put_raw(out, ",\"serviceId\":");
	json_put_str(out, service.ptr, service.len);
	json_put_raw(out, "}");
	return buf_error(out);
}

/* Build the response from the registry into out; *version and *count get
 * what was read.  -ENOENT is not an error: instances:null. */
static int cache__build(shm_t *shm, shm_str_t service, uint32_t variant, buf_t *out,
                        uint64_t *version, uint32_t *count)
{
	shm_service_info_t info = {0, 0};
	size_t mark;
	int rc = json_put_raw(out, "{\"instances\":");

	if (rc < 0)
		return rc;
	mark = out->len;
	rc = variant ? mgmt_service_read_routed(shm, service, variant, out, &info)
	             : mgmt_service_read(shm, service, out, &info);
	if (rc == -ENOENT) {
		out->len = mark;
		rc = json_put_raw(out, "null");
		info.version = 0;
		info.count = 0;
	}
	if (rc < 0)
		return rc;
	*version = info.version;
	*count = info.count;
	return cache__frame_tail(shm, out, service, variant != 0);
}

static void cache__store(cache_entry_t *e, shm_str_t service, uint32_t variant, const char *body,
                         size_t len, uint64_t version, uint64_t mgmt_gen, uint32_t count)
{
	size_t old = e->used ? e->body.len : 0;

	if (cache__bytes - old + len > api_cfg()->response_cache_bytes) {
		if (e->used) {
			cache__bytes -= old;
			e->used = false;
			e->body.len = 0;
		}
		return;
	}
	e->body.len = 0;
	if (buf_append(&e->body, body, len) < 0) {
		cache__bytes -= old;
		e->used = false;
		return;
	}
	cache__bytes = cache__bytes - old + len;
	memcpy(e->name, service.ptr, service.len);
	e->name[service.len] = '\0';
	e->name_len = service.len;
	e->version = version;
	e->mgmt_gen = mgmt_gen;
	e->count = count;
	e->variant = variant;
	e->used = true;
}

int cache_put_service(shm_t *shm, shm_str_t service, buf_t *out, uint32_t *count)
{
	return cache_put_service_routed(shm, service, 0, out, count);
}

int cache_put_service_routed(shm_t *shm, shm_str_t service, uint32_t variant, buf_t *out,
                             uint32_t *count)
{
	shm_service_info_t info;
	cache_entry_t *e;
	uint64_t version, mgmt_gen;
	uint32_t n = 0;
	size_t start = out->len;
	int rc;

	if (shm != cache__shm) {
		cache_clear();
		cache__shm = shm;
	}
	if (count == NULL)
		count = &n;
	if (service.len > SHM_MAX_SERVICE) {
		/* Cannot be registered: unknown. */
		*count = 0;
		json_put_raw(out, "{\"instances\":null");
		return cache__frame_tail(shm, out, service, false);
	}
	e = &cache__slots[(XXH3_64bits(service.ptr, service.len) +
	                   variant * 0x9e3779b97f4a7c15ULL) &
	                  (CACHE_SLOTS - 1)];
	/* Read before the data: a pull-out while we build only makes the
	 * entry stale at once, never wrong for long. */
	mgmt_gen = mgmt_generation(shm);
	rc = shm_service_info(shm, service, &info);
	if (rc == 0 && e->used && e->version == info.version && e->mgmt_gen == mgmt_gen &&
	    e->variant == variant && e->name_len == service.len &&
	    memcmp(e->name, service.ptr, service.len) == 0) {
		metrics_cache(true);
		*count = e->count;
		return buf_append(out, e->body.data, e->body.len);
	}
	metrics_cache(false);
	rc = cache__build(shm, service, variant, out, &version, count);
	if (rc < 0) {
		out->len = start;
		return rc;
	}
	if (*count > 0)
		cache__store(e, service, variant, out->data + start, out->len - start, version,
		             mgmt_gen, *count);
	return 0;
}
