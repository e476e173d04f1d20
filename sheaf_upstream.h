/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The slab's prefilled-sheaf API under its own names, on every kernel.
 *
 * Code written for Linux's kmem_cache_prefill_sheaf(),
 * kmem_cache_alloc_from_sheaf(), kmem_cache_refill_sheaf(),
 * kmem_cache_return_sheaf() and kmem_cache_sheaf_size() includes this
 * header and builds unchanged:
 *
 * - Where the code may call the slab's own API (built-in code of a kernel
 *   with sheaves, 6.18 and later: SHEAF_NATIVE_PREFILL_API), this header
 *   adds only the two cache helpers below; the calls are the slab's.
 * - Everywhere else (kernels before 6.18, and modules on kernels that have
 *   the API but do not export it, which is every kernel up to 7.2), the
 *   five names are macros for sheafmod's sheaf_upstream_*() functions,
 *   with the same signatures and semantics.  They find the sheaf layer
 *   from the kmem_cache pointer; for a cache without a layer they do what
 *   the slab does for a cache without sheaves: every prefilled sheaf is an
 *   oversize one, filled straight from the slab and freed on return.
 *   The module needs sheafmod (the header imports namespace SHEAF for it).
 *
 * The one difference in the consumer's source is how it gets a cache with
 * sheaves: the slab takes kmem_cache_args.sheaf_capacity at creation,
 * sheafmod attaches a layer.  sheaf_upstream_cache_create() and
 * sheaf_upstream_cache_destroy() do either:
 *
 *	s = sheaf_upstream_cache_create("my_objs", sizeof(struct my_obj), 0,
 *					0, NULL, 32);
 *	sheaf = kmem_cache_prefill_sheaf(s, GFP_KERNEL, n);
 *	obj = kmem_cache_alloc_from_sheaf(s, __GFP_ZERO, sheaf);
 *	kmem_cache_return_sheaf(s, GFP_KERNEL, sheaf);
 *	kmem_cache_free(s, obj);
 *	sheaf_upstream_cache_destroy(s);
 *
 * Plain kmem_cache_alloc() and kmem_cache_free() stay the slab's on every
 * kernel (per-CPU sheaves of their own where the slab has them).
 */
#ifndef _SHEAF_UPSTREAM_H
#define _SHEAF_UPSTREAM_H

#include <linux/slab.h>

#include "sheaf_compat.h"

#if SHEAF_NATIVE_PREFILL_API

/*
 * The cache helpers, here the slab's own: sheaves from
 * kmem_cache_args.sheaf_capacity.  Their contract is that of sheafmod's
 * (upstream.c).
 */
static inline struct kmem_cache *
sheaf_upstream_cache_create(const char *name, unsigned int size,
			    unsigned int align, slab_flags_t flags,
			    void (*ctor)(void *), unsigned int sheaf_capacity)
{
	struct kmem_cache_args args = {
		.align = align,
		.ctor = ctor,
		.sheaf_capacity = sheaf_capacity,
	};

	return kmem_cache_create(name, size, &args, flags);
}

static inline void sheaf_upstream_cache_destroy(struct kmem_cache *s)
{
	kmem_cache_destroy(s);
}

#else /* sheafmod serves the upstream names */

struct slab_sheaf;

struct slab_sheaf *sheaf_upstream_prefill_sheaf(struct kmem_cache *s,
						gfp_t gfp, unsigned int size);
void *sheaf_upstream_alloc_from_sheaf(struct kmem_cache *s, gfp_t gfp,
				      struct slab_sheaf *sheaf) __malloc;
int sheaf_upstream_refill_sheaf(struct kmem_cache *s, gfp_t gfp,
				struct slab_sheaf **sheafp, unsigned int size);
void sheaf_upstream_return_sheaf(struct kmem_cache *s, gfp_t gfp,
				 struct slab_sheaf *sheaf);
unsigned int sheaf_upstream_sheaf_size(struct slab_sheaf *sheaf);
struct kmem_cache *
sheaf_upstream_cache_create(const char *name, unsigned int size,
			    unsigned int align, slab_flags_t flags,
			    void (*ctor)(void *), unsigned int sheaf_capacity);
void sheaf_upstream_cache_destroy(struct kmem_cache *s);

/*
 * Object-like macros, so that the names also work as function pointers.
 * Since 6.18 <linux/slab.h> declares the slab's functions (not exported to
 * modules) and makes kmem_cache_alloc_from_sheaf() a macro of its own.
 */
#undef kmem_cache_alloc_from_sheaf
#undef kmem_cache_alloc_from_sheaf_noprof
#define kmem_cache_prefill_sheaf	sheaf_upstream_prefill_sheaf
#define kmem_cache_alloc_from_sheaf	sheaf_upstream_alloc_from_sheaf
#define kmem_cache_alloc_from_sheaf_noprof sheaf_upstream_alloc_from_sheaf
#define kmem_cache_refill_sheaf		sheaf_upstream_refill_sheaf
#define kmem_cache_return_sheaf		sheaf_upstream_return_sheaf
#define kmem_cache_sheaf_size		sheaf_upstream_sheaf_size

#ifndef SHEAF_UPSTREAM_PROVIDER
MODULE_IMPORT_NS(SHEAF_NS);
#endif

#endif /* SHEAF_NATIVE_PREFILL_API */

#endif /* _SHEAF_UPSTREAM_H */
