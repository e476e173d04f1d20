/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sheafmod internals, shared by the layer's files and its white-box test
 * module.  Nothing here is an interface for other modules.
 */
#ifndef _SHEAF_INTERNAL_H
#define _SHEAF_INTERNAL_H

#include <linux/atomic.h>
#include <linux/cpuhotplug.h>
#include <linux/kobject.h>
#include <linux/list.h>
#include <linux/llist.h>
#include <linux/percpu.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "sheaf.h"

#define SHEAF_DEFAULT_BARN_MAX	10U
#define SHEAF_POISON		0x6c	/* not the slab's 0x6b */
#define SHEAF_NAME_LEN		64
#define SHEAF_RCU_RESERVE	16	/* emergency nodes per cache */

/*
 * Where a sheaf is: the layer's own, handed out by sheaf_prefill(), or
 * handed out by the upstream-named API for a kmem_cache without a layer
 * (upstream.c; no sheaf cache, @cache is NULL).
 */
enum sheaf_state {
	SHEAF_CACHED = 0x5348,		/* per-CPU main/spare or in a barn */
	SHEAF_PREFILLED = 0x5350,	/* owned by a sheaf_prefill() caller */
	SHEAF_STANDALONE = 0x5353,	/* a bare kmem_cache's, see above */
};

struct sheaf {
	union {
		struct list_head barn_list;	/* in a barn's full or empty list */
		struct rcu_head rcu_head;	/* an rcu sheaf waiting for its grace period */
	};
	struct sheaf_cache *cache;
	unsigned int state;		/* enum sheaf_state */
	unsigned int capacity;
	unsigned int size;
	bool private;	/* filled for one caller's memcg: never recycled */
	void *objects[];
};

/*
 * A CPU's sheaves.  @main is never NULL while @locked is clear.  @locked
 * is a trylock taken with preemption disabled: an interrupt that finds it
 * set on its CPU bypasses the sheaves instead of waiting for the code it
 * interrupted.  No atomic instruction, no IRQ disabling; the same scheme
 * on PREEMPT_RT, where the sections are short and never call the slab.
 */
struct sheaf_pcpu {
	u8 locked;
	struct sheaf *main;
	struct sheaf *spare;
	struct sheaf *rcu_free;	/* collects sheaf_cache_free_rcu(); may be NULL */
};

/* A node's depot of whole sheaves. */
struct sheaf_barn {
	raw_spinlock_t lock;	/* O(1) list operations only */
	struct list_head full;
	struct list_head empty;
	unsigned int nr_full;
	unsigned int nr_empty;
	unsigned long contended;	/* lock was busy when taken */
};

/*
 * Statistics, per CPU and always on.  The first block has upstream
 * SLUB's CONFIG_SLUB_STATS names and meanings.
 */
enum sheaf_stat {
	ALLOC_CPU_SHEAF,	/* allocation served by a per-CPU sheaf */
	FREE_CPU_SHEAF,		/* free into a per-CPU sheaf */
	SHEAF_FLUSH,		/* objects flushed back to the slab */
	SHEAF_REFILL,		/* objects refilled from the slab */
	SHEAF_ALLOC,		/* sheaves allocated */
	SHEAF_FREE,		/* sheaves freed */
	BARN_GET,		/* sheaf taken from a barn */
	BARN_GET_FAIL,		/* barn had no sheaf of the kind wanted */
	BARN_PUT,		/* sheaf put into a barn */
	BARN_PUT_FAIL,		/* barn refused a sheaf: at its limit */
	SHEAF_PREFILL_FAST,	/* prefill needed no refill */
	SHEAF_PREFILL_SLOW,	/* prefill refilled from the slab */
	SHEAF_PREFILL_OVERSIZE,	/* prefill larger than the capacity */
	SHEAF_RETURN_FAST,	/* returned sheaf became the spare */
	SHEAF_RETURN_SLOW,	/* returned sheaf went to a barn or slab */
	/* sheafmod's own */
	ALLOC_SLAB,		/* allocation served by the slab directly */
	FREE_SLAB,		/* object freed to the slab directly */
	FREE_REMOTE,		/* ... of which: object of a remote node */
	ALLOC_FROM_SHEAF,	/* objects taken from prefilled sheaves */
	MISUSE,			/* API misuse caught (and warned once) */
	SHRINKER_SCAN,		/* emptied by the shrinker under pressure */
	PARKED_WRITE,		/* verify: object written while parked */
	DOUBLE_FREE,		/* verify: object freed twice, dropped */
	PREFILLED,		/* sheaves handed out by prefill */
	RETURNED,		/* ... and given back before detach */
	ALLOC_BULK,		/* sheaf_cache_alloc_bulk() calls */
	FREE_BULK,		/* sheaf_cache_free_bulk() calls */
	FREE_RCU_SHEAF,		/* object freed into a per-CPU rcu sheaf */
	FREE_RCU_SHEAF_FAIL,	/* ... not possible: a fallback deferred it */
	RCU_SHEAF_SUBMIT,	/* rcu sheaves sent through call_rcu() */
	RCU_DONE,		/* free_rcu objects past their grace period */
	RCU_FALLBACK_NODE,	/* fallback: call_rcu() on an emergency node */
	RCU_FALLBACK_SYNC,	/* fallback: synchronize_rcu(), then freed */
	RCU_FALLBACK_RESERVE,	/* fallback: a node of the cache's reserve */
	RCU_LOST,		/* atomic, out of memory and reserve: never freed */
	NR_SHEAF_STATS
};

