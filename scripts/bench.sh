#!/bin/sh
# bench.sh - the standard benchmark suite of Artemis in C (`make bench`).
#
# Starts fresh nodes (127.0.0.1, free ports, their own shm region and data
# dir) and nginx as the baseline serving the same bytes, drives them with
# build/artemis-bench, and regenerates the part of docs/BENCHMARKS.md
# between its markers (other sections are kept), plus docs/bench-latency.png.
#
# Placement: with 2+ CPUs every server (artemis node and nginx, one worker
# each) runs on CPU $SERVER_CPU and the load generator on CPU $CLIENT_CPU
# (taskset), so that a server's figure is what one core serves.
#
# Environment:
#   BUILD=build          where artemis and artemis-bench are
#   BENCH_SECONDS=10     duration of each throughput run
#   BENCH_SOAK=60        duration of the mixed soak
#   BENCH_MILLION=1      0 skips the 1,000,000-instance run
#   BENCH_OUT=docs/BENCHMARKS.md
#   BENCH_KEEP=0         1 keeps the work directory (logs, raw results)
#   BENCH_NICE=0         run servers and load generator at this nice value
#                        (e.g. -10 on a machine shared with other work, so
#                        that background jobs disturb the figures less)
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
ART="$ROOT/$BUILD/artemis"
BENCH="$ROOT/$BUILD/artemis-bench"
SECS=${BENCH_SECONDS:-10}
SOAK=${BENCH_SOAK:-60}
MILLION=${BENCH_MILLION:-1}
OUT=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
PNG="$(dirname "$OUT")/bench-latency.png"
WORK=$(mktemp -d /tmp/artemis-bench.XXXXXX)
chmod 755 "$WORK" # nginx's workers (not root) read the static lookup answer
RESULTS="$WORK/results.jsonl"
TAG="b$$"
: >"$RESULTS"

for bin in "$ART" "$BENCH"; do
	[ -x "$bin" ] || { echo "bench.sh: $bin missing (make BUILD=$BUILD)" >&2; exit 1; }
done
for tool in nginx curl python3; do
	command -v "$tool" >/dev/null 2>&1 ||
		[ -x "/usr/sbin/$tool" ] || { echo "bench.sh: $tool missing (scripts/deps.sh --bench)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

NICE=${BENCH_NICE:-0}
if [ "$(nproc)" -ge 2 ]; then
	SERVER_CPU=${SERVER_CPU:-1}
	CLIENT_CPU=${CLIENT_CPU:-0}
	ON_SERVER="taskset -c $SERVER_CPU"
	ON_CLIENT="taskset -c $CLIENT_CPU"
	PLACEMENT="servers pinned to CPU $SERVER_CPU (one worker), load generator to CPU $CLIENT_CPU"
else
	ON_SERVER=""
	ON_CLIENT=""
	PLACEMENT="one CPU: servers and load generator share it"
fi
if [ "$NICE" != 0 ]; then
	ON_SERVER="nice -n $NICE $ON_SERVER"
	ON_CLIENT="nice -n $NICE $ON_CLIENT"
	PLACEMENT="$PLACEMENT, both at nice $NICE (BENCH_NICE)"
fi

log() { printf 'bench.sh: %s\n' "$*" >&2; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # URL what
	i=0
	until curl -fs -o /dev/null "$1"; do
		i=$((i + 1))
		[ $i -le 200 ] || { log "$2 did not answer $1"; return 1; }
		sleep 0.05
	done
}

# ------------------------------------------------------------- nodes ----

NODES=""
node_start() { # NAME -> sets PORT_<NAME>, SHM_<NAME>, PID_<NAME>
	n=$1
	port=$(free_port)
	cport=$(free_port)
	shm="/artemis-bench-$$-$n"
	mkdir -p "$WORK/data-$n"
	cat >"$WORK/$n.conf" <<CONF
[node]
name = bench-$$-$n
listen = 127.0.0.1:$port
workers = 1
data_dir = $WORK/data-$n
[registry]
shm_name = $shm
max_instances = 1100000
[cluster]
listen = 127.0.0.1:$cport
[log]
file = $WORK/artemis-$n.log
level = warn
CONF
	$ON_SERVER "$ART" server -c "$WORK/$n.conf" --fresh >"$WORK/artemis-$n.out" 2>&1 &
	wait_http "http://127.0.0.1:$port/ready" "artemis node $n"
	eval "PORT_$n=$port SHM_$n=$shm PID_$n=\$(cat \"$WORK/data-$n/artemis.pid\")"
	NODES="$NODES $n"
	log "node $n: 127.0.0.1:$port, region $shm"
}

node_stop() { # NAME
	eval "pid=\${PID_$1:-} shm=\${SHM_$1:-}"
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	rm -f "/dev/shm/${shm#/}"
	eval "PID_$1="
}

NGINX_PID=""
nginx_start() {
	NGX_PORT=$(free_port)
	mkdir -p "$WORK/nginx/www/artemis/api/discovery" "$WORK/nginx/tmp"
	cat >"$WORK/nginx/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
	include /etc/nginx/mime.types;
	access_log off;
	sendfile on;
	tcp_nopush on;
	open_file_cache max=64 inactive=60s;
	keepalive_requests 100000000;
	keepalive_timeout 65;
	client_body_temp_path $WORK/nginx/tmp;
	proxy_temp_path $WORK/nginx/tmp;
	fastcgi_temp_path $WORK/nginx/tmp;
	uwsgi_temp_path $WORK/nginx/tmp;
	scgi_temp_path $WORK/nginx/tmp;
	server {
		listen 127.0.0.1:$NGX_PORT;
		# the same bytes as Artemis answers a successful heartbeat
		location = /artemis/api/registry/heartbeat.json {
			default_type "application/json;charset=UTF-8";
			return 200 '$HB_RESPONSE';
		}
		# the same bytes as Artemis answers the lookup of one 20-instance
		# service, as a static file; the static module refuses POST (405),
		# so the error page re-serves the file as GET, answering 200
		location = /artemis/api/discovery/lookup.json {
			root $WORK/nginx/www;
			error_page 405 =200 \$uri;
		}
		location = /health { return 200 'ok'; }
	}
}
CONF
	$ON_SERVER "$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" >"$WORK/nginx/out" 2>&1 &
	NGINX_PID=$!
	wait_http "http://127.0.0.1:$NGX_PORT/health" nginx
	log "nginx: 127.0.0.1:$NGX_PORT"
}

