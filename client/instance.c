/*
 * instance.c - artemis_instance_t: an Instance (API.md §1.1) as the
 * library's users build it and as the nodes send it.
 *
 * Two lives: an instance the user creates is mutable and owned by one
 * caller; a frozen instance (registered, or decoded from an answer) is
 * read-only, reference-counted and shared by snapshots and threads.  A
 * frozen instance carries its JSON (the codec's sorted form, as the nodes
 * store it), its registry key, its group key (routing) and, when it is
 * kept alive, its heartbeat form.
 *
 * JSON in and out goes through the codec (codec/instance.c), so the limits
 * and the coercions are exactly the nodes' own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "artemis/codec.h"
#include "client_int.h"

static bool inst__blank(const char *s)
{
	if (s == NULL)
		return true;
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

static shm_str_t inst__str(const char *s)
{
	shm_str_t r = {s, s ? strlen(s) : 0};
	return r;
}

int artemis_instance_new(const char *service_id, const char *instance_id, const char *url,
                         artemis_instance_t **out)
{
	cl_inst_t *i;
	int rc;

	if (out == NULL)
		return ARTEMIS_E_INVAL;
	*out = NULL;
	if (service_id == NULL || instance_id == NULL)
		return ARTEMIS_E_INVAL;
	i = calloc(1, sizeof(*i));
	if (i == NULL)
		return ARTEMIS_E_NOMEM;
	atomic_init(&i->refs, 1);
	rc = artemis_instance_set(i, ARTEMIS_F_SERVICE, service_id);
	if (rc == 0)
		rc = artemis_instance_set(i, ARTEMIS_F_INSTANCE, instance_id);
	if (rc == 0 && url != NULL)
		rc = artemis_instance_set(i, ARTEMIS_F_URL, url);
	if (rc < 0) {
		artemis_instance_free(i);
		return rc;
	}
	*out = i;
	return 0;
}

/* The nodes' limits (SHM_MAX_*), so a bad value fails here, not later. */
static const size_t inst__limit[ARTEMIS_F_COUNT] = {
    [ARTEMIS_F_REGION] = SHM_MAX_REGION,
    [ARTEMIS_F_ZONE] = SHM_MAX_ZONE,
    [ARTEMIS_F_GROUP] = SHM_MAX_GROUP,
    [ARTEMIS_F_SERVICE] = SHM_MAX_SERVICE,
    [ARTEMIS_F_INSTANCE] = SHM_MAX_INSTANCE,
    [ARTEMIS_F_MACHINE] = SHM_MAX_MACHINE,
    [ARTEMIS_F_IP] = SHM_MAX_IP,
    [ARTEMIS_F_PROTOCOL] = SHM_MAX_PROTOCOL,
    [ARTEMIS_F_URL] = SHM_MAX_URL,
    [ARTEMIS_F_HEALTH_CHECK_URL] = SHM_MAX_URL,
    [ARTEMIS_F_STATUS] = SHM_MAX_STATUS,
};

int artemis_instance_set(artemis_instance_t *i, artemis_field_t f, const char *value)
{
	char *copy = NULL;

	if (i == NULL || (unsigned)f >= ARTEMIS_F_COUNT)
		return ARTEMIS_E_INVAL;
	if (i->frozen)
		return ARTEMIS_E_STATE;
	if (value != NULL) {
		if (strnlen(value, inst__limit[f] + 1) > inst__limit[f])
			return ARTEMIS_E_INVAL;
		copy = cl_strdup(value);
		if (copy == NULL)
			return ARTEMIS_E_NOMEM;
	}
	free(i->f[f]);
	i->f[f] = copy;
	return 0;
}

int artemis_instance_set_port(artemis_instance_t *i, int port)
{
	if (i == NULL || port < 0 || port > 65535)
		return ARTEMIS_E_INVAL;
	if (i->frozen)
		return ARTEMIS_E_STATE;
	i->port = port;
	return 0;
}

static size_t inst__meta_find(const cl_inst_t *i, const char *key)
{
	for (size_t k = 0; k < i->nmeta; k++)
		if (strcmp(i->meta[k].key, key) == 0)
			return k;
	return (size_t)-1;
}

