#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/kbuild.sh K [make args...]
#
# Builds the project's modules for kernel K of the matrix (see
# scripts/kernels.sh list) out of the source tree:
#   make -C <K's headers> M=$SHEAF_CACHE/build/K/src <make args>
# with "modules W=1" as the default make args.  6.x builds on the host,
# 7.2 in its sid chroot.  The build log goes to stderr; after a successful
# "modules" build the build dir (holding every *.ko, subdirectories
# included) is printed on stdout.
#
# The exit code is make's; a build whose log has any "warning:" line fails
# too (the project's modules are W=1 clean), unless SHEAF_WARNINGS_OK=1
# (for callers that judge the warnings themselves).
#
# SHEAF_SRC  source tree to build (default: this repo); its git-tracked and
#            untracked-but-not-ignored files are copied, so the build never
#            writes into it.
# SHEAF_BUILD_COPY  after a "modules" build, copy the build dir there
#            before another build can start, and print that path instead:
#            the build dir is shared by every source tree building for K,
#            and the next one syncs its own sources over it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

SRC="${SHEAF_SRC:-$SHEAF_TOP}"
# pahole: 6.12's headers ship vmlinux, so modules get BTF (CONFIG_PAHOLE_VERSION
# there is bookworm's 1.24).
HOST_BUILD_DEPS=(make gcc-12 pahole libelf1)
# Where the build dir appears inside the chroot.
CHROOT_BUILD=/sheaf-build

# Mirrors the source files into $1, touching only files whose content
# changed so that make rebuilds just what it must; files that left the
# source tree are removed, build products stay.
sync_sources() {
	local dst=$1 manifest=$1.files f
	local -A keep=()
	mkdir -p "$dst"
	while IFS= read -r -d '' f; do
		[[ -e $SRC/$f || -L $SRC/$f ]] || continue # deleted, not yet staged
		keep[$f]=1
		if [[ -L $SRC/$f ]]; then
			mkdir -p "$(dirname "$dst/$f")"
			cp -P --remove-destination "$SRC/$f" "$dst/$f"
		elif ! cmp -s "$SRC/$f" "$dst/$f"; then
			mkdir -p "$(dirname "$dst/$f")"
			cp --remove-destination "$SRC/$f" "$dst/$f"
		fi
	done < <(list_sources "$SRC")
	if [[ -f $manifest ]]; then
		while IFS= read -r -d '' f; do
			[[ -n ${keep[$f]:-} ]] || rm -f "$dst/$f"
		done <"$manifest"
	fi
	printf '%s\0' "${!keep[@]}" >"$manifest"
}

# Removes *.ko that this build did not make (a module dropped from Kbuild,
# a renamed source): whoever collects *.ko from the build dir gets exactly
# this build's modules.  modules.order lists them as .ko or .o, absolute
# (6.x) or relative to the build dir (7.x).
prune_stale_modules() {
	local dir=$1 m ko
	local -A built=()
	[[ -f $dir/modules.order ]] || return 0
	while IFS= read -r m; do
		m="${m#"$dir"/}"
		[[ $m != *.o ]] || m="${m%.o}.ko"
		built[$m]=1
	done <"$dir/modules.order"
	while IFS= read -r -d '' ko; do
		[[ -n ${built[$ko]:-} ]] || { log "removing stale $ko"; rm -f "$dir/$ko"; }
	done < <(cd "$dir" && find . -name '*.ko' -printf '%P\0')
}

# Callers run this where set -e does not apply: each step is checked.
mount_into_chroot() {
	local chroot=$1 build=$2
	local m
	mkdir -p "$chroot/proc" "$chroot$CHROOT_BUILD" || return
	# We hold the kernel's lock: mounts still there are a killed run's.
	for m in "$chroot$CHROOT_BUILD" "$chroot/proc"; do
		while mountpoint -q "$m"; do
			umount "$m" 2>/dev/null || umount -l "$m" || return
		done
	done
	# objtool reads /proc while building.
	mount -t proc proc "$chroot/proc" || return
	MOUNTED+=("$chroot/proc")
	mount --bind "$build" "$chroot$CHROOT_BUILD" || return
	MOUNTED+=("$chroot$CHROOT_BUILD")
}

