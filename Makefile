# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of sheafmod and its companion modules, plus the
# project's test bed.  Kbuild reads ./Kbuild; this file only drives it.

KDIR ?= /lib/modules/$(shell uname -r)/build
KERNELS ?= $(shell scripts/kernels.sh list)

all: modules

modules modules_install clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $@

# The statistics viewer, static so that it runs anywhere (the test VM's
# busybox initramfs included).
SHEAFINFO := out/sheafinfo
SHEAFINFO_CFLAGS := -O2 -Wall -Wextra -Werror -static

sheafinfo: $(SHEAFINFO)

$(SHEAFINFO): tools/sheafinfo.c
	@mkdir -p $(dir $@)
	$(CC) $(SHEAFINFO_CFLAGS) $(CFLAGS) -o $@ $<

# The DKMS source tree (out/dist/sheafmod-<version>, for "dkms add") and
# the Debian package (sheafmod-dkms, in out/deb/).
dist:
	scripts/dist.sh out/dist

deb:
	scripts/deb.sh

# Everything below runs the kernel matrix in QEMU; see README.
check:
	scripts/check.sh $(KERNELS)

lint:
	scripts/lint.sh $(KERNELS)

dkms-check:
	scripts/dkms-check.sh $(KERNELS)

demo:
	scripts/demo.sh

# Not on the debug kernel: its checkers would be what is timed.
BENCH_KERNELS = $(if $(filter command line environment,$(origin KERNELS)),$(KERNELS),$(shell scripts/kernels.sh list --stock))

bench:
	scripts/bench.sh $(BENCH_KERNELS)

.PHONY: all modules modules_install clean check lint demo bench sheafinfo dist \
	deb dkms-check
