/*
 * ws.h - worker-internal: the WebSocket server (ws.c, ws_push.c,
 * ws_heartbeat.c) as the worker loop and the API router see it.
 *
 * ws_init() installs the transport's upgrade hook (http_conn.h): requests
 * for the WebSocket paths of API.md §3 and §A become sessions owned by this
 * module.  The worker asks it to close every session on QUIT (close 1001)
 * and waits until ws_sessions() is 0 before exiting.
 */
#ifndef ARTEMIS_WORKER_WS_H
#define ARTEMIS_WORKER_WS_H

#include "http.h"
#include "worker.h"

/* Called whenever the number of sessions (open or closing) drops. */
typedef void (*ws_sessions_fn)(void *arg, unsigned nsessions);

int ws_init(worker_t *w, ws_sessions_fn fn, void *arg);
/* Close every session with 1001 (going away); refuse new upgrades. */
void ws_drain(void);
/* Sessions open or still closing. */
unsigned ws_sessions(void);
/* Close every socket and free everything (worker exit). */
void ws_shutdown(void);

/* GET /artemis/api/status/websocket/connection.json (API.md §2.5). */
void api_status_ws_connection(const http_request_t *req, http_response_t *res);

#endif
