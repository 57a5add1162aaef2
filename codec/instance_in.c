/*
 * instance_in.c - the one place an Instance JSON becomes the registry's input
 * (shm_instance_in_t plus the stored form).  The register endpoint
 * (api_registry.c), the Java peers' replication endpoints
 * (api_replication.c) and the replicator (include/artemis/codec.h) all
 * go through json_instance_to_shm, so an instance is stored the same way
 * whichever path brought it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

int json_instance_to_shm(const json_instance_t *in, buf_t *stored, shm_instance_in_t *si,
                         const char **field)
{
	int rc;

	*field = NULL;
	buf_reset(stored);
	if ((rc = json_instance_encode(in, stored)) < 0)
		return rc;
	memset(si, 0, sizeof(*si));
	json_instance_key(in, &si->key);
	si->zone = in->zone;
	si->group = in->group;
	si->ip = in->ip;
	si->status = in->status;
	si->json.ptr = stored->data;
	si->json.len = stored->len;
	si->legacy = in->legacy;
	/* shm wants non-NULL empty strings for optional fields. */
	if (si->zone.ptr == NULL)
		si->zone.ptr = "";
	if (si->group.ptr == NULL)
		si->group.ptr = "";
	if (si->ip.ptr == NULL)
		si->ip.ptr = "";
	if (si->status.ptr == NULL)
		si->status.ptr = "";
	return shm_instance_validate(si, field);
}

struct instance_parser {
	json_t *root;
	json_instance_t in;
	buf_t stored;
};

instance_parser_t *instance_parser_new(void)
{
	return calloc(1, sizeof(instance_parser_t));
}

void instance_parser_free(instance_parser_t *p)
{
	if (p == NULL)
		return;
	json_decref(p->root);
	buf_free(&p->stored);
	free(p);
}

static bool instance__blank(shm_str_t s)
{
	for (size_t i = 0; s.ptr != NULL && i < s.len; i++)
		if (s.ptr[i] != ' ' && s.ptr[i] != '\t' && s.ptr[i] != '\r' && s.ptr[i] != '\n')
			return false;
	return true;
}

int instance_parse(instance_parser_t *p, const char *json, size_t len, shm_instance_in_t *si,
                   const char **field)
{
	const char *dummy;
	int rc;

	if (field == NULL)
		field = &dummy;
	*field = NULL;
	json_decref(p->root);
	p->root = json_loadb(json, len, 0, NULL);
	if (p->root == NULL || !json_is_object(p->root))
		return -EINVAL;
	if ((rc = json_instance_decode(p->root, &p->in, field)) < 0)
		return rc == -ENAMETOOLONG ? rc : -EINVAL;
	if (instance__blank(p->in.region))
		*field = "regionId";
	else if (instance__blank(p->in.service))
		*field = "serviceId";
	else if (instance__blank(p->in.instance))
		*field = "instanceId";
	else if (instance__blank(p->in.url))
		*field = "url";
	if (*field != NULL)
		return -EINVAL;
	return json_instance_to_shm(&p->in, &p->stored, si, field);
}
