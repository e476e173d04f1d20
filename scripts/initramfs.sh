#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/initramfs.sh [--tracers] K MODDIR OUT [LIBMODULES]
#
# Builds the initramfs (uncompressed newc cpio) OUT for one test VM run of
# kernel K with the modules built in MODDIR (the tree scripts/kbuild.sh K
# builds: MODDIR/sheafmod.ko, MODDIR/selftests/sheaf/test_sheaf.ko, ...).
# --tracers adds perf, trace-cmd and bpftrace with their libraries
# (scripts/tracers.sh), for the tracer VM: about 230 MB more, so only there.
#
# Contents:
#   /init          the test VM's init (scripts/vm-init.sh), run by bash
#   /kselftest/    the kselftest install of the "sheaf" target, made by the
#                  kernel source's own selftests Makefile: run_kselftest.sh,
#                  kselftest/runner.sh, sheaf/{sheaf.sh,settings,config} and
#                  the modules beside sheaf.sh
#   /modules/      every .ko of MODDIR, at its path in MODDIR (demo mode)
#   /lib/modules/  the contents of LIBMODULES, when given: <release>/...
#                  as DKMS installed it (dkms mode, scripts/dkms-check.sh)
#   /usr/bin/sheafinfo  tools/sheafinfo.c, built static (make sheafinfo)
#   busybox-static for the tools, bash-static as /bin/bash and /bin/sh,
#   kmod's insmod, rmmod and lsmod with their libraries
#   /usr/bin/{perf,trace-cmd,bpftrace}, /lib*, /usr/lib/...  with --tracers
#
# bash is needed twice over: sheaf.sh is a bash script, and the kselftest
# runner (run_kselftest.sh, #!/bin/sh) uses "((((( cmd ...) ...)))"
# subshells that busybox ash parses as arithmetic and rejects.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

DEPS=(busybox-static bash-static kmod cpio rsync make binutils gcc libc6-dev)

usage() {
	sed -n '4,10s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

# The modules must be the ones built for K: a mismatch would only show in
# the guest as modules that refuse to load.
check_vermagic() {
	local ko=$1 release=$2 magic

	magic="$(objcopy -O binary --only-section=.modinfo "$ko" /dev/stdout |
		tr '\0' '\n' | sed -n 's/^vermagic=//p')"
	[[ $magic == "$release "* ]] ||
		die "$ko is built for '${magic%% *}', not for $release"
}

# The selftests Makefile needs only its own files and subarch.include from
# the tree: copy those, then the target from this repository.
make_scratch_tree() {
	local src=$1 tree=$2 st=$2/tools/testing/selftests

	mkdir -p "$tree/scripts" "$st/sheaf"
	cp "$src/scripts/subarch.include" "$tree/scripts/"
	cp -r "$src/tools/testing/selftests/"{Makefile,lib.mk,run_kselftest.sh,kselftest} "$st/"
	rsync -a --exclude='*.ko' --exclude='*.o' --exclude='*.mod' \
		--exclude='*.mod.c' --exclude='.*.cmd' --exclude=modules.order \
		--exclude=Module.symvers "$SHEAF_TOP/selftests/sheaf/" "$st/sheaf/"
}

install_kselftest() {
	local tree=$1 moddir=$2 dest=$3 f

	make -s -C "$tree/tools/testing/selftests" TARGETS=sheaf \
		KSFT_INSTALL_PATH="$dest" SHEAF_KO_DIR="$moddir" install >&2
	for f in run_kselftest.sh kselftest/runner.sh sheaf/sheaf.sh sheaf/ktap.sh \
		sheaf/settings sheaf/sheafmod.ko sheaf/test_sheaf.ko \
		sheaf/test_sheaf_upstream.ko sheaf/tracers.sh sheaf/sheaf_example.ko; do
		[[ -e $dest/$f ]] || die "kselftest install lacks $f"
	done
	for f in sheaf.sh tracers.sh; do
		grep -qx "sheaf:$f" "$dest/kselftest-list.txt" ||
			die "kselftest-list.txt does not list sheaf:$f"
	done
	# sheaf.sh is run by its #! line either way; executable spares the
	# runner's "not executable" warning.
	chmod +x "$dest/sheaf/sheaf.sh" "$dest/sheaf/tracers.sh"
}

# busybox applets as links, then bash over sh: see the header.
install_tools() {
	local root=$1 applet

	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin}
	cp /bin/busybox "$root/bin/busybox"
	while read -r applet; do
		# Relative: a link resolved on the host stays inside $root.
		[[ $applet == bin/busybox ]] || ln -sfr "$root/bin/busybox" "$root/$applet"
	done < <(/bin/busybox --list-full)
	cp /bin/bash-static "$root/bin/bash"
	ln -sf bash "$root/bin/sh"
	# The runner calls "timeout --foreground N ...", which busybox's
	# timeout does not take, and expects 124 when time runs out.  Drop
	# the applet link first, not to write through it.
	rm -f "$root/usr/bin/timeout"
	cat >"$root/usr/bin/timeout" <<-'EOF'
		#!/bin/sh
		[ "$1" = --foreground ] && shift
		busybox timeout "$@"
		rc=$?
		[ $rc -eq 143 ] && rc=124
		exit $rc
	EOF
	chmod +x "$root/usr/bin/timeout"
}

