#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/bench.sh [K...]          (make bench [KERNELS="K..."])
#        scripts/bench.sh --report        table and plot again from
#                                         out/bench/results.csv
#
# Benchmarks sheafmod against the stock slab (bench/sheaf_bench.ko) on each
# kernel K (default: scripts/kernels.sh list --stock; not debug).  Each kernel boots twice,
# one VM at a time:
#   icount  -accel tcg -icount shift=0,sleep=off: guest time counts
#           executed instructions, so "ns" are instructions; repeatable;
#           the single-CPU cost figures (parts prefill, percpu, bulk,
#           rcu, memory)
#   mttcg   -accel tcg,thread=multi, 4 vCPUs: wall time; noisy and shared
#           with whatever else runs on the host; all parts, and the only
#           one with scaling (scale, pc)
# Every guest fails on kernel warnings, BUGs, oopses etc. as make check's
# do (scripts/vm.sh); a failed run is reported and left out of the results.
#
# Outputs, in out/bench/:
#   results.csv    every figure: kernel,mode,accel,group,case,impl,n,k,
#                  cpus,unit,median,min,max,reps
#   headline.csv   the target ratios per kernel and mode
#   headline.png   their plot (gnuplot)
#   sources.txt    per kernel, the commit and the sheafmod.c that was built
#   K/MODE/        each boot's console.log, result.txt, summary, vm.log
# and a table of the headline ratios on the terminal.  Exits non-zero if a
# run failed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

DEPS=(qemu-system-x86 busybox-static bash-static cpio rsync make binutils gnuplot-nox)
OUT=$SHEAF_TOP/out/bench
MODES=(icount mttcg)
FAILURES=0

# Parts per mode: scaling needs real parallelism, which icount lacks.
parts_of() {
	case $1 in
	icount) echo prefill,percpu,bulk,rcu,memory ;;
	mttcg) echo prefill,percpu,bulk,scale,pc,tune,rcu,memory ;;
	esac
}

step() {	# step K NAME LOG COMMAND...
	local k=$1 name=$2 logfile=$3

	shift 3
	echo "$k: $name" >&2
	if ! "$@" 2>"$logfile"; then
		echo "$k: $name FAILED (log: $logfile)"
		tail -n 20 "$logfile" | sed 's/^/    | /'
		return 1
	fi
}

# Appends one boot's CSV lines to results.csv, prefixed by kernel, mode
# and how TCG actually ran (a retried MTTCG boot may have run single).
collect() {	# collect K MODE DIR
	local k=$1 mode=$2 dir=$3 accel

	accel=$(sed -n 's/^accel=//p' "$dir/summary")
	tr -d '\r' <"$dir/result.txt" | sed -n "s/^csv,/$k,$mode,$accel,/p" >>"$OUT/results.csv"
}

bench_mode() {	# bench_mode K MODE INITRAMFS
	local k=$1 mode=$2 initramfs=$3 dir=$OUT/$1/$2 args=() verdict

	rm -rf "$dir"
	mkdir -p "$dir"
	[[ $mode != icount ]] || args=(--icount)
	echo "$k: $mode run ($(parts_of "$mode"))"
	SHEAF_BENCH_PARTS=$(parts_of "$mode") "$SHEAF_TOP/scripts/vm.sh" "$k" "$dir" \
		--mode bench --initramfs "$initramfs" "${args[@]}" >"$dir/vm.log" 2>&1 || true
	verdict=$(sed -n 's/^verdict=//p' "$dir/summary" 2>/dev/null || true)
	if [[ $verdict != PASS ]]; then
		echo "$k: $mode run FAILED: $(grep -E "^$k: (FAIL|BOOT-FAIL)" "$dir/vm.log" || tail -n 3 "$dir/vm.log")"
		FAILURES=$((FAILURES + 1))
		return 0
	fi
	collect "$k" "$mode" "$dir"
	echo "$k: $mode done ($(sed -n 's/^seconds=//p' "$dir/summary")s, accel $(sed -n 's/^accel=//p' "$dir/summary"))"
}

# The tree may change between kernels: say what each one measured.
record_source() {	# record_source K BUILDDIR
	local rev

	rev=$(git -C "$SHEAF_TOP" describe --always --dirty 2>/dev/null || echo unknown)
	echo "$1 $rev sheafmod.c:$(sha256sum <"$2/sheafmod.c" | cut -c1-16)" >>"$OUT/sources.txt"
}

