#!/bin/sh
# deb.sh - `make deb`: build the Debian package (debian/) into $BUILD/deb.
#
# The tree is copied to $BUILD/deb/src first -- what git tracks plus new
# files it does not ignore, so no build output goes in -- and
# dpkg-buildpackage runs in the copy, leaving artemis_<version>_<arch>.deb
# (and its .buildinfo, .changes, -dbgsym) in $BUILD/deb.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
out=$BUILD/deb
rm -rf "$out"
mkdir -p "$out/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# shellcheck disable=SC2016
	git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done; exit 0' sh |
		tar --null -T - -cf - | tar -xf - -C "$out/src"
else
	tar --exclude="./$BUILD" -cf - . | tar -xf - -C "$out/src"
fi
(cd "$out/src" && dpkg-buildpackage -us -uc -b -Jauto)
ls "$out"/artemis_*.deb
