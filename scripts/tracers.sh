#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/tracers.sh
#
# Makes the tracing tools of the tracer VM ready in the cache and prints
# the directory holding them: perf (linux-perf), trace-cmd and bpftrace,
# from Debian bookworm's packages, with every shared library they load,
# laid out as a root file system to copy into an initramfs
# (scripts/initramfs.sh --tracers):
#   usr/bin/{perf,trace-cmd,bpftrace}
#   lib64/ld-linux-x86-64.so.2, usr/lib/x86_64-linux-gnu/<libraries>
#
# The packages and their whole dependency closure are downloaded with apt
# (a private apt state, an empty dpkg status: nothing of the host's is
# assumed) into $SHEAF_CACHE/debs/tracers and unpacked with dpkg-deb -x;
# nothing is installed on the host.  The libraries are those the
# binaries' DT_NEEDED entries name, followed recursively.  The root is
# named after the .debs and this script, and never changed once made, so
# a reader is never disturbed by another run making a new one.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
PACKAGES=(linux-perf trace-cmd bpftrace)
TOOLS=(perf trace-cmd bpftrace)
HOST_TOOLS=(debian-archive-keyring binutils)
# Where the dynamic loader of the staged libc looks, in order.
LIB_DIRS=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 usr/lib)
# Package lists older than this are refreshed.
LISTS_MAX_AGE_MIN=1440

STATE=$SHEAF_CACHE/apt/tracers
DEBS=$SHEAF_CACHE/debs/tracers
UNPACKED=$SHEAF_CACHE/tracers/unpacked
ROOT=''	# $SHEAF_CACHE/tracers/root-<hash>

apt_state_init() {
	apt_private_init "$STATE" "$MIRROR" "$SUITE" "$KEYRING"
	mkdir -p "$DEBS/partial"
}

# apt on the private state, the .debs kept apart in $DEBS.
apt_private() {
	local APT_OPTS

	apt_private_opts "$STATE"
	apt-get "${APT_OPTS[@]}" -o "Dir::Cache::archives=$DEBS" "$@"
}

lists_fresh() {
	[[ -n "$(find "$STATE/lists" -maxdepth 1 -name '*_Packages*' \
		-mmin -$LISTS_MAX_AGE_MIN 2>/dev/null)" ]]
}

fetch_debs() {
	apt_state_init
	lists_fresh || apt_private update >&2
	mkdir -p "$STATE/cache"
	DEBIAN_FRONTEND=noninteractive apt_private install -y --download-only \
		--no-install-recommends "${PACKAGES[@]}" >&2
	# Superseded versions would be unpacked too.
	apt_private autoclean >&2
}

# The .debs apt would install now, as a sorted list: the root's name hashes it.
wanted_debs() {
	apt_private install -s --no-install-recommends "${PACKAGES[@]}" 2>/dev/null |
		awk '$1 == "Inst" { print $2 }' | sort
}

unpack_debs() {
	local deb

	rm -rf "$UNPACKED"
	mkdir -p "$UNPACKED"
	for deb in "$DEBS"/*.deb; do
		dpkg-deb -x "$deb" "$UNPACKED"
	done
}

# Prints the path of library $1 in the unpacked tree, relative to it.
find_lib() {
	local d

	for d in "${LIB_DIRS[@]}"; do
		if [[ -e $UNPACKED/$d/$1 ]]; then
			echo "$d/$1"
			return
		fi
	done
	die "no $1 in the unpacked packages"
}

needed() {
	objdump -p "$1" | awk '$1 == "NEEDED" { print $2 }'
}

# Copies file $1 (relative to the unpacked tree) into the root, with the
# link chain leading to it.
copy_file() {
	local rel=$1 target

	mkdir -p "$ROOT/$(dirname "$rel")"
	if [[ -L $UNPACKED/$rel ]]; then
		target=$(readlink "$UNPACKED/$rel")
		ln -sfn "$target" "$ROOT/$rel"
		if [[ $target == /* ]]; then
			copy_file "${target#/}"
		else
			copy_file "$(dirname "$rel")/$target"
		fi
	else
		cp "$UNPACKED/$rel" "$ROOT/$rel"
	fi
}

# bookworm's linux-perf ships the binary as /usr/bin/perf, unversioned.
tool_path() {
	[[ -f $UNPACKED/usr/bin/$1 ]] || die "no usr/bin/$1 in the unpacked packages"
	echo "usr/bin/$1"
}

stage_root() {
	local queue=() lib rel dep tool
	local -A seen=()

	rm -rf "$ROOT"
	mkdir -p "$ROOT"
	for tool in "${TOOLS[@]}"; do
		rel=$(tool_path "$tool")
		copy_file "$rel"
		queue+=("$rel")
	done
	copy_file lib64/ld-linux-x86-64.so.2
	while [[ ${#queue[@]} -gt 0 ]]; do
		rel=${queue[0]}
		queue=("${queue[@]:1}")
		while read -r lib; do
			[[ -z ${seen[$lib]:-} ]] || continue
			seen[$lib]=1
			dep=$(find_lib "$lib")
			copy_file "$dep"
			queue+=("$dep")
		done < <(needed "$UNPACKED/$rel")
	done
}

main() {
	local lock hash root

	[[ $# -eq 0 ]] || { sed -n '4,5s/^# \{0,1\}//p' "$0" >&2; exit 2; }
	"$SHEAF_TOP/scripts/deps.sh" "${HOST_TOOLS[@]}"
	mkdir -p "$SHEAF_CACHE/tracers"
	lock=$SHEAF_CACHE/tracers.lock
	exec 9>"$lock"
	flock 9
	fetch_debs
	hash=$( (wanted_debs; cat "$0") | sha256sum | cut -c1-16)
	root=$SHEAF_CACHE/tracers/root-$hash
	if [[ ! -d $root ]]; then
		log "unpacking $(wanted_debs | wc -l) packages"
		unpack_debs
		ROOT=$SHEAF_CACHE/tracers/staging
		stage_root
		rm -rf "$SHEAF_CACHE"/tracers/root-* "$UNPACKED"
		mv "$ROOT" "$root"
	fi
	ROOT=$root
	log "$ROOT: $(du -sh "$ROOT" | cut -f1), $(find "$ROOT" -type f | wc -l) files"
	echo "$ROOT"
}

main "$@"
