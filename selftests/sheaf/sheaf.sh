#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kselftest for sheafmod.  Each case of the companion modules test_sheaf.ko
# (the layer's own API, white box) and test_sheaf_upstream.ko (a consumer
# written with the slab's upstream names, sheaf_upstream.h) runs in its own
# load: the module's init runs the case, fails the load when the case
# fails, and reports "pass" or "skip: why" in its "result" parameter.
# Output is KTAP.
#
# The modules are taken from this script's directory when present (the test
# bed installs them there), else from the installed modules (modprobe).
#
# Environment:
#   SHEAF_STRESS_SECONDS  length of each stress case (default 8)
#   SHEAF_CASES           run only these cases (names, space or comma
#                         separated); the pointer scan always runs

set -u

# shellcheck source=selftests/sheaf/ktap.sh
. "$(dirname "$0")/ktap.sh"

PARAMS=/sys/module/test_sheaf/parameters
UPSTREAM_PARAMS=/sys/module/test_sheaf_upstream/parameters
CORE_PARAMS=/sys/module/sheafmod/parameters
STRESS_SECONDS=${SHEAF_STRESS_SECONDS:-8}
ONLY=" $(echo "${SHEAF_CASES:-}" | tr ',' ' ') "
FAILSLAB=/sys/kernel/debug/failslab
FAIL_PAGE_ALLOC=/sys/kernel/debug/fail_page_alloc
FAULT_TIMES=1000000000
# Copies of what the layer showed, for the pointer scan at the end.
SCAN_DIR=/tmp/sheaf-scan

online_cpus_but_0() {
	local c

	for c in /sys/devices/system/cpu/cpu[1-9]*; do
		[ -w "$c/online" ] && echo "$c"
	done
}

# Writes VALUE to FILE, quietly: the files of a cache that a case
# detaches meanwhile go away under the writer.
put() {	# put VALUE FILE
	echo "$1" > "$2"
} 2>/dev/null

# Take CPUs offline and online again, and shrink every sheaf cache, until
# killed.  CPU 0 stays up.
cycle_cpus() {
	local cpus c f n=0

	cpus=$(online_cpus_but_0)
	[ -n "$cpus" ] || return 0
	while :; do
		for c in $cpus; do
			echo 0 > "$c/online" 2>/dev/null || continue
			for f in /sys/kernel/sheaf/*/shrink; do
				put 1 "$f"
			done
			sleep 0.2
			echo 1 > "$c/online"
			n=$((n + 1))
			echo "$n" > /tmp/sheaf-hotplug-cycles
		done
	done
}

# Root's tuning while the caches are in use: every cache's capacity and
# barn limits cycle through small, large and default values until killed.
tune_caches() {
	local d v n=0

	while :; do
		for v in 4 0 1 64 0; do
			for d in /sys/kernel/sheaf/*/; do
				[ -w "$d/capacity" ] || continue
				put "$v" "$d/capacity" &&
					put "$v" "$d/barn_max_full" &&
					put "$v" "$d/barn_max_empty" &&
					n=$((n + 1))
			done
			echo "$n" > /tmp/sheaf-tunings
			sleep 0.3
		done
	done
}

# Memory pressure as the kernel applies it to slab caches: drop_caches runs
# every shrinker until they free next to nothing.  Repeated until killed.
press_memory() {
	while :; do
		sleep 0.5
		echo 2 > /proc/sys/vm/drop_caches
	done
}

# Fault injection for stress_faults: failslab on the caches the case
# creates with SLAB_FAILSLAB (cache-filter), fail_page_alloc on the
# threads the case marks (task-filter), both silent and counting down
# "times" from FAULT_TIMES, so that what is left says how many failed.
arm_faults() {
	local d

	for d in $FAILSLAB $FAIL_PAGE_ALLOC; do
		echo 0 > "$d/probability"
		echo 1 > "$d/interval"
		echo $FAULT_TIMES > "$d/times"
		echo 0 > "$d/space"
		echo 0 > "$d/verbose"
		echo Y > "$d/task-filter"
		echo N > "$d/ignore-gfp-wait"
	done
	echo Y > "$FAILSLAB/cache-filter"
	echo N > "$FAIL_PAGE_ALLOC/ignore-gfp-highmem"
	echo 0 > "$FAIL_PAGE_ALLOC/min-order"
}

