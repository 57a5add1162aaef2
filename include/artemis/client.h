/*
 * artemis/client.h - libartemis-client, the C client of Artemis (the one
 * public header of build/libartemis-client.so and .a; docs/CLIENT.md is the
 * guide).
 *
 * What it does, after Java Artemis's own client (API.md §6 of the design):
 *   - registry: artemis_register() registers instances and keeps them alive:
 *     heartbeats over the WebSocket /artemis/websocket/registry/heartbeat
 *     (HTTP heartbeat.json when no session is open), every lease_ttl/4 of
 *     the TTL the renewing node tells (status/config.json) unless the
 *     application sets ARTEMIS_OPT_LEASE_TTL_MS;
 *     an instance a node answers "data-not-found" for is registered again;
 *     artemis_unregister() and artemis_client_free() unregister;
 *   - discovery: artemis_discover() answers from a cache that WebSocket
 *     pushes (/artemis/websocket/discovery/instance-change) keep current,
 *     with a periodic full reload as a safety net; artemis_subscribe() calls
 *     you on every change; artemis_service_choose() picks an instance by the
 *     service's route rules (weighted round robin over the rule's groups,
 *     close-by-visit, the default group), skipping instances not up;
 *   - failover: a list of node URLs plus the nodes the cluster reports
 *     (/artemis/api/cluster/up-*-nodes.json); a node that fails is skipped
 *     and retried later with backoff; every call has a connect timeout and
 *     a whole-call deadline, failover included;
 *   - artemis_call(): any other request (management, status) with the same
 *     failover and deadlines and an optional bearer token.
 *
 * Conventions:
 *   - Handles are opaque.  Functions that can fail return ARTEMIS_OK (0) or
 *     a negative ARTEMIS_E_* code, and fill *err when err is not NULL.
 *     NULL or over-long arguments give ARTEMIS_E_INVAL, never a crash.
 *   - Thread safety: every function may be called from any thread at any
 *     time, except that artemis_client_free() must be the last call on a
 *     client.  Service snapshots and instances obtained from the library
 *     are immutable and may be shared between threads.
 *   - Background work (heartbeats, pushes, reloads, node refresh) runs on
 *     the client's own thread, started when first needed, or on the
 *     caller's libevent base (artemis_options_set_event_base()).  Change
 *     callbacks run there.  Calls that talk to a node (register, lookup, a
 *     cache miss, artemis_call) block the calling thread up to the request
 *     timeout; from a callback they block the background work meanwhile.
 *   - No global state: clients are independent of each other.
 *   - Only http:// node URLs (the Java client also speaks only ws://).
 */
#ifndef ARTEMIS_CLIENT_H
#define ARTEMIS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ARTEMIS_API __attribute__((visibility("default")))
#else
#define ARTEMIS_API
#endif

#define ARTEMIS_CLIENT_VERSION "1.0.0"

struct event_base;

/* ------------------------------------------------------------- errors -- */

enum {
	ARTEMIS_OK = 0,
	ARTEMIS_E_INVAL = -1,    /* bad argument: NULL, blank, too long, out of range */
	ARTEMIS_E_NOMEM = -2,    /* out of memory */
	ARTEMIS_E_CONNECT = -3,  /* no node could be reached, or it closed the connection */
	ARTEMIS_E_TIMEOUT = -4,  /* no complete answer before the deadline */
	ARTEMIS_E_PROTO = -5,    /* an answer that is not HTTP, WebSocket or the expected JSON */
	ARTEMIS_E_HTTP = -6,     /* an HTTP status >= 300 where the call needs 200 */
	ARTEMIS_E_SERVER = -7,   /* the node refused: err->server_code has its errorCode */
	ARTEMIS_E_NOTFOUND = -8, /* no such lease, route rule or subscription; nothing to choose */
	ARTEMIS_E_STATE = -9,    /* not now: the client is closing, or the object is read-only */
	ARTEMIS_E_LIMIT = -10,   /* a configured limit is reached (instances, services, ...) */
	ARTEMIS_E_SYS = -11,     /* a system call failed (thread, socket, event base) */
};

