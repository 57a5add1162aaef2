/*
 * nodes.c - the address repository (API.md §6.1): the node URLs the
 * options give (seeds), the nodes the cluster reports up
 * (/artemis/api/cluster/up-registry-nodes.json, up-discovery-nodes.json,
 * merged by cl_nodes_update), which one is in use, and which are backing
 * off after a failure.
 *
 * As the Java client: a node is kept in use until it fails (sticky, per
 * purpose), then a random usable one is taken, preferring the cluster's
 * list over the seeds (a seed may be a VIP).  A failed node is skipped for
 * 250 ms, doubling on each further failure up to [backoff_max_ms]; one
 * success clears that.  With every node backing off, a call still tries
 * the one due first (a call never fails without trying), while WebSocket
 * reconnects wait for it.
 *
 * Host names are resolved with getaddrinfo when a node is first used and
 * again each minute, an IPv4 address preferred (blocking: give IP
 * addresses where DNS may be slow).
 * Everything here runs under c->lock except the resolution itself.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "artemis/clock.h"
#include "client_int.h"

#define NODES_BACKOFF_MIN_MS 250
#define NODES_RESOLVE_MS     60000

int cl_node_parse(const char *url, cl_node_t *n, cl_err_t *err)
{
	const char *p = url, *auth, *end, *colon = NULL;
	size_t hl;
	long port = 80;

	memset(n, 0, sizeof(*n));
	if (url == NULL || strlen(url) >= CL_URL_MAX)
		return cl_err(err, ARTEMIS_E_INVAL, "node URL missing or too long");
	if (strncasecmp(p, "https://", 8) == 0)
		return cl_err(err, ARTEMIS_E_INVAL, "%s: https is not supported", url);
	if (strncasecmp(p, "http://", 7) != 0)
		return cl_err(err, ARTEMIS_E_INVAL, "%s: not an http:// URL", url);
	auth = p + 7;
	end = auth + strcspn(auth, "/?#");
	if (*end == '?' || *end == '#' || strpbrk(auth, "?# \t\r\n@") != NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "%s: a node URL is http://host[:port][/path]",
		              url);
	if (*auth == '[') { /* [v6]:port */
		const char *rb = memchr(auth, ']', (size_t)(end - auth));
		if (rb == NULL)
			return cl_err(err, ARTEMIS_E_INVAL, "%s: bad IPv6 address", url);
		hl = (size_t)(rb - auth - 1);
		memcpy(n->host, auth + 1, hl < CL_HOST_MAX ? hl : 0);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 < end && !colon)
			return cl_err(err, ARTEMIS_E_INVAL, "%s: bad IPv6 address", url);
	} else {
		colon = memchr(auth, ':', (size_t)(end - auth));
		hl = (size_t)((colon ? colon : end) - auth);
		if (hl < CL_HOST_MAX)
			memcpy(n->host, auth, hl);
	}
	if (hl == 0 || hl >= CL_HOST_MAX)
		return cl_err(err, ARTEMIS_E_INVAL, "%s: no host", url);
	n->host[hl] = '\0';
	if (colon) {
		char *e;
		port = strtol(colon + 1, &e, 10);
		if (e != end || colon + 1 == end || port < 1 || port > 65535)
			return cl_err(err, ARTEMIS_E_INVAL, "%s: bad port", url);
	}
	n->port = (uint16_t)port;
	snprintf(n->prefix, sizeof(n->prefix), "%s", end);
	for (size_t l = strlen(n->prefix); l > 0 && n->prefix[l - 1] == '/'; l--)
		n->prefix[l - 1] = '\0';
	cl_lower(n->host);
	snprintf(n->hostport, sizeof(n->hostport), strchr(n->host, ':') ? "[%s]:%u" : "%s:%u",
	         n->host, (unsigned)n->port);
	if ((size_t)snprintf(n->url, sizeof(n->url), "http://%s%s", n->hostport, n->prefix) >=
	    sizeof(n->url))
		return cl_err(err, ARTEMIS_E_INVAL, "%s: too long", url);
	return 0;
}

static int nodes__find(const cl_t *c, const char *url)
{
	for (int i = 0; i < c->nnodes; i++)
		if (strcmp(c->nodes[i].url, url) == 0)
			return i;
	return -1;
}

