/*
 * api_mgmt_decode.c - the management requests' decoders: keys, the
 * operation, Java's OperationContext, booleans, zone lists.
 *
 * Pure functions of a parsed JSON body: no worker state, every string
 * bounded by its MGMT_MAX_* (longer is refused, never truncated), keys
 * matched as everywhere (case-insensitive, underscores ignored).
 * tests/fuzz/fuzz_mgmt.c drives them with arbitrary bodies.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_mgmt.h"
#include "artemis/codec.h"

int api_mgmt_decode_str(const json_t *obj, const char *canon, char *dst, size_t size)
{
	char scratch[64];
	shm_str_t v;
	const json_t *m = json_member(obj, canon);

	dst[0] = '\0';
	if (m == NULL || json_is_null(m))
		return 0;
	if (json_to_str(m, &v, scratch, sizeof(scratch)) < 0)
		return -EINVAL;
	return mgmt_field_set(dst, size, v.ptr ? v.ptr : "", v.ptr ? v.len : 0);
}

typedef struct {
	const char *canon, *name;
	char *dst;
	size_t size;
} key_field_t;

int api_mgmt_decode_key(const json_t *obj, mgmt_kind_t kind, mgmt_key_t *k, const char **field)
{
	key_field_t f[3];
	int nf = 0, rc;

	k->kind = kind;
	k->region[0] = k->service[0] = k->instance[0] = k->server[0] = k->zone[0] = '\0';
	f[nf++] = (key_field_t){"regionid", "regionId", k->region, sizeof(k->region)};
	if (kind == MGMT_INSTANCE) {
		f[nf++] = (key_field_t){"serviceid", "serviceId", k->service, sizeof(k->service)};
		f[nf++] =
		    (key_field_t){"instanceid", "instanceId", k->instance, sizeof(k->instance)};
	} else if (kind == MGMT_SERVER) {
		f[nf++] = (key_field_t){"serverid", "serverId", k->server, sizeof(k->server)};
	} else {
		f[nf++] = (key_field_t){"zoneid", "zoneId", k->zone, sizeof(k->zone)};
		f[nf++] = (key_field_t){"serviceid", "serviceId", k->service, sizeof(k->service)};
	}
	if (obj != NULL && !json_is_object(obj)) {
		*field = kind == MGMT_INSTANCE ? "instanceKey"
		         : kind == MGMT_SERVER ? "serverKey"
		                               : "zoneKey";
		return -EINVAL;
	}
	for (int i = 0; i < nf; i++) {
		if ((rc = api_mgmt_decode_str(obj, f[i].canon, f[i].dst, f[i].size)) < 0) {
			*field = f[i].name;
			return rc;
		}
	}
	return 0;
}

int api_mgmt_decode_operation(const json_t *obj, mgmt_key_t *k, const char **field)
{
	int rc = api_mgmt_decode_str(obj, "operation", k->operation, sizeof(k->operation));

	if (rc < 0)
		*field = "operation";
	return rc;
}

int api_mgmt_decode_bool(const json_t *v)
{
	if (v == NULL || json_is_null(v))
		return -1;
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_string(v)) {
		if (strcasecmp(json_string_value(v), "true") == 0)
			return 1;
		if (strcasecmp(json_string_value(v), "false") == 0)
			return 0;
	}
	return -EINVAL;
}

int api_mgmt_decode_ctx(const json_t *body, const char *operator_q, api_mgmt_ctx_t *c,
                        const char **field)
{
	const json_t *ext = json_member(body, "extensions");
	int rc;

	memset(c, 0, sizeof(*c));
	c->ctx.complete = -1;
	if ((rc = api_mgmt_decode_str(body, "operatorid", c->operator_id, sizeof(c->operator_id))) <
	    0) {
		*field = "operatorId";
		return rc;
	}
	if (c->operator_id[0] == '\0' && operator_q != NULL &&
	    (rc = mgmt_field_set(c->operator_id, sizeof(c->operator_id), operator_q,
	                         strlen(operator_q))) < 0) {
		*field = "operatorId";
		return rc;
	}
	if ((rc = api_mgmt_decode_str(body, "token", c->token, sizeof(c->token))) < 0) {
		*field = "token";
		return rc;
	}
	if ((rc = api_mgmt_decode_str(body, "reason", c->reason, sizeof(c->reason))) < 0) {
		*field = "reason";
		return rc;
	}
	if (json_is_object(ext) || json_is_array(ext)) {
		char *text = json_dumps(ext, JSON_COMPACT);
		rc = text && strlen(text) < sizeof(c->extensions) ? 0 : -ENAMETOOLONG;
		if (rc == 0)
			strcpy(c->extensions, text);
		free(text);
	} else {
		rc = api_mgmt_decode_str(body, "extensions", c->extensions, sizeof(c->extensions));
	}
	if (rc < 0) {
		*field = "extensions";
		return rc;
	}
	c->ctx.complete = api_mgmt_decode_bool(json_member(body, "operationcomplete"));
	if (c->ctx.complete == -EINVAL) {
		*field = "operationComplete";
		return -EINVAL;
	}
	c->ctx.operator_id = c->operator_id;
	c->ctx.token = c->token[0] ? c->token : NULL;
	c->ctx.reason = c->reason[0] ? c->reason : NULL;
	c->ctx.extensions = c->extensions[0] ? c->extensions : NULL;
	return 0;
}

/* One zone entry: Java's {zoneKey, operations} or the Rust {zoneId,
 * regionId, serviceId}; adds its changes. */
