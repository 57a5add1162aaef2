/*
 * config.c - the node's configuration file (include/artemis/config.h).
 *
 * Called by the master (at start and on SIGHUP), by the command-line client
 * (to find the pid file and the region) and by tests.  Library code: it never
 * exits and never logs; every error comes back as "file:line: message".
 *
 * The file is read through ini_parse_stream() with our own line reader, so
 * we always know the line being parsed (the packaged libinih is built without
 * INI_HANDLER_LINENO) and can refuse lines longer than libinih's buffer
 * instead of letting it split them silently.
 *
 * Every key lives in one table (config_keys[]): section, name, kind, where it
 * is stored and its range.  Defaults are in config_defaults() and must equal
 * conf/artemis.conf; tests/unit/test_config.c holds the two together.
 */
#include "artemis/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "artemis/log.h"
#include "artemis/shm.h"

#define CONFIG_MAX_WORKERS 28 /* 2 generations during a reload fit SHM_MAX_PROCS */

enum key_kind {
	K_NAME,      /* [A-Za-z0-9._-], may be empty when min == 0 */
	K_STR,       /* any text without control characters */
	K_U32,       /* decimal, min..max */
	K_INT,       /* decimal, min..max, stored as int */
	K_BOOL,      /* on/off/true/false/yes/no/1/0 */
	K_HOSTPORT,  /* host:port */
	K_HOSTPORT0, /* host:port, or empty */
	K_LEVEL,     /* debug/info/warn/error */
	K_SHMNAME,   /* "" or "/name" */
	K_PEER,      /* "name zone http-url replication-addr", repeatable */
	K_ORIGINS,   /* "*", or scheme://host[:port] origins separated by blanks or commas */
	K_NETS,      /* addresses and networks (a/len), blank-separated */
};

typedef struct {
	const char *section;
	const char *name;
	enum key_kind kind;
	size_t off;
	size_t size;
	uint64_t min;
	uint64_t max;
} config_key_t;

#define F(field) offsetof(config_t, field), sizeof(((config_t *)0)->field)
#define MiB      (1024u * 1024u)

