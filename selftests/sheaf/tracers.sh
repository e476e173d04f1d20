#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kselftest: sheafmod's tracepoints as the user-space tracers see them.
# Each case runs a tool around a workload and checks what the tool reports
# against the layer's own statistics:
#
#   perf_stat    perf stat counts sheaf:sheaf_prefill and sheaf:sheaf_return
#                of the example's cache: equal to its prefilled and returned
#                counters
#   perf_script  perf record -e 'sheaf:*' + perf script: all five events
#                with every field parsed, the returns' destinations as names
#   trace_cmd    trace-cmd record -e sheaf + report: all five events with
#                every field parsed, one sheaf_prefill line per prefill
#   bpftrace     a bpftrace map of prefills by wanted size and of returns by
#                destination: equal to the counters
#
# The workload is examples/sheaf_example.ko (ROUNDS rounds, one prefill
# and one return each; its cache lives until it is unloaded, so its
# counters can be read after the run); perf_script and trace_cmd add
# test_sheaf's refill and exchanges cases, which make every kind of
# event.  A tool that is not installed skips its case, saying so.  Output
# is KTAP.
#
# The modules are taken from this script's directory when present, else
# from the installed modules (modprobe).
#
# shellcheck disable=SC2317 # check_* and workload_* are called by name

set -u

# shellcheck source=selftests/sheaf/ktap.sh
. "$(dirname "$0")/ktap.sh"