bench_kernel() {
	local k=$1 dir=$OUT/$1 moddir mode

	mkdir -p "$dir"
	step "$k" fetch "$dir/fetch.log" "$SHEAF_TOP/scripts/kernels.sh" fetch "$k" ||
		{ FAILURES=$((FAILURES + 1)); return 0; }
	# A copy of the build: the shared build dir may be rebuilt meanwhile.
	if ! moddir=$(SHEAF_BUILD_COPY=$dir/modules step "$k" build "$dir/build.log" \
		"$SHEAF_TOP/scripts/kbuild.sh" "$k" | tail -n 1) || [[ ! -d $moddir ]]; then
		FAILURES=$((FAILURES + 1))
		return 0
	fi
	record_source "$k" "$moddir"
	step "$k" initramfs "$dir/initramfs.log" "$SHEAF_TOP/scripts/initramfs.sh" "$k" \
		"$moddir" "$dir/initramfs.cpio" || { FAILURES=$((FAILURES + 1)); return 0; }
	for mode in "${MODES[@]}"; do
		bench_mode "$k" "$mode" "$dir/initramfs.cpio"
	done
}

# The headline ratios, one line per kernel and mode:
#   kernel,mode,prefill_vs_bulk,prefill_vs_native,pair_vs_stock,
#   pair_vs_native,scale4,scale4_stock,barn_contended
# prefill_vs_bulk: bulk / sheafmod cost, N=32, the worst of k = 0, 1, 3
# (higher is better); prefill_vs_native: sheafmod / native, the worst k
# (lower is better); pair_*: sheafmod / other cost of an alloc+free pair;
# scale4: 4-CPU / 1-CPU aggregate throughput of the pair; barn_contended:
# the share of the producer/consumer pair's barn operations that found the
# barn lock taken.  "-": not measured in that mode or on that kernel.
headline() {
	awk -F, '
	NR == 1 { next }
	{
		key = $1 "," $2
		if (!(key in seen)) { seen[key] = 1; order[n++] = key }
		m[key, $4, $5, $6, $7, $8, $9, $10] = $11
	}
	function get(key, g, c, i, nn, k, cpus, u) {
		return m[key, g, c, i, nn, k, cpus, u]
	}
	function fmt(v) { return v == "" ? "-" : sprintf("%.2f", v) }
	END {
		print "kernel,mode,prefill_vs_bulk,prefill_vs_native,pair_vs_stock,pair_vs_native,scale4,scale4_stock,barn_contended"
		for (j = 0; j < n; j++) {
			key = order[j]
			vb = ""; vn = ""
			split("0 1 3", ks, " ")
			for (t = 1; t <= 3; t++) {
				s = get(key, "prefill", "prefill", "sheafmod", 32, ks[t], 1, "ns/round")
				bu = get(key, "prefill", "prefill", "bulk", 32, ks[t], 1, "ns/round")
				na = get(key, "prefill", "prefill", "native", 32, ks[t], 1, "ns/round")
				if (s > 0 && bu != "") { r = bu / s; if (vb == "" || r < vb) vb = r }
				if (na > 0 && s != "") { r = s / na; if (vn == "" || r > vn) vn = r }
			}
			s = get(key, "percpu", "pair", "sheafmod", 1, 0, 1, "ns/op")
			st = get(key, "percpu", "pair", "stock", 1, 0, 1, "ns/op")
			na = get(key, "percpu", "pair", "native", 1, 0, 1, "ns/op")
			ps = (st > 0 && s != "") ? s / st : ""
			pn = (na > 0 && s != "") ? s / na : ""
			sc = ""; ss = ""
			s1 = get(key, "scale", "pair", "sheafmod", 1, 0, 1, "Mops/s/cpu")
			s4 = get(key, "scale", "pair", "sheafmod", 1, 0, 4, "Mops/s/cpu")
			t1 = get(key, "scale", "pair", "stock", 1, 0, 1, "Mops/s/cpu")
			t4 = get(key, "scale", "pair", "stock", 1, 0, 4, "Mops/s/cpu")
			if (s1 > 0 && s4 != "") sc = 4 * s4 / s1
			if (t1 > 0 && t4 != "") ss = 4 * t4 / t1
			bc = get(key, "pc", "ring", "sheafmod", 256, 0, 2, "barn-contended")
			bo = get(key, "pc", "ring", "sheafmod", 256, 0, 2, "barn-get") + \
			     get(key, "pc", "ring", "sheafmod", 256, 0, 2, "barn-put")
			bp = (bc != "" && bo > 0) ? sprintf("%.0f%%", 100 * bc / bo) : "-"
			printf "%s,%s,%s,%s,%s,%s,%s,%s\n", key, fmt(vb), fmt(vn), fmt(ps),
				fmt(pn), fmt(sc), fmt(ss), bp
		}
	}' "$OUT/results.csv" >"$OUT/headline.csv"
}

