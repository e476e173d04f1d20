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
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/version.h>
#include <linux/workqueue.h>

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
 * returns the count (int) before 7.0 and a bool since: both are non-zero
 * exactly when all @nr objects were allocated.  sheaf_cache_alloc_bulk()
 * builds on this and returns the count, or 0, everywhere.
 */
static inline bool sheaf_slab_alloc_bulk(struct kmem_cache *s, gfp_t gfp,
					 unsigned int nr, void **p)
{
	return kmem_cache_alloc_bulk(s, gfp, nr, p) != 0;
}

/*
 * Workqueues must say whether they are per-CPU since 6.17 (WQ_PERCPU);
 * before, per-CPU was the default.
 */
#if KERNEL_VERSION(6, 17, 0) <= LINUX_VERSION_CODE
#define SHEAF_WQ_PERCPU WQ_PERCPU
#else
#define SHEAF_WQ_PERCPU 0
#endif

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

/* Scope-based cleanup (<linux/cleanup.h>) exists since 6.5. */
#if KERNEL_VERSION(6, 5, 0) <= LINUX_VERSION_CODE
#include <linux/cleanup.h>
#define SHEAF_HAVE_CLEANUP 1
#endif

/* Shrinkers are allocated by the core since 6.7. */
typedef unsigned long (*sheaf_shrink_fn)(struct shrinker *,
					 struct shrink_control *);

#if KERNEL_VERSION(6, 7, 0) <= LINUX_VERSION_CODE
static inline struct shrinker *sheaf_shrinker_register(sheaf_shrink_fn count,
						       sheaf_shrink_fn scan)
{
	struct shrinker *shrinker = shrinker_alloc(0, "sheaf");

	if (!shrinker)
		return NULL;
	shrinker->count_objects = count;
	shrinker->scan_objects = scan;
	shrinker_register(shrinker);
	return shrinker;
}

static inline void sheaf_shrinker_unregister(struct shrinker *shrinker)
{
	shrinker_free(shrinker);
}
#else
static inline struct shrinker *sheaf_shrinker_register(sheaf_shrink_fn count,
						       sheaf_shrink_fn scan)
{
	struct shrinker *shrinker = kzalloc(sizeof(*shrinker), GFP_KERNEL);

	if (!shrinker)
		return NULL;
	shrinker->count_objects = count;
	shrinker->scan_objects = scan;
	shrinker->seeks = DEFAULT_SEEKS;
	if (register_shrinker(shrinker, "sheaf")) {
		kfree(shrinker);
		return NULL;
	}
	return shrinker;
}

static inline void sheaf_shrinker_unregister(struct shrinker *shrinker)
{
	unregister_shrinker(shrinker);
	kfree(shrinker);
}
#endif

/*
 * The slab's own per-CPU sheaves (kmem_cache_args.sheaf_capacity and the
 * prefill API, the latter not exported) since 6.18.  The benchmark
 * compares against them.
 */
#if KERNEL_VERSION(6, 18, 0) <= LINUX_VERSION_CODE
#define SHEAF_KERNEL_HAS_SHEAVES 1
#else
#define SHEAF_KERNEL_HAS_SHEAVES 0
#endif

/*
 * Whether the code being compiled may call the slab's prefill API
 * (kmem_cache_prefill_sheaf() and the rest): built-in code of a kernel
 * that has it.  No kernel up to 7.2 exports it to modules, so modules get
 * sheafmod's implementation (sheaf_upstream.h); a kernel that exports it
 * makes this a version test.
 */
#if SHEAF_KERNEL_HAS_SHEAVES && !defined(MODULE)
#define SHEAF_NATIVE_PREFILL_API 1
#else
#define SHEAF_NATIVE_PREFILL_API 0
#endif

#endif /* _SHEAF_COMPAT_H */