/* What went wrong, filled by every function that takes one (may be NULL). */
typedef struct artemis_error {
	int code;             /* ARTEMIS_OK or an ARTEMIS_E_* code */
	int http_status;      /* the last HTTP status received, 0 when none */
	char server_code[32]; /* the node's errorCode ("data-not-found", ...) or "" */
	char message[256];    /* for people: what failed, and where */
} artemis_error_t;

/* A static description of an ARTEMIS_E_* code ("timeout", ...). */
ARTEMIS_API const char *artemis_strerror(int code);

/* Free memory the library handed out as a plain char * (artemis_instance_to_json). */
ARTEMIS_API void artemis_free(void *p);

/* ------------------------------------------------------------ options -- */

typedef struct artemis_options artemis_options_t;

typedef enum {
	/* strings */
	ARTEMIS_OPT_REGION = 1, /* the caller's region; default: the first node's */
	ARTEMIS_OPT_ZONE,       /* the caller's zone; default: the first node's */
	ARTEMIS_OPT_TOKEN,      /* bearer token for artemis_call(); default none */
	/* integers */
	ARTEMIS_OPT_CONNECT_TIMEOUT_MS = 100, /* TCP connect, per node: 1000 */
	ARTEMIS_OPT_REQUEST_TIMEOUT_MS,       /* a whole call, failover included: 5000 */
	ARTEMIS_OPT_LEASE_TTL_MS,             /* the nodes' lease TTL: 20000 until a node
	                                       * tells its own; set: never asked */
	ARTEMIS_OPT_HEARTBEAT_INTERVAL_MS,    /* 0 = lease_ttl/4; must be < lease_ttl/3
	                                       * (of a node's TTL too, else its TTL/4) */
	ARTEMIS_OPT_RELOAD_INTERVAL_MS,       /* full reload of cached services: 60000 */
	ARTEMIS_OPT_NODES_REFRESH_MS,         /* up-*-nodes.json: 300000 */
	ARTEMIS_OPT_BACKOFF_MAX_MS,           /* a failed node is retried after 250 ms
	                                       * doubling up to this: 30000 */
	ARTEMIS_OPT_WEBSOCKET,                /* 1: heartbeats and pushes over WebSocket;
	                                       * 0: HTTP heartbeats, reloads only: 1 */
	ARTEMIS_OPT_UNREGISTER_ON_CLOSE,      /* artemis_client_free unregisters: 1 */
	ARTEMIS_OPT_MAX_INSTANCES,            /* instances kept alive: 100000 */
	ARTEMIS_OPT_MAX_SERVICES,             /* services cached: 10000 */
	ARTEMIS_OPT_MAX_RESPONSE_BYTES,       /* largest answer read: 67108864 */
	ARTEMIS_OPT_WS_MESSAGE_BYTES,         /* heartbeat batch per WebSocket message;
	                                       * below the nodes' [websocket]
	                                       * max_message_bytes: 60000 */
} artemis_option_t;

ARTEMIS_API artemis_options_t *artemis_options_new(void);
ARTEMIS_API void artemis_options_free(artemis_options_t *o);
/* Add node URLs: "http://host:port[/base-path]", several separated by
 * commas or whitespace.  At least one is required. */
ARTEMIS_API int artemis_options_add_url(artemis_options_t *o, const char *urls);
ARTEMIS_API int artemis_options_set_str(artemis_options_t *o, artemis_option_t opt,
                                        const char *value);
ARTEMIS_API int artemis_options_set_int(artemis_options_t *o, artemis_option_t opt, long value);
/* Run background work on this base instead of a thread of the library's.
 * Then create, use the callbacks of, and free the client on the thread that
 * runs the base (or while it is not running); other calls may come from any
 * thread. */
ARTEMIS_API int artemis_options_set_event_base(artemis_options_t *o, struct event_base *base);

/* ------------------------------------------------------------- client -- */

typedef struct artemis_client artemis_client_t;

/* The options are copied; free them when you like. */
ARTEMIS_API int artemis_client_new(const artemis_options_t *o, artemis_client_t **out,
                                   artemis_error_t *err);
