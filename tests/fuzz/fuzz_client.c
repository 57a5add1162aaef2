/*
 * fuzz_client.c - libFuzzer target for the decoders of libartemis-client
 * (client/): everything a node, or something pretending to be one, sends.
 * The first byte picks the decoder, the rest is its input:
 *   0  an HTTP response, fed in cuts the second byte chooses, then EOF:
 *      the body never exceeds its limit; whole-or-error, never a crash
 *   1  a registry answer (register/heartbeat/unregister.json), and the
 *      same bytes as a status/config.json answer (the lease TTL)
 *   2  an InstanceChange push, applied to a small snapshot when valid
 *   3  a Service (lookup answer): the snapshot is built and an instance
 *      chosen by each of its route rules, and by the default choice
 *   4  WebSocket frames from a server: the events are the same whether the
 *      bytes come at once or byte by byte
 *   5  an up-*-nodes.json answer
 * ASan/UBSan check memory; every path must also free what it made.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_http(const uint8_t *d, size_t n)
{
	cl_resp_t r = {0};
	size_t cut = n ? (d[0] % 64) + 1 : 1, off = 1, used;
	int rc = 0;

	cl_resp_init(&r, 4096);
	while (off < n && rc == 0) {
		size_t len = n - off < cut ? n - off : cut;
		rc = cl_resp_feed(&r, (const char *)d + off, len, &used);
		if (used > len)
			abort();
		off += used ? used : len;
	}
	if (rc == 0)
		rc = cl_resp_eof(&r);
	if (r.body.len > 4096)
		abort();
	if (rc == 1 && (r.status < 100 || r.status > 599))
		abort();
	cl_resp_free(&r);
}

static void fuzz_registry(const uint8_t *d, size_t n)
{
	json_t *root = cl_json_parse((const char *)d, n);
	cl_status_t st;
	cl_failed_t *failed;
	size_t nfailed;

	if (cl_decode_registry(root, &st, &failed, &nfailed) == 0) {
		for (size_t k = 0; k < nfailed; k++)
			if (strlen(failed[k].key) >= sizeof(failed[k].key))
				abort();
		(void)cl_status_node_down(&st);
		(void)cl_status_rerunnable(&st);
	}
	free(failed);
	uint32_t ttl = 0;
	if (cl_decode_lease_ttl(root, &ttl) == 0 && (ttl < 1000 || ttl > 604800000))
		abort();
	json_decref(root);
}

static cl_svc_t *base_service(void)
{
	static const char json[] =
	    "{\"serviceId\":\"s\",\"instances\":[{\"regionId\":\"r\",\"zoneId\":\"z\","
	    "\"serviceId\":\"s\",\"instanceId\":\"a\",\"url\":\"u\"}],\"routeRules\":[{\"routeId\":"
	    "\"x\",\"groups\":[{\"groupKey\":\"s/r/z/default\",\"weight\":3}]}]}";
	json_t *root = json_loads(json, 0, NULL);
	cl_svc_t *s = NULL;

	if (cl_svc_from_json(root, "r", "z", &s, NULL) < 0)
		abort();
	json_decref(root);
	return s;
}

static void fuzz_change(const uint8_t *d, size_t n)
{
	char sid[CL_ID_MAX + 1];
	cl_inst_t *inst;
	cl_svc_t *s, *s2;
	int64_t t;
	int type;

	if (cl_decode_change((const char *)d, n, &type, sid, sizeof(sid), &inst, &t) < 0)
		return;
	if (strlen(sid) == 0 || type < 0 || type > ARTEMIS_CHANGE_RELOAD)
		abort();
	if (inst == NULL)
		return;
	s = base_service();
	if (cl_svc_apply(s, type, inst, &s2) == 0) {
		const artemis_instance_t *pick;
		(void)artemis_service_choose(s2, NULL, &pick);
		cl_svc_release(s2);
	}
	cl_svc_release(s);
	cl_inst_release(inst);
}

static void fuzz_service(const uint8_t *d, size_t n)
{
	json_t *root = cl_json_parse((const char *)d, n);
	const artemis_instance_t *pick;
	cl_svc_t *s;

	if (cl_svc_from_json(root, "r", "z", &s, NULL) == 0) {
		for (size_t r = 0; r < artemis_service_rule_count(s); r++)
			for (int k = 0; k < 3; k++)
				if (artemis_service_choose(s, artemis_service_rule_id(s, r),
				                           &pick) == 0 &&
				    !artemis_instance_is_up(pick))
					abort(); /* never an instance that is not up */
		(void)artemis_service_choose(s, NULL, &pick);
		if (strlen(artemis_service_json(s)) == 0)
			abort();
		cl_svc_release(s);
	}
	json_decref(root);
}

typedef struct {
	uint64_t hash;
	unsigned events;
} ws_run_t;

static int on_frame(void *ctx, int op, const char *data, size_t len)
{
	ws_run_t *r = ctx;

	if (op >= CL_WS_CLOSE && len > 125)
		abort();
	r->hash = r->hash * 31 + (uint64_t)op;
	for (size_t i = 0; i < len; i++)
		r->hash = r->hash * 131 + (unsigned char)data[i];
	r->events++;
	return 0;
}

static int ws_run(const uint8_t *d, size_t n, size_t step, ws_run_t *r)
{
	cl_wsd_t dec;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	cl_wsd_init(&dec, 2048);
	for (size_t off = 0; off < n && rc == 0; off += step)
		rc = cl_wsd_feed(&dec, d + off, n - off < step ? n - off : step, on_frame, r);
	cl_wsd_free(&dec);
	return rc;
}

static void fuzz_ws(const uint8_t *d, size_t n)
{
	ws_run_t a, b;
	int ra = ws_run(d, n, n ? n : 1, &a), rb = ws_run(d, n, 1, &b);

	if (ra != rb || a.hash != b.hash || a.events != b.events)
		abort();
}

static void count_node(void *arg, const char *url)
{
	if (url[0] == '\0')
		abort();
	(*(int *)arg)++;
}

static void fuzz_nodes(const uint8_t *d, size_t n)
{
	json_t *root = cl_json_parse((const char *)d, n);
	int count = 0, rc = cl_decode_nodes(root, count_node, &count);

	if (rc >= 0 && rc != count)
		abort();
	json_decref(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 0:
		fuzz_http(data + 1, size - 1);
		break;
	case 1:
		fuzz_registry(data + 1, size - 1);
		break;
	case 2:
		fuzz_change(data + 1, size - 1);
		break;
	case 3:
		fuzz_service(data + 1, size - 1);
		break;
	case 4:
		fuzz_ws(data + 1, size - 1);
		break;
	default:
		fuzz_nodes(data + 1, size - 1);
		break;
	}
	return 0;
}
