#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/dkms-check.sh [K...]
#
# The DKMS round trip for each kernel K of the matrix (default: all), with
# Debian's dkms against K's headers: add, build, install, status, then the
# example consumer (examples/consumer) built against the installed package
# (headers and Module.symvers from the DKMS tree, not this source tree),
# then remove and status again.  Also checks that dkms refuses a kernel
# before 6.1 and another architecture (BUILD_EXCLUSIVE_*).  6.x runs dkms on the host, 7.2 inside its
# sid chroot (dkms is installed there on first use).
#
# Everything happens in a throwaway root (dkms --dkmstree, --sourcetree,
# --installtree, --no-depmod): the machine's /var/lib/dkms, /usr/src and
# /lib/modules are left as they were, which is checked.
#
# What was installed is kept for the VM test (scripts/vm.sh --mode dkms):
#   $SHEAF_CACHE/dkms/K/lib/modules/<release>/{updates/dkms/sheafmod.ko,
#                                              extra/sheaf_consumer.ko}
# SHEAF_DEB=FILE: also install the Debian package (scripts/deb.sh) where
# a kernel builds in a chroot, check that DKMS built and installed the
# module, and purge it.
#
# Logs: $SHEAF_CACHE/dkms/K/dkms.log.  Exit: non-zero when any kernel fails.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

HOST_DEPS=(dkms kmod make gcc-12 libelf1 pahole)
# Where the throwaway root appears inside the chroot.
CHROOT_ROOT=/sheaf-dkms
CHROOT_PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin

# --- the places ------------------------------------------------------------

# Sets, for kernel $1: REL, KDIR (as dkms sees it), CHROOT (or empty), OUT
# (kept results), WORK (throwaway root on the host) and ROOT (the same root
# as dkms sees it).
locate() {
	local k=$1
	REL="$("$SHEAF_TOP/scripts/kernels.sh" path "$k" release)"
	KDIR="$("$SHEAF_TOP/scripts/kernels.sh" path "$k" kdir)"
	CHROOT="$("$SHEAF_TOP/scripts/kernels.sh" path "$k" chroot)"
	OUT="$SHEAF_CACHE/dkms/$k"
	WORK="$OUT/root"
	if [[ -n $CHROOT ]]; then
		ROOT=$CHROOT_ROOT
	else
		ROOT=$WORK
	fi
	VERSION="$(sheaf_version)"
}

# Prints a listing of the system's own DKMS and module trees (of the host
# or, for a chroot kernel, of the chroot), to compare before and after.
system_trees() {
	local prefix=$CHROOT d
	for d in /var/lib/dkms /usr/src /lib/modules; do
		[[ ! -e $prefix$d ]] || find "$prefix$d" -maxdepth 3 | sort
	done
}

# --- running dkms, on the host or in the chroot ------------------------------

# objtool reads /proc; the throwaway root is bind-mounted at $CHROOT_ROOT.
mount_into_chroot() {
	local m
	mkdir -p "$CHROOT/proc" "$CHROOT$CHROOT_ROOT"
	# We hold the kernel's build lock: mounts still there are a killed run's.
	for m in "$CHROOT$CHROOT_ROOT" "$CHROOT/proc"; do
		while mountpoint -q "$m"; do
			umount "$m" 2>/dev/null || umount -l "$m"
		done
	done
	mount -t proc proc "$CHROOT/proc"
	MOUNTED+=("$CHROOT/proc")
	mount --bind "$WORK" "$CHROOT$CHROOT_ROOT"
	MOUNTED+=("$CHROOT$CHROOT_ROOT")
}

# Runs "$@" where kernel K builds: on the host, or in its chroot with a
# clean environment.
in_build_env() {
	if [[ -z $CHROOT ]]; then
		LC_ALL=C "$@"
	else
		chroot "$CHROOT" /usr/bin/env -i LC_ALL=C HOME=/root \
			PATH="$CHROOT_PATH" "$@"
	fi
}

# The chroot is made by scripts/kernels.sh without dkms: add it once.
chroot_has_dkms() {
	[[ -x $CHROOT/usr/sbin/dkms || -x $CHROOT/usr/bin/dkms ]]
}

install_chroot_dkms() {
	chroot_has_dkms && return 0
	log "installing dkms into the chroot"
	in_build_env apt-get -q -o Acquire::Check-Valid-Until=false update >&2
	in_build_env env DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
		--no-install-recommends dkms kmod >&2
}

