/*
 * http_parse.c - the strict HTTP/1.x request parser (see http_int.h).
 *
 * Called by http_io.c with whatever bytes a read brought; it consumes them
 * and reports one event at a time (head complete, body bytes, request
 * complete, error), so the caller can stop anywhere (back-pressure, an
 * upgrade) and resume with the bytes it kept.  It allocates only the head
 * buffer of its http_msg_t, which is reused from request to request.
 *
 * The head is collected whole (bounded by max_head) and then split in
 * place: the request line and each field line become NUL-terminated strings
 * inside the buffer, and the request's path is percent-decoded there too.
 * Bodies are never copied here: body events point into the caller's bytes.
 *
 * Strictness (issue 11 item 10; RFC 9112).  Behind a proxy, every framing
 * question answered differently from the proxy is a request-smuggling
 * hole, so whatever the RFC does not require to be accepted is refused
 * with 400 (and the connection closed by the caller):
 *   - lines end in CRLF; a bare CR or a bare LF is an error (empty lines
 *     before a request line are skipped, as RFC 9112 §2.2 asks);
 *   - the request line is exactly "method SP target SP HTTP/1.x": no
 *     HTTP/0.9 request without a version; another major version is 505;
 *   - no obs-fold (a field line starting with SP or HT), no whitespace
 *     between a field name and its colon, no control characters in values;
 *   - HTTP/1.1 needs exactly one Host; more than one is refused for 1.0 too;
 *   - one Content-Length of digits only; not together with
 *     Transfer-Encoding; Transfer-Encoding only in HTTP/1.1, once, and only
 *     "chunked" (a list ending in chunked with other codings is 501, any
 *     other list 400);
 *   - chunk sizes are hex digits (no sign, no "0x", no overflow), optionally
 *     followed by chunk extensions after ';', and chunk data must be
 *     followed by CRLF; trailer fields are checked like header fields and
 *     then ignored.
 *
 * Must not: allocate per request once the head buffer has grown, read
 * beyond len, or log (the caller logs the refusal once).
 */
#include "http_int.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "artemis/str.h"

#define HTTP_CHUNK_LINE_MAX 4096 /* chunk-size line with its extensions */

/* Sub-states kept in msg->blank while a chunk-size line is read... */
enum { CS_START = 0, CS_HEX, CS_BWS, CS_EXT, CS_LF };
/* ...and while trailer fields are. */
enum { TR_START = 0, TR_NAME, TR_VALUE, TR_LF, TR_END_LF };

/* tchar of RFC 9110 §5.6.2 */
static bool is_tchar(unsigned char ch)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr(extra, ch) != NULL;
}

