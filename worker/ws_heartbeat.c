/*
 * ws_heartbeat.c - /artemis/websocket/registry/heartbeat (API.md §3, §6.2).
 *
 * Each text message is a HeartbeatRequest; each gets exactly one
 * HeartbeatResponse.  The work is the HTTP heartbeat.json handler's own
 * (api_registry_heartbeat in api_registry.c: rate limiter, node state,
 * region and zone checks, the lock-free renewals, data-not-found for
 * unknown leases), called with a request that carries the message as its
 * body.  That handler calls no transport function besides http_res_error,
 * so a request without a connection behind it is fine.
 *
 * What differs from HTTP, as Java's HeartbeatWebSocketHandler does it: a
 * payload the handler cannot process (HTTP would answer 400) gets the
 * generic success {"failedInstances":null,"responseStatus":{success}}.
 *
 * The Java client reads at most 8 KB per message (API.md §6.4) and drops
 * the session on a larger one, so a response listing many failed
 * instances is cut to fit: failed instances with data-not-found or
 * unknown (the ones the client re-registers) come first, then the others,
 * in request order, as many whole entries as fit.  The status stays
 * partial_fail.  The client re-registers what it was told about; the rest
 * is listed again in the answer to its next heartbeat (5 s later), so
 * registration converges in a few rounds instead of never.
 */
#include "ws_int.h"

#include "api.h"
#include "artemis/codec.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define WS_HB_PATH         "/artemis/websocket/registry/heartbeat"
#define WS_GENERIC_SUCCESS "{\"failedInstances\":null,\"responseStatus\":" API_STATUS_SUCCESS "}"

/* True for the codes the Java client answers with a register. */
static bool ws__reregistered(json_t *failed)
{
	const char *code = json_string_value(json_object_get(failed, "errorCode"));

	return code != NULL &&
	       (strcmp(code, API_DATA_NOT_FOUND) == 0 || strcmp(code, "unknown") == 0);
}

static int ws__append_fitting(buf_t *out, json_t *arr, bool first_pass, size_t max, size_t tail,
                              size_t *n)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		char *text;
		size_t len;

		if (ws__reregistered(v) != first_pass)
			continue;
		text = json_dumps(v, JSON_COMPACT);
		if (text == NULL)
			return -1;
		len = strlen(text);
		if (out->len + (*n ? 1 : 0) + len + tail <= max) {
			if ((*n && json_put_raw(out, ",") != 0) ||
			    buf_append(out, text, len) != 0) {
				free(text);
				return -1;
			}
			(*n)++;
		}
		free(text);
	}
	return 0;
}

int ws_heartbeat_fit(buf_t *body, size_t max)
{
	json_t *root, *failed, *status;
	buf_t out = {0};
	char *status_text = NULL;
	size_t n = 0, tail;
	int rc = -1;

	if (body->len <= max)
		return 0;
	root = json_loadb(body->data, body->len, 0, NULL);
	failed = json_object_get(root, "failedInstances");
	status = json_object_get(root, "responseStatus");
	if (!json_is_array(failed) || status == NULL)
		goto out;
	status_text = json_dumps(status, JSON_COMPACT);
	if (status_text == NULL)
		goto out;
	/* "]," "\"responseStatus\":" status "}" */
	tail = 2 + strlen("\"responseStatus\":") + strlen(status_text) + 1;
	if (json_put_raw(&out, "{\"failedInstances\":[") != 0 ||
	    ws__append_fitting(&out, failed, true, max, tail, &n) < 0 ||
	    ws__append_fitting(&out, failed, false, max, tail, &n) < 0 ||
	    json_put_raw(&out, "],\"responseStatus\":") != 0 ||
	    json_put_raw(&out, status_text) != 0 || json_put_raw(&out, "}") != 0)
		goto out;
	buf_free(body);
	*body = out;
	out = (buf_t){0};
	rc = 0;
out:
	buf_free(&out);
	free(status_text);
	json_decref(root);
	return rc;
}

void ws_heartbeat_on_text(ws_session_t *s, char *msg, size_t len)
{
	static http_response_t res;
	http_request_t req = {
	    .method = HTTP_M_POST,
	    .path = WS_HB_PATH,
	    .path_len = sizeof(WS_HB_PATH) - 1,
	    .query = "",
	    .body = msg,
	    .body_len = len,
	    .content_type = "application/json",
	    .peer_ip = s->peer,
	};
	const char *text;
	size_t text_len;

	res.status = 200;
	res.content_type = NULL;
	res.allow = NULL;
	buf_reset(&res.body);
	api_registry_heartbeat(&req, &res);
	if (res.status == 200 && res.body.len > 0 &&
	    ws_heartbeat_fit(&res.body, WS_CLIENT_MESSAGE_MAX) == 0) {
		text = res.body.data;
		text_len = res.body.len;
	} else {
		text = WS_GENERIC_SUCCESS;
		text_len = sizeof(WS_GENERIC_SUCCESS) - 1;
	}
	ws_session_send(s, WS_OP_TEXT, text, text_len);
	if (res.body.cap > (64u << 10))
		buf_free(&res.body); /* keep a big batch's buffer no longer */
}