static bool nodes__skipped(const cl_node_t *n, const uint64_t *skip, size_t nskip)
{
	uint64_t h = cl_hash(n->url);

	for (size_t i = 0; i < nskip; i++)
		if (skip[i] == h)
			return true;
	return false;
}

/* The node to use, or -1 (under lock). */
static int nodes__choose(cl_t *c, int purpose, const uint64_t *skip, size_t nskip, uint64_t now,
                         bool *backing_off)
{
	int tier[2][CL_MAX_NODES], ntier[2] = {0, 0}, late = -1, cur = c->current[purpose];
	bool listed_any = false;

	for (int i = 0; i < c->nnodes; i++)
		if (c->nodes[i].listed & (1u << purpose) && c->nodes[i].dead_until_ms <= now)
			listed_any = true;
	for (int i = 0; i < c->nnodes; i++) {
		const cl_node_t *n = &c->nodes[i];
		if (nodes__skipped(n, skip, nskip))
			continue;
		if (n->dead_until_ms > now) {
			if (late < 0 || n->dead_until_ms < c->nodes[late].dead_until_ms)
				late = i;
			continue;
		}
		int t = !listed_any || (n->listed & (1u << purpose)) ? 0 : 1;
		tier[t][ntier[t]++] = i;
	}
	*backing_off = false;
	if (cur >= 0 && cur < c->nnodes && !nodes__skipped(&c->nodes[cur], skip, nskip) &&
	    c->nodes[cur].dead_until_ms <= now &&
	    (!listed_any || (c->nodes[cur].listed & (1u << purpose))))
		return cur;
	for (int t = 0; t < 2; t++) {
		if (ntier[t]) {
			int i = tier[t][cl_xorshift(&c->rng) % (uint64_t)ntier[t]];
			c->current[purpose] = i;
			return i;
		}
	}
	*backing_off = late >= 0;
	return late;
}

static int nodes__resolve(cl_t *c, int idx, uint64_t now, cl_err_t *err)
{
	char host[CL_HOST_MAX], port[8], url[CL_URL_MAX];
	struct addrinfo hints = {0}, *res = NULL, *ai;
	bool have = c->nodes[idx].addrlen > 0;
	int rc;

	if (have && now - c->nodes[idx].resolved_ms < NODES_RESOLVE_MS)
		return 0;
	snprintf(host, sizeof(host), "%s", c->nodes[idx].host);
	snprintf(port, sizeof(port), "%u", (unsigned)c->nodes[idx].port);
	snprintf(url, sizeof(url), "%s", c->nodes[idx].url);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	pthread_mutex_unlock(&c->lock);
	rc = getaddrinfo(host, port, &hints, &res);
	pthread_mutex_lock(&c->lock);
	idx = nodes__find(c, url);
	if (idx < 0) {
		freeaddrinfo(res);
		return cl_err(err, ARTEMIS_E_CONNECT, "%s: no longer a node", url);
	}
	/* an IPv4 address first: "localhost" may give ::1 first, and the nodes
	 * listen on 0.0.0.0 by default */
	for (ai = res; ai && ai->ai_family != AF_INET; ai = ai->ai_next)
		;
	ai = ai ? ai : res;
	if (rc != 0 || ai == NULL || ai->ai_addrlen > sizeof(struct sockaddr_storage)) {
		if (res)
			freeaddrinfo(res);
		if (have) /* keep the last address while DNS fails */
			return 0;
		return cl_err(err, ARTEMIS_E_CONNECT, "%s: cannot resolve %s: %s", url, host,
		              rc ? gai_strerror(rc) : "no address");
	}
	memcpy(&c->nodes[idx].addr, ai->ai_addr, ai->ai_addrlen);
	c->nodes[idx].addrlen = ai->ai_addrlen;
	c->nodes[idx].resolved_ms = now;
	freeaddrinfo(res);
	return 0;
}

