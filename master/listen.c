/*
 * listen.c - the master's listening sockets.
 *
 * One SO_REUSEPORT socket per worker slot (as nginx's "reuseport"): the
 * kernel spreads connections over the slots' accept queues, and because the
 * master keeps every socket open across respawns and reloads, a worker that
 * is replaced takes over the same queue and no pending connection is reset.
 */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 4096

static int open_bound(const char *hostport, bool reuseport, char *err, size_t err_len)
{
	char host[CONFIG_STR], port_s[8];
	int port;
	if (config_split_hostport(hostport, host, sizeof(host), &port) < 0) {
		snprintf(err, err_len, "listen '%s' is not host:port", hostport);
		return -1;
	}
	snprintf(port_s, sizeof(port_s), "%d", port);
	struct addrinfo hints, *ai = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int gai = getaddrinfo(host, port_s, &hints, &ai);
	if (gai != 0) {
		snprintf(err, err_len, "listen %s: %s", hostport, gai_strerror(gai));
		return -1;
	}
	int one = 1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		snprintf(err, err_len, "listen %s: %s", hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

int listen_open(const char *hostport, bool reuseport, char *err, size_t err_len)
{
	int fd = open_bound(hostport, reuseport, err, err_len);
	if (fd < 0)
		return -1;
	if (listen(fd, LISTEN_BACKLOG) < 0) {
		snprintf(err, err_len, "listen %s: %s", hostport, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int listen_probe(const char *hostport, char *err, size_t err_len)
{
	int fd = open_bound(hostport, false, err, err_len);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}
