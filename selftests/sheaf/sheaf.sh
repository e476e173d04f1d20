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

set -u

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

DIR=$(cd "$(dirname "$0")" && pwd)
PARAMS=/sys/module/test_sheaf/parameters
UPSTREAM_PARAMS=/sys/module/test_sheaf_upstream/parameters
CORE_PARAMS=/sys/module/sheafmod/parameters
STRESS_SECONDS=${SHEAF_STRESS_SECONDS:-8}

failed=0
count=0
loaded_core=0

load() {	# load MODULE [params...]
	local mod=$1

	shift
	if [ -f "$DIR/$mod.ko" ]; then
		insmod "$DIR/$mod.ko" "$@"
	else
		modprobe "$mod" "$@"
	fi
}

ktap_result() {	# ktap_result ok|not-ok NAME [directive]
	count=$((count + 1))
	case $1 in
	ok)	echo "ok $count $2${3:+ # $3}" ;;
	*)	echo "not ok $count $2${3:+ # $3}"; failed=$((failed + 1)) ;;
	esac
}

online_cpus_but_0() {
	local c

	for c in /sys/devices/system/cpu/cpu[1-9]*; do
		[ -w "$c/online" ] && echo "$c"
	done
}

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
				[ -w "$f" ] && echo 1 > "$f"
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
				echo "$v" > "$d/capacity" 2>/dev/null &&
					echo "$v" > "$d/barn_max_full" 2>/dev/null &&
					echo "$v" > "$d/barn_max_empty" 2>/dev/null &&
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
	local mod=$1 name=$2 params result helper= tuner=

	params=$(case_params "$name")
	[ "$name" = passthrough_param ] && echo 1 > "$CORE_PARAMS/passthrough"
	case $name in
	stress*)	rm -f /tmp/sheaf-hotplug-cycles /tmp/sheaf-tunings
			cycle_cpus & helper=$!
			tune_caches & tuner=$! ;;
	shrinker*)	press_memory & helper=$! ;;
	esac

	# shellcheck disable=SC2086 # params is a word list
	if load "$mod" "run=$name" $params; then
		result=$(cat "/sys/module/$mod/parameters/result")
		if [ "$name" = upstream_routing ] && [ "$result" = pass ]; then
			check_routing
		fi
		# A case that leaves the module pinned has failed.
		rmmod "$mod" || result="$mod cannot be unloaded"
	else
		result="load failed"
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

tracefs() {
	local t

	for t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
		[ -d "$t/events" ] && { echo "$t"; return; }
	done
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
	echo 1 > "$t/events/sheaf/enable"
	load test_sheaf run=refill && rmmod test_sheaf
	load test_sheaf run=exchanges && rmmod test_sheaf
	echo 0 > "$t/events/sheaf/enable"
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

main() {
	local cases upstream_cases upstream_ok=1 passthrough nr_upstream

	echo "KTAP version 1"
	if [ "$(id -u)" -ne 0 ]; then
		echo "1..0 # SKIP must be run as root"
		exit $KSFT_SKIP
	fi

	if ! grep -q '^sheafmod ' /proc/modules; then
		if ! load sheafmod; then
			echo "1..0 # SKIP sheafmod cannot be loaded"
			exit $KSFT_SKIP
		fi
		loaded_core=1
	fi

	# The cases test the layer itself: nothing passes through by default,
	# also on kernels built with KASAN or slub_debug, where it would.
	passthrough=$(cat "$CORE_PARAMS/passthrough")
	echo 0 > "$CORE_PARAMS/passthrough"

	if ! load test_sheaf; then
		echo "1..0 # SKIP test_sheaf cannot be loaded"
		exit $KSFT_SKIP
	fi
	cases=$(cat "$PARAMS/cases")
	rmmod test_sheaf
	# With sheafmod loaded, the upstream-named consumer must load too.
	if load test_sheaf_upstream; then
		upstream_cases=$(cat "$UPSTREAM_PARAMS/cases")
		rmmod test_sheaf_upstream
	else
		upstream_ok=0
		upstream_cases=test_sheaf_upstream
	fi

	# shellcheck disable=SC2086 # word lists
	nr_upstream=$(set -- $upstream_cases; echo $#)
	# shellcheck disable=SC2086 # cases is a word list
	set -- $cases
	echo "1..$(($# + nr_upstream + 1 + loaded_core))"
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
	check_tracepoints
	echo "$passthrough" > "$CORE_PARAMS/passthrough"

	if [ $loaded_core -eq 1 ]; then
		if rmmod sheafmod; then
			ktap_result ok unload_sheafmod
		else
			ktap_result not-ok unload_sheafmod
		fi
	fi

	echo "# Totals: pass:$((count - failed)) fail:$failed"
	[ $failed -eq 0 ] && exit $KSFT_PASS
	exit $KSFT_FAIL
}

main "$@"
