/*
 * fuzz_routing.c - libFuzzer target for the routing requests' decoders
 * (worker/api_routing_decode.c) and the routing's pure functions
 * (mgmt/route_pick.c): arbitrary bytes as a request body, read the way the
 * handlers read it (a group, a rule, a group instance, a logical instance,
 * ids and weights, a whitelist, each also from the body's members), the
 * bytes as text for a group key in a path and for an address or CIDR block,
 * and the bytes as the groups of a rule for each strategy.  Must never
 * crash, leak or read out of bounds; decoded fields stay within their
 * bounds, a decoded whitelist is valid JSON of valid entries, and a pick is
 * a group with a weight (or -1 when none has one).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../mgmt/route_int.h"
#include "../../worker/api_routing.h"
#include "artemis/codec.h"
#include "artemis/mgmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_all(const json_t *obj)
{
	mgmt_group_t g;
	mgmt_rule_t r;
	mgmt_binding_t b;
	static mgmt_logic_t l;
	unsigned fields;
	const char *field;
	int64_t id;
	long long w;
	buf_t ips = {0};

	field = NULL;
	if (api_rt_decode_group(obj, &g, &fields, &field) < 0 ? field == NULL : 0)
		abort();
	if (strlen(g.service) > MGMT_MAX_SERVICE || strlen(g.name) > MGMT_MAX_NAME ||
	    strlen(g.description) > MGMT_MAX_DESC || strlen(g.type) >= sizeof(g.type))
		abort();
	field = NULL;
	if (api_rt_decode_rule(obj, &r, &fields, &field) < 0 ? field == NULL : 0)
		abort();
	if (strlen(r.route_id) > MGMT_MAX_NAME || strlen(r.strategy) >= sizeof(r.strategy))
		abort();
	field = NULL;
	if (api_rt_decode_binding(obj, &b, &field) < 0 ? field == NULL : 0)
		abort();
	field = NULL;
	if (api_rt_decode_logic(obj, &l, &field) < 0 ? field == NULL : 0)
		abort();
	if (strlen(l.metadata) > SHM_MAX_METADATA || l.port < 0 || l.port > 65535)
		abort();
	if (api_rt_decode_id(json_member(obj, "groupid"), &id) == 0 && id <= 0)
		abort();
	(void)api_rt_decode_weight(json_member(obj, "weight"), &w);
	field = NULL;
	if (api_rt_decode_ips(json_member(obj, "ipwhitelist"), &ips, &field) == 0) {
		json_t *a = json_loadb(ips.data, ips.len, 0, NULL), *e;
		size_t i;
		if (!json_is_array(a) || json_array_size(a) > MGMT_MAX_WHITELIST)
			abort();
		json_array_foreach(a, i, e) if (!mgmt_ipspec_valid(json_string_value(e),
		                                                   json_string_length(e))) abort();
		json_decref(a);
	}
	buf_free(&ips);
}

static void text(const char *s, size_t n)
{
	char buf[512];
	mgmt_group_t key;
	struct route_cidr c;
	uint8_t addr[16];

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (strlen(buf) == n && api_rt_parse_group_key(buf, &key) == 0 && key.id == 0 &&
	    (!key.service[0] || !key.region[0] || !key.zone[0] || !key.name[0]))
		abort();
	if (route_cidr_parse(s, n, &c) == 0 && c.bits > 128)
		abort();
	if (route_ip_parse(s, n, addr) == 0 && route_cidr_parse(s, n, &c) == 0 &&
	    !memchr(s, '/', n) && !route_cidr_match(&c, addr))
		abort();
}

static void picks(const uint8_t *data, size_t size)
{
	struct route_grp_rec g[8];
	uint32_t n = (uint32_t)(size / 12 < 8 ? size / 12 : 8);
	memset(g, 0, sizeof(g));
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = data + i * 12;
		g[i].weight = (uint32_t)(p[0] | p[1] << 8) % 10001u;
		g[i].zone_hash = p[2] % 3;
		g[i].region_hash = p[3] % 2;
		memcpy(&g[i].key_hash, p + 4, 8);
	}
	uint64_t count = size ? data[0] * 7919u : 0;
	int a = route_pick_wrr(g, n, count);
	int b = route_pick_close(g, n, size ? data[size - 1] % 3 : 0, 1);
	int c = route_pick_hash(g, n, (const char *)data, size < 40 ? size : 40);
	bool any = false;
	for (uint32_t i = 0; i < n; i++)
		any = any || g[i].weight > 0;
	for (int k = 0; k < 3; k++) {
		int x = k == 0 ? a : k == 1 ? b : c;
		if ((any && (x < 0 || (uint32_t)x >= n || g[x].weight == 0)) || (!any && x != -1))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size, 0, NULL);
	const char *k;
	json_t *v;

	if (json_is_object(body)) {
		decode_all(body);
		json_object_foreach(body, k, v) decode_all(v);
	}
	json_decref(body);
	text((const char *)data, size);
	picks(data, size);
	return 0;
}
