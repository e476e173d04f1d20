// SPDX-License-Identifier: GPL-2.0
/*
 * sheafmod: per-CPU sheaves and per-node barns layered over any kmem_cache.
 *
 * Each CPU owns a main and a spare sheaf (arrays of ready objects); each
 * NUMA node owns a barn of whole sheaves.  Allocation pops from main, free
 * pushes to main; when main runs empty or full it is exchanged with the
 * spare or with the barn, and only then does the layer go to the slab, a
 * whole sheaf at a time with kmem_cache_alloc_bulk()/kmem_cache_free_bulk().
 *
 * Design notes a slab reviewer will ask about:
 *
 * - Interrupts.  The per-CPU state is guarded by a trylock flag taken with
 *   preemption disabled (struct sheaf_pcpu).  An allocation from an IRQ that
 *   interrupts the same CPU's fast path finds the flag set and goes to the
 *   slab directly: no deadlock, no IRQ disabling, no atomics.
 * - PREEMPT_RT.  Same scheme: the preemption-disabled sections are O(1)
 *   pointer work and never call into the slab or the page allocator, whose
 *   locks sleep on RT; barn locks are raw spinlocks held for O(1) list
 *   operations.  Every slab call is made with the flag released.
 * - CPU hotplug.  Sheaves exist for every possible CPU; a dead CPU's
 *   sheaves are flushed by a CPUHP "dead" callback on a surviving CPU.
 * - NUMA.  There is a barn for every possible node, memoryless ones
 *   included (their CPUs use the barn of numa_mem_id()), so none is ever
 *   missing.  Objects of a remote node are freed to the slab directly and
 *   sheaf_cache_alloc_node() for a remote node bypasses the sheaves.
 * - init_on_alloc/init_on_free.  Objects parked in sheaves are kept as the
 *   slab would hand them out: zeroed at free when either option is on,
 *   never for caches with a constructor or SLAB_TYPESAFE_BY_RCU (whose
 *   readers may still look at a freed object, exactly as with the slab).
 * - memcg.  Objects of SLAB_ACCOUNT caches, and __GFP_ACCOUNT allocations,
 *   go to the slab directly so the allocating task's cgroup is charged.
 *   Prefilled sheaves of such caches are charged to the task that
 *   prefilled them.  Whether an object is charged cannot be seen from
 *   here: a __GFP_ACCOUNT object of an ordinary cache freed into a sheaf
 *   keeps its charge until it reaches the slab.
 * - Debugging.  KASAN, kmemleak and slub_debug see objects in sheaves as
 *   allocated.  SHEAF_CACHE_PASSTHROUGH keeps nothing in sheaves.
 * - Memory pressure.  sheaf_cache_shrink() gives everything back; sheaves
 *   are bounded: 2 per CPU, barn_max_full + barn_max_empty per node.
 * - RCU-deferred frees.  A third per-CPU sheaf collects them and goes
 *   through one call_rcu() when full; see sheaf_cache_free_rcu().
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/topology.h>

#include "sheaf_compat.h"
#include "sheaf_internal.h"

#define CREATE_TRACE_POINTS
#include "sheaf_trace.h"

static LIST_HEAD(sheaf_caches);
static DEFINE_MUTEX(sheaf_caches_lock);	/* sheaf_caches, name uniqueness */
static enum cpuhp_state sheaf_cpuhp_state;
static struct workqueue_struct *sheaf_wq;
/*
 * Layer releases call kmem_cache_destroy(), which takes cpus_read_lock():
 * they must not share sheaf_wq, which is flushed under cpus_read_lock()
 * and has a rescuer that can run its items one after the other.
 */
static struct workqueue_struct *sheaf_release_wq;

/*
 * Debugging aids, applied to caches attached afterwards.  KASAN and
 * slub_debug cannot see objects parked in sheaves, so on kernels built to
 * debug the slab nothing is parked unless asked for.
 */
static bool passthrough = IS_ENABLED(CONFIG_KASAN) ||
			  IS_ENABLED(CONFIG_SLUB_DEBUG_ON);
module_param(passthrough, bool, 0644);
MODULE_PARM_DESC(passthrough, "keep no objects cached (for KASAN, slub_debug)");

static bool verify;
module_param(verify, bool, 0644);
MODULE_PARM_DESC(verify, "poison parked objects, check them and catch double frees");
static struct shrinker *sheaf_shrinker;

/* Report API misuse once per call site, count it every time. */
#define sheaf_misuse(sc, cond) ({					\
	struct sheaf_cache *__sc = (sc);				\
	bool __bad = unlikely(cond);					\
	if (__bad) {							\
		WARN_ON_ONCE(1);					\
		if (__sc)						\
			sheaf_stat(__sc, MISUSE);			\
	}								\
	__bad;								\
})

/* ---- the per-CPU lock ------------------------------------------------- */

static __always_inline struct sheaf_pcpu *pcs_trylock(struct sheaf_cache *sc)
{
	struct sheaf_pcpu *pcs;

	preempt_disable();
	pcs = this_cpu_ptr(sc->pcpu);
	if (unlikely(READ_ONCE(pcs->locked))) {
		preempt_enable();
		return NULL;
	}
	/*
	 * An interrupt between the test and the set runs to completion and
	 * leaves the flag clear; the barrier keeps our accesses to @pcs
	 * behind the set.
	 */
	WRITE_ONCE(pcs->locked, 1);
	barrier();
	return pcs;
}

static __always_inline void pcs_unlock(struct sheaf_pcpu *pcs)
{
	barrier();
	WRITE_ONCE(pcs->locked, 0);
	preempt_enable();
}

/* ---- sheaves ---------------------------------------------------------- */

/* Count and trace barn traffic. */
static void sheaf_barn_got(struct sheaf_cache *sc, bool ok)
{
	sheaf_stat(sc, ok ? BARN_GET : BARN_GET_FAIL);
	trace_sheaf_barn(sc, SHEAF_BARN_GET, ok);
}

static void sheaf_barn_put(struct sheaf_cache *sc, bool ok)
{
	sheaf_stat(sc, ok ? BARN_PUT : BARN_PUT_FAIL);
	trace_sheaf_barn(sc, SHEAF_BARN_PUT, ok);
}

static bool sheaf_inject_failure(struct sheaf_cache *sc)
{
	return atomic_read(&sc->fail_allocs) > 0 &&
	       atomic_dec_if_positive(&sc->fail_allocs) >= 0;
}

static struct sheaf *sheaf_alloc_empty(struct sheaf_cache *sc, gfp_t gfp,
				       unsigned int capacity)
{
	struct sheaf *sheaf;

	if (sheaf_inject_failure(sc))
		return NULL;
	gfp &= ~(__GFP_ZERO | __GFP_ACCOUNT);
	sheaf = kmalloc(struct_size(sheaf, objects, capacity), gfp);
	if (!sheaf)
		return NULL;
	sheaf->cache = sc;
	sheaf->state = SHEAF_CACHED;
	sheaf->capacity = capacity;
	sheaf->size = 0;
	sheaf->private = false;
	sheaf_stat(sc, SHEAF_ALLOC);
	return sheaf;
}

static void sheaf_free_empty(struct sheaf_cache *sc, struct sheaf *sheaf)
{
	WARN_ON_ONCE(sheaf->size);
	sheaf->state = 0;
	kfree(sheaf);
	sheaf_stat(sc, SHEAF_FREE);
}

/*
 * The stock bulk calls need interrupts enabled (they may enable them):
 * with interrupts off, and so in hard interrupt context, the objects go
 * one at a time.
 */
static bool sheaf_slab_alloc_many(struct sheaf_cache *sc, gfp_t gfp,
				  unsigned int nr, void **p)
{
	unsigned int i;

	if (!irqs_disabled())
		return sheaf_slab_alloc_bulk(sc->s, gfp, nr, p);
	for (i = 0; i < nr; i++) {
		p[i] = kmem_cache_alloc(sc->s, gfp);
		if (!p[i]) {
			while (i--)
				kmem_cache_free(sc->s, p[i]);
			return false;
		}
	}
	return true;
}

static void sheaf_slab_free_many(struct sheaf_cache *sc, unsigned int nr,
				 void **p)
{
	unsigned int i;

	if (!irqs_disabled()) {
		kmem_cache_free_bulk(sc->s, nr, p);
		return;
	}
	for (i = 0; i < nr; i++)
		kmem_cache_free(sc->s, p[i]);
}

/* ---- verify mode ------------------------------------------------------ */

static void sheaf_poison(struct sheaf_cache *sc, void **objs, unsigned int n)
{
	while (n--)
		memset(objs[n], SHEAF_POISON, sc->object_size);
}

/* An object leaves a sheaf: it must still hold the poison it got there. */
static void sheaf_verify_out(struct sheaf_cache *sc, void *obj)
{
	u8 *bad = memchr_inv(obj, SHEAF_POISON, sc->object_size);

	if (unlikely(bad)) {
		sheaf_stat(sc, PARKED_WRITE);
		WARN_ONCE(1, "%s: object %p written at offset %td while parked\n",
			  sc->name, obj, bad - (u8 *)obj);
	}
}

/*
 * Is @obj in this CPU's sheaves (locked) already, parked or waiting for its
 * grace period?  Then this free is its second: warn and count.
 */
static bool sheaf_verify_parked(struct sheaf_cache *sc,
				struct sheaf_pcpu *pcs, void *obj)
{
	struct sheaf *sheaves[] = { pcs->main, pcs->spare, pcs->rcu_free };
	unsigned int i, k;

	for (k = 0; k < ARRAY_SIZE(sheaves); k++) {
		for (i = 0; sheaves[k] && i < sheaves[k]->size; i++) {
			if (sheaves[k]->objects[i] != obj)
				continue;
			sheaf_stat(sc, DOUBLE_FREE);
			WARN_ONCE(1, "%s: object %p freed twice\n", sc->name,
				  obj);
			return true;
		}
	}
	return false;
}

/*
 * An object enters this CPU's sheaves (locked): refuse it if it is there
 * already, else poison it.
 */
static bool sheaf_verify_in(struct sheaf_cache *sc, struct sheaf_pcpu *pcs,
			    void *obj)
{
	if (sheaf_verify_parked(sc, pcs, obj))
		return false;
	memset(obj, SHEAF_POISON, sc->object_size);
	return true;
}

/*
 * Fill @sheaf from the slab: to its capacity if possible, else to at least
 * @min objects.  All or nothing per attempt, as kmem_cache_alloc_bulk() is.
 */
static int sheaf_fill(struct sheaf_cache *sc, struct sheaf *sheaf,
		      gfp_t gfp, unsigned int min)
{
	unsigned int want = sheaf->capacity - sheaf->size;
	void **p = &sheaf->objects[sheaf->size];

	if (WARN_ON_ONCE(min > sheaf->capacity))
		return -EINVAL;

	/*
	 * Sheaves are caches: never hand them emergency reserves.  Parked
	 * objects must read as zero when zero_on_free says so, also where the
	 * slab would not zero them itself (e.g. slub_debug poisoning).
	 */
	gfp = (gfp & ~__GFP_ZERO) | __GFP_NOMEMALLOC;
	if (!sheaf->private)
		gfp &= ~__GFP_ACCOUNT;
	if (sc->zero_on_free)
		gfp |= __GFP_ZERO;
	if (!want || sheaf_inject_failure(sc))
		return want ? -ENOMEM : 0;
	if (!sheaf_slab_alloc_many(sc, gfp | __GFP_NOWARN, want, p)) {
		if (min <= sheaf->size)
			return -ENOMEM;
		want = min - sheaf->size;
		if (want == sheaf->capacity - sheaf->size ||
		    !sheaf_slab_alloc_many(sc, gfp, want, p))
			return -ENOMEM;
	}
	if (unlikely(sc->verify))
		sheaf_poison(sc, p, want);
	sheaf->size += want;
	sheaf_stat_add(sc, SHEAF_REFILL, want);
	return 0;
}