cleanup() {
	for n in $NODES; do node_stop "$n"; done
	if [ -n "$NGINX_PID" ]; then
		kill -TERM "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
	fi
	if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --------------------------------------------------------------- runs ----

# run LABEL WHAT COMMAND...: run a load-generator command that prints one
# JSON line; record it with its label and command line.
run() {
	label=$1
	what=$2
	shift 2
	log "$label: $*"
	cpu_before=$(cpu_ticks)
	srv_before=$(tree_ticks "${SRV:-0}")
	if "$@" --json --label "$label" --percentiles "$WORK/pct-$label.dat" \
		>"$WORK/$label.json" 2>"$WORK/$label.err"; then
		status=ok
	else
		status=failed
		tail -3 "$WORK/$label.err" >&2 || true
	fi
	cpu_after=$(cpu_ticks)
	srv_after=$(tree_ticks "${SRV:-0}")
	python3 - "$label" "$what" "$status" "$WORK/$label.json" "$WORK/$label.err" "$*" \
		"$cpu_before" "$cpu_after" "$srv_before" "$srv_after" >>"$RESULTS" <<'PY'
import json, os, sys
label, what, status, path, errpath, cmd, before, after, sb, sa = sys.argv[1:]
try:
    line = open(path).read().strip().splitlines()[-1]
    res = json.loads(line)
except (IndexError, ValueError, OSError):
    res = None
errtext = open(errpath).read()
err = errtext[-2000:]
windows = [l.strip() for l in errtext.splitlines() if l.startswith("  t=")]
# Busy share of the server CPU during the run (1 - idle - iowait), and the
# CPU time the server's own processes used (utime + stime).
b, a = [int(x) for x in before.split()], [int(x) for x in after.split()]
d = [y - x for x, y in zip(b, a)]
busy = 1.0 - (d[3] + d[4]) / sum(d) if sum(d) else None
wall = sum(d) / os.sysconf("SC_CLK_TCK") if sum(d) else None
sb, sa = [int(x) for x in sb.split()], [int(x) for x in sa.split()]
srv_s = (sa[0] - sb[0]) / os.sysconf("SC_CLK_TCK")
srv_wait = (sa[1] - sb[1]) / 1e9
print(json.dumps({"label": label, "what": what, "status": status, "cmd": cmd, "result": res,
                  "stderr": err, "server_cpu_busy": busy, "server_cpu_s": srv_s,
                  "server_share": srv_s / wall if wall else None,
                  "server_runq_wait_s": srv_wait, "windows": windows}))
PY
}

# utime + stime (clock ticks) of a process and its children, and the
# nanoseconds they were runnable but waiting for a CPU (schedstat); "0 0"
# for none.
tree_ticks() {
	[ "$1" != 0 ] || { echo "0 0"; return; }
	python3 - "$1" <<'PY'
import os, sys
root, total, wait = int(sys.argv[1]), 0, 0
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        f = open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()
        if int(d) != root and int(f[1]) != root:
            continue
        total += int(f[11]) + int(f[12])
        wait += int(open("/proc/%s/schedstat" % d).read().split()[1])
    except (OSError, IndexError, ValueError):
        continue
print(total, wait)
PY
}

# The jiffies of the server CPU (or of all CPUs without pinning), as
# user nice system idle iowait irq softirq steal.
cpu_ticks() {
	awk -v c="cpu${SERVER_CPU:-}" '$1 == c {print $2, $3, $4, $5, $6, $7, $8, $9; exit}' /proc/stat
}

# note LABEL WHAT JSON CMD: record a measurement made otherwise.
note() {
	python3 -c 'import json,sys; print(json.dumps({"label":sys.argv[1],"what":sys.argv[2],"status":"ok","result":json.loads(sys.argv[3]),"cmd":sys.argv[4]}))' \
		"$1" "$2" "$3" "$4" >>"$RESULTS"
}

memory() { # LABEL WHAT NODE
	eval "pid=\$PID_$3 shm=\$SHM_$3"
	m=$(python3 "$ROOT/scripts/bench_mem.py" "$pid" "$shm")
	note "$1" "$2" "$m" "python3 scripts/bench_mem.py <master pid> $shm"
	log "$1: $(echo "$m" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["total_mb"], "MB")')"
}

B="$ON_CLIENT $BENCH"
HB_RESPONSE='{"failedInstances":null,"responseStatus":{"errorCode":"success","message":"","status":"success"}}'

log "work directory $WORK; $PLACEMENT"
uptime_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Node A: heartbeat, register, lookup, push.
node_start A
TA="127.0.0.1:$PORT_A"

# The bytes nginx serves: Artemis's own answers to the same requests.
hb=$(curl -s -X POST -H 'Content-Type: application/json' \
	-d '{"instances":[{"regionId":"us-east","zoneId":"zone-1","serviceId":"x","instanceId":"x","url":"http://x"}]}' \
	"http://$TA/artemis/api/registry/heartbeat.json")
$B register -t "$TA" -n 20000 -s 1000 -b 100 -c 4 --prefix "${TAG}lk" >/dev/null 2>&1
case "$hb" in *data-not-found*) ;; *) log "unexpected heartbeat answer: $hb"; exit 1 ;; esac
LOOKUP_BODY="{\"regionId\":\"us-east\",\"zoneId\":\"zone-1\",\"discoveryConfigs\":[{\"serviceId\":\"${TAG}lk-svc-0\",\"regionId\":\"us-east\",\"zoneId\":\"zone-1\"}]}"
lookup_answer() {
	curl -s -X POST -H 'Content-Type: application/json' -d "$LOOKUP_BODY" \
		"http://$TA/artemis/api/discovery/lookup.json"
}
mkdir -p "$WORK/nginx/www/artemis/api/discovery"
lookup_answer >"$WORK/nginx/www/artemis/api/discovery/lookup.json"
LOOKUP_BYTES=$(wc -c <"$WORK/nginx/www/artemis/api/discovery/lookup.json")
nginx_start
TN="127.0.0.1:$NGX_PORT"

