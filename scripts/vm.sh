#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/vm.sh K OUTDIR [--mode check|tracers|demo|dkms|bench] [--modules DIR]
#                               [--initramfs FILE] [--icount]
#
# Boots kernel K (fetched by scripts/kernels.sh) in QEMU/TCG with 4 vCPUs
# on two NUMA nodes, runs one mode of the test VM's init (scripts/vm-init.sh)
# and decides the outcome.
#
#   --mode       check (default): the kselftest collection; tracers:
#                selftests/sheaf/tracers.sh alone (the initramfs needs the
#                tools: scripts/initramfs.sh --tracers); demo: the demo;
#                dkms: modprobe of the DKMS-installed module (the initramfs
#                needs its /lib/modules: scripts/initramfs.sh's 4th argument);
#                bench: the benchmark module (scripts/bench.sh)
#   --modules    the built tree to test (default: what scripts/kbuild.sh K
#                built, $SHEAF_CACHE/build/K/src); an initramfs is made
#                from it in OUTDIR
#   --initramfs  boot this initramfs (scripts/initramfs.sh) instead
#   --icount     -accel tcg -icount shift=0,sleep=off and one vCPU (on
#                the same two nodes) instead of multi-threaded TCG on
#                four: guest time counts executed instructions
#
# Environment:
#   SHEAF_STRESS_SECONDS  length of each stress case (sheaf.sh's default: 8)
#   SHEAF_VM_TIMEOUT      host-side limit per boot, seconds (default: the
#                         guest's test timeout plus 300)
#   SHEAF_VM_APPEND       more kernel command line
#   SHEAF_BENCH_PARTS     bench mode: the parts to run (sheaf_bench parts=)
#
# OUTDIR gets console.log (ttyS0: the kernel log), result.txt (ttyS1: what
# the init reports), summary (key=value, for scripts/check.sh and
# scripts/bench.sh; accel= says how TCG ran the last boot) and, for each
# boot that failed before the init started, console.boot-fail-N.log.
#
# FAIL when: a test is "not ok"; the result or its exit line is missing; the
# guest times out; a module is still loaded at the end; the console shows a
# kernel warning, BUG, oops, panic, lockdep, KASAN, UBSAN, kmemleak or RCU
# stall report.  A WARNING splat inside a region the test module marks with
# "sheaf_test: expect-warn begin TAG" ... "sheaf_test: expect-warn end TAG"
# is expected: counted, not a failure.
#
# A boot that dies before the init reports its start (e.g. the "Oops: int3"
# MTTCG sometimes causes in early boot) is a boot failure, not a test
# result: it is retried twice, the last time with one TCG thread.  A test
# failure is never retried.
#
# Exit: 0 PASS, 1 FAIL, 2 boot failure after the retries, 3 usage or setup.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

GUEST_TIMEOUT=600	# selftests/sheaf/settings
BOOT_ATTEMPTS=3
CONTEXT_BEFORE=5
CONTEXT_AFTER=25

usage() {
	sed -n '4,5s/^# \{0,1\}//p' "$0" >&2
	exit 3
}

# --- the VM --------------------------------------------------------------------

cmdline() {
	local mode=$1 words

	# panic=-1 oops=panic: an oops ends the VM at once (-no-reboot).
	# loglevel=7: the test module's pr_info markers reach the console.
	# printk.devkmsg=on: the init's lines in the log are not rate limited.
	# slab_nomerge: a test cache gets its own slabs, so that objects left
	# in it show up when it is destroyed instead of hiding in a shared
	# cache.  init_on_alloc/init_on_free stay at the distro's defaults.
	words="console=ttyS0 panic=-1 oops=panic loglevel=7 printk.devkmsg=on"
	words+=" slab_nomerge sheaf.mode=$mode"
	if [[ $mode == bench && -n ${SHEAF_BENCH_PARTS:-} ]]; then
		words+=" sheaf.bench=$SHEAF_BENCH_PARTS"
	fi
	if [[ -n ${SHEAF_STRESS_SECONDS:-} ]]; then
		words+=" sheaf.stress=$SHEAF_STRESS_SECONDS"
		[[ $GUEST_TIMEOUT -eq 600 ]] || words+=" sheaf.timeout=$GUEST_TIMEOUT"
	fi
	echo "$words${SHEAF_VM_APPEND:+ $SHEAF_VM_APPEND}"
}

