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

enum {
	PROC_MSG_READY = 'R',  /* child -> master: serving */
	PROC_MSG_QUIT = 'Q',   /* master -> child: drain and exit */
	PROC_MSG_TERM = 'T',   /* master -> child: exit now */
	PROC_MSG_REOPEN = 'O', /* master -> child: reopen log files */
};

/* Entry points of the children; each returns the process exit code.
 * listen_fd: this worker slot's SO_REUSEPORT listener. */
int worker_main(const config_t *cfg, shm_t *shm, int listen_fd, int ctl_fd, int slot);
int reaper_main(const config_t *cfg, shm_t *shm, int ctl_fd);
/* Runs only on a node with peers ([cluster] peer lines). */
int replicator_main(const config_t *cfg, shm_t *shm, int ctl_fd);

/* Shared by children: mark this process to die with its parent, set the
 * process title ("artemis: worker 1"). */
void proc_child_setup(const char *title);

#endif
