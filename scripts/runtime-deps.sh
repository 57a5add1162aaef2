#!/bin/sh
# runtime-deps.sh BINARY... - the Debian packages that provide the shared
# libraries the binaries load, one per line: what a runtime image must
# install (the Dockerfile's runtime stage).  Fails when a library belongs to
# no package, so a library built by hand never slips into an image unnoticed.
set -eu
[ $# -gt 0 ] || { echo "usage: runtime-deps.sh BINARY..." >&2; exit 2; }

owner() { # owner LIB: the package shipping LIB under any of its usrmerge names
	for p in "$1" "/usr$1" "${1#/usr}" "$(readlink -f "$1")"; do
		dpkg-query -S "$p" 2>/dev/null | sed -n '1s/:.*//p' | grep . && return 0
	done
	echo "runtime-deps.sh: no Debian package ships $1" >&2
	return 1
}

libs=$(for b in "$@"; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
pkgs=""
for lib in $libs; do
	pkg=$(owner "$lib") || exit 1
	pkgs="$pkgs$pkg
"
done
printf '%s' "$pkgs" | sort -u
