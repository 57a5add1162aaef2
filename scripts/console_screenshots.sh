#!/bin/sh
# Refresh the console's pictures in docs/console (docs/CONSOLE.md, README.md)
# from the last browser test run ($BUILD/console-test, `make browser-test`:
# every picture taken against a real node), made small with pngquant
# (256 colours).  `make console-screenshots`.
set -eu
BUILD=${BUILD:-build}
SRC=$BUILD/console-test
DST=docs/console
PICS="dashboard services instances instances-pulled-out cluster routing zones canary audit users login
xss-instances phone-services-dark"

command -v pngquant >/dev/null 2>&1 || { echo "no pngquant: scripts/deps.sh --docs installs it" >&2; exit 1; }
for p in $PICS; do
	[ -f "$SRC/$p.png" ] || { echo "$SRC/$p.png is missing: run make browser-test first" >&2; exit 1; }
done
mkdir -p "$DST"
for p in $PICS; do
	# Exit status 99: the picture would lose too much; keep it as it is.
	pngquant --quality=60-90 --speed 1 --strip --force --output "$DST/$p.png" "$SRC/$p.png" ||
		cp "$SRC/$p.png" "$DST/$p.png"
done
du -ch "$DST"/*.png | tail -1
