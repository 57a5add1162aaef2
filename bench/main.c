/*
 * main.c - build/artemis-bench: dispatch to a benchmark mode.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *what;
} modes[] = {
	{"shm", bench_shm_main, "the shared-memory registry in-process (no HTTP)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: artemis-bench MODE [options]   (artemis-bench MODE --help)\n\nmodes:\n");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		fprintf(f, "  %-12s %s\n", modes[i].name, modes[i].what);
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(argv[1], modes[i].name) == 0)
			return modes[i].run(argc - 1, argv + 1);
	fprintf(stderr, "artemis-bench: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
