/*
 * hello_service.c - a service that registers itself with Artemis and
 * answers HTTP: the smallest real user of libartemis-client.
 *
 *   hello-service --url http://NODE:PORT [--port N] [--service NAME] [--id ID]
 *
 * It serves GET / on 127.0.0.1:PORT ("hello from ID"), registers itself as
 * an instance of NAME (default "hello") and stays registered: the library
 * renews the lease in the background.  The client runs on the service's own
 * libevent base (artemis_options_set_event_base), so one thread does both
 * the serving and the registry's work.  SIGINT or SIGTERM: unregister, exit.
 * Prints "ready URL" once the node has accepted the registration.
 *
 * Build: cc hello_service.c $(pkg-config --cflags --libs artemis-client) -levent
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <artemis/client.h>

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return argv[i + 1];
	return def;
}

static void on_hello(struct evhttp_request *req, void *id)
{
	struct evbuffer *out = evbuffer_new();

	evbuffer_add_printf(out, "hello from %s\n", (const char *)id);
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void on_signal(evutil_socket_t sig, short what, void *base)
{
	(void)sig;
	(void)what;
	event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
	const char *nodes = arg(argc, argv, "--url", "http://127.0.0.1:8080");
	const char *service = arg(argc, argv, "--service", "hello");
	int port = atoi(arg(argc, argv, "--port", "0"));
	char id[64], url[128];
	struct event_base *base = event_base_new();
	struct evhttp *http = evhttp_new(base);
	struct evhttp_bound_socket *sock;
	struct event *sigint, *sigterm;
	artemis_options_t *o;
	artemis_client_t *client;
	artemis_instance_t *self;
	artemis_error_t err;

	/* serve first: the port (0 = any free one) is part of our url */
	sock = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
	if (sock == NULL) {
		fprintf(stderr, "hello-service: cannot listen on port %d\n", port);
		return 1;
	}
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	snprintf(id, sizeof(id), "%s", arg(argc, argv, "--id", ""));
	if (id[0] == '\0')
		snprintf(id, sizeof(id), "hello-%d", port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	evhttp_set_gencb(http, on_hello, id);

	o = artemis_options_new();
	if (o == NULL || artemis_options_add_url(o, nodes) < 0 ||
	    artemis_options_set_event_base(o, base) < 0 ||
	    artemis_client_new(o, &client, &err) < 0) {
		fprintf(stderr, "hello-service: bad --url %s\n", nodes);
		return 2;
	}
	artemis_options_free(o);
	if (artemis_instance_new(service, id, url, &self) < 0 ||
	    artemis_instance_set(self, ARTEMIS_F_IP, "127.0.0.1") < 0 ||
	    artemis_instance_set_port(self, port) < 0 ||
	    artemis_instance_set_meta(self, "example", "hello_service.c") < 0)
		return 1;
	if (artemis_register(client, self, &err) < 0) {
		fprintf(stderr, "hello-service: register: %s\n", err.message);
		artemis_client_free(client);
		return 1;
	}
	printf("ready %s\n", url);
	fflush(stdout);

	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	event_add(sigint, NULL);
	event_add(sigterm, NULL);
	event_base_dispatch(base); /* serves, and renews the registration */

	artemis_client_free(client); /* unregisters */
	artemis_instance_free(self);
	event_free(sigint);
	event_free(sigterm);
	evhttp_free(http);
	event_base_free(base);
	printf("stopped\n");
	return 0;
}