# A ratio as "N.NNx", or "-" when not measured.
times() {
	if [[ $1 == - ]]; then echo -; else echo "$1x"; fi
}

print_table() {
	printf '\n=== headline (targets: prefill >= 5x cheaper than bulk, <= 1.15x native;\n'
	printf '    pair <= 0.85x stock on 6.1/6.12; 4 CPUs >= 3.5x one CPU)\n'
	printf '%-8s %-7s %16s %17s %14s %15s %9s %12s %14s\n' kernel mode \
		"prefill bulk/us" "prefill us/native" "pair us/stock" "pair us/native" \
		"4cpu/1cpu" "stock 4/1" "barn contended"
	tail -n +2 "$OUT/headline.csv" | while IFS=, read -r k mode a b c d e f g; do
		printf '%-8s %-7s %16s %17s %14s %15s %9s %12s %14s\n' "$k" "$mode" \
			"$(times "$a")" "$(times "$b")" "$(times "$c")" "$(times "$d")" \
			"$(times "$e")" "$(times "$f")" "$g"
	done
	printf '\n(ratios of medians; icount figures are instructions, mttcg wall time.\n'
	printf ' all figures: %s)\n' "$OUT/results.csv"
}

# Four panels, one per target, a bar per kernel and mode, the target as
# a dashed line.
plot() {
	local data=$OUT/headline.dat

	# gnuplot reads whitespace-separated columns; "-" is missing data.
	tail -n +2 "$OUT/headline.csv" | awk -F, '{
		gsub(/-/, "NaN", $3); gsub(/-/, "NaN", $4); gsub(/-/, "NaN", $5)
		gsub(/-/, "NaN", $7)
		print $1 "/" $2, $3, $4, $5, $7 }' >"$data"
	gnuplot <<-EOF
		set terminal pngcairo size 1400,900 font ",11"
		set output "$OUT/headline.png"
		set datafile missing "NaN"
		set style data histograms
		set style fill solid 0.8 border -1
		set boxwidth 0.7
		set grid ytics
		set xtics rotate by -30 noenhanced
		set yrange [0:*]
		set key off
		set multiplot layout 2,2 title "sheafmod benchmark: headline ratios (bars: kernel/mode; dashed: target)"
		set title "prefill N=32, k<=3: bulk cost / sheafmod cost (>= 5)"
		plot "$data" using 2:xtic(1) lc rgb "#3a7dc9", 5 dt 2 lc rgb "red" lw 2
		set title "prefill N=32, k<=3: sheafmod / native sheaves (<= 1.15; 7.2 only)"
		plot "$data" using 3:xtic(1) lc rgb "#4aa564", 1.15 dt 2 lc rgb "red" lw 2
		set title "per-CPU alloc+free pair: sheafmod / stock (<= 0.85)"
		plot "$data" using 4:xtic(1) lc rgb "#d08a2c", 0.85 dt 2 lc rgb "red" lw 2
		set title "pair throughput, 4 CPUs / 1 CPU (>= 3.5; mttcg only, 2 host cores)"
		set yrange [0:4]
		plot "$data" using 5:xtic(1) lc rgb "#8a4fb5", 3.5 dt 2 lc rgb "red" lw 2
		unset multiplot
	EOF
	rm -f "$data"
}

