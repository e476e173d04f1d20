#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/debug-kernel.sh
#
# Builds the matrix's "debug" kernel into the cache, unless it is already
# there, and prints its build tree (the KDIR to build modules against) on
# stdout.  Source: Debian's linux-source-6.12 (scripts/kernels.sh src);
# config: allnoconfig with scripts/debug.config forced on top
# (KCONFIG_ALLCONFIG), each of whose lines must hold in the result.
#
# $SHEAF_CACHE/kernels/debug/ holds build/ (O= tree: bzImage, vmlinux,
# Module.symvers), release (its uname -r) and stamp (what it was built
# from: the fragment's hash and the source version).  A stamp that does not
# match the fragment and source of today rebuilds, incrementally in the
# same tree.  The build runs under nice with -j2 and prints its duration.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

FRAGMENT=$SHEAF_TOP/scripts/debug.config
DIR=$SHEAF_CACHE/kernels/debug
BUILD=$DIR/build
BUILD_DEPS=(make gcc bc flex bison libelf-dev libssl-dev perl)

# What the tree is built from, one line: changes with the fragment and with
# the source package's version.
build_key() {
	local src=$1

	printf 'fragment=%s source=%s\n' \
		"$(sha256sum <"$FRAGMENT" | cut -d' ' -f1)" \
		"$(cat "$src/.sheafmod-stamp")"
}

built() {
	[[ "$(cat "$DIR/stamp" 2>/dev/null)" == "$1" ]] &&
		[[ -f $BUILD/arch/x86/boot/bzImage && -f $BUILD/Module.symvers &&
			-s $DIR/release ]]
}

kmake() {
	local src=$1
	shift
	LC_ALL=C nice make -C "$src" O="$BUILD" "$@"
}

# Every setting of the fragment must be in the .config: a symbol whose
# dependencies are missing is dropped by Kconfig without a word.
check_config() {
	local line bad=0 name

	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)= ]]; then
			name=${BASH_REMATCH[1]}
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			name=${BASH_REMATCH[1]}
		else
			continue
		fi
		if ! grep -qxF "$line" "$BUILD/.config"; then
			log "fragment asks '$line'; .config has '$(grep -E "(^|# )${name}[= ]" "$BUILD/.config" || echo "nothing")'"
			bad=1
		fi
	done <"$FRAGMENT"
	[[ $bad -eq 0 ]] || die "the debug kernel's .config does not hold scripts/debug.config"
}

build() {
	local src=$1 start secs

	mkdir -p "$BUILD"
	log "configuring (allnoconfig + scripts/debug.config) in $BUILD"
	KCONFIG_ALLCONFIG=$FRAGMENT kmake "$src" allnoconfig >&2
	check_config
	log "building bzImage and modules (nice, -j2)"
	start=$(date +%s)
	kmake "$src" -j2 >&2
	secs=$(($(date +%s) - start))
	kmake "$src" -s kernelrelease >"$DIR/release"
	log "built $(cat "$DIR/release") in $((secs / 60))m$((secs % 60))s"
}

main() {
	local src key

	[[ $# -eq 0 ]] || { sed -n '4,5s/^# \{0,1\}//p' "$0" >&2; exit 2; }
	"$SHEAF_TOP/scripts/deps.sh" "${BUILD_DEPS[@]}"
	src=$("$SHEAF_TOP/scripts/kernels.sh" src)
	mkdir -p "$DIR"
	# One build at a time; other kernels' fetches do not wait for it.
	exec 9>"$DIR.lock"
	flock 9
	key=$(build_key "$src")
	if ! built "$key"; then
		rm -f "$DIR/stamp"
		build "$src"
		echo "$key" >"$DIR/stamp"
	fi
	echo "$BUILD"
}

main "$@"
