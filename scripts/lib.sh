# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers shared by the project's scripts: source it, don't run it.
#
#   SHEAF_TOP    top of the source tree holding these scripts
#   SHEAF_CACHE  where every download, kernel tree and build goes
#                (never inside the repo, so nothing fetched gets committed)

SHEAF_TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHEAF_CACHE="${SHEAF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sheafmod}"
# Absolute: builds hand paths under it to make -C.
[[ $SHEAF_CACHE == /* ]] || SHEAF_CACHE="$PWD/$SHEAF_CACHE"
export SHEAF_TOP SHEAF_CACHE

# Messages go to stderr: stdout is kept for values other scripts read.
log() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

die() {
	log "error: $*"
	exit 1
}

# Opt-in for scripts under set -e: name the command that ended the script,
# which set -e alone does silently.
report_errors() {
	set -E
	trap 'log "error: \"$BASH_COMMAND\" failed (exit $?, line $LINENO)"' ERR
}

# Prints the project's files in source tree $1, NUL-separated, relative to
# it: git's tracked and untracked-but-not-ignored files (so it works in a
# fresh clone), or outside git every file but build products.
list_sources() {
	if git -C "$1" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$1" ls-files -co --exclude-standard -z
	else
		(cd "$1" && find . -path ./.git -prune -o -type f \
			! -name '*.o' ! -name '*.ko' ! -name '*.mod' ! -name '*.mod.c' \
			! -name '*.cmd' ! -name '*.a' ! -name '*.order' \
			! -name '*.symvers' -printf '%P\0')
	fi
}

# True if kernel $1 is one of Debian's own (scripts/kernels.sh list --stock),
# not one built here: only those have a headers package, for DKMS, and
# timings worth comparing.
is_stock_kernel() {
	local k
	for k in $("$SHEAF_TOP/scripts/kernels.sh" list --stock); do
		[[ $k == "$1" ]] && return 0
	done
	return 1
}

# Prints the project's version: dkms.conf's PACKAGE_VERSION, its one home.
sheaf_version() {
	local v
	v="$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$SHEAF_TOP/dkms.conf")"
	[[ -n $v ]] || die "no PACKAGE_VERSION in $SHEAF_TOP/dkms.conf"
	echo "$v"
}

# Mounts a script made (MOUNTED+=(dir) after each), undone in reverse
# order by unmount_all, e.g. from an EXIT trap.
MOUNTED=()

unmount_all() {
	local i
	for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
		umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}" ||
			log "could not unmount ${MOUNTED[i]}"
	done
	MOUNTED=()
}

# A private apt state in DIR for one Debian suite: sources of its own and
# an empty dpkg status, so that apt resolves whole dependency closures and
# neither reads nor changes the host's apt state.
apt_private_init() {	# apt_private_init DIR MIRROR SUITE KEYRING
	local d=$1

	mkdir -p "$d/etc/sources.list.d" "$d/etc/preferences.d" \
		"$d/lists/partial" "$d/cache/archives/partial"
	: >"$d/etc/sources.list"
	: >"$d/status"
	cat >"$d/etc/sources.list.d/debian.sources" <<-EOF
		Types: deb
		URIs: $2
		Suites: $3
		Components: main
		Signed-By: $4
	EOF
}

# Sets APT_OPTS: apt-get/apt-cache options that use the private state DIR.
apt_private_opts() {	# apt_private_opts DIR
	local d=$1

	# shellcheck disable=SC2034 # for the caller
	APT_OPTS=(-q
		-o "Dir::Etc::SourceList=$d/etc/sources.list"
		-o "Dir::Etc::SourceParts=$d/etc/sources.list.d"
		-o "Dir::Etc::Preferences=$d/etc/preferences"
		-o "Dir::Etc::PreferencesParts=$d/etc/preferences.d"
		-o "Dir::State::Lists=$d/lists"
		-o "Dir::State::status=$d/status"
		-o "Dir::Cache=$d/cache"
		# The cache is under $HOME, which apt's _apt user cannot enter.
		-o "APT::Sandbox::User=root")
}