static const config_key_t config_keys[] = {
    {"node", "name", K_NAME, F(name), 0, 63},
    {"node", "region", K_NAME, F(region), 1, 63},
    {"node", "zone", K_NAME, F(zone), 1, 63},
    {"node", "listen", K_HOSTPORT, F(listen), 0, 0},
    {"node", "workers", K_INT, F(workers), 0, CONFIG_MAX_WORKERS},
    {"node", "data_dir", K_STR, F(data_dir), 1, CONFIG_STR - 32},
    {"node", "allow_registry_from_other_zone", K_BOOL, F(allow_registry_from_other_zone), 0, 0},
    {"node", "allow_discovery_from_other_zone", K_BOOL, F(allow_discovery_from_other_zone), 0, 0},
    {"node", "user", K_NAME, F(user), 0, 32},

    {"registry", "shm_name", K_SHMNAME, F(shm_name), 0, 0},
    {"registry", "max_instances", K_U32, F(max_instances), 16, 64u * MiB},
    {"registry", "max_services", K_U32, F(max_services), 16, 16u * MiB},
    {"registry", "changelog_size", K_U32, F(changelog_size), 1024, 16u * MiB},
    {"registry", "lease_ttl_ms", K_U32, F(lease_ttl_ms), SHM_MIN_TTL_MS, SHM_MAX_TTL_MS},
    {"registry", "legacy_lease_ttl_ms", K_U32, F(legacy_lease_ttl_ms), SHM_MIN_TTL_MS,
     SHM_MAX_TTL_MS},
    {"registry", "reap_interval_ms", K_U32, F(reap_interval_ms), 10, 60000},
    {"registry", "self_preservation", K_BOOL, F(self_preservation), 0, 0},
    {"registry", "preserve_window_ms", K_U32, F(preserve_window_ms), SHM_MIN_WINDOW_MS,
     SHM_MAX_WINDOW_MS},
    {"registry", "legacy_preserve_window_ms", K_U32, F(legacy_preserve_window_ms),
     SHM_MIN_WINDOW_MS, SHM_MAX_WINDOW_MS},
    {"registry", "rate_limit", K_U32, F(rate_limit), 0, 100000000},
    {"registry", "lock_wait_ms", K_U32, F(lock_wait_ms), 10, 60000},
    {"registry", "lock_stall_ms", K_U32, F(lock_stall_ms), 100, 3600000},

    {"http", "max_header_bytes", K_U32, F(max_header_bytes), 1024, 1 * MiB},
    {"http", "max_body_bytes", K_U32, F(max_body_bytes), 1024, 256 * MiB},
    {"http", "idle_timeout_ms", K_U32, F(idle_timeout_ms), 1000, 3600000},
    {"http", "header_timeout_ms", K_U32, F(header_timeout_ms), 100, 3600000},
    {"http", "body_timeout_ms", K_U32, F(body_timeout_ms), 100, 3600000},
    {"http", "write_timeout_ms", K_U32, F(write_timeout_ms), 100, 3600000},
    {"http", "max_connections", K_U32, F(max_connections), 1, 1000000},
    {"http", "output_budget_bytes", K_U32, F(output_budget_bytes), 1 * MiB, 4095u * MiB},
    {"http", "max_response_bytes", K_U32, F(max_response_bytes), 64 * 1024, 4095u * MiB},
    {"http", "cors_origins", K_ORIGINS, F(cors_origins), 0, CONFIG_ORIGINS - 1},
    {"http", "response_cache_bytes", K_U32, F(response_cache_bytes), 0, 1024 * MiB},
    {"http", "console", K_BOOL, F(console), 0, 0},
    {"http", "console_dir", K_STR, F(console_dir), 0, CONFIG_STR - 1},
    {"http", "tls_cert", K_STR, F(tls_cert), 0, CONFIG_STR - 1},
    {"http", "tls_key", K_STR, F(tls_key), 0, CONFIG_STR - 1},
    {"http", "tls_listen", K_HOSTPORT0, F(tls_listen), 0, 0},
    {"http", "trust_forwarded_for", K_BOOL, F(trust_forwarded_for), 0, 0},

    {"websocket", "session_ttl_ms", K_U32, F(ws_session_ttl_ms), 1000, 86400000},
    {"websocket", "max_message_bytes", K_U32, F(ws_max_message_bytes), 125, 16 * MiB},
    {"websocket", "max_output_bytes", K_U32, F(ws_max_output_bytes), 4096, 256 * MiB},

    {"management", "max_operations", K_U32, F(mgmt_max_operations), 16, 4u * MiB},
    {"management", "busy_timeout_ms", K_U32, F(mgmt_busy_timeout_ms), 1, 600000},
    {"management", "store_max_pages", K_U32, F(mgmt_store_max_pages), 0, 0xffffffffu},
    {"management", "routing_bytes", K_U32, F(mgmt_routing_bytes), 64 * 1024, 256 * MiB},

    {"auth", "enabled", K_BOOL, F(auth_enabled), 0, 0},
    {"auth", "jwt_secret", K_STR, F(jwt_secret), 0, CONFIG_STR - 1},
    {"auth", "token_ttl_s", K_U32, F(token_ttl_s), 60, 31536000},
    {"auth", "initial_admin_password", K_STR, F(initial_admin_password), 0, CONFIG_STR - 1},
    {"auth", "login_max_failures", K_U32, F(login_max_failures), 1, 1000000},
    {"auth", "login_max_failures_ip", K_U32, F(login_max_failures_ip), 1, 1000000},
    {"auth", "login_lockout_s", K_U32, F(login_lockout_s), 1, 86400},
    {"auth", "login_lockout_max_s", K_U32, F(login_lockout_max_s), 1, 604800},
    {"auth", "login_history_days", K_U32, F(login_history_days), 1, 3650},
    {"auth", "password_memlimit_kib", K_U32, F(password_memlimit_kib), 8192, 4u * 1024 * 1024},
    {"auth", "password_opslimit", K_U32, F(password_opslimit), 1, 32},

    {"log", "file", K_STR, F(log_file), 0, CONFIG_STR - 1},
    {"log", "level", K_LEVEL, F(log_level), 0, 0},

    {"cluster", "listen", K_HOSTPORT, F(cluster_listen), 0, 0},
    {"cluster", "key", K_STR, F(cluster_key), 1, CONFIG_STR - 1},
    {"cluster", "bootstrap_timeout_ms", K_U32, F(bootstrap_timeout_ms), 0, 600000},
    {"cluster", "digest_interval_ms", K_U32, F(digest_interval_ms), 1000, 3600000},
    {"cluster", "encrypt", K_BOOL, F(cluster_encrypt), 0, 0},
    {"cluster", "tls", K_BOOL, F(cluster_tls), 0, 0},
    {"cluster", "tls_cert", K_STR, F(cluster_tls_cert), 0, CONFIG_STR - 1},
    {"cluster", "tls_key", K_STR, F(cluster_tls_key), 0, CONFIG_STR - 1},
    {"cluster", "tls_ca", K_STR, F(cluster_tls_ca), 0, CONFIG_STR - 1},
    {"cluster", "mgmt_tombstone_ttl_s", K_U32, F(mgmt_tombstone_ttl_s), 0, 31536000},
    {"cluster", "java_peers", K_NETS, 0, 0, 0, 0},
    {"cluster", "peer", K_PEER, 0, 0, 0, 0},
};

