/*
 * api_routing_decode.c - the routing requests' decoders: groups, rules,
 * ids, weights, group instances, logical instances, whitelists, group keys
 * in paths.
 *
 * Pure functions of a parsed JSON body: no worker state; every string
 * bounded by its limit (longer is refused, never truncated); keys matched
 * as everywhere (case-insensitive, underscores ignored, so camelCase and
 * snake_case both work); the console's object forms ({"type":"WEIGHT"},
 * {"strategy":"WEIGHT_ROUND_ROBIN"}) taken beside the plain ones.
 * tests/fuzz/fuzz_routing.c drives them with arbitrary bodies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_routing.h"
#include "artemis/codec.h"

/* A string member into dst, or an object's inner member `inner`
 * ({"status":"active"}).  *present: the member was given. */
static int str_or_obj(const json_t *obj, const char *canon, const char *inner, char *dst,
                      size_t size, bool *present)
{
	const json_t *m = json_member(obj, canon);
	*present = m != NULL && !json_is_null(m);
	if (json_is_object(m))
		return api_mgmt_decode_str(m, inner, dst, size);
	return api_mgmt_decode_str(obj, canon, dst, size);
}

typedef struct {
	const char *canon, *name;
	char *dst;
	size_t size;
} str_field_t;

static int strings(const json_t *obj, const str_field_t *f, size_t n, const char **field)
{
	for (size_t i = 0; i < n; i++) {
		int rc = api_mgmt_decode_str(obj, f[i].canon, f[i].dst, f[i].size);
		if (rc < 0) {
			*field = f[i].name;
			return rc;
		}
	}
	return 0;
}

int api_rt_decode_id(const json_t *v, int64_t *id)
{
	if (v == NULL || json_is_null(v))
		return -ENOENT;
	if (json_is_integer(v)) {
		*id = (int64_t)json_integer_value(v);
		return *id > 0 ? 0 : -EINVAL;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d < 1 || d > 9e15 || d != (double)(int64_t)d)
			return -EINVAL;
		*id = (int64_t)d;
		return 0;
	}
	const char *s = json_string_value(v);
	if (s == NULL)
		return -EINVAL;
	size_t n = json_string_length(v);
	if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
		return -EINVAL;
	*id = strtoll(s, NULL, 10);
	return *id > 0 ? 0 : -EINVAL;
}

int api_rt_decode_weight(const json_t *v, long long *w)
{
	if (v == NULL || json_is_null(v))
		return -ENOENT;
	if (json_is_integer(v)) {
		*w = (long long)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		*w = d > 1e12 ? 1000000000000LL : d < -1e12 ? -1000000000000LL : (long long)d;
		return 0;
	}
	const char *s = json_string_value(v);
	char *end;
	if (s == NULL || json_string_length(v) == 0 || json_string_length(v) > 20)
		return -EINVAL;
	long long x = strtoll(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	*w = x;
	return 0;
}

/* ---- Groups ------------------------------------------------------------------- */

static int group_type(const char *s, char *dst, size_t size)
{
	static const struct {
		const char *in, *out;
	} names[] = {{"physical", "physical"},
	             {"weight", "physical"},
	             {"logical", "logical"},
	             {"logic", "logical"}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(s, names[i].in)) {
			snprintf(dst, size, "%s", names[i].out);
			return 0;
		}
	}
	return -EINVAL;
}

int api_rt_decode_group(const json_t *obj, mgmt_group_t *g, unsigned *fields, const char **field)
{
	char type[32];
	bool present;
	int rc;
	memset(g, 0, sizeof(*g));
	*fields = 0;
	if (!json_is_object(obj)) {
		*field = "group";
		return -EINVAL;
	}
	const str_field_t f[] = {
	    {"serviceid", "serviceId", g->service, sizeof(g->service)},
	    {"regionid", "regionId", g->region, sizeof(g->region)},
	    {"zoneid", "zoneId", g->zone, sizeof(g->zone)},
	    {"name", "name", g->name, sizeof(g->name)},
	    {"appid", "appId", g->app_id, sizeof(g->app_id)},
	    {"description", "description", g->description, sizeof(g->description)},
	};
	if ((rc = strings(obj, f, sizeof(f) / sizeof(f[0]), field)) < 0)
		return rc;
	if (!g->name[0] &&
	    (rc = api_mgmt_decode_str(obj, "groupname", g->name, sizeof(g->name))) < 0) {
		*field = "name";
		return rc;
	}
	if (json_member(obj, "appid"))
		*fields |= MGMT_GF_APP;
	if (json_member(obj, "description"))
		*fields |= MGMT_GF_DESC;
	if ((rc = str_or_obj(obj, "status", "status", g->status, sizeof(g->status), &present)) <
	    0) {
		*field = "status";
		return rc;
	}
	if (present)
		*fields |= MGMT_GF_STATUS;
	if ((rc = str_or_obj(obj, "grouptype", "type", type, sizeof(type), &present)) < 0) {
		*field = "groupType";
		return rc;
	}
	if (!present && (rc = str_or_obj(obj, "type", "type", type, sizeof(type), &present)) < 0) {
		*field = "groupType";
		return rc;
	}
	if (present && type[0]) {
		if (group_type(type, g->type, sizeof(g->type)) < 0) {
			*field = "groupType";
			return -EINVAL;
		}
		*fields |= MGMT_GF_TYPE;
	}
	rc = api_rt_decode_id(json_member(obj, "groupid"), &g->id);
	if (rc == -EINVAL) {
		*field = "groupId";
		return rc;
	}
	return 0;
}

