#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/sheafinfo-test.sh
#
# Builds tools/sheafinfo (make sheafinfo: -Wall -Wextra -Werror, static) and
# runs it against fake sysfs trees in a temporary directory: the table, the
# JSON, refreshing, and its errors.  Cheap: runs on the host, no VM.
# Prints "ok N name" / "not ok N name"; exits non-zero on any failure.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

SHEAFINFO=$SHEAF_TOP/out/sheafinfo
TESTS=0
FAILED=0
TMP=

# The counters, in stats.c's order, as "stats" lists them.
COUNTERS=(alloc_cpu_sheaf free_cpu_sheaf sheaf_flush sheaf_refill sheaf_alloc
	sheaf_free barn_get barn_get_fail barn_put barn_put_fail
	sheaf_prefill_fast sheaf_prefill_slow sheaf_prefill_oversize
	sheaf_return_fast sheaf_return_slow alloc_slab free_slab free_remote
	alloc_from_sheaf misuse shrinker_scan)

# make_cache ROOT NAME OBJSIZE CAPACITY CACHED BARNS [COUNTER=VALUE...]:
# a cache directory as stats.c writes it.  BARNS: "full/empty" per node.
make_cache() {
	local root=$1 name=$2 dir c v node=0 b
	local -A set=()
	dir=$root/kernel/sheaf/$name
	mkdir -p "$dir"
	echo "$3" >"$dir/object_size"
	echo "$4" >"$dir/capacity"
	echo "$5" >"$dir/cached"
	: >"$dir/barns"
	for b in $6; do
		echo "node$node full=${b%/*} empty=${b#*/}" >>"$dir/barns"
		node=$((node + 1))
	done
	shift 6
	for c in "$@"; do
		set[${c%=*}]=${c#*=}
	done
	: >"$dir/stats"
	for c in "${COUNTERS[@]}"; do
		v=${set[$c]:-0}
		echo "$c $v" >>"$dir/stats"
		echo "$v C0=$v C1=0" >"$dir/$c"
	done
	echo 10 >"$dir/barn_max_full"
	echo 10 >"$dir/barn_max_empty"
}

result() {	# result NAME STATUS
	TESTS=$((TESTS + 1))
	if [[ $2 -eq 0 ]]; then
		echo "ok $TESTS $1"
	else
		echo "not ok $TESTS $1"
		FAILED=$((FAILED + 1))
	fi
}

# expect CASE: runs the case in a process of its own, where set -e holds
# (in a function called left of || it would not); shows its output when
# it fails.
expect() {
	local name=$1 rc=0
	SHEAFINFO_TEST_DIR=$TMP "$0" --case "$name" >"$TMP/out" 2>&1 || rc=$?
	result "$name" "$rc"
	if [[ $rc -ne 0 ]]; then
		sed 's/^/#   /' "$TMP/out"
	fi
}

# --- the cases ---------------------------------------------------------------

table_once() {
	local out
	out="$("$SHEAFINFO" --sysfs "$TMP/two")"
	echo "$out"
	grep -q 'Caches: 2   Objects cached: 130' <<<"$out"
	# Sorted by name: "alpha" before "zeta".
	[[ "$(awk '$1 == "alpha" || $1 == "zeta" { print $1 }' <<<"$out" | tr '\n' ' ')" == "alpha zeta " ]]
	grep -Eq '^alpha +64 +60 +120  0:2/1 1:0/3 +90\.0% +75\.0% +7 +3$' <<<"$out"
	# No allocation yet: no rate, not 0%.
	grep -Eq '^zeta +512 +14 +10  0:0/0 1:0/0 +- +- +0 +0$' <<<"$out"
}

table_is_default() {
	diff <("$SHEAFINFO" --sysfs "$TMP/two") <("$SHEAFINFO" -1 --sysfs "$TMP/two")
}

json_valid() {
	local out
	out="$("$SHEAFINFO" --json --sysfs "$TMP/two")"
	echo "$out"
	jq -e '.caches | length == 2' <<<"$out"
	jq -e '.caches[0] | .name == "alpha" and .object_size == 64 and
		.capacity == 60 and .cached == 120 and .alloc_hit_rate == 0.9 and
		.free_hit_rate == 0.75 and .stats.sheaf_prefill_fast == 7 and
		(.stats | length) == 21 and .barns[1] == {node: 1, full: 0, empty: 3}' <<<"$out"
	jq -e '.caches[1].alloc_hit_rate == null' <<<"$out"
}

json_escapes_names() {
	make_cache "$TMP/odd" 'a"b\c' 8 60 0 "0/0"
	"$SHEAFINFO" --json --sysfs "$TMP/odd" | jq -e '.caches[0].name == "a\"b\\c"'
}

refresh_count() {
	local out
	out="$("$SHEAFINFO" -d 0.05 -n 3 --sysfs "$TMP/two")"
	[[ "$(grep -c '^ Caches: 2' <<<"$out")" -eq 3 ]]
	[[ "$("$SHEAFINFO" -d 0.05 -n 2 --json --sysfs "$TMP/two" | jq -s length)" -eq 2 ]]
}

refresh_until_signal() {
	local rc=0
	timeout --preserve-status -s INT 1 "$SHEAFINFO" -d 0.1 --sysfs "$TMP/two" >/dev/null || rc=$?
	[[ $rc -eq 0 ]]
}

no_caches() {
	mkdir -p "$TMP/empty/kernel/sheaf"
	"$SHEAFINFO" --sysfs "$TMP/empty" | grep -q 'Caches: 0'
	"$SHEAFINFO" --json --sysfs "$TMP/empty" | jq -e '.caches == []'
}

not_loaded() {
	local rc=0 err
	err="$("$SHEAFINFO" --sysfs "$TMP/nothing" 2>&1 >/dev/null)" || rc=$?
	echo "$err"
	[[ $rc -eq 1 && $err == *"is sheafmod loaded?"* ]]
}

malformed_file() {
	local rc=0 err
	cp -r "$TMP/two" "$TMP/bad"
	echo "many" >"$TMP/bad/kernel/sheaf/zeta/capacity"
	err="$("$SHEAFINFO" --sysfs "$TMP/bad" 2>&1 >/dev/null)" || rc=$?
	echo "$err"
	[[ $rc -eq 1 && $err == *"zeta: Invalid argument"* ]]
}

# A cache destroyed while being read leaves a partial directory: skipped.
vanishing_cache() {
	cp -r "$TMP/two" "$TMP/gone"
	rm "$TMP/gone/kernel/sheaf/zeta/stats"
	"$SHEAFINFO" --sysfs "$TMP/gone" | grep -q 'Caches: 1'
}

bad_usage() {
	local opt rc
	for opt in "-d 0" "-d x" "-n 1.5" "--bogus" "extra"; do
		rc=0
		# shellcheck disable=SC2086 # split the option and its value
		"$SHEAFINFO" $opt --sysfs "$TMP/two" >/dev/null 2>&1 || rc=$?
		[[ $rc -eq 2 ]] || { echo "'$opt' exits $rc, not 2"; return 1; }
	done
	"$SHEAFINFO" --help | grep -q '^Usage:'
}

write_error() {
	local rc=0
	"$SHEAFINFO" --sysfs "$TMP/two" >/dev/full 2>/dev/null || rc=$?
	[[ $rc -eq 1 ]]
}

main() {
	if [[ ${1:-} == --case ]]; then
		TMP=${SHEAFINFO_TEST_DIR:?}
		"$2"
		return
	fi
	"$SHEAF_TOP/scripts/deps.sh" gcc make libc6-dev jq
	make -s -C "$SHEAF_TOP" sheafinfo
	TMP="$(mktemp -d "${TMPDIR:-/tmp}/sheafinfo-test.XXXXXX")"
	# shellcheck disable=SC2064 # expand now
	trap "rm -rf '$TMP'" EXIT

	make_cache "$TMP/two" zeta 512 14 10 "0/0 0/0"
	make_cache "$TMP/two" alpha 64 60 120 "2/1 0/3" alloc_cpu_sheaf=90 \
		alloc_slab=10 free_cpu_sheaf=75 free_slab=25 \
		sheaf_prefill_fast=7 sheaf_prefill_slow=3

	expect table_once
	expect table_is_default
	expect json_valid
	expect json_escapes_names
	expect refresh_count
	expect refresh_until_signal
	expect no_caches
	expect not_loaded
	expect malformed_file
	expect vanishing_cache
	expect bad_usage
	expect write_error
	echo "sheafinfo: $((TESTS - FAILED)) passed, $FAILED failed"
	[[ $FAILED -eq 0 ]]
}

main "$@"