#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

void config_defaults(config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* [node] */
	strcpy(cfg->region, "us-east");
	strcpy(cfg->zone, "zone-1");
	strcpy(cfg->listen, "0.0.0.0:8080");
	cfg->workers = 0;
	strcpy(cfg->data_dir, "./data");
	cfg->allow_registry_from_other_zone = true;
	cfg->allow_discovery_from_other_zone = true;
	cfg->user[0] = '\0';
	/* [registry] */
	cfg->max_instances = 1000000;
	cfg->max_services = 65536;
	cfg->changelog_size = 65536;
	cfg->lease_ttl_ms = 20000;
	cfg->legacy_lease_ttl_ms = 90000;
	cfg->reap_interval_ms = 100;
	cfg->self_preservation = true;
	cfg->preserve_window_ms = 12000;
	cfg->legacy_preserve_window_ms = 60000;
	cfg->rate_limit = 0;
	cfg->lock_wait_ms = 500;
	cfg->lock_stall_ms = 2000;
	/* [http] */
	cfg->max_header_bytes = 32768;
	cfg->max_body_bytes = 8 * MiB;
	cfg->idle_timeout_ms = 60000;
	cfg->header_timeout_ms = 10000;
	cfg->body_timeout_ms = 30000;
	cfg->write_timeout_ms = 30000;
	cfg->max_connections = 10000;
	cfg->output_budget_bytes = 64 * MiB;
	cfg->max_response_bytes = 64 * MiB;
	strcpy(cfg->cors_origins, "*");
	cfg->response_cache_bytes = 16 * MiB;
	cfg->console = true;
	cfg->trust_forwarded_for = false;
	/* [websocket] */
	cfg->ws_session_ttl_ms = 360000;
	cfg->ws_max_message_bytes = 65536;
	cfg->ws_max_output_bytes = 1 * MiB;
	/* [management] */
	cfg->mgmt_max_operations = 65536;
	cfg->mgmt_busy_timeout_ms = 500;
	cfg->mgmt_store_max_pages = 0;
	/* [auth] */
	cfg->auth_enabled = true;
	cfg->token_ttl_s = 3600;
	cfg->login_max_failures = 5;
	cfg->login_max_failures_ip = 20;
	cfg->login_lockout_s = 30;
	cfg->login_lockout_max_s = 900;
	cfg->login_history_days = 90;
	cfg->password_memlimit_kib = 19456;
	cfg->password_opslimit = 2;
	cfg->mgmt_routing_bytes = 4 * MiB;
	/* [log] */
	strcpy(cfg->log_level, "info");
	/* [cluster] */
	strcpy(cfg->cluster_listen, "0.0.0.0:9090");
	strcpy(cfg->cluster_key, "change-me");
	cfg->bootstrap_timeout_ms = 5000;
	cfg->digest_interval_ms = 10000;
	cfg->cluster_encrypt = true;
	cfg->cluster_tls = false;
	cfg->mgmt_tombstone_ttl_s = 86400;
}

/* ---- Value parsers: 0 or -1 with a message ------------------------------ */

__attribute__((format(printf, 3, 4))) static int seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

static int copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int config_split_hostport(const char *s, char *host, size_t host_len, int *port)
{
	const char *colon;
	const char *h = s;
	size_t hlen;
	if (*s == '[') { /* [v6addr]:port */
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -1; /* no port, or a bare v6 address */
		hlen = (size_t)(colon - s);
	}
	uint64_t p;
	if (parse_u64(colon + 1, &p) < 0 || p < 1 || p > 65535)
		return -1;
	if (hlen == 0 || (hlen == 1 && *h == '*')) { /* ":8080" and "*:8080": any address */
		h = "0.0.0.0";
		hlen = 7;
	}
	if (hlen >= host_len)
		return -1;
	for (size_t i = 0; i < hlen; i++)
		if (h[i] == ' ' || h[i] == '\t' || h[i] == '/')
			return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}

