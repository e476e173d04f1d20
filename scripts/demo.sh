#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/demo.sh          (make demo)
#
# Boots the stock Debian 6.1 kernel in QEMU, loads sheafmod and the example
# consumer (examples/sheaf_example.ko runs a short workload in its init),
# prints every statistics file under /sys/kernel/sheaf/*/ and the
# sheafinfo table (tools/sheafinfo.c), unloads both.
# Does all set-up on a fresh machine: packages, kernel, build.  Logs go to
# out/demo/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

K=6.1
DEPS=(qemu-system-x86 busybox-static bash-static cpio rsync make binutils)
OUT=$SHEAF_TOP/out/demo

# Runs a set-up step quietly; shows its log if it fails.
step() {	# step NAME LOG COMMAND...
	local name=$1 logfile=$2

	shift 2
	log "$name"
	if ! "$@" 2>"$logfile"; then
		tail -n 30 "$logfile" >&2
		die "$name failed (log: $logfile)"
	fi
}

main() {
	local moddir

	rm -rf "$OUT"
	mkdir -p "$OUT"
	"$SHEAF_TOP/scripts/deps.sh" "${DEPS[@]}"
	step "fetching kernel $K" "$OUT/fetch.log" "$SHEAF_TOP/scripts/kernels.sh" fetch "$K"
	# A copy of the build: the shared build dir may be rebuilt meanwhile.
	moddir=$(SHEAF_BUILD_COPY=$OUT/modules step "building the modules for $K" \
		"$OUT/build.log" "$SHEAF_TOP/scripts/kbuild.sh" "$K" | tail -n 1)
	step "making the initramfs" "$OUT/initramfs.log" \
		"$SHEAF_TOP/scripts/initramfs.sh" "$K" "$moddir" "$OUT/initramfs.cpio"
	"$SHEAF_TOP/scripts/vm.sh" "$K" "$OUT" --mode demo --initramfs "$OUT/initramfs.cpio"
}

main "$@"
