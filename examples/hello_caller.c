/*
 * hello_caller.c - a caller that finds a service through Artemis and calls
 * it: discover, choose an instance by the service's route rules, GET its
 * url.
 *
 *   hello-caller --url http://NODE:PORT [--service NAME] [--count N]
 *
 * Makes N calls (default 1), each to the instance artemis_choose() picks
 * (the service is fetched once, then served from the client's cache, which
 * pushes keep current), and prints each answer.  Exit 0 when every call
 * was answered, 1 otherwise.
 *
 * Build: cc hello_caller.c $(pkg-config --cflags --libs artemis-client)
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <artemis/client.h>

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return def;
}

/* GET url (http://host:port/path) and print the body; 0 on a 200. */
static int get(const char *url)
{
	char host[256], port[8] = "80", req[512], buf[4096];
	const char *p = url + 7, *path;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	struct timeval tv = {2, 0};
	size_t hl;
	ssize_t n, got = 0;
	int fd;

	if (strncmp(url, "http://", 7) != 0)
		return -1;
	path = strchr(p, '/') ? strchr(p, '/') : "/";
	hl = strcspn(p, ":/");
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (p[hl] == ':')
		snprintf(port, sizeof(port), "%.*s", (int)strcspn(p + hl + 1, "/"), p + hl + 1);
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		freeaddrinfo(ai);
		close(fd);
		return -1;
	}
	freeaddrinfo(ai);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return -1;
	}
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	char *body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 9, "200", 3) != 0 || body == NULL)
		return -1;
	fputs(body + 4, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *nodes = arg(argc, argv, "--url", "http://127.0.0.1:8080");
	const char *service = arg(argc, argv, "--service", "hello");
	int count = atoi(arg(argc, argv, "--count", "1")), failed = 0;
	artemis_options_t *o = artemis_options_new();
	artemis_client_t *client;
	artemis_error_t err;

	if (o == NULL || artemis_options_add_url(o, nodes) < 0 ||
	    artemis_client_new(o, &client, &err) < 0) {
		fprintf(stderr, "hello-caller: bad --url %s\n", nodes);
		return 2;
	}
	artemis_options_free(o);
	for (int i = 0; i < count; i++) {
		artemis_instance_t *inst;
		if (artemis_choose(client, service, NULL, &inst, &err) < 0) {
			fprintf(stderr, "hello-caller: %s\n", err.message);
			failed++;
			continue;
		}
		const char *url = artemis_instance_get(inst, ARTEMIS_F_URL);
		if (get(url) < 0) {
			fprintf(stderr, "hello-caller: GET %s failed\n", url);
			failed++;
		}
		artemis_instance_free(inst);
	}
	artemis_client_free(client);
	return failed ? 1 : 0;
}