static int set_name(char *dst, const config_key_t *k, const char *v, char *err, size_t len)
{
	size_t n = strlen(v);
	if (n < k->min)
		return seterr(err, len, "%s must not be empty", k->name);
	if (n > k->max || copy_str(dst, k->size, v) < 0)
		return seterr(err, len, "%s is longer than %u characters", k->name,
		              (unsigned)k->max);
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(v[i]))
			return seterr(err, len,
			              "%s '%s': only letters, digits, '.', '_' and '-' allowed",
			              k->name, v);
	return 0;
}

static int set_str(char *dst, const config_key_t *k, const char *v, char *err, size_t len)
{
	size_t n = strlen(v);
	if (n < k->min)
		return seterr(err, len, "%s must not be empty", k->name);
	if (n > k->max || copy_str(dst, k->size, v) < 0)
		return seterr(err, len, "%s is longer than %u characters", k->name,
		              (unsigned)k->max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return seterr(err, len, "%s contains a control character", k->name);
	return 0;
}

static int set_number(void *dst, const config_key_t *k, const char *v, char *err, size_t len)
{
	uint64_t n;
	if (parse_u64(v, &n) < 0)
		return seterr(err, len, "%s '%s' is not a non-negative integer", k->name, v);
	if (n < k->min || n > k->max)
		return seterr(err, len, "%s %s out of range %llu..%llu", k->name, v,
		              (unsigned long long)k->min, (unsigned long long)k->max);
	if (strcmp(k->name, "changelog_size") == 0 && (n & (n - 1)) != 0)
		return seterr(err, len, "changelog_size %s is not a power of 2", v);
	/* The self-preservation windows count in whole seconds (1 s buckets). */
	if (strstr(k->name, "preserve_window_ms") && n % 1000 != 0)
		return seterr(err, len, "%s %s is not a whole number of seconds", k->name, v);
	if (k->kind == K_INT)
		*(int *)dst = (int)n;
	else
		*(uint32_t *)dst = (uint32_t)n;
	return 0;
}

static int set_hostport(char *dst, const config_key_t *k, const char *v, char *err, size_t len)
{
	char host[CONFIG_STR];
	int port;
	if (config_split_hostport(v, host, sizeof(host), &port) < 0)
		return seterr(err, len, "%s '%s' is not host:port (port 1..65535)", k->name, v);
	if (copy_str(dst, k->size, v) < 0)
		return seterr(err, len, "%s is too long", k->name);
	return 0;
}

static int set_shm_name(char *dst, const config_key_t *k, const char *v, char *err, size_t len)
{
	size_t n = strlen(v);
	if (n == 0) { /* derived from the node name by config_finish() */
		dst[0] = '\0';
		return 0;
	}
	if (v[0] != '/' || n < 2 || n > 200 || strchr(v + 1, '/'))
		return seterr(err, len, "%s '%s' must be '/' followed by a name without '/'",
		              k->name, v);
	for (size_t i = 1; i < n; i++)
		if (!is_name_char(v[i]))
			return seterr(err, len,
			              "%s '%s': only letters, digits, '.', '_' and '-' allowed",
			              k->name, v);
	return copy_str(dst, k->size, v);
}

static int split_word(const char **p, char *out, size_t size)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, " \t");
	if (n == 0 || n >= size)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = s + n;
	return 0;
}

static int add_peer(config_t *cfg, const char *v, char *err, size_t len)
{
	if (cfg->npeers >= CONFIG_MAX_PEERS)
		return seterr(err, len, "more than %d peers", CONFIG_MAX_PEERS);
	config_peer_t p;
	char host[CONFIG_STR];
	int port;
	const char *s = v;
	memset(&p, 0, sizeof(p));
	if (split_word(&s, p.name, sizeof(p.name)) < 0 ||
	    split_word(&s, p.zone, sizeof(p.zone)) < 0 ||
	    split_word(&s, p.url, sizeof(p.url)) < 0 ||
	    split_word(&s, p.repl_addr, sizeof(p.repl_addr)) < 0 || s[strspn(s, " \t")] != '\0')
		return seterr(err, len, "peer '%s': want \"name zone http-url replication-addr\"",
		              v);
	for (const char *c = p.name; *c; c++)
		if (!is_name_char(*c))
			return seterr(
			    err, len,
			    "peer name '%s': only letters, digits, '.', '_' and '-' allowed",
			    p.name);
	if (strncmp(p.url, "http://", 7) != 0 && strncmp(p.url, "https://", 8) != 0)
		return seterr(err, len, "peer %s: url '%s' must start with http:// or https://",
		              p.name, p.url);
	if (config_split_hostport(p.repl_addr, host, sizeof(host), &port) < 0)
		return seterr(err, len, "peer %s: replication address '%s' is not host:port",
		              p.name, p.repl_addr);
	for (int i = 0; i < cfg->npeers; i++)
		if (strcmp(cfg->peers[i].name, p.name) == 0)
			return seterr(err, len, "peer %s is listed twice", p.name);
	cfg->peers[cfg->npeers++] = p;
	return 0;
}

