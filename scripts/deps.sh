#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Usage: scripts/deps.sh PKG...
#
# Installs those of the given Debian packages that are not installed yet.
# Prints nothing when all of them are there.  Runs "apt-get update" at most
# once, and only when apt does not know a package or an install fails on
# stale lists.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
report_errors

# Wait for a concurrent apt/dpkg run instead of failing on its lock.
APT_OPTS=(-q -o DPkg::Lock::Timeout=600)

is_installed() {
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

apt_knows_all() {
	local pkg
	for pkg in "$@"; do
		apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1 || return 1
	done
}

apt_update() {
	log "apt-get update"
	apt-get "${APT_OPTS[@]}" update >&2
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y \
		--no-install-recommends "$@" >&2
}

main() {
	local pkg missing=() updated=
	for pkg in "$@"; do
		is_installed "$pkg" || missing+=("$pkg")
	done
	[[ ${#missing[@]} -eq 0 ]] && return 0

	[[ $(id -u) -eq 0 ]] || die "need root to install: ${missing[*]}"
	log "installing ${missing[*]}"
	if ! apt_knows_all "${missing[@]}"; then
		apt_update
		updated=1
	fi
	apt_install "${missing[@]}" && return 0
	# Lists older than the mirror give 404s: refresh once and retry.
	[[ -z $updated ]] || die "cannot install ${missing[*]}"
	apt_update
	apt_install "${missing[@]}" || die "cannot install ${missing[*]}"
}

main "$@"
