#!/bin/sh
# tls_bench.sh - heartbeats on keep-alive connections over plain HTTP and over
# HTTPS to the same node (docs/BENCHMARKS.md, "Access control and TLS").
#
#   sh bench/tls_bench.sh [BUILD] [ROUNDS] [SECONDS]     (build, 4, 5)
#
# One node with one worker on CPU 1 ([node] listen plain, [http] tls_listen
# TLS with a throw-away self-signed certificate), the load generator on
# CPU 0 (artemis-bench heartbeat, 32 connections, 10,000 instances);
# plain and TLS runs alternate, their order swapped every round.  Prints
# requests/s and the worker's CPU time per request (utime + stime from
# /proc), the figure least disturbed by other work on the machine.
set -eu
BUILD=${1:-build}
ROUNDS=${2:-4}
SECONDS_EACH=${3:-5}
B=$BUILD/artemis-bench
D=$(mktemp -d /tmp/artemis-tls-bench-XXXXXX)
trap 'kill "$(cat "$D/artemis.pid" 2>/dev/null)" 2>/dev/null || true; sleep 1; rm -rf "$D" /dev/shm/artemis-tls-bench-$$' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$D/key.pem" -out "$D/cert.pem" -subj /CN=bench 2>/dev/null
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port)
T=$(port)
cat >"$D/artemis.conf" <<CONF
[node]
listen = 127.0.0.1:$P
workers = 1
data_dir = $D
[registry]
shm_name = /artemis-tls-bench-$$
max_instances = 100000
[http]
tls_cert = $D/cert.pem
tls_key = $D/key.pem
tls_listen = 127.0.0.1:$T
[log]
file = $D/artemis.log
CONF
taskset -c 1 "$BUILD/artemis" server -c "$D/artemis.conf" --fresh >/dev/null 2>&1 &
sleep 2
W=$(pgrep -P "$(cat "$D/artemis.pid")" -f "worker 1")
cpu() { awk '{print $14 + $15}' "/proc/$W/stat"; }
taskset -c 0 "$B" register -t "127.0.0.1:$P" -n 10000 -s 100 -d 2 --prefix t >/dev/null 2>&1
round=1
while [ "$round" -le "$ROUNDS" ]; do
	order="plain tls"
	[ $((round % 2)) -eq 0 ] && order="tls plain"
	for which in $order; do
		if [ "$which" = plain ]; then t=127.0.0.1:$P; else t=https://127.0.0.1:$T; fi
		c0=$(cpu)
		r=$(taskset -c 0 "$B" heartbeat -t "$t" -n 10000 -s 100 --no-setup --prefix t -c 32 \
			-d "$SECONDS_EACH" --json | python3 -c \
			'import json,sys; d=json.loads(sys.stdin.read()); print(d["rps"], d["errors"])')
		c1=$(cpu)
		echo "$round $which $r $c0 $c1 $SECONDS_EACH" | awk '{printf "round %s %-5s %8.0f req/s  errors %s  worker CPU %.2f us/request\n", $1, $2, $3, $4, ($6 - $5) * 10000 / ($3 * $7)}'
	done
	round=$((round + 1))
done