# Boots once; leaves console.log and result.txt in $OUTDIR.  Returns
# QEMU's status, 124 on the host-side timeout.
boot() {
	local accel=$1 mode=$2 rc=0 machine

	# icount runs one vCPU at a time, never multi-threaded; with more
	# than one the guest hangs bringing up the others, so it gets one
	# vCPU (it is for single-CPU cost), still on two nodes, the second
	# one without CPUs, so that NUMA code paths run as they do below.
	if [[ $accel == icount ]]; then
		machine=(-accel tcg -icount "shift=0,sleep=off" -m 2G -smp 1
			-object "memory-backend-ram,size=1G,id=m0"
			-object "memory-backend-ram,size=1G,id=m1"
			-numa "node,memdev=m0,cpus=0,nodeid=0"
			-numa "node,memdev=m1,nodeid=1")
	else
		machine=(-accel "tcg,thread=$accel"
			-m 2G -smp "4,sockets=2,cores=2,threads=1"
			-object "memory-backend-ram,size=1G,id=m0"
			-object "memory-backend-ram,size=1G,id=m1"
			-numa "node,memdev=m0,cpus=0-1,nodeid=0"
			-numa "node,memdev=m1,cpus=2-3,nodeid=1")
	fi
	rm -f "$OUTDIR/console.log" "$OUTDIR/result.txt"
	timeout -k 10 "$HOST_TIMEOUT" qemu-system-x86_64 \
		"${machine[@]}" \
		-nodefaults -display none -no-reboot \
		-serial "file:$OUTDIR/console.log" \
		-serial "file:$OUTDIR/result.txt" \
		-kernel "$VMLINUZ" -initrd "$INITRAMFS" \
		-append "$(cmdline "$mode")" </dev/null || rc=$?
	return $rc
}

# The result channel without the \r a tty may add.
result_lines() {
	if [[ -f $OUTDIR/result.txt ]]; then
		tr -d '\r' <"$OUTDIR/result.txt"
	fi
}

# No early-exiting readers (grep -q, head) after a writer in this file:
# with pipefail, the writer's SIGPIPE would fail the pipeline.
started() {
	[[ $(result_lines | grep -c '^SHEAF-START ') -gt 0 ]]
}

# --- reading the result ---------------------------------------------------------

# Modes whose result is the kselftest runner's KTAP.
has_ktap() {
	[[ $1 == check || $1 == tracers ]]
}

# The mode's output: what the init reported between its markers.
result_body() {
	result_lines | sed -n '/^SHEAF-START /,/^SHEAF-[A-Z-]* /{/^SHEAF-/d;p}'
}

result_field() {	# result_field NAME: the rest of the line "SHEAF-NAME ..."
	result_lines | awk -v p="SHEAF-$1 " 'index($0, p) == 1 && !done {
		print substr($0, length(p) + 1); done = 1 }'
}

