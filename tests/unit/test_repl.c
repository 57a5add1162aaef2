/*
 * test_repl.c - the replicator: its frame codec (replicator/proto.c), the
 * handshake proof and session keys (auth.c), sealed frames (seal.c), the
 * record parser it shares with the register endpoint (codec/instance_in.c),
 * and a live replicator driven over a socketpair by a scripted peer: the
 * handshake state machine (each frame out of order, each failure), the
 * limits on unauthenticated connections, sealed frames injected, replayed,
 * reordered or altered, last-writer-wins ties, tombstones and pulls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../replicator/repl.h"
#include "artemis/clock.h"
#include "artemis/codec.h"
#include <sodium.h>

/* Encode-end and return the payload of the encoder's frame. */
static const char *payload(repl_enc_t *e, size_t *len)
{
	size_t plen = 0;

	assert_int_equal(repl_enc_end(e), 0);
	assert_int_equal(repl_frame_len((const uint8_t *)e->b.data, e->b.len, &plen), 0);
	assert_int_equal(plen + REPL_FRAME_HDR, e->b.len);
	*len = plen;
	return e->b.data + REPL_FRAME_HDR;
}

static void test_hello_round_trip(void **state)
{
	repl_enc_t e;
	repl_msg_t m;
	uint8_t nonce[REPL_NONCE_BYTES];
	size_t len;

	(void)state;
	memset(nonce, 7, sizeof(nonce));
	repl_enc_init(&e);
	repl_enc_begin(&e, REPL_HELLO, 8);
	repl_enc_u(&e, REPL_PROTO_VERSION);
	repl_enc_s(&e, "node1", 5);
	repl_enc_u(&e, 0x1122334455667788ull);
	repl_enc_s(&e, nonce, sizeof(nonce));
	repl_enc_u(&e, 1);
	repl_enc_s(&e, "zone-1", 6);
	repl_enc_u(&e, REPL_HELLO_ENCRYPT);
	repl_enc_u(&e, repl_kinds_known());
	const char *p = payload(&e, &len);
	assert_int_equal(repl_decode(p, len, &m), 0);
	assert_int_equal(m.type, REPL_HELLO);
	assert_int_equal(m.u[0], REPL_PROTO_VERSION);
	assert_true(m.u[1] == 0x1122334455667788ull);
	assert_int_equal(m.u[2], 1);
	assert_int_equal(m.u[3], REPL_HELLO_ENCRYPT);
	assert_true(m.u[4] == repl_kinds_known());
	assert_int_equal(m.s[0].len, 5);
	assert_memory_equal(m.s[0].ptr, "node1", 5);
	assert_int_equal(m.s[1].len, REPL_NONCE_BYTES);
	assert_memory_equal(m.s[1].ptr, nonce, REPL_NONCE_BYTES);
	assert_memory_equal(m.s[2].ptr, "zone-1", 6);
	repl_msg_free(&m);

	/* Another version's HELLO: only its version is read, whatever follows
	 * (a version 1 node sends six fields), so it is refused by name. */
	repl_enc_begin(&e, REPL_HELLO, 2);
	repl_enc_u(&e, 1);
	repl_enc_s(&e, "old", 3);
	p = payload(&e, &len);
	assert_int_equal(repl_decode(p, len, &m), 0);
	assert_int_equal(m.type, REPL_HELLO);
	assert_int_equal(m.u[0], 1);
	repl_msg_free(&m);
	/* the current version with fields missing is malformed */
	repl_enc_begin(&e, REPL_HELLO, 2);
	repl_enc_u(&e, REPL_PROTO_VERSION);
	repl_enc_s(&e, "new", 3);
	p = payload(&e, &len);
	assert_int_equal(repl_decode(p, len, &m), -EPROTO);
	repl_enc_destroy(&e);
}

static void test_keys_and_digests(void **state)
{
	repl_enc_t e;
	repl_msg_t m;
	shm_key_t k = {{"us-east", 7}, {"svc", 3}, {"i1", 2}}, got;
	repl_digest_t d;
	size_t len;

	(void)state;
	repl_enc_init(&e);
	repl_enc_begin(&e, REPL_RENEW, 1);
	repl_enc_array(&e, 2);
	repl_enc_key(&e, &k);
	repl_enc_key(&e, &k);
	const char *p = payload(&e, &len);
	assert_int_equal(repl_decode(p, len, &m), 0);
	assert_int_equal(m.type, REPL_RENEW);
	assert_int_equal(m.nlist, 2);
	repl_msg_key(&m, 1, &got);
	assert_int_equal(got.instance.len, 2);
	assert_memory_equal(got.service.ptr, "svc", 3);
	repl_msg_free(&m);

	repl_enc_begin(&e, REPL_DIGEST, 3);
	repl_enc_u(&e, 42);
	repl_enc_u(&e, 3);
	repl_enc_array(&e, 1);
	repl_enc_array(&e, 4);
	repl_enc_u(&e, REPL_REC_INSTANCE);
	repl_enc_s(&e, "svc", 3);
	repl_enc_u(&e, 10);
	repl_enc_u(&e, UINT64_MAX);
	p = payload(&e, &len);
	assert_int_equal(repl_decode(p, len, &m), 0);
	repl_msg_digest(&m, 0, &d);
	assert_int_equal(d.kind, REPL_REC_INSTANCE);
	assert_int_equal(d.count, 10);
	assert_true(d.hash == UINT64_MAX);
	assert_memory_equal(d.name.ptr, "svc", 3);
	repl_msg_free(&m);
	repl_enc_destroy(&e);
}

/* Record kinds: a kind this node does not know is refused by name
 * (-EPROTONOSUPPORT), a kind that cannot be one is malformed. */
static void test_record_kinds(void **state)
{
	repl_enc_t e;
	repl_msg_t m;
	size_t len;
	static const uint64_t kinds[] = {REPL_REC_INSTANCE, 9, 63, 0, 64};
	static const int want[] = {0, -EPROTONOSUPPORT, -EPROTONOSUPPORT, -EPROTO, -EPROTO};

	(void)state;
	repl_enc_init(&e);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		repl_enc_begin(&e, REPL_RECORD, 3);
		repl_enc_u(&e, kinds[i]);
		repl_enc_u(&e, 1);
		repl_enc_s(&e, "{}", 2);
		const char *p = payload(&e, &len);
		assert_int_equal(repl_decode(p, len, &m), want[i]);
		if (want[i] == 0)
			repl_msg_free(&m);
		repl_enc_begin(&e, REPL_PULL_END, 2);
		repl_enc_u(&e, kinds[i]);
		repl_enc_s(&e, "svc", 3);
		p = payload(&e, &len);
		assert_int_equal(repl_decode(p, len, &m), want[i]);
		if (want[i] == 0)
			repl_msg_free(&m);
		repl_enc_begin(&e, REPL_DIGEST, 3);
		repl_enc_u(&e, 1);
		repl_enc_u(&e, 0);
		repl_enc_array(&e, 1);
		repl_enc_array(&e, 4);
		repl_enc_u(&e, kinds[i]);
		repl_enc_s(&e, "svc", 3);
		repl_enc_u(&e, 1);
		repl_enc_u(&e, 2);
		p = payload(&e, &len);
		assert_int_equal(repl_decode(p, len, &m), want[i]);
		if (want[i] == 0)
			repl_msg_free(&m);
	}
	repl_enc_destroy(&e);
}

