/*
 * static.c - the web console's files, served by the workers.
 *
 * api_dispatch() hands this file every request for "/", "/console" and
 * "/console/..." (static_match) while [http] console is on.  "/" answers
 * 302 and "/console" 301 to "/console/", which is the console's index.html.
 *
 * Where the files come from.  [http] console_dir when set; else the first
 * of <bindir>/../share/artemis/console (what `make install` lays out) and
 * <bindir>/../console (the source tree, for build/artemis and `make run`),
 * with <bindir> read from /proc/self/exe.  The first request a worker
 * serves reads the whole directory into memory: each file once, gzipped
 * once (level 9) when that makes it smaller, its strong ETag the XXH3 of
 * its bytes.  Requests are then answered from that table and never touch
 * the disk; a reload (new workers) reads the files again.
 *
 * Caching.  Every file is reachable under two names: "/console/<path>"
 * (Cache-Control: no-cache, so the browser revalidates with If-None-Match
 * and gets 304) and "/console/_v/<version>/<path>" (a year, immutable),
 * where <version> is a digest of every file.  index.html names its assets
 * through the placeholder {{ASSETS}}, replaced here by "_v/<version>", so
 * a browser fetches index.html (small, revalidated) and everything else
 * exactly once per console version.  ES modules import each other by
 * relative paths and so stay under the versioned prefix.
 *
 * Safety.  A path is looked up as a whole string in the table of files
 * read at start: "..", "//", encoded or not, symlinks and directories can
 * never match, so nothing outside the directory is reachable and there is
 * no directory listing.  Reading skips dot- and underscore-names, names
 * outside [A-Za-z0-9._-], symlinks and anything not a regular file or a
 * directory; files, depth and total size are bounded.  Responses carry a
 * Content-Security-Policy that allows scripts, styles and connections to
 * this origin only, and nosniff.
 *
 * Must not: block after the first read, log per request, or serve a byte
 * that was not under the console directory when it was read.
 */
#include "static.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "api.h"
#include "artemis/log.h"

#define STATIC_PREFIX      "/console/"
#define STATIC_PREFIX_LEN  (sizeof(STATIC_PREFIX) - 1)
#define STATIC_VERSIONED   "_v/"
#define STATIC_MAX_FILES   512
#define STATIC_MAX_DEPTH   4
#define STATIC_MAX_NAME    128
#define STATIC_MAX_PATH    256
#define STATIC_MAX_BYTES   (32u << 20) /* the whole directory */
#define STATIC_PLACEHOLDER "{{ASSETS}}"
#define STATIC_HDR_MAX     1024

#define STATIC_CSP                                                                                 \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "         \
	"form-action 'self'"

typedef struct {
	char path[STATIC_MAX_PATH]; /* relative, "pages/services.js" */
	const char *mime;
	unsigned char *data;
	size_t len;
	unsigned char *gz; /* NULL when gzip does not make it smaller */
	size_t gz_len;
	char etag[24];    /* "\"<16 hex>\"" */
	char etag_gz[28]; /* "\"<16 hex>.gz\"" */
} static_file_t;

static struct {
	bool loaded; /* read attempted (successfully or not) */
	bool ok;
	char dir[PATH_MAX];
	char version[17];
	static_file_t *files;
	size_t n;
	size_t bytes;
	char hdr[STATIC_HDR_MAX];
} S;

bool static_match(const char *path, size_t len)
{
	if (!api_cfg()->console)
		return false;
	if (len == 1 && path[0] == '/')
		return true;
	if (len < STATIC_PREFIX_LEN - 1 || memcmp(path, STATIC_PREFIX, STATIC_PREFIX_LEN - 1) != 0)
		return false;
	return len == STATIC_PREFIX_LEN - 1 || path[STATIC_PREFIX_LEN - 1] == '/';
}

/* ---- Reading the directory -------------------------------------------------- */

static const struct {
	const char *ext;
	const char *mime;
	bool compress;
} static__types[] = {
    {"html", "text/html; charset=utf-8", true},
    {"js", "text/javascript; charset=utf-8", true},
    {"mjs", "text/javascript; charset=utf-8", true},
    {"css", "text/css; charset=utf-8", true},
    {"svg", "image/svg+xml", true},
    {"json", "application/json", true},
    {"txt", "text/plain; charset=utf-8", true},
    {"map", "application/json", true},
    {"png", "image/png", false},
    {"ico", "image/x-icon", true},
    {"woff2", "font/woff2", false},
};

