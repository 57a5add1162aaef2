/*
 * service.c - artemis_service_t: an immutable snapshot of one service (its
 * instances, metadata, logic instances and route rules), and the choice of
 * an instance by its route rules.
 *
 * Route rules arrive as API.md §4.10 describes them; the server only
 * supplies data and the client balances.  The processing is the Java
 * client's RouteRules.newRouteRules: a group's members are its explicit
 * instanceIds, the instances the node resolved for it (canary), and every
 * instance whose group key starts with the groupKey followed by '/';
 * groups without members are dropped, rules without groups too; weights
 * are clamped (null or < 0 -> 5, > 10000 -> 10000); a synthetic
 * default-route-rule with one group of every instance (weight 5) is added
 * unless the service has a rule of that name.
 *
 * The choice (artemis_service_choose) runs under the snapshot's own mutex:
 * smooth weighted round robin across groups (nginx's), round robin inside
 * a group, instances not up skipped.  A new snapshot starts its counters
 * afresh.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "artemis/codec.h"
#include "client_int.h"

#define SVC_MAX_RULES     64
#define SVC_MAX_GROUPS    1024 /* per rule */
#define SVC_DEFAULT_RULE  "default-route-rule"
#define SVC_DEFAULT_GROUP "default-group-key"
#define SVC_CANARY_RULE   "canary-route-rule"

/* ---- route rules as received ------------------------------------------ */

static void rules__release(cl_rules_t *rs)
{
	if (rs == NULL || atomic_fetch_sub_explicit(&rs->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		cl_rule_spec_t *r = &rs->r[i];
		for (size_t g = 0; g < r->ngroups; g++) {
			cl_group_spec_t *gs = &r->groups[g];
			for (size_t k = 0; k < gs->nids; k++)
				free(gs->ids[k]);
			for (size_t k = 0; k < gs->ninst; k++)
				free(gs->inst_keys[k]);
			free(gs->ids);
			free(gs->inst_keys);
			free(gs->key);
		}
		free(r->groups);
		free(r->id);
	}
	free(rs->r);
	free(rs->json);
	free(rs);
}

/* Java's ServiceGroup weight: null or below 0 -> 5, above 10000 -> 10000. */
static int rules__weight(json_t *w)
{
	json_int_t v;

	if (json_is_integer(w))
		v = json_integer_value(w);
	else if (json_is_real(w))
		v = (json_int_t)json_real_value(w);
	else
		return 5;
	if (v < 0)
		return 5;
	return v > 10000 ? 10000 : (int)v;
}

static int rules__strings(json_t *arr, char ***out, size_t *n, bool keys)
{
	size_t i;
	json_t *v;
	char buf[CL_REGION_MAX + 2 * CL_ID_MAX + 4];

	*out = NULL;
	*n = 0;
	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr))
		return ARTEMIS_E_PROTO;
	*out = calloc(json_array_size(arr) + 1, sizeof(char *));
	if (*out == NULL)
		return ARTEMIS_E_NOMEM;
	json_array_foreach(arr, i, v)
	{
		char *s;
		if (keys) {
			if (!cl_inst_key_of(v, buf, sizeof(buf)))
				continue;
			s = cl_strdup(buf);
		} else {
			if (!json_is_string(v))
				continue;
			s = cl_strdup(json_string_value(v));
			if (s)
				cl_lower(s);
		}
		if (s == NULL)
			return ARTEMIS_E_NOMEM;
		(*out)[(*n)++] = s;
	}
	return 0;
}

static int rules__group(json_t *g, cl_group_spec_t *gs)
{
	json_t *key = json_member(g, "groupkey");
	int rc;

	if (!json_is_object(g))
		return ARTEMIS_E_PROTO;
	gs->key = cl_strdup(json_is_string(key) ? json_string_value(key) : SVC_DEFAULT_GROUP);
	if (gs->key == NULL)
		return ARTEMIS_E_NOMEM;
	cl_lower(gs->key);
	gs->weight = rules__weight(json_member(g, "weight"));
	rc = rules__strings(json_member(g, "instanceids"), &gs->ids, &gs->nids, false);
	return rc ? rc
	          : rules__strings(json_member(g, "instances"), &gs->inst_keys, &gs->ninst, true);
}

