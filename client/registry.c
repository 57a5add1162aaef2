/*
 * registry.c - registering instances and keeping them alive (API.md §6.2).
 *
 * artemis_register() adds the instance to the client's set and POSTs
 * register.json at once (Java's client only unregisters and waits for a
 * heartbeat to come back "data-not-found"; registering directly tells the
 * caller at once whether the node accepted it).  From then on the loop
 * renews every instance of the set each heartbeat interval (lease_ttl/4
 * by default: a renewal before a third of the TTL has passed):
 *
 *   - over the WebSocket /artemis/websocket/registry/heartbeat: the set cut
 *     into messages of at most [ws_message_bytes] (below the nodes'
 *     [websocket] max_message_bytes), each instance in its heartbeat form
 *     (the registry keys and url: a heartbeat never updates data); one
 *     answer per message, in order;
 *   - over HTTP heartbeat.json while no session is open (and for the
 *     batches a session lost before they were answered).
 *
 * An answer's failedInstances with "data-not-found" or "unknown" are
 * registered again (register.json with the whole instance).  A WebSocket
 * answer is cut to 8 KB for Java clients (the node lists the re-registrable
 * failures first), so when a long answer may have been cut, the batch is
 * sent again over HTTP, whose answer is complete.  A "node down" answer,
 * or an answer later than the request timeout, drops the session: the next
 * one goes to another node (nodes.c), and the batch goes there over HTTP.
 *
 * Instances leave the set with artemis_unregister() (unregister.json) and
 * all of them at artemis_client_free().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "artemis/clock.h"
#include "client_int.h"

#define REG_PATH_REGISTER   "/artemis/api/registry/register.json"
#define REG_PATH_HEARTBEAT  "/artemis/api/registry/heartbeat.json"
#define REG_PATH_UNREGISTER "/artemis/api/registry/unregister.json"
#define REG_CUT_SUSPECT     6000       /* a WebSocket answer this long may be cut */
#define REG_HTTP_BATCH      (1u << 20) /* bytes of instances per HTTP request */

static bool reg__reregistrable(const char *code)
{
	return strcmp(code, "data-not-found") == 0 || strcmp(code, "unknown") == 0;
}

static void reg__batch_free(cl_batch_t *b)
{
	if (b) {
		buf_free(&b->body);
		free(b);
	}
}

/* A batch the closing client cancelled before its answer. */
static void reg__batch_drop(void *arg)
{
	reg__batch_free(arg);
}

/* ---- the keep-alive rounds (loop thread) ---------------------------------------- */

static void reg__answer(cl_t *c, cl_batch_t *b, json_t *root, size_t text_len, bool via_ws);
static void reg__http(cl_t *c, cl_batch_t *b);

/* Register again the instances of the set that failed with a code asking
 * for it. */
static void reg__rereg_done(cl_req_t *r, void *arg)
{
	size_t count = (size_t)(uintptr_t)arg, nfailed = 0;
	cl_failed_t *failed = NULL;
	cl_status_t st;

	if (r->rc == 0 && cl_decode_registry(r->json, &st, &failed, &nfailed) == 0 &&
	    strcmp(st.status, "fail") != 0)
		cl_stat_add(r->c, ARTEMIS_STAT_REREGISTERS,
		            count - (nfailed < count ? nfailed : count));
	free(failed);
}

static void reg__send_register(cl_t *c, buf_t *body, size_t count)
{
	cl_req_t *r;

	buf_puts(body, "]}");
	if (!buf_error(body) &&
	    (r = cl_req_new(c, CL_P_REGISTRY, CL_REQ_JAVA, "POST", REG_PATH_REGISTER, body->data,
	                    body->len)) != NULL) {
		r->done = reg__rereg_done;
		r->arg = (void *)(uintptr_t)count;
		cl_req_submit(r);
	}
	buf_reset(body);
}