# The tune part: producer/consumer cost and barn contention per capacity.
print_tune() {
	grep -q '^[^,]*,mttcg,[^,]*,tune,' "$OUT/results.csv" || return 0
	printf '\n=== producer/consumer by capacity (set at runtime; mttcg, median)\n'
	printf '%-8s %8s %10s %15s\n' kernel capacity ns/object "barn contended"
	awk -F, '$2 == "mttcg" && $4 == "tune" {
		key = $1 "," $7
		if ($10 == "ns/obj") ns[key] = $11
		else cont[key] = $11
		if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	}
	END {
		for (i = 1; i <= n; i++) {
			split(order[i], f, ",")
			printf "%-8s %8s %10.0f %15.0f\n", f[1], f[2], ns[order[i]], cont[order[i]]
		}
	}' "$OUT/results.csv"
}

# The bulk part: cost per object of a bulk allocation and free of n
# objects, and the ratios of sheafmod's to the slab's own bulk calls.
print_bulk() {
	grep -q '^[^,]*,[^,]*,[^,]*,bulk,' "$OUT/results.csv" || return 0
	printf '\n=== bulk alloc+free of n objects, per object (median; icount: instructions)\n'
	printf '%-8s %-7s %4s %9s %9s %9s %15s %16s\n' kernel mode n sheafmod stock \
		native "sheafmod/stock" "sheafmod/native"
	awk -F, '$4 == "bulk" && $10 == "ns/op" {
		key = $1 "," $2 "," $7
		v[key, $6] = $11
		if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	}
	function ratio(a, b) { return (a != "" && b > 0) ? sprintf("%.2fx", a / b) : "-" }
	function val(a) { return a == "" ? "-" : a }
	END {
		for (i = 1; i <= n; i++) {
			k = order[i]
			split(k, f, ",")
			printf "%-8s %-7s %4s %9s %9s %9s %15s %16s\n", f[1], f[2], f[3],
				val(v[k, "sheafmod"]), val(v[k, "stock"]), val(v[k, "native"]),
				ratio(v[k, "sheafmod"], v[k, "stock"]),
				ratio(v[k, "sheafmod"], v[k, "native"])
		}
	}' "$OUT/results.csv"
}

# RCU-deferred frees: cost per free and per alloc + free pair, and the
# ratios of the stock ways to sheafmod's (higher: sheafmod cheaper), all
# from one boot.
print_rcu() {
	grep -q '^[^,]*,[^,]*,[^,]*,rcu,' "$OUT/results.csv" || return 0
	printf '\n=== RCU-deferred frees (median ns; ratio: other / sheafmod)\n'
	printf '%-8s %-7s %-5s %9s %9s %9s %10s %10s\n' kernel mode case sheafmod \
		call_rcu kfree_rcu call_rcu/x kfree_rcu/x
	awk -F, '$4 == "rcu" {
		key = $1 "," $2 "," $5
		v[key "," $6] = $11
		if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	}
	END {
		for (i = 1; i <= n; i++) {
			k = order[i]
			split(k, f, ",")
			s = v[k ",sheafmod"]
			rc = (s > 0) ? v[k ",call_rcu"] / s : 0
			rk = (s > 0) ? v[k ",kfree_rcu"] / s : 0
			printf "%-8s %-7s %-5s %9.1f %9.1f %9.1f %9.2fx %9.2fx\n", f[1], f[2], f[3],
				s, v[k ",call_rcu"], v[k ",kfree_rcu"], rc, rk
		}
	}' "$OUT/results.csv"
}

report() {
	headline
	print_table
	print_tune
	print_bulk
	print_rcu
	plot
	echo "plot: $OUT/headline.png"
}

main() {
	local kernels k

	if [[ ${1:-} == --report ]]; then
		"$SHEAF_TOP/scripts/deps.sh" gnuplot-nox
		report
		return
	fi
	if [[ $# -gt 0 ]]; then
		kernels=("$@")
	else
		read -r -a kernels <<<"$("$SHEAF_TOP/scripts/kernels.sh" list --stock)"
	fi
	# A kernel full of checkers times the checkers.
	for k in "${kernels[@]}"; do
		is_stock_kernel "$k" || die "$k is not a stock kernel: no benchmark on it"
	done
	"$SHEAF_TOP/scripts/deps.sh" "${DEPS[@]}"
	mkdir -p "$OUT"
	echo "kernel,mode,accel,group,case,impl,n,k,cpus,unit,median,min,max,reps" >"$OUT/results.csv"
	: >"$OUT/sources.txt"
	for k in "${kernels[@]}"; do
		bench_kernel "$k"
	done
	report
	[[ $FAILURES -eq 0 ]]
}

main "$@"
