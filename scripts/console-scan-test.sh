#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/console-scan-test.sh
#
# Self-check of scripts/console-scan.awk (run by make lint): kernel report
# lines it must flag, ordinary log lines it must not, and expect-warn
# regions.  Prints one "ok"/"not ok" line per sample; exits non-zero on any
# "not ok".
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

SCAN=$SHEAF_TOP/scripts/console-scan.awk
FAILED=0
N=0

# Lines a kernel prints when something is wrong, as the stock and debug
# kernels print them (timestamps, caller ids and all).
MUST_FLAG=(
	'[   12.345678] BUG: KASAN: slab-use-after-free in test_uaf+0x2a/0x40 [test_sheaf]'
	'[   12.345678] WARNING: possible circular locking dependency detected'
	'[   12.345678] WARNING: possible recursive locking detected'
	'[   12.345678] WARNING: inconsistent lock state'
	'[   12.345678] WARNING: suspicious RCU usage'
	'[   12.345678] BUG: sleeping function called from invalid context at mm/slub.c:4110'
	'[   12.345678] list_add corruption. prev->next should be next (ffff888003a1c0e8), but was 0000000000000000. (prev=ffff888003a1c0e8).'
	'[   12.345678] list_del corruption, ffff888003a1c0e8->next is LIST_POISON1 (dead000000000100)'
	'[   12.345678] ODEBUG: free active (active state 0) object: ffff888003a1c0e8 object type: rcu_head hint: 0x0'
	'[   12.345678] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)'
	'[   12.345678] kmemleak-report: unreferenced object 0xffff888004f1a2c0 (size 64):'
	'[   12.345678] UBSAN: array-index-out-of-bounds in sheafmod.c:412:3'
	'[   12.345678] BUG t_prefill (Tainted: G    B   O      ): Poison overwritten'
	'[   12.345678] BUG kmalloc-64 (Not tainted): Redzone overwritten'
	'[   12.345678] BUG kmalloc-64 (Not tainted): Object already free'
	'[   12.345678] Object corrupt'
	'[   12.345678] INFO: task sheaf.sh:123 blocked for more than 120 seconds.'
	'[   12.345678] INFO: lockdep is turned off.'
	'[   12.345678] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:'
	'[   12.345678] rcu: INFO: rcu_preempt self-detected stall on CPU'
	'[   12.345678] WARNING: CPU: 1 PID: 92 at sheafmod.c:1234 sheaf_return+0x40/0x80 [sheafmod]'
	'[   12.345678] Oops: general protection fault, probably for non-canonical address 0xdffffc0000000001: 0000 [#1] PREEMPT SMP KASAN'
	'[   12.345678] Kernel panic - not syncing: Fatal exception'
	'[   12.345678] kernel BUG at mm/slub.c:500!'
	'[   12.345678] DEBUG_LOCKS_WARN_ON(1)'
	'[   12.345678] ODEBUG: free active (active state 0) object: 000000001234abcd object type: work_struct hint: sheaf_flush_work+0x0/0x40 [sheafmod]'
	'[   12.345678] refcount_t: underflow; use-after-free.'
	'[   12.345678] BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 34s!'
	'[    1.234567] [    T1] BUG: KASAN: double-free in sheaf_cache_free+0x10/0x20 [sheafmod]'
)