int artemis_instance_set_meta(artemis_instance_t *i, const char *key, const char *value)
{
	size_t k;
	char *v = NULL;

	if (i == NULL || key == NULL || strnlen(key, SHM_MAX_METADATA + 1) > SHM_MAX_METADATA ||
	    (value != NULL && strnlen(value, SHM_MAX_METADATA + 1) > SHM_MAX_METADATA))
		return ARTEMIS_E_INVAL;
	if (i->frozen)
		return ARTEMIS_E_STATE;
	k = inst__meta_find(i, key);
	if (value == NULL) {
		if (k == (size_t)-1)
			return 0;
		free(i->meta[k].key);
		free(i->meta[k].value);
		memmove(&i->meta[k], &i->meta[k + 1], (i->nmeta - k - 1) * sizeof(i->meta[0]));
		i->nmeta--;
		return 0;
	}
	v = cl_strdup(value);
	if (v == NULL)
		return ARTEMIS_E_NOMEM;
	if (k != (size_t)-1) {
		free(i->meta[k].value);
		i->meta[k].value = v;
		return 0;
	}
	cl_meta_t *m = realloc(i->meta, (i->nmeta + 1) * sizeof(*m));
	char *kc = cl_strdup(key);
	if (m == NULL || kc == NULL) {
		if (m)
			i->meta = m;
		free(kc);
		free(v);
		return ARTEMIS_E_NOMEM;
	}
	i->meta = m;
	m[i->nmeta].key = kc;
	m[i->nmeta].value = v;
	i->nmeta++;
	return 0;
}

const char *artemis_instance_get(const artemis_instance_t *i, artemis_field_t f)
{
	if (i == NULL || (unsigned)f >= ARTEMIS_F_COUNT)
		return NULL;
	return i->f[f];
}

int artemis_instance_port(const artemis_instance_t *i)
{
	return i ? i->port : 0;
}

const char *artemis_instance_meta(const artemis_instance_t *i, const char *key)
{
	size_t k;

	if (i == NULL || key == NULL)
		return NULL;
	k = inst__meta_find(i, key);
	return k == (size_t)-1 ? NULL : i->meta[k].value;
}

size_t artemis_instance_meta_count(const artemis_instance_t *i)
{
	return i ? i->nmeta : 0;
}

int artemis_instance_meta_at(const artemis_instance_t *i, size_t idx, const char **key,
                             const char **value)
{
	if (i == NULL || idx >= i->nmeta)
		return ARTEMIS_E_INVAL;
	if (key)
		*key = i->meta[idx].key;
	if (value)
		*value = i->meta[idx].value;
	return 0;
}

static bool inst__up(const cl_inst_t *i)
{
	const char *s = i->f[ARTEMIS_F_STATUS];

	return inst__blank(s) || strcasecmp(s, "up") == 0;
}

int artemis_instance_is_up(const artemis_instance_t *i)
{
	return i != NULL && inst__up(i);
}

/* The codec's view of i, for json_instance_encode; *md is a jansson copy
 * of the metadata the caller frees (json_decref). */
static int inst__view(const cl_inst_t *i, json_instance_t *v, json_t **md)
{
	memset(v, 0, sizeof(*v));
	v->region = inst__str(i->f[ARTEMIS_F_REGION]);
	v->zone = inst__str(i->f[ARTEMIS_F_ZONE]);
	v->group = inst__str(i->f[ARTEMIS_F_GROUP]);
	v->service = inst__str(i->f[ARTEMIS_F_SERVICE]);
	v->instance = inst__str(i->f[ARTEMIS_F_INSTANCE]);
	v->machine = inst__str(i->f[ARTEMIS_F_MACHINE]);
	v->ip = inst__str(i->f[ARTEMIS_F_IP]);
	v->protocol = inst__str(i->f[ARTEMIS_F_PROTOCOL]);
	v->url = inst__str(i->f[ARTEMIS_F_URL]);
	v->health = inst__str(i->f[ARTEMIS_F_HEALTH_CHECK_URL]);
	v->status = inst__str(i->f[ARTEMIS_F_STATUS]);
	v->port = i->port;
	*md = NULL;
	if (i->meta == NULL) /* never set: null (a set emptied again is {}) */
		return 0;
	*md = json_object();
	if (*md == NULL)
		return ARTEMIS_E_NOMEM;
	for (size_t k = 0; k < i->nmeta; k++) {
		json_t *s = i->meta[k].value ? json_string(i->meta[k].value) : json_null();
		if (s == NULL || json_object_set_new(*md, i->meta[k].key, s) < 0) {
			/* not UTF-8: jansson refuses it, and so would a node */
			json_decref(*md);
			*md = NULL;
			return ARTEMIS_E_INVAL;
		}
	}
	v->metadata = *md;
	return 0;
}