/* Give all of @sheaf's objects back to the slab. */
static void sheaf_flush(struct sheaf_cache *sc, struct sheaf *sheaf)
{
	if (!sheaf->size)
		return;
	sheaf_slab_free_many(sc, sheaf->size, sheaf->objects);
	sheaf_stat_add(sc, SHEAF_FLUSH, sheaf->size);
	trace_sheaf_flush(sc, sheaf->size);
	sheaf->size = 0;
}

static void sheaf_flush_and_free(struct sheaf_cache *sc, struct sheaf *sheaf)
{
	sheaf_flush(sc, sheaf);
	sheaf_free_empty(sc, sheaf);
}

/* Oversize and private sheaves never stay; nothing stays once detached. */
static bool sheaf_recyclable(struct sheaf_cache *sc, const struct sheaf *sheaf)
{
	return sheaf->capacity == READ_ONCE(sc->capacity) && !sheaf->private &&
	       !READ_ONCE(sc->dead);
}

static struct sheaf_barn *sheaf_local_barn(struct sheaf_cache *sc)
{
	return sc->barns[numa_mem_id()];
}

static bool sheaf_is_full(const struct sheaf *sheaf)
{
	return sheaf->size == sheaf->capacity;
}

/*
 * Find a place for a sheaf the caller owns and no longer needs: the CPU's
 * free spare slot, else the barn if it takes it, else flush and free it.
 * Not under the pcs lock.
 */
static void sheaf_stash(struct sheaf_cache *sc, struct sheaf *sheaf)
{
	struct sheaf_barn *barn = sheaf_local_barn(sc);
	struct sheaf_pcpu *pcs;
	bool kept;

	if (!sheaf_recyclable(sc, sheaf)) {
		sheaf_flush_and_free(sc, sheaf);
		return;
	}

	pcs = pcs_trylock(sc);
	if (pcs) {
		kept = !pcs->spare;
		if (kept)
			pcs->spare = sheaf;
		pcs_unlock(pcs);
		if (kept)
			return;
	}

	if (!sheaf->size)
		kept = barn_put_empty(barn, sheaf, READ_ONCE(sc->barn_max_empty));
	else if (sheaf_is_full(sheaf))
		kept = barn_put_full(barn, sheaf, READ_ONCE(sc->barn_max_full));
	else
		kept = false;
	sheaf_barn_put(sc, kept);
	if (!kept)
		sheaf_flush_and_free(sc, sheaf);
}

/* ---- allocation --------------------------------------------------------- */

static void *sheaf_slab_alloc(struct sheaf_cache *sc, gfp_t gfp, int node)
{
	void *obj = NULL;

	if (!sheaf_inject_failure(sc))
		obj = kmem_cache_alloc_node(sc->s, gfp, node);
	if (obj)
		sheaf_stat(sc, ALLOC_SLAB);
	return obj;
}

/* An object leaves a sheaf for a caller: make it what the slab would give. */
static void sheaf_hand_out(struct sheaf_cache *sc, void *obj, gfp_t gfp)
{
	if (unlikely(sc->verify)) {
		sheaf_verify_out(sc, obj);
		if (sc->zero_on_alloc)
			gfp |= __GFP_ZERO;
	}
	if (unlikely(gfp & __GFP_ZERO) && !sc->zero_on_free)
		memset(obj, 0, sc->object_size);
}

/*
 * Main is empty: swap in the spare or a full sheaf from the barn.  Called
 * and returns with @pcs locked.  Returns the empty sheaf the caller must
 * stash after unlocking, if any, through @leftover.
 */
static bool pcs_swap_in_full(struct sheaf_cache *sc, struct sheaf_pcpu *pcs,
			     struct sheaf **leftover)
{
	struct sheaf *full;

	if (pcs->spare && pcs->spare->size) {
		swap(pcs->main, pcs->spare);
		return true;
	}
	full = barn_get_full(sheaf_local_barn(sc));
	sheaf_barn_got(sc, full);
	if (!full)
		return false;
	if (!pcs->spare)
		pcs->spare = pcs->main;
	else
		*leftover = pcs->main;
	pcs->main = full;
	return true;
}

/*
 * Install @full, just refilled, as the locked CPU's main.  Someone else may
 * have refilled main meanwhile: then @full is kept as spare if there is
 * room, else handed back through @leftover.
 */
static void pcs_install_full(struct sheaf_pcpu *pcs, struct sheaf *full,
			     struct sheaf **leftover)
{
	if (!pcs->main->size) {
		swap(pcs->main, full);	/* @full is now the empty old main */
		if (!pcs->spare) {
			pcs->spare = full;
			return;
		}
	} else if (!pcs->spare) {
		pcs->spare = full;
		return;
	}
	*leftover = full;
}

/*
 * Lock this CPU's sheaves again after getting @sheaf (may be NULL) with
 * them unlocked.  Returns them locked, or NULL with @sheaf stashed.
 */
static struct sheaf_pcpu *pcs_relock_holding(struct sheaf_cache *sc,
					     struct sheaf *sheaf)
{
	struct sheaf_pcpu *pcs;

	if (!sheaf)
		return NULL;
	pcs = pcs_trylock(sc);
	if (!pcs)
		sheaf_stash(sc, sheaf);
	return pcs;
}

static void *sheaf_alloc_slow(struct sheaf_cache *sc, gfp_t gfp)
{
	struct sheaf *full, *leftover = NULL;
	struct sheaf_pcpu *pcs;
	void *obj = NULL;

	if (!gfpflags_allow_blocking(gfp))
		return sheaf_slab_alloc(sc, gfp, NUMA_NO_NODE);

	full = barn_get_empty(sheaf_local_barn(sc));
	if (full)
		sheaf_barn_got(sc, true);
	else
		full = sheaf_alloc_empty(sc, gfp, READ_ONCE(sc->capacity));
	if (full && sheaf_fill(sc, full, gfp, 1)) {
		sheaf_stash(sc, full);
		full = NULL;
	}
	pcs = pcs_relock_holding(sc, full);
	if (unlikely(!pcs))
		return sheaf_slab_alloc(sc, gfp, NUMA_NO_NODE);
	pcs_install_full(pcs, full, &leftover);
	obj = pcs->main->objects[--pcs->main->size];
	pcs_unlock(pcs);
	sheaf_stat(sc, ALLOC_CPU_SHEAF);
	if (leftover)
		sheaf_stash(sc, leftover);
	sheaf_hand_out(sc, obj, gfp);
	return obj;
}

/**
 * sheaf_cache_alloc() - allocate an object
 * @sc: the sheaf cache
 * @gfp: allocation flags, as for kmem_cache_alloc()
 *
 * Takes an object from this CPU's sheaves, exchanging sheaves with the
 * node's barn when they run empty.  When all are empty and @gfp allows
 * blocking, refills a sheaf from the slab in one bulk allocation;
 * otherwise allocates one object from the slab.  __GFP_ZERO zeroes the
 * object; __GFP_ACCOUNT bypasses the sheaves so the caller's memory
 * cgroup is charged.
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 * Return: an object, or NULL when neither the sheaves nor the slab have
 * one for @gfp.
 */
void *sheaf_cache_alloc(struct sheaf_cache *sc, gfp_t gfp)
{
	struct sheaf *leftover = NULL;
	struct sheaf_pcpu *pcs;
	struct sheaf *main;
	void *obj;

	if (unlikely(sc->bypass || (gfp & __GFP_ACCOUNT)))
		return sheaf_slab_alloc(sc, gfp, NUMA_NO_NODE);

	pcs = pcs_trylock(sc);
	if (unlikely(!pcs))
		return sheaf_slab_alloc(sc, gfp, NUMA_NO_NODE);

	main = pcs->main;
	if (unlikely(!main->size)) {
		if (!pcs_swap_in_full(sc, pcs, &leftover)) {
			pcs_unlock(pcs);
			return sheaf_alloc_slow(sc, gfp);
		}
		main = pcs->main;
	}
	obj = main->objects[--main->size];
	pcs_unlock(pcs);
	sheaf_stat(sc, ALLOC_CPU_SHEAF);
	if (unlikely(leftover))
		sheaf_stash(sc, leftover);
	sheaf_hand_out(sc, obj, gfp);
	return obj;
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_alloc, SHEAF_NS);

/* Every struct page, tail pages too, carries its node: no head lookup. */
static int sheaf_obj_node(const void *obj)
{
	return page_to_nid(virt_to_page(obj));
}

/**
 * sheaf_cache_alloc_node() - allocate an object on a given node
 * @sc: the sheaf cache
 * @gfp: allocation flags, as for kmem_cache_alloc_node()
 * @node: the NUMA node wanted, or NUMA_NO_NODE
 *
 * As sheaf_cache_alloc(), but sheaves serve only the local memory node
 * (numa_mem_id()) and only with objects of that node; any other @node is
 * served by kmem_cache_alloc_node().
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 * Return: an object, or NULL.
 */
void *sheaf_cache_alloc_node(struct sheaf_cache *sc, gfp_t gfp, int node)
{
	void *obj;

	if (node == NUMA_NO_NODE)
		return sheaf_cache_alloc(sc, gfp);
	if (node != numa_mem_id())
		return sheaf_slab_alloc(sc, gfp, node);

	obj = sheaf_cache_alloc(sc, gfp);
	if (obj && unlikely(sheaf_obj_node(obj) != node)) {
		/* A sheaf held a remote object: give it back, ask the slab. */
		sheaf_cache_free(sc, obj);
		obj = sheaf_slab_alloc(sc, gfp, node);
	}
	return obj;
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_alloc_node, SHEAF_NS);

/* ---- free -------------------------------------------------------------- */

static void sheaf_slab_free(struct sheaf_cache *sc, void *obj)
{
	kmem_cache_free(sc->s, obj);
	sheaf_stat(sc, FREE_SLAB);
}

/* Lock again after a slab call; NULL if that fails or main filled up. */
static struct sheaf_pcpu *pcs_relock_with_room(struct sheaf_cache *sc)
{
	struct sheaf_pcpu *pcs = pcs_trylock(sc);

	if (pcs && sheaf_is_full(pcs->main)) {
		pcs_unlock(pcs);
		return NULL;
	}
	return pcs;
}

/*
 * Main is full: make room by swapping in the spare, or an empty sheaf from
 * the barn or the allocator, parking the full one as spare or in the barn
 * or flushing it.  Called with @pcs locked; returns it locked with room in
 * main, or NULL unlocked (the caller frees to the slab).
 */
static struct sheaf_pcpu *pcs_make_room(struct sheaf_cache *sc,
					struct sheaf_pcpu *pcs)
{
	struct sheaf_barn *barn = sheaf_local_barn(sc);
	struct sheaf *empty, *full;

	if (pcs->spare && !sheaf_is_full(pcs->spare)) {
		swap(pcs->main, pcs->spare);
		return pcs;
	}