static int rules__rule(json_t *r, cl_rule_spec_t *rs)
{
	json_t *id = json_member(r, "routeid");
	json_t *strategy = json_member(r, "strategy");
	json_t *groups = json_member(r, "groups"), *g;
	size_t i;
	int rc;

	if (!json_is_object(r) || !json_is_string(id))
		return ARTEMIS_E_PROTO;
	rs->id = cl_strdup(json_string_value(id));
	if (rs->id == NULL)
		return ARTEMIS_E_NOMEM;
	rs->strategy = json_is_string(strategy) &&
	                       strcasecmp(json_string_value(strategy), "close-by-visit") == 0
	                   ? CL_STRATEGY_CLOSE
	                   : CL_STRATEGY_WRR;
	if (groups == NULL || json_is_null(groups))
		return 0;
	if (!json_is_array(groups) || json_array_size(groups) > SVC_MAX_GROUPS)
		return ARTEMIS_E_PROTO;
	rs->groups = calloc(json_array_size(groups) + 1, sizeof(*rs->groups));
	if (rs->groups == NULL)
		return ARTEMIS_E_NOMEM;
	json_array_foreach(groups, i, g)
	{
		rs->ngroups++;
		if ((rc = rules__group(g, &rs->groups[i])) < 0)
			return rc;
	}
	return 0;
}

static int rules__parse(json_t *arr, cl_rules_t **out)
{
	cl_rules_t *rs;
	size_t i;
	json_t *r;
	int rc = 0;

	*out = NULL;
	if (arr == NULL || json_is_null(arr))
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > SVC_MAX_RULES)
		return ARTEMIS_E_PROTO;
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return ARTEMIS_E_NOMEM;
	atomic_init(&rs->refs, 1);
	rs->r = calloc(json_array_size(arr) + 1, sizeof(*rs->r));
	rs->json = json_dumps(arr, JSON_COMPACT | JSON_SORT_KEYS);
	if (rs->r == NULL || rs->json == NULL)
		rc = ARTEMIS_E_NOMEM;
	json_array_foreach(arr, i, r)
	{
		if (rc < 0)
			break;
		rs->n++;
		rc = rules__rule(r, &rs->r[i]);
	}
	if (rc < 0) {
		rules__release(rs);
		return rc;
	}
	*out = rs;
	return 0;
}

/* ---- snapshots ---------------------------------------------------------- */

static void svc__routes_free(cl_svc_t *s)
{
	for (size_t r = 0; r < s->nroutes; r++) {
		for (size_t g = 0; g < s->routes[r].ngroups; g++)
			free(s->routes[r].groups[g].up);
		free(s->routes[r].groups);
		for (int k = 0; k < 3; k++)
			free(s->routes[r].near[k]);
	}
	free(s->routes);
	s->routes = NULL;
	s->nroutes = 0;
}

void cl_svc_release(cl_svc_t *s)
{
	if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < s->n; i++)
		cl_inst_release(s->inst[i]);
	free(s->inst);
	svc__routes_free(s);
	rules__release(s->rules);
	free(s->all_up);
	free(s->id);
	free(s->metadata_json);
	free(s->logic_json);
	free(s->region);
	free(s->zone);
	free(s->json);
	pthread_mutex_destroy(&s->pick);
	free(s);
}

static cl_svc_t *svc__new(const char *id, const char *region, const char *zone)
{
	cl_svc_t *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->pick, NULL);
	s->id = cl_strdup(id);
	s->region = cl_strdup(region ? region : "");
	s->zone = cl_strdup(zone ? zone : "");
	if (s->id == NULL || s->region == NULL || s->zone == NULL) {
		cl_svc_release(s);
		return NULL;
	}
	return s;
}

