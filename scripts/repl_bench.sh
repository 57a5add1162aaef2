#!/bin/sh
# repl_bench.sh - the replication benchmarks of docs/BENCHMARKS.md
# ("Replication"), on a two-node cluster on loopback (scripts/cluster.sh).
#
#   scripts/repl_bench.sh [BUILD_DIR] [SCENARIO...]
#        BUILD_DIR defaults to build; SCENARIO is any of lag, bootstrap, cpu
#        (the default: the three in order, on one cluster) and converge.
#
# 1. lag:       1,000 registrations into node1's region, each timed until
#               node2's region holds it (p50/p99/max).
# 2. bootstrap: node1 holds 100,000 instances more; node2 is stopped, its
#               region removed, and started again: time until it is up and
#               holds them all, and the peak anonymous memory of node1's
#               replicator (the sender) meanwhile.
# 3. cpu:       100,000 leases on node1 renewed every 5 s for 30 s; CPU time
#               of both replicators (node1 sends, node2 applies) over it.
# 4. converge:  anti-entropy at full size (issue 11): 300,000 instances (300
#               services, five small metadata keys) registered into node1 in
#               batches of 500 at 6,000/s while node2 only receives; both
#               counts sampled every 10 ms and for 60 s after the last write.
#               Once with the default digest interval (10 s), once with
#               digest_interval_ms = 2000, each on a fresh cluster with
#               max_instances 400,000 and a 1 h lease.  Fails when node2's
#               count ever goes down, is not equal to node1's within 10 s of
#               the last write, or differs again later.
# REPL_BENCH_CONF adds [cluster] lines to every node (e.g. "encrypt = off").
# Everything runs on this machine; the cluster is stopped at the end.
set -eu

B=${1:-build}
[ $# -gt 0 ] && shift
SCENARIOS=${*:-lag bootstrap cpu}
BIN=$B/artemis
BENCH=$B/artemis-bench
N=${REPL_BENCH_N:-100000}
SECONDS_CPU=${REPL_BENCH_SECONDS:-30}
DIR=$(mktemp -d /tmp/artemis-repl-bench.XXXXXX)
PREFIX=/artemis-rbench-$$-node
export ARTEMIS_BIN=$BIN CLUSTER_DIR=$DIR SHM_PREFIX=$PREFIX FRESH=1 WORKERS=1
export HTTP_BASE=${HTTP_BASE:-28080} REPL_BASE=${REPL_BASE:-29090}
export MAX_INSTANCES=$((N + 50000))
export EXTRA_CONF="bootstrap_timeout_ms = 1000${REPL_BENCH_CONF:+
$REPL_BENCH_CONF}"
CONV_N=${REPL_BENCH_CONVERGE_N:-300000}