static const char *static__mime(const char *path, bool *compress)
{
	const char *dot = strrchr(path, '.');

	*compress = false;
	if (dot == NULL)
		return "application/octet-stream";
	for (size_t i = 0; i < sizeof(static__types) / sizeof(static__types[0]); i++) {
		if (strcasecmp(dot + 1, static__types[i].ext) == 0) {
			*compress = static__types[i].compress;
			return static__types[i].mime;
		}
	}
	return "application/octet-stream";
}

/* Names the console may use: no hidden or reserved ("_v") entries. */
static bool static__name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > STATIC_MAX_NAME || name[0] == '.' || name[0] == '_')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int static__read_fd(int fd, size_t size, unsigned char **out)
{
	unsigned char *p = malloc(size + 1);
	size_t got = 0;

	if (p == NULL)
		return -ENOMEM;
	while (got < size) {
		ssize_t r = read(fd, p + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(p);
			return r < 0 ? -errno : -EIO; /* shrank while being read */
		}
		got += (size_t)r;
	}
	p[size] = '\0';
	*out = p;
	return 0;
}

static int static__add_file(int dfd, const char *name, const char *rel)
{
	struct stat st;
	static_file_t *f;
	int fd, rc;

	if (S.n >= STATIC_MAX_FILES)
		return -EMFILE;
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0; /* not a regular file after all: skipped */
	}
	if ((uint64_t)st.st_size > STATIC_MAX_BYTES - S.bytes) {
		close(fd);
		return -EFBIG;
	}
	f = &S.files[S.n];
	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s", rel);
	rc = static__read_fd(fd, (size_t)st.st_size, &f->data);
	close(fd);
	if (rc < 0)
		return rc;
	f->len = (size_t)st.st_size;
	S.bytes += f->len;
	S.n++;
	return 0;
}

static int static__walk(int dfd, const char *prefix, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	int rc = 0;

	if (d == NULL) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		char rel[STATIC_MAX_PATH];
		struct stat st;

		if (!static__name_ok(e->d_name))
			continue;
		if (snprintf(rel, sizeof(rel), "%s%s", prefix, e->d_name) >= (int)sizeof(rel))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			rc = static__add_file(dirfd(d), e->d_name, rel);
		} else if (S_ISDIR(st.st_mode) && depth < STATIC_MAX_DEPTH) {
			int sub = openat(dirfd(d), e->d_name,
			                 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			char sub_prefix[STATIC_MAX_PATH];
			if (sub < 0)
				continue;
			if (snprintf(sub_prefix, sizeof(sub_prefix), "%s/", rel) >=
			    (int)sizeof(sub_prefix)) {
				close(sub);
				continue;
			}
			rc = static__walk(sub, sub_prefix, depth + 1);
		}
	}
	closedir(d);
	return rc;
}

static bool static__has_index(const char *dir)
{
	char p[PATH_MAX];
	struct stat st;

	if (snprintf(p, sizeof(p), "%s/index.html", dir) >= (int)sizeof(p))
		return false;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* [http] console_dir, else next to the binary (installed), else the
 * source tree the binary was built in. */
static int static__find_dir(void)
{
	static const char *const rel[] = {"../share/artemis/console", "../console"};
	const char *conf = api_cfg()->console_dir;
	char exe[PATH_MAX];
	ssize_t n;

	if (conf[0] != '\0') {
		snprintf(S.dir, sizeof(S.dir), "%s", conf);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -ENOENT;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash == NULL)
		return -ENOENT;
	*slash = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		if (snprintf(S.dir, sizeof(S.dir), "%s/%s", exe, rel[i]) >= (int)sizeof(S.dir))
			continue;
		if (static__has_index(S.dir))
			return 0;
	}
	if (snprintf(S.dir, sizeof(S.dir), "%s/%s", exe, rel[0]) >= (int)sizeof(S.dir))
		S.dir[0] = '\0';
	return -ENOENT;
}

static int static__cmp(const void *a, const void *b)
{
	return strcmp(((const static_file_t *)a)->path, ((const static_file_t *)b)->path);
}

static int static__gzip(static_file_t *f)
{
	z_stream z;
	uLong bound;
	int rc;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	bound = deflateBound(&z, (uLong)f->len);
	f->gz = malloc(bound);
	if (f->gz == NULL) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = f->data;
	z.avail_in = (uInt)f->len;
	z.next_out = f->gz;
	z.avail_out = (uInt)bound;
	rc = deflate(&z, Z_FINISH);
	f->gz_len = z.total_out;
	deflateEnd(&z);
	if (rc != Z_STREAM_END || f->gz_len >= f->len) {
		free(f->gz);
		f->gz = NULL;
		f->gz_len = 0;
	}
	return 0;
}