/* The instance part of a key (after the second separator). */
static const char *svc__inst_id(const cl_inst_t *i)
{
	const char *p = strchr(i->key, '\x1f');

	p = p ? strchr(p + 1, '\x1f') : NULL;
	return p ? p + 1 : "";
}

static bool svc__member(const cl_group_spec_t *g, const cl_map_t *ids, const cl_inst_t *i)
{
	size_t kl = strlen(g->key);

	if (strncmp(i->group_key, g->key, kl) == 0 && i->group_key[kl] == '/')
		return true;
	if (g->nids && cl_map_get(ids, svc__inst_id(i)))
		return true;
	for (size_t k = 0; k < g->ninst; k++)
		if (strcmp(g->inst_keys[k], i->key) == 0)
			return true;
	return false;
}

/* Members of a group: *nmembers counts all, up[] those up. */
static int svc__group(const cl_svc_t *s, const cl_group_spec_t *gs, cl_group_t *g, size_t *nmembers)
{
	cl_map_t ids = {0};
	int rc = 0;

	*nmembers = 0;
	for (size_t k = 0; k < gs->nids && rc == 0; k++)
		rc = cl_map_put(&ids, gs->ids[k], gs->ids[k], NULL);
	g->up = calloc(s->n + 1, sizeof(size_t));
	if (rc < 0 || g->up == NULL) {
		cl_map_free(&ids);
		return ARTEMIS_E_NOMEM;
	}
	for (size_t i = 0; i < s->n; i++) {
		if (!svc__member(gs, &ids, s->inst[i]))
			continue;
		(*nmembers)++;
		if (s->inst[i]->up)
			g->up[g->nup++] = i;
	}
	cl_map_free(&ids);
	g->weight = gs->weight;
	return 0;
}

/* close-by-visit: the rule's up members by distance (zone, region, any). */
static int svc__near(const cl_svc_t *s, cl_route_t *rt)
{
	char *seen = calloc(s->n + 1, 1);

	for (int k = 0; k < 3; k++)
		rt->near[k] = calloc(s->n + 1, sizeof(size_t));
	if (seen == NULL || !rt->near[0] || !rt->near[1] || !rt->near[2]) {
		free(seen);
		return ARTEMIS_E_NOMEM;
	}
	for (size_t g = 0; g < rt->ngroups; g++) {
		for (size_t m = 0; m < rt->groups[g].nup; m++) {
			size_t i = rt->groups[g].up[m];
			const char *iz = s->inst[i]->f[ARTEMIS_F_ZONE];
			const char *ir = s->inst[i]->f[ARTEMIS_F_REGION];
			if (seen[i]++)
				continue;
			if (iz && *s->zone && strcasecmp(iz, s->zone) == 0 && ir &&
			    strcasecmp(ir, s->region) == 0)
				rt->near[0][rt->nnear[0]++] = i;
			if (ir && *s->region && strcasecmp(ir, s->region) == 0)
				rt->near[1][rt->nnear[1]++] = i;
			rt->near[2][rt->nnear[2]++] = i;
		}
	}
	free(seen);
	return 0;
}

static int svc__route(cl_svc_t *s, const cl_rule_spec_t *spec, cl_route_t *rt)
{
	size_t members;
	int rc;

	rt->id = spec->id;
	rt->strategy = spec->strategy;
	rt->groups = calloc(spec->ngroups + 1, sizeof(*rt->groups));
	if (rt->groups == NULL)
		return ARTEMIS_E_NOMEM;
	for (size_t g = 0; g < spec->ngroups; g++) {
		cl_group_t *grp = &rt->groups[rt->ngroups];
		if ((rc = svc__group(s, &spec->groups[g], grp, &members)) < 0) {
			free(grp->up);
			return rc;
		}
		if (members == 0) { /* Java drops groups without members */
			free(grp->up);
			memset(grp, 0, sizeof(*grp));
			continue;
		}
		rt->ngroups++;
	}
	return rt->strategy == CL_STRATEGY_CLOSE ? svc__near(s, rt) : 0;
}

