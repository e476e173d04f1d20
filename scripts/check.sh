#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/check.sh [K...]          (make check [KERNELS="K..."])
#
# The whole test matrix: installs what it needs, runs scripts/lint.sh once,
# the host tests of tools/sheafinfo (scripts/sheafinfo-test.sh) and the
# Debian package build with lintian (scripts/deb.sh), then for each kernel
# K (default: scripts/kernels.sh list) fetches it, builds the modules
# (scripts/kbuild.sh), checks who serves the upstream-named API in what was
# built (scripts/upstream-check.sh), makes an initramfs
# (scripts/initramfs.sh) and runs the kselftest collection in QEMU
# (scripts/vm.sh); then the DKMS round trip and consumer build
# (scripts/dkms-check.sh K) and a VM that loads the DKMS-installed module
# with depmod and modprobe (vm.sh --mode dkms); on the kernels of
# SHEAF_TRACER_KERNELS (default "6.1 7.2": the oldest and the newest), the
# tracer VM (vm.sh --mode tracers, an initramfs with perf, trace-cmd and
# bpftrace: selftests/sheaf/tracers.sh), a row "K/tracers" of its own.
# The matrix's "debug" kernel (scripts/debug-kernel.sh: KASAN, lockdep,
# kmemleak and more) is built on first use and runs the same suite; its
# DKMS row is SKIP (no Debian headers package), with the reason.
# Logs of kernel K go to out/logs/K/: modules/ (the build that was
# tested, copied from the shared build dir), fetch.log, build.log,
# upstream.log, initramfs.log, vm.log (what vm.sh printed), console.log (the guest's
# kernel log), result.txt (its KTAP), summary; those of its DKMS steps to
# out/logs/K/dkms/, those of the tracer VM to out/logs/K/tracers/.  Host
# steps log to out/logs/{lint,sheafinfo,deb}.log.
#
# Ends with a table per kernel and a last line "N passed, N failed,
# N skipped" summing the test cases of all kernels; a step that failed
# without a failed test case of its own (lint, fetch, build, boot, a kernel
# error in the console) counts as one failed.  Exits non-zero on any
# failure.
#
# Environment: SHEAF_STRESS_SECONDS (length of each stress case; default
# sheaf.sh's 8 s, and DEBUG_STRESS_SECONDS on the debug kernel) and the
# other variables of scripts/vm.sh pass through.
#
# The first kernel also boots hardened: init_on_alloc=1 init_on_free=1 on
# the kernel command line, the cases about what objects hold and who may
# read the layer's files, and the pointer scan (out/logs/K/hardened/).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

DEPS=(qemu-system-x86 busybox-static bash-static cpio rsync make binutils)
LOGS=$SHEAF_TOP/out/logs
ROWS=()
TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
FAILURES=0
DEB=''	# the Debian package, once built
# Its initramfs is 20 times the size of the others: a subset bounds the time.
TRACER_KERNELS=${SHEAF_TRACER_KERNELS-6.1 7.2}
# Each stress case on the debug kernel: both together run for minutes.
DEBUG_STRESS_SECONDS=90
NOTES=()	# why each failed row failed, repeated under the table
# The hardened boot: its kernel command line and cases.
HARDENED_APPEND="init_on_alloc=1 init_on_free=1"
HARDENED_CASES=init_on_alloc,init_paths,gfp_zero,verify,sysfs_access

banner() {
	printf '\n=== %s\n' "$*"
}

# Shows the end of a failed step's log.
show_tail() {
	local file=$1

	echo "--- last lines of $file:"
	tail -n 30 "$file" | sed 's/^/    | /'
}

# The table's columns; the first fits "6.12-rt/hardened".
ROW_FORMAT='%-16s | %6s | %6s | %7s | %17s | %22s | %s'

