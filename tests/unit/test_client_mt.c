/*
 * test_client_mt.c - libartemis-client under threads, against a real node
 * ($ARTEMIS_BIN, default build/artemis, started on free loopback ports
 * with its own shm region).  Run plain, under ASan/UBSan and under
 * ThreadSanitizer (make unit-tsan): the point is that many threads using
 * one client, the background loop, callbacks and shutdown share state
 * only the way the locking contract (client/client_int.h) says.
 *
 *   mt_register_discover  4 threads register, discover, choose and
 *                         unregister concurrently on one client while its
 *                         loop heartbeats (200 ms) and applies pushes; a
 *                         subscriber sees every change; the cache converges
 *   mt_caller_base        the same on the caller's event base, run by a
 *                         thread of the test; freed after that loop stops
 *   mt_callbacks          callbacks that call the API: discover, their own
 *                         unsubscribe, and artemis_client_free (deferred)
 *   mt_many_clients       clients created and freed on several threads at
 *                         once (no global state)
 *
 * Waits poll a condition against a deadline; nothing sleeps to synchronise.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "artemis/client.h"

#define THREADS    4
#define PER_THREAD 25

static struct {
	pid_t pid;
	int port;
	char dir[64];
	char shm[64];
	char url[64];
} node;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static artemis_client_t *client_new(struct event_base *base)
{
	artemis_options_t *o = artemis_options_new();
	artemis_client_t *c = NULL;
	artemis_error_t err;

	assert_int_equal(artemis_options_add_url(o, node.url), 0);
	artemis_options_set_int(o, ARTEMIS_OPT_HEARTBEAT_INTERVAL_MS, 200);
	artemis_options_set_int(o, ARTEMIS_OPT_REQUEST_TIMEOUT_MS, 10000);
	if (base)
		artemis_options_set_event_base(o, base);
	if (artemis_client_new(o, &c, &err) != 0)
		fail_msg("artemis_client_new: %s", err.message);
	artemis_options_free(o);
	return c;
}

/* Poll cond(arg) every 20 ms for up to ms; fail with what when it stays false. */
static void wait_for(bool (*cond)(void *), void *arg, long ms, const char *what)
{
	for (long waited = 0; !cond(arg); waited += 20) {
		if (waited >= ms)
			fail_msg("timed out after %ld ms waiting for %s", ms, what);
		sleep_ms(20);
	}
}

static bool node_healthy(void *arg)
{
	artemis_client_t *c = arg;
	artemis_response_t *r;
	bool ok = artemis_call(c, "GET", "/ready", NULL, NULL, &r, NULL) == 0 &&
	          artemis_response_status(r) == 200;

	artemis_response_free(r);
	return ok;
}

static int node_start(void **state)
{
	const char *bin = getenv("ARTEMIS_BIN") ? getenv("ARTEMIS_BIN") : "build/artemis";
	char conf[128];
	FILE *f;

	(void)state;
	snprintf(node.dir, sizeof(node.dir), "/tmp/artemis-clmt-XXXXXX");
	if (mkdtemp(node.dir) == NULL)
		return -1;
	node.port = free_port();
	snprintf(node.url, sizeof(node.url), "http://127.0.0.1:%d", node.port);
	snprintf(node.shm, sizeof(node.shm), "/artemis-clmt-%d", (int)getpid());
	snprintf(conf, sizeof(conf), "%s/artemis.conf", node.dir);
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
	        "[node]\nname = clmt-%d\nlisten = 127.0.0.1:%d\nworkers = 2\ndata_dir = %s\n"
	        "[registry]\nshm_name = %s\nmax_instances = 10000\nmax_services = 1024\n"
	        "[cluster]\nlisten = 127.0.0.1:%d\n[log]\nfile = %s/artemis.log\n",
	        (int)getpid(), node.port, node.dir, node.shm, free_port(), node.dir);
	fclose(f);
	node.pid = fork();
	if (node.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
		execl(bin, "artemis", "server", "-c", conf, "--fresh", (char *)NULL);
		_exit(127);
	}
	artemis_client_t *c = client_new(NULL);
	for (int waited = 0; !node_healthy(c); waited += 50) {
		if (waited > 15000 || waitpid(node.pid, NULL, WNOHANG) != 0) {
			fprintf(stderr, "test_client_mt: %s did not start (see %s/artemis.log)\n",
			        bin, node.dir);
			artemis_client_free(c);
			return -1;
		}
		sleep_ms(50);
	}
	artemis_client_free(c);
	return 0;
}