	empty = barn_get_empty(barn);
	if (!empty) {
		pcs_unlock(pcs);
		empty = sheaf_alloc_empty(sc, GFP_NOWAIT | __GFP_NOWARN,
					  READ_ONCE(sc->capacity));
		pcs = pcs_relock_holding(sc, empty);
		if (!pcs)
			return NULL;
		/* We may have moved, or someone made room meanwhile. */
		barn = sheaf_local_barn(sc);
		if (!sheaf_is_full(pcs->main)) {
			pcs_unlock(pcs);
			sheaf_stash(sc, empty);
			return pcs_relock_with_room(sc);
		}
	} else {
		sheaf_barn_got(sc, true);
	}

	full = pcs->main;
	pcs->main = empty;
	if (!pcs->spare) {
		pcs->spare = full;
		return pcs;
	}
	if (barn_put_full(barn, full, READ_ONCE(sc->barn_max_full))) {
		sheaf_barn_put(sc, true);
		return pcs;
	}
	sheaf_barn_put(sc, false);
	/* The barn holds its limit: flush the full sheaf outside the lock. */
	pcs_unlock(pcs);
	sheaf_flush(sc, full);
	sheaf_stash(sc, full);
	return pcs_relock_with_room(sc);
}

/**
 * sheaf_cache_free() - free an object
 * @sc: the sheaf cache
 * @obj: an object of @sc's kmem_cache, or NULL
 *
 * Puts @obj into this CPU's main sheaf, exchanging sheaves with the barn
 * when it is full.  An object of a remote NUMA node, and every object of
 * an accounted or pass-through cache, goes straight back to the slab.
 * Objects from any allocation function of the cache may be freed here,
 * from any CPU.  One allocated with __GFP_ACCOUNT from a cache without
 * SLAB_ACCOUNT keeps its memcg charge while parked (and when handed out
 * again) until it reaches the slab: free it with kmem_cache_free() to
 * uncharge at once.
 *
 * Context: any context but NMI.  Never sleeps.
 */
void sheaf_cache_free(struct sheaf_cache *sc, void *obj)
{
	struct sheaf_pcpu *pcs;
	struct sheaf *main;

	if (unlikely(!obj))
		return;
	if (unlikely(sc->bypass))
		goto slab;
	if (sc->zero_on_free)
		memset(obj, 0, sc->object_size);

	pcs = pcs_trylock(sc);
	if (unlikely(!pcs))
		goto slab;
	if (sc->numa && unlikely(sheaf_obj_node(obj) != numa_mem_id())) {
		pcs_unlock(pcs);
		sheaf_stat(sc, FREE_REMOTE);
		goto slab;
	}
	if (unlikely(sc->verify) && !sheaf_verify_in(sc, pcs, obj)) {
		pcs_unlock(pcs);
		return;		/* the first free stands */
	}
	main = pcs->main;
	if (unlikely(sheaf_is_full(main))) {
		pcs = pcs_make_room(sc, pcs);
		if (!pcs)
			goto slab;
		main = pcs->main;
	}
	main->objects[main->size++] = obj;
	pcs_unlock(pcs);
	sheaf_stat(sc, FREE_CPU_SHEAF);
	return;
slab:
	sheaf_slab_free(sc, obj);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_free, SHEAF_NS);

/* ---- bulk ---------------------------------------------------------------- */

/* The most objects one bulk call takes: the count must fit in an int. */
#define SHEAF_BULK_MAX	((size_t)INT_MAX)

/*
 * Take up to @size objects from this CPU's sheaves into @p, a sheaf at a
 * time, swapping in the spare or a full sheaf from the barn as
 * sheaf_cache_alloc() does.  Never goes to the slab.  Returns how many.
 */
static size_t pcs_alloc_bulk(struct sheaf_cache *sc, size_t size, void **p)
{
	struct sheaf *main, *leftover;
	struct sheaf_pcpu *pcs;
	unsigned int batch;
	size_t got = 0;

	while (got < size) {
		leftover = NULL;
		pcs = pcs_trylock(sc);
		if (unlikely(!pcs))
			break;
		if (!pcs->main->size && !pcs_swap_in_full(sc, pcs, &leftover)) {
			pcs_unlock(pcs);
			break;
		}
		main = pcs->main;
		batch = min_t(size_t, size - got, main->size);
		main->size -= batch;
		memcpy(p + got, &main->objects[main->size], batch * sizeof(*p));
		pcs_unlock(pcs);
		got += batch;
		if (leftover)
			sheaf_stash(sc, leftover);
	}
	sheaf_stat_add(sc, ALLOC_CPU_SHEAF, got);
	return got;
}

/*
 * Put objects of node @node from @p into this CPU's main sheaf, a sheaf at
 * a time, making room as sheaf_cache_free() does.  Stops when the sheaves
 * are busy, no room can be made, or the caller moved to another node.
 * Returns how many went in, the first ones of @p.
 */
static size_t pcs_free_bulk(struct sheaf_cache *sc, size_t size, void **p,
			    int node)
{
	struct sheaf_pcpu *pcs;
	struct sheaf *main;
	unsigned int batch;
	size_t done = 0;

	while (done < size) {
		pcs = pcs_trylock(sc);
		if (unlikely(!pcs))
			break;
		if (unlikely(sheaf_is_full(pcs->main))) {
			pcs = pcs_make_room(sc, pcs);
			if (!pcs)
				break;
		}
		if (sc->numa && unlikely(numa_mem_id() != node)) {
			pcs_unlock(pcs);
			break;
		}
		main = pcs->main;
		batch = min_t(size_t, size - done, main->capacity - main->size);
		memcpy(&main->objects[main->size], p + done, batch * sizeof(*p));
		main->size += batch;
		pcs_unlock(pcs);
		done += batch;
	}
	sheaf_stat_add(sc, FREE_CPU_SHEAF, done);
	return done;
}

static void sheaf_slab_free_bulk(struct sheaf_cache *sc, size_t size,
				 void **p)
{
	if (!size)
		return;
	sheaf_slab_free_many(sc, size, p);
	sheaf_stat_add(sc, FREE_SLAB, size);
}

/* The objects the sheaves could not give: all of them or none. */
static bool sheaf_slab_alloc_rest(struct sheaf_cache *sc, gfp_t gfp,
				  size_t size, void **p)
{
	if (sheaf_inject_failure(sc) || !sheaf_slab_alloc_many(sc, gfp, size, p))
		return false;
	sheaf_stat_add(sc, ALLOC_SLAB, size);
	return true;
}

/*
 * Objects taken from the sheaves, not handed out yet, go back: still
 * zeroed or poisoned as parked objects are, so no zeroing and no check.
 */
static void sheaf_bulk_put_back(struct sheaf_cache *sc, size_t size, void **p)
{
	size_t done = pcs_free_bulk(sc, size, p, numa_mem_id());

	sheaf_slab_free_bulk(sc, size - done, p + done);
}

/* Drop the NULL entries of @p, keeping the order; returns how many remain. */
static size_t sheaf_bulk_drop_null(size_t size, void **p)
{
	size_t i, n = 0;

	for (i = 0; i < size; i++)
		if (p[i])
			p[n++] = p[i];
	return n;
}

/*
 * Move the objects of other nodes than @node to the end of @p (order not
 * kept); returns how many of @node's come first.
 */
static size_t sheaf_bulk_local_first(size_t size, void **p, int node)
{
	size_t i = 0;

	while (i < size) {
		if (sheaf_obj_node(p[i]) == node) {
			i++;
			continue;
		}
		size--;		/* not in swap(): it evaluates its arguments twice */
		swap(p[i], p[size]);
	}
	return size;
}

/**
 * sheaf_cache_alloc_bulk() - allocate several objects
 * @sc: the sheaf cache
 * @gfp: allocation flags, as for kmem_cache_alloc_bulk()
 * @size: how many objects, at most INT_MAX
 * @p: an array of at least @size pointers, filled with the objects
 *
 * Takes what it can from this CPU's sheaves, a sheaf at a time, trading an
 * empty main for the spare or a full sheaf from the node's barn as
 * sheaf_cache_alloc() does, and allocates the rest from the slab with one
 * kmem_cache_alloc_bulk() (object by object with interrupts off).  It does
 * not refill sheaves: the frees of the objects do.  __GFP_ZERO zeroes every
 * object; __GFP_ACCOUNT, an accounted or a pass-through cache take all of
 * them from the slab so the caller's memory cgroup is charged.  A NULL @p
 * with a non-zero @size, or a @size above INT_MAX, is misuse: it warns once
 * and allocates nothing.
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 * Return: @size when all @size objects were allocated; 0 when @size is 0 or
 * the slab could not provide the rest, and then nothing is allocated, the
 * objects taken from the sheaves are back in them, and @p holds garbage.
 * The same on every kernel, whatever its kmem_cache_alloc_bulk() returns.
 */
int sheaf_cache_alloc_bulk(struct sheaf_cache *sc, gfp_t gfp, size_t size,
			   void **p)
{
	size_t got = 0, i;

	if (!size)
		return 0;
	if (sheaf_misuse(sc, !p || size > SHEAF_BULK_MAX))
		return 0;
	sheaf_stat(sc, ALLOC_BULK);

	if (likely(!sc->bypass && !(gfp & __GFP_ACCOUNT)))
		got = pcs_alloc_bulk(sc, size, p);
	if (got < size && !sheaf_slab_alloc_rest(sc, gfp, size - got, p + got)) {
		sheaf_bulk_put_back(sc, got, p);
		return 0;
	}
	for (i = 0; i < got; i++)
		sheaf_hand_out(sc, p[i], gfp);
	return size;
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_alloc_bulk, SHEAF_NS);

/**
 * sheaf_cache_free_bulk() - free several objects
 * @sc: the sheaf cache
 * @size: how many entries @p has, at most INT_MAX
 * @p: the objects, of @sc's kmem_cache; NULL entries are skipped
 *
 * Puts the objects into this CPU's main sheaf, a sheaf at a time, trading a
 * full main for an empty sheaf as sheaf_cache_free() does, and frees what
 * does not fit (the barn at its limit, no empty sheaf to be had without
 * sleeping) to the slab with one kmem_cache_free_bulk() (object by object
 * with interrupts off).  Objects of a remote NUMA node, and every object
 * of an accounted or pass-through cache, go straight back to the slab; in
 * verify mode every object is checked as sheaf_cache_free() checks it.
 * Objects may come from any allocation function of the cache and any CPU.
 * The contents of @p are undefined afterwards, as with
 * kmem_cache_free_bulk().  A NULL @p with a non-zero @size, or a @size
 * above INT_MAX, is misuse: it warns once and frees nothing.
 *
 * Context: any context but NMI.  Never sleeps.
 */
void sheaf_cache_free_bulk(struct sheaf_cache *sc, size_t size, void **p)
{
	size_t i, local, done;
	int node;

	if (!size)
		return;
	if (sheaf_misuse(sc, !p || size > SHEAF_BULK_MAX))
		return;
	sheaf_stat(sc, FREE_BULK);

	size = sheaf_bulk_drop_null(size, p);
	if (unlikely(sc->verify)) {
		/* Debugging: each object through the double-free check. */
		for (i = 0; i < size; i++)
			sheaf_cache_free(sc, p[i]);
		return;
	}
	if (unlikely(sc->bypass)) {
		sheaf_slab_free_bulk(sc, size, p);
		return;
	}

	node = numa_mem_id();
	local = sc->numa ? sheaf_bulk_local_first(size, p, node) : size;
	sheaf_stat_add(sc, FREE_REMOTE, size - local);
	if (sc->zero_on_free)
		for (i = 0; i < local; i++)
			memset(p[i], 0, sc->object_size);
	done = pcs_free_bulk(sc, local, p, node);
	sheaf_slab_free_bulk(sc, size - done, p + done);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_free_bulk, SHEAF_NS);

