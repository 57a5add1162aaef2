/*
 * mgmt.h - the operators' half (module mgmt/): the management store, its
 * model, and its projection into the region (MANAGEMENT.md §1, §2, §4).
 *
 * The store is SQLite at <data_dir>/artemis.db: the operations in force on
 * instances, servers and zones (Java's tables, API.md §5.6) and the audit
 * trail every management write leaves.  It is configuration, not soft
 * state: `--fresh` never touches it.  Every process opens its own
 * connection; none is carried across fork().
 *
 * The projection is what discovery needs of the store: the set of keys
 * operated down, as the tags of shm.h, in the region's management section.
 * Discovery reads it lock-free on every path (mgmt_service_read, mgmt_down) and
 * never queries SQLite.  It is a pure function of the store: rebuilt from
 * it when the master starts and after a writer died, and verified against
 * it by `artemis check` (mgmt_check).
 *
 * Who calls what:
 *   - the master: mgmt_boot() at start (creates and migrates the store,
 *     builds the projection, closes the store before it forks),
 *     mgmt_repair() after a child died abnormally;
 *   - workers: mgmt_open() once after the fork, the writes and the reads
 *     below from their management handlers, mgmt_service_read()/mgmt_down() from
 *     discovery and push;
 *   - `artemis check`: mgmt_check().
 *
 * A write: validate, then under the section's robust writer lock one store
 * transaction (the operation rows, one audit record per key, the store
 * generation bumped), then the projection (a new table flipped in, then
 * notices: `delete`/`new` per instance whose visibility changed, `reload`
 * per service for zone changes), then the answer.  When mgmt_apply returns
 * 0 every worker already answers with the change.
 *
 * Errors are negative errno values:
 *   -EINVAL   a key field is missing, blank or too long (err names it)
 *   -ENOSPC   more keys would be in force than [management] max_operations
 *   -EIO      the store failed (err has SQLite's message), e.g. a full disk:
 *             nothing of the write was applied
 *   -EBUSY    another writer held the lock past the busy timeout
 *   -ENOENT   no such record
 *   -ENODEV   the region has no management section (or it is not built)
 */
#ifndef ARTEMIS_MGMT_H
#define ARTEMIS_MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/buf.h"
#include "artemis/config.h"
#include "artemis/shm.h"

/* Field limits in bytes (keys as the registry's; longer input is refused). */
#define MGMT_MAX_REGION     SHM_MAX_REGION
#define MGMT_MAX_SERVICE    SHM_MAX_SERVICE
#define MGMT_MAX_INSTANCE   SHM_MAX_INSTANCE
#define MGMT_MAX_SERVER     SHM_MAX_IP
#define MGMT_MAX_ZONE       SHM_MAX_ZONE
#define MGMT_MAX_OPERATION  64
#define MGMT_MAX_OPERATOR   128
#define MGMT_MAX_TOKEN      1024
#define MGMT_MAX_REASON     256
#define MGMT_MAX_EXTENSIONS 2048
#define MGMT_MAX_BATCH      1000 /* keys in one write */
#define MGMT_MAX_ERR        256  /* room for an error message */

#define MGMT_DB_FILE "artemis.db"

/* Bytes of the region's management section for a capacity of max_operations
 * keys in force (shm_params_t.mgmt_bytes). */
uint64_t mgmt_section_bytes(uint32_t max_operations);

/* ---- The model ------------------------------------------------------------ */

typedef enum { MGMT_INSTANCE = 0, MGMT_SERVER, MGMT_ZONE, MGMT_KINDS } mgmt_kind_t;

/* What an operation is on: its kind's fields (the others are ""), and the
 * free-form operation ("pullout").  Compared case-insensitively, as Java's
 * keys and MySQL's unique keys. */
typedef struct {
	mgmt_kind_t kind;
	char region[MGMT_MAX_REGION + 1];
	char service[MGMT_MAX_SERVICE + 1];   /* instance; zone ("" = every service) */
	char instance[MGMT_MAX_INSTANCE + 1]; /* instance */
	char server[MGMT_MAX_SERVER + 1];     /* server: the instances' ip */
	char zone[MGMT_MAX_ZONE + 1];         /* zone */
	char operation[MGMT_MAX_OPERATION + 1];
} mgmt_key_t;