/* field-vchar, SP or HT (obs-text included) */
static bool is_field_char(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static int hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static size_t fail(http_event_t *ev, int status, const char *msg, size_t consumed)
{
	ev->ev = HEV_ERROR;
	ev->status = status;
	ev->msg = msg;
	return consumed;
}

void http__msg_reset(http_msg_t *m)
{
	const char *peer = m->req.peer_ip;
	memset(&m->req, 0, sizeof(m->req));
	m->req.method = HTTP_M_OTHER;
	m->req.path = "";
	m->req.query = "";
	m->req.body = "";
	m->req.content_type = "";
	m->req.peer_ip = peer;
	buf_reset(&m->head);
	m->nhdrs = 0;
	m->phase = HP_IDLE;
	m->minor = 1;
	m->cr = false;
	m->blank = 0;
	m->remaining = 0;
	m->length = 0;
	m->line_bytes = 0;
	m->chunked = m->keep_alive = m->upgrade = m->expect_continue = false;
	m->method_name = NULL;
}

const char *http__method_name(const http_msg_t *m)
{
	return m->method_name ? m->method_name : "-";
}

/* ---- The request head --------------------------------------------------- */

const char *http_request_header(const http_request_t *req, const char *name)
{
	const http_msg_t *m = (const http_msg_t *)(const void *)req;
	for (unsigned i = 0; i < m->nhdrs; i++)
		if (strcasecmp(m->head.data + m->hdrs[i].name, name) == 0)
			return m->head.data + m->hdrs[i].value;
	return NULL;
}

static enum http_method method_of(const char *s)
{
	static const struct {
		const char *name;
		enum http_method m;
	} known[] = {
	    {"GET", HTTP_M_GET},         {"POST", HTTP_M_POST}, {"HEAD", HTTP_M_HEAD},
	    {"OPTIONS", HTTP_M_OPTIONS}, {"PUT", HTTP_M_PUT},   {"DELETE", HTTP_M_DELETE},
	    {"PATCH", HTTP_M_PATCH},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(s, known[i].name) == 0)
			return known[i].m;
	return HTTP_M_OTHER;
}

/* Split the target (NUL-terminated) into path and query in place, and
 * percent-decode the path.  origin-form "/p?q", absolute-form
 * "scheme://authority/p?q" (path "/" when empty), or "*".  A fragment is
 * dropped.  0 or -1. */
static int split_target(http_msg_t *m, char *url)
{
	char *path = url;
	if (strcmp(url, "*") == 0) {
		m->req.path = url;
		m->req.path_len = 1;
		return 0;
	}
	if (url[0] != '/') {
		char *sep = strstr(url, "://");
		if (!sep || sep == url)
			return -1;
		for (char *p = url; p < sep; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (p > url &&
			       ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
				return -1;
		path = sep + 3 + strcspn(sep + 3, "/?#");
		if (path == sep + 3)
			return -1; /* no authority */
		if (*path != '/') {
			/* "http://host?q": the path is "/"; keep the query */
			char *q = *path == '?' ? path + 1 : path + strlen(path);
			q[strcspn(q, "#")] = '\0';
			m->req.query = q;
			m->req.path = "/";
			m->req.path_len = 1;
			return 0;
		}
	}
	size_t len = strcspn(path, "?#");
	if (path[len] == '?') {
		char *q = path + len + 1;
		q[strcspn(q, "#")] = '\0';
		m->req.query = q;
	}
	m->req.path_len = (size_t)str_urldecode(path, len, path, len + 1, 0);
	m->req.path = path;
	return 0;
}

/* "method SP target SP HTTP/1.x", NUL-terminated at its end. */
static int parse_request_line(http_msg_t *m, char *line, http_event_t *ev)
{
	char *p = line;
	while (is_tchar((unsigned char)*p))
		p++;
	if (p == line || *p != ' ')
		return fail(ev, 400, "Invalid request method", 0), -1;
	*p++ = '\0';
	char *target = p;
	while ((unsigned char)*p > 0x20 && *p != 0x7f)
		p++;
	if (p == target)
		return fail(ev, 400, "Invalid request target", 0), -1;
	if (*p == '\0')
		return fail(ev, 400, "Request line without an HTTP version", 0), -1;
	if (*p != ' ')
		return fail(ev, 400, "Invalid request target", 0), -1;
	*p++ = '\0';
	if (strncmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' ||
	    p[7] > '9' || p[8] != '\0')
		return fail(ev, 400, "Invalid HTTP version", 0), -1;
	if (p[5] != '1')
		return fail(ev, 505, "Only HTTP/1.x is supported", 0), -1;
	m->minor = (unsigned)(p[7] - '0');
	m->method_name = line;
	m->req.method = method_of(line);
	if (split_target(m, target) != 0)
		return fail(ev, 400, "Invalid request target", 0), -1;
	return 0;
}

/* "name: value", NUL-terminated at its end; recorded in m->hdrs. */
static int parse_field_line(http_msg_t *m, char *line, http_event_t *ev)
{
	char *p = line;
	if (*p == ' ' || *p == '\t')
		return fail(ev, 400, "Obsolete line folding is not accepted", 0), -1;
	while (is_tchar((unsigned char)*p))
		p++;
	if (*p == ' ' || *p == '\t')
		return fail(ev, 400, "Whitespace between a header field name and its colon", 0), -1;
	if (p == line || *p != ':')
		return fail(ev, 400, "Invalid header field name", 0), -1;
	*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	char *value = p;
	for (; *p; p++)
		if (!is_field_char((unsigned char)*p))
			return fail(ev, 400, "Invalid character in a header field value", 0), -1;
	while (p > value && (p[-1] == ' ' || p[-1] == '\t'))
		*--p = '\0';
	if (m->nhdrs == HTTP_MAX_HEADERS)
		return fail(ev, 431, "Too many request headers", 0), -1;
	m->hdrs[m->nhdrs].name = (uint32_t)(line - m->head.data);
	m->hdrs[m->nhdrs].value = (uint32_t)(value - m->head.data);
	m->nhdrs++;
	return 0;
}

/* How often the comma-separated list holds `token` (case-insensitive). */
static unsigned list_count(const char *list, const char *token)
{
	size_t tl = strlen(token);
	unsigned found = 0;
	while (*list) {
		list += strspn(list, " \t,");
		size_t n = strcspn(list, ",");
		size_t k = n;
		while (k > 0 && (list[k - 1] == ' ' || list[k - 1] == '\t'))
			k--;
		if (k == tl && strncasecmp(list, token, tl) == 0)
			found++;
		list += n;
	}
	return found;
}

/* Transfer-Encoding: only "chunked" is decoded.  0, or -1 with ev set. */
static int check_transfer_encoding(http_msg_t *m, const char *te, http_event_t *ev)
{
	if (m->minor == 0)
		return fail(ev, 400, "Transfer-Encoding in an HTTP/1.0 request", 0), -1;
	const char *last = strrchr(te, ',');
	last = last ? last + 1 : te;
	last += strspn(last, " \t");
	if (strcasecmp(last, "chunked") != 0)
		return fail(ev, 400, "Transfer-Encoding does not end in chunked", 0), -1;
	if (last != te) {
		/* Something before the final chunked: chunked twice is invalid
		 * (RFC 9112 §7), any other coding is not implemented. */
		if (list_count(te, "chunked") > 1)
			return fail(ev, 400, "chunked applied more than once", 0), -1;
		return fail(ev, 501, "Transfer-Encoding is not supported", 0), -1;
	}
	m->chunked = true;
	return 0;
}

static int parse_length(const char *v, uint64_t *out)
{
	uint64_t n = 0;
	if (*v == '\0')
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*v - '0');
	}
	*out = n;
	return 0;
}

/* The fields that decide framing and connection handling. */
static int check_fields(http_msg_t *m, http_event_t *ev)
{
	unsigned hosts = 0, lengths = 0, encodings = 0;
	const char *te = NULL;
	bool conn_close = false, conn_keep = false, conn_upgrade = false, upgrade = false;
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const char *name = m->head.data + m->hdrs[i].name;
		const char *value = m->head.data + m->hdrs[i].value;
		if (strcasecmp(name, "Host") == 0) {
			hosts++;
		} else if (strcasecmp(name, "Content-Length") == 0) {
			if (++lengths > 1)
				return fail(ev, 400, "More than one Content-Length", 0), -1;
			if (parse_length(value, &m->length) != 0)
				return fail(ev, 400, "Invalid Content-Length", 0), -1;
		} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
			encodings++;
			te = value;
		} else if (strcasecmp(name, "Connection") == 0) {
			conn_close |= list_count(value, "close") > 0;
			conn_keep |= list_count(value, "keep-alive") > 0;
			conn_upgrade |= list_count(value, "upgrade") > 0;
		} else if (strcasecmp(name, "Upgrade") == 0) {
			upgrade = true;
		} else if (strcasecmp(name, "Expect") == 0) {
			m->expect_continue = strcasecmp(value, "100-continue") == 0;
		} else if (strcasecmp(name, "Content-Type") == 0 && !*m->req.content_type) {
			m->req.content_type = value;
		}
	}
	if (hosts == 0 && m->minor >= 1)
		return fail(ev, 400, "Missing Host header", 0), -1;
	if (hosts > 1)
		return fail(ev, 400, "More than one Host header", 0), -1;
	if (encodings > 1)
		return fail(ev, 400, "More than one Transfer-Encoding", 0), -1;
	if (encodings && lengths)
		return fail(ev, 400, "Both Content-Length and Transfer-Encoding", 0), -1;
	if (te && check_transfer_encoding(m, te, ev) != 0)
		return -1;
	m->expect_continue &= m->minor >= 1;
	m->keep_alive = !conn_close && (m->minor >= 1 || conn_keep);
	m->upgrade = conn_upgrade && upgrade;
	return 0;
}