SRV=$NGINX_PID
run hb1-nginx "heartbeat, 1 instance/request: nginx return 200 (same response bytes)" \
	$B heartbeat -t "$TN" --no-setup -n 10000 -c 64 -d "$SECS" --prefix "${TAG}hb"
SRV=$PID_A
run hb1-artemis "heartbeat, 1 instance/request" \
	$B heartbeat -t "$TA" -n 10000 -c 64 -d "$SECS" --prefix "${TAG}hb"
run register1-artemis "register, 1 instance/request, unique ids" \
	$B register -t "$TA" -n 300000 -s 10000 -c 64 -d "$SECS" --prefix "${TAG}rg"
SRV=$NGINX_PID
run lookup-nginx "lookup of a 20-instance service: nginx static file ($LOOKUP_BYTES B)" \
	$B lookup -t "$TN" --no-setup -n 20000 -s 1000 -c 64 -d "$SECS" --prefix "${TAG}lk"
SRV=$PID_A
run lookup-artemis "lookup of a 20-instance service ($LOOKUP_BYTES B)" \
	$B lookup -t "$TA" --no-setup -n 20000 -s 1000 -c 64 -d "$SECS" --prefix "${TAG}lk"
# Artemis's rate limiter counts a worker's registry requests over a sliding
# 10 s window (worker/api.c): the two heartbeat runs are kept apart by the
# register and lookup runs so that one does not eat the other's allowance.
run hb100-artemis "heartbeat, 100 instances/request" \
	$B heartbeat -t "$TA" -n 100000 -b 100 -c 16 -d "$SECS" --prefix "${TAG}hc"