# Runs make for kernel $1 on the build dir $2; prints make's output.
run_make() {
	local k=$1 build=$2 kdir chroot rc=0
	shift 2
	kdir="$("$SHEAF_TOP/scripts/kernels.sh" path "$k" kdir)" || return
	chroot="$("$SHEAF_TOP/scripts/kernels.sh" path "$k" chroot)" || return
	# C locale: warnings must read "warning:" whatever the user's language.
	if [[ -z $chroot ]]; then
		LC_ALL=C make -C "$kdir" M="$build/src" -j"$(nproc)" "$@"
		return
	fi
	# The chroot is shared by every cache that links to its kernel tree.
	exec 7>"$chroot.lock"
	flock 7
	trap unmount_all EXIT
	trap 'exit 130' INT TERM HUP
	mount_into_chroot "$chroot" "$build" || { unmount_all; return 1; }
	chroot "$chroot" /usr/bin/env -i LC_ALL=C HOME=/root \
		PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
		make -C "$kdir" M="$CHROOT_BUILD/src" -j"$(nproc)" "$@" || rc=$?
	unmount_all
	return "$rc"
}

wants_modules() {
	local a
	for a in "$@"; do
		[[ $a == modules ]] && return 0
	done
	return 1
}

main() {
	[[ $# -ge 1 ]] || { sed -n '4,20s/^# \{0,1\}//p' "$0" >&2; exit 2; }
	local k=$1 build log rc=0
	shift
	[[ $# -gt 0 ]] || set -- modules W=1

	"$SHEAF_TOP/scripts/kernels.sh" fetch "$k"
	if [[ -z "$("$SHEAF_TOP/scripts/kernels.sh" path "$k" chroot)" ]]; then
		local deps=("${HOST_BUILD_DEPS[@]}")
		# C=1/C=2 run sparse, from the host's package here.
		if printf '%s\n' "$@" | grep -q '^C=[12]$'; then
			deps+=(sparse)
		fi
		"$SHEAF_TOP/scripts/deps.sh" "${deps[@]}"
	fi

	build="$SHEAF_CACHE/build/$k"
	mkdir -p "$build"
	# One build per kernel at a time: they share the build dir (and mounts).
	exec 8>"$build.lock"
	flock 8
	# Objects that compiled with warnings would not be rebuilt, and their
	# warnings not shown again: start afresh after such a build.
	if [[ -f $build/warned ]]; then
		rm -rf "$build/src" "$build/src.files" "$build/warned"
	fi
	sync_sources "$build/src"

	log="$build/make.log"
	run_make "$k" "$build" "$@" 2>&1 | tee "$log" >&2 || rc=${PIPESTATUS[0]}
	if grep -qi 'warning:' "$log"; then
		: >"$build/warned"
	fi
	[[ $rc -eq 0 ]] || { log "make failed for $k ($rc)"; exit "$rc"; }

	if [[ ${SHEAF_WARNINGS_OK:-} != 1 && -f $build/warned ]]; then
		log "error: $k build has warnings (the project builds W=1 clean):"
		grep -i 'warning:' "$log" >&2
		exit 1
	fi
	if wants_modules "$@"; then
		prune_stale_modules "$build/src"
		if [[ -n ${SHEAF_BUILD_COPY:-} ]]; then
			rm -rf "$SHEAF_BUILD_COPY"
			cp -a "$build/src" "$SHEAF_BUILD_COPY"
			echo "$SHEAF_BUILD_COPY"
		else
			echo "$build/src"
		fi
	fi
}

main "$@"
