/*
 * ws_int.h - internal to the WebSocket module: the session and what its
 * files (ws.c sessions and I/O, ws_push.c subscriptions and change push,
 * ws_heartbeat.c the registry endpoint) call in each other.
 *
 * A session is small on purpose (goal: an idle subscriber costs less than
 * 8 KiB): no buffer exists while nothing is pending; the parser's message
 * buffer and the output queue are allocated on demand and freed when empty.
 */
#ifndef ARTEMIS_WORKER_WS_INT_H
#define ARTEMIS_WORKER_WS_INT_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "artemis/clock.h"
#include "artemis/config.h"
#include "artemis/shm.h"
#include "artemis/tls.h"
#include "ws_frame.h"

/* The Java client's text buffer (API.md §6.4): no message we send to a
 * client is larger. */
#define WS_CLIENT_MESSAGE_MAX 8192

enum ws_kind {
	WS_KIND_HEARTBEAT = 0, /* /artemis/websocket/registry/heartbeat */
	WS_KIND_CHANGE,        /* /artemis/websocket/discovery/instance-change, subscribe alias */
	WS_KIND_ALL,           /* /artemis/websocket/discovery/all-instance-change */
	WS_KIND_EVENTS,        /* /ws: the Rust rewrite's event socket (ws_events.c) */
	WS_KIND_NONE,          /* an HTTP answer to a refused handshake */
};

enum ws_state {
	WS_ST_OPEN = 0,
	WS_ST_CLOSING,     /* we sent close: wait for the peer's close or the deadline */
	WS_ST_FLUSH_CLOSE, /* send what is queued, then close the socket */
	WS_ST_DEAD,        /* socket closed; freed by the reap event */
};

typedef struct ws_topic ws_topic_t;

typedef struct ws_session {
	struct ws_session *prev, *next; /* the list of its state */
	struct event ev;
	int fd;
	tls_conn_t *tls;      /* WSS: the socket's TLS (out holds plaintext) */
	uint8_t kind;         /* enum ws_kind */
	uint8_t state;        /* enum ws_state */
	bool ev_write;        /* EV_WRITE is part of ev */
	bool counted;         /* included in the connection.json gauge */
	bool attached;        /* known to ws_push.c (ws_push_attach) */
	uint64_t opened_ms;   /* CLOCK_MONOTONIC */
	uint64_t deadline_ms; /* closing: give up waiting then */
	ws_parser_t parser;
	buf_t out; /* unsent output (allocated only while non-empty) */
	size_t out_off;
	/* Subscriptions (ws_push.c). */
	ws_topic_t **topics;
	uint32_t ntopics, topics_cap;
	char peer[48];
} ws_session_t;

/* ---- ws.c --------------------------------------------------------------- */

const config_t *ws_cfg(void);

/* Queue a pre-encoded frame (header + payload; the payload is not copied
 * unless the socket does not take it at once).  Dropped unless the session
 * is open.  May close the session (slow consumer: 1008). */
void ws_session_send_frame(ws_session_t *s, const uint8_t *hdr, size_t hlen, const void *payload,
                           size_t len);
/* Frame and queue one message. */
void ws_session_send(ws_session_t *s, enum ws_opcode op, const void *payload, size_t len);
/* Start the close handshake (no-op unless open). */
void ws_session_close(ws_session_t *s, uint16_t code, const char *reason);

/* ---- ws_push.c ------------------------------------------------------------- */

int ws_push_init(struct event_base *base, shm_t *shm);
void ws_push_shutdown(void);
/* A change or all-change session opened / is being freed. */
int ws_push_attach(ws_session_t *s);
void ws_push_detach(ws_session_t *s);
/* Subscribe s to one exact-case serviceId. */
int ws_push_subscribe(ws_session_t *s, const char *service, size_t len);
/* A text message on a change session: a DiscoveryConfig. */
void ws_push_on_text(ws_session_t *s, char *msg, size_t len);

/* ---- ws_events.c ------------------------------------------------------------ */

/* A text message on an events session: {"type":"ping"} -> {"type":"pong"}. */
void ws_events_on_text(ws_session_t *s, char *msg, size_t len);
/* The first events session of this worker attached (state as of now). */
void ws_events_start(shm_t *shm);
/* One change of the log, to the events sessions. */
void ws_events_change(shm_t *shm, const shm_change_t *ch, const buf_t *json,
                      ws_session_t *const *subs, uint32_t n);
/* Peers that came up or went away since the last call, to the sessions. */
void ws_events_peers(shm_t *shm, ws_session_t *const *subs, uint32_t n);
/* The last events session left: forget the state. */
void ws_events_stop(void);

/* ---- ws_heartbeat.c -------------------------------------------------------- */

/* A text message on a heartbeat session: answer it with one response. */
void ws_heartbeat_on_text(ws_session_t *s, char *msg, size_t len);
/* Make a heartbeat response fit WS_CLIENT_MESSAGE_MAX (exposed for tests). */
int ws_heartbeat_fit(buf_t *body, size_t max);

#endif
