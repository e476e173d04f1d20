// SPDX-License-Identifier: GPL-2.0
/*
 * The slab's prefilled-sheaf API under its own names (sheaf_upstream.h),
 * for code that cannot call the slab's own: kernels before 6.18, and
 * modules on kernels that do not export it.
 *
 * kmem_cache_prefill_sheaf() finds the sheaf layer of a kmem_cache in a
 * hash table keyed by the kmem_cache pointer, kept at attach and detach
 * and read under RCU: no lock, no allocation, any context.  The other
 * calls take a sheaf, which knows its layer.
 *
 * For a kmem_cache without a layer the calls do what the slab does for a
 * cache without sheaves (a sheaf capacity of 0): every prefilled sheaf is
 * an oversize one, an array of its own filled straight from the slab and
 * flushed and freed on return.  Such a sheaf is a struct sheaf in state
 * SHEAF_STANDALONE with no sheaf cache; the API's struct slab_sheaf is
 * never defined, it only names sheafmod's struct sheaf.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hashtable.h>
#include <linux/irqflags.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/rculist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#include "sheaf_compat.h"
#include "sheaf_internal.h"
/* This is the provider: it imports nothing from its own namespace. */
#define SHEAF_UPSTREAM_PROVIDER
#include "sheaf_upstream.h"

#define SHEAF_BY_SLAB_BITS	6

/* Live layers by kmem_cache; the most recently attached comes first. */
static DEFINE_HASHTABLE(sheaf_by_slab, SHEAF_BY_SLAB_BITS);
static DEFINE_SPINLOCK(sheaf_by_slab_lock);	/* writers of sheaf_by_slab */

/* Called by sheaf_cache_attach() once the layer is ready for use. */
void sheaf_upstream_register(struct sheaf_cache *sc)
{
	spin_lock(&sheaf_by_slab_lock);
	hash_add_rcu(sheaf_by_slab, &sc->slab_node, (unsigned long)sc->s);
	spin_unlock(&sheaf_by_slab_lock);
}

/*
 * Called first thing by sheaf_cache_detach(): new prefills no longer find
 * the layer.  Sleeps: a lookup of another cache may be walking over the
 * layer's node until a grace period has passed.
 */
void sheaf_upstream_unregister(struct sheaf_cache *sc)
{
	if (hlist_unhashed(&sc->slab_node))
		return;
	spin_lock(&sheaf_by_slab_lock);
	hash_del_rcu(&sc->slab_node);
	spin_unlock(&sheaf_by_slab_lock);
	synchronize_rcu();
}

/* The layer over @s most recently attached (made, if @owner), or NULL. */
static struct sheaf_cache *sheaf_layer_of(struct kmem_cache *s, bool owner)
{
	struct sheaf_cache *sc, *found = NULL;

	rcu_read_lock();
	hash_for_each_possible_rcu(sheaf_by_slab, sc, slab_node,
				   (unsigned long)s) {
		if (sc->s == s && (!owner || sc->owns_cache)) {
			found = sc;
			break;
		}
	}
	rcu_read_unlock();
	return found;
}

/* struct slab_sheaf only names a struct sheaf. */
static struct sheaf *to_sheaf(struct slab_sheaf *sheaf)
{
	return (struct sheaf *)sheaf;
}

static struct slab_sheaf *to_slab_sheaf(struct sheaf *sheaf)
{
	return (struct slab_sheaf *)sheaf;
}

/*
 * A sheaf this API handed out, used with its own kmem_cache?  Otherwise
 * (NULL, returned already, another cache's, not a sheaf) warn once and
 * count it: the slab's own calls would crash or corrupt something.  A
 * standalone sheaf does not know its kmem_cache: that check is the slab's
 * when the objects are freed.
 */
static bool sheaf_upstream_valid(struct kmem_cache *s,
				 const struct sheaf *sheaf)
{
	if (WARN_ON_ONCE(!sheaf))
		return false;
	if (sheaf->state == SHEAF_STANDALONE)
		return true;
	if (WARN_ON_ONCE(sheaf->state != SHEAF_PREFILLED))
		return false;
	if (WARN_ON_ONCE(sheaf->cache->s != s)) {
		sheaf_stat(sheaf->cache, MISUSE);
		return false;
	}
	return true;
}