static int zone_entry(const json_t *e, const char *region_default, const char *op_default,
                      bool insert, mgmt_change_t *out, size_t max, size_t *n, const char **field)
{
	const json_t *zk = json_member(e, "zonekey"), *ops = json_member(e, "operations");
	mgmt_key_t k;
	size_t i;
	const json_t *op;
	int rc;

	if (!json_is_object(e)) {
		*field = "zoneOperationsList";
		return -EINVAL;
	}
	if ((rc = api_mgmt_decode_key(zk ? zk : e, MGMT_ZONE, &k, field)) < 0)
		return rc;
	if (k.region[0] == '\0' && region_default != NULL)
		mgmt_field_set(k.region, sizeof(k.region), region_default, strlen(region_default));
	if (ops == NULL || json_is_null(ops)) {
		/* The Rust entry: one operation, the request's. */
		if (*n >= max) {
			*field = "zones";
			return -E2BIG;
		}
		mgmt_field_set(k.operation, sizeof(k.operation), op_default, strlen(op_default));
		out[*n].key = k;
		out[(*n)++].insert = insert;
		return 0;
	}
	if (!json_is_array(ops)) {
		*field = "operations";
		return -EINVAL;
	}
	json_array_foreach(ops, i, op)
	{
		if (*n >= max) {
			*field = "zoneOperationsList";
			return -E2BIG;
		}
		if (!json_is_string(op)) {
			*field = "operations";
			return -EINVAL;
		}
		if (mgmt_field_set(k.operation, sizeof(k.operation), json_string_value(op),
		                   json_string_length(op)) < 0) {
			*field = "operation";
			return -ENAMETOOLONG;
		}
		out[*n].key = k;
		out[(*n)++].insert = insert;
	}
	return 0;
}

int api_mgmt_decode_zone_list(const json_t *body, const char *region_default,
                              const char *operation_default, bool insert, mgmt_change_t *out,
                              size_t max, size_t *n, const char **field)
{
	const json_t *list = json_member(body, "zoneoperationslist");
	const json_t *e;
	size_t i;
	int rc;

	*n = 0;
	if (list == NULL)
		list = json_member(body, "zones");
	if (list != NULL && !json_is_null(list)) {
		if (!json_is_array(list)) {
			*field = "zoneOperationsList";
			return -EINVAL;
		}
		json_array_foreach(list, i, e)
		{
			rc = zone_entry(e, region_default, operation_default, insert, out, max, n,
			                field);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	/* {"zoneIds": [..], "regionId", "serviceId"} */
	list = json_member(body, "zoneids");
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list)) {
		*field = "zoneIds";
		return -EINVAL;
	}
	json_array_foreach(list, i, e)
	{
		mgmt_key_t k;
		if (*n >= max) {
			*field = "zoneIds";
			return -E2BIG;
		}
		if ((rc = api_mgmt_decode_key(body, MGMT_ZONE, &k, field)) < 0)
			return rc;
		if (!json_is_string(e) ||
		    mgmt_field_set(k.zone, sizeof(k.zone), json_string_value(e),
		                   json_string_length(e)) < 0) {
			*field = "zoneIds";
			return json_is_string(e) ? -ENAMETOOLONG : -EINVAL;
		}
		if (k.region[0] == '\0' && region_default != NULL)
			mgmt_field_set(k.region, sizeof(k.region), region_default,
			               strlen(region_default));
		mgmt_field_set(k.operation, sizeof(k.operation), operation_default,
		               strlen(operation_default));
		out[*n].key = k;
		out[(*n)++].insert = insert;
	}
	return 0;
}