static int node_stop(void **state)
{
	char cmd[128];

	(void)state;
	if (node.pid > 0) {
		kill(node.pid, SIGTERM);
		waitpid(node.pid, NULL, 0);
	}
	shm_unlink(node.shm);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", node.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers ------------------------------------------------------------------- */

static artemis_instance_t *inst(const char *service, int t, int k)
{
	char id[64], url[96];
	artemis_instance_t *i;

	snprintf(id, sizeof(id), "t%d-i%d", t, k);
	snprintf(url, sizeof(url), "http://10.%d.0.%d:8080", t, k + 1);
	assert_int_equal(artemis_instance_new(service, id, url, &i), 0);
	return i;
}

typedef struct {
	artemis_client_t *c;
	const char *service;
	int t;
	atomic_int *errors;
} worker_arg_t;

static void *worker(void *p)
{
	worker_arg_t *a = p;
	artemis_instance_t *mine[PER_THREAD];
	artemis_error_t err;

	for (int k = 0; k < PER_THREAD; k++) {
		mine[k] = inst(a->service, a->t, k);
		if (artemis_register(a->c, mine[k], &err) != 0)
			atomic_fetch_add(a->errors, 1);
	}
	for (int k = 0; k < 300; k++) {
		artemis_service_t *s;
		artemis_instance_t *pick;
		const artemis_instance_t *ci;
		if (artemis_discover(a->c, a->service, &s, &err) != 0) {
			atomic_fetch_add(a->errors, 1);
			continue;
		}
		artemis_service_choose(s, NULL, &ci); /* may be empty early on */
		(void)artemis_service_json(s);
		artemis_service_release(s);
		if (artemis_choose(a->c, a->service, NULL, &pick, NULL) == 0)
			artemis_instance_free(pick);
		(void)artemis_client_stat(a->c, ARTEMIS_STAT_HEARTBEATS);
	}
	for (int k = 0; k < PER_THREAD; k++) {
		if (k % 2 == 0 && artemis_unregister(a->c, mine[k], &err) != 0)
			atomic_fetch_add(a->errors, 1);
		artemis_instance_free(mine[k]);
	}
	return NULL;
}

typedef struct {
	artemis_client_t *c;
	const char *service;
	size_t want;
} size_arg_t;

typedef int (*fetch_fn)(artemis_client_t *, const char *, artemis_service_t **, artemis_error_t *);

static bool size_is(size_arg_t *a, fetch_fn fetch)
{
	artemis_service_t *s;
	size_t n;

	if (fetch(a->c, a->service, &s, NULL) != 0)
		return false;
	n = artemis_service_size(s);
	artemis_service_release(s);
	return n == a->want;
}

/* The client's cache (artemis_discover), or the node now (artemis_lookup). */
static bool cache_size_is(void *p)
{
	return size_is(p, artemis_discover);
}

static bool lookup_size_is(void *p)
{
	return size_is(p, artemis_lookup);
}

static bool heartbeats_at_least(void *p)
{
	size_arg_t *a = p;
	return artemis_client_stat(a->c, ARTEMIS_STAT_HEARTBEATS) >= a->want;
}

static void on_change_count(const artemis_change_t *ch, void *arg)
{
	atomic_int *n = arg;

	assert_non_null(artemis_change_service(ch));
	assert_non_null(artemis_change_json(ch));
	atomic_fetch_add(n, 1);
}

/* Threads register, discover, choose, unregister half; the cache follows. */
static void run_workers(artemis_client_t *c, const char *service)
{
	pthread_t th[THREADS];
	worker_arg_t args[THREADS];
	atomic_int errors, changes;
	uint64_t sub;
	artemis_error_t err;
	artemis_client_t *other = client_new(NULL);

	atomic_init(&errors, 0);
	atomic_init(&changes, 0);
	assert_int_equal(artemis_subscribe(c, service, on_change_count, &changes, &sub, &err), 0);
	for (int t = 0; t < THREADS; t++) {
		args[t] = (worker_arg_t){c, service, t, &errors};
		assert_int_equal(pthread_create(&th[t], NULL, worker, &args[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(atomic_load(&errors), 0);
	size_arg_t want = {c, service, THREADS * (PER_THREAD / 2)}; /* odd k kept */
	assert_int_equal(artemis_client_stat(c, ARTEMIS_STAT_REGISTERED), want.want);
	/* the node has exactly the kept half; the cache converges to it by pushes
	 * (or the reload after a reconnect) */
	size_arg_t node_view = {other, service, want.want};
	wait_for(lookup_size_is, &node_view, 10000, "the node to hold the kept instances");
	wait_for(cache_size_is, &want, 10000, "the cache to converge");
	size_arg_t beats = {c, NULL, want.want * 2};
	wait_for(heartbeats_at_least, &beats, 10000, "two heartbeat rounds");
	assert_true(atomic_load(&changes) > 0);
	assert_int_equal(artemis_unsubscribe(c, sub), 0);
	artemis_client_free(other);
}

static void mt_register_discover(void **state)
{
	artemis_client_t *c = client_new(NULL), *other = client_new(NULL);

	(void)state;
	run_workers(c, "mt-own");
	artemis_client_free(c); /* unregisters the rest */
	size_arg_t gone = {other, "mt-own", 0};
	wait_for(lookup_size_is, &gone, 10000, "the unregisters of artemis_client_free");
	artemis_client_free(other);
}

/* ---- the caller's event base ---------------------------------------------------- */

typedef struct {
	struct event_base *base;
	atomic_bool stop;
} loop_arg_t;

static void loop_check(evutil_socket_t fd, short what, void *p)
{
	loop_arg_t *a = p;

	(void)fd;
	(void)what;
	if (atomic_load(&a->stop))
		event_base_loopbreak(a->base);
}

static void *loop_main(void *p)
{
	loop_arg_t *a = p;
	struct timeval tv = {0, 20000};
	struct event *ev = event_new(a->base, -1, EV_PERSIST, loop_check, a);

	event_add(ev, &tv);
	event_base_loop(a->base, EVLOOP_NO_EXIT_ON_EMPTY);
	event_free(ev);
	return NULL;
}

static void mt_caller_base(void **state)
{
	loop_arg_t la = {.base = event_base_new()};
	pthread_t loop;
	artemis_client_t *c, *other = client_new(NULL);

	(void)state;
	atomic_init(&la.stop, false);
	c = client_new(la.base); /* before the loop runs: allowed */
	assert_int_equal(pthread_create(&loop, NULL, loop_main, &la), 0);
	run_workers(c, "mt-base");
	atomic_store(&la.stop, true);
	pthread_join(loop, NULL);
	artemis_client_free(c); /* the loop is not running: allowed */
	event_base_free(la.base);
	size_arg_t gone = {other, "mt-base", 0};
	wait_for(lookup_size_is, &gone, 10000, "the unregisters of artemis_client_free");
	artemis_client_free(other);
}

/* ---- callbacks that call the API ---------------------------------------------------- */

typedef struct {
	artemis_client_t *c;
	uint64_t id;
	atomic_int calls;
	atomic_bool freed;
	bool free_it;
} cb_arg_t;

static void on_change_reenter(const artemis_change_t *ch, void *p)
{
	cb_arg_t *a = p;
	artemis_service_t *s;

	if (atomic_fetch_add(&a->calls, 1) > 0)
		return; /* unsubscribed: must not run again, but be safe */
	if (a->free_it) {
		artemis_client_free(a->c); /* deferred until this returns */
		atomic_store(&a->freed, true);
		return;
	}
	assert_int_equal(
	    artemis_discover(a->c, artemis_service_id(artemis_change_service(ch)), &s, NULL), 0);
	artemis_service_release(s);
	assert_int_equal(artemis_unsubscribe(a->c, a->id), 0);
}

static bool calls_positive(void *p)
{
	return atomic_load(&((cb_arg_t *)p)->calls) > 0;
}

static bool freed(void *p)
{
	return atomic_load(&((cb_arg_t *)p)->freed);
}

static void mt_callbacks(void **state)
{
	cb_arg_t a = {.c = client_new(NULL)}, b = {.c = client_new(NULL), .free_it = true};
	artemis_client_t *other = client_new(NULL);
	artemis_instance_t *i1 = inst("mt-cb", 0, 1), *i2 = inst("mt-cb", 0, 2);
	artemis_error_t err;

	(void)state;
	atomic_init(&a.calls, 0);
	atomic_init(&b.calls, 0);
	atomic_init(&a.freed, false);
	atomic_init(&b.freed, false);
	assert_int_equal(artemis_subscribe(a.c, "mt-cb", on_change_reenter, &a, &a.id, &err), 0);
	assert_int_equal(artemis_subscribe(b.c, "mt-cb", on_change_reenter, &b, &b.id, &err), 0);
	/* b keeps i2 registered; its deferred free unregisters it */
	assert_int_equal(artemis_register(b.c, i2, &err), 0);
	for (int k = 0; k < 200 && !(calls_positive(&a) && freed(&b)); k++) {
		/* pushes are not replayed: register again until both saw one */
		artemis_registry_send(other, ARTEMIS_OP_REGISTER, i1, NULL);
		sleep_ms(50);
	}
	wait_for(calls_positive, &a, 100, "a callback on a");
	wait_for(freed, &b, 100, "the free from b's callback");
	size_arg_t only_i1 = {other, "mt-cb", 1};
	wait_for(lookup_size_is, &only_i1, 10000, "the deferred free to unregister i2");
	artemis_registry_send(other, ARTEMIS_OP_REGISTER, i1, NULL);
	artemis_registry_send(other, ARTEMIS_OP_UNREGISTER, i1, NULL);
	size_arg_t none = {a.c, "mt-cb", 0};
	wait_for(cache_size_is, &none, 10000, "a's cache after more pushes");
	assert_int_equal(atomic_load(&a.calls), 1); /* unsubscribed from inside */
	artemis_client_free(a.c);
	artemis_client_free(other);
	artemis_instance_free(i1);
	artemis_instance_free(i2);
}

/* ---- many clients ------------------------------------------------------------------- */

static void *short_lived(void *p)
{
	int t = (int)(intptr_t)p;
	artemis_error_t err;

	for (int round = 0; round < 3; round++) {
		artemis_client_t *c = client_new(NULL);
		artemis_instance_t *i = inst("mt-many", t, round);
		artemis_service_t *s;
		assert_int_equal(artemis_register(c, i, &err), 0);
		assert_int_equal(artemis_discover(c, "mt-many", &s, &err), 0);
		artemis_service_release(s);
		artemis_client_free(c);
		artemis_instance_free(i);
	}
	return NULL;
}

static void mt_many_clients(void **state)
{
	pthread_t th[THREADS];
	artemis_client_t *other = client_new(NULL);

	(void)state;
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, short_lived, (void *)(intptr_t)t), 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	size_arg_t none = {other, "mt-many", 0};
	wait_for(lookup_size_is, &none, 10000, "every short-lived client to unregister");
	artemis_client_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mt_register_discover),
	    cmocka_unit_test(mt_caller_base),
	    cmocka_unit_test(mt_callbacks),
	    cmocka_unit_test(mt_many_clients),
	};
	signal(SIGPIPE, SIG_DFL); /* the library must not need SIGPIPE ignored */
	return cmocka_run_group_tests(tests, node_start, node_stop);
}