# dkms on the throwaway root.  The MOK key paths keep a signing dkms (one
# that finds the kernel's sign-file) from creating a key in /var/lib/dkms.
run_dkms() {
	local action=$1
	shift
	in_build_env env mok_signing_key="$ROOT/mok.key" \
		mok_certificate="$ROOT/mok.pub" \
		dkms "$action" "$@" \
		--dkmstree "$ROOT/var/lib/dkms" --sourcetree "$ROOT/usr/src" \
		--installtree "$ROOT/lib/modules" --no-depmod
}

# --- the steps -----------------------------------------------------------------

# The package's layout: sources in <sourcetree>/sheafmod-<version>.
stage_sources() {
	rm -rf "$WORK"
	# dkms installs only for a kernel whose module tree exists.
	mkdir -p "$WORK/usr/src" "$WORK/var/lib/dkms" "$WORK/lib/modules/$REL"
	"$SHEAF_TOP/scripts/dist.sh" "$WORK/usr/src" >/dev/null
}

dkms_status() {
	run_dkms status sheafmod -k "$REL"
}

round_trip_install() {
	local m="sheafmod/$VERSION" status

	log "$K: dkms add/build/install $m for $REL"
	run_dkms add "$m"
	run_dkms build "$m" -k "$REL" --kernelsourcedir "$KDIR"
	run_dkms install "$m" -k "$REL" --kernelsourcedir "$KDIR"
	status="$(dkms_status)"
	echo "dkms status: $status"
	[[ $status == *"sheafmod/$VERSION, $REL, x86_64: installed"* ]] ||
		die "$K: dkms status does not say installed: $status"
	# Debian's dkms installs into updates/dkms whatever DEST_MODULE_LOCATION
	# says; other distributions' into extra.
	INSTALLED="$(cd "$WORK/lib/modules/$REL" && find . -name sheafmod.ko -printf '%P\n')"
	[[ -n $INSTALLED ]] || die "$K: no sheafmod.ko under $ROOT/lib/modules/$REL"
	echo "installed: /lib/modules/$REL/$INSTALLED"
	[[ -f $WORK/var/lib/dkms/sheafmod/$VERSION/$REL/x86_64/module/Module.symvers ]] ||
		die "$K: DKMS kept no Module.symvers beside the module"
}

# BUILD_EXCLUSIVE_*: a kernel before 6.1, or another architecture, is
# refused before anything builds (exit 77: autoinstall skips it).
check_refusals() {
	local m="sheafmod/$VERSION" rc

	rc=0
	run_dkms build "$m" -k 6.0.0-1-amd64 --kernelsourcedir "$KDIR" >/dev/null 2>&1 || rc=$?
	[[ $rc -eq 77 ]] || die "$K: dkms build for 6.0 exits $rc, not 77 (refused)"
	rc=0
	run_dkms build "$m" -k "$REL" -a aarch64 --kernelsourcedir "$KDIR" >/dev/null 2>&1 || rc=$?
	[[ $rc -eq 77 ]] || die "$K: dkms build for aarch64 exits $rc, not 77 (refused)"
	echo "refused as they should be: 6.0, aarch64"
}

# The consumer sees the package only through the DKMS tree.
build_consumer() {
	local build=$WORK/consumer ko=$WORK/consumer/sheaf_consumer.ko log ns
	local src=$ROOT/var/lib/dkms/sheafmod/$VERSION/source

	log "$K: building examples/consumer against the installed sheafmod"
	cp -r "$SHEAF_TOP/examples/consumer" "$build"
	log="$(in_build_env make -C "${build/#"$WORK"/"$ROOT"}" KDIR="$KDIR" \
		SHEAF_DIR="$src" SHEAF_DKMS_TREE="$ROOT/var/lib/dkms" 2>&1)" ||
		{ echo "$log"; die "$K: consumer build failed"; }
	echo "$log"
	if grep -qi 'warning' <<<"$log"; then
		die "$K: the consumer build warns"
	fi
	ns="$(modinfo -F import_ns "$ko")"
	[[ $ns == SHEAF ]] || die "$K: sheaf_consumer.ko imports '$ns', not SHEAF"
	[[ "$(modinfo -F depends "$ko")" == sheafmod ]] ||
		die "$K: sheaf_consumer.ko does not depend on sheafmod"
	echo "sheaf_consumer.ko: import_ns=$ns depends=sheafmod"
}

