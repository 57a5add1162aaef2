/*
 * fuzz_region.c - libFuzzer target: a region whose header was tampered with
 * is refused by attach, or attaches and is checked and read, and either way
 * nothing reads outside the region (ASan) or crashes.
 *
 * A small valid region (instances in two services, a removal, a reload) is
 * made once on a memfd and its bytes kept as the template.  Each input is a
 * list of patches to the header: a 2-byte little-endian offset (modulo the
 * header's size), a 1-byte length (at most 16, cut at the header's end),
 * then that many bytes.  The patched copy goes into a second memfd, which
 * is attached read-only, checked with shm_check, read through the change
 * log and the instance and service walks, and detached.  Nothing is created
 * in /dev/shm.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../shm/shm_int.h"
#include "artemis/shm.h"
#include "../unit/shm_test.h"

static char *template;
static size_t template_len;
static int target_fd = -1;
static char *target;

static int fill(shm_t *s)
{
	char id[16];
	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof(id), "i%d", i);
		shm_instance_in_t in = inst(i % 2 ? "Svc-A" : "svc-b", id, "{\"x\":1}");
		if (shm_register(s, &in))
			return -1;
	}
	shm_key_t k = key("us-east", "Svc-A", "i1");
	shm_reap_result_t r;
	if (shm_unregister(s, &k, 0) || shm_reap(s, 0, &r) || shm_emit_reload(s, S("svc-b")))
		return -1;
	return 0;
}

static int make_template(void)
{
	int fd = memfd_create("artemis-fuzz-template", MFD_CLOEXEC);
	if (fd < 0 || fchmod(fd, 0600) < 0)
		return -1;
	shm_params_t p;
	shm_params_default(&p, "/artemis-fuzz");
	p.max_instances = 64;
	p.max_services = 16;
	p.changelog_size = 64;
	shm_t *s = NULL;
	if (shm_create_fd(fd, &p, &s) || fill(s))
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	template_len = (size_t)st.st_size;
	template = malloc(template_len);
	if (!template || pread(fd, template, template_len, 0) != (ssize_t)template_len)
		return -1;
	shm_detach(s);
	close(fd);
	target_fd = memfd_create("artemis-fuzz-region", MFD_CLOEXEC);
	if (target_fd < 0 || fchmod(target_fd, 0600) < 0 ||
	    ftruncate(target_fd, (off_t)template_len) < 0)
		return -1;
	target = mmap(NULL, template_len, PROT_READ | PROT_WRITE, MAP_SHARED, target_fd, 0);
	return target == MAP_FAILED ? -1 : 0;
}

static int count(void *ctx, const shm_instance_view_t *v, const char *json, size_t len)
{
	(void)v;
	(void)json;
	(void)len;
	(*(int *)ctx)++;
	return 0;
}

static int count_services(void *ctx, const char *name, size_t len, const shm_service_info_t *i)
{
	(void)name;
	(void)len;
	(void)i;
	(*(int *)ctx)++;
	return 0;
}

/* Everything a reader of a foreign region would do. */
static void read_all(shm_t *s)
{
	char msg[256];
	(void)shm_check(s, msg, sizeof(msg));
	shm_cursor_t cur = {1};
	shm_change_t ch;
	buf_t json = {0};
	for (int i = 0; i < 200; i++) {
		json.len = 0;
		int rc = shm_changes_next(s, &cur, &ch, &json);
		if (rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM)
			break;
	}
	buf_free(&json);
	int n = 0;
	uint32_t next = 0;
	(void)shm_instances_walk(s, &next, 0, count, &n);
	(void)shm_services_foreach(s, count_services, &n);
	shm_service_info_t info;
	(void)shm_service_info(s, S("Svc-A"), &info);
	shm_stats_t st;
	shm_stats(s, &st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!template && make_template() < 0)
		abort();
	memcpy(target, template, template_len);
	size_t hsize = sizeof(struct shm_header_sh);
	while (size >= 3) {
		size_t off = ((size_t)data[0] | (size_t)data[1] << 8) % hsize;
		size_t len = data[2] % 17;
		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		if (len > hsize - off)
			len = hsize - off;
		memcpy(target + off, data, len);
		data += len;
		size -= len;
	}
	shm_t *s = NULL;
	if (shm_attach_fd(target_fd, true, &s) == 0) {
		read_all(s);
		shm_detach(s);
	}
	return 0;
}
