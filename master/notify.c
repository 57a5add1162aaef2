/*
 * notify.c - tell the service manager what the master is doing: systemd's
 * sd_notify(3) protocol, spoken directly.
 *
 * The protocol is one datagram per message on the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace), holding
 * newline-separated VAR=value lines: READY=1, RELOADING=1, STOPPING=1,
 * STATUS=text, MONOTONIC_USEC=n.  It is small and stable, so the master
 * speaks it itself rather than linking libsystemd: the binary keeps no
 * dependency on systemd (containers, other init systems) and the messages
 * can be observed on any datagram socket, which is how the tests check them.
 *
 * Called from the master's loop only (master.c); children never notify
 * (the unit says NotifyAccess=main) and do not inherit the variable.  A
 * state message (READY, RELOADING, STOPPING) may wait up to a second for
 * room in the manager's queue; a STATUS refresh never waits and is dropped
 * instead.  A failed send is logged once and never stops the node.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "artemis/clock.h"
#include "artemis/log.h"

static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;   /* 0: not started by a service manager */
static bool notify_failed;          /* a send failed: logged once */
static uint64_t notify_next_status; /* monotonic ms of the next STATUS refresh */
static char notify_last_status[256];

int notify_open(char *err, size_t err_len)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	size_t n = strlen(path);
	int rc = 0;
	if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof(notify_addr.sun_path)) {
		snprintf(err, err_len,
		         "NOTIFY_SOCKET '%.200s' is not a socket path or @name; not notifying "
		         "the service manager",
		         path);
		rc = -1;
	} else {
		memset(&notify_addr, 0, sizeof(notify_addr));
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, path, n);
		if (path[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	unsetenv("NOTIFY_SOCKET");
	return rc;
}

/* One datagram.  wait: a state message, worth a second of waiting. */
static void notify_send(bool wait, const char *msg)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t w = -1;
	if (fd >= 0) {
		struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT),
		           (const struct sockaddr *)&notify_addr, notify_addr_len);
	}
	int saved = errno;
	if (fd >= 0)
		close(fd);
	if (w >= 0 || (!wait && saved == EAGAIN))
		return;
	if (!notify_failed)
		log_warn("%s: NOTIFY_SOCKET: %s (further failures not logged)", __func__,
		         strerror(saved));
	notify_failed = true;
}

static void notify_status_text(master_t *m, char *buf, size_t len)
{
	static const char *const state[] = {"starting (waiting for a peer snapshot)", "up", "down"};
	shm_stats_t st;
	shm_stats(m->shm, &st);
	unsigned s = (unsigned)shm_node_state(m->shm);
	snprintf(buf, len,
	         "%s: %llu instances, %llu services (capacity %u); %d worker%s, generation %u",
	         s < 3 ? state[s] : "?", (unsigned long long)st.instances,
	         (unsigned long long)st.services, st.max_instances, m->cfg.workers,
	         m->cfg.workers == 1 ? "" : "s", m->gen);
}

void notify_ready(master_t *m)
{
	if (!notify_addr_len || !m->announced || !m->shm)
		return;
	char msg[320];
	notify_status_text(m, notify_last_status, sizeof(notify_last_status));
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", notify_last_status);
	notify_send(true, msg);
	notify_next_status = clock_mono_ms() + NOTIFY_STATUS_MS;
}

void notify_reloading(master_t *m)
{
	if (!notify_addr_len || !m->announced)
		return;
	char msg[160];
	snprintf(msg, sizeof(msg),
	         "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading: starting "
	         "generation %u",
	         (unsigned long long)(clock_mono_ns() / 1000), m->gen + 1);
	notify_send(true, msg);
}

void notify_stopping(void)
{
	if (notify_addr_len)
		notify_send(true, "STOPPING=1\nSTATUS=stopping");
}

void notify_tick(master_t *m)
{
	uint64_t now = clock_mono_ms();
	if (!notify_addr_len || now < notify_next_status)
		return;
	notify_next_status = now + NOTIFY_STATUS_MS; /* advanced always: never a past deadline */
	if (!m->shm || m->stop || m->reloading)
		return;
	char text[sizeof(notify_last_status)], msg[sizeof(text) + 16];
	notify_status_text(m, text, sizeof(text));
	if (strcmp(text, notify_last_status) == 0)
		return;
	memcpy(notify_last_status, text, sizeof(text));
	snprintf(msg, sizeof(msg), "STATUS=%s", text);
	notify_send(false, msg);
}

uint64_t notify_deadline(uint64_t t)
{
	if (!notify_addr_len || !notify_next_status)
		return t;
	return t == 0 || notify_next_status < t ? notify_next_status : t;
}