# "-" where a figure does not apply; the figures add up to the last line.
add_row() {	# add_row K PASSED FAILED SKIPPED EXPECTED SECONDS VERDICT
	# shellcheck disable=SC2059 # the format is ROW_FORMAT
	ROWS+=("$(printf "$ROW_FORMAT" "$@")")
	[[ $2 == - ]] || TOTAL_PASSED=$((TOTAL_PASSED + $2))
	[[ $3 == - ]] || TOTAL_FAILED=$((TOTAL_FAILED + $3))
	[[ $4 == - ]] || TOTAL_SKIPPED=$((TOTAL_SKIPPED + $4))
	[[ $7 == PASS || $7 == SKIP ]] || FAILURES=$((FAILURES + 1))
}

run_lint() {
	local rc=0 failed

	banner "lint"
	mkdir -p "$LOGS"
	"$SHEAF_TOP/scripts/lint.sh" "$@" 2>&1 | tee "$LOGS/lint.log" || rc=${PIPESTATUS[0]}
	if [[ $rc -eq 0 ]]; then
		add_row lint - - - - - PASS
	else
		add_row lint - 1 - - - FAIL
		# The tools that failed, from lint.sh's summary, or how it ended.
		failed=$(grep ' FAIL' "$LOGS/lint.log" | tr -s ' ' | paste -sd ';' -) ||
			failed="last line of $LOGS/lint.log: $(tail -n 1 "$LOGS/lint.log")"
		NOTES+=("lint: exit $rc;$failed")
	fi
}

# The sheafinfo host tests: their own passed/failed figures.
run_sheafinfo_tests() {
	local log=$LOGS/sheafinfo.log rc=0 passed failed

	banner "sheafinfo (host)"
	"$SHEAF_TOP/scripts/sheafinfo-test.sh" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
	passed=$(grep -c '^ok ' "$log") || true
	failed=$(grep -c '^not ok ' "$log") || true
	# A failure before any case ran (the build) counts as one.
	[[ $rc -eq 0 || $failed -gt 0 ]] || failed=1
	if [[ $rc -eq 0 ]]; then
		add_row sheafinfo "$passed" "$failed" - - - PASS
	else
		add_row sheafinfo "$passed" "$failed" - - - FAIL
	fi
}

run_deb() {
	local log=$LOGS/deb.log

	banner "Debian package (host)"
	if "$SHEAF_TOP/scripts/deb.sh" >"$log" 2>&1; then
		DEB=$(tail -n 1 "$log")
		echo "deb: $DEB, lintian clean"
		add_row deb - - - - - PASS
	else
		step_failed deb DEB "$log"
	fi
}

# A step's failure before the VM: one failed, no test results.
step_failed() {	# step_failed K STEP LOG
	echo "$1: $2 FAILED"
	show_tail "$3"
	add_row "$1" - 1 - - - "$2-FAIL"
	NOTES+=("$1: $2 failed; last line of $3: $(tail -n 1 "$3")")
}

# The reason vm.sh gave for a failed run, and the first kernel log
# excerpt it showed, for the notes under the table (CI keeps the end).
vm_failed() {	# vm_failed ROW SUMMARY VMLOG
	local where

	NOTES+=("$1: $(summary_field "$2" reason)")
	# Not every failure has a kernel log excerpt (a tracer case has none).
	where=$(grep -A 12 -m 1 -E '^(console.log line|kernel log of case) ' "$3" |
		sed 's/^/    /') || true
	[[ -z $where ]] || NOTES+=("$where")
}

summary_field() {	# summary_field FILE NAME
	sed -n "s/^$2=//p" "$1"
}

# The row of a kselftest VM run from its summary in DIR; a run that left
# none failed as a step.  Returns 1 then.
add_vm_row() {	# add_vm_row ROW DIR
	local row=$1 dir=$2 s=$2/summary

	if [[ ! -f $s ]]; then
		step_failed "$row" VM "$dir/vm.log"
		return 1
	fi
	add_row "$row" "$(summary_field "$s" passed)" "$(summary_field "$s" failed)" \
		"$(summary_field "$s" skipped)" "$(summary_field "$s" expected_warnings)" \
		"$(summary_field "$s" seconds)$(retries_note "$s")" \
		"$(summary_field "$s" verdict)"
	[[ "$(summary_field "$s" verdict)" == PASS ]] || vm_failed "$row" "$s" "$dir/vm.log"
	return 0
}

