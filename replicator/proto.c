/*
 * proto.c - the peer protocol's frames: length-prefixed msgpack arrays
 * (proto.h lists the messages and their fields).
 *
 * The decoder is the replicator's parser of untrusted bytes (anything that
 * can open a TCP connection to [cluster] listen reaches it before the
 * handshake; after it, only frames whose tag seal.c verified): it checks
 * the frame against its type's schema and reports -EPROTO for anything
 * else (-EPROTONOSUPPORT for a record kind this node does not know), and
 * the caller closes that connection only.  Fuzzed by
 * tests/fuzz/fuzz_repl.c.
 *
 * The encoder writes into a buf_t whose error is sticky: a serializer
 * appends its fields and repl_enc_end() reports a failed allocation once.
 */
#include "proto.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

/* Schemas, indexed by type: one letter per leading field. */
static const char *const proto__schema[REPL_TYPE_MAX] = {
    [REPL_HELLO] = "usususuu", [REPL_AUTH] = "s",     [REPL_WANT] = "uu",    [REPL_REFUSE] = "s",
    [REPL_CHANGE] = "uurus",   [REPL_RECORD] = "rus", [REPL_RENEW] = "K",    [REPL_FETCH] = "K",
    [REPL_SNAP_BEGIN] = "uu",  [REPL_SNAP_END] = "u", [REPL_DIGEST] = "uuD", [REPL_PULL] = "rs",
    [REPL_PULL_END] = "rs",    [REPL_SYNC] = "uuu",   [REPL_ACK] = "uu",     [REPL_ROW] = "rusuV",
    [REPL_MWANT] = "uuu",      [REPL_MMARK] = "uuu",  [REPL_MACK] = "uu",
};

static uint64_t proto__known = 1ull << REPL_REC_INSTANCE;

void repl_kinds_set(uint64_t kinds)
{
	proto__known = (kinds | (1ull << REPL_REC_INSTANCE)) & ~1ull;
}

uint64_t repl_kinds_known(void)
{
	return proto__known;
}

int repl_frame_len(const uint8_t *buf, size_t avail, size_t *len)
{
	if (avail < REPL_FRAME_HDR)
		return -EAGAIN;
	uint32_t n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 |
	             (uint32_t)buf[3];
	if (n > REPL_MAX_FRAME + REPL_TAG_BYTES)
		return -EMSGSIZE;
	*len = n;
	return avail - REPL_FRAME_HDR >= n ? 0 : -EAGAIN;
}

/* A record kind: 0 when known, -EPROTONOSUPPORT when well-formed but not
 * known here, -EPROTO otherwise. */
static int proto__kind(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 == 0 || o->via.u64 > 63)
		return -EPROTO;
	return (proto__known >> o->via.u64) & 1 ? 0 : -EPROTONOSUPPORT;
}

static bool proto__str(const msgpack_object *o, shm_str_t *out)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		out->ptr = o->via.str.ptr;
		out->len = o->via.str.size;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		out->ptr = o->via.bin.ptr;
		out->len = o->via.bin.size;
		return true;
	}
	return false;
}

/* [str, str, str] within the registry's field limits. */
static bool proto__key_ok(const msgpack_object *o)
{
	static const size_t max[3] = {SHM_MAX_REGION, SHM_MAX_SERVICE, SHM_MAX_INSTANCE};
	shm_str_t s;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
		return false;
	for (int i = 0; i < 3; i++)
		if (!proto__str(&o->via.array.ptr[i], &s) || s.len == 0 || s.len > max[i])
			return false;
	return true;
}