/* Check a key's fields for its kind; *field names the culprit
 * ("regionId", ...).  -EINVAL (missing or blank) or -ENAMETOOLONG. */
int mgmt_key_check(const mgmt_key_t *k, const char **field);
/* Copy [s, s+len) into a key field of `size` bytes, blanks trimmed (Java
 * trims management keys).  -ENAMETOOLONG when it does not fit. */
int mgmt_field_set(char *dst, size_t size, const char *s, size_t len);
/* The projection tag of a key (its kind's shm_tag). */
uint64_t mgmt_key_tag(const shm_t *shm, const mgmt_key_t *k);

typedef struct {
	mgmt_key_t key;
	bool insert; /* true: put the operation in force (pull-out); false: remove it */
} mgmt_change_t;

/* Who writes, and the rest of Java's OperationContext. */
typedef struct {
	const char *operator_id; /* required */
	const char *token;       /* may be NULL; stored, never logged */
	const char *reason;
	const char *extensions;  /* JSON text; NULL = "{}" */
	int complete;            /* operationComplete as the request gave it: -1 absent */
	const char *surface;     /* "java" or "rust": recorded in the audit details */
} mgmt_ctx_t;

/* ---- Process lifecycle ------------------------------------------------------- */

typedef struct mgmt mgmt_t;

/* A worker's handle: its own store connection (schema already migrated by
 * the master) and the region's projection. */
int mgmt_open(const config_t *cfg, shm_t *shm, mgmt_t **out, char *err, size_t err_len);
void mgmt_close(mgmt_t *m);

/* The master at start: create or migrate the store, build the projection
 * from it, close the store.  err gets the store's path and SQLite's
 * message on failure. */
int mgmt_boot(const config_t *cfg, shm_t *shm, char *err, size_t err_len);
/* The master after a child ended abnormally: when that child died holding
 * the projection's writer lock, rebuild the projection from the store.
 * 1 repaired, 0 nothing to do, -EBUSY a live writer holds the lock (it, or
 * the next locker, repairs), other negative values on error. */
int mgmt_repair(const config_t *cfg, shm_t *shm, char *err, size_t err_len);
/* `artemis check`: the projection (read-only handle allowed) equals the
 * store's keys in force at the store's generation.  0, or -EIO with the
 * first difference in msg. */
int mgmt_check(const config_t *cfg, shm_t *shm, char *msg, size_t msg_len);

/* ---- Discovery's filter (lock-free, no store) --------------------------------- */

/* 1 when any of an instance's tags is operated down, 0 when not, -EBUSY
 * when the projection was being rewritten under the reader every time. */
int mgmt_down(shm_t *shm, const uint64_t tags[SHM_TAGS]);
/* shm_service_read without the instances operated down ("[]" when that
 * leaves none; info->count is the number listed).  Lock-free: the filter
 * is a snapshot of the projection taken before the read and verified after
 * it (the read is done again, a bounded number of times, when the
 * projection was rewritten under it: -EBUSY after that).  Costs nothing per
 * instance while nothing is operated down.  A cache of the results reads
 * mgmt_generation() first: a change meanwhile makes its entry stale. */
int mgmt_service_read(shm_t *shm, shm_str_t service, buf_t *out, shm_service_info_t *info);
/* One key's tag in force (is-server-down, is-zone-down). */
int mgmt_tag_down(shm_t *shm, uint64_t tag);
/* Moves on every change of the projection: response caches keyed by a
 * service's version also compare it. */
uint64_t mgmt_generation(shm_t *shm);
/* Epoch ms of the last change of the projection, strictly increasing
 * (services.json versions). */
uint64_t mgmt_stamp_ms(shm_t *shm);

/* ---- Writes --------------------------------------------------------------------- */

/* Apply n changes in one transaction; one audit record per change.  A
 * change that is already so (inserting an operation in force, removing one
 * that is not) is recorded all the same.  err gets a message on failure. */
