#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test VM (scripts/initramfs.sh puts it there).
#
# Kernel command line:
#   sheaf.mode=check|tracers|demo|dkms|bench
#                          check (default): the kselftest collection but
#                          tracers.sh; tracers: tracers.sh alone (perf,
#                          trace-cmd and bpftrace: the initramfs made
#                          with scripts/initramfs.sh --tracers);
#                          demo: load sheafmod and the example, print the
#                          layer's statistics and sheafinfo, unload both;
#                          dkms: depmod, then modprobe the DKMS-installed
#                          sheafmod and the consumer built against it
#                          (/lib/modules, from scripts/dkms-check.sh),
#                          sheafinfo, unload both;
#                          bench: load sheafmod and bench/sheaf_bench.ko,
#                          print its CSV lines, unload both
#   sheaf.bench=PARTS      bench mode: sheaf_bench's parts= (default: all)
#   sheaf.stress=SECONDS   SHEAF_STRESS_SECONDS for sheaf.sh
#   sheaf.cases=A,B,...    SHEAF_CASES for sheaf.sh: only these cases
#   sheaf.timeout=SECONDS  the runner's per-test timeout, instead of the
#                          target's settings file
#
# Results go to the second serial port only, never to the kernel log, so
# that nothing a test prints can fake them:
#   SHEAF-START kernel=<uname -r> mode=<mode> uptime=<s>
#   ... the mode's output (KTAP for check) ...
#   SHEAF-KMEMLEAK <objects kmemleak reports> (kernels with kmemleak only)
#   SHEAF-MODULES-LEFT <modules still loaded, or "none">
#   SHEAF-TAINT <value of /proc/sys/kernel/tainted>
#   SHEAF-EXIT <0 pass, 1 fail> uptime=<s>
# The console (ttyS0) gets the same output as kernel log lines starting
# with "sheaf-out: ", so that a console log shows what ran when; the host
# ignores those lines when it scans the console for kernel errors.
#
# The VM must end by itself: reboot -f (QEMU runs with -no-reboot).

export PATH=/usr/sbin:/usr/bin:/sbin:/bin
RESULT=/dev/ttyS1
OUT=/tmp/sheaf-out

mount_filesystems() {
	# devtmpfs first: the shell opens /dev/null for background jobs and
	# silently fails to start them without it.
	mount -t devtmpfs devtmpfs /dev
	mount -t proc proc /proc
	# What udev would add; the kselftest runner writes to /dev/stdout.
	ln -s /proc/self/fd /dev/fd
	ln -s fd/0 /dev/stdin
	ln -s fd/1 /dev/stdout
	ln -s fd/2 /dev/stderr
	mount -t sysfs sysfs /sys
	mount -t tmpfs tmpfs /tmp
	mount -t debugfs debugfs /sys/kernel/debug
	mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null ||
		mount -t tracefs tracefs /sys/kernel/debug/tracing 2>/dev/null
}

cmdline_param() {	# cmdline_param NAME: value of sheaf.NAME=
	local word words

	read -r -a words </proc/cmdline
	for word in "${words[@]}"; do
		case $word in
		"sheaf.$1="*) echo "${word#*=}" ;;
		esac
	done
}

uptime_s() {
	cut -d' ' -f1 /proc/uptime
}

# Each line opens and closes the port: the close waits until the UART has
# sent everything, so nothing is lost to the reboot.
report() {
	echo "$*" >"$RESULT"
}

to_kmsg() {
	local line

	while IFS= read -r line; do
		echo "sheaf-out: $line" >/dev/kmsg
	done
}

# Runs "$@" with its output to the result port, the console (as kernel log
# lines) and $OUT; returns its exit status.
run_reported() {
	local rc

	{
		"$@" 2>&1
		echo $? >/tmp/sheaf-rc
	} | tee "$RESULT" "$OUT" | to_kmsg
	rc=$(cat /tmp/sheaf-rc)
	return "$rc"
}

# The kselftest runner on test $1 of the list, or on all of them but
# tracers.sh, whose tools only the tracer VM carries.
run_check() {
	local timeout tests=() t

	timeout=$(cmdline_param timeout)
	cd /kselftest || return 1
	if [ -n "${1:-}" ]; then
		tests=(-t "$1")
	else
		while read -r t; do
			[ "$t" = sheaf:tracers.sh ] || tests+=(-t "$t")
		done <kselftest-list.txt
	fi
	./run_kselftest.sh ${timeout:+-o "$timeout"} "${tests[@]}"
}

# Every file under /sys/kernel/sheaf/*/, as it reads.
print_stats() {
	local f v

	find /sys/kernel/sheaf -mindepth 2 -type f | sort | while read -r f; do
		if ! v=$(cat "$f" 2>/dev/null); then
			echo "${f#/sys/kernel/sheaf/}: (not readable)"
		elif [[ $v == *$'\n'* ]]; then
			echo "${f#/sys/kernel/sheaf/}:"
			echo "    ${v//$'\n'/$'\n'    }"
		else
			echo "${f#/sys/kernel/sheaf/}: $v"
		fi
	done
}

