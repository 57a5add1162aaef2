/*
 * bench.h - the modes of build/artemis-bench, one entry point each.
 *
 *   shm_bench.c   shm           the registry in-process
 *   modes.c       register, heartbeat, lookup, mixed, soak (HTTP, client.c)
 *   ws_bench.c    ws-subscribe  WebSocket push latency
 *   repl_bench.c  repl          replication lag, bootstrap, renewal load
 *   mgmt_filter.c mgmt-filter   the management down filter's cost, in-process
 *   routed.c      routed        what routing costs a discovery call (HTTP)
 */
#ifndef ARTEMIS_BENCH_H
#define ARTEMIS_BENCH_H

int bench_shm_main(int argc, char **argv);
int bench_register_main(int argc, char **argv);
int bench_heartbeat_main(int argc, char **argv);
int bench_lookup_main(int argc, char **argv);
int bench_mixed_main(int argc, char **argv);
int bench_soak_main(int argc, char **argv);
int bench_ws_subscribe_main(int argc, char **argv);
int bench_repl_main(int argc, char **argv);
int bench_mgmt_filter_main(int argc, char **argv);
int bench_auth_main(int argc, char **argv);
int bench_routed_main(int argc, char **argv);

#endif