/* The default-route-rule Java adds: one group of every instance. */
static int svc__default_route(cl_svc_t *s, cl_route_t *rt)
{
	rt->id = SVC_DEFAULT_RULE;
	rt->strategy = CL_STRATEGY_WRR;
	rt->groups = calloc(1, sizeof(*rt->groups));
	if (rt->groups == NULL)
		return ARTEMIS_E_NOMEM;
	rt->ngroups = 1;
	rt->groups[0].weight = 5;
	rt->groups[0].up = calloc(s->nall_up + 1, sizeof(size_t));
	if (rt->groups[0].up == NULL)
		return ARTEMIS_E_NOMEM;
	memcpy(rt->groups[0].up, s->all_up, s->nall_up * sizeof(size_t));
	rt->groups[0].nup = s->nall_up;
	return 0;
}

static int svc__build_routes(cl_svc_t *s)
{
	size_t nspec = s->rules ? s->rules->n : 0;
	bool has_default = false;
	int rc;

	s->all_up = calloc(s->n + 1, sizeof(size_t));
	s->routes = calloc(nspec + 1, sizeof(*s->routes));
	if (s->all_up == NULL || s->routes == NULL)
		return ARTEMIS_E_NOMEM;
	for (size_t i = 0; i < s->n; i++)
		if (s->inst[i]->up)
			s->all_up[s->nall_up++] = i;
	for (size_t r = 0; r < nspec; r++) {
		cl_route_t *rt = &s->routes[s->nroutes];
		s->nroutes++; /* counted now, so a failure frees what it built */
		if ((rc = svc__route(s, &s->rules->r[r], rt)) < 0)
			return rc;
		if (rt->ngroups == 0) { /* rules without groups are dropped */
			free(rt->groups);
			for (int k = 0; k < 3; k++)
				free(rt->near[k]);
			memset(rt, 0, sizeof(*rt));
			s->nroutes--;
			continue;
		}
		if (strcmp(rt->id, SVC_DEFAULT_RULE) == 0)
			has_default = true;
	}
	if (has_default)
		return 0;
	s->nroutes++;
	return svc__default_route(s, &s->routes[s->nroutes - 1]);
}

static int svc__build_json(cl_svc_t *s)
{
	buf_t b = {0};

	buf_puts(&b, "{\"instances\":[");
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			buf_puts(&b, ",");
		buf_append(&b, s->inst[i]->json, s->inst[i]->json_len);
	}
	buf_puts(&b, "],\"logicInstances\":");
	buf_puts(&b, s->logic_json ? s->logic_json : "null");
	buf_puts(&b, ",\"metadata\":");
	buf_puts(&b, s->metadata_json ? s->metadata_json : "null");
	buf_puts(&b, ",\"routeRules\":");
	buf_puts(&b, s->rules && s->rules->json ? s->rules->json : "null");
	buf_puts(&b, ",\"serviceId\":");
	json_put_cstr(&b, s->id);
	buf_puts(&b, "}");
	if (buf_error(&b)) {
		buf_free(&b);
		return ARTEMIS_E_NOMEM;
	}
	s->json = b.data;
	return 0;
}

typedef struct {
	cl_inst_t *i;
	size_t pos;
} svc__ent_t;