run_demo() {
	local rc=0

	echo "# insmod sheafmod.ko"
	insmod /modules/sheafmod.ko || return 1
	echo "# insmod examples/sheaf_example.ko (runs its workload in its init)"
	insmod /modules/examples/sheaf_example.ko || rc=1
	if [ $rc -eq 0 ]; then
		echo "# statistics under /sys/kernel/sheaf/"
		print_stats
		echo "# sheafinfo"
		sheafinfo || rc=1
		echo "# rmmod sheaf_example"
		rmmod sheaf_example || rc=1
	fi
	echo "# rmmod sheafmod"
	rmmod sheafmod || rc=1
	return $rc
}

# The module as DKMS installed it, found the way a distribution finds it:
# depmod's index, modprobe by name, then the consumer pulling sheafmod in
# as its dependency.
run_dkms() {
	local dir rc=0

	dir=/lib/modules/$(uname -r)
	[ -d "$dir" ] || { echo "no $dir in the initramfs"; return 1; }
	echo "# modules under $dir"
	(cd "$dir" && find . -name '*.ko' | sort)
	echo "# depmod"
	depmod || return 1
	echo "# modprobe sheafmod"
	modprobe sheafmod || return 1
	modinfo sheafmod | grep -E '^(filename|version|vermagic):' || rc=1
	echo "# modprobe -r sheafmod"
	modprobe -r sheafmod || return 1
	echo "# modprobe sheaf_consumer (loads sheafmod first)"
	modprobe sheaf_consumer || return 1
	grep -q '^sheafmod ' /proc/modules || { echo "sheafmod not loaded"; rc=1; }
	echo "# sheafinfo"
	sheafinfo || rc=1
	echo "# modprobe -r sheaf_consumer sheafmod"
	modprobe -r sheaf_consumer || rc=1
	modprobe -r sheafmod || rc=1
	return $rc
}

# The benchmark runs in the module's init and reports through the kernel
# log ("sheaf_bench: csv,..."): copy its lines out, CSV as is, the rest as
# comments.
run_bench() {
	local parts rc=0

	parts=$(cmdline_param bench)
	# Boot-time background work (async probes, RCU) would mix into the
	# first figures.
	sleep 3
	echo "# insmod sheafmod.ko"
	insmod /modules/sheafmod.ko || return 1
	echo "# insmod bench/sheaf_bench.ko${parts:+ parts=$parts}"
	insmod /modules/bench/sheaf_bench.ko ${parts:+"parts=$parts"} || rc=1
	dmesg | sed -n 's/^.*sheaf_bench: csv,/csv,/p; s/^.*sheaf_bench: /# /p'
	dmesg | grep -q 'sheaf_bench: error:' && rc=1
	if grep -q '^sheaf_bench ' /proc/modules; then
		rmmod sheaf_bench || rc=1
	fi
	echo "# rmmod sheafmod"
	rmmod sheafmod || rc=1
	return $rc
}

# A debug kernel with kmemleak: report leaks to the console, where the host
# shows them, and their number to the result channel, where it judges it:
#   SHEAF-KMEMLEAK <unreferenced objects>
# kmemleak reports no object younger than 5 s, and the first scan can miss
# objects freed a moment ago: wait, then scan twice.
scan_kmemleak() {
	local f=/sys/kernel/debug/kmemleak line n=0

	[ -w $f ] || return 0
	sleep 6
	echo scan >$f
	sleep 2
	echo scan >$f
	while IFS= read -r line; do
		case $line in
		"unreferenced object "*) n=$((n + 1)) ;;
		esac
		echo "kmemleak-report: $line" >/dev/kmsg
	done <$f
	report "SHEAF-KMEMLEAK $n"
}

loaded_modules() {
	local mods

	mods=$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')
	mods=${mods% }
	echo "${mods:-none}"
}

main() {
	local mode stress cases rc left

	mount_filesystems
	# Raw: no \r added to each line.
	stty -F "$RESULT" raw -echo 2>/dev/null
	mode=$(cmdline_param mode)
	mode=${mode:-check}
	stress=$(cmdline_param stress)
	[ -n "$stress" ] && export SHEAF_STRESS_SECONDS="$stress"
	cases=$(cmdline_param cases)
	[ -n "$cases" ] && export SHEAF_CASES="$cases"

	report "SHEAF-START kernel=$(uname -r) mode=$mode uptime=$(uptime_s)"
	echo "sheaf-init: start, mode $mode" >/dev/kmsg
	case $mode in
	check | tracers)
		if [ "$mode" = tracers ]; then
			run_reported run_check sheaf:tracers.sh
		else
			run_reported run_check
		fi
		rc=0
		# The runner exits 0 whatever the results: read them.
		grep -Eq '^(# )*not ok ' $OUT && rc=1
		grep -Eq '^ok ' $OUT || rc=1
		;;
	demo)
		run_reported run_demo
		rc=$?
		;;
	dkms)
		run_reported run_dkms
		rc=$?
		;;
	bench)
		run_reported run_bench
		rc=$?
		;;
	*)
		echo "sheaf-init: unknown sheaf.mode=$mode" | tee "$RESULT" >/dev/kmsg
		rc=1
		;;
	esac
	scan_kmemleak

	left=$(loaded_modules)
	[ "$left" = none ] || rc=1
	report "SHEAF-MODULES-LEFT $left"
	report "SHEAF-TAINT $(cat /proc/sys/kernel/tainted)"
	report "SHEAF-EXIT $rc uptime=$(uptime_s)"
	echo "sheaf-init: done, exit $rc" >/dev/kmsg
	sync
	reboot -f
}

main
# Not reached unless reboot failed: do not let the kernel panic on a dead init.
sleep 3600
