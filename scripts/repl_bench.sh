#!/bin/sh
# repl_bench.sh - the replication benchmarks of docs/BENCHMARKS.md
# ("Replication"), on a two-node cluster on loopback (scripts/cluster.sh).
#
#   scripts/repl_bench.sh [BUILD_DIR]     (default: build)
#
# 1. lag:       1,000 registrations into node1's region, each timed until
#               node2's region holds it (p50/p99/max).
# 2. bootstrap: node1 holds 100,000 instances more; node2 is stopped, its
#               region removed, and started again: time until it is up and
#               holds them all, and the peak anonymous memory of node1's
#               replicator (the sender) meanwhile.
# 3. cpu:       100,000 leases on node1 renewed every 5 s for 30 s; CPU time
#               of both replicators (node1 sends, node2 applies) over it.
# Everything runs on this machine; the cluster is stopped at the end.
set -eu

B=${1:-build}
BIN=$B/artemis
BENCH=$B/artemis-bench
N=${REPL_BENCH_N:-100000}
SECONDS_CPU=${REPL_BENCH_SECONDS:-30}
DIR=$(mktemp -d /tmp/artemis-repl-bench.XXXXXX)
PREFIX=/artemis-rbench-$$-node
export ARTEMIS_BIN=$BIN CLUSTER_DIR=$DIR SHM_PREFIX=$PREFIX FRESH=1 WORKERS=1
export HTTP_BASE=${HTTP_BASE:-28080} REPL_BASE=${REPL_BASE:-29090}
export MAX_INSTANCES=$((N + 50000))
export EXTRA_CONF="bootstrap_timeout_ms = 1000"

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

echo "== cluster: 2 nodes, 1 worker each, $DIR"
sh scripts/cluster.sh start 2
ready 1
ready 2

echo "== lag"
"$BENCH" repl lag --from "${PREFIX}1" --to "${PREFIX}2" -n 1000

echo "== bootstrap ($N instances)"
"$BENCH" repl fill --to "${PREFIX}1" -n "$N" --services 100
"$BIN" stop -c "$DIR/node2/artemis.conf" >/dev/null
while [ -f "$DIR/node2/data/artemis.pid" ] && kill -0 "$(cat "$DIR/node2/data/artemis.pid")" 2>/dev/null; do sleep 0.1; done
rm -f "/dev/shm/${PREFIX#/}2"
# The sender's memory during the snapshot: RssAnon of node1's replicator,
# sampled every 10 ms until the bootstrap is done.
s1=$(repl_pid 1)
anon_before=$(anon_kb "$s1")
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
ready 2

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