static void test_frame_lengths(void **state)
{
	uint8_t hdr[8] = {0, 0, 0, 4, 1, 2, 3, 4};
	uint8_t big[4] = {0xff, 0xff, 0xff, 0xff};
	size_t len = 0;

	(void)state;
	assert_int_equal(repl_frame_len(hdr, 3, &len), -EAGAIN);
	assert_int_equal(repl_frame_len(hdr, 7, &len), -EAGAIN);
	assert_int_equal(repl_frame_len(hdr, 8, &len), 0);
	assert_int_equal(len, 4);
	assert_int_equal(repl_frame_len(big, 4, &len), -EMSGSIZE);
	/* the largest payload plus its tag is a frame; one byte more is not */
	uint32_t n = REPL_MAX_FRAME + REPL_TAG_BYTES;
	uint8_t edge[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	assert_int_equal(repl_frame_len(edge, 4, &len), -EAGAIN);
	n++;
	uint8_t over[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	assert_int_equal(repl_frame_len(over, 4, &len), -EMSGSIZE);
}

/* The encoder's error is sticky and reported once, at the end. */
static void test_encoder_errors(void **state)
{
	repl_enc_t e;
	static char big[REPL_MAX_FRAME];

	(void)state;
	repl_enc_init(&e);
	repl_enc_begin(&e, REPL_RECORD, 3);
	repl_enc_u(&e, REPL_REC_INSTANCE);
	repl_enc_u(&e, 1);
	repl_enc_s(&e, big, sizeof(big));
	assert_int_equal(repl_enc_end(&e), -EMSGSIZE);
	repl_enc_begin(&e, REPL_RECORD, 3);
	e.b.err = -ENOMEM; /* as a failed allocation leaves it */
	repl_enc_u(&e, 1);
	assert_int_equal(repl_enc_end(&e), -ENOMEM);
	repl_enc_begin(&e, REPL_ACK, 2); /* a new frame forgets it */
	repl_enc_u(&e, 1);
	repl_enc_u(&e, 1);
	assert_int_equal(repl_enc_end(&e), 0);
	repl_enc_destroy(&e);
}

/* Malformed payloads: each is refused, none crashes. */
static void test_malformed_payloads(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
	    {"", 0},
	    {"\xc1", 1},                           /* never-used msgpack byte */
	    {"\x91\x01", 2},                       /* HELLO without fields */
	    {"\x92\x63\x00", 3},                   /* unknown type 99 */
	    {"\x93\x14\x01\x01\x00", 5},           /* ACK with trailing bytes */
	    {"\x92\x01\xa1x", 4},                  /* HELLO: a string for the version */
	    {"\x93\x14\xa1x\x01", 5},              /* ACK: string for a number */
	    {"\x92\x14\x05", 3},                   /* ACK without its node state */
	    {"\x92\x0c\x91\x92\xa1x\xa1y", 7},     /* RENEW: a key of two parts */
	    {"\x92\x0c\x91\x93\xa0\xa1y\xa1z", 8}, /* RENEW: an empty region */
	    {"\x81\x01\x02", 3},                   /* a map, not an array */
	    {"\x92\xff\x01", 3},                   /* negative type */
	    {"\xdd\xff\xff\xff\xff", 5},           /* array32 claiming 4G items */
	};
	repl_msg_t m;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(repl_decode(bad[i].bytes, bad[i].len, &m), -EPROTO);
	/* a newer peer's extra trailing fields are accepted */
	assert_int_equal(repl_decode("\x94\x14\x05\x01\x09", 5, &m), 0);
	assert_int_equal(m.u[0], 5);
	repl_msg_free(&m);
}

static void test_handshake_proof(void **state)
{
	uint8_t key[REPL_KEY_BYTES], other[REPL_KEY_BYTES];
	uint8_t ha[REPL_HASH_BYTES], hb[REPL_HASH_BYTES], th[REPL_HASH_BYTES], th2[REPL_HASH_BYTES];
	uint8_t mac[REPL_MAC_BYTES];

	(void)state;
	repl_auth_key("secret-secret-secret", key);
	repl_auth_key("secret-secret-secret2", other);
	assert_memory_not_equal(key, other, REPL_KEY_BYTES);
	repl_hello_hash("hello of a", 10, ha);
	repl_hello_hash("hello of b", 10, hb);
	repl_transcript(ha, hb, th);
	repl_transcript(hb, ha, th2); /* the order of the HELLOs counts */
	assert_memory_not_equal(th, th2, REPL_HASH_BYTES);

	/* a (connector) proves to b */
	repl_auth_proof(key, true, th, mac);
	assert_int_equal(repl_auth_verify(key, true, th, mac, sizeof(mac)), 0);
	/* wrong key, wrong role (reflection), another transcript, short mac */
	assert_int_equal(repl_auth_verify(other, true, th, mac, sizeof(mac)), -EACCES);
	assert_int_equal(repl_auth_verify(key, false, th, mac, sizeof(mac)), -EACCES);
	assert_int_equal(repl_auth_verify(key, true, th2, mac, sizeof(mac)), -EACCES);
	assert_int_equal(repl_auth_verify(key, true, th, mac, 16), -EACCES);
	/* b's answer as acceptor verifies only as an acceptor's */
	repl_auth_proof(key, false, th, mac);
	assert_int_equal(repl_auth_verify(key, false, th, mac, sizeof(mac)), 0);
	assert_int_equal(repl_auth_verify(key, true, th, mac, sizeof(mac)), -EACCES);
}

/* Session keys pair up across the two sides; a sealed frame opens once,
 * in order, unaltered, and only with its direction's key. */
static void sealed_round_trip(bool encrypt)
{
	uint8_t key[REPL_KEY_BYTES], th[REPL_HASH_BYTES];
	repl_seal_t ctx, crx, atx, arx;
	repl_enc_t e;
	static uint8_t f1[256], f2[256], t[256];

	repl_auth_key("secret-secret-secret", key);
	repl_hello_hash("t", 1, th);
	repl_session_keys(key, th, true, encrypt, &ctx, &crx);
	repl_session_keys(key, th, false, encrypt, &atx, &arx);
	assert_memory_equal(ctx.key, arx.key, REPL_KEY_BYTES);
	assert_memory_equal(atx.key, crx.key, REPL_KEY_BYTES);
	assert_memory_not_equal(ctx.key, crx.key, REPL_KEY_BYTES);
	repl_enc_init(&e);
	repl_enc_begin(&e, REPL_PULL, 2);
	repl_enc_u(&e, REPL_REC_INSTANCE);
	repl_enc_s(&e, "secret-service", 14);
	assert_int_equal(repl_enc_end(&e), 0);
	size_t plen = e.b.len - REPL_FRAME_HDR, n = e.b.len + REPL_TAG_BYTES;
	repl_seal(&ctx, (const uint8_t *)e.b.data, plen, f1);
	repl_seal(&ctx, (const uint8_t *)e.b.data, plen, f2);
	assert_int_equal(memmem(f1, n, "secret-service", 14) == NULL, encrypt);
	assert_memory_not_equal(f1 + n - REPL_TAG_BYTES, f2 + n - REPL_TAG_BYTES, REPL_TAG_BYTES);
	/* the other direction's key, and frame 2 before frame 1 */
	memcpy(t, f1, n);
	assert_int_equal(repl_open(&crx, t, n - REPL_FRAME_HDR), -EBADMSG);
	memcpy(t, f2, n);
	assert_int_equal(repl_open(&arx, t, n - REPL_FRAME_HDR), -EBADMSG);
	/* every single bit flipped, header included */
	for (size_t bit = 0; bit < n * 8; bit++) {
		memcpy(t, f1, n);
		t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(repl_open(&arx, t, n - REPL_FRAME_HDR), -EBADMSG);
	}
	/* in order: both open, the payload comes back; then a replay fails */
	memcpy(t, f1, n);
	assert_int_equal(repl_open(&arx, t, n - REPL_FRAME_HDR), 0);
	assert_memory_equal(t + REPL_FRAME_HDR, e.b.data + REPL_FRAME_HDR, plen);
	memcpy(t, f2, n);
	assert_int_equal(repl_open(&arx, t, n - REPL_FRAME_HDR), 0);
	memcpy(t, f1, n);
	assert_int_equal(repl_open(&arx, t, n - REPL_FRAME_HDR), -EBADMSG);
	assert_int_equal(repl_open(&arx, t, REPL_TAG_BYTES - 1), -EBADMSG);
	repl_enc_destroy(&e);
}

static void test_sealed_frames(void **state)
{
	(void)state;
	sealed_round_trip(true);
	sealed_round_trip(false);
}

static void test_record_parser(void **state)
{
	instance_parser_t *p = instance_parser_new();
	shm_instance_in_t si;
	const char *field = NULL;
	const char *json =
	    "{\"service_id\":\"Svc\",\"regionId\":\"us-east\",\"instanceId\":\"i1\","
	    "\"ip\":\"10.0.0.1\",\"port\":80,\"zoneId\":\"z\",\"metadata\":{\"k\":1}}";

	(void)state;
	assert_non_null(p);
	assert_int_equal(instance_parse(p, json, strlen(json), &si, &field), 0);
	assert_int_equal(si.key.service.len, 3);
	assert_memory_equal(si.key.service.ptr, "Svc", 3);
	assert_int_equal(si.zone.len, 1);
	/* the stored form is what the register endpoint stores: sorted keys,
	 * derived url, metadata values as strings; parsing it again is stable */
	char *stored = strndup(si.json.ptr, si.json.len);
	assert_non_null(strstr(stored, "\"url\":\"http://10.0.0.1:80\""));
	assert_non_null(strstr(stored, "\"metadata\":{\"k\":\"1\"}"));
	assert_int_equal(instance_parse(p, stored, strlen(stored), &si, NULL), 0);
	assert_int_equal(si.json.len, strlen(stored));
	assert_memory_equal(si.json.ptr, stored, si.json.len);
	free(stored);
	/* not an instance */
	assert_int_equal(instance_parse(p, "[1]", 3, &si, NULL), -EINVAL);
	assert_int_equal(instance_parse(p, "{", 1, &si, NULL), -EINVAL);
	json = "{\"serviceId\":\"s\",\"regionId\":\"r\",\"instanceId\":\" \",\"url\":\"u\"}";
	assert_int_equal(instance_parse(p, json, strlen(json), &si, &field), -EINVAL);
	assert_string_equal(field, "instanceId");
	instance_parser_free(p);
}

/* ---- A replicator and a scripted peer over a socketpair -------------------------- */

/* The node under test is "a"; its peers are "b" and "0z" (one name sorts
 * after "a", one before: last-writer-wins ties).  The test plays a peer
 * with the protocol's own encoder, proof and seal, and reads what the
 * replicator answers. */
#define H_KEY  "unit-test-cluster-key-0123"
#define H_SVC  "svc"
#define H_WAIT 2000 /* ms a frame may take to come */

typedef struct {
	config_t cfg;
	shm_t *shm;
	repl_t r;
	char region[64];
	int fd;           /* the peer's end */
	repl_conn_t *c;   /* the replicator's end */
	bool connector;   /* the test opened the connection */
	bool ask_encrypt; /* the test's HELLO asks for encryption */
	repl_enc_t e;
	buf_t in; /* bytes from the replicator not yet taken */
	uint8_t key[REPL_KEY_BYTES], nonce[REPL_NONCE_BYTES];
	uint8_t hello_mine[REPL_HASH_BYTES], hello_peer[REPL_HASH_BYTES];
	repl_seal_t tx, rx;
	bool tx_sealed, rx_sealed;
	uint64_t version; /* of the next CHANGE the test sends */
} h_t;

static void h_pump(h_t *h)
{
	for (int i = 0; i < 4; i++)
		event_base_loop(h->r.base, EVLOOP_NONBLOCK);
}

static h_t *h_new(bool encrypt)
{
	h_t *h = calloc(1, sizeof(*h));
	char err[256];
	shm_params_t p;

	assert_non_null(h);
	config_defaults(&h->cfg);
	assert_int_equal(config_set(&h->cfg, "node", "name", "a", err, sizeof(err)), 0);
	assert_int_equal(config_set(&h->cfg, "cluster", "key", H_KEY, err, sizeof(err)), 0);
	assert_int_equal(
	    config_set(&h->cfg, "cluster", "encrypt", encrypt ? "on" : "off", err, sizeof(err)), 0);
	assert_int_equal(
	    config_set(&h->cfg, "cluster", "peer", "b zone-1 http://b:1 b:2", err, sizeof(err)), 0);
	assert_int_equal(
	    config_set(&h->cfg, "cluster", "peer", "0z zone-1 http://z:1 z:2", err, sizeof(err)),
	    0);
	snprintf(h->region, sizeof(h->region), "/artemis-unit-repl-%d", (int)getpid());
	assert_int_equal(config_set(&h->cfg, "registry", "shm_name", h->region, err, sizeof(err)),
	                 0);
	if (config_finish(&h->cfg, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	shm_params_default(&p, h->region);
	p.max_instances = 1024;
	assert_int_equal(shm_open_region(&p, SHM_CREATE_FRESH, &h->shm, NULL), 0);
	shm_proc_join(h->shm, SHM_ROLE_TEST, -1);
	shm_node_set_state(h->shm, SHM_NODE_UP);
	assert_int_equal(repl_init(&h->r, &h->cfg, h->shm), 0);
	repl_auth_key(H_KEY, h->key);
	repl_enc_init(&h->e);
	h->fd = -1;
	h->ask_encrypt = encrypt;
	return h;
}

static void h_free(h_t *h)
{
	if (h->fd >= 0)
		close(h->fd);
	repl_fini(&h->r);
	repl_enc_destroy(&h->e);
	buf_free(&h->in);
	shm_proc_leave(h->shm);
	shm_detach(h->shm);
	shm_destroy(h->region);
	free(h);
}

/* A connection between the replicator and the test: accepted by the
 * replicator (the test connects, as peer `peer`), or opened by it to peer
 * `peer` (it sends its HELLO at once). */
static void h_connect(h_t *h, bool test_connects, int peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	if (h->fd >= 0)
		close(h->fd);
	buf_reset(&h->in);
	h->fd = sv[1];
	h->connector = test_connects;
	h->tx_sealed = h->rx_sealed = false;
	h->version = 1;
	repl_auth_nonce(h->nonce);
	h->c = repl_conn_open(&h->r, sv[0], !test_connects, test_connects ? -1 : peer, "test");
	assert_non_null(h->c);
}

static void h_write(h_t *h, const void *p, size_t n)
{
	assert_int_equal(write(h->fd, p, n), (ssize_t)n);
	h_pump(h);
}

/* Send the encoder's frame, sealed once the test's AUTH went. */
static void h_send(h_t *h)
{
	static uint8_t out[REPL_MAX_HS_FRAME * 4];

	assert_int_equal(repl_enc_end(&h->e), 0);
	if (!h->tx_sealed) {
		h_write(h, h->e.b.data, h->e.b.len);
		return;
	}
	assert_true(h->e.b.len + REPL_TAG_BYTES <= sizeof(out));
	repl_seal(&h->tx, (const uint8_t *)h->e.b.data, h->e.b.len - REPL_FRAME_HDR, out);
	h_write(h, out, h->e.b.len + REPL_TAG_BYTES);
}

/* Seal the encoder's frame without sending it (replay, reorder). */
static size_t h_seal(h_t *h, uint8_t *out)
{
	assert_int_equal(repl_enc_end(&h->e), 0);
	repl_seal(&h->tx, (const uint8_t *)h->e.b.data, h->e.b.len - REPL_FRAME_HDR, out);
	return h->e.b.len + REPL_TAG_BYTES;
}

/* Read what the replicator wrote.  0 when the connection is still open,
 * -EPIPE once it was closed (and freed, as the tick does). */
static int h_read(h_t *h)
{
	char buf[65536];

	h_pump(h);
	repl_conns_check(&h->r, clock_mono_ms());
	for (;;) {
		ssize_t n = read(h->fd, buf, sizeof(buf));
		if (n > 0) {
			buf_append(&h->in, buf, (size_t)n);
			continue;
		}
		return n == 0 ? -EPIPE : 0;
	}
}

/* The next frame from the replicator (opened when sealed), or -ETIMEDOUT /
 * -EPIPE.  raw/raw_len: its payload, for the HELLO hash. */
static int h_recv(h_t *h, repl_msg_t *m, uint8_t *raw, size_t *raw_len)
{
	uint64_t end = clock_mono_ms() + H_WAIT;
	size_t len;

	for (;;) {
		int closed = h_read(h);
		if (repl_frame_len((const uint8_t *)h->in.data, h->in.len, &len) == 0)
			break;
		if (closed)
			return closed;
		if (clock_mono_ms() > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
	uint8_t *f = (uint8_t *)h->in.data;
	size_t plen = len;
	if (h->rx_sealed) {
		assert_int_equal(repl_open(&h->rx, f, len), 0);
		plen -= REPL_TAG_BYTES;
	}
	if (raw) {
		memcpy(raw, f + REPL_FRAME_HDR, plen);
		*raw_len = plen;
	}
	int rc = repl_decode((const char *)f + REPL_FRAME_HDR, plen, m);
	assert_int_equal(rc, 0);
	memmove(h->in.data, h->in.data + REPL_FRAME_HDR + len, h->in.len - REPL_FRAME_HDR - len);
	h->in.len -= REPL_FRAME_HDR + len;
	return m->type;
}

/* The next frame must be of `type`; its message is freed. */
static void h_expect(h_t *h, int type)
{
	repl_msg_t m;

	assert_int_equal(h_recv(h, &m, NULL, NULL), type);
	repl_msg_free(&m);
}

/* The replicator closed the connection (what it sent before is dropped). */
static void h_expect_closed(h_t *h)
{
	uint64_t end = clock_mono_ms() + H_WAIT;

	while (h_read(h) == 0) {
		assert_true(clock_mono_ms() < end);
		buf_reset(&h->in);
		usleep(1000);
	}
}

static void h_hello(h_t *h, uint64_t version, const char *name, uint64_t state)
{
	repl_enc_begin(&h->e, REPL_HELLO, 8);
	repl_enc_u(&h->e, version);
	repl_enc_s(&h->e, name, strlen(name));
	repl_enc_u(&h->e, 77); /* incarnation */
	repl_enc_s(&h->e, h->nonce, REPL_NONCE_BYTES);
	repl_enc_u(&h->e, state);
	repl_enc_s(&h->e, "zone-1", 6);
	repl_enc_u(&h->e, h->ask_encrypt ? REPL_HELLO_ENCRYPT : 0);
	repl_enc_u(&h->e, repl_kinds_known());
	assert_int_equal(repl_enc_end(&h->e), 0);
	repl_hello_hash(h->e.b.data + REPL_FRAME_HDR, h->e.b.len - REPL_FRAME_HDR, h->hello_mine);
	h_send(h);
}

static void h_transcript(const h_t *h, uint8_t th[REPL_HASH_BYTES])
{
	if (h->connector)
		repl_transcript(h->hello_mine, h->hello_peer, th);
	else
		repl_transcript(h->hello_peer, h->hello_mine, th);
}

/* The test's AUTH with the key it holds; its frames are sealed after. */
static void h_auth(h_t *h, const uint8_t key[REPL_KEY_BYTES], bool encrypt)
{
	uint8_t th[REPL_HASH_BYTES], mac[REPL_MAC_BYTES];

	h_transcript(h, th);
	repl_auth_proof(key, h->connector, th, mac);
	repl_enc_begin(&h->e, REPL_AUTH, 1);
	repl_enc_s(&h->e, mac, sizeof(mac));
	h_send(h);
	repl_session_keys(key, th, h->connector, encrypt, &h->tx, &h->rx);
	h->tx_sealed = true;
}

/* The replicator's HELLO (hashed) and AUTH (verified): its frames are
 * sealed after. */
static void h_take_hello_auth(h_t *h)
{
	uint8_t raw[REPL_MAX_HS_FRAME], th[REPL_HASH_BYTES];
	size_t len;
	repl_msg_t m;

	assert_int_equal(h_recv(h, &m, raw, &len), REPL_HELLO);
	assert_int_equal(m.u[0], REPL_PROTO_VERSION);
	assert_int_equal(m.s[0].len, 1);
	repl_msg_free(&m);
	repl_hello_hash(raw, len, h->hello_peer);
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_AUTH);
	h_transcript(h, th);
	assert_int_equal(
	    repl_auth_verify(h->key, !h->connector, th, (const uint8_t *)m.s[0].ptr, m.s[0].len),
	    0);
	repl_msg_free(&m);
	h->rx_sealed = true;
}

/* The whole handshake, the test connecting as `name`; ends when the
 * replicator's WANT came. */
static void h_handshake_in(h_t *h, const char *name, bool encrypt)
{
	h_connect(h, true, -1);
	h_hello(h, REPL_PROTO_VERSION, name, SHM_NODE_UP);
	h_take_hello_auth(h);
	h_auth(h, h->key, encrypt);
	h_expect(h, REPL_WANT);
	assert_int_equal(h->c->hs, REPL_HS_READY);
}

/* The JSON of instance id of H_SVC, with `extra` fields; its length. */
static int h_json(char *json, size_t size, const char *id, const char *extra)
{
	return snprintf(json, size,
	                "{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\",\"serviceId\":\"" H_SVC
	                "\",\"instanceId\":\"%s\",\"ip\":\"10.0.0.1\",\"port\":80%s}",
	                id, extra ? extra : "");
}

/* A CHANGE register (op REPL_OP_REGISTER) or unregister of instance id. */
static void h_change(h_t *h, uint64_t op, const char *id, uint64_t origin_ms, const char *extra)
{
	char json[512];
	int n = h_json(json, sizeof(json), id, extra);

	repl_enc_begin(&h->e, REPL_CHANGE, 5);
	repl_enc_u(&h->e, h->version++);
	repl_enc_u(&h->e, op);
	repl_enc_u(&h->e, REPL_REC_INSTANCE);
	repl_enc_u(&h->e, origin_ms);
	repl_enc_s(&h->e, json, (size_t)n);
}

/* A RECORD of instance id (a snapshot's, a pull's or a fetch's). */
static void h_record(h_t *h, const char *id, uint64_t origin_ms)
{
	char json[512];
	int n = h_json(json, sizeof(json), id, NULL);

	repl_enc_begin(&h->e, REPL_RECORD, 3);
	repl_enc_u(&h->e, REPL_REC_INSTANCE);
	repl_enc_u(&h->e, origin_ms);
	repl_enc_s(&h->e, json, (size_t)n);
}

/* The instance id of H_SVC as stored: 1 live, 0 absent or being removed;
 * its stored JSON in json (when not NULL). */
static int h_live(h_t *h, const char *id, buf_t *json)
{
	shm_key_t k = {{"us-east", 7}, {H_SVC, strlen(H_SVC)}, {id, strlen(id)}};
	shm_instance_view_t v;

	if (json)
		buf_reset(json);
	return shm_lookup(h->shm, &k, clock_wall_ms(), &v, json) == 0 && !v.evicted;
}

/* Wait for the wall clock's next millisecond (a sweep's mark and the
 * refreshes it compares with are milliseconds). */
static void h_next_ms(void)
{
	uint64_t now = clock_wall_ms();

	while (clock_wall_ms() == now)
		usleep(100);
}

/* Register id locally (origin 0) at origin_ms with `extra` fields. */
static void h_local(h_t *h, const char *id, uint64_t origin_ms, const char *extra)
{
	instance_parser_t *p = instance_parser_new();
	shm_instance_in_t si;
	char json[512];
	int n = h_json(json, sizeof(json), id, extra);

	assert_int_equal(instance_parse(p, json, (size_t)n, &si, NULL), 0);
	si.origin_ms = origin_ms;
	assert_int_equal(shm_register(h->shm, &si), 0);
	instance_parser_free(p);
}

/* A minimal valid frame of `type` (in the handshake's eyes: out of place). */
static void h_frame(h_t *h, int type)
{
	uint8_t zero[REPL_MAC_BYTES] = {0};

	switch (type) {
	case REPL_AUTH:
		repl_enc_begin(&h->e, REPL_AUTH, 1);
		repl_enc_s(&h->e, zero, sizeof(zero));
		break;
	case REPL_CHANGE:
		h_change(h, REPL_OP_REGISTER, "early", clock_wall_ms(), NULL);
		break;
	case REPL_HELLO:
		h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
		return;
	default: /* WANT, ACK: two numbers */
		repl_enc_begin(&h->e, type, 2);
		repl_enc_u(&h->e, 0);
		repl_enc_u(&h->e, 0);
	}
	h_send(h);
}

static void test_handshake_complete_both_roles(void **state)
{
	h_t *h = h_new(true);
	uint8_t raw[REPL_MAX_HS_FRAME], th[REPL_HASH_BYTES];
	size_t len;
	repl_msg_t m;

	(void)state;
	/* the test connects: the replicator accepts and receives */
	h_handshake_in(h, "b", true);
	assert_ptr_equal(h->r.peers[0].in, h->c);
	assert_int_equal(h->r.peers[0].node_state, SHM_NODE_UP);
	assert_true(h->c->encrypt && h->c->tx_sealed && h->c->rx_sealed);
	h_change(h, REPL_OP_REGISTER, "i1", clock_wall_ms(), NULL);
	h_send(h);
	assert_true(h_live(h, "i1", NULL));

	/* the replicator connects to b: HELLO first, then its AUTH after ours */
	h_connect(h, false, 0);
	assert_int_equal(h_recv(h, &m, raw, &len), REPL_HELLO);
	assert_int_equal(m.u[3], REPL_HELLO_ENCRYPT); /* encrypt = on asks for it */
	repl_msg_free(&m);
	repl_hello_hash(raw, len, h->hello_peer);
	h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
	h_auth(h, h->key, true);
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_AUTH);
	h_transcript(h, th);
	assert_int_equal(
	    repl_auth_verify(h->key, true, th, (const uint8_t *)m.s[0].ptr, m.s[0].len), 0);
	repl_msg_free(&m);
	h->rx_sealed = true;
	h_frame(h, REPL_WANT); /* sealed: nothing held yet */
	assert_int_equal(h->c->hs, REPL_HS_READY);
	repl_sender_tick(&h->r);
	h_expect(h, REPL_SNAP_BEGIN); /* the snapshot, sealed */
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_RECORD);
	assert_int_equal(m.u[0], REPL_REC_INSTANCE);
	assert_non_null(memmem(m.s[0].ptr, m.s[0].len, "\"i1\"", 4));
	repl_msg_free(&m);
	h_expect(h, REPL_SNAP_END);
	h_free(h);
}

/* Every frame out of place in the handshake closes the connection; none
 * of them changes what the node knows of the peer, nor the registry. */
static void test_handshake_frames_out_of_order(void **state)
{
	static const int first[] = {REPL_AUTH, REPL_WANT, REPL_CHANGE, REPL_ACK};
	static const int after_hello[] = {REPL_HELLO, REPL_WANT, REPL_CHANGE, REPL_ACK};
	h_t *h = h_new(true);
	repl_msg_t m;
	uint8_t raw[REPL_MAX_HS_FRAME];
	size_t len;

	(void)state;
	h->r.peers[0].node_state = SHM_NODE_DOWN;
	/* the replicator accepts: HELLO first, then AUTH */
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		h_connect(h, true, -1);
		h_frame(h, first[i]);
		h_expect_closed(h);
	}
	for (size_t i = 0; i < sizeof(after_hello) / sizeof(after_hello[0]); i++) {
		h_connect(h, true, -1);
		h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
		h_frame(h, after_hello[i]);
		h_expect_closed(h);
	}
	/* the replicator connects: our HELLO, then our AUTH, then WANT */
	h_connect(h, false, 0);
	h_frame(h, REPL_AUTH);
	h_expect_closed(h);
	h_connect(h, false, 0);
	assert_int_equal(h_recv(h, &m, raw, &len), REPL_HELLO);
	repl_msg_free(&m);
	h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
	h_frame(h, REPL_WANT);
	h_expect_closed(h);
	h_connect(h, false, 0);
	assert_int_equal(h_recv(h, &m, raw, &len), REPL_HELLO);
	repl_msg_free(&m);
	repl_hello_hash(raw, len, h->hello_peer);
	assert_int_equal(h->r.peers[0].node_state, SHM_NODE_DOWN);
	h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
	h_auth(h, h->key, true);
	h_expect(h, REPL_AUTH);
	assert_int_equal(h->r.peers[0].node_state, SHM_NODE_UP); /* proved: it counts */
	h->rx_sealed = true;
	h_frame(h, REPL_CHANGE); /* sealed, but WANT must come first */
	h_expect_closed(h);
	assert_false(h_live(h, "early", NULL));
	h_free(h);
}

static void test_handshake_failures(void **state)
{
	h_t *h = h_new(true);
	repl_msg_t m;
	uint8_t junk[REPL_MAC_BYTES], other[REPL_KEY_BYTES];

	(void)state;
	/* another protocol version: REFUSE, closed */
	h_connect(h, true, -1);
	h_hello(h, 1, "b", SHM_NODE_UP);
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_REFUSE);
	assert_int_equal(m.s[0].len, strlen("protocol version"));
	repl_msg_free(&m);
	h_expect_closed(h);
	/* a node that is not a peer */
	h_connect(h, true, -1);
	h_hello(h, REPL_PROTO_VERSION, "mallory", SHM_NODE_UP);
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_REFUSE);
	assert_memory_equal(m.s[0].ptr, "unknown node", 12);
	repl_msg_free(&m);
	h_expect_closed(h);
	/* a bad proof: refused (sealed: the replicator's AUTH went) */
	h_connect(h, true, -1);
	h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
	h_take_hello_auth(h);
	randombytes_buf(junk, sizeof(junk));
	repl_enc_begin(&h->e, REPL_AUTH, 1);
	repl_enc_s(&h->e, junk, sizeof(junk));
	h_send(h);
	uint8_t th[REPL_HASH_BYTES];
	h_transcript(h, th);
	repl_session_keys(h->key, th, true, true, &h->tx, &h->rx);
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_REFUSE);
	assert_memory_equal(m.s[0].ptr, "authentication failed", 21);
	repl_msg_free(&m);
	h_expect_closed(h);
	assert_true(h->r.peers[0].key_logged);
	/* a wrong key: its proof of the replicator fails here, ours there */
	repl_auth_key("not-the-cluster-key-at-all", other);
	h_connect(h, true, -1);
	h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
	uint8_t raw[REPL_MAX_HS_FRAME];
	size_t len;
	assert_int_equal(h_recv(h, &m, raw, &len), REPL_HELLO);
	repl_msg_free(&m);
	repl_hello_hash(raw, len, h->hello_peer);
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_AUTH);
	h_transcript(h, th);
	assert_int_equal(
	    repl_auth_verify(other, false, th, (const uint8_t *)m.s[0].ptr, m.s[0].len), -EACCES);
	repl_msg_free(&m);
	h_auth(h, other, true);
	h_expect_closed(h);
	/* no handshake in time: closed by the tick, and after a HELLO too */
	h_connect(h, true, -1);
	repl_conns_check(&h->r, clock_mono_ms() + REPL_HANDSHAKE_MS + 1);
	h_expect_closed(h);
	h_connect(h, true, -1);
	h_hello(h, REPL_PROTO_VERSION, "b", SHM_NODE_UP);
	repl_conns_check(&h->r, clock_mono_ms() + REPL_HANDSHAKE_MS + 1);
	h_expect_closed(h);
	/* ... and then a good one still works */
	h_handshake_in(h, "b", true);
	assert_false(h->r.peers[0].key_logged);
	h_free(h);
}

