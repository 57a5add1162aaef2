/*
 * api_routing.h - worker-internal: what the routing handlers share (groups,
 * route rules, canary; MANAGEMENT.md §3.2.3-§3.2.5, API.md §5.3, §5.5).
 *
 *   api_routing.c         Rust: /api/routing/groups..., services/{id}/instances
 *   api_routing_rules.c   Rust: /api/routing/rules...
 *   api_routing_canary.c  Rust: /api/management/canary/...; Java's
 *                         update-canary-ips.json
 *   api_routing_java.c    Java: the 32 /api/management/group/NAME.json
 *   api_routing_out.c     the answers' JSON (groups, rules, canary configs)
 *   api_routing_decode.c  the request decoders: pure functions of a parsed
 *                         body, bounded, fuzzed by tests/fuzz/fuzz_routing.c
 *
 * Every handler starts with api_mgmt_begin (body, the permission check,
 * node state) and writes through mgmt_rtx_* (one transaction per request,
 * nothing half-written).
 */
#ifndef ARTEMIS_WORKER_API_ROUTING_H
#define ARTEMIS_WORKER_API_ROUTING_H

#include <jansson.h>
#include <stdbool.h>

#include "api_mgmt.h"
#include "artemis/mgmt.h"

/* ---- Decoders (api_routing_decode.c) ------------------------------------------- */

/* A group: serviceId, regionId, zoneId, name (or groupName), appId,
 * description, status (a string or {"status":..}), groupType (a string or
 * {"type":"WEIGHT"|..}: WEIGHT and PHYSICAL are physical), groupId.
 * *fields gets MGMT_GF_* of the optional members present.  0, or -EINVAL /
 * -ENAMETOOLONG with *field naming the member. */
int api_rt_decode_group(const json_t *obj, mgmt_group_t *g, unsigned *fields, const char **field);
/* A rule: routeId, routeRuleId (or id), serviceId, name, description,
 * status, strategy (a string or {"strategy":"WEIGHT_ROUND_ROBIN"|
 * "CONSISTENT_HASH"|"CLOSE_BY_VISIT"}).  *fields: MGMT_RF_* present. */
int api_rt_decode_rule(const json_t *obj, mgmt_rule_t *r, unsigned *fields, const char **field);
/* A positive id: a number or a string of digits.  -ENOENT when absent or
 * null, -EINVAL otherwise. */
int api_rt_decode_id(const json_t *v, int64_t *id);
/* A weight: a number or a numeric string (clamped by the caller's surface).
 * -ENOENT when absent or null, -EINVAL otherwise. */
int api_rt_decode_weight(const json_t *v, long long *w);
/* A group instance: instanceId, regionId, zoneId, bindingType. */
int api_rt_decode_binding(const json_t *obj, mgmt_binding_t *b, const char **field);
/* A logical instance (Java's ServiceInstance): id, serviceId, instanceId,
 * ip, machineName, metadata (an object, or its JSON text), port, protocol,
 * regionId, zoneId, groupId, healthCheckUrl, url, description. */
int api_rt_decode_logic(const json_t *obj, mgmt_logic_t *l, const char **field);
/* A whitelist: an array of strings (or one string of entries separated by
 * commas or blanks), each an IP or a CIDR block, into a JSON array's text
 * appended to out.  At most MGMT_MAX_WHITELIST entries. */
int api_rt_decode_ips(const json_t *v, buf_t *out, const char **field);
/* A group in a path: its numeric id (key->id set), or
 * "serviceId:regionId:zoneId:name" (the others set).  -EINVAL otherwise. */
int api_rt_parse_group_key(const char *s, mgmt_group_t *key);

/* ---- Answers (api_routing_out.c) ------------------------------------------------ */

/* The Rust group JSON: §3.2.3 with the console's names beside
 * (MANAGEMENT.md §3.3).  tags: its tags ({} when none). */
int api_rt_put_group(api_mgmt_req_t *r, buf_t *b, const mgmt_group_t *g);
/* Java's Group DTO (API.md §5.3). */
int api_rt_put_java_group(api_mgmt_req_t *r, buf_t *b, const mgmt_group_t *g);
/* The Rust rule JSON with its groups (§3.2.4, §3.3). */
int api_rt_put_rule(api_mgmt_req_t *r, buf_t *b, const mgmt_rule_t *rule);
/* One rule group as the Rust GET .../groups lists it. */
int api_rt_put_rule_group(api_mgmt_req_t *r, buf_t *b, const mgmt_rule_t *rule,
                          const mgmt_rule_group_t *rg);
/* A canary config (§3.2.5, §3.3). */
int api_rt_put_canary(buf_t *b, const mgmt_canary_t *c);
/* The registered members of a group, counted (instance_count). */
int api_rt_member_count(api_mgmt_req_t *r, const mgmt_group_t *g, uint32_t *n);

/* ---- Shared by the handlers ---------------------------------------------------- */

/* A routing write's context from the body (operatorId, token, ...), then
 * the transaction begun.  false when the failure is answered. */
bool api_rt_begin(api_mgmt_req_t *r, api_mgmt_ctx_t *c, const char *surface, mgmt_rtx_t **t);
/* Commit; false when the failure is answered. */
bool api_rt_commit(api_mgmt_req_t *r, mgmt_rtx_t *t);
/* The end of a write: rc < 0 aborts and answers the failure (err), else
 * commit; false when a failure is answered. */
bool api_rt_finish(api_mgmt_req_t *r, mgmt_rtx_t *t, int rc, const char *err);
/* The failure of a routing call in the request's style: -EEXIST 409
 * (conflict), -ENOENT 404 (data-not-found), -EXDEV / -EINVAL / -E2BIG /
 * -ENAMETOOLONG 400 (bad-request), -ENOBUFS (/dev/shm full) 503
 * (service-unavailable), -ENOSPC and the rest 500. */
void api_rt_fail(api_mgmt_req_t *r, int rc, const char *err);
/* The group a path names ({groupKey}: id or key): 0, or answered. */
int api_rt_path_group(api_mgmt_req_t *r, const char *param, mgmt_group_t *g);

#endif