# Ordinary lines of a good run.
MUST_NOT_FLAG=(
	'[    0.000000] Linux version 6.12.95-sheaf-debug (root@host) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP PREEMPT'
	'[    0.000000] kasan: KernelAddressSanitizer initialized (generic)'
	'[    0.000000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar'
	'[    0.512345] kmemleak: Kernel memory leak detector initialized (mem pool available: 14000)'
	'[    0.512345] kmemleak: Automatic memory scanning thread ended'
	'[    2.000000] ODEBUG: selftest passed'
	'[    3.000000] sheaf_test: case prefill_basic: start'
	'[    3.100000] sheaf_test: case prefill_basic: pass'
	'[    4.000000] sheaf-out: # BUG: KASAN: this is test output, not a report'
	'[    4.000000] sheaf-out: not ok 3 WARNING: in a test name'
	'[    5.000000] kmemleak-report:     hex dump (first 32 bytes):'
	'[    5.000000] kmemleak-report:   backtrace (crc 1234abcd):'
	'[    6.000000] smpboot: CPU 2 is now offline'
	'[    6.000000] Freeing unused kernel image (initmem) memory: 2048K'
	'[    7.000000] sheaf-init: done, exit 0'
)

check() {	# check NAME EXPECTED INPUT
	local got

	N=$((N + 1))
	got=$(printf '%s\n' "$3" | awk -f "$SCAN" | sort | paste -sd' ')
	if [[ $got == "$2" ]]; then
		echo "ok $N $1"
	else
		echo "not ok $N $1"
		echo "#   input:    ${3//$'\n'/$'\n'#             }"
		echo "#   expected: $2"
		echo "#   got:      $got"
		FAILED=$((FAILED + 1))
	fi
}

# A WARN splat as the kernel prints it, with $1 as its message line and
# $2, if given, as its header (default: 6.x's).
splat() {
	printf '%s\n' \
		'[   10.000000] ------------[ cut here ]------------' \
		"$1" \
		"${2:-[   10.000001] WARNING: CPU: 0 PID: 80 at sheafmod.c:900 sheaf_return+0x3c/0x60 [sheafmod]}" \
		'[   10.000002] Modules linked in: test_sheaf(O) sheafmod(O)' \
		'[   10.000003] ---[ end trace 0000000000000000 ]---'
}

region() {	# region TAG TEXT: TEXT inside an expect-warn region
	printf '%s\n%s\n%s\n' \
		"[    9.000000] sheaf_test: expect-warn begin $1" "$2" \
		"[   11.000000] sheaf_test: expect-warn end $1"
}

main() {
	local line

	echo "TAP version 13"
	for line in "${MUST_FLAG[@]}"; do
		check "flags: ${line#*] }" "bad 1 expected 0" "$line"
	done
	for line in "${MUST_NOT_FLAG[@]}"; do
		check "passes: ${line#*] }" "expected 0" "$line"
	done

	check "a WARN splat inside an expect-warn region is expected" \
		"expected 1" "$(region misuse "$(splat '[   10.000000] sheafmod: misuse')")"
	check "a splat with 7.x's header inside a region is expected" \
		"expected 1" "$(region misuse "$(splat '[   10.000000] sheafmod: misuse' \
		'[   10.000001] WARNING: sheafmod.c:900 at sheaf_return+0x3c/0x60 [sheafmod], CPU#0: sheaf.sh/80')")"
	check "the same splat outside any region is an error" \
		"bad 3 expected 0" "$(splat '[   10.000000] sheafmod: misuse')"
	check "list corruption inside a region is still an error" \
		"bad 3 expected 0" "$(region misuse "$(splat \
		'[   10.000000] list_del corruption. next->prev should be ffff888003a1c0e8, but was dead000000000122')")"
	check "a second WARNING: in an expected splat is an error" \
		"bad 3 expected 0" "$(region misuse "$(splat \
		'[   10.000000] WARNING: suspicious RCU usage')")"
	check "KASAN inside a region is still an error" \
		"bad 2 expected 0" "$(region misuse \
		'[   10.000000] BUG: KASAN: slab-out-of-bounds in sheaf_alloc+0x20/0x40 [sheafmod]')"
	check "a region begun and never ended" \
		"expected 0 open misuse" '[    9.000000] sheaf_test: expect-warn begin misuse'

	echo "1..$N"
	echo "# console-scan: $((N - FAILED)) of $N samples as expected"
	[[ $FAILED -eq 0 ]]
}

main "$@"
