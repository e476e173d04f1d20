#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/upstream-check.sh K MODDIR
#
# Checks, from the symbols of what scripts/kbuild.sh K built in MODDIR, who
# serves the upstream-named prefill API of sheaf_upstream.h:
#   - sheafmod.ko defines none of the slab's names (a kernel that has them
#     would clash), only its sheaf_upstream_*() functions;
#   - test_sheaf_upstream.ko, a module, calls sheafmod's functions and none
#     of the slab's: no kernel of the matrix exports those to modules;
#   - test_sheaf_upstream_builtin.o, the same source compiled as built-in
#     code, calls the slab's own functions on kernels that have them
#     (6.18 and later) and none of sheafmod's, and sheafmod's elsewhere.
# The guest then checks at run time who served the module's calls
# (sheaf.sh, case upstream_routing).  Prints one line per check; exits
# non-zero if one fails.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

NATIVE="kmem_cache_prefill_sheaf kmem_cache_alloc_from_sheaf_noprof
	kmem_cache_refill_sheaf kmem_cache_return_sheaf kmem_cache_sheaf_size"
OURS="sheaf_upstream_prefill_sheaf sheaf_upstream_alloc_from_sheaf
	sheaf_upstream_refill_sheaf sheaf_upstream_return_sheaf
	sheaf_upstream_sheaf_size"
FAILED=0

# Every symbol name in object $1 of the given nm kind: U (undefined) or D
# (defined).
symbols() {
	local obj=$1 kind=$2

	if [[ $kind == U ]]; then
		nm -u "$obj" | awk '{ print $NF }'
	else
		nm --defined-only "$obj" | awk '{ print $NF }'
	fi
}

result() {	# result OK|FAIL TEXT
	echo "$1: $2"
	[[ $1 == OK ]] || FAILED=1
}

# expect OBJ KIND "WANTED..." "UNWANTED..." WHAT
expect() {
	local obj=$1 kind=$2 want=$3 avoid=$4 what=$5 s missing=() extra=()
	local -A have=()

	while IFS= read -r s; do
		have[$s]=1
	done < <(symbols "$obj" "$kind")
	for s in $want; do
		[[ -n ${have[$s]:-} ]] || missing+=("$s")
	done
	for s in $avoid; do
		[[ -z ${have[$s]:-} ]] || extra+=("$s")
	done
	if [[ ${#missing[@]} -eq 0 && ${#extra[@]} -eq 0 ]]; then
		result OK "${obj##*/}: $what"
	else
		result FAIL "${obj##*/}: $what; missing: ${missing[*]:-none}; unexpected: ${extra[*]:-none}"
	fi
}

# True if release $1 (e.g. 6.12.95+deb12-amd64) is 6.18 or later.
has_sheaves() {
	local v=${1%%[-+]*}

	[[ $(printf '%s\n' 6.18 "$v" | sort -V | head -n 1) == 6.18 ]]
}

main() {
	[[ $# -eq 2 ]] || { sed -n '4s/^# //p' "$0" >&2; exit 2; }
	local k=$1 moddir=$2 release
	local st=$moddir/selftests/sheaf

	release=$("$SHEAF_TOP/scripts/kernels.sh" path "$k" release)
	expect "$moddir/sheafmod.ko" D "$OURS" "$NATIVE" \
		"defines sheaf_upstream_*(), none of the slab's names"
	expect "$st/test_sheaf_upstream.ko" U "$OURS" "$NATIVE" \
		"the module calls sheafmod's functions"
	if has_sheaves "$release"; then
		expect "$st/test_sheaf_upstream_builtin.o" U "$NATIVE" "$OURS" \
			"built in, it calls the slab's own ($release has them)"
	else
		expect "$st/test_sheaf_upstream_builtin.o" U "$OURS" "$NATIVE" \
			"built in, it calls sheafmod's ($release has no native sheaves)"
	fi
	exit "$FAILED"
}

main "$@"
