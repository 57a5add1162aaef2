/*
 * proto.h - replicator-internal: the peer protocol's frames (proto.c) and
 * the handshake proof (auth.c).
 *
 * A frame is a 4-byte big-endian payload length followed by the payload,
 * one msgpack array [type, field, ...].  Each type has a fixed schema of
 * leading fields (more trailing fields are ignored, for later versions);
 * repl_decode() checks the whole payload against it, so a handler reads
 * m->u[] and m->s[] without further checks and walks lists with the
 * accessors below.  Nothing here does I/O or touches the registry: the
 * fuzz target and the unit test drive it directly.
 */
#ifndef ARTEMIS_REPL_PROTO_H
#define ARTEMIS_REPL_PROTO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/shm.h"

#define REPL_PROTO_VERSION 1
#define REPL_FRAME_HDR     4
#define REPL_MAX_FRAME     (4u << 20) /* payload bytes; more closes the connection */
#define REPL_MAX_HS_FRAME  4096       /* before the handshake ends */
#define REPL_NONCE_BYTES   32
#define REPL_MAC_BYTES     32
#define REPL_KEY_BYTES     32
#define REPL_MAX_LIST      65536 /* keys in a RENEW/FETCH, services in a DIGEST */

/* Message types and their fields (u = unsigned, s = string or bin,
 * K = list of [region, service, instance], D = list of [service, count, hash]). */
enum repl_type {
	REPL_HELLO = 1,       /* u version, s name, u incarnation, s nonce, u node state, s zone */
	REPL_AUTH = 2,        /* s mac */
	REPL_WANT = 3,        /* u sender incarnation seen (0: none), u last version applied */
	REPL_REFUSE = 4,      /* s reason; the connection closes after it */
	REPL_CHANGE = 10,     /* u version, u kind (REPL_KIND_*), u origin_ms, s instance json */
	REPL_RECORD = 11,     /* u origin_ms, s instance json (snapshot, fetch and pull replies) */
	REPL_RENEW = 12,      /* K leases renewed by the sender's clients */
	REPL_FETCH = 13,      /* K leases the receiver does not know: send their records */
	REPL_SNAP_BEGIN = 14, /* u head version, u sender is up (1: the snapshot is complete) */
	REPL_SNAP_END = 15,   /* u head version */
	REPL_DIGEST = 16,     /* u version, u is a reply, D per-service digests */
	REPL_PULL = 17,       /* s service: send its records */
	REPL_PULL_END = 18,   /* s service: every record of it was sent */
	REPL_SYNC = 19,       /* u version streamed up to, u node state, u sender's clock (ms) */
	REPL_ACK = 20,        /* u last version applied, u node state */
	REPL_TYPE_MAX = 21,
};

enum { REPL_KIND_REGISTER = 1, REPL_KIND_UNREGISTER = 2 };

/* A decoded message.  Strings point into the unpacked object (valid until
 * repl_msg_free); they are not NUL-terminated. */
typedef struct {
	int type;
	uint64_t u[4];
	shm_str_t s[3];
	const msgpack_object *list; /* K or D items, each an array checked at decode */
	uint32_t nlist;
	msgpack_unpacked up;
} repl_msg_t;

typedef struct {
	shm_str_t service;
	uint64_t count;
	uint64_t hash;
} repl_digest_t;

/* Frame header: 0 with *payload_len when avail holds a whole frame, -EAGAIN
 * when more bytes are needed, -EMSGSIZE for a length above REPL_MAX_FRAME. */
int repl_frame_len(const uint8_t *buf, size_t avail, size_t *payload_len);

/* Decode one payload.  0, or -EPROTO for anything malformed (not msgpack,
 * trailing bytes, unknown type, a field of the wrong type or size).  On
 * success the caller calls repl_msg_free(). */
int repl_decode(const char *payload, size_t len, repl_msg_t *m);
void repl_msg_free(repl_msg_t *m);

/* List items of a decoded RENEW/FETCH (keys) or DIGEST. */
void repl_msg_key(const repl_msg_t *m, uint32_t i, shm_key_t *key);
void repl_msg_digest(const repl_msg_t *m, uint32_t i, repl_digest_t *d);

/* Encoder: begin a frame of `type` with nfields fields after the type,
 * add them, end.  The frame (header included) is e->sb.data, e->sb.size;
 * repl_enc_reset() reuses the buffer. */
typedef struct {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} repl_enc_t;

void repl_enc_init(repl_enc_t *e);
void repl_enc_reset(repl_enc_t *e);
void repl_enc_destroy(repl_enc_t *e);
int repl_enc_begin(repl_enc_t *e, int type, uint32_t nfields);
int repl_enc_u(repl_enc_t *e, uint64_t v);
int repl_enc_s(repl_enc_t *e, const void *p, size_t len);
int repl_enc_array(repl_enc_t *e, uint32_t n);
int repl_enc_key(repl_enc_t *e, const shm_key_t *key);
/* Patch the frame's length.  -EMSGSIZE when the payload is too large. */
int repl_enc_end(repl_enc_t *e);

/* ---- Handshake proof (auth.c) ---------------------------------------------- */

/* Derive the MAC key from the [cluster] key. */
void repl_auth_key(const char *cluster_key, uint8_t key[REPL_KEY_BYTES]);

/* The proof a side sends: HMAC (crypto_auth) over its role, both nonces and
 * both names.  connector is true for the side that opened the connection,
 * so a proof cannot be reflected back in the other role. */
void repl_auth_proof(const uint8_t key[REPL_KEY_BYTES], bool connector,
                     const uint8_t own_nonce[REPL_NONCE_BYTES],
                     const uint8_t peer_nonce[REPL_NONCE_BYTES], const char *own_name,
                     const char *peer_name, uint8_t mac[REPL_MAC_BYTES]);

/* Check the peer's proof (computed as the peer would).  0 or -EACCES. */
int repl_auth_verify(const uint8_t key[REPL_KEY_BYTES], bool peer_is_connector,
                     const uint8_t peer_nonce[REPL_NONCE_BYTES],
                     const uint8_t own_nonce[REPL_NONCE_BYTES], const char *peer_name,
                     const char *own_name, const uint8_t *mac, size_t mac_len);

void repl_auth_nonce(uint8_t nonce[REPL_NONCE_BYTES]);

#endif
