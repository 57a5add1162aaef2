/*
 * config.h - the node's configuration (config/config.c).
 *
 * The INI file of DESIGN.md §6, parsed with libinih.  config_defaults() gives
 * exactly what conf/artemis.conf holds, so a node without -c behaves as one
 * started with the shipped file.  Unknown sections or keys and invalid values
 * are errors reported as "file:line: message" (exit code 2 in the CLI).
 */
#ifndef ARTEMIS_CONFIG_H
#define ARTEMIS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_PEERS       63
#define CONFIG_STR             256
#define CONFIG_ORIGINS         1024
#define CONFIG_MAX_JAVA_PEERS  32
#define CONFIG_MIN_CLUSTER_KEY 16 /* bytes, when peers are configured */
#define CONFIG_MIN_JWT_SECRET  32 /* characters of [auth] jwt_secret */
#define CONFIG_MIN_PASSWORD    8  /* bytes of a password, [auth] initial_admin_password too */
#define CONFIG_MAX_PASSWORD    128

typedef struct {
	char name[64];
	char zone[64];
	char url[CONFIG_STR];       /* http-url, e.g. http://10.0.0.2:8080 */
	char repl_addr[CONFIG_STR]; /* host:port of its replication listener */
} config_peer_t;

/* An address or a network ([cluster] java_peers). */
typedef struct {
	unsigned char addr[16]; /* IPv6; IPv4 as ::ffff:a.b.c.d */
	unsigned char bits;     /* prefix length over those 128 bits */
} config_net_t;

typedef struct {
	/* [node] */
	char name[64];
	char region[64];
	char zone[64];
	char listen[CONFIG_STR]; /* host:port */
	int workers;             /* 0 = one per CPU */
	char data_dir[CONFIG_STR];
	bool allow_registry_from_other_zone;  /* default true (Java packaged) */
	bool allow_discovery_from_other_zone; /* default true */
	char user[64];                        /* children run as this user when started as root;
	                                       * "" = stay as started */

	/* [registry] */
	char shm_name[CONFIG_STR];
	uint32_t max_instances;
	uint32_t max_services;
	uint32_t changelog_size;
	uint32_t lease_ttl_ms;
	uint32_t legacy_lease_ttl_ms;
	uint32_t reap_interval_ms;
	bool self_preservation;
	uint32_t preserve_window_ms;
	uint32_t legacy_preserve_window_ms;
	uint32_t rate_limit;    /* register/heartbeat/unregister requests per 10 s
	                         * per worker and operation; 0 = no limit */
	uint32_t lock_wait_ms;  /* a writer's wait for the writer lock */
	uint32_t lock_stall_ms; /* the master kills a child holding it this long */

	/* [http] */
	uint32_t max_header_bytes;
	uint32_t max_body_bytes; /* after decompression too; 413 beyond */
	uint32_t idle_timeout_ms;
	uint32_t header_timeout_ms;        /* a request head must arrive within this */
	uint32_t body_timeout_ms;          /* a request body must arrive within this */
	uint32_t write_timeout_ms;         /* unsent output without progress this long: close */
	uint32_t max_connections;          /* per worker */
	uint32_t output_budget_bytes;      /* unsent output of all connections, per worker */
	uint32_t max_response_bytes;       /* one response body */
	char cors_origins[CONFIG_ORIGINS]; /* "*" or origins separated by blanks/commas */
	uint32_t response_cache_bytes;     /* serialized service responses kept per worker */
	bool console;                      /* serve the web console under /console/ */
	char console_dir[CONFIG_STR];      /* its files; "" = found next to the binary */
	char tls_cert[CONFIG_STR];         /* PEM certificate chain; "" = no TLS */
	char tls_key[CONFIG_STR];          /* PEM private key of tls_cert */
	char tls_listen[CONFIG_STR];       /* host:port of a second, TLS listener; "" = the
	                                    * main listener is TLS when tls_cert is set */
	bool trust_forwarded_for;          /* a caller's address is the first X-Forwarded-For hop
	                                    * (routing's canary whitelist) */

	/* [websocket] */
	uint32_t ws_session_ttl_ms;
	uint32_t ws_max_message_bytes;
	uint32_t ws_max_output_bytes;

	/* [management] */
	uint32_t mgmt_max_operations;  /* keys (instances, servers, zones) operated down at once */
	uint32_t mgmt_busy_timeout_ms; /* a management write waits this long for another */
	uint32_t mgmt_store_max_pages; /* the store may not grow beyond (0 = no cap; tests) */
	uint32_t mgmt_routing_bytes;   /* room for the routing image in the region */

	/* [auth] */
	bool auth_enabled;                       /* off: no credential is checked (labs) */
	char jwt_secret[CONFIG_STR];             /* HS256 key; "" = generated once into the store */
	uint32_t token_ttl_s;                    /* lifetime of an access token (and its session) */
	char initial_admin_password[CONFIG_STR]; /* the first admin's; "" = random, written
	                                          * to <data_dir>/initial-admin-password */
	uint32_t login_max_failures;             /* failed logins of a username before a lockout */
	uint32_t login_max_failures_ip;          /* ... of a source address */
	uint32_t login_lockout_s;       /* the first lockout; doubles per further failure */
	uint32_t login_lockout_max_s;   /* its cap; failures older than this are forgotten */
	uint32_t login_history_days;    /* login records kept this long */
	uint32_t password_memlimit_kib; /* Argon2id memory per hash */
	uint32_t password_opslimit;     /* Argon2id passes */

	/* [log] */
	char log_file[CONFIG_STR]; /* "" = stderr */
	char log_level[16];

	/* [cluster] */
	char cluster_listen[CONFIG_STR];
	char cluster_key[CONFIG_STR];
	uint32_t bootstrap_timeout_ms;
	uint32_t digest_interval_ms;
	bool cluster_encrypt; /* encrypt replication frames (they are always authenticated) */
	bool cluster_tls;     /* each link in TLS, peers verified against tls_ca */
	char cluster_tls_cert[CONFIG_STR]; /* PEM certificate (chain) this node shows */
	char cluster_tls_key[CONFIG_STR];  /* PEM private key of cluster_tls_cert */
	char cluster_tls_ca[CONFIG_STR];   /* PEM CA certificate(s) peers' certificates chain to */
	uint32_t mgmt_tombstone_ttl_s;     /* management tombstones every peer has live this long */
	int njava_peers;                   /* 0: the Java HTTP replication endpoints are off */
	config_net_t java_peers[CONFIG_MAX_JAVA_PEERS];
	int npeers;
	config_peer_t peers[CONFIG_MAX_PEERS];

	/* Derived, not keys: where the config came from ("" = built-in). */
	char path[CONFIG_STR];
} config_t;

