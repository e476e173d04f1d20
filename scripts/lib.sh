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
export SHEAF_TOP SHEAF_CACHE

# Messages go to stderr: stdout is kept for values other scripts read.
log() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

die() {
	log "error: $*"
	exit 1
}