/* The complete head is in m->head (CRLF line ends, nothing else). */
static int parse_head_lines(http_msg_t *m, http_event_t *ev)
{
	char *p = m->head.data, *end = p + m->head.len;
	bool first = true;
	while (p < end) {
		char *eol = memchr(p, '\r', (size_t)(end - p));
		if (eol == p)
			break; /* the empty line */
		*eol = '\0';
		int rc = first ? parse_request_line(m, p, ev) : parse_field_line(m, p, ev);
		if (rc != 0)
			return -1;
		first = false;
		p = eol + 2;
	}
	return check_fields(m, ev);
}

/* Collect head bytes up to the empty line; bare CR and bare LF are errors. */
static size_t parse_head(http_msg_t *m, const char *data, size_t len, uint32_t max_head,
                         http_event_t *ev)
{
	size_t i = 0;
	if (m->phase == HP_IDLE) {
		for (; i < len; i++) { /* empty lines before the request line */
			if (m->cr) {
				if (data[i] != '\n')
					return fail(ev, 400, "Bare CR in the request head", i);
				m->cr = false;
			} else if (data[i] == '\r') {
				m->cr = true;
			} else if (data[i] == '\n') {
				return fail(ev, 400, "Bare LF in the request head", i);
			} else {
				break;
			}
		}
		if (i == len)
			return len;
		http__msg_reset(m);
		m->phase = HP_HEAD;
	}
	size_t start = i;
	bool complete = false;
	for (; i < len && !complete; i++) {
		char ch = data[i];
		if (m->cr) {
			if (ch != '\n')
				return fail(ev, 400, "Bare CR in the request head", i);
			m->cr = false;
			complete = ++m->blank == 2;
		} else if (ch == '\r') {
			m->cr = true;
		} else if (ch == '\n') {
			return fail(ev, 400, "Bare LF in the request head", i);
		} else if (ch == '\0') {
			return fail(ev, 400, "NUL in the request head", i);
		} else {
			m->blank = 0;
		}
	}
	if (m->head.len + (i - start) > max_head)
		return fail(ev, 431, "Request header is too large", i);
	if (buf_append(&m->head, data + start, i - start) != 0)
		return fail(ev, 500, "Out of memory", i);
	if (!complete)
		return i;
	if (parse_head_lines(m, ev) != 0)
		return i;
	ev->ev = HEV_HEAD;
	if (m->chunked) {
		m->phase = HP_CHUNK_SIZE;
		m->blank = CS_START;
	} else if (m->length > 0) {
		m->phase = HP_BODY;
		m->remaining = m->length;
	} else {
		m->phase = HP_DONE;
	}
	return i;
}