/* ---- RCU-deferred frees ------------------------------------------------- */

/*
 * sheaf_cache_free_rcu() collects objects in a per-CPU rcu sheaf and sends
 * the whole sheaf through one call_rcu() when it is full (or at a barrier,
 * a CPU's death or detach).  The sheaf carries the rcu_head, so objects
 * need none.  When no rcu sheaf can be had without sleeping, one object
 * goes through call_rcu() on a small node of its own: kmalloc'ed, else one
 * of the cache's reserve; a caller that may sleep then waits for the grace
 * period itself.
 */
struct sheaf_rcu_node {
	union {
		struct rcu_head rcu;
		struct llist_node reserve_link;	/* while in the reserve */
	};
	struct sheaf_cache *sc;
	void *obj;
	bool reserved;	/* goes back to the reserve, not to kfree() */
};

static int sheaf_rcu_reserve_fill(struct sheaf_cache *sc)
{
	struct sheaf_rcu_node *node;
	unsigned int i;

	raw_spin_lock_init(&sc->rcu_reserve_lock);
	init_llist_head(&sc->rcu_reserve);
	for (i = 0; i < SHEAF_RCU_RESERVE; i++) {
		node = kzalloc(sizeof(*node), GFP_KERNEL);
		if (!node)
			return -ENOMEM;
		node->reserved = true;
		llist_add(&node->reserve_link, &sc->rcu_reserve);
	}
	return 0;
}

/* Every node must be back: after rcu_barrier(). */
static void sheaf_rcu_reserve_free(struct sheaf_cache *sc)
{
	struct llist_node *list = llist_del_all(&sc->rcu_reserve);
	struct sheaf_rcu_node *node, *next;

	llist_for_each_entry_safe(node, next, list, reserve_link)
		kfree(node);
}

static struct sheaf_rcu_node *sheaf_rcu_reserve_take(struct sheaf_cache *sc)
{
	struct llist_node *first;
	unsigned long flags;

	raw_spin_lock_irqsave(&sc->rcu_reserve_lock, flags);
	first = llist_del_first(&sc->rcu_reserve);
	raw_spin_unlock_irqrestore(&sc->rcu_reserve_lock, flags);
	return first ? llist_entry(first, struct sheaf_rcu_node, reserve_link) :
		       NULL;
}

/* Softirq, or the rcuc thread on PREEMPT_RT: the slab's free path only. */
static void sheaf_rcu_node_done(struct rcu_head *head)
{
	struct sheaf_rcu_node *node = container_of(head, struct sheaf_rcu_node,
						   rcu);
	struct sheaf_cache *sc = node->sc;

	sheaf_slab_free(sc, node->obj);
	sheaf_stat(sc, RCU_DONE);
	if (node->reserved)
		llist_add(&node->reserve_link, &sc->rcu_reserve);
	else
		kfree(node);
}

/* Whether synchronize_rcu() is allowed here: a task, preemptible, no reader. */
static bool sheaf_may_sleep(void)
{
	return in_task() && preemptible() && !rcu_preempt_depth();
}

/* No rcu sheaf to be had: defer @obj alone.  See sheaf_cache_free_rcu(). */
static noinline void sheaf_free_rcu_fallback(struct sheaf_cache *sc, void *obj)
{
	struct sheaf_rcu_node *node = NULL;
	enum sheaf_stat how = RCU_FALLBACK_NODE;

	sheaf_stat(sc, FREE_RCU_SHEAF_FAIL);
	if (!sheaf_inject_failure(sc))
		node = kmalloc(sizeof(*node), GFP_ATOMIC | __GFP_NOWARN);
	if (node) {
		node->reserved = false;
	} else {
		node = sheaf_rcu_reserve_take(sc);
		how = RCU_FALLBACK_RESERVE;
	}
	if (node) {
		node->sc = sc;
		node->obj = obj;
		sheaf_stat(sc, how);
		call_rcu(&node->rcu, sheaf_rcu_node_done);
		return;
	}
	if (sheaf_may_sleep()) {
		synchronize_rcu();
		sheaf_slab_free(sc, obj);
		sheaf_stat(sc, RCU_FALLBACK_SYNC);
		sheaf_stat(sc, RCU_DONE);
		return;
	}
	/* Atomic, no memory, the reserve in flight: freeing would be a UAF. */
	sheaf_stat(sc, RCU_LOST);
	WARN_ONCE(1, "%s: out of memory in atomic context, object %p leaked instead of freed after RCU\n",
		  sc->name, obj);
}

/* Whether every object of @sheaf belongs to the running CPU's node. */
static bool sheaf_all_local(struct sheaf_cache *sc, struct sheaf *sheaf)
{
	int node = numa_mem_id();
	unsigned int i;

	if (!sc->numa)
		return true;
	for (i = 0; i < sheaf->size; i++)
		if (sheaf_obj_node(sheaf->objects[i]) != node)
			return false;
	return true;
}

/*
 * The grace period is over, so nobody looks at the objects any more: only
 * now may they be poisoned or zeroed, as a free into a sheaf would have.
 */
static void sheaf_rcu_park(struct sheaf_cache *sc, struct sheaf *sheaf)
{
	unsigned int i;

	if (unlikely(sc->verify))
		sheaf_poison(sc, sheaf->objects, sheaf->size);
	else if (sc->zero_on_free)
		for (i = 0; i < sheaf->size; i++)
			memset(sheaf->objects[i], 0, sc->object_size);
}

/*
 * An rcu sheaf's grace period is over.  Runs in softirq (or the rcuc
 * thread on PREEMPT_RT), never touches the per-CPU sheaves: a full sheaf
 * of local objects goes to the barn as it is, anything else is flushed to
 * the slab and the empty sheaf kept in the barn or freed.
 */
static void sheaf_rcu_done(struct rcu_head *head)
{
	struct sheaf *sheaf = container_of(head, struct sheaf, rcu_head);
	struct sheaf_cache *sc = sheaf->cache;
	struct sheaf_barn *barn = sheaf_local_barn(sc);
	bool kept;

	sheaf_stat_add(sc, RCU_DONE, sheaf->size);
	if (sheaf_is_full(sheaf) && !sc->bypass &&
	    sheaf_recyclable(sc, sheaf) && sheaf_all_local(sc, sheaf)) {
		sheaf_rcu_park(sc, sheaf);
		kept = barn_put_full(barn, sheaf, READ_ONCE(sc->barn_max_full));
		sheaf_barn_put(sc, kept);
		if (kept)
			return;
	}
	sheaf_flush(sc, sheaf);
	kept = sheaf_recyclable(sc, sheaf) &&
	       barn_put_empty(barn, sheaf, READ_ONCE(sc->barn_max_empty));
	sheaf_barn_put(sc, kept);
	if (!kept)
		sheaf_free_empty(sc, sheaf);
}

/* Send an rcu sheaf on its way; an empty one has nothing to wait for. */
static void sheaf_rcu_submit(struct sheaf_cache *sc, struct sheaf *sheaf)
{
	if (!sheaf->size) {
		sheaf_stash(sc, sheaf);
		return;
	}
	sheaf_stat(sc, RCU_SHEAF_SUBMIT);
	call_rcu(&sheaf->rcu_head, sheaf_rcu_done);
}

/* An empty sheaf to collect RCU frees in, without sleeping; or NULL. */
static struct sheaf *sheaf_rcu_get_empty(struct sheaf_cache *sc)
{
	struct sheaf *empty = barn_get_empty(sheaf_local_barn(sc));

	if (empty) {
		sheaf_barn_got(sc, true);
		return empty;
	}
	return sheaf_alloc_empty(sc, GFP_NOWAIT | __GFP_NOWARN,
				 READ_ONCE(sc->capacity));
}

/*
 * This CPU has no rcu sheaf: get one, then lock again.  Returns @pcs
 * locked with an rcu sheaf, or NULL unlocked.  A sheaf that turns out not
 * to be needed comes back through @extra.
 */
static struct sheaf_pcpu *pcs_get_rcu_sheaf(struct sheaf_cache *sc,
					    struct sheaf **extra)
{
	struct sheaf *empty = sheaf_rcu_get_empty(sc);
	struct sheaf_pcpu *pcs = pcs_relock_holding(sc, empty);

	if (!pcs)
		return NULL;
	/* We may have moved, or been interrupted by another free_rcu. */
	if (!pcs->rcu_free)
		pcs->rcu_free = empty;
	else
		*extra = empty;
	return pcs;
}

/**
 * sheaf_cache_free_rcu() - free an object after an RCU grace period
 * @sc: the sheaf cache
 * @obj: an object of @sc's kmem_cache, or NULL
 *
 * Like kfree_rcu(), but the object needs no rcu_head: it is collected in
 * this CPU's rcu sheaf, and a full sheaf goes through one call_rcu().  After
 * the grace period a full sheaf of objects of the local node goes to the
 * barn, ready for allocations; anything else is freed to the slab.
 * sheaf_cache_rcu_barrier() sends partial sheaves on their way and waits.
 * Objects are zeroed or poisoned (init_on_free, verify mode) only after the
 * grace period, never before: readers may still be looking at them.  Verify
 * mode refuses @obj, warning once, when it is in this CPU's sheaves or rcu
 * sheaf already.
 *
 * A %SLAB_TYPESAFE_BY_RCU cache needs no deferral (its readers check an
 * object's identity, and its memory stays of its type for a grace period
 * anyway): @obj is freed at once with sheaf_cache_free().
 *
 * When no rcu sheaf can be had without sleeping (the CPU's sheaves are
 * busy under an interrupt, or no memory for one), @obj alone goes through
 * call_rcu() on a node from kmalloc(%GFP_ATOMIC), else from a reserve of
 * 16 nodes per cache; with none of those, a caller that
 * may sleep waits in synchronize_rcu().  Worst case: in atomic context
 * with no memory and the whole reserve waiting for its grace period,
 * @obj cannot be deferred and is never freed (a leak, counted in
 * rcu_lost, warned once), since freeing it early could be a use after
 * free.  Never sleeps in atomic context.
 *
 * Context: any context sheaf_cache_free() may be called from: process,
 * softirq, hardirq (not on PREEMPT_RT), under spinlocks and inside RCU
 * readers.  Not NMI.
 */
void sheaf_cache_free_rcu(struct sheaf_cache *sc, void *obj)
{
	struct sheaf *rcu, *extra = NULL;
	struct sheaf_pcpu *pcs;

	if (unlikely(!obj))
		return;
	if (unlikely(sc->flags & SHEAF_CACHE_TYPESAFE_BY_RCU)) {
		sheaf_cache_free(sc, obj);
		return;
	}

	pcs = pcs_trylock(sc);
	if (unlikely(!pcs))
		goto fallback;
	/* Not poisoned: readers may still be looking at it. */
	if (unlikely(sc->verify) && sheaf_verify_parked(sc, pcs, obj)) {
		pcs_unlock(pcs);
		return;		/* the first free stands */
	}
	if (unlikely(!pcs->rcu_free)) {
		pcs_unlock(pcs);
		pcs = pcs_get_rcu_sheaf(sc, &extra);
		if (!pcs)
			goto fallback;
	}
	rcu = pcs->rcu_free;
	rcu->objects[rcu->size++] = obj;
	if (sheaf_is_full(rcu))
		pcs->rcu_free = NULL;
	else
		rcu = NULL;
	pcs_unlock(pcs);
	sheaf_stat(sc, FREE_RCU_SHEAF);
	if (unlikely(extra))
		sheaf_stash(sc, extra);
	if (rcu)
		sheaf_rcu_submit(sc, rcu);
	return;
fallback:
	sheaf_free_rcu_fallback(sc, obj);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_free_rcu, SHEAF_NS);