static int inst__encode(const cl_inst_t *i, buf_t *out)
{
	json_instance_t v;
	json_t *md;
	int rc = inst__view(i, &v, &md);

	if (rc < 0)
		return rc;
	rc = json_instance_encode(&v, out);
	json_decref(md);
	if (rc < 0 || buf_error(out))
		return buf_error(out) ? ARTEMIS_E_NOMEM : ARTEMIS_E_INVAL;
	return 0;
}

char *artemis_instance_to_json(const artemis_instance_t *i)
{
	buf_t b = {0};

	if (i == NULL)
		return NULL;
	if (i->frozen)
		return cl_strndup(i->json, i->json_len);
	if (inst__encode(i, &b) < 0) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

int artemis_instance_copy(const artemis_instance_t *i, artemis_instance_t **out)
{
	cl_inst_t *c;

	if (out == NULL)
		return ARTEMIS_E_INVAL;
	*out = NULL;
	if (i == NULL)
		return ARTEMIS_E_INVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ARTEMIS_E_NOMEM;
	atomic_init(&c->refs, 1);
	c->port = i->port;
	for (int f = 0; f < ARTEMIS_F_COUNT; f++) {
		if (i->f[f] && (c->f[f] = cl_strdup(i->f[f])) == NULL)
			goto nomem;
	}
	for (size_t k = 0; k < i->nmeta; k++) {
		if (artemis_instance_set_meta(c, i->meta[k].key,
		                              i->meta[k].value ? i->meta[k].value : "") < 0)
			goto nomem;
		if (i->meta[k].value == NULL) {
			free(c->meta[k].value);
			c->meta[k].value = NULL;
		}
	}
	*out = c;
	return 0;
nomem:
	artemis_instance_free(c);
	return ARTEMIS_E_NOMEM;
}

cl_inst_t *cl_inst_retain(cl_inst_t *i)
{
	atomic_fetch_add_explicit(&i->refs, 1, memory_order_relaxed);
	return i;
}

void cl_inst_release(cl_inst_t *i)
{
	if (i == NULL || atomic_fetch_sub_explicit(&i->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (int f = 0; f < ARTEMIS_F_COUNT; f++)
		free(i->f[f]);
	for (size_t k = 0; k < i->nmeta; k++) {
		free(i->meta[k].key);
		free(i->meta[k].value);
	}
	free(i->meta);
	free(i->json);
	free(i->key);
	free(i->group_key);
	free(i->hb);
	free(i);
}

void artemis_instance_free(artemis_instance_t *i)
{
	cl_inst_release(i);
}

/* ---- freezing ---------------------------------------------------------- */

static char *inst__key(const char *region, const char *service, const char *instance)
{
	buf_t b = {0};

	buf_printf(&b, "%s\x1f%s\x1f%s", region ? region : "", service ? service : "",
	           instance ? instance : "");
	if (buf_error(&b))
		return NULL;
	cl_lower(b.data);
	return b.data;
}

/* Java's group key: non-blank parts joined by '/', lowercased. */
static char *inst__group_key(const cl_inst_t *i)
{
	const char *parts[5] = {
	    i->f[ARTEMIS_F_SERVICE], i->f[ARTEMIS_F_REGION], i->f[ARTEMIS_F_ZONE],
	    inst__blank(i->f[ARTEMIS_F_GROUP]) ? "default" : i->f[ARTEMIS_F_GROUP],
	    i->f[ARTEMIS_F_INSTANCE]};
	buf_t b = {0};

	for (int k = 0; k < 5; k++) {
		if (inst__blank(parts[k]))
			continue;
		if (b.len)
			buf_puts(&b, "/");
		buf_puts(&b, parts[k]);
	}
	if (b.len == 0)
		buf_puts(&b, "");
	if (buf_error(&b))
		return NULL;
	cl_lower(b.data);
	return b.data;
}

/* {"instanceId","regionId","serviceId","url","zoneId"}: what a node needs
 * to renew a lease (heartbeats never update the stored instance). */
static int inst__hb(cl_inst_t *i)
{
	static const struct {
		const char *name;
		artemis_field_t f;
	} keys[] = {{"{\"instanceId\":", ARTEMIS_F_INSTANCE},
	            {",\"regionId\":", ARTEMIS_F_REGION},
	            {",\"serviceId\":", ARTEMIS_F_SERVICE},
	            {",\"url\":", ARTEMIS_F_URL},
	            {",\"zoneId\":", ARTEMIS_F_ZONE}};
	buf_t b = {0};

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		json_put_raw(&b, keys[k].name);
		json_put_cstr(&b, i->f[keys[k].f]);
	}
	json_put_raw(&b, "}");
	if (buf_error(&b)) {
		buf_free(&b);
		return ARTEMIS_E_NOMEM;
	}
	i->hb = b.data;
	i->hb_len = b.len;
	return 0;
}

static int inst__finish(cl_inst_t *i, bool hb)
{
	buf_t b = {0};
	int rc = inst__encode(i, &b);

	if (rc < 0) {
		buf_free(&b);
		return rc;
	}
	i->json = b.data;
	i->json_len = b.len;
	i->key =
	    inst__key(i->f[ARTEMIS_F_REGION], i->f[ARTEMIS_F_SERVICE], i->f[ARTEMIS_F_INSTANCE]);
	i->group_key = inst__group_key(i);
	if (i->key == NULL || i->group_key == NULL)
		return ARTEMIS_E_NOMEM;
	if (hb && (rc = inst__hb(i)) < 0)
		return rc;
	i->up = inst__up(i);
	i->frozen = true;
	return 0;
}

/* The nodes' own check: decode the JSON as a node would (limits, types). */
static int inst__validate(const cl_inst_t *i, cl_err_t *err)
{
	json_t *root = json_loadb(i->json, i->json_len, 0, NULL);
	json_instance_t v;
	const char *field = NULL;
	int rc;

	if (root == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "instance: not valid UTF-8 text");
	rc = json_instance_decode(root, &v, &field);
	json_decref(root);
	if (rc == -ENAMETOOLONG)
		return cl_err(err, ARTEMIS_E_INVAL, "instance: %s is too long",
		              field ? field : "a field");
	if (rc < 0)
		return cl_err(err, ARTEMIS_E_INVAL, "instance: %s is invalid",
		              field ? field : "a field");
	return 0;
}

int cl_inst_freeze(const cl_inst_t *src, const char *region, const char *zone, unsigned flags,
                   cl_inst_t **out, cl_err_t *err)
{
	cl_inst_t *i;
	int rc;
	char url[SHM_MAX_IP + 32];

	*out = NULL;
	if (src == NULL)
		return cl_err(err, ARTEMIS_E_INVAL, "instance is NULL");
	if (inst__blank(src->f[ARTEMIS_F_SERVICE]) || inst__blank(src->f[ARTEMIS_F_INSTANCE]))
		return cl_err(err, ARTEMIS_E_INVAL,
		              "instance: serviceId and instanceId are required");
	rc = artemis_instance_copy(src, &i);
	if (rc < 0)
		return cl_err(err, rc, "out of memory");
	if (inst__blank(i->f[ARTEMIS_F_REGION]) && region && *region)
		rc = artemis_instance_set(i, ARTEMIS_F_REGION, region);
	if (rc == 0 && inst__blank(i->f[ARTEMIS_F_ZONE]) && zone && *zone)
		rc = artemis_instance_set(i, ARTEMIS_F_ZONE, zone);
	if (rc == 0 && (flags & CL_FREEZE_UP) && inst__blank(i->f[ARTEMIS_F_STATUS]))
		rc = artemis_instance_set(i, ARTEMIS_F_STATUS, "up");
	if (rc == 0 && inst__blank(i->f[ARTEMIS_F_URL])) {
		if (inst__blank(i->f[ARTEMIS_F_IP]) || i->port <= 0) {
			cl_inst_release(i);
			return cl_err(err, ARTEMIS_E_INVAL,
			              "instance: url is required (or ip and port)");
		}
		snprintf(url, sizeof(url), "http://%s:%d", i->f[ARTEMIS_F_IP], i->port);
		rc = artemis_instance_set(i, ARTEMIS_F_URL, url);
	}
	if (rc == 0)
		rc = inst__finish(i, flags & CL_FREEZE_HB);
	if (rc == 0)
		rc = inst__validate(i, err);
	else
		cl_err(err, rc, rc == ARTEMIS_E_NOMEM ? "out of memory" : "instance: invalid text");
	if (rc < 0) {
		cl_inst_release(i);
		return rc;
	}
	*out = i;
	return 0;
}

static int inst__take(cl_inst_t *i, artemis_field_t f, shm_str_t s)
{
	if (s.ptr == NULL)
		return 0;
	i->f[f] = cl_strndup(s.ptr, s.len);
	return i->f[f] ? 0 : ARTEMIS_E_NOMEM;
}

static int inst__take_meta(cl_inst_t *i, json_t *md)
{
	const char *key;
	json_t *v;
	size_t k = 0;

	if (md == NULL)
		return 0;
	i->meta = calloc(json_object_size(md) + 1, sizeof(*i->meta));
	if (i->meta == NULL)
		return ARTEMIS_E_NOMEM;
	json_object_foreach(md, key, v)
	{
		char scratch[64];
		shm_str_t s;
		if (json_to_str(v, &s, scratch, sizeof(scratch)) < 0)
			return ARTEMIS_E_PROTO;
		i->meta[k].key = cl_strdup(key);
		i->meta[k].value = s.ptr ? cl_strndup(s.ptr, s.len) : NULL;
		i->nmeta = ++k;
		if (i->meta[k - 1].key == NULL || (s.ptr && i->meta[k - 1].value == NULL))
			return ARTEMIS_E_NOMEM;
	}
	return 0;
}

int cl_inst_from_json(json_t *obj, cl_inst_t **out, cl_err_t *err)
{
	json_instance_t v;
	const char *field = NULL;
	cl_inst_t *i;
	int rc;

	*out = NULL;
	rc = json_instance_decode(obj, &v, &field);
	if (rc < 0)
		return cl_err(err, ARTEMIS_E_PROTO, "answer: an instance's %s is invalid",
		              field ? field : "shape");
	i = calloc(1, sizeof(*i));
	if (i == NULL)
		return cl_err(err, ARTEMIS_E_NOMEM, "out of memory");
	atomic_init(&i->refs, 1);
	i->port = v.port;
	const shm_str_t field_of[ARTEMIS_F_COUNT] = {
	    [ARTEMIS_F_REGION] = v.region,
	    [ARTEMIS_F_ZONE] = v.zone,
	    [ARTEMIS_F_GROUP] = v.group,
	    [ARTEMIS_F_SERVICE] = v.service,
	    [ARTEMIS_F_INSTANCE] = v.instance,
	    [ARTEMIS_F_MACHINE] = v.machine,
	    [ARTEMIS_F_IP] = v.ip,
	    [ARTEMIS_F_PROTOCOL] = v.protocol,
	    [ARTEMIS_F_URL] = v.url,
	    [ARTEMIS_F_HEALTH_CHECK_URL] = v.health,
	    [ARTEMIS_F_STATUS] = v.status,
	};
	for (int f = 0; f < ARTEMIS_F_COUNT; f++)
		if ((rc = inst__take(i, (artemis_field_t)f, field_of[f])) < 0)
			goto fail;
	if ((rc = inst__take_meta(i, v.metadata)) < 0 || (rc = inst__finish(i, false)) < 0)
		goto fail;
	*out = i;
	return 0;
fail:
	cl_inst_release(i);
	return cl_err(err, rc,
	              rc == ARTEMIS_E_NOMEM ? "out of memory" : "answer: an instance is invalid");
}

bool cl_inst_key_of(json_t *obj, char *buf, size_t len)
{
	shm_str_t r = json_member_str(obj, "regionid");
	shm_str_t s = json_member_str(obj, "serviceid");
	shm_str_t i = json_member_str(obj, "instanceid");
	int n;

	if (r.ptr == NULL || s.ptr == NULL || i.ptr == NULL)
		return false;
	n = snprintf(buf, len, "%.*s\x1f%.*s\x1f%.*s", (int)r.len, r.ptr, (int)s.len, s.ptr,
	             (int)i.len, i.ptr);
	if (n < 0 || (size_t)n >= len || strlen(buf) != (size_t)n)
		return false;
	cl_lower(buf);
	return true;
}