/* ---- Bodies ------------------------------------------------------------- */

static size_t body_bytes(http_msg_t *m, const char *data, size_t len, enum http_phase next,
                         http_event_t *ev)
{
	size_t n = len < m->remaining ? len : (size_t)m->remaining;
	m->remaining -= n;
	if (m->remaining == 0) {
		m->phase = next;
		m->blank = 0;
		m->cr = false;
	}
	ev->ev = HEV_BODY;
	ev->at = data;
	ev->n = n;
	return n;
}

/* One byte of a chunk-size line; 1 when the line is complete, 0 when more
 * is needed, -1 on error (ev set). */
static int chunk_size_byte(http_msg_t *m, unsigned char ch, http_event_t *ev)
{
	int h = hex_value(ch);
	switch (m->blank) {
	case CS_START:
	case CS_HEX:
		if (h >= 0) {
			if (m->remaining > (UINT64_MAX >> 4))
				return fail(ev, 400, "Chunk size is too large", 0), -1;
			m->remaining = (m->remaining << 4) | (uint64_t)h;
			m->blank = CS_HEX;
			return 0;
		}
		if (m->blank == CS_START)
			break;
		if (ch == '\r')
			m->blank = CS_LF;
		else if (ch == ';')
			m->blank = CS_EXT;
		else if (ch == ' ' || ch == '\t')
			m->blank = CS_BWS;
		else
			break;
		return 0;
	case CS_BWS:
		if (ch == ';')
			m->blank = CS_EXT;
		else if (ch != ' ' && ch != '\t')
			break;
		return 0;
	case CS_EXT:
		if (ch == '\r')
			m->blank = CS_LF;
		else if (!is_field_char(ch))
			break;
		return 0;
	case CS_LF:
		if (ch == '\n')
			return 1;
		break;
	}
	return fail(ev, 400, "Invalid chunk size line", 0), -1;
}

