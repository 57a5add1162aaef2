#!/bin/sh
# compare_builds.sh - registry and discovery rates of two builds of artemis
# on the same machine, interleaved (docs/BENCHMARKS.md, "Access control and
# TLS": was a change free for the registry's hot paths?).
#
#   sh bench/compare_builds.sh OLD/artemis NEW/artemis [ROUNDS] [SECONDS]   (4, 5)
#
# Per round, for each build (their order swapped every round): a fresh node
# with one worker on CPU 1, 10,000 instances over 100 services, then
# artemis-bench heartbeat and lookup (32 connections) on CPU 0.  Prints
# requests/s and the worker's CPU time per request (utime + stime).
set -eu
OLD=$1
NEW=$2
ROUNDS=${3:-4}
SECONDS_EACH=${4:-5}
B=$(dirname "$NEW")/artemis-bench
D=$(mktemp -d /tmp/artemis-compare-XXXXXX)
trap 'kill "$(cat "$D/artemis.pid" 2>/dev/null)" 2>/dev/null || true; sleep 1; rm -rf "$D" /dev/shm/artemis-compare-$$' EXIT
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
measure() { # mode
	c0=$(awk '{print $14 + $15}' "/proc/$W/stat")
	r=$(taskset -c 0 "$B" "$1" -t "127.0.0.1:$P" -n 10000 -s 100 --no-setup --prefix r -c 32 \
		-d "$SECONDS_EACH" --json | python3 -c \
		'import json,sys; d=json.loads(sys.stdin.read()); print(d["rps"], d["errors"])')
	c1=$(awk '{print $14 + $15}' "/proc/$W/stat")
	echo "$1 $r $c0 $c1 $SECONDS_EACH" | awk '{printf "  %s %7.0f/s %.2f us/request (errors %s)", $1, $2, ($5 - $4) * 10000 / ($2 * $6), $3}'
}
round=1
while [ "$round" -le "$ROUNDS" ]; do
	order="old new"
	[ $((round % 2)) -eq 0 ] && order="new old"
	for which in $order; do
		if [ "$which" = old ]; then bin=$OLD; else bin=$NEW; fi
		rm -rf "$D/data"
		mkdir -p "$D/data"
		printf '[node]\nlisten = 127.0.0.1:%s\nworkers = 1\ndata_dir = %s/data\n[registry]\nshm_name = /artemis-compare-%s\nmax_instances = 100000\n[log]\nfile = %s/data/log\n' \
			"$P" "$D" "$$" "$D" >"$D/artemis.conf"
		taskset -c 1 "$bin" server -c "$D/artemis.conf" --fresh >/dev/null 2>&1 &
		sleep 2
		cp "$D/data/artemis.pid" "$D/artemis.pid"
		W=$(pgrep -P "$(cat "$D/artemis.pid")" -f "worker 1")
		taskset -c 0 "$B" register -t "127.0.0.1:$P" -n 10000 -s 100 -d 2 --prefix r >/dev/null 2>&1
		printf "round %s %-3s" "$round" "$which"
		measure heartbeat
		measure lookup
		echo
		kill "$(cat "$D/artemis.pid")"
		sleep 1
	done
	round=$((round + 1))
done