/* Take a CPU's rcu sheaf that nobody else can be using (dead or detached). */
static void pcs_submit_rcu(struct sheaf_cache *sc, struct sheaf_pcpu *pcs)
{
	struct sheaf *rcu = pcs->rcu_free;

	pcs->rcu_free = NULL;
	if (rcu)
		sheaf_rcu_submit(sc, rcu);
}

/* Runs on the CPU whose rcu sheaf it submits (sheaf_cache_rcu_barrier()). */
static void sheaf_rcu_work_fn(struct work_struct *work)
{
	struct sheaf_flush_work *fw =
		container_of(work, struct sheaf_flush_work, rcu_work);
	struct sheaf_cache *sc = fw->sc;
	struct sheaf_pcpu *pcs;
	struct sheaf *rcu;

	pcs = pcs_trylock(sc);
	if (!pcs)
		return;
	rcu = pcs->rcu_free;
	pcs->rcu_free = NULL;
	pcs_unlock(pcs);
	if (rcu)
		sheaf_rcu_submit(sc, rcu);
}

/**
 * sheaf_cache_rcu_barrier() - wait until RCU-deferred frees are done
 * @sc: the sheaf cache
 *
 * Sends every CPU's rcu sheaf, full or not, through call_rcu() and waits
 * for all of them with rcu_barrier(): every object given to
 * sheaf_cache_free_rcu() before the call has passed its grace period and
 * is back in the barn or the slab.  Frees that run concurrently may still
 * be pending.
 *
 * Context: process context; sleeps.  Not under cpus_read_lock().
 */
void sheaf_cache_rcu_barrier(struct sheaf_cache *sc)
{
	unsigned int cpu;

	might_sleep();
	cpus_read_lock();
	for_each_online_cpu(cpu)
		queue_work_on(cpu, sheaf_wq,
			      &per_cpu_ptr(sc->flush, cpu)->rcu_work);
	for_each_online_cpu(cpu)
		flush_work(&per_cpu_ptr(sc->flush, cpu)->rcu_work);
	cpus_read_unlock();
	rcu_barrier();
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_rcu_barrier, SHEAF_NS);

/* Detach, unload: @sc is unused, send every rcu sheaf and wait for all. */
static void sheaf_rcu_drain(struct sheaf_cache *sc)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		pcs_submit_rcu(sc, per_cpu_ptr(sc->pcpu, cpu));
	rcu_barrier();
}

/* ---- prefilled sheaves --------------------------------------------------- */

/*
 * Prefilled sheaves handed out are counted per CPU (prefilled - returned),
 * no shared atomic on the way.  Once the cache is detached, the count
 * moves to @dead_out and the last of them to come back frees the layer.
 * A return racing with the detach (a caller bug) can only make the count
 * too high: the layer then waits for module unload, never freed early.
 */
static void sheaf_cache_release_if_last(struct sheaf_cache *sc, int delta)
{
	if (atomic_add_return(delta, &sc->dead_out) == 0)
		queue_work(sheaf_release_wq, &sc->release_work);
}

static void sheaf_count_return(struct sheaf_cache *sc)
{
	if (unlikely(READ_ONCE(sc->dead)))
		sheaf_cache_release_if_last(sc, -1);
	else
		sheaf_stat(sc, RETURNED);
}

/* Take a sheaf to prefill: the CPU's spare, else one from the barn. */
static struct sheaf *sheaf_take_for_prefill(struct sheaf_cache *sc)
{
	struct sheaf_pcpu *pcs;
	struct sheaf *sheaf = NULL;

	pcs = pcs_trylock(sc);
	if (pcs) {
		sheaf = pcs->spare;
		pcs->spare = NULL;
		pcs_unlock(pcs);
	}
	if (!sheaf) {
		sheaf = barn_get_full_or_empty(sheaf_local_barn(sc));
		sheaf_barn_got(sc, sheaf);
	}
	return sheaf;
}

/* A sheaf of its own: oversize, or charged to this caller's memcg. */
static struct sheaf *sheaf_prefill_own(struct sheaf_cache *sc, gfp_t gfp,
				       unsigned int size, bool private)
{
	struct sheaf *sheaf = sheaf_alloc_empty(sc, gfp, size);

	if (!sheaf)
		return NULL;
	sheaf->private = private;
	if (sheaf_fill(sc, sheaf, gfp, size)) {
		sheaf_free_empty(sc, sheaf);
		return NULL;
	}
	if (size > READ_ONCE(sc->capacity))
		sheaf_stat(sc, SHEAF_PREFILL_OVERSIZE);
	return sheaf;
}

/* A recycled sheaf, topped up if it holds fewer than @size objects. */
static struct sheaf *sheaf_prefill_recycled(struct sheaf_cache *sc, gfp_t gfp,
					    unsigned int size)
{
	struct sheaf *sheaf = sheaf_take_for_prefill(sc);

	/* One of an older, smaller capacity (see sheaf_cache_set_capacity()). */
	if (sheaf && unlikely(sheaf->capacity < size)) {
		sheaf_stash(sc, sheaf);
		sheaf = NULL;
	}
	if (!sheaf) {
		sheaf = sheaf_alloc_empty(sc, gfp,
					  max(size, READ_ONCE(sc->capacity)));
		if (!sheaf)
			return NULL;
	}
	if (sheaf->size >= size) {
		sheaf_stat(sc, SHEAF_PREFILL_FAST);
	} else if (!sheaf_fill(sc, sheaf, gfp, size)) {
		sheaf_stat(sc, SHEAF_PREFILL_SLOW);
	} else {
		sheaf_stash(sc, sheaf);		/* as it was */
		return NULL;
	}
	return sheaf;
}

/* Hand out a prefilled sheaf, or trace the failure to make one. */
static __always_inline struct sheaf *sheaf_prefilled(struct sheaf_cache *sc,
						     unsigned int size,
						     struct sheaf *sheaf)
{
	trace_sheaf_prefill(sc, size, sheaf);
	if (sheaf) {
		sheaf->state = SHEAF_PREFILLED;
		sheaf_stat(sc, PREFILLED);
	}
	return sheaf;
}

/* Everything but a spare that is ready: misuse, refills, own sheaves. */
static noinline struct sheaf *sheaf_prefill_slow(struct sheaf_cache *sc,
						 gfp_t gfp, unsigned int size)
{
	bool private = sc->bypass || (gfp & __GFP_ACCOUNT);
	struct sheaf *sheaf;

	if (sheaf_misuse(sc, !size || sc->dead))
		return NULL;

	if (size > READ_ONCE(sc->capacity) || private)
		sheaf = sheaf_prefill_own(sc, gfp, size, private);
	else
		sheaf = sheaf_prefill_recycled(sc, gfp, size);
	return sheaf_prefilled(sc, size, sheaf);
}

/* Whether a prefill of @size objects may be served by a recycled sheaf. */
static __always_inline bool sheaf_prefill_recycles(struct sheaf_cache *sc,
						   gfp_t gfp, unsigned int size)
{
	return size && size <= READ_ONCE(sc->capacity) && !sc->bypass &&
	       !(gfp & __GFP_ACCOUNT) && !READ_ONCE(sc->dead);
}

/* The CPU's spare, if it already holds @size objects. */
static __always_inline struct sheaf *pcs_take_ready_spare(struct sheaf_cache *sc,
							  unsigned int size)
{
	struct sheaf_pcpu *pcs = pcs_trylock(sc);
	struct sheaf *sheaf;

	if (unlikely(!pcs))
		return NULL;
	sheaf = pcs->spare;
	if (likely(sheaf && sheaf->size >= size))
		pcs->spare = NULL;
	else
		sheaf = NULL;
	pcs_unlock(pcs);
	return sheaf;
}

/**
 * sheaf_prefill() - get a sheaf holding at least @size objects
 * @sc: the sheaf cache
 * @gfp: allocation flags for refilling from the slab; __GFP_ZERO is
 *	ignored here (see sheaf_alloc())
 * @size: how many objects the caller must be able to allocate from it
 *
 * Prepares for a section that must not fail, sleep or take locks: up to
 * @size calls of sheaf_alloc() on the returned sheaf then succeed.  The
 * sheaf is usually the CPU's spare or one from the barn, so it often needs
 * no refill.  A @size above the cache's capacity builds an oversize sheaf
 * of its own.  So does __GFP_ACCOUNT, or a SLAB_ACCOUNT or pass-through
 * cache: its objects are charged to the caller's memory cgroup now, and
 * it is flushed on return rather than recycled.  The caller owns the
 * sheaf until sheaf_return().
 *
 * This is not a mempool: the prefill itself can fail.
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 * Return: a sheaf with sheaf_size() >= @size, or NULL if the objects could
 * not be allocated (or @size is 0), with no state changed.
 */
struct sheaf *sheaf_prefill(struct sheaf_cache *sc, gfp_t gfp,
			    unsigned int size)
{
	struct sheaf *sheaf;

	/* The common case first, with nothing to refill: the ready spare. */
	if (likely(sheaf_prefill_recycles(sc, gfp, size))) {
		sheaf = pcs_take_ready_spare(sc, size);
		if (likely(sheaf)) {
			sheaf_stat(sc, SHEAF_PREFILL_FAST);
			return sheaf_prefilled(sc, size, sheaf);
		}
	}
	return sheaf_prefill_slow(sc, gfp, size);
}
EXPORT_SYMBOL_NS_GPL(sheaf_prefill, SHEAF_NS);

/* Whether @sheaf is a prefilled sheaf of @sc, as the caller must pass. */
static __always_inline bool sheaf_is_prefilled(struct sheaf_cache *sc,
					       const struct sheaf *sheaf)
{
	return sheaf && sheaf->cache == sc && sheaf->state == SHEAF_PREFILLED;
}

static bool sheaf_misused(struct sheaf_cache *sc, const struct sheaf *sheaf)
{
	return sheaf_misuse(sc, !sheaf_is_prefilled(sc, sheaf));
}

/**
 * sheaf_alloc() - allocate an object from a prefilled sheaf
 * @sc: the sheaf cache the sheaf was prefilled from
 * @gfp: only __GFP_ZERO is honoured; nothing here may sleep or fail
 * @sheaf: a sheaf from sheaf_prefill() or sheaf_refill()
 *
 * Takes no lock, never sleeps, never falls back to the slab: safe under
 * spinlocks and with interrupts disabled.  The object is freed later with
 * sheaf_cache_free() like any other.  The sheaf itself is the caller's
 * and must not be used from two contexts at once.  Memory cgroup charges
 * were made when the sheaf was filled.
 *
 * Context: any context, NMI included.
 * Return: an object, or NULL once the sheaf is empty.
 */
void *sheaf_alloc(struct sheaf_cache *sc, gfp_t gfp, struct sheaf *sheaf)
{
	void *obj;

	if (sheaf_misused(sc, sheaf) || !sheaf->size)
		return NULL;
	obj = sheaf->objects[--sheaf->size];
	sheaf_stat(sc, ALLOC_FROM_SHEAF);
	sheaf_hand_out(sc, obj, gfp);
	return obj;
}
EXPORT_SYMBOL_NS_GPL(sheaf_alloc, SHEAF_NS);

