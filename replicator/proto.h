/*
 * proto.h - replicator-internal: the peer protocol's frames (proto.c), the
 * handshake proof and session keys (auth.c) and the protection of every
 * frame after the handshake (seal.c).
 *
 * A frame is a 4-byte big-endian length followed by that many bytes.  In
 * the handshake (HELLO, AUTH, REFUSE) the bytes are the payload itself;
 * after it they are the payload (encrypted, or in clear with
 * [cluster] encrypt = off) and a 16-byte tag that authenticates the length,
 * the payload and the frame's sequence number (seal.c).
 *
 * A payload is one msgpack array [type, field, ...].  Each type has a
 * fixed schema of leading fields (more trailing fields are ignored, for
 * later versions); repl_decode() checks the whole payload against it, so a
 * handler reads m->u[] and m->s[] without further checks and walks lists
 * with the accessors below.  Nothing here does I/O or touches the
 * registry: the fuzz target and the unit test drive it directly.
 *
 * Record kinds: what CHANGE, RECORD, ROW, DIGEST, PULL and PULL_END carry
 * is tagged with a record kind: 1 for registry instances (REPL_REC_*), 2
 * to 63 for the management store's tables (mgmt_repl_kinds(), one per
 * table).  Each HELLO lists the kinds its node knows; a node sends a peer
 * only kinds both know, and a frame of a kind this node does not know is
 * refused (-EPROTONOSUPPORT: the connection is closed and the fact
 * logged).  repl_kinds_set() says which kinds this node knows.
 */
#ifndef ARTEMIS_REPL_PROTO_H
#define ARTEMIS_REPL_PROTO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/buf.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"

#define REPL_PROTO_VERSION 2
#define REPL_FRAME_HDR     4
#define REPL_TAG_BYTES     16         /* seal.c: the tag after a sealed payload */
#define REPL_MAX_FRAME     (4u << 20) /* payload bytes; more closes the connection */
#define REPL_MAX_HS_FRAME  4096       /* before the handshake ends */
#define REPL_NONCE_BYTES   32
#define REPL_MAC_BYTES     32
#define REPL_KEY_BYTES     32
#define REPL_HASH_BYTES    32
#define REPL_MAX_LIST      65536 /* keys in a RENEW/FETCH, services in a DIGEST */

/* Message types and their fields (u = unsigned, s = string or bin, r = a
 * record kind, K = list of [region, service, instance], D = list of
 * [record kind, name, count, hash], V = list of at most
 * MGMT_REPL_MAX_VALUES values: nil, integer, float, string or bin). */
enum repl_type {
	REPL_HELLO = 1,       /* u version, s name, u incarnation, s nonce, u node state,
	                         s zone, u flags (REPL_HELLO_*), u record kinds known (bits) */
	REPL_AUTH = 2,        /* s proof */
	REPL_WANT = 3,        /* u sender incarnation seen (0: none), u last version applied */
	REPL_REFUSE = 4,      /* s reason; the connection closes after it */
	REPL_CHANGE = 10,     /* u version, u op (REPL_OP_*), r kind, u origin_ms, s body */
	REPL_RECORD = 11,     /* r kind, u origin_ms, s body (snapshot, fetch and pull replies) */
	REPL_RENEW = 12,      /* K leases renewed by the sender's clients */
	REPL_FETCH = 13,      /* K leases the receiver does not know: send their records */
	REPL_SNAP_BEGIN = 14, /* u head version, u sender is up (1: the snapshot is complete) */
	REPL_SNAP_END = 15,   /* u head version */
	REPL_DIGEST = 16,     /* u version streamed up to, u flags, D digests */
	REPL_PULL = 17,       /* r kind, s name: send every record of it */
	REPL_PULL_END = 18,   /* r kind, s name: every record of it was sent */
	REPL_SYNC = 19,       /* u version streamed up to, u node state, u sender's clock (ms) */
	REPL_ACK = 20,        /* u last version applied, u node state */
	/* The management store (replicator/mgmt.c), only between nodes that
	 * both know management kinds: */
	REPL_ROW = 21,   /* r kind, u hlc, s origin node, u flags (REPL_ROW_*), V values */
	REPL_MWANT = 22, /* u sender's store id held (0: none), u own cursor, u all cursor */
	REPL_MMARK = 23, /* u store id, u generation, u flags (REPL_MARK_*): rows sent up to it */
	REPL_MACK = 24,  /* u store id, u generation applied */
	REPL_TYPE_MAX = 25,
};

#define REPL_ROW_DELETED  1u /* a tombstone */
#define REPL_MARK_CATCHUP 1u /* every row held up to it was sent, not only our own */

enum { REPL_OP_REGISTER = 1, REPL_OP_UNREGISTER = 2 };

/* Record kinds (0 is never used; at most 63; the management tables' are
 * theirs, 2..63). */
enum repl_rec { REPL_REC_INSTANCE = 1 };

/* The kinds this node knows (bits), REPL_REC_INSTANCE's alone until set;
 * the decoder refuses the others. */
void repl_kinds_set(uint64_t kinds);
uint64_t repl_kinds_known(void);

/* HELLO flags. */
#define REPL_HELLO_ENCRYPT 1u /* encrypt the stream (either side asking is enough) */

/* DIGEST flags. */
#define REPL_DIGEST_REPLY 1u /* the answer to the other side's digest */
#define REPL_DIGEST_WHOLE 2u /* the whole digest is in this one frame */
#define REPL_DIGEST_MGMT  4u /* of management tables (names are buckets), not services */

/* A decoded message.  Strings point into the unpacked object (valid until
 * repl_msg_free); they are not NUL-terminated. */