# failslab's cache-filter fails the caches whose failslab file says so:
# set it on stress_faults' caches once the case has made them, then tell
# the case (it waits for that).  Gives up after a minute.
arm_caches() {
	local c n=0

	for c in t_faults t_churn0 t_churn1 t_churn2; do
		while [ ! -e "/sys/kernel/slab/$c/failslab" ]; do
			n=$((n + 1))
			[ $n -lt 600 ] || return
			sleep 0.1
		done
		echo 1 > "/sys/kernel/slab/$c/failslab"
	done
	echo Y > "$PARAMS/armed"
}

# Several failure probabilities (percent), in turn until killed.
vary_faults() {
	local p

	while :; do
		for p in 1 10 30 60; do
			echo $p > "$FAILSLAB/probability"
			echo $p > "$FAIL_PAGE_ALLOC/probability"
			sleep 0.5
		done
	done
}

# Stops vary_faults (pid $1) and injecting; prints how many failures
# failslab and fail_page_alloc injected.
stop_faults() {	# stop_faults PID
	local d

	kill "$1"
	wait "$1" 2>/dev/null
	for d in $FAILSLAB $FAIL_PAGE_ALLOC; do
		echo 0 > "$d/probability"
		echo -n "$((FAULT_TIMES - $(cat "$d/times"))) "
		echo -1 > "$d/times"
	done
}

# Whether the kernel can inject what stress_faults needs.
have_faults() {
	[ -w "$FAILSLAB/cache-filter" ] && [ -w "$FAIL_PAGE_ALLOC/task-filter" ]
}

# Checks the fault injection stress_faults saw: the case's own verdict on
# whether the kernel can inject (skip or pass) must agree with debugfs,
# and where it could, failures must have been injected.  Sets result.
check_faults() {	# check_faults FAILSLAB_COUNT FAIL_PAGE_ALLOC_COUNT
	local kernel=$(($1 + $2)) layer

	layer=$(sed -n 's/.*layer faults injected: \([0-9]*\).*/\1/p' \
		"/sys/module/test_sheaf/parameters/figures")
	echo "# faults injected: $((kernel + ${layer:-0})) (failslab $1, fail_page_alloc $2, sheafmod's own ${layer:-0})"
	case $result in
	pass)
		if ! have_faults; then
			result="passed, but this kernel cannot inject faults"
		elif [ "$1" -eq 0 ] || [ "$2" -eq 0 ]; then
			result="failslab or fail_page_alloc injected no failure"
		fi
		;;
	skip*)
		! have_faults || result="skipped, but $FAILSLAB and $FAIL_PAGE_ALLOC are there"
		;;
	esac
}

# The mode each file of a cache's sysfs directory must have: tuning files
# root's to read and write, shrink root's to write, everything else (the
# statistics) root's to read, as /proc/slabinfo.
expected_mode() {
	case ${1##*/} in
	capacity|barn_max_full|barn_max_empty)	echo 600 ;;
	shrink)	echo 200 ;;
	*)	echo 400 ;;
	esac
}

as_nobody() {	# as_nobody COMMAND: runs it as the unprivileged user nobody
	su -s /bin/sh nobody -c "$1"
}

# Fails unless COMMAND, as nobody, fails with EACCES.
denied() {	# denied COMMAND
	local out

	if out=$(as_nobody "$1" 2>&1); then
		result="nobody could: $1"
		return 1
	fi
	case $out in
	*"Permission denied"*)	return 0 ;;
	*)	result="nobody: $1: '$out', not EACCES"; return 1 ;;
	esac
}