/**
 * sheaf_refill() - make sure a prefilled sheaf holds at least @size objects
 * @sc: the sheaf cache
 * @gfp: allocation flags for the slab
 * @sheafp: the caller's prefilled sheaf; may be replaced
 * @size: how many objects the sheaf must hold
 *
 * A sheaf whose capacity fits @size is refilled in place (to its capacity
 * when possible); otherwise it is replaced by a new oversize sheaf and the
 * old one returned as by sheaf_return().
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 * Return: 0 on success; -EINVAL if @sheafp does not hold a prefilled
 * sheaf of @sc; -ENOMEM if the objects could not be allocated, in which
 * case *@sheafp is unchanged and still the caller's.
 */
int sheaf_refill(struct sheaf_cache *sc, gfp_t gfp, struct sheaf **sheafp,
		 unsigned int size)
{
	struct sheaf *sheaf, *bigger;
	unsigned int before;
	int ret = 0;

	if (sheaf_misuse(sc, !sheafp) || sheaf_misused(sc, *sheafp))
		return -EINVAL;
	sheaf = *sheafp;
	before = sheaf->size;
	if (before >= size)
		return 0;

	if (size <= sheaf->capacity) {
		ret = sheaf_fill(sc, sheaf, gfp, size);
	} else {
		bigger = sheaf_prefill(sc, gfp, size);
		if (bigger) {
			sheaf_return(sc, gfp, sheaf);
			*sheafp = bigger;
		} else {
			ret = -ENOMEM;
		}
	}
	trace_sheaf_refill(sc, before, size, ret);
	return ret;
}
EXPORT_SYMBOL_NS_GPL(sheaf_refill, SHEAF_NS);

/* Make @sheaf the CPU's spare if the slot is free. */
static __always_inline bool pcs_put_spare(struct sheaf_cache *sc,
					  struct sheaf *sheaf)
{
	struct sheaf_pcpu *pcs = pcs_trylock(sc);
	bool kept = false;

	if (unlikely(!pcs))
		return false;
	if (likely(!pcs->spare)) {
		sheaf->state = SHEAF_CACHED;
		pcs->spare = sheaf;
		kept = true;
	}
	pcs_unlock(pcs);
	return kept;
}

/* Everything but a free spare slot: misuse, the barn, the slab. */
static noinline void sheaf_return_slow(struct sheaf_cache *sc, gfp_t gfp,
				       struct sheaf *sheaf)
{
	unsigned int capacity, max_full;
	struct sheaf_barn *barn;

	if (sheaf_misused(sc, sheaf))
		return;
	sheaf->state = SHEAF_CACHED;

	if (sheaf_recyclable(sc, sheaf)) {
		/* Topped up, it saves a later prefill or refill the work. */
		barn = sheaf_local_barn(sc);
		capacity = sheaf->capacity;	/* not ours once in the barn */
		max_full = READ_ONCE(sc->barn_max_full);
		if (barn_has_room_for_full(barn, max_full) &&
		    !sheaf_fill(sc, sheaf, gfp, capacity) &&
		    barn_put_full(barn, sheaf, max_full)) {
			sheaf_barn_put(sc, true);
			sheaf_stat(sc, SHEAF_RETURN_SLOW);
			trace_sheaf_return(sc, capacity, SHEAF_TO_BARN);
			goto out;
		}
	}
	sheaf_stat(sc, SHEAF_RETURN_SLOW);
	trace_sheaf_return(sc, sheaf->size, SHEAF_TO_SLAB);
	sheaf_flush_and_free(sc, sheaf);
out:
	sheaf_count_return(sc);
}

/**
 * sheaf_return() - give a prefilled sheaf back
 * @sc: the sheaf cache
 * @gfp: allocation flags, used to top the sheaf up before it is kept in
 *	a barn; with GFP_NOWAIT it is rather flushed
 * @sheaf: a sheaf from sheaf_prefill() or sheaf_refill()
 *
 * The objects still in the sheaf are kept for later prefills and
 * allocations: the sheaf becomes this CPU's spare, or is topped up and
 * put into the barn, or else flushed back to the slab.  An oversize sheaf
 * is always flushed and freed.  @sheaf must not be used afterwards.
 *
 * Context: any context but NMI; sleeps only if @gfp allows it.
 */
void sheaf_return(struct sheaf_cache *sc, gfp_t gfp, struct sheaf *sheaf)
{
	unsigned int size;

	/* The common case first: the sheaf becomes the CPU's spare. */
	if (likely(sheaf_is_prefilled(sc, sheaf) &&
		   sheaf_recyclable(sc, sheaf))) {
		size = sheaf->size;	/* the sheaf is not ours once kept */
		if (likely(pcs_put_spare(sc, sheaf))) {
			sheaf_stat(sc, SHEAF_RETURN_FAST);
			sheaf_stat(sc, RETURNED);
			trace_sheaf_return(sc, size, SHEAF_TO_SPARE);
			return;
		}
	}
	sheaf_return_slow(sc, gfp, sheaf);
}
EXPORT_SYMBOL_NS_GPL(sheaf_return, SHEAF_NS);

/**
 * sheaf_size() - how many objects a prefilled sheaf still holds
 * @sheaf: a sheaf from sheaf_prefill() or sheaf_refill()
 *
 * Context: any context.
 * Return: the number of sheaf_alloc() calls that will still succeed; 0 for
 * a NULL or invalid sheaf.
 */
unsigned int sheaf_size(const struct sheaf *sheaf)
{
	if (sheaf_misuse(NULL, !sheaf || sheaf->state != SHEAF_PREFILLED))
		return 0;
	return sheaf->size;
}
EXPORT_SYMBOL_NS_GPL(sheaf_size, SHEAF_NS);

/* ---- draining: shrink, CPU hotplug, detach ------------------------------ */

/* Flush a CPU's sheaves that nobody else can be using (dead or detached). */
static void pcs_drain(struct sheaf_cache *sc, struct sheaf_pcpu *pcs)
{
	if (pcs->main)
		sheaf_flush(sc, pcs->main);
	if (pcs->spare) {
		sheaf_flush_and_free(sc, pcs->spare);
		pcs->spare = NULL;
	}
}

/*
 * Bring a barn down to the given limits (0, 0: empty it); returns the
 * number of objects given back to the slab.
 */
static unsigned long barn_trim(struct sheaf_cache *sc, struct sheaf_barn *barn,
			       unsigned int max_full, unsigned int max_empty)
{
	struct sheaf *sheaf, *next;
	unsigned long objects = 0;
	LIST_HEAD(excess);

	barn_take_excess(barn, max_full, max_empty, &excess);
	list_for_each_entry_safe(sheaf, next, &excess, barn_list) {
		objects += sheaf->size;
		sheaf_flush_and_free(sc, sheaf);
	}
	return objects;
}

static unsigned long barn_drain(struct sheaf_cache *sc, struct sheaf_barn *barn)
{
	return barn_trim(sc, barn, 0, 0);
}

static unsigned long sheaf_drain_barns(struct sheaf_cache *sc)
{
	unsigned long objects = 0;
	int node;

	for_each_node(node)
		objects += barn_drain(sc, sc->barns[node]);
	return objects;
}

#define SHEAF_FLUSH_BATCH 32

/*
 * Flush the running CPU's sheaves while the cache is in use.  Objects leave
 * main in batches copied out under the lock, so main stays in place.
 */
static void pcs_flush_local(struct sheaf_cache *sc)
{
	void *batch[SHEAF_FLUSH_BATCH];
	struct sheaf_pcpu *pcs;
	struct sheaf *spare;
	unsigned int n;

	for (;;) {
		pcs = pcs_trylock(sc);
		if (!pcs)
			return;
		n = min(pcs->main->size, SHEAF_FLUSH_BATCH);
		pcs->main->size -= n;
		memcpy(batch, &pcs->main->objects[pcs->main->size],
		       n * sizeof(void *));
		spare = pcs->spare;
		pcs->spare = NULL;
		pcs_unlock(pcs);

		if (spare)
			sheaf_flush_and_free(sc, spare);
		if (!n)
			return;
		sheaf_slab_free_many(sc, n, batch);
		sheaf_stat_add(sc, SHEAF_FLUSH, n);
		trace_sheaf_flush(sc, n);
	}
}

/*
 * After a capacity change, give the running CPU a main sheaf of the new
 * capacity.  Without memory for one the old main keeps serving: sheaves
 * of any capacity work, only prefill and the barn prefer the current one.
 */
static void pcs_renew_main(struct sheaf_cache *sc)
{
	unsigned int capacity = READ_ONCE(sc->capacity);
	struct sheaf *fresh, *old = NULL;
	struct sheaf_pcpu *pcs;
	bool stale;

	pcs = pcs_trylock(sc);
	if (!pcs)
		return;
	stale = pcs->main->capacity != capacity;
	pcs_unlock(pcs);
	if (!stale)
		return;

	fresh = sheaf_alloc_empty(sc, GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN,
				  capacity);
	if (!fresh)
		return;
	pcs = pcs_trylock(sc);
	if (pcs) {
		if (pcs->main->capacity != capacity) {
			old = pcs->main;
			pcs->main = fresh;
			fresh = NULL;
		}
		pcs_unlock(pcs);
	}
	if (fresh)
		sheaf_free_empty(sc, fresh);
	if (old)
		sheaf_flush_and_free(sc, old);
}

static void sheaf_flush_work_fn(struct work_struct *work)
{
	struct sheaf_flush_work *fw =
		container_of(work, struct sheaf_flush_work, work);

	pcs_flush_local(fw->sc);
	pcs_renew_main(fw->sc);
}

/*
 * Have every online CPU flush its sheaves, on that CPU; the caller holds
 * cpus_read_lock().  The work items are the cache's own, set up at attach,
 * so this needs no memory (the shrinker calls it); a flush already queued
 * is not queued twice.
 */
static void sheaf_queue_flushes(struct sheaf_cache *sc)
{
	unsigned int cpu;

	for_each_online_cpu(cpu)
		queue_work_on(cpu, sheaf_wq, &per_cpu_ptr(sc->flush, cpu)->work);
}

/* Flush every online CPU's sheaves and wait for it. */
static void sheaf_flush_cpus(struct sheaf_cache *sc)
{
	unsigned int cpu;

	cpus_read_lock();
	sheaf_queue_flushes(sc);
	for_each_online_cpu(cpu)
		flush_work(&per_cpu_ptr(sc->flush, cpu)->work);
	cpus_read_unlock();
}

/* Wait for flushes queued by the shrinker; @sc is dead, none can follow. */
static void sheaf_wait_flushes(struct sheaf_cache *sc)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		flush_work(&per_cpu_ptr(sc->flush, cpu)->work);
		flush_work(&per_cpu_ptr(sc->flush, cpu)->rcu_work);
	}
}

/**
 * sheaf_cache_shrink() - give every cached object back to the slab
 * @sc: the sheaf cache
 *
 * Flushes all CPUs' sheaves and all barns, as upstream does on cache
 * shrink.  Objects allocated concurrently may be cached again at once.
 *
 * Context: process context; sleeps.  Not under cpus_read_lock().
 */
void sheaf_cache_shrink(struct sheaf_cache *sc)
{
	might_sleep();
	sheaf_flush_cpus(sc);
	sheaf_drain_barns(sc);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_shrink, SHEAF_NS);

