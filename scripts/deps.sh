#!/bin/sh
# Install the Debian packages Artemis needs to build, test and benchmark.
# Idempotent and quick when nothing is missing: dpkg is asked first, apt-get
# runs only for what is absent.  Called by `make run`, `make test`, `make deps`.
#
#   scripts/deps.sh            build + test packages
#   scripts/deps.sh --bench    also the benchmark baselines (nginx, wrk, gnuplot)
set -eu

BUILD="gcc make pkg-config libevent-dev libmsgpack-dev libbsd-dev libck-dev
libjansson-dev zlib1g-dev libinih-dev libsodium-dev libxxhash-dev
libhttp-parser-dev nettle-dev libsqlite3-dev"
TEST="libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest
python3-websocket curl procps"
BENCH="nginx-light wrk gnuplot-nox"

want="$BUILD $TEST"
[ "${1:-}" = "--bench" ] && want="$want $BENCH"

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# An update is needed on a fresh machine (empty lists); retry once on failure.
$SUDO apt-get update -qq || $SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
