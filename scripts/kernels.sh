#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel matrix: stock Debian kernels the project builds and tests on,
# and "debug", a kernel with the checkers on (KASAN, lockdep, kmemleak...)
# built here from Debian's 6.12 source by scripts/debug-kernel.sh.
#
# Usage:
#   scripts/kernels.sh list [--stock]       print the matrix names (--stock:
#                                           Debian's kernels only, for
#                                           timings)
#   scripts/kernels.sh fetch [K...]         make sure kernels K (default: all)
#                                           are in the cache (debug: built)
#   scripts/kernels.sh path K WHAT          print one fact about fetched K:
#       vmlinuz   bootable kernel image
#       kdir      headers dir to pass as KDIR (for a chroot kernel: the path
#                 as seen inside the chroot)
#       release   its `uname -r`
#       chroot    the build chroot (empty for kernels built on the host)
#       config    its .config, as a path on the host
#   scripts/kernels.sh src                  print the path of the full kernel
#                                           source tree (fetched on first use)
#
# Versions are resolved when a kernel is fetched, from the suite's
# meta-packages, through an apt state private to the cache: the machine's
# own apt sources are not touched.  A fetched kernel is re-used as long as
# its stamp is there and its .debs still match their recorded hashes.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

STOCK_KERNELS=(6.1 6.12 6.12-rt 7.2)
KERNELS=("${STOCK_KERNELS[@]}" debug)
MIRROR=http://deb.debian.org/debian
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
SOURCE_PKG=linux-source-6.12
SOURCE_SUITE=bookworm-backports
SOURCE_DIR="$SHEAF_CACHE/$SOURCE_PKG"
# Packages a chroot-built kernel needs besides its headers.
CHROOT_TOOLS=(gcc-16 make sparse)
# Host tools: apt and dpkg-deb are always there; these may not be.
HOST_TOOLS=(debian-archive-keyring xz-utils)

declare -A SUITE_UPDATED=()

kernel_known() {
	local k
	for k in "${KERNELS[@]}"; do
		[[ $k == "$1" ]] && return 0
	done
	return 1
}

suite_of() {
	case $1 in
	6.1) echo bookworm ;;
	6.12 | 6.12-rt) echo bookworm-backports ;;
	7.2) echo sid ;;
	esac
}

flavour_of() {
	case $1 in
	*-rt) echo rt-amd64 ;;
	*) echo amd64 ;;
	esac
}

# Built from source by scripts/debug-kernel.sh, not fetched as packages.
built_here() {
	[[ $1 == debug ]]
}

# 7.2's headers want gcc-16 and a newer libc than the host's.
builds_in_chroot() {
	[[ $1 == 7.2 ]]
}

kernel_dir() {
	echo "$SHEAF_CACHE/kernels/$1"
}

# --- private apt state, one per suite ---------------------------------------

apt_state() {
	echo "$SHEAF_CACHE/apt/$1"
}

apt_state_init() {
	apt_private_init "$(apt_state "$1")" "$MIRROR" "$1" "$KEYRING"
}

# Options that point apt at the suite's private state (APT_OPTS).
apt_opts() {
	apt_private_opts "$(apt_state "$1")"
	# sid's Release file is expired on the mirror.
	[[ $1 != sid ]] || APT_OPTS+=(-o "Acquire::Check-Valid-Until=false")
}

suite_apt_get() {
	local suite=$1
	shift
	apt_opts "$suite"
	apt-get "${APT_OPTS[@]}" "$@"
}

suite_apt_cache() {
	local suite=$1
	shift
	apt_opts "$suite"
	apt-cache "${APT_OPTS[@]}" "$@"
}

# Once per run: fetched versions must be the suite's current ones, and the
# mirror drops superseded .debs (quickly, in sid).
suite_update() {
	[[ -z ${SUITE_UPDATED[$1]:-} ]] || return 0
	log "updating package lists of $1"
	apt_state_init "$1"
	suite_apt_get "$1" update >&2
	SUITE_UPDATED[$1]=1
}

# Prints field $3 of package $2 (candidate version) in suite $1.
pkg_field() {
	suite_apt_cache "$1" show --no-all-versions "$2" 2>/dev/null |
		awk -v f="$3:" '$1 == f { sub(/^[^:]*: */, ""); print; exit }'
}