run ws-push "WebSocket push: 100 subscribers, 200 registers/s" \
	$B ws-subscribe -t "$TA" --subscribers 100 -s 10 --rate 200 -d "$SECS" --prefix "${TAG}ws"

# Cross-check with wrk (one fixed request, Lua script), both sides alike.
if command -v wrk >/dev/null 2>&1; then
	cat >"$WORK/hb.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"instances":[{"regionId":"us-east","zoneId":"zone-1","serviceId":"${TAG}hb-svc-0","instanceId":"${TAG}hb-0","url":"http://10.0.0.0:8080"}]}'
LUA
	cat >"$WORK/lookup.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$LOOKUP_BODY'
LUA
	for side in nginx artemis; do
		if [ $side = nginx ]; then t=$TN; else t=$TA; fi
		for what in hb lookup; do
			if [ $what = hb ]; then p=/artemis/api/registry/heartbeat.json; else p=/artemis/api/discovery/lookup.json; fi
			cmd="$ON_CLIENT wrk -t1 -c64 -d${SECS}s -s $WORK/$what.lua http://$t$p"
			log "wrk-$what-$side: $cmd"
			out=$($cmd 2>&1 || true)
			rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
			non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
			note "wrk-$what-$side" "wrk cross-check: $what on $side" \
				"{\"rps\": ${rps:-0}, \"non_2xx\": ${non2xx:-0}}" "$cmd"
		done
	done
fi
node_stop A

# Node B: 100,000 instances with 200 B of metadata: memory, then the soak.
node_start B
TB="127.0.0.1:$PORT_B"
SRV=$PID_B
run setup-100k "register 100,000 instances, 200 B metadata, 100/request" \
	$B register -t "$TB" -n 100000 -s 5000 -m 200 -b 100 -c 8 --prefix "${TAG}mx"
memory mem-100k "memory, 100,000 instances with 200 B metadata" B
run soak "mixed soak: 100,000 instances heartbeating every 5 s, 1%/min churn, 1000 lookups/s" \
	$B soak -t "$TB" --no-setup -n 100000 -s 5000 -m 200 -d "$SOAK" --prefix "${TAG}mx"
memory mem-100k-after-soak "memory after the soak" B
node_stop B

# Node C: a million instances.
if [ "$MILLION" = 1 ]; then
	node_start C
	TC="127.0.0.1:$PORT_C"
	SRV=$PID_C
	run setup-1m "register 1,000,000 instances, 200 B metadata, 100/request" \
		$B register -t "$TC" -n 1000000 -s 50000 -m 200 -b 100 -c 8 --timeout 30 --prefix "${TAG}m"
	memory mem-1m "memory, 1,000,000 instances with 200 B metadata" C
	# every instance renewed once per 15 s (within the 20 s lease), oldest first
	run hb100-1m "keep 1,000,000 instances alive: each renewed every 15 s, 100/request" \
		$B heartbeat -t "$TC" --no-setup -n 1000000 -s 50000 -b 100 -c 16 --interval 15000 \
		-d 20 --prefix "${TAG}m"
	run lookup-1m "lookup at 1,000,000 instances (20/service)" \
		$B lookup -t "$TC" --no-setup -n 1000000 -s 50000 -c 64 -d "$SECS" --prefix "${TAG}m"
	node_stop C
fi

# The registry in-process (the shm mode; no HTTP, no server).
log "shm: $ON_CLIENT $BENCH shm --json"
$ON_CLIENT "$BENCH" shm --json >"$WORK/shm.jsonl" 2>"$WORK/shm.err" || tail -3 "$WORK/shm.err" >&2
python3 - "$WORK/shm.jsonl" "$ON_CLIENT $BENCH shm --json" >>"$RESULTS" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        rows.append(json.loads(line))
    except ValueError:
        pass
print(json.dumps({"label": "shm", "what": "registry in-process (artemis-bench shm)",
                  "status": "ok" if rows else "failed", "cmd": sys.argv[2], "result": rows}))
PY

ETCD=""
if command -v etcd >/dev/null 2>&1; then
	ETCD="etcd is installed ($(etcd --version 2>/dev/null | head -1)); its HTTP gateway with leases is the peer baseline to add here."
fi

uptime_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$ROOT/scripts/bench_report.py" --results "$RESULTS" --out "$OUT" --png "$PNG" \
	--work "$WORK" --placement "$PLACEMENT" --load-before "$uptime_before" \
	--load-after "$uptime_after" --etcd "$ETCD" --seconds "$SECS" --soak "$SOAK"
log "wrote $OUT and $PNG"
