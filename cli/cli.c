/*
 * cli.c - the artemis commands for users of a registry (register,
 * heartbeat, unregister, discover, services, watch, status): option
 * parsing, the client they share, and output helpers.
 *
 * Every command talks to nodes through libartemis-client, over HTTP (and
 * WebSocket for watch and register --keep).  The nodes are --url, or else
 * the local configuration's listen address (-c FILE as `artemis server`,
 * else the built-in defaults) followed by its peers; the region and zone
 * come from that configuration, or from the node when --url is given.
 * Output is a table for people, JSON with --json.  Exit codes: 0 success,
 * 1 the operation failed, 2 usage or configuration error.
 *
 * Adding a command: a row in cli__cmds and a cli_cmd_* function; options
 * are shared, each row says which commands take it.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "artemis/cli.h"
#include "artemis/config.h"
#include "cli_int.h"

enum {
	C_REGISTER = 1 << 0,
	C_HEARTBEAT = 1 << 1,
	C_UNREGISTER = 1 << 2,
	C_DISCOVER = 1 << 3,
	C_SERVICES = 1 << 4,
	C_WATCH = 1 << 5,
	C_STATUS = 1 << 6,
	C_GROUPS = 1 << 7,
	C_RULES = 1 << 8,
	C_CANARY = 1 << 9,
	C_INSTANCE = C_REGISTER | C_HEARTBEAT | C_UNREGISTER,
	C_ALL = 0x3ff,
};

static const struct {
	const char *name;
	unsigned bit;
	int (*run)(cli_t *c);
	int min_args, max_args;
	const char *args;
} cli__cmds[] = {
    {"register", C_REGISTER, cli_cmd_register, 2, 3, "SERVICE INSTANCE [URL]"},
    {"heartbeat", C_HEARTBEAT, cli_cmd_heartbeat, 2, 3, "SERVICE INSTANCE [URL]"},
    {"unregister", C_UNREGISTER, cli_cmd_unregister, 2, 3, "SERVICE INSTANCE [URL]"},
    {"discover", C_DISCOVER, cli_cmd_discover, 1, 1, "SERVICE"},
    {"services", C_SERVICES, cli_cmd_services, 0, 0, ""},
    {"watch", C_WATCH, cli_cmd_watch, 1, 1, "SERVICE"},
    {"status", C_STATUS, cli_cmd_status, 0, 0, ""},
    {"groups", C_GROUPS, cli_cmd_groups, 1, 64, "list|create|delete|tag|bind|unbind ..."},
    {"rules", C_RULES, cli_cmd_rules, 1, 4, "list|create|add-group|set-weight|publish|unpublish|delete ..."},
    {"canary", C_CANARY, cli_cmd_canary, 1, 1026, "set|enable|disable|show ..."},
};

const char cli_user_usage[] =
    "\ncommands for users of a registry (over HTTP; docs/CLIENT.md):\n"
    "  register SERVICE INSTANCE [URL] [--ip IP --port N] [--group G] [--status S]\n"
    "           [--meta KEY=VALUE]... [--keep]\n"
    "                    register an instance (url from --ip/--port when not given);\n"
    "                    --keep renews it until interrupted, then unregisters it\n"
    "  heartbeat SERVICE INSTANCE [URL]   renew a lease once (exit 1: not registered)\n"
    "  unregister SERVICE INSTANCE [URL]  unregister an instance\n"
    "  discover SERVICE [--choose [--route ROUTE]]\n"
    "                    the service's instances; --choose picks one by its route rules\n"
    "  services          every service with its instance counts\n"
    "  watch SERVICE [--count N] [--for SECONDS]\n"
    "                    print the service's changes as they are pushed\n"
    "  status            the node's state and the cluster's nodes\n"
    "  groups list [SERVICE] | create SERVICE NAME [--type T] [--app-id A]\n"
    "         [--description D] | delete GROUP | tag GROUP KEY=VALUE... [--remove]\n"
    "         | bind GROUP INSTANCE... | unbind GROUP INSTANCE...\n"
    "                    groups of a service (GROUP: its id or service:region:zone:name;\n"
    "                    create takes --region/--zone, else the node's)\n"
    "  rules list [SERVICE] | create SERVICE ROUTE_ID [--strategy S] [--name N]\n"
    "         | add-group ROUTE_ID GROUP [--weight N] | set-weight ROUTE_ID GROUP N\n"
    "         | publish ROUTE_ID | unpublish ROUTE_ID | delete ROUTE_ID\n"
    "                    route rules (weighted-round-robin, close-by-visit, consistent-hash)\n"
    "  canary show [SERVICE] | set SERVICE [IP|CIDR]... | enable SERVICE | disable SERVICE\n"
    "                    canary configs: whitelisted callers go to the canary group\n"
    "  common options: [-c FILE] [--url URL[,URL...]] [--region R] [--zone Z]\n"
    "                  [--timeout MS] [--token TOKEN] [--json]\n"
    "    (--url: the nodes to ask; default the listen address of the local\n"
    "     configuration, -c FILE or the built-in defaults, then its peers)\n";

enum {
	O_URL = 256,
	O_REGION,
	O_ZONE,
	O_TIMEOUT,
	O_TOKEN,
	O_JSON,
	O_IP,
	O_PORT,
	O_GROUP,
	O_STATUS,
	O_META,
	O_KEEP,
	O_CHOOSE,
	O_ROUTE,
	O_COUNT,
	O_FOR,
	O_TYPE,
	O_APP_ID,
	O_DESCRIPTION,
	O_STRATEGY,
	O_NAME,
	O_WEIGHT,
	O_REMOVE,
};

static const struct {
	struct option o;
	unsigned cmds;
} cli__opts[] = {
    {{"config", required_argument, NULL, 'c'}, C_ALL},
    {{"url", required_argument, NULL, O_URL}, C_ALL},
    {{"region", required_argument, NULL, O_REGION}, C_ALL},
    {{"zone", required_argument, NULL, O_ZONE}, C_ALL},
    {{"timeout", required_argument, NULL, O_TIMEOUT}, C_ALL},
    {{"token", required_argument, NULL, O_TOKEN}, C_ALL},
    {{"json", no_argument, NULL, O_JSON}, C_ALL},
    {{"help", no_argument, NULL, 'h'}, C_ALL},
    {{"ip", required_argument, NULL, O_IP}, C_INSTANCE},
    {{"port", required_argument, NULL, O_PORT}, C_INSTANCE},
    {{"group", required_argument, NULL, O_GROUP}, C_REGISTER},
    {{"status", required_argument, NULL, O_STATUS}, C_REGISTER},
    {{"meta", required_argument, NULL, O_META}, C_REGISTER},
    {{"keep", no_argument, NULL, O_KEEP}, C_REGISTER},
    {{"choose", no_argument, NULL, O_CHOOSE}, C_DISCOVER},
    {{"route", required_argument, NULL, O_ROUTE}, C_DISCOVER},
    {{"count", required_argument, NULL, O_COUNT}, C_WATCH},
    {{"for", required_argument, NULL, O_FOR}, C_WATCH},
    {{"type", required_argument, NULL, O_TYPE}, C_GROUPS},
    {{"app-id", required_argument, NULL, O_APP_ID}, C_GROUPS},
    {{"description", required_argument, NULL, O_DESCRIPTION}, C_GROUPS | C_RULES},
    {{"strategy", required_argument, NULL, O_STRATEGY}, C_RULES},
    {{"name", required_argument, NULL, O_NAME}, C_RULES},
    {{"weight", required_argument, NULL, O_WEIGHT}, C_RULES},
    {{"remove", no_argument, NULL, O_REMOVE}, C_GROUPS},
};

#define CLI_NOPTS (sizeof(cli__opts) / sizeof(cli__opts[0]))

bool cli_user_command(const char *name)
{
	for (size_t i = 0; i < sizeof(cli__cmds) / sizeof(cli__cmds[0]); i++)
		if (strcmp(cli__cmds[i].name, name) == 0)
			return true;
	return false;
}

int cli_usage(const cli_t *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "artemis %s: ", c->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: artemis <command> [options]%s", cli_user_usage);
	return 2;
}

int cli_fail(const cli_t *c, const artemis_error_t *err)
{
	fprintf(stderr, "artemis %s: %s\n", c->cmd,
	        err->message[0] ? err->message : artemis_strerror(err->code));
	return 1;
}

const char *cli_node(cli_t *c, char *buf, size_t len)
{
	if (c->client)
		artemis_client_node(c->client, c->node, sizeof(c->node));
	snprintf(buf, len, "%s", c->node[0] ? c->node : "?");
	return buf;
}

void cli_time(long long ms, char *buf, size_t len)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char day[32];

	gmtime_r(&s, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03lldZ", day, ms % 1000);
}

static bool cli__number(const char *s, long min, long max, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int cli__option(cli_t *c, int ch, const char *arg)
{
	switch (ch) {
	case 'c':
		c->conf = arg;
		break;
	case O_URL:
		c->urls = arg;
		break;
	case O_REGION:
		c->region = arg;
		break;
	case O_ZONE:
		c->zone = arg;
		break;
	case O_TOKEN:
		c->token = arg;
		break;
	case O_JSON:
		c->json = true;
		break;
	case O_IP:
		c->ip = arg;
		break;
	case O_GROUP:
		c->group = arg;
		break;
	case O_STATUS:
		c->status = arg;
		break;
	case O_KEEP:
		c->keep = true;
		break;
	case O_CHOOSE:
		c->choose = true;
		break;
	case O_ROUTE:
		c->route = arg;
		break;
	case O_TIMEOUT:
		if (!cli__number(arg, 50, 3600000, &c->timeout_ms))
			return cli_usage(c, "--timeout %s: milliseconds, 50..3600000", arg);
		break;
	case O_PORT:
		if (!cli__number(arg, 1, 65535, &c->port))
			return cli_usage(c, "--port %s: 1..65535", arg);
		break;
	case O_COUNT:
		if (!cli__number(arg, 1, 1000000000, &c->count))
			return cli_usage(c, "--count %s: a positive number", arg);
		break;
	case O_FOR:
		if (!cli__number(arg, 1, 86400 * 365, &c->seconds))
			return cli_usage(c, "--for %s: seconds", arg);
		break;
	case O_TYPE:
		c->type = arg;
		break;
	case O_APP_ID:
		c->app_id = arg;
		break;
	case O_DESCRIPTION:
		c->description = arg;
		break;
	case O_STRATEGY:
		c->strategy = arg;
		break;
	case O_NAME:
		c->name = arg;
		break;
	case O_REMOVE:
		c->remove = true;
		break;
	case O_WEIGHT:
		if (!cli__number(arg, 1, 100, &c->weight))
			return cli_usage(c, "--weight %s: 1..100", arg);
		break;
	case O_META:
		if (c->nmeta >= CLI_MAX_META || strchr(arg, '=') == NULL || arg[0] == '=')
			return cli_usage(c, "--meta %s: KEY=VALUE (at most %d)", arg, CLI_MAX_META);
		c->meta[c->nmeta++] = arg;
		break;
	default:
		return 2;
	}
	return 0;
}

static int cli__parse(cli_t *c, unsigned bit, int argc, char **argv)
{
	struct option opts[CLI_NOPTS + 1];
	size_t n = 0;
	int ch, rc;

	for (size_t i = 0; i < CLI_NOPTS; i++)
		if (cli__opts[i].cmds & bit)
			opts[n++] = cli__opts[i].o;
	memset(&opts[n], 0, sizeof(opts[n]));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (ch == 'h') {
			printf("usage: artemis <command> [options]%s", cli_user_usage);
			return -1;
		}
		if (ch == '?' || ch == ':')
			return cli_usage(c, "bad option '%s'", argv[optind - 1]);
		if ((rc = cli__option(c, ch, optarg)) != 0)
			return rc;
	}
	c->args = argv + optind;
	c->nargs = argc - optind;
	return 0;
}

int cli_user_main(int argc, char **argv)
{
	cli_t c = {.cmd = argv[0], .timeout_ms = 5000};
	int rc;

	for (size_t i = 0; i < sizeof(cli__cmds) / sizeof(cli__cmds[0]); i++) {
		if (strcmp(cli__cmds[i].name, argv[0]) != 0)
			continue;
		rc = cli__parse(&c, cli__cmds[i].bit, argc, argv);
		if (rc < 0)
			return 0; /* --help */
		if (rc > 0)
			return rc;
		if (c.nargs < cli__cmds[i].min_args || c.nargs > cli__cmds[i].max_args)
			return cli_usage(&c, "expects %s",
			                 *cli__cmds[i].args ? cli__cmds[i].args : "no arguments");
		rc = cli__cmds[i].run(&c);
		artemis_client_free(c.client);
		return rc;
	}
	return cli_usage(&c, "unknown command");
}