/* [kind, name str, count uint, hash uint]: 0 or the error of proto__kind. */
static int proto__digest_ok(const msgpack_object *o)
{
	shm_str_t s;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
		return -EPROTO;
	const msgpack_object *f = o->via.array.ptr;
	if (!proto__str(&f[1], &s) || s.len == 0 || s.len > SHM_MAX_SERVICE ||
	    f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    f[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -EPROTO;
	return proto__kind(&f[0]);
}

/* A row's value: nil, an integer, a float, a string or bin. */
static bool proto__value_ok(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
	case MSGPACK_OBJECT_FLOAT64:
	case MSGPACK_OBJECT_FLOAT32:
		return true;
	case MSGPACK_OBJECT_STR:
		return o->via.str.size <= MGMT_REPL_MAX_VALUE;
	case MSGPACK_OBJECT_BIN:
		return o->via.bin.size <= MGMT_REPL_MAX_VALUE;
	default:
		return false;
	}
}

static int proto__list(const msgpack_object *o, char kind, repl_msg_t *m)
{
	int unknown = 0;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > REPL_MAX_LIST)
		return -EPROTO;
	if (kind == 'V') {
		if (o->via.array.size > MGMT_REPL_MAX_VALUES)
			return -EPROTO;
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (!proto__value_ok(&o->via.array.ptr[i]))
				return -EPROTO;
		m->list = o->via.array.ptr;
		m->nlist = o->via.array.size;
		return 0;
	}
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *it = &o->via.array.ptr[i];
		int rc = kind == 'K' ? (proto__key_ok(it) ? 0 : -EPROTO) : proto__digest_ok(it);
		if (rc == -EPROTO)
			return rc;
		unknown = unknown ? unknown : rc;
	}
	m->list = o->via.array.ptr;
	m->nlist = o->via.array.size;
	return unknown;
}

/* Check the fields against the schema: 0, -EPROTO, or -EPROTONOSUPPORT
 * (an unknown record kind, reported once everything else is checked). */
static int proto__fields(const msgpack_object *arr, const char *schema, repl_msg_t *m)
{
	size_t nf = strlen(schema);
	int nu = 0, ns = 0, unknown = 0, rc;

	if (arr->via.array.size < 1 + nf)
		return -EPROTO;
	for (size_t i = 0; i < nf; i++) {
		const msgpack_object *o = &arr->via.array.ptr[1 + i];
		switch (schema[i]) {
		case 'r':
			rc = proto__kind(o);
			if (rc == -EPROTO)
				return rc;
			unknown = unknown ? unknown : rc;
			m->u[nu++] = o->via.u64;
			break;
		case 'u':
			if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				return -EPROTO;
			m->u[nu++] = o->via.u64;
			break;
		case 's':
			if (!proto__str(o, &m->s[ns++]))
				return -EPROTO;
			break;
		default:
			rc = proto__list(o, schema[i], m);
			if (rc == -EPROTO)
				return rc;
			unknown = unknown ? unknown : rc;
		}
	}
	return unknown;
}

static uint64_t proto__be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Walk the msgpack structure without building it: every length and count
 * must fit in the bytes that remain.  msgpack_unpack_next allocates what a
 * header claims before it looks for the bytes, so a 5-byte "array of 4G
 * items" would otherwise cost gigabytes. */
static bool proto__sane(const uint8_t *p, size_t len)
{
	size_t pos = 0, pending = 1;

	while (pending > 0) {
		if (pos >= len)
			return false;
		uint8_t b = p[pos++];
		uint64_t skip = 0, items = 0;
		int hdr = 0;
		pending--;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			continue;
		if (b >= 0x80 && b <= 0x8f)
			items = 2u * (b & 0x0f);
		else if (b >= 0x90 && b <= 0x9f)
			items = b & 0x0f;
		else if (b >= 0xa0 && b <= 0xbf)
			skip = b & 0x1f;
		else if (b == 0xc4 || b == 0xd9)
			hdr = 1;
		else if (b == 0xc5 || b == 0xda) /* one branch per format family */
			hdr = 2;                 /* NOLINT(bugprone-branch-clone) */
		else if (b == 0xc6 || b == 0xdb)
			hdr = 4; /* NOLINT(bugprone-branch-clone) */
		else if (b >= 0xc7 && b <= 0xc9)
			hdr = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
		else if (b == 0xca || b == 0xcb)
			skip = b == 0xca ? 4 : 8;
		else if (b >= 0xcc && b <= 0xd3)
			skip = 1u << ((b - 0xcc) & 3);
		else if (b >= 0xd4 && b <= 0xd8)
			skip = 1 + (1u << (b - 0xd4));
		else if (b == 0xdc || b == 0xde)
			hdr = 2;
		else if (b == 0xdd || b == 0xdf)
			hdr = 4;
		else
			return false; /* 0xc1, never used */
		if (hdr) {
			if (len - pos < (size_t)hdr)
				return false;
			uint64_t n = proto__be(p + pos, hdr);
			pos += (size_t)hdr;
			if (b >= 0xdc)
				items = b >= 0xde ? 2 * n : n;
			else
				skip = n + (b >= 0xc7 && b <= 0xc9); /* ext: a type byte */
		}
		if (skip > len - pos || items > len - pos)
			return false;
		pos += (size_t)skip;
		pending += (size_t)items;
	}
	return true;
}

