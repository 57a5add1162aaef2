/*
 * cmd_discovery.c - artemis discover | services | watch.
 *
 *   discover SERVICE     lookup.json now (no cache); --choose picks one the
 *                        way the library's callers do (route rules)
 *   services             services.json: every service with instances
 *   watch SERVICE        subscribe and print each pushed change as it
 *                        arrives, until a signal, --count changes or --for
 *                        seconds; with --json one InstanceChange per line
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli_int.h"

static const char *disc__field(const artemis_instance_t *i, artemis_field_t f)
{
	return artemis_instance_get(i, f);
}

static void disc__instances(const artemis_service_t *s)
{
	cli_table_t t;
	const char *head[5] = {"INSTANCE", "STATUS", "ZONE", "GROUP", "URL"};

	cli_table_init(&t, 5);
	cli_table_row(&t, head);
	for (size_t k = 0; k < artemis_service_size(s); k++) {
		const artemis_instance_t *i = artemis_service_instance(s, k);
		const char *row[5] = {
		    disc__field(i, ARTEMIS_F_INSTANCE), disc__field(i, ARTEMIS_F_STATUS),
		    disc__field(i, ARTEMIS_F_ZONE), disc__field(i, ARTEMIS_F_GROUP),
		    disc__field(i, ARTEMIS_F_URL)};
		cli_table_row(&t, row);
	}
	cli_table_print(&t, stdout);
	cli_table_free(&t);
}

static size_t disc__up(const artemis_service_t *s)
{
	size_t up = 0;

	for (size_t k = 0; k < artemis_service_size(s); k++)
		up += artemis_instance_is_up(artemis_service_instance(s, k)) != 0;
	return up;
}

static int disc__choose(cli_t *c, artemis_service_t *s)
{
	const artemis_instance_t *i;
	int rc = artemis_service_choose(s, c->route, &i);
	char *json;

	if (rc < 0) {
		fprintf(stderr, "artemis discover: %s: %s\n", artemis_service_id(s),
		        c->route ? "no instance up for that route rule (or no such rule)"
		                 : "no instance up");
		return 1;
	}
	if (c->json) {
		json = artemis_instance_to_json(i);
		printf("%s\n", json ? json : "null");
		artemis_free(json);
	} else {
		printf("%s %s\n", artemis_instance_get(i, ARTEMIS_F_INSTANCE),
		       artemis_instance_get(i, ARTEMIS_F_URL));
	}
	return 0;
}

int cli_cmd_discover(cli_t *c)
{
	artemis_service_t *s;
	artemis_error_t err;
	int rc;

	if ((rc = cli_client(c, false)) != 0)
		return rc;
	if (artemis_lookup(c->client, c->args[0], &s, &err) < 0)
		return cli_fail(c, &err);
	if (c->choose) {
		rc = disc__choose(c, s);
	} else if (c->json) {
		printf("%s\n", artemis_service_json(s));
	} else {
		printf("service %s: %zu instances, %zu up\n", artemis_service_id(s),
		       artemis_service_size(s), disc__up(s));
		if (artemis_service_size(s))
			disc__instances(s);
	}
	artemis_service_release(s);
	return rc;
}

int cli_cmd_services(cli_t *c)
{
	artemis_service_t **list;
	artemis_error_t err;
	size_t n;
	int rc;

	if ((rc = cli_client(c, false)) != 0)
		return rc;
	if (artemis_services(c->client, &list, &n, &err) < 0)
		return cli_fail(c, &err);
	if (c->json) {
		fputs("{\"services\":[", stdout);
		for (size_t k = 0; k < n; k++)
			printf("%s%s", k ? "," : "", artemis_service_json(list[k]));
		fputs("]}\n", stdout);
	} else {
		cli_table_t t;
		const char *head[3] = {"SERVICE", "INSTANCES", "UP"};
		cli_table_init(&t, 3);
		cli_table_row(&t, head);
		for (size_t k = 0; k < n; k++) {
			char total[24], up[24];
			snprintf(total, sizeof(total), "%zu", artemis_service_size(list[k]));
			snprintf(up, sizeof(up), "%zu", disc__up(list[k]));
			const char *row[3] = {artemis_service_id(list[k]), total, up};
			cli_table_row(&t, row);
		}
		cli_table_print(&t, stdout);
		cli_table_free(&t);
		printf("%zu services\n", n);
	}
	artemis_service_list_free(list, n);
	return 0;
}

/* ---- watch --------------------------------------------------------------------------- */

