/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sheafmod: per-CPU sheaves and per-node barns over any kmem_cache.
 *
 * A sheaf is an array of ready objects of one cache.  Every CPU keeps a
 * main and a spare sheaf; every NUMA node keeps a barn of whole sheaves.
 * On top of that, a caller can prefill a sheaf with at least N objects and
 * then allocate up to N objects from it where it can neither fail, sleep
 * nor take locks.
 *
 * Modules using this API declare MODULE_IMPORT_NS(SHEAF_NS).
 */
#ifndef _SHEAF_H
#define _SHEAF_H

#include <linux/bits.h>
#include <linux/gfp.h>
#include <linux/limits.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/types.h>

#include "sheaf_compat.h"

struct sheaf_cache;
struct sheaf;

/* The largest sheaf capacity a cache may be given. */
#define SHEAF_MAX_CAPACITY	1024U
/* The largest limit of full or empty sheaves per barn. */
#define SHEAF_MAX_BARN		1024U
/* sheaf_cache_set_barn_limits(): leave this limit as it is. */
#define SHEAF_BARN_KEEP		UINT_MAX

/* sheaf_cache_args.flags: what the layer cannot read from a kmem_cache. */
/* Objects have a constructor: the layer never zeroes them. */
#define SHEAF_CACHE_CTOR		BIT(0)
/* The cache is SLAB_TYPESAFE_BY_RCU: never zeroed, as for a constructor. */
#define SHEAF_CACHE_TYPESAFE_BY_RCU	BIT(1)
/* The cache is SLAB_ACCOUNT: objects bypass the per-CPU sheaves. */
#define SHEAF_CACHE_ACCOUNT		BIT(2)
/* Keep no objects in per-CPU sheaves or barns (debugging). */
#define SHEAF_CACHE_PASSTHROUGH		BIT(3)
/*
 * Poison parked objects and check them when handed out; catch double frees
 * into this CPU's sheaves (debugging; not for CTOR/TYPESAFE_BY_RCU caches).
 */
#define SHEAF_CACHE_VERIFY		BIT(4)

/**
 * struct sheaf_cache_args - optional parameters of a sheaf cache
 * @capacity: objects per sheaf; 0 picks one from the object size, as
 *	upstream Linux does.  At most %SHEAF_MAX_CAPACITY.
 * @barn_max_full: full sheaves each node's barn may hold; 0 means 10.
 * @barn_max_empty: empty sheaves each node's barn may hold; 0 means 10.
 * @flags: %SHEAF_CACHE_* flags describing the underlying kmem_cache.
 *
 * sheaf_cache_create() fills in @flags from its own slab flags and
 * constructor; sheaf_cache_attach() cannot read them from the opaque
 * kmem_cache, so its caller must.
 */
struct sheaf_cache_args {
	unsigned int capacity;
	unsigned int barn_max_full;
	unsigned int barn_max_empty;
	unsigned int flags;
};

struct sheaf_cache *sheaf_cache_attach(struct kmem_cache *s, const char *name,
				       const struct sheaf_cache_args *args);
void sheaf_cache_detach(struct sheaf_cache *sc);
struct sheaf_cache *sheaf_cache_create(const char *name, unsigned int size,
				       unsigned int align, slab_flags_t flags,
				       void (*ctor)(void *),
				       const struct sheaf_cache_args *args);
void sheaf_cache_destroy(struct sheaf_cache *sc);
struct kmem_cache *sheaf_cache_kmem_cache(const struct sheaf_cache *sc);
unsigned int sheaf_cache_capacity(const struct sheaf_cache *sc);
int sheaf_cache_set_capacity(struct sheaf_cache *sc, unsigned int capacity);
int sheaf_cache_set_barn_limits(struct sheaf_cache *sc, unsigned int max_full,
				unsigned int max_empty);

void *sheaf_cache_alloc(struct sheaf_cache *sc, gfp_t gfp);
void *sheaf_cache_alloc_node(struct sheaf_cache *sc, gfp_t gfp, int node);
void sheaf_cache_free(struct sheaf_cache *sc, void *obj);
int sheaf_cache_alloc_bulk(struct sheaf_cache *sc, gfp_t gfp, size_t size,
			   void **p);
void sheaf_cache_free_bulk(struct sheaf_cache *sc, size_t size, void **p);
void sheaf_cache_free_rcu(struct sheaf_cache *sc, void *obj);
void sheaf_cache_rcu_barrier(struct sheaf_cache *sc);
void sheaf_cache_shrink(struct sheaf_cache *sc);

struct sheaf *sheaf_prefill(struct sheaf_cache *sc, gfp_t gfp,
			    unsigned int size);
void *sheaf_alloc(struct sheaf_cache *sc, gfp_t gfp, struct sheaf *sheaf);
int sheaf_refill(struct sheaf_cache *sc, gfp_t gfp, struct sheaf **sheafp,
		 unsigned int size);
void sheaf_return(struct sheaf_cache *sc, gfp_t gfp, struct sheaf *sheaf);
unsigned int sheaf_size(const struct sheaf *sheaf);

#ifdef SHEAF_HAVE_CLEANUP
/*
 * Scope-based cleanup, where the kernel has it:
 *
 *	struct sheaf_cache *sc __free(sheaf_cache_destroy) = sheaf_cache_create(...);
 *
 *	CLASS(sheaf_prefilled, pf)(sc, GFP_KERNEL, 8);
 *	if (!pf.sheaf)
 *		return -ENOMEM;
 *	obj = sheaf_alloc(sc, 0, pf.sheaf);
 *
 * The prefilled sheaf is returned when pf goes out of scope, with
 * GFP_NOWAIT so that this never sleeps, whatever the scope.
 */
static inline void __sheaf_cache_destroy_scoped(struct sheaf_cache *sc)
{
	if (!IS_ERR_OR_NULL(sc))
		sheaf_cache_destroy(sc);
}

DEFINE_FREE(sheaf_cache_destroy, struct sheaf_cache *,
	    __sheaf_cache_destroy_scoped(_T))

/**
 * struct sheaf_prefilled - a prefilled sheaf owned by a scope
 * @sc: its sheaf cache
 * @sheaf: the sheaf, or NULL if the prefill failed
 */
struct sheaf_prefilled {
	struct sheaf_cache *sc;
	struct sheaf *sheaf;
};

static inline void __sheaf_prefilled_end(struct sheaf_prefilled *pf)
{
	if (pf->sheaf)
		sheaf_return(pf->sc, GFP_NOWAIT, pf->sheaf);
}

DEFINE_CLASS(sheaf_prefilled, struct sheaf_prefilled,
	     __sheaf_prefilled_end(&_T),
	     ((struct sheaf_prefilled){ sc, sheaf_prefill(sc, gfp, size) }),
	     struct sheaf_cache *sc, gfp_t gfp, unsigned int size)
#endif

#endif /* _SHEAF_H */