int repl_decode(const char *payload, size_t len, repl_msg_t *m)
{
	size_t off = 0;
	int rc = -EPROTO;

	memset(m, 0, sizeof(*m));
	msgpack_unpacked_init(&m->up);
	if (!proto__sane((const uint8_t *)payload, len) ||
	    msgpack_unpack_next(&m->up, payload, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
		goto bad;
	const msgpack_object *arr = &m->up.data;
	if (arr->type != MSGPACK_OBJECT_ARRAY || arr->via.array.size < 1 ||
	    arr->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		goto bad;
	uint64_t type = arr->via.array.ptr[0].via.u64;
	if (type >= REPL_TYPE_MAX || proto__schema[type] == NULL)
		goto bad;
	m->type = (int)type;
	/* Another version's HELLO: only its version is read, to refuse it by
	 * name (peer.c); its other fields may be anything. */
	if (type == REPL_HELLO && arr->via.array.size >= 2 &&
	    arr->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    arr->via.array.ptr[1].via.u64 != REPL_PROTO_VERSION) {
		m->u[0] = arr->via.array.ptr[1].via.u64;
		return 0;
	}
	rc = proto__fields(arr, proto__schema[type], m);
	if (rc < 0)
		goto bad;
	return 0;
bad:
	msgpack_unpacked_destroy(&m->up);
	memset(m, 0, sizeof(*m));
	return rc;
}

void repl_msg_free(repl_msg_t *m)
{
	msgpack_unpacked_destroy(&m->up);
	m->list = NULL;
	m->nlist = 0;
}

void repl_msg_key(const repl_msg_t *m, uint32_t i, shm_key_t *key)
{
	const msgpack_object *f = m->list[i].via.array.ptr;

	proto__str(&f[0], &key->region);
	proto__str(&f[1], &key->service);
	proto__str(&f[2], &key->instance);
}

void repl_msg_row(const repl_msg_t *m, mgmt_row_t *row)
{
	shm_str_t origin = m->s[0];

	memset(row, 0, offsetof(mgmt_row_t, vals));
	row->kind = (int)m->u[0];
	row->hlc = m->u[1] > INT64_MAX ? 0 : (int64_t)m->u[1]; /* 0: refused as no timestamp */
	row->origin = origin.ptr;
	row->origin_len = origin.len;
	row->deleted = (m->u[2] & REPL_ROW_DELETED) != 0;
	row->nvals = m->nlist;
	for (uint32_t i = 0; i < m->nlist; i++) {
		const msgpack_object *o = &m->list[i];
		mgmt_value_t *v = &row->vals[i];
		memset(v, 0, sizeof(*v));
		switch (o->type) {
		case MSGPACK_OBJECT_POSITIVE_INTEGER:
			v->type = MGMT_V_INT;
			v->i = o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
			break;
		case MSGPACK_OBJECT_NEGATIVE_INTEGER:
			v->type = MGMT_V_INT;
			v->i = o->via.i64;
			break;
		case MSGPACK_OBJECT_FLOAT64:
		case MSGPACK_OBJECT_FLOAT32:
			v->type = MGMT_V_REAL;
			v->d = o->via.f64;
			break;
		case MSGPACK_OBJECT_STR:
			v->type = MGMT_V_TEXT;
			v->s = o->via.str.ptr;
			v->len = o->via.str.size;
			break;
		case MSGPACK_OBJECT_BIN:
			v->type = MGMT_V_BLOB;
			v->s = o->via.bin.ptr;
			v->len = o->via.bin.size;
			break;
		default:
			v->type = MGMT_V_NULL;
		}
	}
}

void repl_msg_digest(const repl_msg_t *m, uint32_t i, repl_digest_t *d)
{
	const msgpack_object *f = m->list[i].via.array.ptr;

	d->kind = (int)f[0].via.u64;
	proto__str(&f[1], &d->name);
	d->count = f[2].via.u64;
	d->hash = f[3].via.u64;
}

/* ---- Encoder ----------------------------------------------------------------- */

static int enc__write(void *data, const char *p, size_t len)
{
	return buf_append(data, p, len);
}

void repl_enc_init(repl_enc_t *e)
{
	memset(e, 0, sizeof(*e));
	msgpack_packer_init(&e->pk, &e->b, enc__write);
}

void repl_enc_destroy(repl_enc_t *e)
{
	buf_free(&e->b);
	memset(e, 0, sizeof(*e));
}

void repl_enc_begin(repl_enc_t *e, int type, uint32_t nfields)
{
	static const char hdr[REPL_FRAME_HDR];

	buf_reset(&e->b);
	buf_append(&e->b, hdr, sizeof(hdr));
	msgpack_pack_array(&e->pk, nfields + 1);
	msgpack_pack_uint64(&e->pk, (uint64_t)type);
}

void repl_enc_u(repl_enc_t *e, uint64_t v)
{
	msgpack_pack_uint64(&e->pk, v);
}

void repl_enc_s(repl_enc_t *e, const void *p, size_t len)
{
	msgpack_pack_bin(&e->pk, len);
	msgpack_pack_bin_body(&e->pk, p, len);
}

void repl_enc_array(repl_enc_t *e, uint32_t n)
{
	msgpack_pack_array(&e->pk, n);
}

void repl_enc_key(repl_enc_t *e, const shm_key_t *key)
{
	repl_enc_array(e, 3);
	repl_enc_s(e, key->region.ptr, key->region.len);
	repl_enc_s(e, key->service.ptr, key->service.len);
	repl_enc_s(e, key->instance.ptr, key->instance.len);
}

void repl_enc_row(repl_enc_t *e, const mgmt_row_t *row)
{
	repl_enc_begin(e, REPL_ROW, 5);
	repl_enc_u(e, (uint64_t)row->kind);
	repl_enc_u(e, row->hlc > 0 ? (uint64_t)row->hlc : 0);
	repl_enc_s(e, row->origin, row->origin_len);
	repl_enc_u(e, row->deleted ? REPL_ROW_DELETED : 0);
	repl_enc_array(e, row->nvals);
	for (uint32_t i = 0; i < row->nvals; i++) {
		const mgmt_value_t *v = &row->vals[i];
		switch (v->type) {
		case MGMT_V_INT:
			msgpack_pack_int64(&e->pk, v->i);
			break;
		case MGMT_V_REAL:
			msgpack_pack_double(&e->pk, v->d);
			break;
		case MGMT_V_TEXT:
			msgpack_pack_str(&e->pk, v->len);
			msgpack_pack_str_body(&e->pk, v->s, v->len);
			break;
		case MGMT_V_BLOB:
			repl_enc_s(e, v->s, v->len);
			break;
		default:
			msgpack_pack_nil(&e->pk);
		}
	}
}

int repl_enc_end(repl_enc_t *e)
{
	if (buf_error(&e->b))
		return buf_error(&e->b);
	if (e->b.len < REPL_FRAME_HDR)
		return -EINVAL;
	size_t n = e->b.len - REPL_FRAME_HDR;
	if (n > REPL_MAX_FRAME)
		return -EMSGSIZE;
	uint8_t *h = (uint8_t *)e->b.data;
	h[0] = (uint8_t)(n >> 24);
	h[1] = (uint8_t)(n >> 16);
	h[2] = (uint8_t)(n >> 8);
	h[3] = (uint8_t)n;
	return 0;
}
