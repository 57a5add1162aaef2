/*
 * api_ops.c - operations endpoints of API.md §A: GET /health (the process
 * answers), GET /ready (the node is up: 200, else 503) and GET /metrics
 * (Prometheus text format 0.0.4, the node's totals).
 */
#include "api.h"
#include "artemis/codec.h"
#include "metrics.h"

void api_ops_health(const http_request_t *req, http_response_t *res)
{
	(void)req;
	res->body.len = 0;
	json_put_raw(&res->body, "{\"status\":\"up\"}");
}

void api_ops_ready(const http_request_t *req, http_response_t *res)
{
	(void)req;
	res->body.len = 0;
	if (!api_node_up())
		res->status = 503;
	json_put_raw(&res->body, "{\"status\":");
	json_put_cstr(&res->body, api_node_status());
	json_put_raw(&res->body, "}");
}

void api_ops_metrics(const http_request_t *req, http_response_t *res)
{
	(void)req;
	res->body.len = 0;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	if (metrics_render(&res->body) < 0) {
		res->body.len = 0;
		http_res_error(res, req, 500, "metrics could not be rendered");
	}
}
