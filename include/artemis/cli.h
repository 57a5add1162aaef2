/*
 * cli.h - the user-facing commands of the artemis binary (module cli/):
 * register, heartbeat, unregister, discover, services, watch, status.
 * They talk to nodes over HTTP and WebSocket through libartemis-client;
 * master/main.c dispatches to them.  The server-side commands (server,
 * reload, stop, quit, check) stay in master/.
 */
#ifndef ARTEMIS_CLI_H
#define ARTEMIS_CLI_H

#include <stdbool.h>

/* True when name is one of this module's commands. */
bool cli_user_command(const char *name);

/* Run the command argv[0] with its options; returns the exit code:
 * 0 success, 1 operational failure, 2 usage or configuration error. */
int cli_user_main(int argc, char **argv);

/* The commands' lines of `artemis help`. */
extern const char cli_user_usage[];

#endif