# sysfs_access: every file of the case's cache has its mode, root reads
# what is readable, and an unprivileged user gets EACCES on every read
# and write.  Sets result.
check_access() {
	local dir=/sys/kernel/sheaf/t_access f want n=0

	[ -d $dir ] || { result="no $dir"; return; }
	for f in "$dir"/*; do
		want=$(expected_mode "$f")
		[ "$(stat -c %a "$f")" = "$want" ] ||
			{ result="$f has mode $(stat -c %a "$f"), not $want"; return; }
		if [ "$want" != 200 ] && ! cat "$f" >/dev/null; then
			result="root cannot read $f"
			return
		fi
		n=$((n + 1))
	done
	if ! as_nobody true 2>/dev/null; then
		result="skip: no unprivileged user nobody to switch to"
		return
	fi
	# The switch works: an unprivileged user, who can read what anyone can.
	[ "$(as_nobody 'id -u')" != 0 ] || { result="su nobody stayed root"; return; }
	as_nobody "cat /proc/version" >/dev/null ||
		{ result="nobody cannot read /proc/version"; return; }
	for f in "$dir"/*; do
		if [ "$(expected_mode "$f")" != 200 ]; then
			denied "cat $f" || return
		fi
		if [ "$(expected_mode "$f")" != 400 ]; then
			denied "echo 0 > $f" || return
		fi
	done
	echo "# sysfs_access: $n files root-only; nobody got EACCES reading and writing each"
}

# Keeps a copy of everything the layer shows now: every sheaf cache's
# sysfs files, sheafmod's debugfs entries, and sheafinfo's output.
collect_outputs() {	# collect_outputs TAG
	local f

	mkdir -p $SCAN_DIR
	for f in /sys/kernel/sheaf/*/*; do
		[ -f "$f" ] && [ -r "$f" ] && echo "$f: $(cat "$f" 2>&1)"
	done > "$SCAN_DIR/sysfs-$1"
	find /sys/kernel/debug -path /sys/kernel/debug/tracing -prune -o \
		-iname '*sheaf*' -type f -print 2>/dev/null | while read -r f; do
		echo "$f: $(cat "$f" 2>&1)"
	done > "$SCAN_DIR/debugfs-$1"
	if command -v sheafinfo >/dev/null; then
		{ sheafinfo; sheafinfo --json; } > "$SCAN_DIR/sheafinfo-$1" 2>&1
	fi
}

