#!/bin/sh
# Run the web console's browser tests (tests/browser/console.test.mjs):
# playwright-core driving Debian's chromium against a real node.  Called by
# `make browser-test`, part of `make test`.
#
# playwright-core comes from npm into tests/browser/node_modules (not
# committed; `npm ci` from the lock file).  Without chromium, node 20+, npm
# or the package the tests are skipped, and this says so: never silently.
# Screenshots of every page go to $BUILD/console-test.  With --bench it runs
# the console benchmark (tests/browser/bench.mjs) instead.
set -u
BUILD=${BUILD:-build}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
DIR=tests/browser
ROOT=$(pwd)

skip() {
	echo "SKIPPED: console browser tests: $*"
	exit 0
}

[ -x "$CHROMIUM" ] || skip "no chromium at $CHROMIUM (scripts/deps.sh --browser installs Debian's)"
command -v node >/dev/null 2>&1 || skip "no node on PATH"
command -v npm >/dev/null 2>&1 || skip "no npm on PATH"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
	skip "node $(node --version) is older than 20, which playwright-core needs"
if [ ! -f "$DIR/node_modules/playwright-core/package.json" ] ||
	[ "$DIR/package-lock.json" -nt "$DIR/node_modules/.package-lock.json" ]; then
	(cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error) ||
		skip "npm could not install playwright-core"
fi
mkdir -p "$BUILD/console-test"
if [ "${1:-}" = "--bench" ]; then
	cd "$DIR" && exec env ARTEMIS_BIN="$ROOT/$BUILD/artemis" CHROMIUM="$CHROMIUM" node bench.mjs
fi
rm -f "$BUILD"/console-test/*.png # this run's pictures only
cd "$DIR" && ARTEMIS_BIN="$ROOT/$BUILD/artemis" CHROMIUM="$CHROMIUM" CONSOLE_OUT="$ROOT/$BUILD/console-test" \
	node --test --test-concurrency=1 --test-reporter=spec console.test.mjs