/* Unregister what is registered (unless ARTEMIS_OPT_UNREGISTER_ON_CLOSE is
 * 0; bounded by the request timeout), stop background work, free the
 * client.  Snapshots and instances you still hold stay valid.  Called from
 * one of the client's own callbacks, the client is freed once it returns. */
ARTEMIS_API void artemis_client_free(artemis_client_t *c);

typedef enum {
	ARTEMIS_STAT_REGISTERED = 0,     /* instances kept alive now */
	ARTEMIS_STAT_HEARTBEATS,         /* instance renewals answered with success */
	ARTEMIS_STAT_HEARTBEATS_HTTP,    /* of which over HTTP */
	ARTEMIS_STAT_HEARTBEAT_FAILURES, /* renewals refused or lost */
	ARTEMIS_STAT_REREGISTERS,        /* instances registered again after data-not-found */
	ARTEMIS_STAT_PUSHES,             /* instance changes received over WebSocket */
	ARTEMIS_STAT_RELOADS,            /* services fetched again (marker, timer, reconnect) */
	ARTEMIS_STAT_NODE_FAILURES,      /* times a node was marked unavailable */
	ARTEMIS_STAT_WS_SESSIONS,        /* WebSocket sessions opened */
	ARTEMIS_STAT_CACHED_SERVICES,    /* services in the cache now */
	ARTEMIS_STAT_NODES,              /* nodes known now: given, and learnt from the cluster */
	ARTEMIS_STAT_COUNT
} artemis_stat_t;

ARTEMIS_API uint64_t artemis_client_stat(artemis_client_t *c, artemis_stat_t which);

/* The node registry traffic goes to now ("http://host:port"), into buf. */
ARTEMIS_API int artemis_client_node(artemis_client_t *c, char *buf, size_t len);

/* ---------------------------------------------------------- instances -- */

typedef struct artemis_instance artemis_instance_t;

typedef enum {
	ARTEMIS_F_REGION = 0, /* regionId: default the client's region */
	ARTEMIS_F_ZONE,       /* zoneId: default the client's zone */
	ARTEMIS_F_GROUP,      /* groupId (a group name) */
	ARTEMIS_F_SERVICE,    /* serviceId: required */
	ARTEMIS_F_INSTANCE,   /* instanceId: required */
	ARTEMIS_F_MACHINE,    /* machineName */
	ARTEMIS_F_IP,         /* ip */
	ARTEMIS_F_PROTOCOL,   /* protocol */
	ARTEMIS_F_URL,        /* url: required (or ip and port: http://ip:port) */
	ARTEMIS_F_HEALTH_CHECK_URL,
	ARTEMIS_F_STATUS, /* "up" (default when registering), "down", ... */
	ARTEMIS_F_COUNT
} artemis_field_t;

/* A new instance you own (free it with artemis_instance_free). url may be
 * NULL when ip and port are set later. */
ARTEMIS_API int artemis_instance_new(const char *service_id, const char *instance_id,
                                     const char *url, artemis_instance_t **out);
/* value NULL removes the field.  Instances from the library are read-only
 * (ARTEMIS_E_STATE). */
ARTEMIS_API int artemis_instance_set(artemis_instance_t *i, artemis_field_t f, const char *value);
ARTEMIS_API int artemis_instance_set_port(artemis_instance_t *i, int port);
/* value NULL removes the key. */
ARTEMIS_API int artemis_instance_set_meta(artemis_instance_t *i, const char *key,
                                          const char *value);
/* NULL when absent (or i NULL). */
ARTEMIS_API const char *artemis_instance_get(const artemis_instance_t *i, artemis_field_t f);
ARTEMIS_API int artemis_instance_port(const artemis_instance_t *i);
ARTEMIS_API const char *artemis_instance_meta(const artemis_instance_t *i, const char *key);
ARTEMIS_API size_t artemis_instance_meta_count(const artemis_instance_t *i);
/* The idx-th metadata pair, in the order received or set. */
ARTEMIS_API int artemis_instance_meta_at(const artemis_instance_t *i, size_t idx, const char **key,
                                         const char **value);
