#!/bin/sh
# cluster.sh - run an N-node Artemis cluster on loopback (docs/CLUSTER.md).
#
#   scripts/cluster.sh start [N]    generate configs and start N nodes (default 3)
#   scripts/cluster.sh stop  [N]    stop them (artemis stop, i.e. SIGTERM)
#   scripts/cluster.sh status [N]   pid, /ready and the peers each node sees
#   scripts/cluster.sh logs [N]     the last LOG_LINES (20) lines of each node's
#                                   log, then follow them, each line prefixed
#                                   with its node (FOLLOW=no: print and exit)
#
# Node K (1..N) gets:  HTTP 127.0.0.1:$((HTTP_BASE+K)), replication
# 127.0.0.1:$((REPL_BASE+K)), shm region $SHM_PREFIX$K, and the
# directory $CLUSTER_DIR/nodeK with artemis.conf, data/ (pid file) and
# artemis.log.  Every other node is a peer.  Environment overrides:
#   ARTEMIS_BIN (build/artemis)  CLUSTER_DIR (./cluster)  HTTP_BASE (18080)
#   SHM_PREFIX (/artemis-cluster-node)  FRESH (set: start with --fresh)
#   MAX_INSTANCES (200000)
#   REPL_BASE (19090)  CLUSTER_KEY (local-cluster-key)  WORKERS (1)
#   EXTRA_CONF (lines appended to [cluster], e.g. "digest_interval_ms = 2000")
#   EXTRA_REGISTRY (lines appended to [registry], e.g. "lease_ttl_ms = 3600000")
set -eu

cmd=${1:-status}
N=${2:-3}
BIN=${ARTEMIS_BIN:-build/artemis}
DIR=${CLUSTER_DIR:-./cluster}
HTTP_BASE=${HTTP_BASE:-18080}
REPL_BASE=${REPL_BASE:-19090}
KEY=${CLUSTER_KEY:-local-cluster-key}
SHM_PREFIX=${SHM_PREFIX:-/artemis-cluster-node}
WORKERS=${WORKERS:-1}

case $N in ''|*[!0-9]*) echo "cluster.sh: N must be a number" >&2; exit 2 ;; esac
if [ "$N" -lt 1 ] || [ "$N" -gt 62 ]; then echo "cluster.sh: N must be 1..62" >&2; exit 2; fi

conf() { # conf K: write nodeK's configuration
	k=$1
	d="$DIR/node$k"
	mkdir -p "$d/data"
	{
		echo "[node]"
		echo "name = node$k"
		echo "region = us-east"
		echo "zone = zone-1"
		echo "listen = 127.0.0.1:$((HTTP_BASE + k))"
		echo "workers = $WORKERS"
		echo "data_dir = $d/data"
		echo
		echo "[registry]"
		echo "shm_name = $SHM_PREFIX$k"
		echo "max_instances = ${MAX_INSTANCES:-200000}"
		if [ -n "${EXTRA_REGISTRY:-}" ]; then printf '%s\n' "$EXTRA_REGISTRY"; fi
		echo
		echo "[log]"
		echo "file = $d/artemis.log"
		echo
		echo "[cluster]"
		echo "listen = 127.0.0.1:$((REPL_BASE + k))"
		echo "key = $KEY"
		j=1
		while [ "$j" -le "$N" ]; do
			if [ "$j" -ne "$k" ]; then
				echo "peer = node$j zone-1 http://127.0.0.1:$((HTTP_BASE + j)) 127.0.0.1:$((REPL_BASE + j))"
			fi
			j=$((j + 1))
		done
		if [ -n "${EXTRA_CONF:-}" ]; then printf '%s\n' "$EXTRA_CONF"; fi
	} >"$d/artemis.conf"
}

pid_of() { # pid_of K: the running master's pid, or nothing
	f="$DIR/node$1/data/artemis.pid"
	[ -f "$f" ] || return 0
	p=$(cat "$f" 2>/dev/null || true)
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo "$p"; fi
}

start() {
	[ -x "$BIN" ] || { echo "cluster.sh: $BIN is not built (make)" >&2; exit 1; }
	mkdir -p "$DIR"
	k=1
	while [ "$k" -le "$N" ]; do
		if [ -n "$(pid_of "$k")" ]; then
			echo "node$k: already running (pid $(pid_of "$k"))"
		else
			conf "$k"
			nohup "$BIN" server -c "$DIR/node$k/artemis.conf" ${FRESH:+--fresh} \
				>"$DIR/node$k/stdout.log" 2>&1 &
			echo "node$k: started on http://127.0.0.1:$((HTTP_BASE + k)) (replication $((REPL_BASE + k)))"
		fi
		k=$((k + 1))
	done
}

stop() {
	k=1
	while [ "$k" -le "$N" ]; do
		if [ -n "$(pid_of "$k")" ]; then
			"$BIN" stop -c "$DIR/node$k/artemis.conf" >/dev/null && echo "node$k: stopped"
		else
			echo "node$k: not running"
		fi
		k=$((k + 1))
	done
}

status() {
	k=1
	while [ "$k" -le "$N" ]; do
		p=$(pid_of "$k")
		if [ -z "$p" ]; then
			echo "node$k: not running"
		else
			url="http://127.0.0.1:$((HTTP_BASE + k))"
			ready=$(curl -s -o /dev/null -w '%{http_code}' "$url/ready" || true)
			peers=$(curl -s "$url/artemis/api/status/cluster.json" |
				tr '{' '\n' | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p' | tr '\n' ' ' || true)
			echo "node$k: pid $p, $url, /ready $ready, nodes: $peers"
		fi
		k=$((k + 1))
	done
}

logs() {
	lines=${LOG_LINES:-20}
	case $lines in '' | *[!0-9]*) echo "cluster.sh: LOG_LINES must be a number" >&2; exit 2 ;; esac
	k=1
	while [ "$k" -le "$N" ]; do
		d="$DIR/node$k"
		# what the process printed before its log file was open (e.g. a
		# configuration error) is in stdout.log
		if [ -s "$d/stdout.log" ]; then
			tail -n "$lines" "$d/stdout.log" | sed "s/^/node$k | /"
		fi
		if [ ! -f "$d/artemis.log" ]; then
			echo "node$k | no log: $d/artemis.log (cluster.sh start $N?)"
		elif [ "${FOLLOW:-yes}" = no ]; then
			tail -n "$lines" "$d/artemis.log" | sed "s/^/node$k | /"
		else
			tail -n "$lines" -F "$d/artemis.log" 2>/dev/null | sed -u "s/^/node$k | /" &
		fi
		k=$((k + 1))
	done
	wait
}

case $cmd in
start) start ;;
stop) stop ;;
status) status ;;
logs) logs ;;
*) echo "usage: cluster.sh start|stop|status|logs [N]" >&2; exit 2 ;;
esac