/* Issue 11: a HELLO claiming to be a peer, never followed by its proof,
 * changes nothing the node knows of that peer. */
static void test_unauthenticated_hello_changes_nothing(void **state)
{
	h_t *h = h_new(true);

	(void)state;
	h_handshake_in(h, "b", true);
	repl_conn_t *real = h->c;
	int real_fd = h->fd;
	h->fd = -1;
	uint64_t inc = h->r.peers[0].rx_inc;
	for (int i = 0; i < 20; i++) {
		h_connect(h, true, -1);
		h_hello(h, REPL_PROTO_VERSION, "b", i % 2 ? SHM_NODE_STARTING : SHM_NODE_DOWN);
		h_pump(h);
		assert_int_equal(h->r.peers[0].node_state, SHM_NODE_UP);
		assert_ptr_equal(h->r.peers[0].in, real);
		assert_true(h->r.peers[0].rx_inc == inc);
	}
	repl_status_publish(&h->r);
	shm_peer_t sp;
	assert_int_equal(shm_peer_get(h->shm, 1, &sp), 0);
	assert_int_equal(sp.state, SHM_PEER_UP);
	close(real_fd);
	h_free(h);
}

/* At most REPL_MAX_HANDSHAKES accepted connections in their handshake: a
 * new one closes the oldest, and a real peer still gets through. */