/* scheme "://" host [":" port], as browsers send it in Origin. */
static bool is_origin(const char *p, size_t n)
{
	const char *sep = memmem(p, n, "://", 3);
	if (!sep || sep == p || (size_t)(sep - p) + 3 >= n)
		return false; /* no scheme or no host */
	for (const char *c = p; c < sep; c++)
		if (!isalnum((unsigned char)*c) && *c != '+' && *c != '-' && *c != '.')
			return false;
	return !memchr(sep + 3, '/', (size_t)(p + n - sep - 3)) && !memchr(p, '*', n);
}

/* "*" alone, or origins separated by blanks or commas.  An empty list
 * allows no cross-origin caller at all. */
static int set_origins(char *dst, const config_key_t *k, const char *v, char *err, size_t len)
{
	if (set_str(dst, k, v, err, len) < 0)
		return -1;
	if (strcmp(v, "*") == 0)
		return 0;
	for (const char *p = v + strspn(v, " \t,"); *p;) {
		size_t n = strcspn(p, " \t,");
		if (!is_origin(p, n))
			return seterr(
			    err, len,
			    "%s: '%.*s' is not an origin like https://host[:port] (or use * "
			    "alone)",
			    k->name, (int)n, p);
		p += n;
		p += strspn(p, " \t,");
	}
	return 0;
}

/* "a.b.c.d", "v6addr", either with "/len": one network. */
static int parse_net(const char *w, config_net_t *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(w, '/');
	size_t hl = slash ? (size_t)(slash - w) : strlen(w);
	uint64_t bits = 0;
	bool v4 = false;

	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, w, hl);
	host[hl] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, out->addr + 12) == 1) {
		v4 = true;
		out->addr[10] = out->addr[11] = 0xff;
	} else if (inet_pton(AF_INET6, host, out->addr) != 1) {
		return -1;
	}
	if (slash && (parse_u64(slash + 1, &bits) < 0 || bits > (v4 ? 32u : 128u)))
		return -1;
	out->bits = (unsigned char)(slash ? (v4 ? 96 + bits : bits) : 128);
	return 0;
}

static int set_nets(config_t *cfg, const char *v, char *err, size_t len)
{
	char w[CONFIG_STR];

	cfg->njava_peers = 0;
	memset(cfg->java_peers, 0, sizeof(cfg->java_peers));
	for (;;) {
		v += strspn(v, " \t");
		if (*v == '\0')
			break;
		if (split_word(&v, w, sizeof(w)) < 0)
			return seterr(err, len, "java_peers: an address is too long");
		if (cfg->njava_peers >= CONFIG_MAX_JAVA_PEERS)
			return seterr(err, len, "java_peers: more than %d addresses",
			              CONFIG_MAX_JAVA_PEERS);
		if (parse_net(w, &cfg->java_peers[cfg->njava_peers]) < 0)
			return seterr(
			    err, len,
			    "java_peers '%s' is not an IP address or address/prefix-length", w);
		cfg->njava_peers++;
	}
	return 0;
}

bool config_net_match(const config_net_t *nets, int n, const char *ip)
{
	config_net_t a;

	if (ip == NULL || parse_net(ip, &a) < 0)
		return false;
	for (int i = 0; i < n; i++) {
		unsigned full = nets[i].bits / 8, rest = nets[i].bits % 8;
		if (memcmp(a.addr, nets[i].addr, full) != 0)
			continue;
		if (rest == 0 || ((a.addr[full] ^ nets[i].addr[full]) & (0xff << (8 - rest))) == 0)
			return true;
	}
	return false;
}

