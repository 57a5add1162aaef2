/*
 * workload.h - what the HTTP modes of artemis-bench share (workload.c):
 * the command line, the synthetic instances (ids, services, ownership by
 * target node), the request bodies of API.md §2, the registration phase,
 * and the report (a table, or one JSON line).
 */
#ifndef ARTEMIS_BENCH_WORKLOAD_H
#define ARTEMIS_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"

typedef struct {
	const char *mode;
	bench_target_t targets[BENCH_MAX_TARGETS];
	unsigned ntargets;
	unsigned connections;
	unsigned pipeline;
	double rate;     /* requests/s; 0 = flat out */
	double duration; /* seconds */
	double timeout;  /* seconds */
	uint32_t instances;
	uint32_t services;
	uint32_t batch;
	uint32_t metadata;  /* bytes of the serialized metadata map */
	double interval_ms; /* heartbeat: every instance this often */
	uint32_t setup_batch;
	bool setup; /* register the instances first */
	bool gzip;
	bool json;
	double churn_pct;     /* mixed: % of the instances replaced per minute */
	double lookup_rate;   /* mixed: lookups/s */
	double progress;      /* seconds between progress lines */
	uint32_t subscribers; /* ws-subscribe: WebSocket sessions */
	const char *ws_path;  /* ws-subscribe: the push endpoint */
	char prefix[32];      /* instance id prefix */
	char region[64];
	char zone[64];
	const char *label;
	const char *percentiles_file;
	uint64_t seed;
} wl_opts_t;

/* Parse the options shared by every HTTP mode; mode-specific defaults are
 * set by the caller beforehand.  0, 1 after --help, or 2 on a usage error
 * (with a message on stderr). */
int wl_parse(wl_opts_t *o, int argc, char **argv, void (*usage)(FILE *f));
void wl_usage_common(FILE *f);

/* Instance i: service i % services, owned by target i % ntargets (the node
 * its registrations and heartbeats go to, as a client sticks to one node);
 * gen > 0 names the instance that replaced it gen times (churn). */
void wl_instance_id(const wl_opts_t *o, uint32_t i, uint32_t gen, char *out, size_t n);
void wl_service_id(const wl_opts_t *o, uint32_t s, char *out, size_t n);

/* One element of "instances": full for register, key and url otherwise. */
void wl_instance_json(const wl_opts_t *o, bbuf_t *b, uint32_t i, uint32_t gen, bool full);
/* A lookup.json body for the given services. */
void wl_lookup_json(const wl_opts_t *o, bbuf_t *b, const uint32_t *svcs, unsigned n);

/* Instances owned by target t, and the k-th of them. */
uint32_t wl_owned(const wl_opts_t *o, unsigned t);
static inline uint32_t wl_owned_nth(const wl_opts_t *o, unsigned t, uint32_t k)
{
	return k * o->ntargets + t;
}

uint64_t wl_rand(uint64_t *x);

/* Register every instance (batches of setup_batch, flat out); prints one
 * line; 0, or 1 when any registration failed. */
int wl_register_all(const wl_opts_t *o);

/* The class that registers instances [0, instances) once each, batch B,
 * each on its owner: used by the setup phase and by `register`. */
typedef struct {
	const wl_opts_t *o;
	uint32_t batch;
	uint32_t next[BENCH_MAX_TARGETS]; /* per target: next owned index */
} wl_reg_ctx_t;
void wl_register_class(bench_class_t *c, wl_reg_ctx_t *ctx, const wl_opts_t *o, uint32_t batch);

/* Report: a table on stdout, or one JSON line.  Extra JSON members (without
 * braces, may be NULL) are appended to the top-level object. */
void wl_report(const wl_opts_t *o, bench_run_t *run, bench_class_t **cls, unsigned n,
               const char *extra_json);
void wl_progress(bench_run_t *run, bench_class_t **cls, unsigned n, double at);

#endif