void config_defaults(config_t *cfg);

/* Parse an INI file over the defaults.  On error returns -1 and writes
 * "file:line: message" to err. */
int config_load(config_t *cfg, const char *path, char *err, size_t err_len);

/* Set one key as the INI file would ([section] key = value); used for the
 * command-line overrides.  Returns 0, or -1 with a message in err. */
int config_set(config_t *cfg, const char *section, const char *key, const char *value, char *err,
               size_t err_len);

/* Apply the ARTEMIS_<SECTION>_<KEY>=value variables of envp (NULL: the
 * process environment) as config_set would: over the file, under the
 * command line.  Variables naming no section are ignored; an unknown key
 * of a known section or an invalid value is an error ("environment
 * ARTEMIS_X: message").  ARTEMIS_CLUSTER_PEER replaces the peer list
 * (peers separated by ','). */
int config_apply_env(config_t *cfg, char *const *envp, char *err, size_t err_len);

/* Fill derived defaults (name from listen, shm_name from name, workers from
 * CPUs) after command-line overrides, and check what involves several keys
 * (with peers, [cluster] key must not be the default nor shorter than
 * CONFIG_MIN_CLUSTER_KEY bytes).  Returns -1 with a message on error. */
int config_finish(config_t *cfg, char *err, size_t err_len);

/* True when the textual address `ip` (as accept() gave it) is in one of
 * the n networks. */
bool config_net_match(const config_net_t *nets, int n, const char *ip);

/* Split "host:port". Returns 0 or -1. */
int config_split_hostport(const char *s, char *host, size_t host_len, int *port);

#endif