# Escapes $1 for use in an extended regex: releases hold "+" and ".".
re_quote() {
	local s=${1//./\\.}
	echo "${s//+/\\+}"
}

# Prints the names package $2 depends on that match regex $3, one a line.
pkg_deps_matching() {
	pkg_field "$1" "$2" Depends | tr ',|' '\n' |
		sed 's/([^)]*)//; s/[[:space:]]//g' | grep -E "$3" || true
}

# --- downloads ---------------------------------------------------------------

# Prints "name version filename sha256" for packages $2... of suite $1
# (candidate versions), in one apt-cache call: each call parses the lists.
pkg_records() {
	local suite=$1
	shift
	suite_apt_cache "$suite" show --no-all-versions "$@" | awk '
		/^Package: /  { p = $2 }
		/^Version: /  { v = $2 }
		/^Filename: / { f = $2 }
		/^SHA256: /   { h = $2 }
		/^$/ && p     { print p, v, f, h; p = "" }
		END           { if (p) print p, v, f, h }'
}

# Makes $2 hold exactly the .debs of packages $3... of suite $1 (candidate
# versions), re-using files that match the index's SHA256 and downloading
# the rest.  Writes $2/SHA256SUMS for later validity checks.
fetch_debs() {
	local suite=$1 dir=$2 pkg ver file sha want=()
	shift 2
	mkdir -p "$dir"
	: >"$dir/SHA256SUMS.new"
	while read -r pkg ver file sha; do
		printf '%s  %s\n' "$sha" "${file##*/}" >>"$dir/SHA256SUMS.new"
		want+=("$pkg=$ver")
	done < <(pkg_records "$suite" "$@")
	[[ ${#want[@]} -eq $# ]] || die "not all of $* found in $suite"
	mv "$dir/SHA256SUMS.new" "$dir/SHA256SUMS"
	drop_unlisted_debs "$dir"
	(cd "$dir" && suite_apt_get "$suite" download "${want[@]}" >&2)
	(cd "$dir" && sha256sum --quiet -c SHA256SUMS) ||
		die "downloaded .debs in $dir do not match their index"
}

# Removes old versions and files that fail their hash (truncated, corrupt),
# so that apt-get download fetches them anew.
drop_unlisted_debs() {
	local dir=$1 deb name sha
	for deb in "$dir"/*.deb; do
		[[ -e $deb ]] || continue
		name="${deb##*/}"
		sha="$(awk -v n="$name" '$2 == n { print $1 }' "$dir/SHA256SUMS")"
		if [[ -z $sha ]] || ! echo "$sha  $deb" | sha256sum --quiet -c - >/dev/null 2>&1; then
			log "dropping $name (stale or corrupt)"
			rm -f "$deb"
		fi
	done
}

debs_valid() {
	[[ -s $1/SHA256SUMS ]] &&
		(cd "$1" && sha256sum --quiet --status -c SHA256SUMS)
}

# --- extraction and checks ---------------------------------------------------

extract_debs() {
	local root=$1 deb
	shift
	rm -rf "$root"
	mkdir -p "$root"
	for deb in "$@"; do
		dpkg-deb -x "$deb" "$root"
	done
}

# The packages assume they are installed at / on a merged-/usr system:
# absolute links (lib/modules/*/build) and links through /lib
# (headers' scripts -> ../../lib/linux-kbuild-*) dangle in a plain
# extraction.  Point them at their targets inside $1, relatively.
relink_into_root() {
	local root=$1 link target abs
	while IFS= read -r -d '' link; do
		[[ -e $link ]] && continue
		target="$(readlink "$link")"
		if [[ $target == /* ]]; then
			abs="$root$target"
		else
			abs="$(realpath -m "$(dirname "$link")/$target")"
		fi
		[[ -e $abs ]] || abs="${abs/#"$root"\/lib\//"$root"/usr/lib/}"
		if [[ -e $abs ]]; then
			ln -sfnr "$abs" "$link"
		fi
	done < <(find "$root" -type l -print0)
}

# The flavour's Makefile includes the common headers' Makefile by its
# absolute installed path.
reroot_headers_makefile() {
	local root=$1 kdir=$2
	sed -i "s|^include /usr/src/|include $root/usr/src/|" "$kdir/Makefile"
}

# The kernel's Makefile runs scripts/checker-valid.sh (7.x) before C=1/C=2
# and silently skips sparse when it fails; Debian's linux-kbuild does not
# ship it.  Supply one: prints 1 when checker "$@" parses __typeof_unqual__
# (which 7.x headers use under sparse) without error.
supply_checker_valid() {
	local root=$1 rel=$2 script
	script="$root/usr/src/linux-headers-$rel/scripts/checker-valid.sh"
	checker_valid_needed "$root" || return 0
	[[ -d ${script%/*} && ! -e $script ]] || return 0
	cat >"$script" <<-'EOF'
		#!/bin/sh
		# Supplied by sheafmod's scripts/kernels.sh (missing from the package).
		command -v "$1" >/dev/null 2>&1 || { echo 0; exit 0; }
		f=$(mktemp --suffix=.c)
		trap 'rm -f "$f"' EXIT
		printf 'int f(const int *p)\n{\n\t__typeof_unqual__(*p) v = *p;\n\treturn v;\n}\n' >"$f"
		if "$@" "$f" 2>&1 | grep -q error; then echo 0; else echo 1; fi
	EOF
	chmod +x "$script"
}

checker_valid_needed() {
	grep -qs 'scripts/checker-valid\.sh' "$1"/usr/src/linux-headers-*/Makefile
}

# Prints where the package put the bootable image (7.x: under modules).
find_vmlinuz() {
	local root=$1 rel=$2 f
	for f in "$root/boot/vmlinuz-$rel" "$root/usr/lib/modules/$rel/vmlinuz" \
		"$root/lib/modules/$rel/vmlinuz"; do
		[[ -f $f ]] && { echo "$f"; return 0; }
	done
	return 1
}

# Checks a headers tree (host path $1) enough to build modules against it.
headers_usable() {
	local kdir=$1 f
	for f in Makefile .config Module.symvers include/config/auto.conf \
		scripts/Makefile.build scripts/basic/fixdep scripts/mod/modpost; do
		[[ -e $kdir/$f ]] || { log "$kdir/$f missing or dangling"; return 1; }
	done
	if [[ ! -L $kdir/scripts || "$(realpath "$kdir/scripts")" != */linux-kbuild-*/scripts ]]; then
		log "$kdir/scripts does not lead to linux-kbuild"
		return 1
	fi
	if checker_valid_needed "${kdir%/usr/src/*}" && [[ ! -x $kdir/scripts/checker-valid.sh ]]; then
		log "$kdir/scripts/checker-valid.sh missing: sparse would be skipped"
		return 1
	fi
}

# Everything `path` promises must be there and sound.
kernel_usable() {
	local k=$1 d rel kdir
	d="$(kernel_dir "$k")"
	rel="$(cat "$d/release" 2>/dev/null)" || return 1
	find_vmlinuz "$d/root" "$rel" >/dev/null || { log "$k: no vmlinuz"; return 1; }
	if builds_in_chroot "$k"; then
		chroot_usable "$d/chroot" "$rel" "$(cat "$d/version")"
	else
		kdir="$d/root/usr/src/linux-headers-$rel"
		headers_usable "$kdir" || return 1
		[[ "$(realpath "$d/root/lib/modules/$rel/build")" == "$(realpath "$kdir")" ]] ||
			{ log "$k: lib/modules/$rel/build does not lead to the headers"; return 1; }
	fi
}

kernel_cached() {
	local d
	d="$(kernel_dir "$1")"
	[[ -f $d/stamp ]] || return 1
	if ! debs_valid "$d/debs"; then
		log "$1: cached .debs do not match their hashes: fetching again"
		return 1
	fi
	if ! kernel_usable "$1"; then
		log "$1: cached tree is incomplete: fetching again"
		return 1
	fi
}

# --- the sid build chroot ----------------------------------------------------

chroot_usable() {
	local c=$1 rel=$2 ver=$3 tool have
	for tool in "${CHROOT_TOOLS[@]}"; do
		[[ -x $c/usr/bin/$tool ]] || { log "chroot lacks $tool"; return 1; }
	done
	have="$(dpkg-query --admindir="$c/var/lib/dpkg" -W -f='${Version}' \
		"linux-headers-$rel" 2>/dev/null)" || true
	[[ $have == "$ver" ]] || { log "chroot has headers '$have', want $ver"; return 1; }
	headers_usable "$c/usr/src/linux-headers-$rel"
}

# apt inside the chroot installs the headers, so that their dependencies
# (gcc-16-for-host, linux-kbuild, pahole) come along.
build_chroot() {
	local c=$1 rel=$2 ver=$3
	log "building the sid chroot for $rel (mmdebstrap)"
	"$SHEAF_TOP/scripts/deps.sh" mmdebstrap
	rm -rf "$c" "$c.new"
	mmdebstrap --variant=apt --quiet \
		--aptopt='Acquire::Check-Valid-Until "false"' \
		--include="$(
			IFS=,
			echo "${CHROOT_TOOLS[*]},linux-headers-$rel=$ver"
		)" \
		sid "$c.new" "deb [signed-by=$KEYRING] $MIRROR sid main" >&2
	mv "$c.new" "$c"
}

# --- fetch -------------------------------------------------------------------

# Sets REL, VERSION, PKGS (packages extracted on the host) for kernel $1.
resolve_kernel() {
	local k=$1 suite flavour headers image rel_re
	suite="$(suite_of "$k")"
	flavour="$(flavour_of "$k")"
	headers="$(pkg_deps_matching "$suite" "linux-headers-$flavour" "^linux-headers-.*-$flavour\$")"
	[[ $(wc -w <<<"$headers") -eq 1 ]] ||
		die "$k: cannot resolve linux-headers-$flavour in $suite"
	REL="${headers#linux-headers-}"
	rel_re="$(re_quote "$REL")"
	VERSION="$(pkg_field "$suite" "$headers" Version)"
	image="$(pkg_deps_matching "$suite" "linux-image-$flavour" "^linux-image-$rel_re\$")"
	[[ $image == "linux-image-$REL" ]] ||
		die "$k: linux-image-$flavour does not lead to linux-image-$REL"
	# 7.x splits the image package: vmlinuz in linux-binary, config and
	# System.map in linux-base.
	PKGS=("$image")
	mapfile -t -O 1 PKGS < <(pkg_deps_matching "$suite" "$image" "^linux-(binary|base)-$rel_re\$")
	if ! builds_in_chroot "$k"; then
		PKGS+=("$headers")
		mapfile -t -O "${#PKGS[@]}" PKGS < <(pkg_deps_matching "$suite" "$headers" '^linux-(headers|kbuild)-')
	fi
	log "$k: $REL $VERSION (${PKGS[*]})"
}

fetch_kernel() {
	local k=$1 d suite kdir
	d="$(kernel_dir "$k")"
	kernel_cached "$k" && return 0
	rm -f "$d/stamp"
	suite="$(suite_of "$k")"
	suite_update "$suite"
	resolve_kernel "$k"
	fetch_debs "$suite" "$d/debs" "${PKGS[@]}"
	log "$k: extracting"
	extract_debs "$d/root" "$d"/debs/*.deb
	relink_into_root "$d/root"
	echo "$REL" >"$d/release"
	echo "$VERSION" >"$d/version"
	if builds_in_chroot "$k"; then
		supply_checker_valid "$d/chroot" "$REL"
		if ! chroot_usable "$d/chroot" "$REL" "$VERSION" 2>/dev/null; then
			build_chroot "$d/chroot" "$REL" "$VERSION"
			supply_checker_valid "$d/chroot" "$REL"
		fi
	else
		kdir="$d/root/usr/src/linux-headers-$REL"
		reroot_headers_makefile "$d/root" "$kdir"
		supply_checker_valid "$d/root" "$REL"
	fi
	kernel_usable "$k" || die "$k: fetched tree is not usable"
	date -u +%FT%TZ >"$d/stamp"
	log "$k: ready ($REL)"
}

fetch_source() {
	local d="$SHEAF_CACHE/debs/$SOURCE_PKG" tmp="$SOURCE_DIR.new"
	local f ok=1
	for f in .sheafmod-stamp scripts/checkpatch.pl scripts/kernel-doc \
		scripts/spelling.txt tools/testing/selftests/lib.mk; do
		[[ -f $SOURCE_DIR/$f ]] || ok=
	done
	[[ -z $ok ]] || return 0
	suite_update "$SOURCE_SUITE"
	fetch_debs "$SOURCE_SUITE" "$d" "$SOURCE_PKG"
	log "extracting $SOURCE_PKG"
	rm -rf "$tmp" "$SOURCE_DIR"
	mkdir -p "$tmp"
	# The .deb holds one tarball of the tree: stream it out, no copy on disk.
	dpkg-deb --fsys-tarfile "$d"/*.deb |
		tar -xOf - "./usr/src/$SOURCE_PKG.tar.xz" | tar -xJf - -C "$tmp"
	mv "$tmp/$SOURCE_PKG" "$SOURCE_DIR"
	rmdir "$tmp"
	pkg_field "$SOURCE_SUITE" "$SOURCE_PKG" Version >"$SOURCE_DIR/.sheafmod-stamp"
}

# One fetch at a time: kernels share suites and the cache.
lock_cache() {
	mkdir -p "$SHEAF_CACHE"
	exec 9>"$SHEAF_CACHE/.fetch.lock"
	flock 9
}

# --- subcommands -------------------------------------------------------------

cmd_list() {
	case ${1:-} in
	'') echo "${KERNELS[*]}" ;;
	--stock) echo "${STOCK_KERNELS[*]}" ;;
	*) usage ;;
	esac
}

cmd_fetch() {
	local k
	[[ $# -gt 0 ]] || set -- "${KERNELS[@]}"
	for k in "$@"; do
		kernel_known "$k" || die "unknown kernel '$k' (known: ${KERNELS[*]})"
	done
	"$SHEAF_TOP/scripts/deps.sh" "${HOST_TOOLS[@]}"
	# The debug kernel's build holds a lock of its own, not the cache's:
	# fetches of other kernels need not wait for it.
	for k in "$@"; do
		if built_here "$k"; then
			"$SHEAF_TOP/scripts/debug-kernel.sh" >/dev/null
		fi
	done
	lock_cache
	for k in "$@"; do
		built_here "$k" || fetch_kernel "$k"
	done
}

cmd_path() {
	local k=${1:-} what=${2:-} d rel kdir
	kernel_known "$k" || die "unknown kernel '$k' (known: ${KERNELS[*]})"
	d="$(kernel_dir "$k")"
	[[ -f $d/stamp ]] || die "$k is not fetched: run scripts/kernels.sh fetch $k"
	rel="$(cat "$d/release")"
	if built_here "$k"; then
		path_built_here "$d" "$rel" "$what"
		return
	fi
	kdir="/usr/src/linux-headers-$rel"
	builds_in_chroot "$k" || kdir="$d/root$kdir"
	case $what in
	vmlinuz) find_vmlinuz "$d/root" "$rel" ;;
	kdir) echo "$kdir" ;;
	release) echo "$rel" ;;
	chroot) if builds_in_chroot "$k"; then echo "$d/chroot"; fi ;;
	config) if builds_in_chroot "$k"; then echo "$d/chroot$kdir/.config"; else echo "$kdir/.config"; fi ;;
	*) die "usage: kernels.sh path K vmlinuz|kdir|release|chroot|config" ;;
	esac
}

# The same facts for a kernel built here: its build tree is its KDIR.
path_built_here() {
	local d=$1 rel=$2 what=$3

	case $what in
	vmlinuz) echo "$d/build/arch/x86/boot/bzImage" ;;
	kdir) echo "$d/build" ;;
	release) echo "$rel" ;;
	chroot) ;;
	config) echo "$d/build/.config" ;;
	*) die "usage: kernels.sh path K vmlinuz|kdir|release|chroot|config" ;;
	esac
}

cmd_src() {
	"$SHEAF_TOP/scripts/deps.sh" "${HOST_TOOLS[@]}"
	lock_cache
	fetch_source
	echo "$SOURCE_DIR"
}

usage() {
	sed -n '4,22s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	list) cmd_list "$@" ;;
	fetch) cmd_fetch "$@" ;;
	path) cmd_path "$@" ;;
	src) cmd_src ;;
	*) usage ;;
	esac
}

main "$@"