static size_t parse_chunk_size(http_msg_t *m, const char *data, size_t len, http_event_t *ev)
{
	for (size_t i = 0; i < len; i++) {
		if (++m->line_bytes > HTTP_CHUNK_LINE_MAX)
			return fail(ev, 400, "Chunk size line is too long", i);
		int rc = chunk_size_byte(m, (unsigned char)data[i], ev);
		if (rc < 0)
			return i;
		if (rc > 0) {
			m->line_bytes = 0;
			m->blank = TR_START;
			m->phase = m->remaining ? HP_CHUNK_DATA : HP_TRAILER;
			return i + 1;
		}
	}
	return len;
}

static size_t parse_chunk_end(http_msg_t *m, const char *data, size_t len, http_event_t *ev)
{
	size_t i = 0;
	for (; i < len; i++) {
		char want = m->cr ? '\n' : '\r';
		if (data[i] != want)
			return fail(ev, 400, "Chunk data is not followed by CRLF", i);
		if (m->cr) {
			m->cr = false;
			m->phase = HP_CHUNK_SIZE;
			m->blank = CS_START;
			m->line_bytes = 0;
			return i + 1;
		}
		m->cr = true;
	}
	return i;
}

/* One byte of the trailer section; 1 when it ended, 0 when more is
 * needed, -1 on error. */
static int trailer_byte(http_msg_t *m, unsigned char ch, http_event_t *ev)
{
	switch (m->blank) {
	case TR_START:
		if (ch == '\r')
			m->blank = TR_END_LF;
		else if (ch == ' ' || ch == '\t')
			return fail(ev, 400, "Obsolete line folding is not accepted", 0), -1;
		else if (is_tchar(ch))
			m->blank = TR_NAME;
		else
			break;
		return 0;
	case TR_NAME:
		if (ch == ':')
			m->blank = TR_VALUE;
		else if (!is_tchar(ch))
			break;
		return 0;
	case TR_VALUE:
		if (ch == '\r')
			m->blank = TR_LF;
		else if (!is_field_char(ch))
			break;
		return 0;
	case TR_LF:
	case TR_END_LF:
		if (ch != '\n')
			break;
		if (m->blank == TR_END_LF)
			return 1;
		m->blank = TR_START;
		return 0;
	}
	return fail(ev, 400, "Invalid trailer field", 0), -1;
}

static size_t parse_trailer(http_msg_t *m, const char *data, size_t len, uint32_t max_head,
                            http_event_t *ev)
{
	for (size_t i = 0; i < len; i++) {
		if (++m->line_bytes > max_head)
			return fail(ev, 431, "Request trailer is too large", i);
		int rc = trailer_byte(m, (unsigned char)data[i], ev);
		if (rc < 0)
			return i;
		if (rc > 0) {
			m->phase = HP_IDLE;
			m->blank = 0;
			ev->ev = HEV_DONE;
			return i + 1;
		}
	}
	return len;
}

size_t http__parse(http_msg_t *m, const char *data, size_t len, uint32_t max_head, http_event_t *ev)
{
	ev->ev = HEV_NONE;
	switch (m->phase) {
	case HP_IDLE:
	case HP_HEAD:
		return parse_head(m, data, len, max_head, ev);
	case HP_BODY:
		return body_bytes(m, data, len, HP_DONE, ev);
	case HP_CHUNK_SIZE:
		return parse_chunk_size(m, data, len, ev);
	case HP_CHUNK_DATA:
		return body_bytes(m, data, len, HP_CHUNK_END, ev);
	case HP_CHUNK_END:
		return parse_chunk_end(m, data, len, ev);
	case HP_TRAILER:
		return parse_trailer(m, data, len, max_head, ev);
	case HP_DONE:
		m->phase = HP_IDLE;
		m->blank = 0;
		ev->ev = HEV_DONE;
		return 0;
	}
	return fail(ev, 500, "Parser state", 0);
}