/* index.html names its assets through {{ASSETS}}: point it at the
 * versioned prefix. */
static int static__substitute(static_file_t *f, const char *with)
{
	size_t plen = sizeof(STATIC_PLACEHOLDER) - 1, wlen = strlen(with);
	buf_t b = {0};
	const char *p = (const char *)f->data, *end = p + f->len, *hit;

	while ((hit = memmem(p, (size_t)(end - p), STATIC_PLACEHOLDER, plen)) != NULL) {
		buf_append(&b, p, (size_t)(hit - p));
		buf_append(&b, with, wlen);
		p = hit + plen;
	}
	buf_append(&b, p, (size_t)(end - p));
	if (buf_error(&b)) {
		buf_free(&b);
		return -ENOMEM;
	}
	free(f->data);
	f->data = (unsigned char *)b.data; /* NUL-terminated, as read */
	f->len = b.len;
	return 0;
}

/* Digest of every file's name and bytes: the versioned prefix. */
static void static__version(void)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h = 0;

	if (st != NULL && XXH3_64bits_reset(st) == XXH_OK) {
		for (size_t i = 0; i < S.n; i++) {
			XXH3_64bits_update(st, S.files[i].path, strlen(S.files[i].path) + 1);
			XXH3_64bits_update(st, S.files[i].data, S.files[i].len);
		}
		h = XXH3_64bits_digest(st);
	}
	XXH3_freeState(st);
	snprintf(S.version, sizeof(S.version), "%016llx", (unsigned long long)h);
}

static int static__finish(void)
{
	char with[sizeof(STATIC_VERSIONED) + sizeof(S.version)];
	size_t gz_total = 0;

	qsort(S.files, S.n, sizeof(S.files[0]), static__cmp);
	static__version();
	snprintf(with, sizeof(with), "_v/%s", S.version);
	for (size_t i = 0; i < S.n; i++) {
		static_file_t *f = &S.files[i];
		bool compress;
		int rc;

		f->mime = static__mime(f->path, &compress);
		if (strcmp(f->path, "index.html") == 0 && (rc = static__substitute(f, with)) < 0)
			return rc;
		if (compress && (rc = static__gzip(f)) < 0)
			return rc;
		uint64_t h = XXH3_64bits(f->data, f->len);
		snprintf(f->etag, sizeof(f->etag), "\"%016llx\"", (unsigned long long)h);
		snprintf(f->etag_gz, sizeof(f->etag_gz), "\"%016llx.gz\"", (unsigned long long)h);
		gz_total += f->gz ? f->gz_len : f->len;
	}
	log_info("console: %zu files, %zu bytes (%zu compressed) from %s, version %s", S.n, S.bytes,
	         gz_total, S.dir, S.version);
	return 0;
}