cleanup() {
	sh scripts/cluster.sh stop 2 >/dev/null 2>&1 || true
	rm -f /dev/shm/${PREFIX#/}1 /dev/shm/${PREFIX#/}2
	[ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

ready() { # ready K: wait for GET /ready = 200 on node K (30 s)
	i=0
	while [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((HTTP_BASE + $1))/ready")" != 200 ]; do
		i=$((i + 1))
		[ $i -lt 300 ] || { echo "node$1 not ready" >&2; exit 1; }
		sleep 0.1
	done
}

cpu_ticks() { # cpu_ticks PID: utime + stime in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

anon_kb() { # anon_kb PID: its anonymous resident memory (RssAnon), kB
	awk '/^RssAnon/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

repl_pid() { # repl_pid K: node K's replicator
	m=$(cat "$DIR/node$1/data/artemis.pid")
	for p in $(ls /proc | grep '^[0-9]*$'); do
		[ -r "/proc/$p/stat" ] || continue
		if [ "$(awk '{print $4}' "/proc/$p/stat" 2>/dev/null)" = "$m" ] &&
			tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q replicator; then
			echo "$p"
			return
		fi
	done
}

start_cluster() {
	echo "== cluster: 2 nodes, 1 worker each, $DIR ${EXTRA_CONF:+($EXTRA_CONF)}"
	sh scripts/cluster.sh start 2
	ready 1
	ready 2
}

stop_cluster() {
	sh scripts/cluster.sh stop 2 >/dev/null
	for k in 1 2; do
		f="$DIR/node$k/data/artemis.pid"
		while [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; do sleep 0.1; done
	done
	rm -f /dev/shm/${PREFIX#/}1 /dev/shm/${PREFIX#/}2
}

run_lag() {
	echo "== lag"
	"$BENCH" repl lag --from "${PREFIX}1" --to "${PREFIX}2" -n 1000
}

run_bootstrap() {
	echo "== bootstrap ($N instances)"
	"$BENCH" repl fill --to "${PREFIX}1" -n "$N" --services 100
	"$BIN" stop -c "$DIR/node2/artemis.conf" >/dev/null
	while [ -f "$DIR/node2/data/artemis.pid" ] && kill -0 "$(cat "$DIR/node2/data/artemis.pid")" 2>/dev/null; do sleep 0.1; done
	rm -f "/dev/shm/${PREFIX#/}2"
	# The sender's memory during the snapshot: RssAnon of node1's replicator,
	# sampled every 10 ms until the bootstrap is done.
	s1=$(repl_pid 1)
	anon_before=$(anon_kb "$s1")
	c1=$(cpu_ticks "$s1")
	touch "$DIR/sampling"
	(
		peak=0
		while [ -f "$DIR/sampling" ]; do
			v=$(anon_kb "$s1")
			[ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
			sleep 0.01
		done
		echo "$peak" >"$DIR/anon_peak"
	) &
	spid=$!
	"$BENCH" repl bootstrap --to "${PREFIX}2" --expect $((N + 1000)) --timeout 60 -- \
		"$BIN" server -c "$DIR/node2/artemis.conf" --fresh >"$DIR/bootstrap.txt" 2>&1 &
	bpid=$!
	brc=0
	wait $bpid || brc=$?
	rm -f "$DIR/sampling"
	wait $spid
	[ $brc -eq 0 ] || { cat "$DIR/bootstrap.txt"; exit 1; }
	grep 'repl bootstrap' "$DIR/bootstrap.txt"
	echo "sender memory: node1's replicator RssAnon ${anon_before} kB before, peak $(cat "$DIR/anon_peak") kB during the bootstrap (sampled every 10 ms)"
	# CPU time of both replicators for the snapshot (node2's is new: all
	# of it), less sensitive than the wall time to other load.
	d1=$(($(cpu_ticks "$s1") - c1))
	d2=$(cpu_ticks "$(repl_pid 2)")
	hz=$(getconf CLK_TCK)
	echo "bootstrap cpu: sender (node1) $((d1 * 1000 / hz)) ms, receiver (node2) $((d2 * 1000 / hz)) ms"
	ready 2
}

run_cpu() {
	echo "== cpu ($N leases renewed every 5 s, ${SECONDS_CPU} s)"
	r1=$(repl_pid 1)
	r2=$(repl_pid 2)
	t1=$(cpu_ticks "$r1")
	t2=$(cpu_ticks "$r2")
	"$BENCH" repl renew --to "${PREFIX}1" -n "$N" --interval 5000 --seconds "$SECONDS_CPU"
	u1=$(cpu_ticks "$r1")
	u2=$(cpu_ticks "$r2")
	hz=$(getconf CLK_TCK)
	awk -v a=$((u1 - t1)) -v b=$((u2 - t2)) -v hz="$hz" -v s="$SECONDS_CPU" 'BEGIN {
		printf "replicator cpu: sender (node1) %.1f%% of one core, receiver (node2) %.1f%% of one core\n",
			100 * a / hz / s, 100 * b / hz / s }'
	grep -h 'lag\|applied its\|sent a' "$DIR"/node*/artemis.log | tail -4
}

run_converge() { # run_converge DIGEST_MS
	stop_cluster
	MAX_INSTANCES=400000 EXTRA_REGISTRY="lease_ttl_ms = 3600000" \
		EXTRA_CONF="$EXTRA_CONF${1:+
digest_interval_ms = $1}" start_cluster
	echo "== converge ($CONV_N instances, digest interval ${1:-10000} ms)"
	crc=0
	"$BENCH" repl converge --from "${PREFIX}1" --to "${PREFIX}2" -n "$CONV_N" --services 300 \
		--batch 500 --rate 6000 --settle 60 || crc=1
	grep -h 'anti-entropy\|removed' "$DIR/node2/artemis.log" | tail -3 || true
	stop_cluster
	return $crc
}

started=""
failed=0
for s in $SCENARIOS; do
	case $s in
	lag | bootstrap | cpu)
		[ -n "$started" ] || { start_cluster; started=1; }
		"run_$s"
		;;
	converge)
		[ -z "$started" ] || stop_cluster
		started=""
		run_converge "" || failed=1
		run_converge 2000 || failed=1
		;;
	*) echo "repl_bench.sh: unknown scenario $s (lag, bootstrap, cpu, converge)" >&2; exit 2 ;;
	esac
done
exit $failed
