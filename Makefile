# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of sheafmod and its companion modules, plus the
# project's test bed.  Kbuild reads ./Kbuild; this file only drives it.

KDIR ?= /lib/modules/$(shell uname -r)/build
KERNELS ?= $(shell scripts/kernels.sh list)

all: modules

modules modules_install clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $@

# Everything below runs the kernel matrix in QEMU; see README.
check:
	scripts/check.sh $(KERNELS)

lint:
	scripts/lint.sh $(KERNELS)

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh $(KERNELS)

.PHONY: all modules modules_install clean check lint demo bench