/* True for status "up" or no status: what artemis_service_choose picks from. */
ARTEMIS_API int artemis_instance_is_up(const artemis_instance_t *i);
/* The Instance JSON (sorted keys, nulls included); free with artemis_free. */
ARTEMIS_API char *artemis_instance_to_json(const artemis_instance_t *i);
/* A copy you own and may change. */
ARTEMIS_API int artemis_instance_copy(const artemis_instance_t *i, artemis_instance_t **out);
/* Give back an instance from artemis_instance_new, _copy or artemis_choose. */
ARTEMIS_API void artemis_instance_free(artemis_instance_t *i);

/* ----------------------------------------------------------- registry -- */

/* Register the instance (POST register.json) and keep it alive until
 * artemis_unregister() or artemis_client_free().  The instance is copied.
 * Registering the same key (region, service, instance; any case) again
 * replaces it.  When no node can be reached the call fails with
 * ARTEMIS_E_CONNECT or _TIMEOUT and the instance stays in the client's set:
 * the background heartbeat registers it once a node answers (Java's client
 * does the same); a refusal by the node (no-permission, bad-request) drops
 * it and gives ARTEMIS_E_SERVER. */
ARTEMIS_API int artemis_register(artemis_client_t *c, const artemis_instance_t *i,
                                 artemis_error_t *err);
/* The same for n instances in one request; fails with the first refusal. */
ARTEMIS_API int artemis_register_many(artemis_client_t *c, const artemis_instance_t *const *list,
                                      size_t n, artemis_error_t *err);
/* Stop keeping it alive and POST unregister.json (also for one not kept). */
ARTEMIS_API int artemis_unregister(artemis_client_t *c, const artemis_instance_t *i,
                                   artemis_error_t *err);

typedef enum {
	ARTEMIS_OP_REGISTER = 0,
	ARTEMIS_OP_HEARTBEAT,
	ARTEMIS_OP_UNREGISTER,
} artemis_registry_op_t;

/* One registry request for one instance, nothing kept alive (the command
 * line's register/heartbeat/unregister).  A heartbeat for an unknown or
 * expired lease gives ARTEMIS_E_NOTFOUND (server_code "data-not-found"). */
ARTEMIS_API int artemis_registry_send(artemis_client_t *c, artemis_registry_op_t op,
                                      const artemis_instance_t *i, artemis_error_t *err);

/* ---------------------------------------------------------- discovery -- */

typedef struct artemis_service artemis_service_t;

/* The service from the cache; the first call for a service fetches it
 * (lookup.json) and subscribes to its changes.  Release the snapshot. */
ARTEMIS_API int artemis_discover(artemis_client_t *c, const char *service_id,
                                 artemis_service_t **out, artemis_error_t *err);
/* The service fetched now (lookup.json); nothing cached or subscribed. */
ARTEMIS_API int artemis_lookup(artemis_client_t *c, const char *service_id, artemis_service_t **out,
                               artemis_error_t *err);
/* Every service with instances (services.json): an array of n snapshots;
 * give it back with artemis_service_list_free. */
ARTEMIS_API int artemis_services(artemis_client_t *c, artemis_service_t ***out, size_t *n,
                                 artemis_error_t *err);
ARTEMIS_API void artemis_service_list_free(artemis_service_t **list, size_t n);

ARTEMIS_API artemis_service_t *artemis_service_retain(artemis_service_t *s);
ARTEMIS_API void artemis_service_release(artemis_service_t *s);
ARTEMIS_API const char *artemis_service_id(const artemis_service_t *s);
ARTEMIS_API size_t artemis_service_size(const artemis_service_t *s);
/* The idx-th instance, valid while you hold the snapshot (NULL past the end). */
ARTEMIS_API const artemis_instance_t *artemis_service_instance(const artemis_service_t *s,
                                                               size_t idx);
/* The Service JSON: {"instances","logicInstances","metadata","routeRules",
 * "serviceId"}, instances in key order.  Valid while you hold it. */
ARTEMIS_API const char *artemis_service_json(const artemis_service_t *s);
/* Route rules after the Java client's processing (empty groups dropped,
 * default-route-rule added): how many, and the idx-th rule's routeId. */
ARTEMIS_API size_t artemis_service_rule_count(const artemis_service_t *s);
ARTEMIS_API const char *artemis_service_rule_id(const artemis_service_t *s, size_t idx);

