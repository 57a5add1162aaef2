/*
 * cli_int.h - what the files of cli/ share: the parsed command line, the
 * client made from it, output helpers (aligned tables, errors).
 *
 *   cli.c            dispatch, options, the client, helpers
 *   cmd_registry.c   register, heartbeat, unregister
 *   cmd_discovery.c  discover, services, watch
 *   cmd_status.c     status
 *   cmd_auth.c       login, logout, users (the token file)
 *   cmd_mgmt.c       ops (pull-out, pull-in, list), audit
 *   cmd_routing.c    groups, rules, canary
 */
#ifndef ARTEMIS_CLI_INT_H
#define ARTEMIS_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "artemis/client.h"

#define CLI_MAX_META 64

typedef struct cli {
	const char *cmd;
	/* common options */
	const char *conf;
	const char *urls;
	const char *region;
	const char *zone;
	const char *token;
	long timeout_ms;
	bool json;
	/* an instance (register, heartbeat, unregister) */
	const char *ip;
	long port;
	const char *group;
	const char *status;
	const char *meta[CLI_MAX_META];
	int nmeta;
	bool keep;
	/* discover, watch */
	bool choose;
	const char *route;
	long count;
	long seconds;
	/* users, ops, audit */
	const char *role;
	const char *email;
	const char *description;
	const char *service;
	const char *operation;
	const char *operator_id;
	const char *type;
	const char *since;
	const char *until;
	long limit;
	long offset;
	bool csv;
	char cfg_region[64]; /* the local configuration's region (cli_client) */
	/* groups, rules (and type, description above) */
	const char *app_id;
	const char *strategy;
	const char *name;
	long weight;
	bool remove;
	/* positional arguments */
	char **args;
	int nargs;
	/* made by cli_client() */
	artemis_client_t *client;
	char node[512]; /* the node last in use (cli_node) */
} cli_t;

/* Make the client: node URLs from --url, else the config's listen address
 * (-c FILE, else the built-in defaults) and its peers.  keep: the client
 * renews and unregisters what it registers (register --keep).  Returns 0
 * or an exit code. */
int cli_client(cli_t *c, bool keep);
/* Print "artemis CMD: message" for a failed call; returns 1. */
int cli_fail(const cli_t *c, const artemis_error_t *err);
/* Print a usage error; returns 2. */
int cli_usage(const cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The node in use, for messages (the last one known once the client is gone). */
const char *cli_node(cli_t *c, char *buf, size_t len);
/* An epoch-ms time as 2024-01-02T03:04:05.678Z. */
void cli_time(long long ms, char *buf, size_t len);

/* A table printed with aligned columns. */
typedef struct {
	size_t ncols; /* at most 16 are printed */
	char **cells; /* rows * ncols, owned */
	size_t rows, cap;
} cli_table_t;

void cli_table_init(cli_table_t *t, size_t ncols);
/* Add a row of ncols strings (NULL prints as "-"). */
void cli_table_row(cli_table_t *t, const char *const *cols);
void cli_table_print(const cli_table_t *t, FILE *f);
void cli_table_free(cli_table_t *t);

int cli_cmd_register(cli_t *c);
int cli_cmd_heartbeat(cli_t *c);
int cli_cmd_unregister(cli_t *c);
int cli_cmd_discover(cli_t *c);
int cli_cmd_services(cli_t *c);
int cli_cmd_watch(cli_t *c);
int cli_cmd_status(cli_t *c);
int cli_cmd_login(cli_t *c);
int cli_cmd_logout(cli_t *c);
int cli_cmd_users(cli_t *c);
int cli_cmd_ops(cli_t *c);
int cli_cmd_audit(cli_t *c);

/* ---- Management calls (cli.c) ------------------------------------------------------------ */

/* One call to the management API with the client's token.  body: a JSON
 * object (not consumed) or NULL.  The answer's JSON in *out (the caller
 * decrefs) when the node said yes: HTTP 2xx and no failure in the envelope
 * (success false, a responseStatus or status that is not success).
 * Otherwise prints "artemis CMD: <message> (HTTP n)" and returns 1; 0 on
 * success. */
int cli_api(cli_t *c, const char *method, const char *path, json_t *body, json_t **out);
/* GET path and show its data array: one JSON line with --json, else a
 * table of ncols columns (at most 8) under head, a row per element made
 * by row (cells into its 8 scratch buffers or pointing into item).
 * 0, or an exit code (printed). */
typedef void (*cli_row_fn)(json_t *item, const char **cells, char scratch[8][64]);
int cli_list(cli_t *c, const char *path, const char *const *head, size_t ncols, cli_row_fn row);
/* A string member of a JSON object, "" when absent. */
const char *cli_str(const json_t *obj, const char *key);
/* Print v as one compact JSON line ("[]" when it cannot). */
void cli_print_json(json_t *v);
/* A password from the terminal (no echo, after prompt) or, when stdin is
 * not a terminal, the next line of stdin.  0, or an exit code (printed). */
int cli_read_secret(cli_t *c, const char *prompt, char *buf, size_t len);
/* The token file: $XDG_CONFIG_HOME/artemis/token, else
 * ~/.config/artemis/token (mode 0600). */
int cli_token_path(char *buf, size_t len);
int cli_cmd_groups(cli_t *c);
int cli_cmd_rules(cli_t *c);
int cli_cmd_canary(cli_t *c);

#endif
