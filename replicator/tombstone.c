/*
 * tombstone.c - recently unregistered instances, so that a record still
 * in flight (a pull answered before the peer saw the unregister, a
 * snapshot taken a moment earlier, a fetch reply) cannot bring one back.
 *
 * The replicator follows the change log with a cursor of its own and
 * keeps, for every `delete` by unregister (whatever its origin), the key's
 * hash and the origin registration time of what was removed.  A record of
 * that key registered at or before that time is refused (last writer wins:
 * the unregister is newer); a newer registration passes.  Entries live
 * REPL_TOMB_MIN_MS or three digest intervals, whichever is longer; the
 * table is bounded (REPL_TOMB_SLOTS), and when it is full the oldest
 * knowledge is simply lost (anti-entropy then converges one round later).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "artemis/clock.h"

#include "repl.h"

#define REPL_TOMB_SLOTS    (1u << 16)
#define REPL_TOMB_MIN_MS   30000
#define REPL_TOMB_PER_TICK 4096

struct repl_tomb {
	uint64_t hash; /* 0: free */
	uint64_t origin_ms;
	uint64_t expires_ms; /* monotonic */
};

static uint64_t tomb__hash(const shm_key_t *k)
{
	char buf[SHM_MAX_REGION + SHM_MAX_SERVICE + SHM_MAX_INSTANCE + 3];
	const shm_str_t *parts[3] = {&k->region, &k->service, &k->instance};
	size_t n = 0;

	for (int p = 0; p < 3; p++) {
		for (size_t i = 0; i < parts[p]->len && n < sizeof(buf) - 1; i++) {
			char c = parts[p]->ptr[i];
			buf[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
		}
		if (n < sizeof(buf))
			buf[n++] = '\0';
	}
	uint64_t h = XXH3_64bits(buf, n);
	return h ? h : 1;
}

int repl_tomb_init(repl_t *r)
{
	r->tombs = calloc(REPL_TOMB_SLOTS, sizeof(*r->tombs));
	shm_cursor_init(r->shm, &r->tomb_cur);
	return r->tombs ? 0 : -1;
}

void repl_tomb_free(repl_t *r)
{
	free(r->tombs);
	r->tombs = NULL;
}

static struct repl_tomb *tomb__slot(repl_t *r, uint64_t h, uint64_t now, bool add)
{
	uint32_t mask = REPL_TOMB_SLOTS - 1, i = (uint32_t)h & mask;
	struct repl_tomb *reuse = NULL;

	for (uint32_t probe = 0; probe < 64; probe++, i = (i + 1) & mask) {
		struct repl_tomb *t = &r->tombs[i];
		if (t->hash == h)
			return t->expires_ms > now || add ? t : NULL;
		if (t->hash == 0)
			return add ? (reuse ? reuse : t) : NULL;
		if (reuse == NULL && t->expires_ms <= now)
			reuse = t;
	}
	return add ? reuse : NULL;
}

static void tomb__add(repl_t *r, const shm_key_t *key, uint64_t origin_ms, uint64_t now)
{
	uint64_t h = tomb__hash(key);
	struct repl_tomb *t = tomb__slot(r, h, now, true);
	uint64_t ttl = 3ull * r->cfg->digest_interval_ms;

	if (t == NULL)
		return;
	if (t->hash != h || t->expires_ms <= now || origin_ms > t->origin_ms)
		t->origin_ms = origin_ms;
	t->hash = h;
	t->expires_ms = now + (ttl > REPL_TOMB_MIN_MS ? ttl : REPL_TOMB_MIN_MS);
}

bool repl_tomb_blocks(repl_t *r, const shm_key_t *key, uint64_t origin_ms)
{
	struct repl_tomb *t = tomb__slot(r, tomb__hash(key), clock_mono_ms(), false);

	return t != NULL && origin_ms <= t->origin_ms;
}

void repl_tomb_tick(repl_t *r)
{
	uint64_t now = clock_mono_ms();
	shm_change_t ch;

	for (int n = 0; n < REPL_TOMB_PER_TICK; n++) {
		r->json.len = 0;
		int rc = shm_changes_next(r->shm, &r->tomb_cur, &ch, &r->json);
		if (rc == -EOVERFLOW)
			continue; /* moved to the oldest record held: go on from there */
		if (rc < 0)
			return;
		if (ch.type != SHM_CHANGE_DELETE || ch.reason != SHM_DEL_UNREGISTER || !r->json.len)
			continue;
		shm_instance_in_t si;
		if (instance_parse(r->parser, r->json.data, r->json.len, &si, NULL) == 0)
			tomb__add(r, &si.key, ch.origin_ms, now);
	}
}
