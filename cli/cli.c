/*
 * cli.c - the artemis commands for users of a registry (register,
 * heartbeat, unregister, discover, services, watch, status) and for its
 * operators (login, logout, users, ops, audit): option parsing, the client
 * they share, the management calls and output helpers.
 *
 * Every command talks to nodes through libartemis-client, over HTTP (and
 * WebSocket for watch and register --keep).  The nodes are --url, or else
 * the local configuration's listen address (-c FILE as `artemis server`,
 * else the built-in defaults) followed by its peers; the region and zone
 * come from that configuration, or from the node when --url is given.
 * Output is a table for people, JSON with --json.  Exit codes: 0 success,
 * 1 the operation failed, 2 usage or configuration error.
 *
 * The token: `artemis login` keeps it in ~/.config/artemis/token (mode
 * 0600); every command then sends it (artemis_call's bearer token) unless
 * --token names another.
 *
 * Adding a command: a row in cli__cmds and a cli_cmd_* function; options
 * are shared, each row says which commands take it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

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
	C_LOGIN = 1 << 7,
	C_LOGOUT = 1 << 8,
	C_USERS = 1 << 9,
	C_OPS = 1 << 10,
	C_AUDIT = 1 << 11,
	C_GROUPS = 1 << 12,
	C_RULES = 1 << 13,
	C_CANARY = 1 << 14,
	C_INSTANCE = C_REGISTER | C_HEARTBEAT | C_UNREGISTER,
	C_ALL = 0x7fff,
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
    {"login", C_LOGIN, cli_cmd_login, 0, 1, "[USER]"},
    {"logout", C_LOGOUT, cli_cmd_logout, 0, 0, ""},
    {"users", C_USERS, cli_cmd_users, 1, 3, "list|create|delete|passwd|role ..."},
    {"ops", C_OPS, cli_cmd_ops, 1, 4, "pull-out|pull-in|list ..."},
    {"audit", C_AUDIT, cli_cmd_audit, 0, 0, ""},
    {"groups", C_GROUPS, cli_cmd_groups, 1, 64, "list|create|delete|tag|bind|unbind ..."},
    {"rules", C_RULES, cli_cmd_rules, 1, 4,
     "list|create|add-group|set-weight|publish|unpublish|delete ..."},
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
    "\ncommands for operators (the management API; docs/MANAGEMENT.md):\n"
    "  login [USER]      log in (default admin); the password is asked for, or read\n"
    "                    from stdin; the token goes to ~/.config/artemis/token\n"
    "  logout            end the session and forget the token\n"
    "  users list        the users\n"
    "  users create NAME [--role R] [--email E] [--description D]   (password asked)\n"
    "  users delete NAME\n"
    "  users passwd [NAME]   your own password (old and new asked), or NAME's (admin)\n"
    "  users role NAME ROLE  admin, operator or viewer\n"
    "  ops pull-out|pull-in instance SERVICE INSTANCE | server IP | zone ZONE\n"
    "           [--service S] [--region R] [--operation OP] [--operator NAME]\n"
    "                    take out of service / bring back (zone: --service narrows)\n"
    "  ops list [instances|servers|zones]   the operations in force\n"
    "  audit [--limit N] [--offset N] [--operator X] [--type T] [--since T]\n"
    "        [--until T] [--csv]   the audit trail, newest first\n"
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
    "     configuration, -c FILE or the built-in defaults, then its peers;\n"
    "     --token: instead of the one `artemis login` keeps)\n";

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
	O_ROLE,
	O_EMAIL,
	O_DESCRIPTION,
	O_SERVICE,
	O_OPERATION,
	O_OPERATOR,
	O_LIMIT,
	O_OFFSET,
	O_TYPE,
	O_SINCE,
	O_UNTIL,
	O_CSV,
	O_APP_ID,
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
    {{"role", required_argument, NULL, O_ROLE}, C_USERS},
    {{"email", required_argument, NULL, O_EMAIL}, C_USERS},
    {{"description", required_argument, NULL, O_DESCRIPTION}, C_USERS | C_GROUPS | C_RULES},
    {{"service", required_argument, NULL, O_SERVICE}, C_OPS},
    {{"operation", required_argument, NULL, O_OPERATION}, C_OPS},
    {{"operator", required_argument, NULL, O_OPERATOR},
     C_OPS | C_AUDIT | C_GROUPS | C_RULES | C_CANARY},
    {{"limit", required_argument, NULL, O_LIMIT}, C_AUDIT},
    {{"offset", required_argument, NULL, O_OFFSET}, C_AUDIT},
    {{"type", required_argument, NULL, O_TYPE}, C_AUDIT | C_GROUPS},
    {{"since", required_argument, NULL, O_SINCE}, C_AUDIT},
    {{"until", required_argument, NULL, O_UNTIL}, C_AUDIT},
    {{"csv", no_argument, NULL, O_CSV}, C_AUDIT},
    {{"app-id", required_argument, NULL, O_APP_ID}, C_GROUPS},
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

/* The options of the operators' commands that take a string as it is. */
static int cli__mgmt_option(cli_t *c, int ch, const char *arg)
{
	const char **dst = ch == O_ROLE          ? &c->role
	                   : ch == O_EMAIL       ? &c->email
	                   : ch == O_DESCRIPTION ? &c->description
	                   : ch == O_SERVICE     ? &c->service
	                   : ch == O_OPERATION   ? &c->operation
	                   : ch == O_OPERATOR    ? &c->operator_id
	                   : ch == O_TYPE        ? &c->type
	                   : ch == O_SINCE       ? &c->since
	                   : ch == O_APP_ID      ? &c->app_id
	                   : ch == O_STRATEGY    ? &c->strategy
	                   : ch == O_NAME        ? &c->name
	                   : ch == O_UNTIL       ? &c->until
	                                         : NULL;
	if (!dst)
		return 2;
	*dst = arg;
	return 0;
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
	case O_LIMIT:
		if (!cli__number(arg, 1, 100000, &c->limit))
			return cli_usage(c, "--limit %s: 1..100000", arg);
		break;
	case O_OFFSET:
		if (!cli__number(arg, 0, 1000000000, &c->offset))
			return cli_usage(c, "--offset %s: a number", arg);
		break;
	case O_CSV:
		c->csv = true;
		break;
	default:
		return cli__mgmt_option(c, ch, arg);
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

/* The token `artemis login` kept, or NULL. */
static const char *cli__saved_token(void)
{
	static char token[4096];
	char path[1024];
	FILE *f;

	if (cli_token_path(path, sizeof(path)) < 0 || !(f = fopen(path, "r")))
		return NULL;
	bool ok = fgets(token, sizeof(token), f) != NULL;
	fclose(f);
	token[strcspn(token, "\r\n")] = '\0';
	return ok && token[0] ? token : NULL;
}

int cli_token_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && *xdg)
		n = snprintf(buf, len, "%s/artemis/token", xdg);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.config/artemis/token", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int cli_read_secret(cli_t *c, const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;

	if (tty) {
		fprintf(stderr, "%s", prompt);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	bool ok = fgets(buf, (int)len, stdin) != NULL;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	if (!ok) {
		fprintf(stderr, "artemis %s: no password given (a line on stdin)\n", c->cmd);
		return 2;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

const char *cli_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

void cli_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	printf("%s\n", s ? s : "[]");
	free(s);
}

int cli_list(cli_t *c, const char *path, const char *const *head, size_t ncols, cli_row_fn row)
{
	json_t *out = NULL, *item;
	size_t i;
	cli_table_t t;
	int rc = cli_api(c, "GET", path, NULL, &out);
	if (rc != 0)
		return rc;
	json_t *data = json_object_get(out, "data");
	if (c->json) {
		cli_print_json(data);
		json_decref(out);
		return 0;
	}
	cli_table_init(&t, ncols);
	cli_table_row(&t, head);
	json_array_foreach(data, i, item)
	{
		const char *cells[8] = {0};
		char scratch[8][64];
		row(item, cells, scratch);
		cli_table_row(&t, cells);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
	json_decref(out);
	return 0;
}

/* The failure in an answer's envelope, or NULL. */
static const char *cli__refusal(json_t *root)
{
	json_t *rs = json_object_get(root, "responseStatus");
	json_t *st = json_object_get(root, "status");
	json_t *msg = json_object_get(root, "message");
	if (json_is_false(json_object_get(root, "success")))
		return json_is_string(msg) ? json_string_value(msg) : "refused";
	if (!json_is_object(rs))
		rs = json_is_object(st) ? st : NULL;
	const char *code = json_string_value(json_object_get(rs, "errorCode"));
	if (!code || !strcmp(code, "success"))
		return NULL;
	const char *m = json_string_value(json_object_get(rs, "message"));
	return m && *m ? m : code;
}

int cli_api(cli_t *c, const char *method, const char *path, json_t *body, json_t **out)
{
	artemis_response_t *r;
	artemis_error_t err;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int rc = artemis_call(c->client, method, path, text, NULL, &r, &err);

	free(text);
	*out = NULL;
	if (rc < 0)
		return cli_fail(c, &err);
	int status = artemis_response_status(r);
	json_t *root = json_loads(artemis_response_body(r, NULL), 0, NULL);
	const char *why = root ? cli__refusal(root) : NULL;
	if (status < 200 || status > 299 || why || !root) {
		fprintf(stderr, "artemis %s: %s (HTTP %d from %s)%s\n", c->cmd,
		        why    ? why
		        : root ? "refused"
		               : "the answer is not JSON",
		        status, artemis_response_node(r),
		        status == 401 ? "; log in first: artemis login" : "");
		json_decref(root);
		artemis_response_free(r);
		return 1;
	}
	artemis_response_free(r);
	*out = root;
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
		snprintf(c->cfg_region, sizeof(c->cfg_region), "%s", cfg.region);
	}
	if (rc == 0 && !c->token)
		c->token = cli__saved_token();
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

void cli_table_init(cli_table_t *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

void cli_table_row(cli_table_t *t, const char *const *cols)
{
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **cells = realloc(t->cells, cap * t->ncols * sizeof(char *));
		if (cells == NULL)
			return;
		t->cells = cells;
		t->cap = cap;
	}
	for (size_t k = 0; k < t->ncols; k++) {
		const char *s = cols[k] && *cols[k] ? cols[k] : "-";
		char *copy = strdup(s);
		/* one line per row: control characters become '?' */
		for (char *p = copy; p && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		t->cells[t->rows * t->ncols + k] = copy;
	}
	t->rows++;
}

void cli_table_print(const cli_table_t *t, FILE *f)
{
	size_t width[16] = {0};
	size_t ncols = t->ncols < 16 ? t->ncols : 16;

	for (size_t r = 0; r < t->rows; r++)
		for (size_t k = 0; k < ncols; k++) {
			const char *s = t->cells[r * t->ncols + k];
			size_t l = s ? strlen(s) : 1;
			width[k] = l > width[k] ? l : width[k];
		}
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t k = 0; k < ncols; k++) {
			const char *s = t->cells[r * t->ncols + k];
			if (k == ncols - 1)
				fprintf(f, "%s\n", s ? s : "-");
			else
				fprintf(f, "%-*s  ", (int)width[k], s ? s : "-");
		}
	}
}

void cli_table_free(cli_table_t *t)
{
	for (size_t i = 0; i < t->rows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	memset(t, 0, sizeof(*t));
}