static int set_value(config_t *cfg, const config_key_t *k, const char *v, char *err, size_t len)
{
	char *dst = (char *)cfg + k->off;
	switch (k->kind) {
	case K_NAME:
		return set_name(dst, k, v, err, len);
	case K_STR:
		return set_str(dst, k, v, err, len);
	case K_U32:
	case K_INT:
		return set_number(dst, k, v, err, len);
	case K_BOOL:
		if (parse_bool(v, (bool *)dst) < 0)
			return seterr(err, len, "%s '%s' is not on/off/true/false/yes/no/1/0",
			              k->name, v);
		return 0;
	case K_HOSTPORT0:
		if (*v == '\0') {
			dst[0] = '\0';
			return 0;
		}
		return set_hostport(dst, k, v, err, len);
	case K_HOSTPORT:
		return set_hostport(dst, k, v, err, len);
	case K_LEVEL: {
		enum log_level lv;
		if (log_parse_level(v, &lv) < 0)
			return seterr(err, len, "level '%s' is not debug/info/warn/error", v);
		return copy_str(dst, k->size, v);
	}
	case K_SHMNAME:
		return set_shm_name(dst, k, v, err, len);
	case K_PEER:
		return add_peer(cfg, v, err, len);
	case K_ORIGINS:
		return set_origins(dst, k, v, err, len);
	case K_NETS:
		return set_nets(cfg, v, err, len);
	}
	return seterr(err, len, "%s: unhandled kind", k->name);
}

static int find_key(const char *section, const char *key, char *err, size_t len)
{
	bool section_known = false;
	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(config_keys[i].section, section) != 0)
			continue;
		section_known = true;
		if (strcmp(config_keys[i].name, key) == 0)
			return (int)i;
	}
	if (!section_known)
		return seterr(err, len, "unknown section [%s]", section);
	return seterr(err, len, "unknown key '%s' in [%s]", key, section);
}

int config_set(config_t *cfg, const char *section, const char *key, const char *value, char *err,
               size_t err_len)
{
	int i = find_key(section, key, err, err_len);
	if (i < 0)
		return -1;
	return set_value(cfg, &config_keys[i], value, err, err_len);
}

/* ---- The environment ---------------------------------------------------- */

/*
 * ARTEMIS_<SECTION>_<KEY>=value sets [section] key exactly as the file
 * would, for every key of config_keys[] (ARTEMIS_REGISTRY_MAX_INSTANCES,
 * ARTEMIS_CLUSTER_KEY, ...); section and key match without regard to case.
 * A variable whose <SECTION> names no section is not ours (ARTEMIS_BIN of
 * the test scripts) and is left alone; an unknown key of a known section is
 * an error, so a misspelt override does not go unnoticed.  The repeatable
 * [cluster] peer takes the whole list, peers separated by ',', and replaces
 * the file's (an empty value: no peers).
 */
#define ENV_PREFIX "ARTEMIS_"

/* The section that name ("REGISTRY_MAX_INSTANCES") starts with, or NULL. */
static const char *env_section(const char *name, size_t *len)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const char *sec = config_keys[i].section;
		size_t n = strlen(sec);
		if (strncasecmp(name, sec, n) == 0 && name[n] == '_') {
			*len = n;
			return sec;
		}
	}
	return NULL;
}

static int env_peers(config_t *cfg, const char *list, char *err, size_t len)
{
	cfg->npeers = 0;
	for (const char *p = list; *p;) {
		char one[4 * CONFIG_STR];
		size_t n = strcspn(p, ",");
		if (n >= sizeof(one))
			return seterr(err, len, "a peer is longer than %zu characters",
			              sizeof(one) - 1);
		memcpy(one, p, n);
		one[n] = '\0';
		if (one[strspn(one, " \t")] != '\0' && add_peer(cfg, one, err, len) < 0)
			return -1;
		p += n + (p[n] == ',');
	}
	return 0;
}

static int env_apply_one(config_t *cfg, const char *var, char *err, size_t len)
{
	const char *name = var + strlen(ENV_PREFIX);
	const char *eq = strchr(name, '=');
	size_t slen;
	const char *section = eq ? env_section(name, &slen) : NULL;
	if (!section)
		return 0;
	char key[64];
	size_t klen = (size_t)(eq - name) - slen - 1;
	if (klen == 0 || klen >= sizeof(key))
		return seterr(err, len, "unknown key in [%s]", section);
	for (size_t i = 0; i < klen; i++)
		key[i] = (char)tolower((unsigned char)name[slen + 1 + i]);
	key[klen] = '\0';
	int i = find_key(section, key, err, len);
	if (i < 0)
		return -1;
	if (config_keys[i].kind == K_PEER)
		return env_peers(cfg, eq + 1, err, len);
	return set_value(cfg, &config_keys[i], eq + 1, err, len);
}