int api_rt_parse_group_key(const char *s, mgmt_group_t *key)
{
	size_t n = strlen(s);
	memset(key, 0, sizeof(*key));
	if (n > 0 && n <= 18 && strspn(s, "0123456789") == n) {
		key->id = strtoll(s, NULL, 10);
		return key->id > 0 ? 0 : -EINVAL;
	}
	/* service:region:zone:name, the service taking any extra colons */
	const char *c3 = strrchr(s, ':');
	if (!c3)
		return -EINVAL;
	const char *c2 = c3 - 1;
	while (c2 >= s && *c2 != ':')
		c2--;
	if (c2 < s)
		return -EINVAL;
	const char *c1 = c2 - 1;
	while (c1 >= s && *c1 != ':')
		c1--;
	if (c1 < s)
		return -EINVAL;
	if (mgmt_field_set(key->service, sizeof(key->service), s, (size_t)(c1 - s)) < 0 ||
	    mgmt_field_set(key->region, sizeof(key->region), c1 + 1, (size_t)(c2 - c1 - 1)) < 0 ||
	    mgmt_field_set(key->zone, sizeof(key->zone), c2 + 1, (size_t)(c3 - c2 - 1)) < 0 ||
	    mgmt_field_set(key->name, sizeof(key->name), c3 + 1, strlen(c3 + 1)) < 0)
		return -EINVAL;
	return key->service[0] && key->region[0] && key->zone[0] && key->name[0] ? 0 : -EINVAL;
}

/* ---- Rules --------------------------------------------------------------------- */

static int strategy_name(const char *s, char *dst, size_t size)
{
	static const struct {
		const char *in, *out;
	} names[] = {
	    {"weighted-round-robin", "weighted-round-robin"},
	    {"weighted_round_robin", "weighted-round-robin"},
	    {"weight_round_robin", "weighted-round-robin"},
	    {"weight-round-robin", "weighted-round-robin"},
	    {"round_robin", "weighted-round-robin"},
	    {"round-robin", "weighted-round-robin"},
	    {"weight", "weighted-round-robin"},
	    {"close-by-visit", "close-by-visit"},
	    {"close_by_visit", "close-by-visit"},
	    {"consistent-hash", "consistent-hash"},
	    {"consistent_hash", "consistent-hash"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(s, names[i].in)) {
			snprintf(dst, size, "%s", names[i].out);
			return 0;
		}
	}
	return -EINVAL;
}

int api_rt_decode_rule(const json_t *obj, mgmt_rule_t *r, unsigned *fields, const char **field)
{
	char strategy[64];
	bool present;
	int rc;
	memset(r, 0, sizeof(*r));
	*fields = 0;
	if (!json_is_object(obj)) {
		*field = "routeRule";
		return -EINVAL;
	}
	const str_field_t f[] = {
	    {"routeid", "routeId", r->route_id, sizeof(r->route_id)},
	    {"serviceid", "serviceId", r->service, sizeof(r->service)},
	    {"name", "name", r->name, sizeof(r->name)},
	    {"description", "description", r->description, sizeof(r->description)},
	};
	if ((rc = strings(obj, f, sizeof(f) / sizeof(f[0]), field)) < 0)
		return rc;
	if (json_member(obj, "name"))
		*fields |= MGMT_RF_NAME;
	if (json_member(obj, "description"))
		*fields |= MGMT_RF_DESC;
	if ((rc = str_or_obj(obj, "status", "status", r->status, sizeof(r->status), &present)) <
	    0) {
		*field = "status";
		return rc;
	}
	if (present)
		*fields |= MGMT_RF_STATUS;
	if ((rc = str_or_obj(obj, "strategy", "strategy", strategy, sizeof(strategy), &present)) <
	    0) {
		*field = "strategy";
		return rc;
	}
	if (present && strategy[0]) {
		if (strategy_name(strategy, r->strategy, sizeof(r->strategy)) < 0) {
			*field = "strategy";
			return -EINVAL;
		}
		*fields |= MGMT_RF_STRATEGY;
	}
	const json_t *id = json_member(obj, "routeruleid");
	if (!id)
		id = json_member(obj, "id");
	if (api_rt_decode_id(id, &r->id) == -EINVAL) {
		*field = "routeRuleId";
		return -EINVAL;
	}
	return 0;
}

