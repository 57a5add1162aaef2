/*
 * mgmt_fixture.h - what the management unit tests (test_mgmt.c,
 * test_mgmt_crash.c, test_mgmt_repl.c, test_routing.c) share: registering
 * an instance the way the API does (its JSON through the codec into the
 * registry), so its filter tags are those of its fields; a routing
 * transaction that must open and commit.  Include after cmocka.h.
 */
#ifndef ARTEMIS_TESTS_MGMT_FIXTURE_H
#define ARTEMIS_TESTS_MGMT_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "artemis/codec.h"
#include "artemis/mgmt.h"
#include "artemis/shm.h"

static inline void fixture_register(shm_t *shm, const char *svc, const char *id, const char *ip,
                                    const char *zone)
{
	char json[512];
	shm_instance_in_t si;
	instance_parser_t *p = instance_parser_new();
	snprintf(json, sizeof(json),
	         "{\"regionId\":\"us-east\",\"zoneId\":\"%s\",\"serviceId\":\"%s\","
	         "\"instanceId\":\"%s\",\"ip\":\"%s\",\"port\":80,\"url\":\"http://%s/\"}",
	         zone, svc, id, ip, ip);
	assert_int_equal(instance_parse(p, json, strlen(json), &si, NULL), 0);
	assert_int_equal(shm_register(shm, &si), 0);
	instance_parser_free(p);
}

static inline mgmt_rtx_t *fixture_rtx(mgmt_t *m, const mgmt_ctx_t *ctx)
{
	mgmt_rtx_t *t;
	char err[256];
	if (mgmt_rtx_begin(m, ctx, &t, err, sizeof(err)) < 0)
		fail_msg("mgmt_rtx_begin: %s", err);
	return t;
}

static inline void fixture_commit(mgmt_rtx_t *t)
{
	char err[512] = "";
	if (mgmt_rtx_commit(t, err, sizeof(err)) < 0)
		fail_msg("mgmt_rtx_commit: %s", err);
}

#endif