/*
 * Memory pressure: give back what the barns hold at once and have every
 * CPU flush its sheaves soon.  Reclaim may run under any allocation, e.g.
 * one in sheaf_cache_attach() holding the list lock: never wait for it.
 */
static unsigned long sheaf_shrink_count(struct shrinker *shrinker,
					struct shrink_control *ctl)
{
	struct sheaf_cache *sc;
	unsigned long objects = 0;

	if (!mutex_trylock(&sheaf_caches_lock))
		return 0;
	list_for_each_entry(sc, &sheaf_caches, list)
		if (!sc->dead)
			objects += sheaf_cache_nr_cached(sc);
	mutex_unlock(&sheaf_caches_lock);
	return objects;
}

static unsigned long sheaf_shrink_scan(struct shrinker *shrinker,
				       struct shrink_control *ctl)
{
	struct sheaf_cache *sc;
	unsigned long freed = 0;
	bool cpus_held;

	if (!mutex_trylock(&sheaf_caches_lock))
		return SHRINK_STOP;
	/*
	 * A CPU coming up allocates with cpu_hotplug_lock held for write,
	 * and that allocation may reclaim: only try for the read side.
	 * While CPUs come and go, the per-CPU sheaves wait for a later scan.
	 */
	cpus_held = cpus_read_trylock();
	list_for_each_entry(sc, &sheaf_caches, list) {
		if (sc->dead)
			continue;
		if (cpus_held)
			sheaf_queue_flushes(sc);
		freed += sheaf_drain_barns(sc);
		sheaf_stat(sc, SHRINKER_SCAN);
	}
	if (cpus_held)
		cpus_read_unlock();
	mutex_unlock(&sheaf_caches_lock);
	return freed;
}

static int sheaf_cpu_dead(unsigned int cpu, struct hlist_node *node)
{
	struct sheaf_cache *sc = hlist_entry(node, struct sheaf_cache,
					     cpuhp_node);

	pcs_drain(sc, per_cpu_ptr(sc->pcpu, cpu));
	pcs_submit_rcu(sc, per_cpu_ptr(sc->pcpu, cpu));
	return 0;
}

/* ---- attach / detach ------------------------------------------------------ */

/* Upstream 7.x's default: by object size, filling the kmalloc bucket. */
static unsigned int sheaf_default_capacity(unsigned int object_size)
{
	unsigned int capacity;
	struct sheaf *sheaf = NULL;
	size_t bytes;

	if (object_size >= PAGE_SIZE)
		capacity = 4;
	else if (object_size >= 1024)
		capacity = 12;
	else if (object_size >= 256)
		capacity = 26;
	else
		capacity = 60;
	bytes = kmalloc_size_roundup(struct_size(sheaf, objects, capacity));
	return (bytes - sizeof(struct sheaf)) / sizeof(void *);
}

static void sheaf_cache_free_pcpu(struct sheaf_cache *sc)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct sheaf_pcpu *pcs = per_cpu_ptr(sc->pcpu, cpu);

		pcs_drain(sc, pcs);
		if (pcs->main)
			sheaf_free_empty(sc, pcs->main);
		pcs->main = NULL;
	}
}

/* Frees what sheaf_cache_init() set up; the sheaves must be drained. */
static void sheaf_cache_free_parts(struct sheaf_cache *sc)
{
	int node;

	if (sc->pcpu)
		sheaf_cache_free_pcpu(sc);
	if (sc->barns) {
		for_each_node(node) {
			if (sc->barns[node]) {
				barn_drain(sc, sc->barns[node]);
				barn_destroy(sc->barns[node]);
			}
		}
	}
	kfree(sc->barns);
	sheaf_rcu_reserve_free(sc);
	free_percpu(sc->flush);
	free_percpu(sc->pcpu);
	free_percpu(sc->stats);
	if (sc->owns_cache)
		kmem_cache_destroy(sc->s);
}

static void sheaf_cache_release_work(struct work_struct *work)
{
	struct sheaf_cache *sc = container_of(work, struct sheaf_cache,
					      release_work);

	mutex_lock(&sheaf_caches_lock);
	list_del(&sc->list);
	mutex_unlock(&sheaf_caches_lock);
	sheaf_cache_free_parts(sc);
	kobject_put(&sc->kobj);		/* frees @sc */
}

static int sheaf_cache_check_args(const struct sheaf_cache_args *args)
{
	if (!args)
		return 0;
	if (args->capacity > SHEAF_MAX_CAPACITY)
		return -EINVAL;
	if (args->barn_max_full > SHEAF_MAX_BARN ||
	    args->barn_max_empty > SHEAF_MAX_BARN)
		return -EINVAL;
	if (args->flags & ~(SHEAF_CACHE_CTOR | SHEAF_CACHE_TYPESAFE_BY_RCU |
			    SHEAF_CACHE_ACCOUNT | SHEAF_CACHE_PASSTHROUGH |
			    SHEAF_CACHE_VERIFY))
		return -EINVAL;
	return 0;
}

static bool sheaf_name_valid(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strnlen(name, SHEAF_NAME_LEN);
	return len && len < SHEAF_NAME_LEN && !strchr(name, '/');
}

static struct sheaf_cache *sheaf_cache_find(const char *name)
{
	struct sheaf_cache *sc;

	lockdep_assert_held(&sheaf_caches_lock);
	list_for_each_entry(sc, &sheaf_caches, list)
		if (!sc->dead && !strcmp(sc->name, name))
			return sc;
	return NULL;
}

static void sheaf_cache_set_args(struct sheaf_cache *sc,
				 const struct sheaf_cache_args *args)
{
	static const struct sheaf_cache_args defaults;
	bool keep_contents;

	if (!args)
		args = &defaults;
	sc->object_size = kmem_cache_size(sc->s);
	sc->capacity = args->capacity ?: sheaf_default_capacity(sc->object_size);
	sc->barn_max_full = args->barn_max_full ?: SHEAF_DEFAULT_BARN_MAX;
	sc->barn_max_empty = args->barn_max_empty ?: SHEAF_DEFAULT_BARN_MAX;
	sc->flags = args->flags;
	if (READ_ONCE(passthrough))
		sc->flags |= SHEAF_CACHE_PASSTHROUGH;
	if (READ_ONCE(verify))
		sc->flags |= SHEAF_CACHE_VERIFY;
	sc->bypass = sc->flags & (SHEAF_CACHE_ACCOUNT | SHEAF_CACHE_PASSTHROUGH);
	keep_contents = sc->flags & (SHEAF_CACHE_CTOR |
				     SHEAF_CACHE_TYPESAFE_BY_RCU);
	/* Constructed contents cannot be poisoned: no verify mode there. */
	sc->verify = (sc->flags & SHEAF_CACHE_VERIFY) && !keep_contents;
	sc->zero_on_alloc = !keep_contents &&
			    (want_init_on_alloc(GFP_KERNEL) || want_init_on_free());
	sc->zero_on_free = sc->zero_on_alloc && !sc->verify;
	sc->numa = nr_node_ids > 1;
}

static int sheaf_cache_init(struct sheaf_cache *sc)
{
	unsigned int cpu;
	int node;

	sc->stats = alloc_percpu(struct sheaf_stats);
	sc->pcpu = alloc_percpu(struct sheaf_pcpu);
	sc->flush = alloc_percpu(struct sheaf_flush_work);
	sc->barns = kcalloc(nr_node_ids, sizeof(*sc->barns), GFP_KERNEL);
	if (!sc->stats || !sc->pcpu || !sc->flush || !sc->barns)
		return -ENOMEM;
	for_each_possible_cpu(cpu) {
		struct sheaf_flush_work *fw = per_cpu_ptr(sc->flush, cpu);

		INIT_WORK(&fw->work, sheaf_flush_work_fn);
		INIT_WORK(&fw->rcu_work, sheaf_rcu_work_fn);
		fw->sc = sc;
	}
	for_each_node(node) {
		sc->barns[node] = barn_create(node);
		if (!sc->barns[node])
			return -ENOMEM;
	}
	if (sheaf_rcu_reserve_fill(sc))
		return -ENOMEM;
	/* main is never NULL: every possible CPU gets one up front. */
	for_each_possible_cpu(cpu) {
		struct sheaf_pcpu *pcs = per_cpu_ptr(sc->pcpu, cpu);

		pcs->main = sheaf_alloc_empty(sc, GFP_KERNEL, sc->capacity);
		if (!pcs->main)
			return -ENOMEM;
	}
	return 0;
}

static struct sheaf_cache *sheaf_cache_new(struct kmem_cache *s,
					   const char *name,
					   const struct sheaf_cache_args *args,
					   bool owns_cache)
{
	struct sheaf_cache *sc;
	int err;

	if (!s || !sheaf_name_valid(name))
		return ERR_PTR(-EINVAL);
	err = sheaf_cache_check_args(args);
	if (err)
		return ERR_PTR(err);

	sc = kzalloc(sizeof(*sc), GFP_KERNEL);
	if (!sc)
		return ERR_PTR(-ENOMEM);
	strscpy(sc->name, name, sizeof(sc->name));
	sc->s = s;
	sc->owns_cache = owns_cache;
	INIT_WORK(&sc->release_work, sheaf_cache_release_work);
	INIT_LIST_HEAD(&sc->list);
	sheaf_cache_set_args(sc, args);
	sheaf_sysfs_kobj_init(sc);

	err = sheaf_cache_init(sc);
	if (err)
		goto fail;

	mutex_lock(&sheaf_caches_lock);
	if (sheaf_cache_find(name)) {
		err = -EEXIST;
	} else {
		err = sheaf_sysfs_add(sc);
		if (!err)
			list_add(&sc->list, &sheaf_caches);
	}
	mutex_unlock(&sheaf_caches_lock);
	if (err)
		goto fail;

	err = cpuhp_state_add_instance_nocalls(sheaf_cpuhp_state,
					       &sc->cpuhp_node);
	if (err) {
		mutex_lock(&sheaf_caches_lock);
		list_del(&sc->list);
		mutex_unlock(&sheaf_caches_lock);
		sheaf_sysfs_del(sc);
		goto fail;
	}
	sheaf_upstream_register(sc);
	return sc;
fail:
	sc->owns_cache = false;	/* the caller destroys its own cache */
	sheaf_cache_free_parts(sc);
	kobject_put(&sc->kobj);
	return ERR_PTR(err);
}

/**
 * sheaf_cache_attach() - layer sheaves over an existing kmem_cache
 * @s: the cache; stays the caller's and must outlive the sheaf cache
 * @name: unique name, copied; shown as /sys/kernel/sheaf/<name>
 * @args: optional parameters (NULL for defaults).  Say in @args->flags
 *	whether @s has a constructor, is SLAB_TYPESAFE_BY_RCU or SLAB_ACCOUNT:
 *	the layer cannot read that from @s.
 *
 * Objects already allocated from @s may be freed through the sheaf cache
 * and objects of the sheaf cache may be freed with kmem_cache_free() on
 * @s: both ends always stay valid slab objects.  The upstream-named
 * prefill API (sheaf_upstream.h) finds the layer from @s.
 *
 * Context: process context; sleeps.
 * Return: the sheaf cache, or ERR_PTR(-EINVAL) for a bad @s, @name or
 * @args, ERR_PTR(-EEXIST) if @name is taken, ERR_PTR(-ENOMEM).
 */
struct sheaf_cache *sheaf_cache_attach(struct kmem_cache *s, const char *name,
				       const struct sheaf_cache_args *args)
{
	might_sleep();
	return sheaf_cache_new(s, name, args, false);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_attach, SHEAF_NS);