static void test_handshake_limit(void **state)
{
	enum { EXTRA = 3 };
	h_t *h = h_new(true);
	int fds[REPL_MAX_HANDSHAKES + EXTRA];
	char c;

	(void)state;
	for (int i = 0; i < REPL_MAX_HANDSHAKES + EXTRA; i++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
		assert_non_null(repl_conn_open(&h->r, sv[0], false, -1, "idle"));
		fds[i] = sv[1];
	}
	h_pump(h);
	repl_conns_check(&h->r, clock_mono_ms());
	h_pump(h); /* libevent closes a freed connection's socket from its loop */
	for (int i = 0; i < REPL_MAX_HANDSHAKES + EXTRA; i++)
		assert_int_equal(read(fds[i], &c, 1) == 0, i < EXTRA);
	h_handshake_in(h, "b", true);
	for (int i = 0; i < REPL_MAX_HANDSHAKES + EXTRA; i++)
		close(fds[i]);
	h_free(h);
}

/* After the handshake: an injected, replayed, reordered or altered frame
 * closes the connection and nothing it carried is applied. */
static void sealed_attacks(bool encrypt)
{
	h_t *h = h_new(encrypt);
	static uint8_t f1[1024], f2[1024];
	uint64_t t = clock_wall_ms();
	size_t n1, n2;

	/* injected: sealed with another key, or not sealed at all */
	h_handshake_in(h, "b", encrypt);
	h_change(h, REPL_OP_REGISTER, "inj1", t, NULL);
	repl_seal_t forged = h->tx;
	forged.key[0] ^= 1;
	assert_int_equal(repl_enc_end(&h->e), 0);
	repl_seal(&forged, (const uint8_t *)h->e.b.data, h->e.b.len - REPL_FRAME_HDR, f1);
	h_write(h, f1, h->e.b.len + REPL_TAG_BYTES);
	h_expect_closed(h);
	h_handshake_in(h, "b", encrypt);
	h_change(h, REPL_OP_REGISTER, "inj2", t, NULL);
	assert_int_equal(repl_enc_end(&h->e), 0);
	h_write(h, h->e.b.data, h->e.b.len);
	h_expect_closed(h);
	assert_false(h_live(h, "inj1", NULL) || h_live(h, "inj2", NULL));
	/* replayed: a register, its unregister, the register again */
	h_handshake_in(h, "b", encrypt);
	h_change(h, REPL_OP_REGISTER, "rep", t, NULL);
	n1 = h_seal(h, f1);
	h_write(h, f1, n1);
	assert_true(h_live(h, "rep", NULL));
	h_change(h, REPL_OP_UNREGISTER, "rep", t, NULL);
	h_send(h);
	assert_false(h_live(h, "rep", NULL));
	h_write(h, f1, n1);
	h_expect_closed(h);
	assert_false(h_live(h, "rep", NULL));
	/* reordered: the second frame first */
	h_handshake_in(h, "b", encrypt);
	h_change(h, REPL_OP_REGISTER, "ord1", t, NULL);
	n1 = h_seal(h, f1);
	h_change(h, REPL_OP_REGISTER, "ord2", t, NULL);
	n2 = h_seal(h, f2);
	h_write(h, f2, n2);
	h_write(h, f1, n1);
	h_expect_closed(h);
	assert_false(h_live(h, "ord1", NULL) || h_live(h, "ord2", NULL));
	/* one bit flipped in the payload */
	h_handshake_in(h, "b", encrypt);
	h_change(h, REPL_OP_REGISTER, "flip", t, NULL);
	n1 = h_seal(h, f1);
	f1[REPL_FRAME_HDR + 20] ^= 0x10;
	h_write(h, f1, n1);
	h_expect_closed(h);
	assert_false(h_live(h, "flip", NULL));
	/* a record kind this node does not know: refused, nothing applied */
	h_handshake_in(h, "b", encrypt);
	repl_enc_begin(&h->e, REPL_RECORD, 3);
	repl_enc_u(&h->e, 9);
	repl_enc_u(&h->e, t);
	repl_enc_s(&h->e, "{}", 2);
	h_send(h);
	h_expect_closed(h);
	/* the honest path: applied; in clear on the wire only without encryption */
	h_handshake_in(h, "b", encrypt);
	h_change(h, REPL_OP_REGISTER, "visible-id", t, NULL);
	n1 = h_seal(h, f1);
	assert_int_equal(memmem(f1, n1, "visible-id", 10) != NULL, !encrypt);
	h_write(h, f1, n1);
	assert_true(h_live(h, "visible-id", NULL));
	assert_int_equal(h->c->encrypt, encrypt);
	h_free(h);
}