# kmod's insmod, as on the systems sheaf.sh runs on: when finit_module()
# fails, busybox's insmod tries init_module() with the same file, so the
# init of a test module whose case failed ran twice.  modprobe and depmod
# stay busybox's.
install_kmod() {
	local root=$1 lib tool

	cp /bin/kmod "$root/bin/kmod"
	for tool in insmod rmmod lsmod; do
		rm -f "$root/sbin/$tool"
		ln -s ../bin/kmod "$root/sbin/$tool"
	done
	for lib in $(ldd /bin/kmod | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# Static: the initramfs has no libc.
install_sheafinfo() {
	local root=$1

	make -s -C "$SHEAF_TOP" sheafinfo >&2
	install -m 755 "$SHEAF_TOP/out/sheafinfo" "$root/usr/bin/sheafinfo"
}

# Dynamically linked, from Debian's packages: copied with their loader and
# libraries, which busybox and bash (static) do not need.
install_tracers() {
	local root=$1 tracers

	tracers=$("$SHEAF_TOP/scripts/tracers.sh")
	cp -a "$tracers/." "$root/"
}

# The guest's depmod and modprobe read /lib/modules/<release>.
install_lib_modules() {
	local libmodules=$1 root=$2 release=$3 ko

	[[ -d $libmodules/$release ]] || die "$libmodules has no $release"
	while IFS= read -r -d '' ko; do
		check_vermagic "$ko" "$release"
	done < <(find "$libmodules/$release" -name '*.ko' -print0)
	mkdir -p "$root/lib/modules"
	cp -r "$libmodules/." "$root/lib/modules/"
}

install_modules() {
	local moddir=$1 root=$2

	mkdir -p "$root/modules"
	(cd "$moddir" && find . -name '*.ko' -print0 | cpio -0 -pdm --quiet "$root/modules")
}

make_skeleton() {
	local root=$1

	mkdir -p "$root"/{dev,proc,sys,tmp,run,root,etc}
	# The kernel opens /dev/console for init before anything is mounted.
	mknod -m 600 "$root/dev/console" c 5 1
	# nobody: the unprivileged user sheaf.sh checks access as.
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
		'nobody:x:65534:65534:nobody:/nonexistent:/bin/sh' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
	install -m 755 "$SHEAF_TOP/scripts/vm-init.sh" "$root/init"
}

write_cpio() {
	local root=$1 out=$2

	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio -0 -o -H newc -R 0:0 --quiet) >"$out.tmp"
	mv "$out.tmp" "$out"
}

main() {
	local tracers='' k moddir out libmodules release src work ko

	if [[ ${1:-} == --tracers ]]; then
		tracers=1
		shift
	fi
	[[ $# -eq 3 || $# -eq 4 ]] || usage
	k=$1 moddir=$2 out=$3 libmodules=${4:-}
	[[ -f $moddir/sheafmod.ko && -f $moddir/selftests/sheaf/test_sheaf.ko ]] ||
		die "$moddir: no sheafmod.ko or selftests/sheaf/test_sheaf.ko (run scripts/kbuild.sh $k)"
	moddir="$(cd "$moddir" && pwd)"
	"$SHEAF_TOP/scripts/deps.sh" "${DEPS[@]}"
	release="$("$SHEAF_TOP/scripts/kernels.sh" path "$k" release)"
	while IFS= read -r -d '' ko; do
		check_vermagic "$ko" "$release"
	done < <(find "$moddir" -name '*.ko' -print0)
	src="$("$SHEAF_TOP/scripts/kernels.sh" src)"

	work="$(mktemp -d "${TMPDIR:-/tmp}/sheaf-initramfs.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: work is local
	trap "rm -rf '$work'" EXIT
	make_scratch_tree "$src" "$work/tree"
	make_skeleton "$work/root"
	install_kselftest "$work/tree" "$moddir" "$work/root/kselftest"
	install_tools "$work/root"
	install_kmod "$work/root"
	install_modules "$moddir" "$work/root"
	install_sheafinfo "$work/root"
	[[ -z $tracers ]] || install_tracers "$work/root"
	if [[ -n $libmodules ]]; then
		install_lib_modules "$libmodules" "$work/root" "$release"
	fi
	mkdir -p "$(dirname "$out")"
	write_cpio "$work/root" "$out"
	log "$out: $(du -h "$out" | cut -f1) for $release"
}

main "$@"