int mgmt_apply(mgmt_t *m, const mgmt_change_t *changes, size_t n, const mgmt_ctx_t *ctx,
               char *err, size_t err_len);

/* ---- Reads ------------------------------------------------------------------------ */

/* An operation in force. */
typedef struct {
	mgmt_key_t key;
	const char *operator_id;
	const char *token;
	uint64_t create_ms;
	uint64_t update_ms;
} mgmt_op_t;

/* NULL fields match anything; the others match case-insensitively, but
 * region_exact makes regionId an exact-case match (Java's all-*-operations
 * filters with String.equals). */
typedef struct {
	mgmt_kind_t kind;
	const char *region;
	const char *service;
	const char *instance;
	const char *server;
	const char *zone;
	const char *operation;
	bool region_exact;
} mgmt_op_filter_t;

typedef int (*mgmt_op_fn)(void *ctx, const mgmt_op_t *op);
/* In key order; stops when fn returns non-zero (and returns that). */
int mgmt_ops(mgmt_t *m, const mgmt_op_filter_t *f, mgmt_op_fn fn, void *ctx);

/* ---- The audit trail ------------------------------------------------------------------ */

/* One record: every management write leaves one per key it names. */
typedef struct {
	int64_t id;              /* logId: this node's, monotonic */
	const char *origin_node; /* with origin_seq: the cluster-wide identity */
	int64_t origin_seq;
	uint64_t time_ms;
	const char *type;      /* operationType: instance, server, zone, audit */
	const char *target;    /* targetId, e.g. "us-east/svc/inst-1" */
	const char *operation; /* "pullout", "cleanup", ... */
	const char *action;    /* "insert", "delete", "cleanup" */
	int complete;          /* operationComplete as given, -1 absent */
	const char *operator_id;
	const char *token;
	const char *reason;
	const char *extensions;
	const char *region, *service, *instance, *server, *zone; /* NULL when not the kind's */
	const char *details; /* JSON object: before, after, surface, ... */
	const char *result;  /* "SUCCESS" */
} mgmt_audit_t;

typedef struct {
	const char *type; /* operationType */
	const char *operator_id;
	const char *target;
	const char *operation;
	const char *region, *service, *instance, *server, *zone;
	int complete;     /* -1 any */
	uint64_t from_ms; /* inclusive; 0 = none */
	uint64_t to_ms;   /* inclusive; 0 = none */
	uint32_t limit;   /* 0 = no limit */
	uint32_t offset;
} mgmt_audit_filter_t;

/* Matching records, newest first. */
typedef int (*mgmt_audit_fn)(void *ctx, const mgmt_audit_t *rec);
int mgmt_audit_query(mgmt_t *m, const mgmt_audit_filter_t *f, mgmt_audit_fn fn, void *ctx);
/* One record by logId (-ENOENT). */
int mgmt_audit_get(mgmt_t *m, int64_t id, mgmt_audit_fn fn, void *ctx);
/* Counts of the matching records as a JSON object appended to out:
 * {"total","byOperationType","byOperator","byOperation","byResult",
 *  "oldestTime","newestTime"} (times epoch ms, null when none). */
int mgmt_audit_stats(mgmt_t *m, const mgmt_audit_filter_t *f, buf_t *out);
/* Delete the records older than before_ms (one transaction, which also
 * records the cleanup itself).  *deleted gets the count. */
int mgmt_audit_cleanup(mgmt_t *m, uint64_t before_ms, const mgmt_ctx_t *ctx, uint64_t *deleted,
                       char *err, size_t err_len);

/* Parse a time as the audit queries take it: epoch seconds or
 * milliseconds (numbers above 10^11 are milliseconds), or ISO 8601
 * ("2024-05-01", "2024-05-01T10:00:00Z", fractions, "+02:00" offsets).
 * 0 and *ms, or -EINVAL. */
int mgmt_parse_time(const char *s, uint64_t *ms);
/* ISO 8601 UTC with milliseconds ("2024-05-01T10:00:00.000Z") into out
 * (at least 25 bytes). */
void mgmt_format_time(uint64_t ms, char *out, size_t len);

#endif