# What the VM test boots with: the installed tree, plus the consumer where
# its own modules_install would put it.
keep_installed() {
	local tree=$OUT/lib/modules/$REL
	rm -rf "${OUT:?}/lib"
	mkdir -p "$tree/extra" "$tree/$(dirname "$INSTALLED")"
	cp "$WORK/lib/modules/$REL/$INSTALLED" "$tree/$INSTALLED"
	cp "$WORK/consumer/sheaf_consumer.ko" "$tree/extra/"
}

round_trip_remove() {
	local status left

	log "$K: dkms remove"
	run_dkms remove "sheafmod/$VERSION" --all
	status="$(dkms_status)"
	[[ -z $status ]] || die "$K: dkms status after remove: $status"
	left="$(find "$WORK/lib/modules" "$WORK/var/lib/dkms" -mindepth 1 \
		-name 'sheafmod*' 2>/dev/null)"
	[[ -z $left ]] || die "$K: left after dkms remove: $left"
}

# The Debian package (SHEAF_DEB), where a system may take it: in the
# chroot.  Installing it must build and install the module for the
# chroot's kernel (dh_dkms's postinst); purging it must take it all away.
package_round_trip() {
	local deb=${SHEAF_DEB##*/} tree=$CHROOT/lib/modules/$REL had status f

	log "$K: dpkg -i $deb in the chroot"
	cp "$SHEAF_DEB" "$WORK/$deb"
	had="$(ls -A "$tree")"
	in_build_env env mok_signing_key="$ROOT/mok.key" \
		mok_certificate="$ROOT/mok.pub" dpkg -i "$ROOT/$deb"
	status="$(in_build_env dkms status sheafmod)"
	echo "dkms status: $status"
	[[ $status == *"sheafmod/$VERSION, $REL, x86_64: installed"* ]] ||
		die "$K: installing the package did not install the module: $status"
	[[ -f $CHROOT/var/lib/dkms/sheafmod/$VERSION/$REL/x86_64/module/Module.symvers ]] ||
		die "$K: the package's build kept no Module.symvers"
	log "$K: dpkg --purge sheafmod-dkms"
	in_build_env dpkg --purge sheafmod-dkms
	status="$(in_build_env dkms status sheafmod)"
	[[ -z $status ]] || die "$K: dkms status after the purge: $status"
	# depmod's index files, which the kernel tree did not have.
	while IFS= read -r f; do
		grep -qxF "$f" <<<"$had" || rm -rf "${tree:?}/$f"
	done < <(ls -A "$tree")
}

check_kernel() {
	local k=$1 before after

	K=$k
	locate "$k"
	mkdir -p "$OUT"
	# One build per kernel at a time (scripts/kbuild.sh): they share the
	# chroot's mounts.
	exec 8>"$SHEAF_CACHE/build/$k.lock"
	flock 8
	stage_sources
	if [[ -n $CHROOT ]]; then
		# Shared by every cache that links to its kernel tree.
		exec 7>"$CHROOT.lock"
		flock 7
		trap unmount_all EXIT
		mount_into_chroot
		install_chroot_dkms
	fi
	before="$(system_trees)"
	round_trip_install
	check_refusals
	build_consumer
	keep_installed
	round_trip_remove
	if [[ -n ${SHEAF_DEB:-} && -n $CHROOT ]]; then
		package_round_trip
	fi
	unmount_all
	after="$(system_trees)"
	if [[ $before != "$after" ]]; then
		diff <(echo "$before") <(echo "$after") >&2 || true
		die "$K: the system's DKMS or module trees changed"
	fi
	rm -rf "$WORK"
	exec 8>&-
	log "$K: PASS (kept $OUT/lib/modules/$REL)"
}

main() {
	local k rc=0 kernels=("$@")

	if [[ ${1:-} == --kernel ]]; then
		check_kernel "$2"
		return
	fi

	[[ $# -gt 0 ]] || read -r -a kernels <<<"$("$SHEAF_TOP/scripts/kernels.sh" list)"
	"$SHEAF_TOP/scripts/deps.sh" "${HOST_DEPS[@]}"
	for k in "${kernels[@]}"; do
		"$SHEAF_TOP/scripts/kernels.sh" fetch "$k"
		mkdir -p "$SHEAF_CACHE/dkms/$k"
		# A process per kernel: a failure ends that kernel only, and set -e
		# holds in it (it would not in a subshell on the left of ||).
		"$0" --kernel "$k" 2>&1 | tee "$SHEAF_CACHE/dkms/$k/dkms.log" ||
			{ rc=1; log "$k: FAIL (log: $SHEAF_CACHE/dkms/$k/dkms.log)"; }
	done
	return "$rc"
}

main "$@"