/* ---- the client -------------------------------------------------------------------- */

/* The configuration's own URL: its listen address, a wildcard made loopback. */
static int cli__config_urls(cli_t *c, artemis_options_t *o, config_t *cfg)
{
	char err[512], host[CONFIG_STR], url[CONFIG_STR + 16];
	int port;

	config_defaults(cfg);
	if (c->conf && config_load(cfg, c->conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "artemis %s: %s\n", c->cmd, err);
		return 2;
	}
	if (config_split_hostport(cfg->listen, host, sizeof(host), &port) < 0)
		return cli_usage(c, "listen = %s is not host:port", cfg->listen);
	if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "::") == 0)
		snprintf(host, sizeof(host), "::1");
	snprintf(url, sizeof(url), strchr(host, ':') ? "http://[%s]:%d" : "http://%s:%d", host,
	         port);
	if (artemis_options_add_url(o, url) < 0)
		return cli_usage(c, "listen = %s does not make a node URL", cfg->listen);
	for (int i = 0; i < cfg->npeers; i++) /* the peers, for failover */
		(void)artemis_options_add_url(o, cfg->peers[i].url);
	return 0;
}

int cli_client(cli_t *c, bool keep)
{
	static config_t cfg;
	artemis_options_t *o = artemis_options_new();
	artemis_error_t err;
	int rc = 0;

	if (o == NULL) {
		fprintf(stderr, "artemis %s: out of memory\n", c->cmd);
		return 1;
	}
	if (c->urls) {
		if (artemis_options_add_url(o, c->urls) < 0)
			rc = cli_usage(c, "--url %s: expected http://host:port[,...]", c->urls);
	} else if ((rc = cli__config_urls(c, o, &cfg)) == 0) {
		/* the local node's own region and zone */
		artemis_options_set_str(o, ARTEMIS_OPT_REGION, cfg.region);
		artemis_options_set_str(o, ARTEMIS_OPT_ZONE, cfg.zone);
	}
	if (rc == 0 && c->region && artemis_options_set_str(o, ARTEMIS_OPT_REGION, c->region) < 0)
		rc = cli_usage(c, "--region: 1..64 printable characters");
	if (rc == 0 && c->zone && artemis_options_set_str(o, ARTEMIS_OPT_ZONE, c->zone) < 0)
		rc = cli_usage(c, "--zone: 1..64 printable characters");
	if (rc == 0 && c->token && artemis_options_set_str(o, ARTEMIS_OPT_TOKEN, c->token) < 0)
		rc = cli_usage(c, "--token: no spaces or control characters");
	if (rc == 0) {
		artemis_options_set_int(o, ARTEMIS_OPT_REQUEST_TIMEOUT_MS, c->timeout_ms);
		if (c->timeout_ms < 1000)
			artemis_options_set_int(o, ARTEMIS_OPT_CONNECT_TIMEOUT_MS, c->timeout_ms);
		artemis_options_set_int(o, ARTEMIS_OPT_UNREGISTER_ON_CLOSE, keep ? 1 : 0);
		if (artemis_client_new(o, &c->client, &err) < 0)
			rc = cli_usage(c, "%s", err.message);
	}
	artemis_options_free(o);
	return rc;
}