# Sets PASSED FAILED SKIPPED from the KTAP; adds to REASONS.  Cases are
# sheaf.sh's results, nested one level ("# ok 3 name") under the runner's
# line for the script ("ok 1 selftests: sheaf: sheaf.sh").
read_ktap() {
	local body=$1 plan nres top

	PASSED=$(grep -Ec '^# ok [0-9]+ ' <<<"$body" || true)
	SKIPPED=$(grep -Ec '^# ok [0-9]+ .*# SKIP' <<<"$body" || true)
	PASSED=$((PASSED - SKIPPED))
	FAILED=$(grep -Ec '^# not ok [0-9]+ ' <<<"$body" || true)
	nres=$((PASSED + SKIPPED + FAILED))
	plan=$(sed -n '/^# 1\.\./{s/^# 1\.\.\([0-9]*\).*/\1/p;q}' <<<"$body")
	top=$(grep -E '^(not )?ok [0-9]+ ' <<<"$body" || true)

	if [[ -z $top ]]; then
		REASONS+=("no result line from the kselftest runner")
	elif grep -q '^not ok' <<<"$top"; then
		REASONS+=("kselftest: ${top//$'\n'/; }")
	fi
	if [[ $nres -eq 0 ]] && grep -q '# SKIP' <<<"$top"; then
		# Nothing ran: in this VM the modules must load.
		REASONS+=("the whole target was skipped: $(grep -m1 -E '^# 1\.\.0' <<<"$body")")
	elif [[ -z $plan ]]; then
		REASONS+=("no KTAP plan (1..N) from sheaf.sh")
	elif [[ $nres -ne $plan ]]; then
		REASONS+=("sheaf.sh planned $plan cases, reported $nres")
	fi
	if [[ $FAILED -gt 0 ]]; then
		REASONS+=("not ok: $(sed -n 's/^# not ok [0-9]* //p' <<<"$body" | paste -sd, | sed 's/,/, /g')")
	fi
	# A failure that left no case line of its own still counts as one.
	if [[ $FAILED -eq 0 && ${#REASONS[@]} -gt 0 ]]; then
		FAILED=1
	fi
	return 0
}

# The printk console thread of PREEMPT_RT, preempted in the middle of a
# message, prints it again whole after a marker line: blanks the marker
# and the first copy, whole or partial, keeping console.log's numbering.
drop_replayed() {
	awk '{ l[NR] = $0 }
	END {
		for (i = 1; i <= NR; i++) {
			if (l[i] != "** replaying previous printk message **")
				continue
			l[i] = ""
			if (i > 1 && i < NR && index(l[i + 1], l[i - 1]) == 1)
				l[i - 1] = ""
		}
		for (i = 1; i <= NR; i++)
			print l[i]
	}'
}

# Scans console.log.  Prints "bad LINE" for each line that shows a kernel
# error outside an expected region, "expected N" for the WARNING splats
# inside one, "open TAG" for each region begun and never ended.
scan_console() {
	tr -d '\r' <"$OUTDIR/console.log" | drop_replayed | awk '
	{
		msg = $0
		sub(/^\[ *[0-9]+\.[0-9]+\] /, "", msg)
		sub(/^\[ *[CT][0-9]+\] /, "", msg)
	}
	# What the init echoes into the log, and kmemleak details, are
	# context, not kernel errors.
	msg ~ /^(sheaf-out|kmemleak-report): / { next }
	match(msg, /sheaf_test: expect-warn (begin|end) [^ ]+/) {
		split(substr(msg, RSTART, RLENGTH), w, " ")
		if (w[3] == "begin") {
			open[w[4]]++
			depth++
		} else if (open[w[4]] > 0) {
			open[w[4]]--
			depth--
		}
		next
	}
	msg ~ /^-+\[ cut here \]-+$/ {
		in_splat = 1
		splat_expected = depth > 0
		header_seen = 0
		next
	}
	msg ~ /^---\[ end trace/ {
		if (in_splat && splat_expected && header_seen)
			expected++
		in_splat = 0
		next
	}
	# "BUG <cache> (Tainted: ...): ..." is how SLUB reports a corrupted
	# or leaked object.
	msg ~ /^BUG [^ ]+ \((Not tainted|Tainted[^)]*)\): / ||
	msg ~ /WARNING:|BUG:|kernel BUG at|Oops|Kernel panic|general protection fault|sleeping function called from invalid context|inconsistent lock state|possible recursive locking|circular locking|UBSAN:|suspected memory leak|RCU stall|rcu_.* detected stall|self-detected stall|blocked for more than [0-9]+ seconds/ {
		# The first WARNING: of an expected splat is its header.
		if (in_splat && splat_expected && !header_seen && msg ~ /^WARNING:/) {
			header_seen = 1
			next
		}
		print "bad", NR
	}
	END {
		print "expected", expected + 0
		for (t in open)
			if (open[t] > 0)
				print "open", t
	}'
}

# Lines around console line $1.
console_context() {
	local n=$1 from

	from=$((n > CONTEXT_BEFORE ? n - CONTEXT_BEFORE : 1))
	tr -d '\r' <"$OUTDIR/console.log" |
		sed -n "${from},$((n + CONTEXT_AFTER))p" | sed 's/^/    | /'
}

# Taints that back up the console scan, in case it lost lines: W (bit 9,
# a warning) must come with a splat in the console; D (7, an oops) and B
# (5, bad page or slab object) always fail.
check_taint() {
	local taint=$1 splats=$2

	[[ $taint =~ ^[0-9]+$ ]] || return 0
	if ((taint & (1 << 9))) && [[ $splats -eq 0 ]]; then
		REASONS+=("kernel tainted W (a warning) but the console shows none: lost log lines?")
	fi
	if ((taint & (1 << 7))); then
		REASONS+=("kernel tainted D (an oops)")
	fi
	if ((taint & (1 << 5))); then
		REASONS+=("kernel tainted B (bad page or slab object)")
	fi
	return 0
}

# Sets everything the summary reports for the last boot.
judge() {
	local mode=$1 qemu_rc=$2 body exitline left taint scan line n

	REASONS=() PASSED=0 FAILED=0 SKIPPED=0 EXPECTED=0 BAD_LINES=()
	[[ $qemu_rc -eq 124 ]] && REASONS+=("timeout: the guest ran over ${HOST_TIMEOUT}s (host-side limit)")
	body=$(result_body)
	exitline=$(result_field EXIT)
	left=$(result_field MODULES-LEFT)
	taint=$(result_field TAINT)

	if has_ktap "$mode"; then
		read_ktap "$body"
	fi
	# The tracer VM exists to run the tools: one missing is the test bed's fault.
	if [[ $mode == tracers && $SKIPPED -gt 0 ]]; then
		REASONS+=("tracers.sh skipped $SKIPPED case(s): a tool is missing from the initramfs")
	fi
	if [[ -z $exitline ]]; then
		REASONS+=("no exit line on the result channel (guest died or hung)")
	elif [[ ${exitline%% *} != 0 ]]; then
		REASONS+=("the guest reported exit ${exitline%% *}")
	fi
	if [[ -n $left && $left != none ]]; then
		REASONS+=("module(s) still loaded at the end: $left")
	fi

	scan=$(scan_console)
	while read -r line n; do
		case $line in
		bad) BAD_LINES+=("$n") ;;
		expected) EXPECTED=$n ;;
		open) REASONS+=("expect-warn region '$n' began and never ended") ;;
		esac
	done <<<"$scan"
	if [[ ${#BAD_LINES[@]} -gt 0 ]]; then
		REASONS+=("${#BAD_LINES[@]} kernel error line(s) in the console, first: $(
			tr -d '\r' <"$OUTDIR/console.log" | sed -n "${BAD_LINES[0]}p")")
	fi
	check_taint "$taint" $((EXPECTED + ${#BAD_LINES[@]}))

	if [[ ${#REASONS[@]} -gt 0 ]]; then
		VERDICT=FAIL
		! has_ktap "$mode" || [[ $FAILED -gt 0 ]] || FAILED=1
	else
		VERDICT=PASS
	fi
}

# --- output ---------------------------------------------------------------------

show_result() {
	local mode=$1 body

	body=$(result_body)
	if has_ktap "$mode"; then
		echo "--- KTAP ($K) ---"
	else
		echo "--- $mode output ($K) ---"
	fi
	if [[ -n $body ]]; then
		printf '%s\n' "$body"
	else
		echo "(nothing on the result channel)"
	fi
	echo "---"
}

# The kernel log of each failed case, when the test module marks where a
# case starts ("case NAME: start"): the module's own account of the failure.
show_failed_cases() {
	local name n

	sed -n 's/^# not ok [0-9]* \([^ ]*\).*/\1/p' <<<"$(result_body)" | while read -r name; do
		n=$(tr -d '\r' <"$OUTDIR/console.log" |
			grep -nF "case $name: start" | tail -n 1 | cut -d: -f1)
		[[ -n $n ]] || continue
		echo "kernel log of case $name (console.log line $n):"
		tr -d '\r' <"$OUTDIR/console.log" | tail -n "+$n" |
			grep -v '\] sheaf-out: ' |
			awk -v c="case $name: " 'NR > 1 && /case [^ ]+: start/ { stop = 1 }
				!stop && NR <= 20 { print } NR > 1 && index($0, c) { stop = 1 }' |
			sed 's/^/    | /'
	done
}

show_bad_lines() {
	local shown=0 last=-1000 n

	for n in "${BAD_LINES[@]}"; do
		# One context block per cluster of lines, three clusters at most.
		((n > last + CONTEXT_AFTER)) || continue
		((shown < 3)) || break
		echo "console.log line $n:"
		console_context "$n"
		last=$n
		shown=$((shown + 1))
	done
}

write_summary() {
	local attempts=$1 secs=$2 reason

	reason=$(printf '%s; ' "${REASONS[@]}")
	reason=${reason%; }
	cat >"$OUTDIR/summary" <<-EOF
		kernel=$K
		verdict=$VERDICT
		passed=$PASSED
		failed=$FAILED
		skipped=$SKIPPED
		expected_warnings=$EXPECTED
		seconds=$secs
		attempts=$attempts
		accel=$ACCEL
		reason=$reason
	EOF
}

# --- main -----------------------------------------------------------------------

parse_args() {
	MODE=check MODDIR='' INITRAMFS='' ICOUNT=''
	[[ $# -ge 2 ]] || usage
	K=$1 OUTDIR=$2
	shift 2
	while [[ $# -gt 0 ]]; do
		case $1 in
		--mode) MODE=${2:-}; shift 2 ;;
		--modules) MODDIR=${2:-}; shift 2 ;;
		--initramfs) INITRAMFS=${2:-}; shift 2 ;;
		--icount) ICOUNT=1; shift ;;
		*) usage ;;
		esac
	done
	[[ $MODE =~ ^(check|tracers|demo|dkms|bench)$ ]] || usage
}

setup() {
	"$SHEAF_TOP/scripts/deps.sh" qemu-system-x86
	mkdir -p "$OUTDIR"
	OUTDIR=$(cd "$OUTDIR" && pwd)
	VMLINUZ=$("$SHEAF_TOP/scripts/kernels.sh" path "$K" vmlinuz) || exit 3
	if [[ -z $INITRAMFS ]]; then
		MODDIR=${MODDIR:-$SHEAF_CACHE/build/$K/src}
		INITRAMFS=$OUTDIR/initramfs.cpio
		"$SHEAF_TOP/scripts/initramfs.sh" "$K" "$MODDIR" "$INITRAMFS" || exit 3
	fi
	[[ -f $INITRAMFS ]] || die "no initramfs $INITRAMFS"
	# Longer stress cases need a longer per-test limit in the guest.
	if [[ -n ${SHEAF_STRESS_SECONDS:-} ]]; then
		[[ $SHEAF_STRESS_SECONDS =~ ^[0-9]+$ ]] || die "SHEAF_STRESS_SECONDS must be a number"
		GUEST_TIMEOUT=$((GUEST_TIMEOUT + 10 * SHEAF_STRESS_SECONDS))
	fi
	if [[ $MODE == demo || $MODE == dkms ]]; then
		HOST_TIMEOUT=${SHEAF_VM_TIMEOUT:-300}
	elif [[ $MODE == bench ]]; then
		HOST_TIMEOUT=${SHEAF_VM_TIMEOUT:-2400}
	else
		HOST_TIMEOUT=${SHEAF_VM_TIMEOUT:-$((GUEST_TIMEOUT + 300))}
	fi
	rm -f "$OUTDIR"/console.boot-fail-*.log "$OUTDIR"/result.boot-fail-*.txt
}

main() {
	local attempt accel rc start secs figures

	parse_args "$@"
	setup
	for ((attempt = 1; attempt <= BOOT_ATTEMPTS; attempt++)); do
		accel=multi
		[[ $attempt -lt $BOOT_ATTEMPTS ]] || accel=single
		[[ -z $ICOUNT ]] || accel=icount
		ACCEL=$accel
		log "$K: booting ($MODE, tcg thread=$accel, attempt $attempt)"
		start=$SECONDS
		rc=0
		boot "$accel" "$MODE" || rc=$?
		secs=$((SECONDS - start))
		started && break
		mv "$OUTDIR/console.log" "$OUTDIR/console.boot-fail-$attempt.log"
		mv "$OUTDIR/result.txt" "$OUTDIR/result.boot-fail-$attempt.txt" 2>/dev/null || true
		echo "!!!! $K: BOOT FAILURE on attempt $attempt (qemu exit $rc after ${secs}s):" \
			"the guest died before its init started; nothing of ours was loaded"
		scan_boot_failure "$OUTDIR/console.boot-fail-$attempt.log"
		if [[ $attempt -lt $BOOT_ATTEMPTS ]]; then
			echo "!!!! $K: retrying the boot$( [[ -n $ICOUNT || $((attempt + 1)) -lt $BOOT_ATTEMPTS ]] ||
				echo " with -accel tcg,thread=single")"
		fi
	done

	if ! started; then
		VERDICT=BOOT-FAIL PASSED=0 FAILED=1 SKIPPED=0 EXPECTED=0
		REASONS=("boot failed $BOOT_ATTEMPTS times, see $OUTDIR/console.boot-fail-*.log")
		write_summary "$BOOT_ATTEMPTS" "$secs"
		echo "$K: BOOT-FAIL: ${REASONS[0]}"
		exit 2
	fi
	[[ $attempt -eq 1 ]] ||
		echo "!!!! $K: booted on attempt $attempt after $((attempt - 1)) boot failure(s)"

	judge "$MODE" "$rc"
	write_summary "$attempt" "$secs"
	show_result "$MODE"
	if has_ktap "$MODE"; then
		figures="$PASSED passed, $FAILED failed, $SKIPPED skipped; $EXPECTED expected warning(s)"
	else
		figures="$MODE; $EXPECTED expected warning(s)"
	fi
	if [[ $VERDICT == PASS ]]; then
		echo "$K: PASS ($figures; ${secs}s boot-to-result)"
		exit 0
	fi
	echo "$K: FAIL ($figures; ${secs}s): $(printf '%s; ' "${REASONS[@]}" | sed 's/; $//')"
	show_failed_cases
	show_bad_lines
	echo "full console: $OUTDIR/console.log"
	exit 1
}

# What killed a boot: its first kernel error line, with context.
scan_boot_failure() {
	local log=$1 n

	n=$(tr -d '\r' <"$log" | awk '!n && /Oops|BUG:|Kernel panic|general protection fault|WARNING:/ {
		n = NR } END { if (n) print n }')
	if [[ -n $n ]]; then
		tr -d '\r' <"$log" | sed -n "$((n > 3 ? n - 3 : 1)),$((n + 12))p" | sed 's/^/    | /'
	else
		echo "    | (no kernel error in the console; last lines:)"
		tr -d '\r' <"$log" | tail -n 8 | sed 's/^/    | /'
	fi
}

main "$@"
