#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/dist.sh OUTDIR
#
# Makes OUTDIR/sheafmod-<version>/, the module's DKMS source tree: what the
# Debian package installs as /usr/src/sheafmod-<version> and what
# "dkms add" takes.  It holds sheafmod alone (the Kbuild file builds the
# companion modules only where they are present), its public headers and
# sheafmod.mk for consumers.  Prints the tree's path.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

# Besides the module's sources (every *.c and *.h at the top of the tree):
# what DKMS and consumers read.  Nothing of the test bed.
DIST_FILES=(Kbuild dkms.conf dkms-post-build.sh sheafmod.mk)

# Sets FILES: DIST_FILES and the top-level C sources.
list_dist_files() {
	local f
	FILES=("${DIST_FILES[@]}")
	while IFS= read -r -d '' f; do
		if [[ $f != */* && $f == *.[ch] && -f $SHEAF_TOP/$f ]]; then
			FILES+=("$f")
		fi
	done < <(list_sources "$SHEAF_TOP")
}

main() {
	[[ $# -eq 1 ]] || { sed -n '4s/^# //p' "$0" >&2; exit 2; }
	local out=$1 tree f

	tree="$out/sheafmod-$(sheaf_version)"
	rm -rf "$tree"
	mkdir -p "$tree"
	list_dist_files
	for f in "${FILES[@]}"; do
		cp -p "$SHEAF_TOP/$f" "$tree/$f"
	done
	realpath "$tree"
}

main "$@"
