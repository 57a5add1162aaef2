/*
 * mgmt_fixture.h - what the management unit tests (test_mgmt.c,
 * test_mgmt_crash.c) share: registering an instance the way the API does
 * (its JSON through the codec into the registry), so its filter tags are
 * those of its fields.  Include after cmocka.h.
 */
#ifndef ARTEMIS_TESTS_MGMT_FIXTURE_H
#define ARTEMIS_TESTS_MGMT_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "artemis/codec.h"
#include "artemis/shm.h"

static void fixture_register(shm_t *shm, const char *svc, const char *id, const char *ip,
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

#endif