/* Pick an instance by a route rule: route_id NULL takes the first published
 * rule other than canary-route-rule, else default-route-rule.
 * weighted-round-robin: smooth weighted round robin over the rule's groups
 * that have an instance up, then round robin inside the group;
 * close-by-visit: the rule's instances in the caller's zone, else region,
 * else any.  Instances not up are skipped; a rule with no instance up falls
 * back to every instance of the service that is up.  ARTEMIS_E_NOTFOUND
 * when none is up (or route_id names no rule).  Thread-safe; *out is valid
 * while you hold s. */
ARTEMIS_API int artemis_service_choose(artemis_service_t *s, const char *route_id,
                                       const artemis_instance_t **out);
/* artemis_discover + artemis_service_choose; *out is yours to free. */
ARTEMIS_API int artemis_choose(artemis_client_t *c, const char *service_id, const char *route_id,
                               artemis_instance_t **out, artemis_error_t *err);

/* ------------------------------------------------------------ changes -- */

typedef enum {
	ARTEMIS_CHANGE_NEW = 0,
	ARTEMIS_CHANGE_DELETE,
	ARTEMIS_CHANGE_CHANGE,
	ARTEMIS_CHANGE_RELOAD, /* the whole service was fetched again and differs */
} artemis_change_type_t;

typedef struct artemis_change artemis_change_t;

ARTEMIS_API artemis_change_type_t artemis_change_type(const artemis_change_t *ch);
/* "new", "delete", "change" or "reload". */
ARTEMIS_API const char *artemis_change_type_name(const artemis_change_t *ch);
/* The instance pushed (NULL for a reload). */
ARTEMIS_API const artemis_instance_t *artemis_change_instance(const artemis_change_t *ch);
/* The service after the change: borrowed during the callback (retain it to keep). */
ARTEMIS_API artemis_service_t *artemis_change_service(const artemis_change_t *ch);
/* changeTime of the push (epoch ms), or when the reload was done. */
ARTEMIS_API int64_t artemis_change_time(const artemis_change_t *ch);
/* The InstanceChange JSON as pushed (new, delete, change); for a reload
 * {"changeTime":T,"changeType":"reload","serviceId":S}, made by the client
 * when a fetch (after a reload marker, a resubscription or the timer)
 * found the service changed.  Valid during the callback. */
ARTEMIS_API const char *artemis_change_json(const artemis_change_t *ch);

typedef void (*artemis_change_fn)(const artemis_change_t *ch, void *arg);

/* Call fn on the background thread after each change of the service
 * (discovering it first, as artemis_discover).  *id identifies the
 * subscription for artemis_unsubscribe. */
ARTEMIS_API int artemis_subscribe(artemis_client_t *c, const char *service_id, artemis_change_fn fn,
                                  void *arg, uint64_t *id, artemis_error_t *err);
/* After it returns fn is not called again for id (unless it is running on
 * another thread right now: the background thread, when you are not on it). */
ARTEMIS_API int artemis_unsubscribe(artemis_client_t *c, uint64_t id);

/* -------------------------------------------------------- other calls -- */

typedef struct artemis_response artemis_response_t;

/* Any request to a node: method ("GET", "POST", "PUT", "DELETE", ...),
 * path ("/api/management/..."), an optional JSON body, an optional bearer
 * token (NULL: ARTEMIS_OPT_TOKEN; "" none).  Transport failures and HTTP
 * 502/503/504 fail over to another node; any other answer is returned, with
 * its status, as ARTEMIS_OK. */
ARTEMIS_API int artemis_call(artemis_client_t *c, const char *method, const char *path,
                             const char *json_body, const char *token, artemis_response_t **out,
                             artemis_error_t *err);
ARTEMIS_API int artemis_response_status(const artemis_response_t *r);
/* The body, NUL-terminated; *len (may be NULL) gets its length. */
ARTEMIS_API const char *artemis_response_body(const artemis_response_t *r, size_t *len);
/* The node that answered. */
ARTEMIS_API const char *artemis_response_node(const artemis_response_t *r);
ARTEMIS_API void artemis_response_free(artemis_response_t *r);

#ifdef __cplusplus
}
#endif

#endif