static int svc__ent_cmp(const void *a, const void *b)
{
	const svc__ent_t *x = a, *y = b;
	int c = strcmp(x->i->key, y->i->key);

	return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Sort the instances by key; of equal keys keep the last received (it
 * replaces the earlier one, as in a node's map). */
static int svc__sort_unique(cl_svc_t *s)
{
	svc__ent_t *e = malloc((s->n + 1) * sizeof(*e));
	size_t w = 0;

	if (e == NULL)
		return ARTEMIS_E_NOMEM;
	for (size_t i = 0; i < s->n; i++) {
		e[i].i = s->inst[i];
		e[i].pos = i;
	}
	qsort(e, s->n, sizeof(*e), svc__ent_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (i + 1 < s->n && strcmp(e[i].i->key, e[i + 1].i->key) == 0) {
			cl_inst_release(e[i].i);
			continue;
		}
		s->inst[w++] = e[i].i;
	}
	s->n = w;
	free(e);
	return 0;
}

static int svc__finish(cl_svc_t *s)
{
	int rc = svc__build_routes(s);

	return rc ? rc : svc__build_json(s);
}

static char *svc__dump(json_t *v)
{
	if (v == NULL || json_is_null(v))
		return NULL;
	return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

int cl_svc_from_json(json_t *obj, const char *region, const char *zone, cl_svc_t **out,
                     cl_err_t *err)
{
	json_t *id = json_member(obj, "serviceid");
	json_t *insts = json_member(obj, "instances"), *v;
	cl_svc_t *s;
	size_t i;
	int rc;

	*out = NULL;
	if (!json_is_object(obj) || !json_is_string(id))
		return cl_err(err, ARTEMIS_E_PROTO, "answer: a service without serviceId");
	if (insts != NULL && !json_is_null(insts) && !json_is_array(insts))
		return cl_err(err, ARTEMIS_E_PROTO, "answer: instances is not an array");
	s = svc__new(json_string_value(id), region, zone);
	if (s == NULL)
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	s->inst = calloc(json_array_size(insts) + 1, sizeof(cl_inst_t *));
	if (s->inst == NULL) {
		rc = cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
		goto fail;
	}
	json_array_foreach(insts, i, v)
	{
		if ((rc = cl_inst_from_json(v, &s->inst[s->n], err)) < 0)
			goto fail;
		s->n++;
	}
	if ((rc = rules__parse(json_member(obj, "routerules"), &s->rules)) < 0) {
		cl_err(err, rc, "answer: routeRules are invalid");
		goto fail;
	}
	s->metadata_json = svc__dump(json_member(obj, "metadata"));
	s->logic_json = svc__dump(json_member(obj, "logicinstances"));
	if ((rc = svc__sort_unique(s)) < 0 || (rc = svc__finish(s)) < 0) {
		cl_err(err, rc, "out of memory");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	cl_svc_release(s);
	return rc;
}

int cl_svc_apply(const cl_svc_t *old, int type, cl_inst_t *inst, cl_svc_t **out)
{
	cl_svc_t *s = svc__new(old->id, old->region, old->zone);
	bool inserted = type == ARTEMIS_CHANGE_DELETE;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (s == NULL)
		return ARTEMIS_E_NOMEM;
	s->inst = calloc(old->n + 2, sizeof(cl_inst_t *));
	if ((old->metadata_json && !(s->metadata_json = cl_strdup(old->metadata_json))) ||
	    (old->logic_json && !(s->logic_json = cl_strdup(old->logic_json))) || !s->inst) {
		cl_svc_release(s);
		return ARTEMIS_E_NOMEM;
	}
	if (old->rules) {
		atomic_fetch_add_explicit(&old->rules->refs, 1, memory_order_relaxed);
		s->rules = old->rules;
	}
	for (size_t i = 0; i < old->n; i++) {
		int c = strcmp(old->inst[i]->key, inst->key);
		if (c > 0 && !inserted) {
			s->inst[n++] = cl_inst_retain(inst);
			inserted = true;
		}
		if (c == 0)
			continue;
		s->inst[n++] = cl_inst_retain(old->inst[i]);
	}
	if (!inserted)
		s->inst[n++] = cl_inst_retain(inst);
	s->n = n;
	rc = svc__finish(s);
	if (rc < 0) {
		cl_svc_release(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- the choice --------------------------------------------------------- */

static const cl_route_t *svc__route_for(const cl_svc_t *s, const char *route_id)
{
	for (size_t r = 0; r < s->nroutes; r++) {
		const char *id = s->routes[r].id;
		if (route_id ? strcmp(id, route_id) == 0 : strcmp(id, SVC_CANARY_RULE) != 0)
			return &s->routes[r];
	}
	return NULL;
}

/* Smooth weighted round robin: each eligible group gains its weight, the
 * richest is chosen and pays the total.  Over any window of sum(weights)
 * picks every group gets exactly its weight, well interleaved. */
static bool svc__wrr(cl_route_t *rt, size_t *idx)
{
	cl_group_t *best = NULL;
	int64_t total = 0;

	for (size_t g = 0; g < rt->ngroups; g++) {
		cl_group_t *grp = &rt->groups[g];
		if (grp->nup == 0 || grp->weight <= 0)
			continue;
		grp->cur += grp->weight;
		total += grp->weight;
		if (best == NULL || grp->cur > best->cur)
			best = grp;
	}
	if (best == NULL)
		return false;
	best->cur -= total;
	*idx = best->up[best->rr++ % best->nup];
	return true;
}

static bool svc__close(cl_route_t *rt, size_t *idx)
{
	for (int k = 0; k < 3; k++) {
		if (rt->nnear[k]) {
			*idx = rt->near[k][rt->rr++ % rt->nnear[k]];
			return true;
		}
	}
	return false;
}

int artemis_service_choose(artemis_service_t *s, const char *route_id,
                           const artemis_instance_t **out)
{
	const cl_route_t *crt;
	cl_route_t *rt;
	size_t idx = 0;
	bool found;

	if (out == NULL)
		return ARTEMIS_E_INVAL;
	*out = NULL;
	if (s == NULL || (route_id && strnlen(route_id, CL_ID_MAX + 1) > CL_ID_MAX))
		return ARTEMIS_E_INVAL;
	crt = svc__route_for(s, route_id);
	if (crt == NULL)
		return ARTEMIS_E_NOTFOUND;
	rt = (cl_route_t *)crt; /* the counters are guarded by s->pick */
	pthread_mutex_lock(&s->pick);
	found = rt->strategy == CL_STRATEGY_CLOSE ? svc__close(rt, &idx) : svc__wrr(rt, &idx);
	if (!found && s->nall_up) {
		idx = s->all_up[s->rr++ % s->nall_up];
		found = true;
	}
	pthread_mutex_unlock(&s->pick);
	if (!found)
		return ARTEMIS_E_NOTFOUND;
	*out = s->inst[idx];
	return 0;
}

/* ---- accessors ------------------------------------------------------------ */

artemis_service_t *artemis_service_retain(artemis_service_t *s)
{
	if (s)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void artemis_service_release(artemis_service_t *s)
{
	cl_svc_release(s);
}

const char *artemis_service_id(const artemis_service_t *s)
{
	return s ? s->id : NULL;
}

size_t artemis_service_size(const artemis_service_t *s)
{
	return s ? s->n : 0;
}

const artemis_instance_t *artemis_service_instance(const artemis_service_t *s, size_t idx)
{
	return s && idx < s->n ? s->inst[idx] : NULL;
}

const char *artemis_service_json(const artemis_service_t *s)
{
	return s ? s->json : NULL;
}

size_t artemis_service_rule_count(const artemis_service_t *s)
{
	return s ? s->nroutes : 0;
}

const char *artemis_service_rule_id(const artemis_service_t *s, size_t idx)
{
	return s && idx < s->nroutes ? s->routes[idx].id : NULL;
}

void artemis_service_list_free(artemis_service_t **list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		cl_svc_release(list[i]);
	free(list);
}