static void test_sealed_attacks(void **state)
{
	(void)state;
	sealed_attacks(true);
	sealed_attacks(false);
}

/* Encryption is on when either side asks for it (both HELLOs are
 * authenticated, so it cannot be turned off on the way). */
static void test_encryption_negotiated(void **state)
{
	h_t *h = h_new(false);
	static uint8_t f[1024];

	(void)state;
	h_handshake_in(h, "b", false);
	assert_false(h->c->encrypt);
	h->ask_encrypt = true;
	h_handshake_in(h, "b", true);
	assert_true(h->c->encrypt);
	h_change(h, REPL_OP_REGISTER, "enc", clock_wall_ms(), NULL);
	size_t n = h_seal(h, f);
	assert_null(memmem(f, n, "\"enc\"", 5));
	h_write(h, f, n);
	assert_true(h_live(h, "enc", NULL));
	h_free(h);
}

/* Last writer wins: the newer registration time, then for the same
 * millisecond and other data the greater node name ("b" > "a" > "0z"); an
 * unregister removes only what is not newer than what it unregistered. */
static void test_last_writer_wins(void **state)
{
	h_t *h = h_new(true);
	buf_t json = {0};
	uint64_t t = clock_wall_ms() - 10000;

	(void)state;
	h_local(h, "x", t, ",\"metadata\":{\"v\":\"local\"}");
	h_handshake_in(h, "0z", true);
	h_change(h, REPL_OP_REGISTER, "x", t, ",\"metadata\":{\"v\":\"from-0z\"}");
	h_send(h);
	assert_true(h_live(h, "x", &json));
	assert_non_null(strstr(json.data, "\"local\""));
	h_handshake_in(h, "b", true);
	h_change(h, REPL_OP_REGISTER, "x", t, ",\"metadata\":{\"v\":\"from-b\"}");
	h_send(h);
	assert_true(h_live(h, "x", &json));
	assert_non_null(strstr(json.data, "\"from-b\""));
	/* once b's: the same millisecond from 0z loses to b's */
	h_handshake_in(h, "0z", true);
	h_change(h, REPL_OP_REGISTER, "x", t, ",\"metadata\":{\"v\":\"from-0z\"}");
	h_send(h);
	assert_true(h_live(h, "x", &json));
	assert_non_null(strstr(json.data, "\"from-b\""));
	/* older loses, newer wins, whoever sends it */
	h_change(h, REPL_OP_REGISTER, "x", t - 1, ",\"metadata\":{\"v\":\"older\"}");
	h_send(h);
	assert_true(h_live(h, "x", &json));
	assert_non_null(strstr(json.data, "\"from-b\""));
	h_change(h, REPL_OP_REGISTER, "x", t + 1, ",\"metadata\":{\"v\":\"newer\"}");
	h_send(h);
	assert_true(h_live(h, "x", &json));
	assert_non_null(strstr(json.data, "\"newer\""));
	h_change(h, REPL_OP_UNREGISTER, "x", t, NULL);
	h_send(h);
	assert_true(h_live(h, "x", NULL));
	h_change(h, REPL_OP_UNREGISTER, "x", t + 1, NULL);
	h_send(h);
	assert_false(h_live(h, "x", NULL));
	buf_free(&json);
	h_free(h);
}

