#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/lint.sh [K...]
#
# Static checks of the project's C sources (git-tracked and untracked but
# not ignored *.c and *.h):
#   checkpatch   checkpatch.pl --strict --no-tree -f
#   kernel-doc   kernel-doc -none -Wall
#   sparse K     scripts/kbuild.sh K modules C=2, for each kernel K given
#                (default: the whole matrix); only findings in the
#                project's own files count.
#   console-scan scripts/console-scan-test.sh: the test VM's kernel report
#                patterns against sample lines
#   scripts      shellcheck -x on every shell script of the project
# checkpatch and kernel-doc come from the full kernel source tree
# (scripts/kernels.sh src).  Prints a pass/fail line per tool and exits
# non-zero on any finding.
#
# SHEAF_SRC  source tree to check (default: this repo)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

SRC="${SHEAF_SRC:-$SHEAF_TOP}"
# perl: checkpatch and kernel-doc need more than perl-base's modules.
HOST_LINT_DEPS=(perl sparse shellcheck)
SUMMARY=()
FAILED=0

record() {
	local tool=$1 verdict=$2 note=${3:-}
	SUMMARY+=("$(printf '  %-14s %s%s' "$tool" "$verdict" "${note:+ ($note)}")")
	[[ $verdict == PASS ]] || FAILED=1
}

# Sets FILES to the project's C sources, relative to $SRC.
find_c_sources() {
	local f
	FILES=()
	while IFS= read -r -d '' f; do
		if [[ $f == *.[ch] && -f $SRC/$f ]]; then
			FILES+=("$f")
		fi
	done < <(list_sources "$SRC")
}

run_checkpatch() {
	local ksrc=$1 rc=0
	log "checkpatch on ${#FILES[@]} files"
	local f ignore

	for f in "${FILES[@]}"; do
		# The compat header is where version tests belong; checkpatch's
		# rule against them is for code merged into one kernel.
		# The tracepoint header is written in TRACE_EVENT()'s own
		# layout, which no in-tree trace header passes --strict with.
		ignore=()
		[[ $f == sheaf_compat.h ]] && ignore=(--ignore=LINUX_VERSION_CODE)
		[[ $f == sheaf_trace.h ]] &&
			ignore=("--ignore=PARENTHESIS_ALIGNMENT,OPEN_ENDED_LINE")
		(cd "$SRC" && "$ksrc/scripts/checkpatch.pl" --strict --no-tree \
			--quiet --color=never "${ignore[@]}" -f "$f") >&2 || rc=$?
	done
	if [[ $rc -eq 0 ]]; then
		record checkpatch PASS "${#FILES[@]} files"
	else
		record checkpatch FAIL
	fi
}

run_kernel_doc() {
	local ksrc=$1 out rc=0 n
	log "kernel-doc on ${#FILES[@]} files"
	out="$(cd "$SRC" && "$ksrc/scripts/kernel-doc" -none -Wall "${FILES[@]}" 2>&1)" || rc=$?
	[[ -z $out ]] || printf '%s\n' "$out" >&2
	n="$(grep -ciE '(warning|error):' <<<"$out" || true)"
	if [[ $rc -eq 0 && $n -eq 0 ]]; then
		record kernel-doc PASS
	else
		record kernel-doc FAIL "$n findings"
	fi
}

# Prints the lines of a C=2 build log that report on the project's files.
# Paths appear absolute (6.x: the build dir; 7.2: its place in the chroot)
# or relative to the build dir.
own_findings() {
	local k=$1 line path f
	local -A own=()
	for f in "${FILES[@]}"; do
		own[$f]=1
	done
	while IFS= read -r line; do
		[[ $line =~ ^([^:[:space:]]+):[0-9]+(:[0-9]+)?:\ (warning|error): ]] || continue
		path="${BASH_REMATCH[1]}"
		path="${path#"$SHEAF_CACHE/build/$k/src/"}"
		path="${path#/sheaf-build/src/}"
		path="${path#./}"
		[[ -z ${own[$path]:-} ]] || printf '%s\n' "$line"
	done
}

run_sparse() {
	local k=$1 log rc=0 findings
	log="$(mktemp)"
	log "sparse for $k"
	SHEAF_WARNINGS_OK=1 "$SHEAF_TOP/scripts/kbuild.sh" "$k" modules C=2 \
		>/dev/null 2>"$log" || rc=$?
	findings="$(own_findings "$k" <"$log")"
	if [[ $rc -ne 0 ]]; then
		cat "$log" >&2
		record "sparse $k" FAIL "build failed"
	elif ! grep -q '^ *CHECK ' "$log" || grep -q 'is not available or not up to date' "$log"; then
		# Kbuild skips an unusable checker with no more than a message.
		cat "$log" >&2
		record "sparse $k" FAIL "sparse did not run"
	elif [[ -n $findings ]]; then
		printf '%s\n' "$findings" >&2
		record "sparse $k" FAIL "$(wc -l <<<"$findings") findings"
	else
		record "sparse $k" PASS
	fi
	rm -f "$log"
}

# docs/api.rst must say what the kernel-doc comments say.
run_apidoc() {
	if "$SHEAF_TOP/scripts/apidoc.sh" --check >&2; then
		record apidoc PASS
	else
		record apidoc FAIL "docs/api.rst is stale: run scripts/apidoc.sh"
	fi
}

# The patterns that turn a kernel report into a red run must catch each
# kind of report and nothing else.
run_console_scan_test() {
	local out

	if out=$("$SHEAF_TOP/scripts/console-scan-test.sh" 2>&1); then
		record console-scan PASS "$(sed -n 's/^# console-scan: //p' <<<"$out")"
	else
		grep -v '^ok ' <<<"$out" >&2
		record console-scan FAIL
	fi
}

# Every shell script: *.sh and the extensionless ones with a bash #! line.
run_shellcheck() {
	local f scripts=()

	while IFS= read -r -d '' f; do
		if [[ $f == *.sh ]] || head -n1 "$SRC/$f" | grep -q '^#!.*bash'; then
			scripts+=("$f")
		fi
	done < <(list_sources "$SRC")
	if (cd "$SRC" && shellcheck -x -P SCRIPTDIR "${scripts[@]}" >&2); then
		record shellcheck PASS "${#scripts[@]} scripts"
	else
		record shellcheck FAIL
	fi
}

main() {
	local ksrc k all
	if [[ $# -eq 0 ]]; then
		read -ra all < <("$SHEAF_TOP/scripts/kernels.sh" list)
		set -- "${all[@]}"
	fi
	"$SHEAF_TOP/scripts/deps.sh" "${HOST_LINT_DEPS[@]}"
	ksrc="$("$SHEAF_TOP/scripts/kernels.sh" src)"
	find_c_sources

	if [[ ${#FILES[@]} -eq 0 ]]; then
		record checkpatch PASS "no C files"
		record kernel-doc PASS "no C files"
	else
		run_checkpatch "$ksrc"
		run_kernel_doc "$ksrc"
		run_apidoc
	fi
	run_console_scan_test
	run_shellcheck
	for k in "$@"; do
		run_sparse "$k"
	done

	echo "lint summary:"
	printf '%s\n' "${SUMMARY[@]}"
	exit "$FAILED"
}

main "$@"