static void static__load(void)
{
	int rc, dfd;

	S.loaded = true;
	rc = static__find_dir();
	if (rc == 0) {
		char real[PATH_MAX];
		if (realpath(S.dir, real) != NULL)
			memcpy(S.dir, real, sizeof(S.dir));
		S.files = calloc(STATIC_MAX_FILES, sizeof(S.files[0]));
		rc = S.files ? 0 : -ENOMEM;
	}
	if (rc == 0) {
		dfd = open(S.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		rc = dfd < 0 ? -errno : static__walk(dfd, "", 1);
	}
	if (rc == 0 && static__has_index(S.dir))
		rc = static__finish();
	else if (rc == 0)
		rc = -ENOENT;
	if (rc < 0) {
		log_warn("console: cannot serve %s: %s (set [http] console_dir, or console = off)",
		         S.dir, strerror(-rc));
		static_reset();
		S.loaded = true;
		return;
	}
	S.ok = true;
}

void static_reset(void)
{
	for (size_t i = 0; i < S.n; i++) {
		free(S.files[i].data);
		free(S.files[i].gz);
	}
	free(S.files);
	memset(&S, 0, sizeof(S));
}

/* ---- Answering -------------------------------------------------------------- */

static const static_file_t *static__lookup(const char *rel, size_t len)
{
	size_t lo = 0, hi = S.n;

	if (len == 0 || len >= STATIC_MAX_PATH || memchr(rel, '\0', len) != NULL)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *p = S.files[mid].path;
		int c = strncmp(p, rel, len);
		if (c == 0)
			c = p[len] == '\0' ? 0 : 1;
		if (c == 0)
			return &S.files[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Accept-Encoding names gzip (or *) with a non-zero q. */
static bool static__accepts_gzip(const http_request_t *req)
{
	const char *ae = http_request_header(req, "Accept-Encoding");

	if (ae == NULL)
		return false;
	while (*ae != '\0') {
		size_t n = strcspn(ae, ",");
		size_t tok = strcspn(ae, ",; \t");
		bool named =
		    (tok == 4 && strncasecmp(ae, "gzip", 4) == 0) || (tok == 1 && ae[0] == '*');
		if (named) {
			const char *q = memmem(ae, n, "q=", 2);
			if (q == NULL || strtod(q + 2, NULL) > 0.0)
				return true;
		}
		ae += n;
		while (*ae == ',' || *ae == ' ' || *ae == '\t')
			ae++;
	}
	return false;
}

/* If-None-Match lists etag (weak comparison: a W/ prefix is ignored), or
 * is "*". */
static bool static__not_modified(const http_request_t *req, const char *etag)
{
	const char *inm = http_request_header(req, "If-None-Match");
	size_t elen = strlen(etag);

	while (inm != NULL && *inm != '\0') {
		while (*inm == ' ' || *inm == '\t' || *inm == ',')
			inm++;
		if (*inm == '*')
			return true;
		if (strncmp(inm, "W/", 2) == 0)
			inm += 2;
		size_t n = strcspn(inm, ", \t");
		if (n == elen && memcmp(inm, etag, n) == 0)
			return true;
		inm += n;
	}
	return false;
}

static void static__redirect(http_response_t *res, int status, const char *to)
{
	snprintf(S.hdr, sizeof(S.hdr), "Location: %s\r\n", to);
	res->status = status;
	res->content_type = "text/plain; charset=utf-8";
	res->body.len = 0;
	http_res_append(res, to, strlen(to));
	res->headers = S.hdr;
}

static void static__send(const http_request_t *req, http_response_t *res, const static_file_t *f,
                         bool immutable)
{
	bool gz = f->gz != NULL && static__accepts_gzip(req);
	const char *etag = gz ? f->etag_gz : f->etag;

	snprintf(S.hdr, sizeof(S.hdr),
	         "ETag: %s\r\nCache-Control: %s\r\nVary: Accept-Encoding\r\n%s"
	         "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
	         "Content-Security-Policy: " STATIC_CSP "\r\n",
	         etag, immutable ? "public, max-age=31536000, immutable" : "no-cache",
	         gz ? "Content-Encoding: gzip\r\n" : "");
	res->body.len = 0;
	if (static__not_modified(req, etag)) {
		res->status = 304;
	} else {
		res->content_type = f->mime;
		if (http_res_append(res, gz ? f->gz : f->data, gz ? f->gz_len : f->len) < 0) {
			http_res_error(res, req, 500, "Out of memory");
			return;
		}
	}
	res->headers = S.hdr;
}

void static_serve(const http_request_t *req, http_response_t *res)
{
	const char *rel = req->path + STATIC_PREFIX_LEN;
	size_t len = req->path_len - STATIC_PREFIX_LEN;
	bool immutable = false;
	const static_file_t *f;

	if (req->method != HTTP_M_GET) {
		res->allow = "GET, HEAD";
		http_res_error(res, req, 405, "Request method not supported");
		return;
	}
	if (req->path_len == 1) {
		static__redirect(res, 302, STATIC_PREFIX);
		return;
	}
	if (req->path_len == STATIC_PREFIX_LEN - 1) {
		static__redirect(res, 301, STATIC_PREFIX);
		return;
	}
	if (!S.loaded)
		static__load();
	if (!S.ok) {
		http_res_error(res, req, 404, "The console's files were not found on this node");
		return;
	}
	/* "_v/<version>/<path>": the current version only. */
	if (len > sizeof(STATIC_VERSIONED) - 1 &&
	    memcmp(rel, STATIC_VERSIONED, sizeof(STATIC_VERSIONED) - 1) == 0) {
		size_t vlen = strlen(S.version), skip = sizeof(STATIC_VERSIONED) - 1 + vlen + 1;
		if (len <= skip || memcmp(rel + 3, S.version, vlen) != 0 || rel[skip - 1] != '/') {
			http_res_error(res, req, 404, "No such console file");
			return;
		}
		rel += skip;
		len -= skip;
		immutable = true;
	}
	f = len == 0 ? static__lookup("index.html", 10) : static__lookup(rel, len);
	if (f == NULL) {
		http_res_error(res, req, 404, "No such console file");
		return;
	}
	static__send(req, res, f, immutable);
}