static void reg__reregister(cl_t *c, const cl_failed_t *f, size_t n)
{
	buf_t body = {0};
	size_t count = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t k = 0; k < n; k++) {
		cl_inst_t *i;
		if (!reg__reregistrable(f[k].code) ||
		    (i = cl_map_get(&c->reg.set, f[k].key)) == NULL)
			continue; /* unregistered meanwhile */
		if (body.len > REG_HTTP_BATCH) {
			pthread_mutex_unlock(&c->lock);
			reg__send_register(c, &body, count);
			pthread_mutex_lock(&c->lock);
			count = 0;
		}
		buf_puts(&body, count ? "," : "{\"instances\":[");
		buf_append(&body, i->json, i->json_len);
		count++;
	}
	pthread_mutex_unlock(&c->lock);
	if (count)
		reg__send_register(c, &body, count);
	buf_free(&body);
}

static void reg__answer(cl_t *c, cl_batch_t *b, json_t *root, size_t text_len, bool via_ws)
{
	cl_failed_t *failed = NULL;
	size_t nfailed = 0, ok;
	cl_status_t st;

	if (cl_decode_registry(root, &st, &failed, &nfailed) < 0) {
		cl_stat_add(c, ARTEMIS_STAT_HEARTBEAT_FAILURES, b->count);
		return;
	}
	if (strcmp(st.status, "success") == 0) {
		cl_stat_add(c, ARTEMIS_STAT_HEARTBEATS, b->count);
		if (!via_ws)
			cl_stat_add(c, ARTEMIS_STAT_HEARTBEATS_HTTP, b->count);
	} else if (strcmp(st.status, "partial_fail") == 0) {
		if (via_ws && text_len >= REG_CUT_SUSPECT && nfailed < b->count) {
			/* maybe cut to 8 KB: ask again over HTTP for the whole list */
			cl_batch_t *again = calloc(1, sizeof(*again));
			if (again && buf_append(&again->body, b->body.data, b->body.len) == 0) {
				again->count = b->count;
				reg__http(c, again);
			} else {
				reg__batch_free(again);
			}
			free(failed);
			return;
		}
		ok = b->count - (nfailed < b->count ? nfailed : b->count);
		cl_stat_add(c, ARTEMIS_STAT_HEARTBEATS, ok);
		if (!via_ws)
			cl_stat_add(c, ARTEMIS_STAT_HEARTBEATS_HTTP, ok);
		cl_stat_add(c, ARTEMIS_STAT_HEARTBEAT_FAILURES, b->count - ok);
		reg__reregister(c, failed, nfailed);
	} else {
		cl_stat_add(c, ARTEMIS_STAT_HEARTBEAT_FAILURES, b->count);
	}
	free(failed);
}

static void reg__http_done(cl_req_t *r, void *arg)
{
	cl_t *c = r->c;
	cl_batch_t *b = arg;

	c->reg.http_inflight--;
	if (r->rc < 0)
		cl_stat_add(c, ARTEMIS_STAT_HEARTBEAT_FAILURES, b->count);
	else
		reg__answer(c, b, r->json, r->resp.body.len, false);
	reg__batch_free(b);
}

/* Heartbeat a batch over HTTP (takes b). */
static void reg__http(cl_t *c, cl_batch_t *b)
{
	cl_req_t *r = cl_req_new(c, CL_P_REGISTRY, CL_REQ_JAVA, "POST", REG_PATH_HEARTBEAT,
	                         b->body.data, b->body.len);

	if (r == NULL) {
		cl_stat_add(c, ARTEMIS_STAT_HEARTBEAT_FAILURES, b->count);
		reg__batch_free(b);
		return;
	}
	r->done = reg__http_done;
	r->arg = b;
	r->drop = reg__batch_drop;
	c->reg.http_inflight++;
	cl_req_submit(r);
}

/* The session's unanswered batches go over HTTP. */
static void reg__resend_lost(cl_t *c)
{
	cl_batch_t *b = c->reg.head, *next;

	c->reg.head = c->reg.tail = NULL;
	for (; b; b = next) {
		next = b->next;
		b->next = NULL;
		reg__http(c, b);
	}
}

