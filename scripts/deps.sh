#!/bin/sh
# Install the Debian packages Artemis needs to build, test and benchmark.
# Idempotent and quick when nothing is missing: dpkg is asked first, apt-get
# runs only for what is absent.  Called by `make run`, `make test`, `make deps`.
#
#   scripts/deps.sh            build + test packages
#   scripts/deps.sh --bench    also the benchmark baselines (nginx, wrk, gnuplot)
#   scripts/deps.sh --browser  also what the console's browser tests need:
#                              Debian's chromium, and npm when there is none.
#                              A failure here is not fatal: the browser tests
#                              then say they are skipped and why.
#   scripts/deps.sh --deb      also what `make deb` and `make test-deb` need
#                              (debhelper, debootstrap; ccache keeps the
#                              package test's compilations)
#   scripts/deps.sh --docs     also pngquant, which makes the console's pictures
#                              in docs/ small (make console-screenshots)
#   scripts/deps.sh --build    only what building needs (the container's build stage)
set -eu

BUILD="gcc make pkg-config libevent-dev libmsgpack-dev libbsd-dev libck-dev
libjansson-dev zlib1g-dev libinih-dev libsodium-dev libxxhash-dev
libhttp-parser-dev nettle-dev libsqlite3-dev libssl-dev"
TEST="libcmocka-dev clang libclang-rt-14-dev clang-tidy clang-format cppcheck python3 python3-pytest
python3-websocket python3-yaml curl procps systemd valgrind"
BENCH="nginx-light wrk gnuplot-nox"
DEB="debhelper dpkg-dev debootstrap ccache"

want="$BUILD $TEST"
browser=0
case "${1:-}" in
--bench) want="$want $BENCH" ;;
--browser) browser=1 ;;
--deb) want="$want $DEB" ;;
--docs) want="$want pngquant" ;;
--build) want="$BUILD" ;;
esac

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
updated=0

not_installed() {
	out=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || out="$out $p"
	done
	echo "$out"
}

apt_install() {
	# An update is needed on a fresh machine (empty lists); retry once.
	if [ "$updated" -eq 0 ]; then
		$SUDO apt-get update -qq || $SUDO apt-get update -qq || return 1
		updated=1
	fi
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $*
}

# shellcheck disable=SC2086
missing=$(not_installed $want)
if [ -n "$missing" ]; then
	echo "deps: installing:$missing" >&2
	apt_install $missing
fi

[ "$browser" -eq 1 ] || exit 0
extra=""
[ -x /usr/bin/chromium ] || extra="chromium"
command -v npm >/dev/null 2>&1 || extra="$extra npm"
[ -z "$extra" ] && exit 0
echo "deps: installing for the browser tests:$extra" >&2
if ! apt_install $extra; then
	echo "deps: WARNING: could not install$extra: the console's browser tests will be skipped" >&2
fi
exit 0
