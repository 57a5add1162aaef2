/*
 * map.c - a string-keyed hash map with separate chaining: the client's set
 * of registered instances (by instance key) and its service cache (by
 * serviceId).  Keys belong to the values (the map never copies or frees
 * them); the caller locks.  Doubling at load 1 keeps chains short.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

uint64_t cl_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static cl_map_ent_t **map__slot(const cl_map_t *m, const char *key, uint64_t h)
{
	cl_map_ent_t **pp = &m->b[h & (m->nb - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

void *cl_map_get(const cl_map_t *m, const char *key)
{
	if (m->nb == 0)
		return NULL;
	cl_map_ent_t *e = *map__slot(m, key, cl_hash(key));
	return e ? e->val : NULL;
}

static int map__grow(cl_map_t *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	cl_map_ent_t **b = calloc(nb, sizeof(cl_map_ent_t *));

	if (b == NULL)
		return ARTEMIS_E_NOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		cl_map_ent_t *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int cl_map_put(cl_map_t *m, const char *key, void *val, void **old)
{
	uint64_t h = cl_hash(key);
	cl_map_ent_t **pp, *e;

	if (old)
		*old = NULL;
	if (m->n >= m->nb && map__grow(m) < 0)
		return ARTEMIS_E_NOMEM;
	pp = map__slot(m, key, h);
	if (*pp) {
		if (old)
			*old = (*pp)->val;
		(*pp)->key = key;
		(*pp)->val = val;
		return 0;
	}
	e = malloc(sizeof(*e));
	if (e == NULL)
		return ARTEMIS_E_NOMEM;
	e->next = NULL;
	e->hash = h;
	e->key = key;
	e->val = val;
	*pp = e;
	m->n++;
	return 0;
}

void *cl_map_del(cl_map_t *m, const char *key)
{
	cl_map_ent_t **pp, *e;
	void *val;

	if (m->nb == 0)
		return NULL;
	pp = map__slot(m, key, cl_hash(key));
	e = *pp;
	if (e == NULL)
		return NULL;
	*pp = e->next;
	val = e->val;
	free(e);
	m->n--;
	return val;
}

bool cl_map_next(const cl_map_t *m, size_t *pos, cl_map_ent_t **ent)
{
	if (*ent && (*ent)->next) {
		*ent = (*ent)->next;
		return true;
	}
	if (*ent)
		(*pos)++;
	for (; *pos < m->nb; (*pos)++) {
		if (m->b[*pos]) {
			*ent = m->b[*pos];
			return true;
		}
	}
	*ent = NULL;
	return false;
}

void cl_map_free(cl_map_t *m)
{
	for (size_t i = 0; i < m->nb; i++) {
		cl_map_ent_t *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
