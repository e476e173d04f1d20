# SPDX-License-Identifier: GPL-2.0
#
# Reads a test VM's kernel log (console.log, \r removed) and finds the
# kernel's reports of errors: scripts/vm.sh judges a run with it, and
# scripts/console-scan-test.sh checks it against sample lines (make lint).
#
# Prints "bad LINE" for each line that shows a kernel error outside an
# expected region, "expected N" for the WARNING splats inside one, "open
# TAG" for each region begun and never ended.  A region is what a test
# module marks with "sheaf_test: expect-warn begin TAG" ... "sheaf_test:
# expect-warn end TAG": there, the header of a WARN splat ("cut here" then
# "WARNING: CPU: ...") is expected.  Nothing else is, even there, and a
# splat with another report in it is not counted as expected.

# Reports of every kind; what the debug kernel (scripts/debug.config) adds
# to a stock kernel's is on the lines below the first.
function is_report(msg)
{
	# SLUB: "BUG <cache> (Tainted: ...): <what>", e.g. "Poison overwritten".
	if (msg ~ /^BUG [^ ]+ \((Not tainted|Tainted[^)]*)\): /)
		return 1
	return msg ~ /WARNING:|(^|[^A-Z])BUG:|kernel BUG at|Oops|Kernel panic|general protection fault/ ||
		msg ~ /sleeping function called from invalid context|inconsistent lock state|possible recursive locking|circular locking/ ||
		msg ~ /UBSAN:|KASAN:|suspected memory leak|unreferenced object 0x/ ||
		msg ~ /RCU stall|rcu_.* detected stall|self-detected stall|blocked for more than [0-9]+ seconds/ ||
		msg ~ /(^|[^A-Za-z])INFO: / ||
		msg ~ /list_(add|del) corruption|list_add double add|ODEBUG: .*object type: |DEBUG_LOCKS_WARN_ON/ ||
		msg ~ /Object corrupt|Redzone overwritten|Poison overwritten|Object already free|Freepointer corrupt|Padding overwritten/ ||
		msg ~ /refcount_t: |Bad page state|Bad rss-counter/
}

{
	msg = $0
	sub(/^\[ *[0-9]+\.[0-9]+\] /, "", msg)
	sub(/^\[ *[CT][0-9]+\] /, "", msg)
}
# What the init echoes into the log is context, not a kernel error.
msg ~ /^sheaf-out: / { next }
# The kmemleak report the init copies to the log: its objects are leaks,
# the details under them are context.
msg ~ /^kmemleak-report: / {
	if (msg ~ /unreferenced object 0x/)
		print "bad", NR
	next
}
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
	splat_bad = 0
	next
}
msg ~ /^---\[ end trace/ {
	if (in_splat && splat_expected && header_seen && !splat_bad)
		expected++
	in_splat = 0
	next
}
is_report(msg) {
	# The header of an expected splat: "WARNING: CPU: 0 PID: 1 at ..."
	# (6.x), "WARNING: file:line at ..., CPU#0: comm/1" (7.x).
	if (in_splat && splat_expected && !header_seen &&
	    msg ~ /^WARNING: (CPU: [0-9]+ PID: [0-9]+ at |(.* )?at .*, CPU#[0-9]+: )/) {
		header_seen = 1
		next
	}
	splat_bad = in_splat
	print "bad", NR
}
END {
	print "expected", expected + 0
	for (t in open)
		if (open[t] > 0)
			print "open", t
}