/* ---- Instances ------------------------------------------------------------------- */

int api_rt_decode_binding(const json_t *obj, mgmt_binding_t *b, const char **field)
{
	memset(b, 0, sizeof(*b));
	if (!json_is_object(obj)) {
		*field = "instance";
		return -EINVAL;
	}
	const str_field_t f[] = {
	    {"instanceid", "instanceId", b->instance, sizeof(b->instance)},
	    {"regionid", "regionId", b->region, sizeof(b->region)},
	    {"zoneid", "zoneId", b->zone, sizeof(b->zone)},
	    {"bindingtype", "bindingType", b->binding, sizeof(b->binding)},
	};
	return strings(obj, f, sizeof(f) / sizeof(f[0]), field);
}

int api_rt_decode_logic(const json_t *obj, mgmt_logic_t *l, const char **field)
{
	int rc;
	memset(l, 0, sizeof(*l));
	if (!json_is_object(obj)) {
		*field = "serviceInstance";
		return -EINVAL;
	}
	const str_field_t f[] = {
	    {"serviceid", "serviceId", l->service, sizeof(l->service)},
	    {"instanceid", "instanceId", l->instance, sizeof(l->instance)},
	    {"ip", "ip", l->ip, sizeof(l->ip)},
	    {"machinename", "machineName", l->machine, sizeof(l->machine)},
	    {"protocol", "protocol", l->protocol, sizeof(l->protocol)},
	    {"regionid", "regionId", l->region, sizeof(l->region)},
	    {"zoneid", "zoneId", l->zone, sizeof(l->zone)},
	    {"groupid", "groupId", l->group, sizeof(l->group)},
	    {"healthcheckurl", "healthCheckUrl", l->health, sizeof(l->health)},
	    {"url", "url", l->url, sizeof(l->url)},
	    {"description", "description", l->description, sizeof(l->description)},
	};
	if ((rc = strings(obj, f, sizeof(f) / sizeof(f[0]), field)) < 0)
		return rc;
	const json_t *md = json_member(obj, "metadata"), *port = json_member(obj, "port");
	if (json_is_object(md)) {
		char *text = json_dumps(md, JSON_COMPACT | JSON_SORT_KEYS);
		rc = text && strlen(text) < sizeof(l->metadata) ? 0 : -ENAMETOOLONG;
		if (rc == 0)
			strcpy(l->metadata, text);
		free(text);
	} else if (md && !json_is_null(md)) {
		rc = api_mgmt_decode_str(obj, "metadata", l->metadata, sizeof(l->metadata));
	}
	if (rc < 0) {
		*field = "metadata";
		return rc;
	}
	l->port = 80;
	if (json_is_integer(port) && json_integer_value(port) >= 0 &&
	    json_integer_value(port) <= 65535)
		l->port = (int)json_integer_value(port);
	else if (port && !json_is_null(port)) {
		*field = "port";
		return -EINVAL;
	}
	if (!l->protocol[0])
		strcpy(l->protocol, "http");
	if (api_rt_decode_id(json_member(obj, "id"), &l->id) == -EINVAL) {
		*field = "id";
		return -EINVAL;
	}
	return 0;
}

/* ---- Whitelists -------------------------------------------------------------------- */

static int put_ip(buf_t *out, const char *s, size_t n, size_t *count, const char **field)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0;
	if (!mgmt_ipspec_valid(s, n)) {
		*field = "ipWhitelist";
		return -EINVAL;
	}
	if (++*count > MGMT_MAX_WHITELIST) {
		*field = "ipWhitelist";
		return -E2BIG;
	}
	json_put_raw(out, *count > 1 ? "," : "");
	return json_put_str(out, s, n);
}

int api_rt_decode_ips(const json_t *v, buf_t *out, const char **field)
{
	size_t count = 0, i;
	const json_t *e;
	int rc = 0;
	json_put_raw(out, "[");
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e)) {
				*field = "ipWhitelist";
				return -EINVAL;
			}
			if ((rc = put_ip(out, json_string_value(e), json_string_length(e), &count,
			                 field)) < 0)
				return rc;
		}
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = json_string_length(v);
		for (size_t at = 0; at < len && rc == 0;) {
			size_t n = strcspn(s + at, ", ;\t\r\n");
			rc = put_ip(out, s + at, n, &count, field);
			at += n + 1;
		}
		if (rc < 0)
			return rc;
	} else if (v != NULL && !json_is_null(v)) {
		*field = "ipWhitelist";
		return -EINVAL;
	}
	json_put_raw(out, "]");
	return buf_error(out);
}
