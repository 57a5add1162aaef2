/*
 * test_repl.c - the replicator's frame codec (replicator/proto.c), the
 * handshake proof (replicator/auth.c) and the record parser it shares with
 * the register endpoint (codec/instance_in.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../replicator/proto.h"
#include "artemis/codec.h"

/* Encode-end and return the payload of the encoder's frame. */
static const char *payload(repl_enc_t *e, size_t *len)
{
	size_t plen = 0;

	assert_int_equal(repl_enc_end(e), 0);
	assert_int_equal(repl_frame_len((const uint8_t *)e->sb.data, e->sb.size, &plen), 0);
	assert_int_equal(plen + REPL_FRAME_HDR, e->sb.size);
	*len = plen;
	return e->sb.data + REPL_FRAME_HDR;
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
	assert_int_equal(repl_enc_begin(&e, REPL_HELLO, 6), 0);
	repl_enc_u(&e, REPL_PROTO_VERSION);
	repl_enc_s(&e, "node1", 5);
	repl_enc_u(&e, 0x1122334455667788ull);
	repl_enc_s(&e, nonce, sizeof(nonce));
	repl_enc_u(&e, 1);
	repl_enc_s(&e, "zone-1", 6);
	const char *p = payload(&e, &len);
	assert_int_equal(repl_decode(p, len, &m), 0);
	assert_int_equal(m.type, REPL_HELLO);
	assert_int_equal(m.u[0], REPL_PROTO_VERSION);
	assert_true(m.u[1] == 0x1122334455667788ull);
	assert_int_equal(m.u[2], 1);
	assert_int_equal(m.s[0].len, 5);
	assert_memory_equal(m.s[0].ptr, "node1", 5);
	assert_int_equal(m.s[1].len, REPL_NONCE_BYTES);
	assert_memory_equal(m.s[1].ptr, nonce, REPL_NONCE_BYTES);
	assert_memory_equal(m.s[2].ptr, "zone-1", 6);
	repl_msg_free(&m);
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
	repl_enc_array(&e, 3);
	repl_enc_s(&e, "svc", 3);
	repl_enc_u(&e, 10);
	repl_enc_u(&e, UINT64_MAX);
	p = payload(&e, &len);
	assert_int_equal(repl_decode(p, len, &m), 0);
	repl_msg_digest(&m, 0, &d);
	assert_int_equal(d.count, 10);
	assert_true(d.hash == UINT64_MAX);
	assert_memory_equal(d.service.ptr, "svc", 3);
	repl_msg_free(&m);
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
	uint8_t na[REPL_NONCE_BYTES], nb[REPL_NONCE_BYTES], mac[REPL_MAC_BYTES];

	(void)state;
	repl_auth_key("secret", key);
	repl_auth_key("secret2", other);
	assert_memory_not_equal(key, other, REPL_KEY_BYTES);
	repl_auth_nonce(na);
	repl_auth_nonce(nb);
	assert_memory_not_equal(na, nb, REPL_NONCE_BYTES);

	/* a (connector) proves to b */
	repl_auth_proof(key, true, na, nb, "a", "b", mac);
	assert_int_equal(repl_auth_verify(key, true, na, nb, "a", "b", mac, sizeof(mac)), 0);
	/* wrong key, wrong role (reflection), other nonce, other names, short mac */
	assert_int_equal(repl_auth_verify(other, true, na, nb, "a", "b", mac, sizeof(mac)),
	                 -EACCES);
	assert_int_equal(repl_auth_verify(key, false, na, nb, "a", "b", mac, sizeof(mac)), -EACCES);
	assert_int_equal(repl_auth_verify(key, true, na, na, "a", "b", mac, sizeof(mac)), -EACCES);
	assert_int_equal(repl_auth_verify(key, true, na, nb, "a", "c", mac, sizeof(mac)), -EACCES);
	assert_int_equal(repl_auth_verify(key, true, na, nb, "a", "b", mac, 16), -EACCES);
	/* b's answer as acceptor verifies only as an acceptor's */
	repl_auth_proof(key, false, nb, na, "b", "a", mac);
	assert_int_equal(repl_auth_verify(key, false, nb, na, "b", "a", mac, sizeof(mac)), 0);
	assert_int_equal(repl_auth_verify(key, true, nb, na, "b", "a", mac, sizeof(mac)), -EACCES);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello_round_trip), cmocka_unit_test(test_keys_and_digests),
	    cmocka_unit_test(test_frame_lengths),    cmocka_unit_test(test_malformed_payloads),
	    cmocka_unit_test(test_handshake_proof),  cmocka_unit_test(test_record_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
