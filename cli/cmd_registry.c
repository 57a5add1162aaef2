/*
 * cmd_registry.c - artemis register | heartbeat | unregister: one registry
 * request for one instance (register --keep: registered and renewed by the
 * library until SIGINT or SIGTERM, then unregistered).
 *
 * The nodes want the instance's url on every registry call; heartbeat and
 * unregister without one look the instance up first and take its url.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli_int.h"

/* The instance the command line describes; NULL after printing why. */
static artemis_instance_t *reg__instance(cli_t *c, const char *url, int *rc)
{
	artemis_instance_t *i = NULL;
	char derived[300];
	bool bad;

	*rc = 2;
	if (url == NULL && c->ip && c->port) { /* as the nodes derive it */
		snprintf(derived, sizeof(derived), "http://%s:%ld", c->ip, c->port);
		url = derived;
	}
	if (artemis_instance_new(c->args[0], c->args[1], url, &i) < 0) {
		cli_usage(c, "SERVICE and INSTANCE: at most 255 characters each");
		return NULL;
	}
	bad = (c->ip && artemis_instance_set(i, ARTEMIS_F_IP, c->ip) < 0) ||
	      (c->port && artemis_instance_set_port(i, (int)c->port) < 0) ||
	      (c->group && artemis_instance_set(i, ARTEMIS_F_GROUP, c->group) < 0) ||
	      artemis_instance_set(i, ARTEMIS_F_STATUS, c->status ? c->status : "up") < 0;
	for (int k = 0; k < c->nmeta && !bad; k++) {
		char *kv = strdup(c->meta[k]), *eq = kv ? strchr(kv, '=') : NULL;
		bad = eq == NULL;
		if (eq) {
			*eq = '\0';
			bad = artemis_instance_set_meta(i, kv, eq + 1) < 0;
		}
		free(kv);
	}
	if (bad) {
		artemis_instance_free(i);
		cli_usage(c, "an instance field is too long or invalid");
		return NULL;
	}
	*rc = 0;
	return i;
}

static void reg__print(cli_t *c, const char *result, const artemis_instance_t *i)
{
	char node[512];
	const char *url = artemis_instance_get(i, ARTEMIS_F_URL);

	cli_node(c, node, sizeof(node));
	if (c->json) {
		json_t *o =
		    json_pack("{s:s,s:s,s:s,s:s?,s:s}", "result", result, "serviceId", c->args[0],
		              "instanceId", c->args[1], "url", url, "node", node);
		if (o) {
			json_dumpf(o, stdout, JSON_COMPACT);
			putchar('\n');
			json_decref(o);
		}
		return;
	}
	printf("%s %s/%s%s%s on %s\n", result, c->args[0], c->args[1], url ? " at " : "",
	       url ? url : "", node);
}

static volatile sig_atomic_t reg__stop;

static void reg__on_signal(int sig)
{
	(void)sig;
	reg__stop = 1;
}

/* register --keep: renewals by the library until a signal.  The signals
 * are blocked before the library's thread starts (it inherits the mask),
 * so they reach this thread's sigsuspend. */
static int reg__keep(cli_t *c, artemis_instance_t *i)
{
	struct sigaction sa;
	artemis_error_t err;
	sigset_t block, wait;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = reg__on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &wait);
	sigdelset(&wait, SIGINT);
	sigdelset(&wait, SIGTERM);
	if (artemis_register(c->client, i, &err) < 0) {
		artemis_unregister(c->client, i, NULL); /* nothing to keep */
		return cli_fail(c, &err);
	}
	reg__print(c, "registered", i);
	fflush(stdout);
	while (!reg__stop)
		sigsuspend(&wait);
	artemis_client_free(c->client); /* unregisters */
	c->client = NULL;
	reg__print(c, "unregistered", i);
	return 0;
}

int cli_cmd_register(cli_t *c)
{
	artemis_instance_t *i;
	artemis_error_t err;
	int rc;

	if (c->nargs < 3 && (c->ip == NULL || c->port == 0))
		return cli_usage(c, "needs the instance's URL, or --ip and --port");
	if ((i = reg__instance(c, c->nargs > 2 ? c->args[2] : NULL, &rc)) == NULL)
		return rc;
	if ((rc = cli_client(c, c->keep)) != 0) {
		artemis_instance_free(i);
		return rc;
	}
	if (c->keep) {
		rc = reg__keep(c, i);
	} else if (artemis_registry_send(c->client, ARTEMIS_OP_REGISTER, i, &err) < 0) {
		rc = cli_fail(c, &err);
	} else {
		reg__print(c, "registered", i);
		rc = 0;
	}
	artemis_instance_free(i);
	return rc;
}

/* The registered url of SERVICE/INSTANCE (case-insensitive), or NULL. */
static char *reg__find_url(cli_t *c, artemis_error_t *err, int *rc)
{
	artemis_service_t *s;
	char *url = NULL;

	*rc = 0;
	if (artemis_lookup(c->client, c->args[0], &s, err) < 0) {
		*rc = cli_fail(c, err);
		return NULL;
	}
	for (size_t k = 0; k < artemis_service_size(s); k++) {
		const artemis_instance_t *i = artemis_service_instance(s, k);
		const char *id = artemis_instance_get(i, ARTEMIS_F_INSTANCE);
		if (id && strcasecmp(id, c->args[1]) == 0 &&
		    artemis_instance_get(i, ARTEMIS_F_URL)) {
			url = strdup(artemis_instance_get(i, ARTEMIS_F_URL));
			break;
		}
	}
	artemis_service_release(s);
	return url;
}

static int reg__one(cli_t *c, artemis_registry_op_t op, const char *done)
{
	artemis_instance_t *i = NULL;
	artemis_error_t err;
	char *url = NULL;
	int rc;

	if ((rc = cli_client(c, false)) != 0)
		return rc;
	if (c->nargs > 2 || (c->ip && c->port)) {
		url = c->nargs > 2 ? strdup(c->args[2]) : NULL;
	} else {
		url = reg__find_url(c, &err, &rc);
		if (rc)
			return rc;
		if (url == NULL) {
			fprintf(stderr,
			        "artemis %s: %s/%s is not registered (give its URL to send "
			        "the request anyway)\n",
			        c->cmd, c->args[0], c->args[1]);
			return op == ARTEMIS_OP_UNREGISTER ? 0 : 1;
		}
	}
	if ((i = reg__instance(c, url, &rc)) == NULL) {
		free(url);
		return rc;
	}
	free(url);
	rc = artemis_registry_send(c->client, op, i, &err);
	if (rc == ARTEMIS_E_NOTFOUND) {
		fprintf(stderr,
		        "artemis %s: %s/%s is not registered (lease unknown or expired: %s)\n",
		        c->cmd, c->args[0], c->args[1], err.message);
		rc = 1;
	} else if (rc < 0) {
		rc = cli_fail(c, &err);
	} else {
		reg__print(c, done, i);
	}
	artemis_instance_free(i);
	return rc;
}

int cli_cmd_heartbeat(cli_t *c)
{
	return reg__one(c, ARTEMIS_OP_HEARTBEAT, "renewed");
}

int cli_cmd_unregister(cli_t *c)
{
	return reg__one(c, ARTEMIS_OP_UNREGISTER, "unregistered");
}
