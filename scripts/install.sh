#!/bin/sh
# install.sh - the node's part of `make install` (the Makefile passes
# DESTDIR, PREFIX, SYSCONFDIR, BUILD, DATA_DIR and LOG_FILE):
#
#   $PREFIX/bin/artemis, artemis-bench   the binaries from $BUILD
#   $SYSCONFDIR/artemis/artemis.conf     conf/artemis.conf, never over an
#                                        existing file; DATA_DIR and LOG_FILE,
#                                        when set, become its [node] data_dir
#                                        and [log] file
#   $PREFIX/share/man/manN/              man/*.N, when man/ exists
#   $PREFIX/share/artemis/console/       console/, when it exists
set -eu
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
BUILD=${BUILD:-build}
DESTDIR=${DESTDIR:-}
DATA_DIR=${DATA_DIR:-}
LOG_FILE=${LOG_FILE:-}
share=$DESTDIR$PREFIX/share

die() { echo "install: $*" >&2; exit 1; }

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$SYSCONFDIR/artemis"
install -m 0755 "$BUILD/artemis" "$BUILD/artemis-bench" "$DESTDIR$PREFIX/bin/"

conf=$DESTDIR$SYSCONFDIR/artemis/artemis.conf
if [ -e "$conf" ]; then
	echo "install: keeping the existing $conf"
else
	case "$DATA_DIR$LOG_FILE" in *'|'* | *';'*) die "DATA_DIR and LOG_FILE may not hold '|' or ';'" ;; esac
	tmp=$(mktemp)
	trap 'rm -f "$tmp"' EXIT
	sed -e "${DATA_DIR:+s|^data_dir =[^;]*;|data_dir = $DATA_DIR ;|}" \
	    -e "${LOG_FILE:+s|^file =[^;]*;|file = $LOG_FILE ;|}" conf/artemis.conf >"$tmp"
	[ -z "$DATA_DIR" ] || grep -qF "data_dir = $DATA_DIR ;" "$tmp" ||
		die "conf/artemis.conf has no 'data_dir = ... ;' line to set"
	[ -z "$LOG_FILE" ] || grep -qF "file = $LOG_FILE ;" "$tmp" ||
		die "conf/artemis.conf has no 'file = ... ;' line to set"
	install -m 0644 "$tmp" "$conf"
fi

if [ -d man ]; then
	for f in man/*.[1-8]; do
		[ -e "$f" ] || continue
		install -d "$share/man/man${f##*.}"
		install -m 0644 "$f" "$share/man/man${f##*.}/"
	done
fi

if [ -d console ]; then
	(cd console && find . -type f) | while IFS= read -r f; do
		install -D -m 0644 "console/$f" "$share/artemis/console/$f"
	done
fi
