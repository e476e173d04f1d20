# SPDX-License-Identifier: GPL-2.0
#
# For the Kbuild file of a module that uses sheafmod as installed by DKMS:
#
#	include /usr/src/sheafmod-<version>/sheafmod.mk
#	obj-m += my_module.o
#
# It adds sheafmod's headers (sheaf.h, sheaf_upstream.h, sheaf_compat.h)
# to the include path and points KBUILD_EXTRA_SYMBOLS at the Module.symvers
# DKMS keeps beside sheafmod.ko for the kernel being built for.  A module
# using sheaf.h declares MODULE_IMPORT_NS(SHEAF_NS); sheaf_upstream.h does
# that itself.
#
#   SHEAF_DKMS_TREE  DKMS's tree (default /var/lib/dkms, dkms --dkmstree)
#   SHEAF_ARCH       DKMS's architecture name (default: uname -m)

SHEAF_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SHEAF_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' $(SHEAF_DIR)/dkms.conf)
SHEAF_DKMS_TREE ?= /var/lib/dkms
SHEAF_ARCH ?= $(shell uname -m)
SHEAF_SYMVERS := $(SHEAF_DKMS_TREE)/sheafmod/$(SHEAF_VERSION)/$(KERNELRELEASE)/$(SHEAF_ARCH)/module/Module.symvers

ifeq ($(wildcard $(SHEAF_SYMVERS)),)
$(warning sheafmod $(SHEAF_VERSION) is not built for $(KERNELRELEASE): no $(SHEAF_SYMVERS); run dkms install sheafmod/$(SHEAF_VERSION) -k $(KERNELRELEASE))
endif

ccflags-y += -I$(SHEAF_DIR)
KBUILD_EXTRA_SYMBOLS += $(SHEAF_SYMVERS)
