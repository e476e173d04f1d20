#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# DKMS POST_BUILD (see dkms.conf), run in the build directory: keeps
# Module.symvers beside the built module, for consumers' KBUILD_EXTRA_SYMBOLS.
set -eu

dest=${1:?usage: dkms-post-build.sh MODULE_DIR}
cp Module.symvers "$dest/Module.symvers"
