/*
 * master.h - internal to master/: the pieces of the master process and of
 * the command-line client (master/main.c).  Other modules reach the master
 * only through include/artemis/proc.h and config.h.
 */
#ifndef ARTEMIS_MASTER_MASTER_H
#define ARTEMIS_MASTER_MASTER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "artemis/config.h"
#include "artemis/shm.h"

#define ARTEMIS_VERSION "0.1.0"

/* ---- master.c: the master cycle ------------------------------------------ */

#define MASTER_MAX_OVERRIDES 8

/* A command-line override, re-applied over the file on every reload. */
typedef struct {
	const char *option; /* "--workers", for messages */
	const char *section;
	const char *key;
	char value[CONFIG_STR];
} master_override_t;

typedef struct {
	bool fresh; /* --fresh: discard the existing region */
	int noverrides;
	master_override_t overrides[MASTER_MAX_OVERRIDES];
} master_opts_t;

/* Run a node in the foreground until it is stopped.  cfg is loaded and
 * finished (overrides applied); the children other than the replicator get
 * its cluster key wiped from their copy.  Returns the process exit code. */
int master_run(config_t *cfg, const master_opts_t *opts);

/* The region parameters the configuration asks for (every [registry] key
 * that lives in the region). */
void master_region_params(const config_t *cfg, shm_params_t *p);

/* Load the configuration the way the CLI and a reload do: defaults, the
 * file (path may be NULL or ""), the ARTEMIS_* environment, the
 * command-line overrides, derived values. */
int master_load_config(config_t *cfg, const char *path, const master_opts_t *opts, char *err,
                       size_t err_len);

/* ---- signals.c: handlers only set flags -------------------------------- */

enum {
	MASTER_SIG_CHLD = 1 << 0,
	MASTER_SIG_HUP = 1 << 1,
	MASTER_SIG_TERM = 1 << 2, /* SIGTERM or SIGINT: fast stop */
	MASTER_SIG_QUIT = 1 << 3, /* graceful stop */
	MASTER_SIG_USR1 = 1 << 4, /* reopen logs */
};

/* Install the handlers and block their signals; *wait_mask is the mask to
 * sleep with (ppoll), under which they are delivered. */
int master_signals_install(sigset_t *wait_mask);
/* The signals seen since the last call (MASTER_SIG_* bits), cleared. */
unsigned master_signals_take(void);
/* In a new child: default handlers, nothing blocked (SIGPIPE stays ignored). */
void master_signals_reset(void);

/* ---- pidfile.c: <data_dir>/artemis.pid, held with flock ------------------ */

int pidfile_path(const char *data_dir, char *out, size_t len);
/* Create data_dir if needed, lock and write the pid file.  Returns the fd
 * (keep it open while running), -EBUSY with *holder set when another
 * master holds it, or -errno. */
int pidfile_acquire(const char *path, pid_t *holder);
void pidfile_release(int fd, const char *path);
/* For the CLI: 0 with *pid when a master holds the file, -ENOENT when there
 * is no pid file, -ESRCH when nothing holds it (stale). */
int pidfile_running(const char *path, pid_t *pid);
/* mkdir -p */
int pidfile_mkdirs(const char *dir);

/* ---- listen.c: the listening sockets ------------------------------------- */

/* Open a listening TCP socket on host:port (non-blocking); with reuseport
 * set, SO_REUSEPORT so each worker slot gets its own accept queue.
 * Returns the fd or -1 with a message. */
int listen_open(const char *hostport, bool reuseport, char *err, size_t err_len);
/* Fail when something else listens on the address (a bind without
 * SO_REUSEPORT cannot share the port with another node's sockets). */
int listen_probe(const char *hostport, char *err, size_t err_len);

/* ---- proc.c ---------------------------------------------------------------- */

/* Record the master's pid before forking: proc_child_setup() exits a child
 * whose master died before it could ask for PR_SET_PDEATHSIG. */
void proc_set_master(pid_t pid);
/* Called first in main(): prepares setproctitle(). */
void proc_title_init(int argc, char **argv);
/* Set the process title exactly ("artemis: master"). */
void proc_set_title(const char *title);
/* In a child: ask for SIGTERM when the master dies, and exit if it did
 * already.  proc_child_setup() does it; call it again after a change of
 * user, which clears the request. */
void proc_child_tie(void);

/* ---- cli.c: the client commands ------------------------------------------- */

/* reload / stop / quit: signal the master of cfg's data_dir.  stop and quit
 * wait until it is gone.  Returns the exit code. */
int cli_signal(const config_t *cfg, int sig, const char *verb);
/* check: attach the region read-only and verify it.  Returns the exit code. */
int cli_check(const config_t *cfg);

#endif