int cl_nodes_pick(cl_t *c, int purpose, const uint64_t *skip, size_t nskip, bool honour_backoff,
                  cl_target_t *t, uint64_t *wait_ms, cl_err_t *err)
{
	uint64_t now = clock_mono_ms();
	bool backing_off;
	int idx, rc;

	pthread_mutex_lock(&c->lock);
	idx = nodes__choose(c, purpose, skip, nskip, now, &backing_off);
	if (idx < 0) {
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	if (backing_off && honour_backoff) {
		if (wait_ms)
			*wait_ms = c->nodes[idx].dead_until_ms - now;
		pthread_mutex_unlock(&c->lock);
		return -EAGAIN;
	}
	snprintf(t->url, sizeof(t->url), "%s", c->nodes[idx].url);
	rc = nodes__resolve(c, idx, now, err);
	if (rc == 0) {
		idx = nodes__find(c, t->url);
		snprintf(t->hostport, sizeof(t->hostport), "%s", c->nodes[idx].hostport);
		snprintf(t->prefix, sizeof(t->prefix), "%s", c->nodes[idx].prefix);
		t->addr = c->nodes[idx].addr;
		t->addrlen = c->nodes[idx].addrlen;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void cl_nodes_failed(cl_t *c, const char *url)
{
	pthread_mutex_lock(&c->lock);
	int i = nodes__find(c, url);
	if (i >= 0) {
		cl_node_t *n = &c->nodes[i];
		n->backoff_ms = n->backoff_ms ? n->backoff_ms * 2 : NODES_BACKOFF_MIN_MS;
		if (n->backoff_ms > c->conf.backoff_max_ms)
			n->backoff_ms = c->conf.backoff_max_ms;
		n->dead_until_ms = clock_mono_ms() + n->backoff_ms;
		for (int p = 0; p < CL_P_COUNT; p++)
			if (c->current[p] == i)
				c->current[p] = -1;
	}
	pthread_mutex_unlock(&c->lock);
	cl_stat_add(c, ARTEMIS_STAT_NODE_FAILURES, 1);
}

void cl_nodes_ok(cl_t *c, int purpose, const char *url)
{
	pthread_mutex_lock(&c->lock);
	int i = nodes__find(c, url);
	if (i >= 0) {
		c->nodes[i].backoff_ms = 0;
		c->nodes[i].dead_until_ms = 0;
		if (c->current[purpose] < 0)
			c->current[purpose] = i;
	}
	pthread_mutex_unlock(&c->lock);
}

int cl_nodes_count(cl_t *c)
{
	pthread_mutex_lock(&c->lock);
	int n = c->nnodes;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void cl_nodes_update(cl_t *c, int purpose, char **urls, size_t n)
{
	char cur[CL_P_COUNT][CL_URL_MAX];
	cl_node_t tmp;
	int w = 0;

	if (n == 0) /* an empty or failed answer keeps the old list (Java) */
		return;
	pthread_mutex_lock(&c->lock);
	for (int p = 0; p < CL_P_COUNT; p++)
		snprintf(cur[p], sizeof(cur[p]), "%s",
		         c->current[p] >= 0 ? c->nodes[c->current[p]].url : "");
	for (int i = 0; i < c->nnodes; i++)
		c->nodes[i].listed &= (uint8_t) ~(1u << purpose);
	for (size_t k = 0; k < n; k++) {
		if (cl_node_parse(urls[k], &tmp, NULL) < 0)
			continue;
		int i = nodes__find(c, tmp.url);
		if (i < 0 && c->nnodes < CL_MAX_NODES) {
			i = c->nnodes++;
			c->nodes[i] = tmp;
		}
		if (i >= 0)
			c->nodes[i].listed |= (uint8_t)(1u << purpose);
	}
	for (int i = 0; i < c->nnodes; i++) /* forget learnt nodes no list names */
		if (c->nodes[i].seed || c->nodes[i].listed)
			c->nodes[w++] = c->nodes[i];
	c->nnodes = w;
	for (int p = 0; p < CL_P_COUNT; p++)
		c->current[p] = cur[p][0] ? nodes__find(c, cur[p]) : -1;
	pthread_mutex_unlock(&c->lock);
}

int artemis_client_node(artemis_client_t *c, char *buf, size_t len)
{
	int i;

	if (c == NULL || buf == NULL || len == 0)
		return ARTEMIS_E_INVAL;
	pthread_mutex_lock(&c->lock);
	i = c->current[CL_P_REGISTRY] >= 0 ? c->current[CL_P_REGISTRY] : 0;
	snprintf(buf, len, "%s", c->nnodes ? c->nodes[i].url : "");
	pthread_mutex_unlock(&c->lock);
	return 0;
}