/* Cut the set into batches of heartbeat forms (under the lock). */
static cl_batch_t *reg__batches(cl_t *c)
{
	cl_batch_t *head = NULL, *b = NULL;
	size_t pos = 0, max = c->conf.ws_message_bytes - 32;
	cl_map_ent_t *e = NULL;

	pthread_mutex_lock(&c->lock);
	while (cl_map_next(&c->reg.set, &pos, &e)) {
		cl_inst_t *i = e->val;
		if (b == NULL || b->body.len + i->hb_len + 1 > max) {
			if (b)
				buf_puts(&b->body, "]}");
			cl_batch_t *nb = calloc(1, sizeof(*nb));
			if (nb == NULL)
				break;
			nb->next = head;
			head = b = nb;
			buf_reserve(&b->body, max + 16);
			buf_puts(&b->body, "{\"instances\":[");
		} else {
			buf_puts(&b->body, ",");
		}
		buf_append(&b->body, i->hb, i->hb_len);
		b->count++;
	}
	pthread_mutex_unlock(&c->lock);
	if (b)
		buf_puts(&b->body, "]}");
	return head;
}

static void reg__round(cl_t *c)
{
	cl_reg_t *g = &c->reg;
	uint64_t now = clock_mono_ms();
	cl_batch_t *b, *next;

	cl_lease_learn(c, NULL);
	if (g->head) {
		if (now - g->head->sent_ms <= c->conf.request_timeout_ms)
			return; /* the last round is still being answered */
		cl_ws_close(&g->ws, ARTEMIS_E_TIMEOUT, "heartbeat answer late");
		reg__resend_lost(c);
	}
	if (g->http_inflight)
		return;
	for (b = reg__batches(c); b; b = next) {
		next = b->next;
		b->next = NULL;
		if (buf_error(&b->body)) {
			cl_stat_add(c, ARTEMIS_STAT_HEARTBEAT_FAILURES, b->count);
			reg__batch_free(b);
			continue;
		}
		if (g->ws.state != CL_WS_OPEN) {
			reg__http(c, b);
			continue;
		}
		b->sent_ms = now;
		if (g->tail)
			g->tail->next = b;
		else
			g->head = b;
		g->tail = b;
		/* a failed send closes the session; its callback resends the queue */
		cl_ws_send(&g->ws, CL_WS_TEXT, b->body.data, b->body.len);
	}
	if (c->conf.websocket && g->ws.state == CL_WS_IDLE)
		cl_ws_connect(&g->ws);
}

static void reg__on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reg__round(arg);
}

static bool reg__ws_wanted(cl_ws_t *ws)
{
	return cl_ws_needed(ws->c, &ws->c->reg.set.n);
}

static void reg__ws_open(cl_ws_t *ws)
{
	/* a new session (after a failover, too): renew everything now */
	cl_lease_learn(ws->c, ws->target.url);
	reg__round(ws->c);
}

static void reg__ws_text(cl_ws_t *ws, const char *msg, size_t len)
{
	cl_t *c = ws->c;
	cl_batch_t *b = c->reg.head;
	json_t *root;

	if (b == NULL)
		return; /* nothing asked: not an answer of ours */
	c->reg.head = b->next;
	if (c->reg.head == NULL)
		c->reg.tail = NULL;
	b->next = NULL;
	root = cl_json_parse(msg, len);
	cl_status_t st;
	cl_status_of(root, &st);
	if (root == NULL || st.status[0] == '\0' || cl_status_node_down(&st)) {
		/* garbage or "node down": leave this node, renew elsewhere */
		json_decref(root);
		cl_ws_close(ws, root ? ARTEMIS_E_SERVER : ARTEMIS_E_PROTO, "bad heartbeat answer");
		if (c->reg.tail)
			c->reg.tail->next = b;
		else
			c->reg.head = b;
		c->reg.tail = b;
		reg__resend_lost(c);
		return;
	}
	reg__answer(c, b, root, len, true);
	json_decref(root);
	reg__batch_free(b);
}

