#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/deb.sh          (make deb)
#
# Builds out/deb/sheafmod-dkms_<version>_all.deb with Debian's tooling
# (debhelper with dh-dkms): the DKMS source tree of scripts/dist.sh under
# /usr/src/sheafmod-<version>, and maintainer scripts that build and
# install the module with DKMS when the package is installed.  The
# version is dkms.conf's PACKAGE_VERSION (a native package: no Debian
# revision); debian/changelog is written from it.  Then runs lintian,
# which must report no error and no warning.  Prints the .deb's path.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

DEPS=(dpkg-dev debhelper dh-dkms lintian)
OUT=$SHEAF_TOP/out/deb
MAINTAINER="sheafmod maintainers <maintainers@users.noreply.h-seed-59a8d9ae.example>"

# The last commit's date, so that rebuilding a commit gives the same
# changelog; now, outside git.
changelog_date() {
	git -C "$SHEAF_TOP" log -1 --format=%aD 2>/dev/null || date -R
}

write_changelog() {
	local tree=$1 version=$2
	cat >"$tree/debian/changelog" <<-EOF
		sheafmod ($version) unstable; urgency=medium

		  * sheafmod $version, built with DKMS.

		 -- $MAINTAINER  $(changelog_date)
	EOF
}

make_package_tree() {
	local version=$1 tree
	rm -rf "$OUT"
	mkdir -p "$OUT/build"
	tree="$("$SHEAF_TOP/scripts/dist.sh" "$OUT/build")"
	cp -r "$SHEAF_TOP/packaging/debian" "$tree/debian"
	write_changelog "$tree" "$version"
	echo "$tree"
}

build_package() {
	local tree=$1
	(cd "$tree" && dpkg-buildpackage -b -us -uc) >"$OUT/build.log" 2>&1 || {
		tail -n 30 "$OUT/build.log" >&2
		die "dpkg-buildpackage failed (log: $OUT/build.log)"
	}
}

run_lintian() {
	local changes=$1
	log "lintian"
	lintian --fail-on error,warning --display-info --pedantic "$changes" >&2 ||
		die "lintian reports errors or warnings"
}

main() {
	local version tree deb

	"$SHEAF_TOP/scripts/deps.sh" "${DEPS[@]}"
	version="$(sheaf_version)"
	tree="$(make_package_tree "$version")"
	log "building sheafmod-dkms $version"
	build_package "$tree"
	deb=sheafmod-dkms_${version}_all.deb
	mv "$OUT/build/$deb" "$OUT/$deb"
	mv "$OUT/build/sheafmod_${version}"_*.changes "$OUT/build/sheafmod_${version}"_*.buildinfo "$OUT/"
	# The .changes file lists the .deb by name: keep them side by side.
	run_lintian "$(echo "$OUT/sheafmod_${version}"_*.changes)"
	echo "$OUT/$deb"
}

main "$@"
