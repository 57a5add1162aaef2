/*
 * shm_test.h - what the tests of the registry region build instances and
 * keys with, and how they assert its invariants: tests/unit/test_shm*.c and
 * tests/fuzz/fuzz_region.c.  Every instance is in region us-east, zone
 * zone-1.
 */
#ifndef ARTEMIS_TESTS_SHM_TEST_H
#define ARTEMIS_TESTS_SHM_TEST_H

#include <string.h>

#include "artemis/shm.h"

#define S(x) ((shm_str_t){(x), strlen(x)})

static inline shm_instance_in_t inst_len(const char *svc, const char *id, const char *json,
                                         size_t len)
{
	shm_instance_in_t in;
	memset(&in, 0, sizeof(in));
	in.key.region = S("us-east");
	in.key.service = S(svc);
	in.key.instance = S(id);
	in.zone = S("zone-1");
	in.json = (shm_str_t){json, len};
	return in;
}

static inline shm_instance_in_t inst(const char *svc, const char *id, const char *json)
{
	return inst_len(svc, id, json, strlen(json));
}

static inline shm_key_t key(const char *region, const char *svc, const char *id)
{
	return (shm_key_t){S(region), S(svc), S(id)};
}

#ifdef cmocka_unit_test
/* Every invariant holds, or the test fails with the first violation. */
static inline void assert_check(shm_t *s)
{
	char msg[256];
	if (shm_check(s, msg, sizeof(msg)))
		fail_msg("shm_check: %s", msg);
}
#endif

#endif
