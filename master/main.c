/*
 * main.c - the artemis command line (DESIGN.md §6).
 *
 *   artemis server [-c FILE] [--listen HOST:PORT] [--addr HOST:PORT]
 *                  [--workers N] [--name NAME] [--fresh]
 *   artemis reload|stop|quit [-c FILE]
 *   artemis check [-c FILE] [--listen HOST:PORT] [--name NAME]
 *   artemis version | help
 *   artemis register|heartbeat|unregister|discover|services|watch|status ...
 *           (the commands for users of a registry: cli/, include/artemis/cli.h)
 *
 * Exit codes: 0 success, 1 failure at run time, 2 usage or configuration
 * error.  Only parsing and dispatch live here; the master is master.c, the
 * client commands cli.c.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artemis/cli.h"
#include "artemis/config.h"
#include "artemis/shm.h"
#include "master.h"

static const char usage_text[] =
    "usage: artemis <command> [options]\n"
    "\n"
    "commands:\n"
    "  server [-c FILE] [--listen HOST:PORT] [--workers N] [--name NAME] [--fresh]\n"
    "                  run a node in the foreground (--addr is an alias of --listen;\n"
    "                  --fresh discards the registry region and starts empty)\n"
    "  reload [-c FILE]  make the running master re-read its configuration (SIGHUP)\n"
    "  stop [-c FILE]    fast stop of the running master (SIGTERM)\n"
    "  quit [-c FILE]    graceful stop: drain, then stop (SIGQUIT)\n"
    "  check [-c FILE] [--listen HOST:PORT] [--name NAME]\n"
    "                    verify the registry region's invariants (exit 1 on a violation)\n"
    "  version           print the version\n"
    "  help              print this help\n"
    "\n"
    "Without -c the built-in defaults apply (equal to conf/artemis.conf).\n"
    "Exit codes: 0 ok, 1 failure, 2 usage or configuration error.\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "artemis: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%s%s", usage_text, cli_user_usage);
	return 2;
}

enum { OPT_LISTEN = 256, OPT_WORKERS, OPT_NAME, OPT_FRESH };

static int add_override(master_opts_t *o, const char *option, const char *section, const char *key,
                        const char *value)
{
	if (o->noverrides >= MASTER_MAX_OVERRIDES || strlen(value) >= CONFIG_STR)
		return -1;
	master_override_t *ov = &o->overrides[o->noverrides++];
	ov->option = option;
	ov->section = section;
	ov->key = key;
	strcpy(ov->value, value);
	return 0;
}

/* Parse the options after the command.  Returns 0, or an exit code. */
static int parse_options(int argc, char **argv, const char *cmd, char *conf, size_t conf_len,
                         master_opts_t *o)
{
	static const struct option server_opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"addr", required_argument, NULL, OPT_LISTEN},
	    {"workers", required_argument, NULL, OPT_WORKERS},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"fresh", no_argument, NULL, OPT_FRESH},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static const struct option client_opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* check finds the region by name, which --name and --listen derive */
	static const struct option check_opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"addr", required_argument, NULL, OPT_LISTEN},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const struct option *opts = !strcmp(cmd, "server")  ? server_opts
	                            : !strcmp(cmd, "check") ? check_opts
	                                                    : client_opts;
	optind = 1;
	opterr = 0;
	int ch, rc = 0;
	while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if ((size_t)snprintf(conf, conf_len, "%s", optarg) >= conf_len)
				return usage_error("-c %s: path too long", optarg);
			break;
		case OPT_LISTEN:
			rc = add_override(o, "--listen", "node", "listen", optarg);
			break;
		case OPT_WORKERS:
			rc = add_override(o, "--workers", "node", "workers", optarg);
			break;
		case OPT_NAME:
			rc = add_override(o, "--name", "node", "name", optarg);
			break;
		case OPT_FRESH:
			o->fresh = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return usage_error("bad option '%s'", argv[optind - 1]);
		}
		if (rc < 0)
			return usage_error("option value too long: %s", optarg);
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

int main(int argc, char **argv)
{
	proc_title_init(argc, argv);
	if (argc < 2)
		return usage_error("%s", "no command given");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(usage_text, stdout);
		fputs(cli_user_usage, stdout);
		return 0;
	}
	if (cli_user_command(cmd))
		return cli_user_main(argc - 1, argv + 1);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("artemis %s (registry layout %d)\n", ARTEMIS_VERSION, SHM_LAYOUT_VERSION);
		return 0;
	}
	bool server = !strcmp(cmd, "server");
	int sig = !strcmp(cmd, "reload") ? SIGHUP
	          : !strcmp(cmd, "stop") ? SIGTERM
	          : !strcmp(cmd, "quit") ? SIGQUIT
	                                 : 0;
	if (!server && !sig && strcmp(cmd, "check") != 0)
		return usage_error("unknown command '%s'", cmd);

	static master_opts_t opts;
	char conf[CONFIG_STR] = "";
	int rc = parse_options(argc - 1, argv + 1, cmd, conf, sizeof(conf), &opts);
	if (rc)
		return rc;
	static config_t cfg;
	char err[512];
	if (master_load_config(&cfg, conf, &opts, err, sizeof(err)) < 0) {
		fprintf(stderr, "artemis: %s\n", err);
		return 2;
	}
	if (server)
		return master_run(&cfg, &opts);
	if (sig)
		return cli_signal(&cfg, sig, cmd);
	return cli_check(&cfg);
}