# How long each stress case runs on K: minutes on the checker kernel,
# where races have the most to show; SHEAF_STRESS_SECONDS when set.
stress_seconds() {
	if [[ -n ${SHEAF_STRESS_SECONDS:-} ]]; then
		echo "$SHEAF_STRESS_SECONDS"
	elif [[ $1 == debug ]]; then
		echo "$DEBUG_STRESS_SECONDS"
	fi
}

run_kernel() {
	local k=$1 dir=$LOGS/$1 moddir

	banner "$k"
	rm -rf "$dir"
	mkdir -p "$dir"
	echo "$k: fetch"
	"$SHEAF_TOP/scripts/kernels.sh" fetch "$k" >"$dir/fetch.log" 2>&1 ||
		{ step_failed "$k" FETCH "$dir/fetch.log"; return 0; }
	echo "$k: build"
	# A copy: another tree's make check may build for K while this one runs.
	if ! moddir=$(SHEAF_BUILD_COPY=$dir/modules "$SHEAF_TOP/scripts/kbuild.sh" "$k" \
		2>"$dir/build.log" | tail -n 1) ||
		[[ -z $moddir ]]; then
		step_failed "$k" BUILD "$dir/build.log"
		return 0
	fi
	echo "$k: upstream-named API"
	"$SHEAF_TOP/scripts/upstream-check.sh" "$k" "$moddir" >"$dir/upstream.log" 2>&1 ||
		{ step_failed "$k" UPSTREAM "$dir/upstream.log"; return 0; }
	echo "$k: initramfs"
	"$SHEAF_TOP/scripts/initramfs.sh" "$k" "$moddir" "$dir/initramfs.cpio" \
		>"$dir/initramfs.log" 2>&1 ||
		{ step_failed "$k" INITRAMFS "$dir/initramfs.log"; return 0; }
	SHEAF_STRESS_SECONDS=$(stress_seconds "$k") \
		"$SHEAF_TOP/scripts/vm.sh" "$k" "$dir" --initramfs "$dir/initramfs.cpio" 2>&1 |
		tee "$dir/vm.log" || true

	add_vm_row "$k" "$dir" || return 0
	[[ $k != "$HARDENED_KERNEL" ]] || run_hardened "$k"
	run_dkms "$k" "$moddir"
	if [[ " $TRACER_KERNELS " == *" $k "* ]]; then
		run_tracers "$k" "$moddir"
	fi
}

# The tracer VM of kernel K: selftests/sheaf/tracers.sh with perf,
# trace-cmd and bpftrace in the initramfs.  Says how long it added.
run_tracers() {
	local k=$1 moddir=$2 dir=$LOGS/$1/tracers row=$1/tracers start=$SECONDS

	rm -rf "$dir"
	mkdir -p "$dir"
	echo "$k: tracer initramfs"
	"$SHEAF_TOP/scripts/initramfs.sh" --tracers "$k" "$moddir" "$dir/initramfs.cpio" \
		>"$dir/initramfs.log" 2>&1 ||
		{ step_failed "$row" INITRAMFS "$dir/initramfs.log"; return 0; }
	"$SHEAF_TOP/scripts/vm.sh" "$k" "$dir" --mode tracers --initramfs "$dir/initramfs.cpio" 2>&1 |
		tee "$dir/vm.log" || true
	rm -f "$dir/initramfs.cpio"	# 240 MB, made again in 20 s
	echo "$k: the tracer VM added $((SECONDS - start))s"
	add_vm_row "$row" "$dir"
}

# The kselftest VM of kernel K again, with the kernel zeroing objects on
# allocation and on free, running the cases that care.
run_hardened() {
	local k=$1 dir=$LOGS/$1/hardened row=$1/hardened

	rm -rf "$dir"
	mkdir -p "$dir"
	SHEAF_VM_APPEND="${SHEAF_VM_APPEND:+$SHEAF_VM_APPEND }$HARDENED_APPEND sheaf.cases=$HARDENED_CASES" \
		"$SHEAF_TOP/scripts/vm.sh" "$k" "$dir" --initramfs "$LOGS/$k/initramfs.cpio" 2>&1 |
		tee "$dir/vm.log" || true
	add_vm_row "$row" "$dir"
}

