# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# What sheaf.sh and tracers.sh share: sourced, not run.  KTAP results with
# their counts, loading a module from beside the scripts (the test bed
# installs them there) or else from the installed modules, and the start
# and end every run has: root, sheafmod loaded, and unloaded again.

# shellcheck disable=SC2034 # used by the scripts that source this
KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

DIR=$(cd "$(dirname "$0")" && pwd)

count=0
failed=0
skipped=0
loaded_core=0	# this script loaded sheafmod: it unloads it, one more result

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
	ok)	echo "ok $count $2${3:+ # $3}"
		case ${3:-} in SKIP*) skipped=$((skipped + 1)) ;; esac ;;
	*)	echo "not ok $count $2${3:+ # $3}"; failed=$((failed + 1)) ;;
	esac
}

ktap_totals() {
	echo "# Totals: pass:$((count - failed - skipped)) fail:$failed skip:$skipped"
}

# The KTAP header; the whole script skips unless it runs as root and
# sheafmod is loaded or can be.
ktap_start() {
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
}

# The tracefs mount point, or nothing.
tracefs() {
	local t

	for t in /sys/kernel/tracing /sys/kernel/debug/tracing; do
		[ -d "$t/events" ] && { echo "$t"; return; }
	done
}

# Trace events record each task's command name by default, through a probe
# on sched_switch: enabling the first event and disabling the last patches
# the scheduler's own text while every CPU runs it, and under QEMU's TCG a
# vCPU has taken that patch's int3 after the patch was done ("Oops: int3"
# in __schedule).  The sheaf events need no command names: recording is
# off while they are traced, and as it was again after.
saved_record_cmd=
tracefs_comms_off() {	# tracefs_comms_off TRACEFS
	saved_record_cmd=$(cat "$1/options/record-cmd")
	echo 0 > "$1/options/record-cmd"
}

tracefs_comms_restore() {	# tracefs_comms_restore TRACEFS
	[ -z "$saved_record_cmd" ] || echo "$saved_record_cmd" > "$1/options/record-cmd"
}

# A sheafmod this script loaded must unload: nothing may pin it.
unload_core() {
	[ $loaded_core -eq 1 ] || return 0
	if rmmod sheafmod; then
		ktap_result ok unload_sheafmod
	else
		ktap_result not-ok unload_sheafmod
	fi
}
