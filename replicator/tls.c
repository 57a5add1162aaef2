/*
 * tls.c - TLS around the replicator's links ([cluster] tls = on; docs/
 * CLUSTER.md "TLS"), with OpenSSL through libevent's bufferevent_openssl.
 *
 * One context serves both roles of a connection: it shows [cluster]
 * tls_cert (with tls_key) and requires the other side's certificate,
 * verified against [cluster] tls_ca, both ways (mutual TLS).  Names in the
 * certificates are not compared with anything: which node is at the other
 * end is what the cluster key's handshake proves, and it runs unchanged
 * inside the TLS link (the AEAD seal of every frame too).  TLS 1.2 and
 * 1.3, no renegotiation, no compression.
 *
 * The master calls replicator_tls_check() at start and before a reload is
 * accepted, so a file that is missing, unreadable, not PEM, or a key that
 * does not match its certificate stops the start (exit 2) with the file's
 * path; the replicator builds its own context after fork.
 */
#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "artemis/proc.h"
#include "repl.h"

/* A file must be readable before OpenSSL is asked about it: its own
 * messages do not name the file. */
static int tls__readable(const char *what, const char *path, char *err, size_t err_len)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		int e = errno;
		snprintf(err, err_len, "[cluster] %s %s: %s", what, path, strerror(e));
		return -e;
	}
	fclose(f);
	return 0;
}

static const char *tls__reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "not usable";
}

static int tls__fail(SSL_CTX *ctx, char *err, size_t err_len, const char *what, const char *path)
{
	snprintf(err, err_len, "[cluster] %s %s: %s", what, path, tls__reason());
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return -EINVAL;
}

int repl_tls_ctx(const config_t *cfg, struct ssl_ctx_st **out, char *err, size_t err_len)
{
	SSL_CTX *ctx;
	int rc;

	ERR_clear_error();
	if ((rc = tls__readable("tls_cert", cfg->cluster_tls_cert, err, err_len)) < 0 ||
	    (rc = tls__readable("tls_key", cfg->cluster_tls_key, err, err_len)) < 0 ||
	    (rc = tls__readable("tls_ca", cfg->cluster_tls_ca, err, err_len)) < 0)
		return rc;
	if ((ctx = SSL_CTX_new(TLS_method())) == NULL) {
		snprintf(err, err_len, "[cluster] tls: out of memory");
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cluster_tls_cert) != 1)
		return tls__fail(ctx, err, err_len, "tls_cert", cfg->cluster_tls_cert);
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->cluster_tls_key, SSL_FILETYPE_PEM) != 1)
		return tls__fail(ctx, err, err_len, "tls_key", cfg->cluster_tls_key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tls__fail(ctx, err, err_len, "tls_key (it does not match tls_cert)",
		                 cfg->cluster_tls_key);
	if (SSL_CTX_load_verify_locations(ctx, cfg->cluster_tls_ca, NULL) != 1)
		return tls__fail(ctx, err, err_len, "tls_ca", cfg->cluster_tls_ca);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	*out = ctx;
	return 0;
}

void repl_tls_ctx_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

int replicator_tls_check(const config_t *cfg, char *err, size_t err_len)
{
	SSL_CTX *ctx = NULL;

	if (!cfg->cluster_tls || cfg->npeers == 0)
		return 0;
	int rc = repl_tls_ctx(cfg, &ctx, err, err_len);
	if (rc == 0)
		SSL_CTX_free(ctx);
	return rc;
}

struct bufferevent *repl_tls_bev(repl_t *r, int fd, bool outbound)
{
	SSL *ssl = SSL_new(r->tls);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(
	    r->base, fd, ssl, outbound ? BUFFEREVENT_SSL_CONNECTING : BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* A peer that closes without close_notify has just closed: the
	 * stream's own framing and seal say whether anything was cut. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

const char *repl_tls_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e = bev ? bufferevent_get_openssl_error(bev) : 0;
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, len, "%s", reason ? reason : "");
	while (bev && bufferevent_get_openssl_error(bev))
		; /* the rest of its queue */
	return buf;
}