# The DKMS round trip of kernel K (scripts/dkms-check.sh), then a VM that
# loads what DKMS installed with depmod and modprobe.  Run after the
# kselftest VM of K, which built the modules the initramfs needs.  A
# kernel built here (debug) has no headers package: its row is SKIP.
run_dkms() {
	local k=$1 moddir=$2 dir=$LOGS/$1/dkms row=$1/dkms s

	rm -rf "$dir"
	mkdir -p "$dir"
	if ! is_stock_kernel "$k"; then
		echo "$k: dkms SKIPPED: no Debian headers package for DKMS to build against"
		add_row "$row" - - 1 - - SKIP
		NOTES+=("$row: skipped: $k is built from source here, DKMS and its modprobe VM need a Debian headers package")
		return 0
	fi
	echo "$k: dkms add/build/install/remove, consumer"
	# The package is installed where a kernel builds in a chroot.
	SHEAF_DEB=$DEB "$SHEAF_TOP/scripts/dkms-check.sh" "$k" >"$dir/dkms-check.log" 2>&1 ||
		{ step_failed "$row" DKMS "$dir/dkms-check.log"; return 0; }
	"$SHEAF_TOP/scripts/initramfs.sh" "$k" "$moddir" "$dir/initramfs.cpio" \
		"$SHEAF_CACHE/dkms/$k/lib/modules" >"$dir/initramfs.log" 2>&1 ||
		{ step_failed "$row" INITRAMFS "$dir/initramfs.log"; return 0; }
	"$SHEAF_TOP/scripts/vm.sh" "$k" "$dir" --mode dkms --initramfs "$dir/initramfs.cpio" 2>&1 |
		tee "$dir/vm.log" || true
	s=$dir/summary
	if [[ ! -f $s ]]; then
		step_failed "$row" VM "$dir/vm.log"
		return 0
	fi
	if [[ "$(summary_field "$s" verdict)" == PASS ]]; then
		add_row "$row" - - - "$(summary_field "$s" expected_warnings)" \
			"$(summary_field "$s" seconds)$(retries_note "$s")" PASS
	else
		add_row "$row" - 1 - "$(summary_field "$s" expected_warnings)" \
			"$(summary_field "$s" seconds)$(retries_note "$s")" \
			"$(summary_field "$s" verdict)"
		vm_failed "$row" "$s" "$dir/vm.log"
	fi
}

# Boot failures that a retry got past stay visible in the table.
retries_note() {
	local attempts

	attempts=$(summary_field "$1" attempts)
	[[ $attempts == 1 ]] || echo " (boot $attempts tries)"
}

print_table() {
	local row

	banner "summary"
	# shellcheck disable=SC2059 # the format is ROW_FORMAT
	printf "$ROW_FORMAT\n" kernel passed failed skipped \
		"warnings expected" "boot-to-result seconds" verdict
	printf '%s\n' "-----------------+--------+--------+---------+-------------------+------------------------+--------"
	for row in "${ROWS[@]}"; do
		echo "$row"
	done
	[[ ${#NOTES[@]} -eq 0 ]] && return
	printf '\nwhy (failed and skipped rows):\n'
	printf '%s\n' "${NOTES[@]}" | sed '/^$/d'
}

main() {
	local kernels k start=$SECONDS wall

	if [[ $# -gt 0 ]]; then
		kernels=("$@")
	else
		read -r -a kernels <<<"$("$SHEAF_TOP/scripts/kernels.sh" list)"
	fi
	HARDENED_KERNEL=${kernels[0]}
	"$SHEAF_TOP/scripts/deps.sh" "${DEPS[@]}"
	run_lint "${kernels[@]}"
	run_sheafinfo_tests
	run_deb
	for k in "${kernels[@]}"; do
		run_kernel "$k"
	done

	print_table
	wall=$((SECONDS - start))
	printf '\ntotal wall time: %dm%02ds; logs in %s\n' $((wall / 60)) $((wall % 60)) "$LOGS"
	echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
	[[ $FAILURES -eq 0 ]]
}

main "$@"