/* A record of a registration unregistered here arrives late: refused; a
 * newer registration of the same key passes. */
static void test_tombstones(void **state)
{
	h_t *h = h_new(true);
	shm_key_t k = {{"us-east", 7}, {H_SVC, strlen(H_SVC)}, {"y", 1}};
	shm_reap_result_t res;
	uint64_t t = clock_wall_ms() - 10000;

	(void)state;
	h_local(h, "y", t, NULL);
	assert_int_equal(shm_unregister(h->shm, &k, 0), 0);
	shm_reap(h->shm, clock_wall_ms(), &res);
	repl_tomb_tick(&h->r);
	h_handshake_in(h, "b", true);
	for (int d = 0; d < 2; d++) { /* that registration, and an older one */
		h_record(h, "y", t - (uint64_t)d);
		h_send(h);
		assert_false(h_live(h, "y", NULL));
	}
	h_change(h, REPL_OP_REGISTER, "y", t + 1, NULL);
	h_send(h);
	assert_true(h_live(h, "y", NULL));
	h_free(h);
}

/* A PULL_END nobody asked for sweeps nothing; one answering a pull sweeps
 * what the peer no longer holds, with that pull's mark. */
static void test_pull_end_sweeps_only_what_was_asked(void **state)
{
	h_t *h = h_new(true);
	repl_msg_t m;
	uint64_t t = clock_wall_ms() - 10000;

	(void)state;
	h_handshake_in(h, "b", true);
	h_change(h, REPL_OP_REGISTER, "kept", t, NULL);
	h_send(h);
	h_change(h, REPL_OP_REGISTER, "gone", t, NULL);
	h_send(h);
	repl_enc_begin(&h->e, REPL_PULL_END, 2);
	repl_enc_u(&h->e, REPL_REC_INSTANCE);
	repl_enc_s(&h->e, H_SVC, strlen(H_SVC));
	h_send(h);
	assert_true(h_live(h, "kept", NULL) && h_live(h, "gone", NULL));
	h_next_ms();
	/* b's digest says H_SVC differs: the replicator pulls it, once */
	for (int i = 0; i < 2; i++) {
		repl_enc_begin(&h->e, REPL_DIGEST, 3);
		repl_enc_u(&h->e, 0);
		repl_enc_u(&h->e, 1); /* a reply: no digest back */
		repl_enc_array(&h->e, 1);
		repl_enc_array(&h->e, 4);
		repl_enc_u(&h->e, REPL_REC_INSTANCE);
		repl_enc_s(&h->e, H_SVC, strlen(H_SVC));
		repl_enc_u(&h->e, 1);
		repl_enc_u(&h->e, 42);
		h_send(h);
	}
	assert_int_equal(h_recv(h, &m, NULL, NULL), REPL_PULL);
	assert_memory_equal(m.s[0].ptr, H_SVC, strlen(H_SVC));
	repl_msg_free(&m);
	assert_int_equal(h->r.peers[0].npending, 1);
	/* the answer: "kept" only, then the end */
	h_record(h, "kept", t);
	h_send(h);
	repl_enc_begin(&h->e, REPL_PULL_END, 2);
	repl_enc_u(&h->e, REPL_REC_INSTANCE);
	repl_enc_s(&h->e, H_SVC, strlen(H_SVC));
	h_send(h);
	assert_true(h_live(h, "kept", NULL));
	assert_false(h_live(h, "gone", NULL));
	assert_int_equal(h->r.peers[0].npending, 0);
	h_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello_round_trip),
	    cmocka_unit_test(test_keys_and_digests),
	    cmocka_unit_test(test_record_kinds),
	    cmocka_unit_test(test_frame_lengths),
	    cmocka_unit_test(test_encoder_errors),
	    cmocka_unit_test(test_malformed_payloads),
	    cmocka_unit_test(test_handshake_proof),
	    cmocka_unit_test(test_sealed_frames),
	    cmocka_unit_test(test_record_parser),
	    cmocka_unit_test(test_handshake_complete_both_roles),
	    cmocka_unit_test(test_handshake_frames_out_of_order),
	    cmocka_unit_test(test_handshake_failures),
	    cmocka_unit_test(test_unauthenticated_hello_changes_nothing),
	    cmocka_unit_test(test_handshake_limit),
	    cmocka_unit_test(test_sealed_attacks),
	    cmocka_unit_test(test_encryption_negotiated),
	    cmocka_unit_test(test_last_writer_wins),
	    cmocka_unit_test(test_tombstones),
	    cmocka_unit_test(test_pull_end_sweeps_only_what_was_asked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