static void reg__ws_closed(cl_ws_t *ws, int rc, const char *why)
{
	(void)rc;
	(void)why;
	reg__resend_lost(ws->c);
}

static const cl_ws_cb_t reg__ws_cb = {
    .wanted = reg__ws_wanted,
    .open = reg__ws_open,
    .text = reg__ws_text,
    .closed = reg__ws_closed,
};

int cl_reg_init(cl_t *c)
{
	memset(&c->reg, 0, sizeof(c->reg));
	return 0;
}

void cl_reg_loop_start(cl_t *c)
{
	uint32_t ms = c->conf.heartbeat_interval_ms;
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

	cl_ws_init(&c->reg.ws, c, CL_P_REGISTRY, CL_WS_HEARTBEAT, &reg__ws_cb);
	c->reg.timer = event_new(c->base, -1, EV_PERSIST, reg__on_timer, c);
	if (c->reg.timer)
		event_add(c->reg.timer, &tv);
}

void cl_reg_wake(cl_t *c)
{
	cl_lease_learn(c, NULL);
	if (c->conf.websocket && c->reg.ws.state == CL_WS_IDLE && reg__ws_wanted(&c->reg.ws))
		cl_ws_connect(&c->reg.ws);
}

void cl_reg_tick(cl_t *c, uint64_t now)
{
	cl_ws_tick(&c->reg.ws, now);
}

void cl_reg_loop_stop(cl_t *c)
{
	cl_batch_t *b, *next;

	cl_ws_free(&c->reg.ws);
	if (c->reg.timer)
		event_free(c->reg.timer);
	c->reg.timer = NULL;
	for (b = c->reg.head; b; b = next) {
		next = b->next;
		reg__batch_free(b);
	}
	c->reg.head = c->reg.tail = NULL;
}

void cl_reg_free(cl_t *c)
{
	size_t pos = 0;
	cl_map_ent_t *e = NULL;

	while (cl_map_next(&c->reg.set, &pos, &e))
		cl_inst_release(e->val);
	cl_map_free(&c->reg.set);
}

/* ---- the calls (any thread) --------------------------------------------------- */

/* POST instances' JSON to a registry path, blocking.  0 when every one was
 * accepted; otherwise *failed lists the refused (free()). */
static int reg__post(cl_t *c, const char *path, cl_inst_t *const *list, size_t n, uint64_t deadline,
                     cl_failed_t **failed, size_t *nfailed, cl_status_t *st, cl_err_t *err)
{
	buf_t body = {0};
	json_t *root;
	int rc;

	*failed = NULL;
	*nfailed = 0;
	buf_puts(&body, "{\"instances\":[");
	for (size_t k = 0; k < n; k++) {
		if (k)
			buf_puts(&body, ",");
		buf_append(&body, list[k]->json, list[k]->json_len);
	}
	buf_puts(&body, "]}");
	if (buf_error(&body)) {
		buf_free(&body);
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	}
	rc = cl_call_java(c, CL_P_REGISTRY, path, body.data, body.len, deadline, &root, st, err);
	buf_free(&body);
	if (rc < 0)
		return rc;
	rc = cl_decode_registry(root, st, failed, nfailed);
	json_decref(root);
	if (rc < 0)
		return cl_err(err, rc, "%s: unexpected answer", path);
	if (strcmp(st->status, "success") == 0)
		return 0;
	if (strcmp(st->status, "partial_fail") == 0 && *nfailed > 0) {
		if (err)
			snprintf(err->server_code, sizeof(err->server_code), "%s",
			         (*failed)[0].code);
		return cl_err(err, ARTEMIS_E_SERVER, "%s: %s: %s", path, (*failed)[0].code,
		              (*failed)[0].message);
	}
	return cl_refused(err, path, st);
}