/* ---- tables ------------------------------------------------------------------------ */

void cli_table_init(cli_table_t *t, int ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

void cli_table_row(cli_table_t *t, const char *const *cols)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof(char *));
		if (cells == NULL)
			return;
		t->cells = cells;
		t->cap = cap;
	}
	for (int k = 0; k < t->ncols; k++) {
		const char *s = cols[k] && *cols[k] ? cols[k] : "-";
		char *copy = strdup(s);
		/* one line per row: control characters become '?' */
		for (char *p = copy; p && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		t->cells[t->rows * (size_t)t->ncols + (size_t)k] = copy;
	}
	t->rows++;
}

void cli_table_print(const cli_table_t *t, FILE *f)
{
	size_t width[16] = {0};

	for (size_t r = 0; r < t->rows; r++)
		for (int k = 0; k < t->ncols && k < 16; k++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)k];
			size_t l = s ? strlen(s) : 1;
			width[k] = l > width[k] ? l : width[k];
		}
	for (size_t r = 0; r < t->rows; r++) {
		for (int k = 0; k < t->ncols && k < 16; k++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)k];
			if (k == t->ncols - 1)
				fprintf(f, "%s\n", s ? s : "-");
			else
				fprintf(f, "%-*s  ", (int)width[k], s ? s : "-");
		}
	}
}

void cli_table_free(cli_table_t *t)
{
	for (size_t i = 0; i < t->rows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