/**
 * sheaf_cache_detach() - remove the sheaf layer from its kmem_cache
 * @sc: the sheaf cache, or NULL
 *
 * Gives every cached object back to the kmem_cache and frees the layer.
 * The caller must have stopped allocating and freeing through @sc.
 * Prefilled sheaves still handed out are a bug, warned about with their
 * count; they stay valid and are flushed when returned, and only then is
 * the layer freed (and, for sheaf_cache_create() caches, the kmem_cache
 * destroyed).
 *
 * Context: process context; sleeps.
 */
void sheaf_cache_detach(struct sheaf_cache *sc)
{
	unsigned int out;

	might_sleep();
	if (!sc)
		return;
	if (sheaf_misuse(sc, sc->dead))
		return;
	/* New upstream-named prefills of sc->s no longer find the layer. */
	sheaf_upstream_unregister(sc);
	cpuhp_state_remove_instance_nocalls(sheaf_cpuhp_state, &sc->cpuhp_node);
	sheaf_sysfs_del(sc);
	/* Under the lock: the shrinker queues no flush for a dead cache. */
	mutex_lock(&sheaf_caches_lock);
	WRITE_ONCE(sc->dead, true);
	mutex_unlock(&sheaf_caches_lock);
	sheaf_wait_flushes(sc);
	/* RCU callbacks put sheaves into the barns: let them all finish. */
	sheaf_rcu_drain(sc);
	sheaf_cache_free_pcpu(sc);
	sheaf_drain_barns(sc);

	out = sheaf_stat_sum(sc, PREFILLED) - sheaf_stat_sum(sc, RETURNED);
	WARN_ONCE(out, "%s: detached with %u prefilled sheaves not returned\n",
		  sc->name, out);
	sheaf_cache_release_if_last(sc, out);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_detach, SHEAF_NS);

static unsigned int sheaf_cache_flags_from_slab(slab_flags_t flags,
						void (*ctor)(void *))
{
	unsigned int sf = 0;

	if (ctor)
		sf |= SHEAF_CACHE_CTOR;
	if (flags & SLAB_TYPESAFE_BY_RCU)
		sf |= SHEAF_CACHE_TYPESAFE_BY_RCU;
	if (flags & SLAB_ACCOUNT)
		sf |= SHEAF_CACHE_ACCOUNT;
	return sf;
}

/**
 * sheaf_cache_create() - create a kmem_cache with a sheaf layer over it
 * @name: name of both the kmem_cache and the sheaf cache; unique
 * @size: object size
 * @align: object alignment, as for kmem_cache_create()
 * @flags: slab flags, as for kmem_cache_create()
 * @ctor: object constructor, or NULL
 * @args: optional sheaf parameters (NULL for defaults); the
 *	SHEAF_CACHE_CTOR/TYPESAFE_BY_RCU/ACCOUNT flags are derived from
 *	@flags and @ctor
 *
 * Context: process context; sleeps.
 * Return: the sheaf cache or an ERR_PTR() as for sheaf_cache_attach().
 */
struct sheaf_cache *sheaf_cache_create(const char *name, unsigned int size,
				       unsigned int align, slab_flags_t flags,
				       void (*ctor)(void *),
				       const struct sheaf_cache_args *args)
{
	struct sheaf_cache_args a = {};
	struct sheaf_cache *sc;
	struct kmem_cache *s;

	might_sleep();
	if (!sheaf_name_valid(name))
		return ERR_PTR(-EINVAL);
	if (args)
		a = *args;
	a.flags |= sheaf_cache_flags_from_slab(flags, ctor);

	s = kmem_cache_create(name, size, align, flags, ctor);
	if (!s)
		return ERR_PTR(-ENOMEM);
	sc = sheaf_cache_new(s, name, &a, true);
	if (IS_ERR(sc))
		kmem_cache_destroy(s);
	return sc;
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_create, SHEAF_NS);

/**
 * sheaf_cache_destroy() - destroy a cache made by sheaf_cache_create()
 * @sc: the sheaf cache, or NULL
 *
 * As sheaf_cache_detach(), then destroys the kmem_cache.  Every object
 * must have been freed.
 *
 * Context: process context; sleeps.
 */
void sheaf_cache_destroy(struct sheaf_cache *sc)
{
	if (!sc)
		return;
	if (sheaf_misuse(sc, !sc->owns_cache))
		return;
	sheaf_cache_detach(sc);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_destroy, SHEAF_NS);

/**
 * sheaf_cache_kmem_cache() - the kmem_cache under a sheaf cache
 * @sc: the sheaf cache
 *
 * Return: the kmem_cache the layer allocates from and frees to.
 */
struct kmem_cache *sheaf_cache_kmem_cache(const struct sheaf_cache *sc)
{
	return sc->s;
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_kmem_cache, SHEAF_NS);

/**
 * sheaf_cache_capacity() - objects per sheaf of a sheaf cache
 * @sc: the sheaf cache
 *
 * Return: the capacity; prefills above it build oversize sheaves.
 */
unsigned int sheaf_cache_capacity(const struct sheaf_cache *sc)
{
	return READ_ONCE(sc->capacity);
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_capacity, SHEAF_NS);

/**
 * sheaf_cache_set_capacity() - change the objects per sheaf of a cache in use
 * @sc: the sheaf cache
 * @capacity: 1 to %SHEAF_MAX_CAPACITY, or 0 for the default by object size
 *
 * Sheaves made from now on have the new capacity.  Every CPU's sheaves
 * and the barns are flushed, and the CPUs' main sheaves replaced; a sheaf
 * of the old capacity still somewhere (prefilled, or in flight between a
 * CPU and a barn) keeps working and is freed rather than recycled when it
 * next passes through a return or an exchange.  Allocations and frees may
 * run concurrently throughout.
 *
 * Context: process context; sleeps.  Not under cpus_read_lock().
 * Return: 0, or -EINVAL if @capacity is out of range or @sc is detached.
 */
int sheaf_cache_set_capacity(struct sheaf_cache *sc, unsigned int capacity)
{
	if (capacity > SHEAF_MAX_CAPACITY)
		return -EINVAL;
	if (!capacity)
		capacity = sheaf_default_capacity(sc->object_size);

	mutex_lock(&sheaf_caches_lock);
	if (sheaf_misuse(sc, sc->dead)) {
		mutex_unlock(&sheaf_caches_lock);
		return -EINVAL;
	}
	WRITE_ONCE(sc->capacity, capacity);
	mutex_unlock(&sheaf_caches_lock);
	sheaf_cache_shrink(sc);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_set_capacity, SHEAF_NS);

static bool sheaf_barn_limit_valid(unsigned int max)
{
	return max <= SHEAF_MAX_BARN || max == SHEAF_BARN_KEEP;
}

/**
 * sheaf_cache_set_barn_limits() - change how many sheaves each barn keeps
 * @sc: the sheaf cache
 * @max_full: full sheaves per node, 0 to %SHEAF_MAX_BARN, or
 *	%SHEAF_BARN_KEEP to leave the limit as it is
 * @max_empty: empty sheaves per node, likewise
 *
 * Barns above the new limits are trimmed at once, their objects given
 * back to the slab.  Limits of 0 keep nothing in the barns: sheaves then
 * only live on the CPUs.
 *
 * Context: process context; sleeps.
 * Return: 0, or -EINVAL if a limit is out of range or @sc is detached.
 */
int sheaf_cache_set_barn_limits(struct sheaf_cache *sc, unsigned int max_full,
				unsigned int max_empty)
{
	int node;

	if (!sheaf_barn_limit_valid(max_full) ||
	    !sheaf_barn_limit_valid(max_empty))
		return -EINVAL;

	mutex_lock(&sheaf_caches_lock);
	if (sheaf_misuse(sc, sc->dead)) {
		mutex_unlock(&sheaf_caches_lock);
		return -EINVAL;
	}
	if (max_full == SHEAF_BARN_KEEP)
		max_full = sc->barn_max_full;
	if (max_empty == SHEAF_BARN_KEEP)
		max_empty = sc->barn_max_empty;
	WRITE_ONCE(sc->barn_max_full, max_full);
	WRITE_ONCE(sc->barn_max_empty, max_empty);
	for_each_node(node)
		barn_trim(sc, sc->barns[node], max_full, max_empty);
	mutex_unlock(&sheaf_caches_lock);
	return 0;
}
EXPORT_SYMBOL_NS_GPL(sheaf_cache_set_barn_limits, SHEAF_NS);

/* ---- module ---------------------------------------------------------------- */

static int __init sheafmod_init(void)
{
	int ret;

	/* Per-CPU: shrinking flushes each CPU's sheaves on that CPU. */
	sheaf_wq = alloc_workqueue("sheaf", SHEAF_WQ_PERCPU | WQ_MEM_RECLAIM, 0);
	if (!sheaf_wq)
		return -ENOMEM;
	sheaf_release_wq = alloc_workqueue("sheaf_release", WQ_UNBOUND, 0);
	if (!sheaf_release_wq) {
		ret = -ENOMEM;
		goto fail_wq;
	}
	ret = cpuhp_setup_state_multi(CPUHP_BP_PREPARE_DYN, "mm/sheaf:dead",
				      NULL, sheaf_cpu_dead);
	if (ret < 0)
		goto fail_release_wq;
	sheaf_cpuhp_state = ret;
	ret = sheaf_sysfs_init();
	if (ret)
		goto fail_cpuhp;
	sheaf_shrinker = sheaf_shrinker_register(sheaf_shrink_count,
						 sheaf_shrink_scan);
	if (!sheaf_shrinker) {
		ret = -ENOMEM;
		goto fail_sysfs;
	}
	return 0;

fail_sysfs:
	sheaf_sysfs_exit();
fail_cpuhp:
	cpuhp_remove_multi_state(sheaf_cpuhp_state);
fail_release_wq:
	destroy_workqueue(sheaf_release_wq);
fail_wq:
	destroy_workqueue(sheaf_wq);
	return ret;
}

/*
 * Users are modules depending on this one, so all caches are detached by
 * now; only layers waiting for leaked prefilled sheaves, or never detached
 * by a buggy user, can remain.
 */
static void __exit sheafmod_exit(void)
{
	struct sheaf_cache *sc, *next;

	sheaf_shrinker_unregister(sheaf_shrinker);
	destroy_workqueue(sheaf_release_wq);
	destroy_workqueue(sheaf_wq);
	list_for_each_entry_safe(sc, next, &sheaf_caches, list) {
		pr_warn("%s: %s at unload\n", sc->name,
			sc->dead ? "prefilled sheaves never returned" :
				   "never detached");
		if (!sc->dead) {
			sheaf_upstream_unregister(sc);
			cpuhp_state_remove_instance_nocalls(sheaf_cpuhp_state,
							    &sc->cpuhp_node);
			sheaf_sysfs_del(sc);
			sheaf_rcu_drain(sc);
		}
		list_del(&sc->list);
		sheaf_cache_free_parts(sc);
		kobject_put(&sc->kobj);
	}
	sheaf_sysfs_exit();
	cpuhp_remove_multi_state(sheaf_cpuhp_state);
}

module_init(sheafmod_init);
module_exit(sheafmod_exit);

MODULE_DESCRIPTION("Per-CPU sheaves and per-node barns over any kmem_cache");
MODULE_VERSION(SHEAF_VERSION);
MODULE_LICENSE("GPL");