int config_apply_env(config_t *cfg, char *const *envp, char *err, size_t err_len)
{
	if (!envp)
		envp = environ;
	for (; *envp; envp++) {
		char msg[256];
		if (strncmp(*envp, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
			continue;
		if (env_apply_one(cfg, *envp, msg, sizeof(msg)) < 0) {
			int n = (int)strcspn(*envp, "=");
			return seterr(err, err_len, "environment %.*s: %s", n, *envp, msg);
		}
	}
	return 0;
}

/* ---- The file --------------------------------------------------------- */

typedef struct {
	config_t *cfg;
	FILE *f;
	int line;         /* line being parsed */
	int err_line;     /* first error's line, 0 = none */
	char err[256];    /* first error's message */
	bool seen[NKEYS]; /* duplicate detection (peer is repeatable) */
	char *buf;        /* getline buffer */
	size_t buf_cap;
} config_parse_t;

static void parse_error(config_parse_t *ps, const char *msg)
{
	if (ps->err_line)
		return;
	ps->err_line = ps->line;
	snprintf(ps->err, sizeof(ps->err), "%s", msg);
}

/* ini_reader: one line per call; refuses lines that would not fit libinih's
 * buffer (it would otherwise parse the rest as a new line). */
static char *config_read_line(char *str, int num, void *stream)
{
	config_parse_t *ps = stream;
	ssize_t n = getline(&ps->buf, &ps->buf_cap, ps->f);
	if (n < 0)
		return NULL;
	ps->line++;
	if (n > num - 1) {
		char msg[64];
		snprintf(msg, sizeof(msg), "line longer than %d characters", num - 2);
		parse_error(ps, msg);
		str[0] = '\0';
		return str;
	}
	memcpy(str, ps->buf, (size_t)n + 1);
	return str;
}

static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	config_parse_t *ps = user;
	char msg[256];
	int i = find_key(section, name, msg, sizeof(msg));
	if (i < 0) {
		parse_error(ps, msg);
		return 0;
	}
	if (config_keys[i].kind != K_PEER && ps->seen[i]) {
		snprintf(msg, sizeof(msg), "duplicate key '%s' in [%s]", name, section);
		parse_error(ps, msg);
		return 0;
	}
	ps->seen[i] = true;
	if (set_value(ps->cfg, &config_keys[i], value, msg, sizeof(msg)) < 0) {
		parse_error(ps, msg);
		return 0;
	}
	return 1;
}

int config_load(config_t *cfg, const char *path, char *err, size_t err_len)
{
	config_parse_t ps;
	memset(&ps, 0, sizeof(ps));
	ps.cfg = cfg;
	ps.f = fopen(path, "re");
	if (!ps.f)
		return seterr(err, err_len, "%s: %s", path, strerror(errno));
	int rc = ini_parse_stream(config_read_line, &ps, config_handler, &ps);
	bool read_failed = ferror(ps.f);
	fclose(ps.f);
	free(ps.buf);
	if (read_failed)
		return seterr(err, err_len, "%s: read error", path);
	if (ps.err_line)
		return seterr(err, err_len, "%s:%d: %s", path, ps.err_line, ps.err);
	if (rc > 0) /* libinih's own syntax errors never reach the handler */
		return seterr(err, err_len, "%s:%d: syntax error (want [section] or key = value)",
		              path, rc);
	if (rc < 0)
		return seterr(err, err_len, "%s: cannot parse", path);
	if (copy_str(cfg->path, sizeof(cfg->path), path) < 0)
		return seterr(err, err_len, "%s: path too long", path);
	return 0;
}

/* ---- Derived values ----------------------------------------------------- */

static bool is_wildcard(const char *host)
{
	return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* "<host>-<port>": the listen host, or this machine's short host name when
 * listening on every address; characters a name may not hold become '-'. */
static int derive_name(config_t *cfg, char *err, size_t len)
{
	char host[CONFIG_STR];
	int port;
	if (config_split_hostport(cfg->listen, host, sizeof(host), &port) < 0)
		return seterr(err, len, "listen '%s' is not host:port", cfg->listen);
	if (is_wildcard(host)) {
		if (gethostname(host, sizeof(host)) < 0 || !host[0])
			strcpy(host, "node");
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
	}
	char suffix[16];
	snprintf(suffix, sizeof(suffix), "-%d", port);
	size_t room = sizeof(cfg->name) - 1 - strlen(suffix);
	host[strnlen(host, room)] = '\0';
	for (char *c = host; *c; c++)
		if (!is_name_char(*c))
			*c = '-';
	snprintf(cfg->name, sizeof(cfg->name), "%.*s%s", (int)room, host, suffix);
	return 0;
}

/* The key authenticates (and encrypts) replication: with peers, refuse
 * the shipped default and anything short enough to guess. */
static int check_cluster_key(const config_t *cfg, const char *src, char *err, size_t len)
{
	if (cfg->npeers == 0)
		return 0;
	if (strcmp(cfg->cluster_key, "change-me") == 0)
		return seterr(
		    err, len,
		    "%s: [cluster] key is the default 'change-me'; with peers configured, "
		    "set the same secret of at least %d bytes on every node (e.g. "
		    "openssl rand -hex 32)",
		    src, CONFIG_MIN_CLUSTER_KEY);
	if (strlen(cfg->cluster_key) < CONFIG_MIN_CLUSTER_KEY)
		return seterr(err, len,
		              "%s: [cluster] key is shorter than %d bytes; with peers configured, "
		              "set the same secret of at least %d bytes on every node (e.g. "
		              "openssl rand -hex 32)",
		              src, CONFIG_MIN_CLUSTER_KEY, CONFIG_MIN_CLUSTER_KEY);
	return 0;
}

/* The [auth] and TLS keys that only make sense together. */
static int check_auth_tls(const config_t *cfg, const char *src, char *err, size_t err_len)
{
	size_t pw = strlen(cfg->initial_admin_password);
	if (!cfg->tls_cert[0] != !cfg->tls_key[0])
		return seterr(err, err_len, "%s: [http] tls_cert and tls_key go together", src);
	if (cfg->tls_listen[0] && !cfg->tls_cert[0])
		return seterr(err, err_len, "%s: [http] tls_listen needs tls_cert and tls_key",
		              src);
	if (cfg->tls_listen[0] && strcmp(cfg->tls_listen, cfg->listen) == 0)
		return seterr(err, err_len,
		              "%s: [http] tls_listen is [node] listen; leave it empty "
		              "to serve TLS there",
		              src);
	if (cfg->jwt_secret[0] && strlen(cfg->jwt_secret) < CONFIG_MIN_JWT_SECRET)
		return seterr(err, err_len,
		              "%s: [auth] jwt_secret is shorter than %d characters (openssl rand "
		              "-hex 32 makes one)",
		              src, CONFIG_MIN_JWT_SECRET);
	if (pw && (pw < CONFIG_MIN_PASSWORD || pw > CONFIG_MAX_PASSWORD))
		return seterr(err, err_len,
		              "%s: [auth] initial_admin_password must have %d to %d characters",
		              src, CONFIG_MIN_PASSWORD, CONFIG_MAX_PASSWORD);
	if (cfg->login_lockout_max_s < cfg->login_lockout_s)
		return seterr(err, err_len,
		              "%s: [auth] login_lockout_max_s is below login_lockout_s", src);
	return 0;
}

int config_finish(config_t *cfg, char *err, size_t err_len)
{
	const char *src = cfg->path[0] ? cfg->path : "config";
	if (!cfg->name[0] && derive_name(cfg, err, err_len) < 0)
		return -1;
	if (!cfg->shm_name[0])
		snprintf(cfg->shm_name, sizeof(cfg->shm_name), "/artemis-%.63s", cfg->name);
	if (cfg->workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->workers = n < 1 ? 1 : n > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (int)n;
	}
	for (int i = 0; i < cfg->npeers; i++)
		if (strcmp(cfg->peers[i].name, cfg->name) == 0)
			return seterr(err, err_len, "%s: peer %s has this node's own name", src,
			              cfg->name);
	if (cfg->cluster_tls &&
	    (!cfg->cluster_tls_cert[0] || !cfg->cluster_tls_key[0] || !cfg->cluster_tls_ca[0]))
		return seterr(err, err_len,
		              "%s: [cluster] tls = on needs tls_cert, tls_key and tls_ca", src);
	if (check_cluster_key(cfg, src, err, err_len) < 0)
		return -1;
	return check_auth_tls(cfg, src, err, err_len);
}
