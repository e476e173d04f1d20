/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every difference between the kernels sheafmod builds for lives here, for
 * the layer, its tests and its users alike (sheaf.h includes it).
 * Supported: 6.1 LTS, 6.12 LTS (also PREEMPT_RT), 7.x.
 *
 * This is the one file with LINUX_VERSION_CODE tests; make lint lets
 * checkpatch's in-tree rule against them pass here and nowhere else.
 */
#ifndef _SHEAF_COMPAT_H
#define _SHEAF_COMPAT_H

#include <linux/hrtimer.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/version.h>

/*
 * The symbol namespace, for MODULE_IMPORT_NS(SHEAF_NS).  Namespaces are
 * string literals since 6.13, bare words before.
 */
#if KERNEL_VERSION(6, 13, 0) <= LINUX_VERSION_CODE
#define SHEAF_NS "SHEAF"
#else
#define SHEAF_NS SHEAF
#endif

/*
 * kmem_cache_alloc_bulk() is all or nothing on every supported kernel, but
 * returns int on some and a macro around *_noprof() on others: normalise
 * to "did we get all @nr".
 */
static inline bool sheaf_slab_alloc_bulk(struct kmem_cache *s, gfp_t gfp,
					 unsigned int nr, void **p)
{
	return (unsigned int)kmem_cache_alloc_bulk(s, gfp, nr, p) == nr;
}

/* hrtimer_setup() replaced hrtimer_init() + ->function in 6.13. */
#if KERNEL_VERSION(6, 13, 0) <= LINUX_VERSION_CODE
static inline void sheaf_hrtimer_setup(struct hrtimer *timer,
				       enum hrtimer_restart (*fn)(struct hrtimer *))
{
	hrtimer_setup(timer, fn, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
}
#else
static inline void sheaf_hrtimer_setup(struct hrtimer *timer,
				       enum hrtimer_restart (*fn)(struct hrtimer *))
{
	hrtimer_init(timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	timer->function = fn;
}
#endif

#endif /* _SHEAF_COMPAT_H */
