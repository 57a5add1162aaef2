/*
 * master_state.h - internal to the master process (master.c, children.c):
 * its state, the table of children and the units they serve.
 *
 * A unit is what the master keeps alive: worker slot 0..N-1 (each with its
 * listening socket, kept across respawns and reloads), the reaper and, on a
 * node with peers, the replicator.  A
 * child is one process serving a unit; during a reload two generations of
 * children serve the same worker slots for a moment.
 */
#ifndef ARTEMIS_MASTER_STATE_H
#define ARTEMIS_MASTER_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "artemis/clock.h"
#include "artemis/config.h"
#include "artemis/shm.h"
#include "artemis/tls.h"
#include "master.h"

#define MASTER_SLOTS        32                 /* >= the largest [node] workers */
#define MASTER_UNIT_REAPER  MASTER_SLOTS       /* the reaper's unit */
#define MASTER_UNIT_REPL    (MASTER_SLOTS + 1) /* the replicator's (nodes with peers) */
#define MASTER_UNITS        (MASTER_SLOTS + 2)
#define MASTER_MAX_CHILDREN 72 /* two generations of workers + reaper + replicator */

#define MASTER_STOP_MS        5000  /* every child is gone this long after a stop */
#define MASTER_RELOAD_MS      10000 /* a new generation must be ready by then */
#define MASTER_RETIRE_MS      30000 /* an old generation may drain this long */
#define MASTER_LOOP_DEATHS    5     /* this many exits ... */
#define MASTER_LOOP_WINDOW_MS 10000 /* ... within this window is a crash loop */
#define MASTER_BACKOFF_MIN_MS 100
#define MASTER_BACKOFF_MAX_MS 5000

typedef struct {
	pid_t pid;           /* 0: free entry */
	int ctl;             /* master's end of the control channel, -1 after EOF */
	int unit;            /* worker slot, MASTER_UNIT_REAPER or MASTER_UNIT_REPL */
	unsigned gen;        /* generation (reloads) */
	bool ready;          /* reported PROC_MSG_READY */
	bool retiring;       /* told to go; its exit is not a failure */
	uint64_t started_ms; /* monotonic */
	uint64_t term_at;    /* monotonic; 0 = none: then send TERM */
	uint64_t kill_at;    /* monotonic; 0 = none: then SIGKILL */
} master_child_t;

typedef struct {
	int listen_fd;                       /* worker slots: the SO_REUSEPORT socket, else -1 */
	int tls_listen_fd;                   /* worker slots: [http] tls_listen's, else -1 */
	bool disabled;                       /* a child exited 2 (fatal config error) */
	uint64_t deaths[MASTER_LOOP_DEATHS]; /* monotonic times of the last exits */
	unsigned ndeaths;
	uint32_t backoff_ms; /* current crash-loop delay, 0 = none */
	uint64_t respawn_at; /* monotonic; 0 = no respawn pending */
} master_unit_t;

typedef enum { MASTER_RUNNING = 0, MASTER_STOP_GRACEFUL, MASTER_STOP_FAST } master_stop_t;

/* [node] user, resolved at start (privs.c). */
typedef struct {
	bool active; /* started as root with a user to switch the children to */
	uid_t uid;
	gid_t gid;
	char name[64];
} master_user_t;

/* The writer lock as the master last saw it (children.c, the stall watch). */
typedef struct {
	int pid;           /* holder, 0 = free */
	uint64_t seq;      /* its acquisition */
	uint64_t since_ms; /* monotonic: first seen held by that acquisition */
	uint64_t next_ms;  /* monotonic: next look */
	bool acted;        /* this acquisition was reported (and its holder killed) */
} master_lock_watch_t;

typedef struct {
	config_t cfg;  /* the active configuration */
	config_t next; /* the configuration being reloaded */
	master_opts_t opts;
	shm_t *shm;
	config_t *origin; /* the caller's configuration (its secrets are wiped in children) */
	master_user_t user;
	tls_ctx_t *tls;      /* the active configuration's TLS context, or NULL */
	tls_ctx_t *tls_next; /* the one being reloaded */
	master_lock_watch_t lock;
	int pid_fd;
	char pid_path[CONFIG_STR + 16];
	unsigned gen;   /* the active generation */
	bool reloading; /* generation gen+1 is starting */
	uint64_t reload_deadline;
	bool announced; /* "serving" was logged for the first generation */
	master_stop_t stop;
	uint64_t stop_deadline;
	int exit_code;
	master_unit_t units[MASTER_UNITS];
	master_child_t children[MASTER_MAX_CHILDREN];
} master_t;

/* children.c */
const char *master_unit_name(int unit, char *buf, size_t len);
int master_spawn(master_t *m, int unit, const config_t *cfg, unsigned gen);
void master_reap(master_t *m);
void master_send(master_child_t *c, char msg);
void master_read_ctl(master_t *m, master_child_t *c);
int master_count_children(const master_t *m);
void master_run_timers(master_t *m);
void master_close_unused_sockets(master_t *m);
void master_start_replicator(master_t *m);
uint64_t master_next_timer(const master_t *m);
void master_watch_lock(master_t *m);

/* privs.c */
int master_user_resolve(const config_t *cfg, master_user_t *u, char *err, size_t len);
void master_user_give(const master_user_t *u, const char *path);
int master_user_drop(const master_user_t *u);

/* master.c, called from children.c */
void master_reload_child_ready(master_t *m);
void master_reload_child_failed(master_t *m, const master_child_t *c, const char *how);
void master_begin_stop(master_t *m, bool fast);

#endif
