/*
 * notify.h - internal to master/: the service manager's readiness protocol
 * (notify.c), the master's half of systemd's Type=notify.
 *
 * Every function does nothing unless the master was started with
 * NOTIFY_SOCKET in its environment (systemd sets it for Type=notify), so
 * the hooks cost nothing outside systemd.
 */
#ifndef ARTEMIS_MASTER_NOTIFY_H
#define ARTEMIS_MASTER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "master_state.h"

#define NOTIFY_STATUS_MS 2000 /* STATUS= is refreshed this often (when it changed) */

/* Read NOTIFY_SOCKET and remove it from the environment (the children must
 * not inherit it).  Returns 0, also when it is unset, or -1 with a message
 * when it holds no usable address (the node then runs without it). */
int notify_open(char *err, size_t err_len);

/* READY=1 with a STATUS= line: the first generation serves, or a reload
 * ended (committed or abandoned).  Only once the node was announced. */
void notify_ready(master_t *m);
/* RELOADING=1 (with MONOTONIC_USEC=) when a SIGHUP starts a generation. */
void notify_reloading(master_t *m);
/* STOPPING=1 when a stop begins. */
void notify_stopping(void);
/* From the master loop: STATUS= with the instance counts, when it changed,
 * at most every NOTIFY_STATUS_MS. */
void notify_tick(master_t *m);
/* The earlier of t (monotonic ms, 0 = none) and the next notify_tick due. */
uint64_t notify_deadline(uint64_t t);

#endif
