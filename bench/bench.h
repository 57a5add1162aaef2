/*
 * bench.h - the modes of build/artemis-bench, one file each.
 */
#ifndef ARTEMIS_BENCH_H
#define ARTEMIS_BENCH_H

int bench_shm_main(int argc, char **argv);

#endif