typedef struct {
	cli_t *c;
	long left; /* changes still to print; < 0 no limit */
	atomic_bool done;
	pthread_mutex_t out; /* one line at a time */
} watch_t;

static void watch__print(const artemis_change_t *ch, void *arg)
{
	watch_t *w = arg;
	const artemis_instance_t *i = artemis_change_instance(ch);
	char when[48];

	pthread_mutex_lock(&w->out);
	if (w->left == 0) {
		pthread_mutex_unlock(&w->out);
		return;
	}
	if (w->c->json) {
		printf("%s\n", artemis_change_json(ch));
	} else {
		cli_time(artemis_change_time(ch), when, sizeof(when));
		if (i)
			printf("%s %-6s %s/%s %s %s\n", when, artemis_change_type_name(ch),
			       artemis_instance_get(i, ARTEMIS_F_SERVICE),
			       artemis_instance_get(i, ARTEMIS_F_INSTANCE),
			       artemis_instance_get(i, ARTEMIS_F_STATUS)
			           ? artemis_instance_get(i, ARTEMIS_F_STATUS)
			           : "-",
			       artemis_instance_get(i, ARTEMIS_F_URL));
		else
			printf("%s %-6s %s: %zu instances\n", when, artemis_change_type_name(ch),
			       artemis_service_id(artemis_change_service(ch)),
			       artemis_service_size(artemis_change_service(ch)));
	}
	fflush(stdout);
	if (w->left > 0 && --w->left == 0)
		atomic_store(&w->done, true);
	pthread_mutex_unlock(&w->out);
}

int cli_cmd_watch(cli_t *c)
{
	watch_t w = {.c = c, .left = c->count ? c->count : -1};
	struct timespec tick = {0, 100 * 1000000};
	sigset_t sigs;
	artemis_error_t err;
	artemis_service_t *s;
	uint64_t id;
	char node[512];
	int rc, waited = 0;
	time_t end = c->seconds ? time(NULL) + c->seconds : 0;

	/* signals to this thread only: the library's thread inherits the mask */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	atomic_init(&w.done, false);
	pthread_mutex_init(&w.out, NULL);
	if ((rc = cli_client(c, false)) != 0)
		goto out;
	if (artemis_subscribe(c->client, c->args[0], watch__print, &w, &id, &err) < 0) {
		rc = cli_fail(c, &err);
		goto out;
	}
	/* ready once the push session is open (the subscription goes out then) */
	while (artemis_client_stat(c->client, ARTEMIS_STAT_WS_SESSIONS) == 0 &&
	       waited < c->timeout_ms) {
		nanosleep(&tick, NULL);
		waited += 100;
	}
	artemis_discover(c->client, c->args[0], &s, NULL);
	fprintf(stderr, "watching %s on %s: %zu instances (Ctrl-C to stop)\n", c->args[0],
	        cli_node(c, node, sizeof(node)), s ? artemis_service_size(s) : (size_t)0);
	artemis_service_release(s);
	while (!atomic_load(&w.done) && (end == 0 || time(NULL) < end)) {
		if (sigtimedwait(&sigs, NULL, &tick) > 0)
			break;
	}
	artemis_unsubscribe(c->client, id);
	rc = 0;
out:
	artemis_client_free(c->client);
	c->client = NULL;
	pthread_mutex_destroy(&w.out);
	return rc;
}