typedef struct {
	int type;
	uint64_t u[6];
	shm_str_t s[3];
	const msgpack_object *list; /* K or D items, each an array checked at decode */
	uint32_t nlist;
	msgpack_unpacked up;
} repl_msg_t;

typedef struct {
	int kind;
	shm_str_t name;
	uint64_t count;
	uint64_t hash;
} repl_digest_t;

/* Frame header: 0 with *len (the bytes after the header) when avail holds
 * a whole frame, -EAGAIN when more bytes are needed, -EMSGSIZE for a length
 * above REPL_MAX_FRAME + REPL_TAG_BYTES. */
int repl_frame_len(const uint8_t *buf, size_t avail, size_t *len);

/* Decode one payload.  0; -EPROTO for anything malformed (not msgpack,
 * trailing bytes, unknown type, a field of the wrong type or size);
 * -EPROTONOSUPPORT for a well-formed frame of a record kind this node does
 * not know.  A HELLO of another protocol version decodes with only u[0]
 * (its version) set, so that it can be refused by name.  On success the
 * caller calls repl_msg_free(). */
int repl_decode(const char *payload, size_t len, repl_msg_t *m);
void repl_msg_free(repl_msg_t *m);

/* List items of a decoded RENEW/FETCH (keys) or DIGEST. */
void repl_msg_key(const repl_msg_t *m, uint32_t i, shm_key_t *key);
void repl_msg_digest(const repl_msg_t *m, uint32_t i, repl_digest_t *d);
/* The row a decoded ROW carries (pointers into the message). */
void repl_msg_row(const repl_msg_t *m, mgmt_row_t *row);

/* Encoder: begin a frame of `type` with nfields fields after the type, add
 * them, end.  Appends never fail on their own: the buffer's error is sticky
 * (util/buf.h) and repl_enc_end() reports it once.  The frame (header
 * included, unsealed) is e->b.data, e->b.len. */
typedef struct {
	buf_t b;
	msgpack_packer pk;
} repl_enc_t;

void repl_enc_init(repl_enc_t *e);
void repl_enc_destroy(repl_enc_t *e);
void repl_enc_begin(repl_enc_t *e, int type, uint32_t nfields);
void repl_enc_u(repl_enc_t *e, uint64_t v);
void repl_enc_s(repl_enc_t *e, const void *p, size_t len);
void repl_enc_array(repl_enc_t *e, uint32_t n);
void repl_enc_key(repl_enc_t *e, const shm_key_t *key);
/* A whole ROW frame of a row. */
void repl_enc_row(repl_enc_t *e, const mgmt_row_t *row);
/* Patch the frame's length: 0, the buffer's error (-ENOMEM), or -EMSGSIZE
 * when the payload is larger than REPL_MAX_FRAME. */
int repl_enc_end(repl_enc_t *e);

/* ---- Handshake proof and session keys (auth.c) ---------------------------------- */

/* Derive the long-term MAC key from the [cluster] key. */
void repl_auth_key(const char *cluster_key, uint8_t key[REPL_KEY_BYTES]);
void repl_auth_nonce(uint8_t nonce[REPL_NONCE_BYTES]);

/* The hash of one HELLO payload (the bytes after the frame header). */
void repl_hello_hash(const void *payload, size_t len, uint8_t out[REPL_HASH_BYTES]);

/* The handshake transcript: both HELLOs, the connector's first.  The
 * proofs and the session keys are bound to it, so every field of either
 * HELLO (version, names, nonces, incarnation, state, flags) is
 * authenticated by the AUTH that follows. */
void repl_transcript(const uint8_t connector_hello[REPL_HASH_BYTES],
                     const uint8_t acceptor_hello[REPL_HASH_BYTES], uint8_t th[REPL_HASH_BYTES]);

/* The proof a side sends: crypto_auth (HMAC-SHA-512-256) over its role and
 * the transcript; connector is true for the side that opened the
 * connection, so a proof cannot be reflected back in the other role. */
void repl_auth_proof(const uint8_t key[REPL_KEY_BYTES], bool connector,
                     const uint8_t th[REPL_HASH_BYTES], uint8_t mac[REPL_MAC_BYTES]);

/* Check the peer's proof.  0 or -EACCES. */
int repl_auth_verify(const uint8_t key[REPL_KEY_BYTES], bool peer_is_connector,
                     const uint8_t th[REPL_HASH_BYTES], const uint8_t *mac, size_t mac_len);

/* ---- Sealed frames (seal.c) ------------------------------------------------------- */

/* One direction of a connection: its key and the next sequence number. */
typedef struct {
	uint8_t key[REPL_KEY_BYTES];
	uint64_t seq;
	bool encrypt;
} repl_seal_t;

/* The two directions' keys of a connection, from the cluster key and the
 * transcript; `connector` says which side the caller is. */
void repl_session_keys(const uint8_t key[REPL_KEY_BYTES], const uint8_t th[REPL_HASH_BYTES],
                       bool connector, bool encrypt, repl_seal_t *tx, repl_seal_t *rx);

/* Seal the payload of an encoded frame (e->b: header + payload) into out,
 * which has room for REPL_FRAME_HDR + payload + REPL_TAG_BYTES bytes and
 * may be the frame itself (sealed in place). */
void repl_seal(repl_seal_t *s, const uint8_t *frame, size_t payload_len, uint8_t *out);

/* Open a sealed frame in place: frame holds the header and len bytes
 * (payload and tag).  0 with the payload (decrypted) at frame +
 * REPL_FRAME_HDR, len - REPL_TAG_BYTES bytes; -EBADMSG when the frame was
 * forged, altered, replayed or reordered (the sequence does not advance). */
int repl_open(repl_seal_t *s, uint8_t *frame, size_t len);

/* Forget the keys. */
void repl_seal_wipe(repl_seal_t *s);

#endif