/* Tracepoint arguments: where a returned sheaf went, what a barn did. */
enum { SHEAF_TO_SPARE, SHEAF_TO_BARN, SHEAF_TO_SLAB };
enum { SHEAF_BARN_GET, SHEAF_BARN_PUT };

struct sheaf_stats {
	unsigned long v[NR_SHEAF_STATS];
};

struct sheaf_flush_work {
	struct work_struct work;
	struct work_struct rcu_work;	/* submits this CPU's rcu sheaf */
	struct sheaf_cache *sc;
};

struct sheaf_cache {
	struct kmem_cache *s;
	unsigned int capacity;
	unsigned int barn_max_full;
	unsigned int barn_max_empty;
	unsigned int flags;		/* SHEAF_CACHE_* */
	unsigned int object_size;
	bool bypass;		/* ACCOUNT or PASSTHROUGH: nothing parked */
	bool zero_on_free;	/* parked objects are kept zeroed */
	bool zero_on_alloc;	/* verify mode: zero when handing out */
	bool verify;		/* parked objects poisoned and checked */
	bool numa;		/* more than one possible node */
	bool owns_cache;	/* made by sheaf_cache_create() */
	bool dead;		/* detached, waiting for prefilled sheaves */
	struct sheaf_pcpu __percpu *pcpu;
	struct sheaf_stats __percpu *stats;
	struct sheaf_flush_work __percpu *flush;	/* per-CPU shrinking */
	struct sheaf_barn **barns;	/* one per possible node */
	atomic_t dead_out;	/* once dead: prefilled sheaves still out */
	atomic_t fail_allocs;	/* fault injection: fail this many */
	/* sheaf_cache_free_rcu()'s last resort: nodes set aside at attach */
	struct llist_head rcu_reserve;
	raw_spinlock_t rcu_reserve_lock;	/* serialises llist_del_first() */
	struct hlist_node cpuhp_node;
	struct hlist_node slab_node;	/* upstream.c: found by @s */
	struct list_head list;		/* all sheaf caches */
	struct kobject kobj;		/* /sys/kernel/sheaf/<name> */
	struct work_struct release_work;
	char name[SHEAF_NAME_LEN];
};

static inline void sheaf_stat(struct sheaf_cache *sc, enum sheaf_stat item)
{
	this_cpu_inc(sc->stats->v[item]);
}

static inline void sheaf_stat_add(struct sheaf_cache *sc,
				  enum sheaf_stat item, unsigned long n)
{
	this_cpu_add(sc->stats->v[item], n);
}

/* A counter summed over all CPUs; exact only while nobody uses @sc. */
static inline unsigned long sheaf_stat_sum(struct sheaf_cache *sc,
					   enum sheaf_stat item)
{
	unsigned long sum = 0;
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(sc->stats, cpu)->v[item];
	return sum;
}

/*
 * Objects the layer holds now, in per-CPU sheaves (rcu sheaves waiting for
 * their grace period included), barns and prefilled sheaves, from the
 * counters: remote CPUs' sheaves cannot be read safely.
 */
static inline unsigned long sheaf_cache_nr_cached(struct sheaf_cache *sc)
{
	long objects = sheaf_stat_sum(sc, SHEAF_REFILL) +
		       sheaf_stat_sum(sc, FREE_CPU_SHEAF) +
		       sheaf_stat_sum(sc, FREE_RCU_SHEAF) -
		       sheaf_stat_sum(sc, ALLOC_CPU_SHEAF) -
		       sheaf_stat_sum(sc, ALLOC_FROM_SHEAF) -
		       sheaf_stat_sum(sc, SHEAF_FLUSH);

	return max(objects, 0L);	/* racy sums may dip below */
}

/* barn.c */
struct sheaf_barn *barn_create(int node);
void barn_destroy(struct sheaf_barn *barn);
struct sheaf *barn_get_full(struct sheaf_barn *barn);
struct sheaf *barn_get_empty(struct sheaf_barn *barn);
struct sheaf *barn_get_full_or_empty(struct sheaf_barn *barn);
bool barn_put_full(struct sheaf_barn *barn, struct sheaf *sheaf,
		   unsigned int max);
bool barn_put_empty(struct sheaf_barn *barn, struct sheaf *sheaf,
		    unsigned int max);
bool barn_has_room_for_full(struct sheaf_barn *barn, unsigned int max);
void barn_take_excess(struct sheaf_barn *barn, unsigned int max_full,
		      unsigned int max_empty, struct list_head *out);
void barn_counts(struct sheaf_barn *barn, unsigned int *nr_full,
		 unsigned int *nr_empty);

/* upstream.c: the layers the upstream-named API finds by kmem_cache */
void sheaf_upstream_register(struct sheaf_cache *sc);
void sheaf_upstream_unregister(struct sheaf_cache *sc);

/* stats.c: sysfs */
int sheaf_sysfs_init(void);
void sheaf_sysfs_exit(void);
void sheaf_sysfs_kobj_init(struct sheaf_cache *sc);
int sheaf_sysfs_add(struct sheaf_cache *sc);
void sheaf_sysfs_del(struct sheaf_cache *sc);

#endif /* _SHEAF_INTERNAL_H */