# No unhashed kernel pointer in anything the layer or its tests showed:
# the copies collect_outputs and check_tracepoints kept, and the kernel
# log lines of sheafmod and its test modules.
check_pointers() {
	local pat='(0x)?ffff[0-9a-f]{12}' hits n

	mkdir -p $SCAN_DIR
	# What our modules print (their prefixes, or a cache's name), not the
	# kernel's own reports, which show addresses to root by design.
	dmesg | grep -E '\] (sheafmod|sheaf_test|sheaf_bench|sheaf_example|sheaf_consumer|t_[a-z0-9_]+): ' > "$SCAN_DIR/dmesg"
	n=$(cat "$SCAN_DIR"/* | wc -l)
	hits=$(grep -EiH "$pat" "$SCAN_DIR"/* | head -n 5)
	if [ -n "$hits" ]; then
		echo "# pointer_scan: unhashed kernel pointers:"
		echo "#   ${hits//$'\n'/$'\n'#   }"
		ktap_result not-ok pointer_scan
	else
		echo "# pointer_scan: $n lines of sysfs, debugfs, tracefs, sheafinfo and kernel log, no kernel pointer"
		ktap_result ok pointer_scan
	fi
}

# Whether case NAME is to run (SHEAF_CASES).
selected() {
	[ "$ONLY" = "  " ] || [ "${ONLY#* "$1" }" != "$ONLY" ]
}

select_cases() {	# select_cases NAME...: those of them to run
	local name

	for name in "$@"; do
		selected "$name" && echo "$name"
	done
}

# Runs COMMAND in a memory cgroup of its own (cgroup v2), made for it and
# removed after: memcg_charge reads there who is charged for what.  With
# no cgroup v2 memory controller to be had, COMMAND runs where it is and
# the case skips.  An existing /sys/fs/cgroup is used, never mounted over.
# shellcheck disable=SC2317 # called through run_case's $wrap
in_memcg() {	# in_memcg COMMAND...
	local root=/sys/fs/cgroup cg=/sys/fs/cgroup/sheaf-test rc=0

	grep -q " $root " /proc/mounts || mount -t cgroup2 none "$root" 2>/dev/null
	if grep -qw memory "$root/cgroup.controllers" 2>/dev/null &&
		put +memory "$root/cgroup.subtree_control" && mkdir "$cg" 2>/dev/null; then
		(put "$BASHPID" "$cg/cgroup.procs"; "$@") || rc=$?
		rmdir "$cg"
		return "$rc"
	fi
	"$@"
}

# Cases that need something from the script while they run.
case_params() {
	case $1 in
	stress*)	echo "seconds=$STRESS_SECONDS" ;;
	esac
}

# Who served upstream_routing's prefill, allocation and return, while its
# cache still exists: sheafmod (its layer counted one of each, and the
# module depends on sheafmod) or the slab itself (no layer, no dependency).
# Sets result to "pass" or to what is wrong.
check_routing() {
	local mode dir=/sys/kernel/sheaf/t_up_route f n
	local holder=/sys/module/sheafmod/holders/test_sheaf_upstream

	mode=$(cat "$UPSTREAM_PARAMS/mode")
	echo "# upstream_routing: served by $mode"
	case $mode in
	sheafmod)
		[ -d "$dir" ] || { result="served by sheafmod, but there is no $dir"; return; }
		[ -e "$holder" ] || { result="served by sheafmod, but does not depend on it"; return; }
		for f in prefilled alloc_from_sheaf returned; do
			read -r n _ <"$dir/$f"
			echo "# upstream_routing: $f $n"
			[ "$n" = 1 ] || { result="served by sheafmod, but $f is $n, not 1"; return; }
		done
		;;
	native)
		[ ! -d "$dir" ] || { result="served natively, but sheafmod has $dir"; return; }
		[ ! -e "$holder" ] || { result="served natively, but depends on sheafmod"; return; }
		;;
	*)
		result="unknown mode '$mode'"
		;;
	esac
}

run_case() {	# run_case MODULE NAME
	local mod=$1 name=$2 params result helper='' tuner='' faults='' counts='' wrap=''

	params=$(case_params "$name")
	[ "$name" = passthrough_param ] && echo 1 > "$CORE_PARAMS/passthrough"
	case $name in
	stress*)	rm -f /tmp/sheaf-hotplug-cycles /tmp/sheaf-tunings
			cycle_cpus & helper=$!
			tune_caches & tuner=$! ;;
	shrinker*)	press_memory & helper=$! ;;
	esac
	if [ "$name" = stress_faults ] && have_faults; then
		arm_faults
		arm_caches &
		vary_faults & faults=$!
	fi

	[ "$name" = memcg_charge ] && wrap=in_memcg
	# shellcheck disable=SC2086 # params is a word list
	if $wrap load "$mod" "run=$name" $params; then
		result=$(cat "/sys/module/$mod/parameters/result")
		if [ "$name" = upstream_routing ] && [ "$result" = pass ]; then
			check_routing
		fi
		if [ "$name" = sysfs_access ] && [ "$result" = pass ]; then
			check_access
			collect_outputs "$name"
		fi
		if [ -r "/sys/module/$mod/parameters/figures" ]; then
			sed 's/; /\n/g' "/sys/module/$mod/parameters/figures" |
				sed '/^$/d; s/^/# /'
		fi
		[ -z "$faults" ] || counts=$(stop_faults "$faults")
		if [ "$name" = stress_faults ]; then
			# shellcheck disable=SC2086 # two numbers, or none
			check_faults ${counts:-0 0}
		fi
		# A case that leaves the module pinned has failed.
		rmmod "$mod" || result="$mod cannot be unloaded"
	else
		result="load failed"
		[ -z "$faults" ] || stop_faults "$faults" >/dev/null
	fi
	echo 0 > "$CORE_PARAMS/passthrough"

	if [ -n "$tuner" ]; then
		kill "$tuner"
		wait "$tuner" 2>/dev/null
	fi
	if [ -n "$helper" ]; then
		kill "$helper"
		wait "$helper" 2>/dev/null
		for c in $(online_cpus_but_0) /sys/devices/system/cpu/cpu[1-9]*; do
			[ -w "$c/online" ] && echo 1 > "$c/online" 2>/dev/null
		done
		case $name in
		stress*)
			echo "# cpu hotplug cycles: $(cat /tmp/sheaf-hotplug-cycles 2>/dev/null || echo 0)"
			echo "# caches retuned: $(cat /tmp/sheaf-tunings 2>/dev/null || echo 0)"
			;;
		esac
	fi

	case $result in
	pass)	ktap_result ok "$name" ;;
	skip*)	ktap_result ok "$name" "SKIP ${result#skip: }" ;;
	*)	echo "# $name: $result"; ktap_result not-ok "$name" ;;
	esac
}

# The layer's tracepoints fire: trace two cases and look for every event.
check_tracepoints() {
	local t ev missing=

	t=$(tracefs)
	if [ -z "$t" ] || [ ! -d "$t/events/sheaf" ]; then
		ktap_result ok tracepoints "SKIP no tracefs or no sheaf events"
		return
	fi
	echo > "$t/trace"
	tracefs_comms_off "$t"
	echo 1 > "$t/events/sheaf/enable"
	load test_sheaf run=refill && rmmod test_sheaf
	load test_sheaf run=exchanges && rmmod test_sheaf
	echo 0 > "$t/events/sheaf/enable"
	tracefs_comms_restore "$t"
	mkdir -p $SCAN_DIR
	cat "$t/trace" > "$SCAN_DIR/trace"
	for ev in sheaf_prefill sheaf_refill sheaf_return sheaf_barn sheaf_flush; do
		grep -q " $ev: cache=t_" "$t/trace" || missing="$missing $ev"
	done
	if [ -n "$missing" ]; then
		echo "# tracepoints: no event from:$missing"
		ktap_result not-ok tracepoints
	else
		grep -m 5 " sheaf_" "$t/trace" | sed 's/^/# /'
		ktap_result ok tracepoints
	fi
	echo > "$t/trace"
}

# The default of sheafmod.passthrough, as this script loaded it: on where
# KASAN runs (its runtime is in the kernel's symbols), since KASAN cannot
# see objects parked in sheaves; off on a kernel without slab debugging.
check_passthrough_default() {	# check_passthrough_default VALUE
	local want=N

	grep -qw __asan_load8 /proc/kallsyms && want=Y
	if [ $want = N ] &&
	   [ "$(cat /sys/kernel/slab/kmalloc-64/sanity_checks 2>/dev/null)" = 1 ]; then
		ktap_result ok passthrough_default "SKIP slub_debug is on: whether SLUB_DEBUG_ON or slub_debug= does not show"
	elif [ "$1" = $want ]; then
		echo "# passthrough_default: $1"
		ktap_result ok passthrough_default
	else
		echo "# passthrough_default: $1, expected $want"
		ktap_result not-ok passthrough_default
	fi
}

main() {
	local cases upstream_cases upstream_ok=1 passthrough nr_upstream nr_trace=1

	ktap_start
	rm -rf $SCAN_DIR

	# The cases test the layer itself: nothing passes through by default,
	# also on kernels built with KASAN or slub_debug, where it would.
	passthrough=$(cat "$CORE_PARAMS/passthrough")
	echo 0 > "$CORE_PARAMS/passthrough"

	if ! load test_sheaf; then
		echo "1..0 # SKIP test_sheaf cannot be loaded"
		exit $KSFT_SKIP
	fi
	# shellcheck disable=SC2046 # a word list
	cases=$(select_cases $(cat "$PARAMS/cases"))
	rmmod test_sheaf
	# With sheafmod loaded, the upstream-named consumer must load too.
	if load test_sheaf_upstream; then
		# shellcheck disable=SC2046 # a word list
		upstream_cases=$(select_cases $(cat "$UPSTREAM_PARAMS/cases"))
		rmmod test_sheaf_upstream
	else
		upstream_ok=0
		upstream_cases=test_sheaf_upstream
	fi

	# shellcheck disable=SC2086 # word lists
	nr_upstream=$(set -- $upstream_cases; echo $#)
	# shellcheck disable=SC2086 # cases is a word list
	set -- $cases
	selected tracepoints || nr_trace=0
	echo "1..$(($# + nr_upstream + nr_trace + 1 + 2 * loaded_core))"
	[ $loaded_core -eq 0 ] || check_passthrough_default "$passthrough"
	for name in "$@"; do
		run_case test_sheaf "$name"
	done
	if [ $upstream_ok -eq 1 ]; then
		for name in $upstream_cases; do
			run_case test_sheaf_upstream "$name"
		done
	else
		echo "# test_sheaf_upstream cannot be loaded"
		ktap_result not-ok test_sheaf_upstream
	fi
	[ $nr_trace -eq 0 ] || check_tracepoints
	check_pointers
	echo "$passthrough" > "$CORE_PARAMS/passthrough"

	unload_core

	ktap_totals
	[ $failed -eq 0 ] && exit $KSFT_PASS
	exit $KSFT_FAIL
}

main "$@"