static int reg__freeze_all(cl_t *c, const artemis_instance_t *const *list, size_t n, unsigned flags,
                           cl_inst_t **out, cl_err_t *err)
{
	char region[CL_REGION_MAX + 1], zone[CL_REGION_MAX + 1];
	int rc = 0;

	for (size_t k = 0; k < n; k++)
		out[k] = NULL;
	if (list == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "instance list is NULL");
	for (size_t k = 0; k < n; k++)
		if (list[k] == NULL)
			return cl_err(err, ARTEMIS_E_INVAL, "instance %zu is NULL", k);
	rc = cl_deployment(c, region, zone, err);
	if (rc < 0)
		return rc;
	for (size_t k = 0; k < n; k++) {
		rc = cl_inst_freeze(list[k], region, zone, flags, &out[k], err);
		if (rc < 0) {
			for (size_t j = 0; j < k; j++) {
				cl_inst_release(out[j]);
				out[j] = NULL;
			}
			return rc;
		}
	}
	return 0;
}

/* Add to the set (replacing equal keys); E_LIMIT beyond max_instances. */
static int reg__keep(cl_t *c, cl_inst_t **list, size_t n, cl_err_t *err)
{
	size_t fresh = 0;
	void *old;

	pthread_mutex_lock(&c->lock);
	if (c->closing) {
		pthread_mutex_unlock(&c->lock);
		return cl_err(err, ARTEMIS_E_STATE, "the client is closing");
	}
	for (size_t k = 0; k < n; k++)
		fresh += cl_map_get(&c->reg.set, list[k]->key) == NULL;
	if (c->reg.set.n + fresh > c->conf.max_instances) {
		pthread_mutex_unlock(&c->lock);
		return cl_err(err, ARTEMIS_E_LIMIT, "more than %u instances kept alive",
		              c->conf.max_instances);
	}
	for (size_t k = 0; k < n; k++) {
		if (cl_map_put(&c->reg.set, list[k]->key, cl_inst_retain(list[k]), &old) < 0) {
			cl_inst_release(list[k]);
			pthread_mutex_unlock(&c->lock);
			return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
		}
		cl_inst_release(old);
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Drop a key from the set if it still holds this very instance. */
static void reg__drop(cl_t *c, cl_inst_t *i)
{
	pthread_mutex_lock(&c->lock);
	if (cl_map_get(&c->reg.set, i->key) == i)
		cl_inst_release(cl_map_del(&c->reg.set, i->key));
	pthread_mutex_unlock(&c->lock);
}

int artemis_register_many(artemis_client_t *c, const artemis_instance_t *const *list, size_t n,
                          artemis_error_t *err)
{
	cl_inst_t **fz;
	cl_failed_t *failed = NULL;
	size_t nfailed = 0;
	cl_status_t st;
	int rc;

	cl_err_clear(err);
	memset(&st, 0, sizeof(st));
	if (c == NULL || n == 0 || n > 1000000)
		return cl_err(err, ARTEMIS_E_INVAL, "client NULL or no instances");
	fz = calloc(n, sizeof(cl_inst_t *));
	if (fz == NULL)
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	if ((rc = reg__freeze_all(c, list, n, CL_FREEZE_HB | CL_FREEZE_UP, fz, err)) < 0 ||
	    (rc = cl_loop_ensure(c, err)) < 0 || (rc = reg__keep(c, fz, n, err)) < 0)
		goto out;
	cl_wake(c, CL_WAKE_REG);
	rc = reg__post(c, REG_PATH_REGISTER, fz, n, 0, &failed, &nfailed, &st, err);
	if (rc == ARTEMIS_E_SERVER && nfailed > 0) {
		/* refused items leave the set; the others stay registered */
		for (size_t k = 0; k < n; k++)
			for (size_t f = 0; f < nfailed; f++)
				if (strcmp(fz[k]->key, failed[f].key) == 0)
					reg__drop(c, fz[k]);
	} else if (rc == ARTEMIS_E_SERVER && !cl_status_node_down(&st)) {
		for (size_t k = 0; k < n; k++)
			reg__drop(c, fz[k]);
	}
	/* a transport failure or a node not up keeps them: the loop registers
	 * them once a node answers */
out:
	for (size_t k = 0; k < n; k++)
		cl_inst_release(fz[k]);
	free(fz);
	free(failed);
	return rc;
}

int artemis_register(artemis_client_t *c, const artemis_instance_t *i, artemis_error_t *err)
{
	const artemis_instance_t *list[1] = {i};

	if (i == NULL) {
		cl_err_clear(err);
		return cl_err(err, ARTEMIS_E_INVAL, "instance is NULL");
	}
	return artemis_register_many(c, list, 1, err);
}

/* One registry request for one instance (frozen with flags; first dropped
 * from the set when drop).  A heartbeat's data-not-found is ARTEMIS_E_NOTFOUND. */
static int reg__single(cl_t *c, const char *path, const artemis_instance_t *i, unsigned flags,
                       bool drop, artemis_error_t *err)
{
	const artemis_instance_t *list[1] = {i};
	cl_inst_t *fz[1];
	cl_failed_t *failed = NULL;
	size_t nfailed = 0;
	cl_status_t st;
	int rc = reg__freeze_all(c, list, 1, flags, fz, err);

	if (rc < 0)
		return rc;
	if (drop) {
		pthread_mutex_lock(&c->lock);
		cl_inst_release(cl_map_del(&c->reg.set, fz[0]->key));
		pthread_mutex_unlock(&c->lock);
	}
	rc = reg__post(c, path, fz, 1, 0, &failed, &nfailed, &st, err);
	if (rc == ARTEMIS_E_SERVER && nfailed && strcmp(failed[0].code, "data-not-found") == 0) {
		rc = ARTEMIS_E_NOTFOUND;
		if (err)
			err->code = rc;
	}
	cl_inst_release(fz[0]);
	free(failed);
	return rc;
}

int artemis_unregister(artemis_client_t *c, const artemis_instance_t *i, artemis_error_t *err)
{
	cl_err_clear(err);
	if (c == NULL || i == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "client or instance is NULL");
	return reg__single(c, REG_PATH_UNREGISTER, i, 0, true, err);
}

int artemis_registry_send(artemis_client_t *c, artemis_registry_op_t op,
                          const artemis_instance_t *i, artemis_error_t *err)
{
	static const char *const paths[] = {REG_PATH_REGISTER, REG_PATH_HEARTBEAT,
	                                    REG_PATH_UNREGISTER};

	cl_err_clear(err);
	if (c == NULL || i == NULL || (unsigned)op > ARTEMIS_OP_UNREGISTER)
		return cl_err(err, ARTEMIS_E_INVAL, "client, instance or operation invalid");
	return reg__single(c, paths[op], i, op == ARTEMIS_OP_REGISTER ? CL_FREEZE_UP : 0, false,
	                   err);
}

void cl_reg_unregister_all(cl_t *c)
{
	cl_inst_t **all;
	size_t n = 0, pos = 0, start = 0;
	cl_map_ent_t *e = NULL;
	uint64_t deadline = clock_mono_ms() + c->conf.request_timeout_ms;

	pthread_mutex_lock(&c->lock);
	all = calloc(c->reg.set.n + 1, sizeof(cl_inst_t *));
	while (all && cl_map_next(&c->reg.set, &pos, &e))
		all[n++] = e->val; /* the references move to all[] */
	if (all) {
		cl_map_free(&c->reg.set);
	}
	pthread_mutex_unlock(&c->lock);
	while (start < n && clock_mono_ms() < deadline) {
		size_t bytes = 0, k = start;
		cl_failed_t *failed = NULL;
		size_t nfailed;
		cl_status_t st;
		for (; k < n && bytes < REG_HTTP_BATCH; k++)
			bytes += all[k]->json_len;
		reg__post(c, REG_PATH_UNREGISTER, all + start, k - start, deadline, &failed,
		          &nfailed, &st, NULL);
		free(failed);
		start = k;
	}
	for (size_t k = 0; k < n; k++)
		cl_inst_release(all[k]);
	free(all);
}
