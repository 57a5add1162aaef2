/*
 * lease.c - how often the instances kept alive are renewed: a fraction of
 * the lease TTL of the node that renews them (registry.c runs the rounds).
 *
 * A node's TTL is its [registry] lease_ttl_ms; the client does not know it
 * beforehand, and a node with a TTL shorter than the client's assumption
 * would let leases expire between two rounds.  So, unless the application
 * set ARTEMIS_OPT_LEASE_TTL_MS itself, the client asks the registry node
 * for GET /artemis/api/status/config.json (its "registry.lease_ttl_ms")
 * when a keep-alive session opens, and again whenever the registry node
 * in use is not the one it asked (a failover).  The answer resets the
 * round timer to the interval that TTL gives (cl_lease_interval).  A node
 * that does not tell (an older or a Java node, an error, a refusal) leaves
 * the interval as it was; a failed request is asked again at the next
 * round.  The request goes out without Java semantics: its HTTP status
 * never marks a node failed.
 *
 * Loop thread only, except cl_lease_interval (pure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "artemis/codec.h"
#include "client_int.h"

#define LEASE_PATH_CONFIG "/artemis/api/status/config.json"
#define LEASE_MIN_MS      1000u /* the nodes' bounds of lease_ttl_ms */
#define LEASE_MAX_MS      604800000u
#define LEASE_MIN_ROUND   100u /* the shortest interval between rounds */

uint32_t cl_lease_interval(uint32_t ttl_ms, uint32_t explicit_ms)
{
	uint32_t quarter = ttl_ms / 4;

	if (explicit_ms != 0 && explicit_ms < ttl_ms / 3)
		return explicit_ms; /* the application's, while it renews in time */
	return quarter > LEASE_MIN_ROUND ? quarter : LEASE_MIN_ROUND;
}

int cl_decode_lease_ttl(json_t *root, uint32_t *ttl_ms)
{
	json_t *v = json_member(json_member(root, "properties"), "registry.leasettlms");
	unsigned long long n = 0;
	const char *s;
	char *end;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return ARTEMIS_E_PROTO;
		n = (unsigned long long)json_integer_value(v);
	} else if (json_is_string(v) && (s = json_string_value(v))[0] >= '0' && s[0] <= '9' &&
	           json_string_length(v) <= 10) {
		n = strtoull(s, &end, 10);
		if (*end != '\0')
			return ARTEMIS_E_PROTO;
	} else {
		return ARTEMIS_E_PROTO;
	}
	if (n < LEASE_MIN_MS || n > LEASE_MAX_MS)
		return ARTEMIS_E_PROTO;
	*ttl_ms = (uint32_t)n;
	return 0;
}

/* The round timer at the interval ttl gives, if that differs. */
static void lease__apply(cl_t *c, uint32_t ttl_ms)
{
	uint32_t ms = cl_lease_interval(ttl_ms, c->conf.heartbeat_explicit_ms);
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	if (ms == c->conf.heartbeat_interval_ms || c->reg.timer == NULL)
		return;
	c->conf.heartbeat_interval_ms = ms;
	event_add(c->reg.timer, &tv); /* a pending timer is rescheduled */
}

static void lease__done(cl_req_t *r, void *arg)
{
	cl_t *c = r->c;
	uint32_t ttl = 0;
	json_t *root;

	(void)arg;
	c->reg.ttl_asking = false;
	if (r->rc < 0)
		return; /* no node answered: asked again at the next round */
	snprintf(c->reg.ttl_node, sizeof(c->reg.ttl_node), "%s", r->target.url);
	root = r->status == 200 ? cl_json_parse(r->resp.body.data, r->resp.body.len) : NULL;
	if (cl_decode_lease_ttl(root, &ttl) == 0)
		lease__apply(c, ttl);
	json_decref(root);
}

void cl_lease_learn(cl_t *c, const char *url)
{
	char cur[CL_URL_MAX] = "";
	bool kept;
	cl_req_t *r;

	if (c->conf.lease_ttl_set || c->reg.ttl_asking)
		return;
	pthread_mutex_lock(&c->lock);
	kept = c->reg.set.n > 0;
	if (url == NULL && c->current[CL_P_REGISTRY] >= 0)
		snprintf(cur, sizeof(cur), "%s", c->nodes[c->current[CL_P_REGISTRY]].url);
	pthread_mutex_unlock(&c->lock);
	if (url == NULL)
		url = cur;
	if (!kept || (c->reg.ttl_node[0] && (url[0] == '\0' || strcmp(url, c->reg.ttl_node) == 0)))
		return; /* nothing to keep alive, or this node's TTL is known */
	r = cl_req_new(c, CL_P_REGISTRY, 0, "GET", LEASE_PATH_CONFIG, NULL, 0);
	if (r == NULL)
		return;
	r->done = lease__done;
	c->reg.ttl_asking = true;
	cl_req_submit(r);
}