/* ---- sheaves of a kmem_cache without a layer ------------------------------ */

/* The slab's bulk calls want interrupts on (see sheafmod.c). */
static bool bare_alloc(struct kmem_cache *s, gfp_t gfp, unsigned int nr,
		       void **p)
{
	unsigned int i;

	if (!nr)
		return true;
	if (!irqs_disabled())
		return sheaf_slab_alloc_bulk(s, gfp, nr, p);
	for (i = 0; i < nr; i++) {
		p[i] = kmem_cache_alloc(s, gfp);
		if (!p[i]) {
			while (i--)
				kmem_cache_free(s, p[i]);
			return false;
		}
	}
	return true;
}

static void bare_free(struct kmem_cache *s, unsigned int nr, void **p)
{
	unsigned int i;

	if (!nr)
		return;
	if (!irqs_disabled()) {
		kmem_cache_free_bulk(s, nr, p);
		return;
	}
	for (i = 0; i < nr; i++)
		kmem_cache_free(s, p[i]);
}

/* An oversize sheaf of exactly @size objects, as the slab makes them. */
static struct sheaf *bare_prefill(struct kmem_cache *s, gfp_t gfp,
				  unsigned int size)
{
	struct sheaf *sheaf;

	gfp &= ~__GFP_ZERO;	/* zeroing is kmem_cache_alloc_from_sheaf()'s */
	sheaf = kmalloc(struct_size(sheaf, objects, size),
			gfp & ~__GFP_ACCOUNT);
	if (!sheaf)
		return NULL;
	if (!bare_alloc(s, gfp, size, sheaf->objects)) {
		kfree(sheaf);
		return NULL;
	}
	INIT_LIST_HEAD(&sheaf->barn_list);
	sheaf->cache = NULL;
	sheaf->capacity = size;
	sheaf->size = size;
	sheaf->private = true;
	sheaf->state = SHEAF_STANDALONE;
	return sheaf;
}

static void bare_return(struct kmem_cache *s, struct sheaf *sheaf)
{
	bare_free(s, sheaf->size, sheaf->objects);
	sheaf->state = 0;
	kfree(sheaf);
}

/* ---- the upstream names ------------------------------------------------- */

/**
 * sheaf_upstream_prefill_sheaf() - kmem_cache_prefill_sheaf() with sheafmod
 * @s: the kmem_cache
 * @gfp: allocation flags for the sheaf and its objects; __GFP_ZERO is
 *	ignored here (see sheaf_upstream_alloc_from_sheaf())
 * @size: how many objects the caller must be able to allocate from it
 *
 * Returns a sheaf holding at least @size objects of @s, for @size calls of
 * kmem_cache_alloc_from_sheaf() that cannot fail, sleep or take locks.
 * If a sheaf layer is attached to @s (sheaf_cache_attach(), or made by
 * sheaf_upstream_cache_create()), this is sheaf_prefill() on it: the CPU's
 * spare or a sheaf from the barn, topped up to the layer's capacity; above
 * the capacity an oversize sheaf.  Without a layer, as the slab does for a
 * cache without sheaves, an oversize sheaf of exactly @size objects
 * allocated from @s.  With several layers over @s, the most recently
 * attached one serves.
 *
 * As with the slab, @s and its layer must not be destroyed or detached
 * meanwhile; a prefill of 0 objects returns NULL.  __GFP_ACCOUNT (or a
 * SLAB_ACCOUNT layer) charges the objects to the caller's memory cgroup
 * here, where the slab charges them when they are allocated from the
 * sheaf.
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 * Return: the sheaf, or NULL if the objects could not be allocated, with
 * nothing changed.
 */
struct slab_sheaf *sheaf_upstream_prefill_sheaf(struct kmem_cache *s,
						gfp_t gfp, unsigned int size)
{
	struct sheaf_cache *sc;

	if (WARN_ON_ONCE(!s) || !size)
		return NULL;
	sc = sheaf_layer_of(s, false);
	if (sc)
		return to_slab_sheaf(sheaf_prefill(sc, gfp, size));
	return to_slab_sheaf(bare_prefill(s, gfp, size));
}
EXPORT_SYMBOL_NS_GPL(sheaf_upstream_prefill_sheaf, SHEAF_NS);