# The tools run this script's workloads: by its absolute path.
SELF=$DIR/${0##*/}
ROUNDS=${SHEAF_TRACE_ROUNDS:-1000}
CACHE=sheaf_example
STATS=/sys/kernel/sheaf/$CACHE
TMP=
# What sheaf_example asks of every prefill (examples/sheaf_example.c).
EXAMPLE_WANTED=32
# The destinations of sheaf_return, as sheaf_internal.h numbers them.
TO_SPARE=0


# --- workloads, run by the tools as "$SELF workload NAME" ------------------------

# The example's workload; its module stays loaded for the counters.
workload_example() {
	load sheaf_example "rounds=$ROUNDS"
}

# Every kind of event: refills, barn traffic and flushes, then the example.
workload_all() {
	load test_sheaf run=refill && rmmod test_sheaf &&
		load test_sheaf run=exchanges && rmmod test_sheaf &&
		workload_example
}

# --- reading the results -------------------------------------------------------

stat_of() {	# stat_of NAME: the example cache's counter, all CPUs
	local v

	read -r v _ <"$STATS/$1"
	echo "$v"
}

# Unloads what a workload left loaded; fails the case if it cannot.
unload_workload() {
	local mod

	for mod in sheaf_example test_sheaf; do
		grep -q "^$mod " /proc/modules || continue
		rmmod "$mod" || { echo "# $mod cannot be unloaded"; return 1; }
	done
}

# expect NAME WHAT GOT WANT: one assertion; prints both sides.
expect() {
	echo "# $1: $2: $3 (expected $4)"
	[ "$3" = "$4" ]
}

# --- the cases -----------------------------------------------------------------

check_perf_stat() {
	local out=$TMP/perf-stat.txt filter="cache == \"$CACHE\"" prefills returns

	# The C locale: counts without thousands separators.
	LC_ALL=C perf stat -a -o "$out" \
		-e sheaf:sheaf_prefill --filter "$filter" \
		-e sheaf:sheaf_return --filter "$filter" \
		-- "$SELF" workload example || return 1
	sed '/^$/d; s/^/# /' "$out"
	prefills=$(awk '$2 == "sheaf:sheaf_prefill" { print $1 }' "$out")
	returns=$(awk '$2 == "sheaf:sheaf_return" { print $1 }' "$out")
	expect perf_stat "sheaf:sheaf_prefill events" "$prefills" "$(stat_of prefilled)" &&
		expect perf_stat "sheaf:sheaf_return events" "$returns" "$(stat_of returned)" &&
		expect perf_stat "prefilled" "$(stat_of prefilled)" "$ROUNDS"
}

# The line of each event, every field parsed (enum values as names), as
# perf script and trace-cmd report print it after the event's name.
EVENT_LINES=(
	'sheaf_prefill: +cache=[^ ]+ wanted=[0-9]+ size=[0-9]+ capacity=[0-9]+( failed)?$'
	'sheaf_return: +cache=[^ ]+ size=[0-9]+ to=(spare|barn|slab)$'
	'sheaf_refill: +cache=[^ ]+ before=[0-9]+ wanted=[0-9]+ ret=-?[0-9]+$'
	'sheaf_barn: +cache=[^ ]+ node=[0-9]+ (get|put) (ok|failed)$'
	'sheaf_flush: +cache=[^ ]+ objects=[0-9]+$'
)

# check_parsed CASE FILE: every one of the five events is in FILE, and
# every sheaf event line in it is parsed.  Prints the first of each.
check_parsed() {
	local name=$1 out=$2 re ev n all=0 ok=0

	for re in "${EVENT_LINES[@]}"; do
		ev=${re%%:*}
		n=$(grep -Ec "$re" "$out")
		grep -E -m 1 "$re" "$out" | sed 's/^ */# /'
		all=$((all + $(grep -c "$ev: " "$out")))
		ok=$((ok + n))
		[ "$n" -gt 0 ] || { echo "# $name: no parsed $ev line"; return 1; }
	done
	expect "$name" "sheaf events not parsed" $((all - ok)) 0
}

# count_returns FILE: "N D": the example's sheaf_return to=spare records in
# perf script's output, and how many of them repeat the record before them
# to the nanosecond with no other event of the cache in between.  The
# example prefills before every return, so such a repeat is no return of
# its own: perf has been seen to write one record twice (about one run in
# 40, on 6.1 and 7.2 alike; perf.data held the extra sample, the layer's
# counters and perf stat, trace-cmd and bpftrace counted 1000).  perf_stat
# and bpftrace count the returns exactly, so a return traced twice by the
# layer would still fail there.
count_returns() {
	awk -v cache="cache=$CACHE " '
		index($0, cache) == 0 { next }
		/sheaf:sheaf_return: .* to=spare$/ {
			if ($0 == prev) dup++; else n++
		}
		{ prev = $0 }
		END { print n + 0, dup + 0 }' "$1"
}

check_perf_script() {
	local data=$TMP/perf.data out=$TMP/perf-script.txt spare repeated

	perf record -q -a -o "$data" -e 'sheaf:*' \
		-- "$SELF" workload all >"$TMP/record.log" 2>&1 ||
		{ sed 's/^/# /' "$TMP/record.log"; return 1; }
	perf script --ns -i "$data" >"$out" 2>&1 || { sed 's/^/# /' "$out"; return 1; }
	read -r spare repeated < <(count_returns "$out")
	[ "$repeated" -eq 0 ] ||
		echo "# perf_script: $repeated sheaf_return record(s) of $CACHE written twice by perf"
	check_parsed perf_script "$out" &&
		expect perf_script "sheaf_return to=spare of $CACHE" "$spare" \
			"$(stat_of sheaf_return_fast)"
}

check_trace_cmd() {
	local data=$TMP/trace.dat out=$TMP/report.txt

	trace-cmd record -q -e sheaf -o "$data" "$SELF" workload all >"$TMP/record.log" 2>&1 ||
		{ sed 's/^/# /' "$TMP/record.log"; return 1; }
	trace-cmd report -i "$data" >"$out" 2>"$TMP/report.err" ||
		{ sed 's/^/# /' "$TMP/report.err"; return 1; }
	check_parsed trace_cmd "$out" &&
		expect trace_cmd "sheaf_prefill lines of $CACHE" \
			"$(grep -Ec "sheaf_prefill: +cache=$CACHE " "$out")" "$(stat_of prefilled)"
}

check_bpftrace() {
	local out=$TMP/bpftrace.txt prog spare other

	prog="tracepoint:sheaf:sheaf_prefill /args->cache == \"$CACHE\"/
		{ @prefill[args->wanted] = count(); }
	tracepoint:sheaf:sheaf_return /args->cache == \"$CACHE\"/
		{ @to[args->fate == $TO_SPARE ? \"spare\" : \"other\"] = count(); }"
	# -c takes an ELF binary only, not a script.
	bpftrace -e "$prog" -c "$(command -v bash) $SELF workload example" >"$out" 2>&1 ||
		{ sed 's/^/# /' "$out"; return 1; }
	sed '/^$/d; s/^/# /' "$out"
	spare=$(sed -n 's/^@to\[spare\]: //p' "$out")
	other=$(sed -n 's/^@to\[other\]: //p' "$out")
	expect bpftrace "@prefill[$EXAMPLE_WANTED]" \
		"$(sed -n "s/^@prefill\[$EXAMPLE_WANTED\]: //p" "$out")" "$(stat_of prefilled)" &&
		expect bpftrace "@to[spare]" "${spare:-0}" "$(stat_of sheaf_return_fast)" &&
		expect bpftrace "@to[other]" "${other:-0}" "$(stat_of sheaf_return_slow)"
}

run_case() {	# run_case NAME TOOL
	local name=$1 tool=$2 ok=1

	if ! command -v "$tool" >/dev/null; then
		ktap_result ok "$name" "SKIP $tool is not installed"
		return
	fi
	"check_$name" || ok=0
	unload_workload || ok=0
	if [ $ok -eq 1 ]; then
		ktap_result ok "$name"
	else
		ktap_result not-ok "$name"
	fi
}

main() {
	local t

	ktap_start
	t=$(tracefs)
	if [ -z "$t" ] || [ ! -d "$t/events/sheaf" ]; then
		echo "1..0 # SKIP no tracefs, or no sheaf events in it"
		[ $loaded_core -eq 0 ] || rmmod sheafmod
		exit $KSFT_SKIP
	fi

	TMP=$(mktemp -d "${TMPDIR:-/tmp}/sheaf-tracers.XXXXXX")
	echo "1..$((4 + loaded_core))"
	tracefs_comms_off "$t"
	run_case perf_stat perf
	run_case perf_script perf
	run_case trace_cmd trace-cmd
	run_case bpftrace bpftrace
	tracefs_comms_restore "$t"

	unload_core
	rm -rf "$TMP"

	ktap_totals
	[ $failed -eq 0 ] || exit $KSFT_FAIL
	# Not one tool: nothing was tested.
	[ $skipped -lt 4 ] || exit $KSFT_SKIP
	exit $KSFT_PASS
}

if [ "${1:-}" = workload ]; then
	"workload_$2"
	exit
fi
main "$@"
