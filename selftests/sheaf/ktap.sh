# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# What sheaf.sh and tracers.sh share: sourced, not run.  KTAP results with
# their counts, and loading a module from beside the scripts (the test bed
# installs them there) or else from the installed modules.

# shellcheck disable=SC2034 # used by the scripts that source this
KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

DIR=$(cd "$(dirname "$0")" && pwd)

count=0
failed=0
skipped=0

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