/**
 * sheaf_upstream_alloc_from_sheaf() - kmem_cache_alloc_from_sheaf() with sheafmod
 * @s: the kmem_cache the sheaf was prefilled from
 * @gfp: only __GFP_ZERO counts; nothing here may sleep or fail
 * @sheaf: a sheaf from kmem_cache_prefill_sheaf() or
 *	kmem_cache_refill_sheaf()
 *
 * Takes an object from @sheaf: no lock, no sleep, no fallback to the slab.
 * The object is freed later with kmem_cache_free() on @s.  A sheaf that is
 * not one of @s's warns once and gives nothing.
 *
 * Context: any context.
 * Return: an object, or NULL once the sheaf is empty.
 */
void *sheaf_upstream_alloc_from_sheaf(struct kmem_cache *s, gfp_t gfp,
				      struct slab_sheaf *sheaf)
{
	struct sheaf *sh = to_sheaf(sheaf);
	void *obj;

	if (!sheaf_upstream_valid(s, sh))
		return NULL;
	if (sh->state == SHEAF_PREFILLED)
		return sheaf_alloc(sh->cache, gfp, sh);
	if (!sh->size)
		return NULL;
	obj = sh->objects[--sh->size];
	if (gfp & __GFP_ZERO)
		memset(obj, 0, kmem_cache_size(s));
	return obj;
}
EXPORT_SYMBOL_NS_GPL(sheaf_upstream_alloc_from_sheaf, SHEAF_NS);

/**
 * sheaf_upstream_refill_sheaf() - kmem_cache_refill_sheaf() with sheafmod
 * @s: the kmem_cache
 * @gfp: allocation flags, as for sheaf_upstream_prefill_sheaf()
 * @sheafp: the caller's prefilled sheaf; may be replaced
 * @size: how many objects the sheaf must hold
 *
 * Nothing to do if the sheaf holds @size objects already.  A sheaf whose
 * capacity fits @size is refilled in place, to its capacity; otherwise a
 * new oversize sheaf replaces it and the old one is returned.
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 * Return: 0 on success; -EINVAL for a NULL @sheafp or *@sheafp, as the
 * slab does, or (warning once) a sheaf that is not one of @s's; -ENOMEM if
 * the objects could not be allocated, in which case *@sheafp is as it was
 * and still the caller's.
 */
int sheaf_upstream_refill_sheaf(struct kmem_cache *s, gfp_t gfp,
				struct slab_sheaf **sheafp, unsigned int size)
{
	struct sheaf *sh, *bigger;
	int ret;

	if (!sheafp || !*sheafp)
		return -EINVAL;
	sh = to_sheaf(*sheafp);
	if (!sheaf_upstream_valid(s, sh))
		return -EINVAL;
	if (sh->state == SHEAF_PREFILLED) {
		ret = sheaf_refill(sh->cache, gfp, &sh, size);
		*sheafp = to_slab_sheaf(sh);
		return ret;
	}

	if (sh->size >= size)
		return 0;
	if (size <= sh->capacity) {
		if (!bare_alloc(s, gfp & ~__GFP_ZERO, sh->capacity - sh->size,
				&sh->objects[sh->size]))
			return -ENOMEM;
		sh->size = sh->capacity;
		return 0;
	}
	bigger = to_sheaf(sheaf_upstream_prefill_sheaf(s, gfp, size));
	if (!bigger)
		return -ENOMEM;
	bare_return(s, sh);
	*sheafp = to_slab_sheaf(bigger);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(sheaf_upstream_refill_sheaf, SHEAF_NS);

/**
 * sheaf_upstream_return_sheaf() - kmem_cache_return_sheaf() with sheafmod
 * @s: the kmem_cache
 * @gfp: allocation flags for topping the sheaf up before it is kept in a
 *	barn; with GFP_NOWAIT it is rather flushed
 * @sheaf: a sheaf from kmem_cache_prefill_sheaf() or
 *	kmem_cache_refill_sheaf()
 *
 * The objects still in a layer's sheaf are kept for later: the sheaf
 * becomes the CPU's spare, or is topped up and put into the barn, or is
 * flushed.  An oversize sheaf, and every sheaf of a cache without a
 * layer, is flushed to the slab and freed.  @sheaf must not be used
 * afterwards.  NULL, or a sheaf that is not one of @s's, warns once and
 * is left alone.
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 */
void sheaf_upstream_return_sheaf(struct kmem_cache *s, gfp_t gfp,
				 struct slab_sheaf *sheaf)
{
	struct sheaf *sh = to_sheaf(sheaf);

