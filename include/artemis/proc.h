/*
 * proc.h - the child processes the master runs, and their control channel.
 *
 * Each child gets one end of a socketpair to the master (ctl_fd).  Messages
 * are single bytes (PROC_MSG_*).  A child that reads EOF on ctl_fd exits (its
 * master is gone); PR_SET_PDEATHSIG is the backstop.
 */
#ifndef ARTEMIS_PROC_H
#define ARTEMIS_PROC_H

#include "artemis/config.h"
#include "artemis/shm.h"
#include "artemis/tls.h"

enum {
	PROC_MSG_READY = 'R',  /* child -> master: serving */
	PROC_MSG_QUIT = 'Q',   /* master -> child: drain and exit */
	PROC_MSG_TERM = 'T',   /* master -> child: exit now */
	PROC_MSG_REOPEN = 'O', /* master -> child: reopen log files */
};

/* What a worker listens on: its slot's SO_REUSEPORT sockets, and the TLS
 * context of its generation (loaded by the master from [http] tls_cert and
 * tls_key, inherited across fork). */
typedef struct {
	int fd;         /* [node] listen */
	int tls_fd;     /* [http] tls_listen, or -1 */
	tls_ctx_t *tls; /* NULL: no TLS; else TLS on tls_fd, or on fd when tls_fd is -1 */
} proc_listen_t;

/* Entry points of the children; each returns the process exit code. */
int worker_main(const config_t *cfg, shm_t *shm, const proc_listen_t *l, int ctl_fd, int slot);
int reaper_main(const config_t *cfg, shm_t *shm, int ctl_fd);
/* Runs only on a node with peers ([cluster] peer lines). */
int replicator_main(const config_t *cfg, shm_t *shm, int ctl_fd);
/* With [cluster] tls = on and peers: whether its files make a usable
 * context (0), or -errno with err naming the key, the file and what is
 * wrong.  The master asks at start (exit 2) and before a reload. */
int replicator_tls_check(const config_t *cfg, char *err, size_t err_len);

/* Shared by children: mark this process to die with its parent, set the
 * process title ("artemis: worker 1"). */
void proc_child_setup(const char *title);

#endif