	if (!sheaf_upstream_valid(s, sh))
		return;
	if (sh->state == SHEAF_PREFILLED)
		sheaf_return(sh->cache, gfp, sh);
	else
		bare_return(s, sh);
}
EXPORT_SYMBOL_NS_GPL(sheaf_upstream_return_sheaf, SHEAF_NS);

/**
 * sheaf_upstream_sheaf_size() - kmem_cache_sheaf_size() with sheafmod
 * @sheaf: a sheaf from kmem_cache_prefill_sheaf() or
 *	kmem_cache_refill_sheaf()
 *
 * Context: any context.
 * Return: how many kmem_cache_alloc_from_sheaf() calls will still
 * succeed; 0, warning once, for NULL or what is not a prefilled sheaf.
 */
unsigned int sheaf_upstream_sheaf_size(struct slab_sheaf *sheaf)
{
	struct sheaf *sh = to_sheaf(sheaf);

	if (sh && sh->state == SHEAF_STANDALONE)
		return sh->size;
	return sheaf_size(sh);
}
EXPORT_SYMBOL_NS_GPL(sheaf_upstream_sheaf_size, SHEAF_NS);

/* ---- the cache helpers ---------------------------------------------------- */

/**
 * sheaf_upstream_cache_create() - create a kmem_cache with sheaves
 * @name: name of the cache and of its layer: unique, shorter than 64
 *	bytes, without '/'
 * @size: object size
 * @align: object alignment, as for kmem_cache_create()
 * @flags: slab flags, as for kmem_cache_create()
 * @ctor: object constructor, or NULL
 * @sheaf_capacity: objects per sheaf; 0 for the default by object size,
 *	as the slab does in 7.x; at most %SHEAF_MAX_CAPACITY
 *
 * The one call whose form differs between the slab's sheaves
 * (kmem_cache_args.sheaf_capacity at creation) and sheafmod's (a layer
 * attached): sheaf_upstream.h maps it to the slab's own where the
 * upstream names are the slab's, and to this otherwise, which is
 * sheaf_cache_create().  The upstream-named calls find the layer from the
 * kmem_cache; its statistics are under /sys/kernel/sheaf/@name.
 *
 * Context: process context; sleeps.
 * Return: the kmem_cache, or NULL (bad arguments, @name taken, no memory),
 * as kmem_cache_create() returns it.
 */
struct kmem_cache *
sheaf_upstream_cache_create(const char *name, unsigned int size,
			    unsigned int align, slab_flags_t flags,
			    void (*ctor)(void *), unsigned int sheaf_capacity)
{
	struct sheaf_cache_args args = { .capacity = sheaf_capacity };
	struct sheaf_cache *sc;

	might_sleep();
	sc = sheaf_cache_create(name, size, align, flags, ctor, &args);
	if (IS_ERR(sc))
		return NULL;
	return sheaf_cache_kmem_cache(sc);
}
EXPORT_SYMBOL_NS_GPL(sheaf_upstream_cache_create, SHEAF_NS);

/**
 * sheaf_upstream_cache_destroy() - destroy a sheaf_upstream_cache_create() cache
 * @s: the kmem_cache, or NULL
 *
 * Detaches the layer made with @s (sheaf_cache_destroy()) and destroys
 * @s; a cache without such a layer is just destroyed.  Every object must
 * have been freed and every prefilled sheaf returned; sheaves still out
 * are warned about and keep the cache until they come back, as
 * sheaf_cache_detach() says.
 *
 * Context: process context; sleeps.
 */
void sheaf_upstream_cache_destroy(struct kmem_cache *s)
{
	struct sheaf_cache *sc;

	might_sleep();
	if (!s)
		return;
	sc = sheaf_layer_of(s, true);
	if (sc)
		sheaf_cache_destroy(sc);
	else
		kmem_cache_destroy(s);
}
EXPORT_SYMBOL_NS_GPL(sheaf_upstream_cache_destroy, SHEAF_NS);
