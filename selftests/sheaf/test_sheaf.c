// SPDX-License-Identifier: GPL-2.0
/*
 * Companion test module of sheafmod, driven by selftests/sheaf/sheaf.sh.
 *
 * Loading it with run=<case> runs that case; a failing case fails the load
 * (as kselftest modules do) and a passing or skipped one leaves "pass" or
 * "skip: <why>" in the result parameter.  Without run= it only lists the
 * cases in the cases parameter.  Diagnostics go to the kernel log.
 *
 * Every case works on fresh caches and ends with teardown(), which checks
 * object conservation: once the test has freed all it allocated and the
 * layer is shrunk, the layer holds nothing and owes the slab nothing, and
 * destroying the kmem_cache finds no object left (the slab itself warns
 * otherwise, which fails the run).
 *
 * Cases that provoke API misuse print "sheaf_test: expect-warn begin/end"
 * around it: the test bed allows kernel warnings only there.
 */
#define pr_fmt(fmt) "sheaf_test: " fmt

#include <linux/completion.h>
#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "sheaf_compat.h"
#include "sheaf.h"
#include "sheaf_internal.h"
#include "sheaf_test.h"

MODULE_IMPORT_NS(SHEAF_NS);

static int seconds = 5;
module_param(seconds, int, 0444);
MODULE_PARM_DESC(seconds, "how long the stress cases run");

#define OBJ_SIZE	64
#define CAPACITY	32

/* ---- fixtures ------------------------------------------------------------- */

struct fixture {
	struct kmem_cache *s;
	struct sheaf_cache *sc;
};

static unsigned long stat(struct sheaf_cache *sc, enum sheaf_stat item)
{
	return sheaf_stat_sum(sc, item);
}

/* Objects the slab has handed to the layer and not got back. */
static long slab_outstanding(struct sheaf_cache *sc)
{
	return stat(sc, SHEAF_REFILL) + stat(sc, ALLOC_SLAB) -
	       stat(sc, SHEAF_FLUSH) - stat(sc, FREE_SLAB);
}

static void obj_ctor(void *obj)
{
	memset(obj, 0xc7, OBJ_SIZE);
}

/*
 * A cache of its own: a usercopy region makes it unmergeable, so
 * kmem_cache_destroy() really checks it is empty.
 */
static int setup_full(struct fixture *f, const char *name,
		      const struct sheaf_cache_args *args, void (*ctor)(void *))
{
	f->s = kmem_cache_create_usercopy(name, OBJ_SIZE, 0, 0, 0, OBJ_SIZE,
					  ctor);
	if (!CHECK(f->s))
		return -ENOMEM;
	f->sc = sheaf_cache_attach(f->s, name, args);
	if (!CHECK(!IS_ERR(f->sc))) {
		kmem_cache_destroy(f->s);
		return -ENOMEM;
	}
	return 0;
}

static int setup(struct fixture *f, const char *name, unsigned int capacity)
{
	struct sheaf_cache_args args = { .capacity = capacity };

	return setup_full(f, name, &args, NULL);
}

static void teardown(struct fixture *f)
{
	sheaf_cache_shrink(f->sc);
	CHECK_EQ(sheaf_cache_nr_cached(f->sc), 0);
	CHECK_EQ(slab_outstanding(f->sc), 0);
	sheaf_cache_detach(f->sc);
	kmem_cache_destroy(f->s);
}

static void free_all(struct sheaf_cache *sc, void **objs, unsigned int n)
{
	while (n--)
		sheaf_cache_free(sc, objs[n]);
}

/* @n objects allocated with @gfp into @objs, or none and false. */
static bool alloc_n(struct sheaf_cache *sc, gfp_t gfp, void **objs,
		    unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		objs[i] = sheaf_cache_alloc(sc, gfp);
		if (!CHECK(objs[i])) {
			free_all(sc, objs, i);
			return false;
		}
	}
	return true;
}

/* ---- prefilled sheaves ---------------------------------------------------- */

/* N objects guaranteed with IRQs off under a spinlock; the N+1st fails. */
static void test_prefill_guarantee(void)
{
	static DEFINE_SPINLOCK(lock);
	void *objs[CAPACITY + 1];
	struct fixture f;
	struct sheaf *sheaf;
	unsigned long flags;
	unsigned int i, n;

	if (setup(&f, "t_prefill", CAPACITY))
		return;
	for (n = 1; n <= CAPACITY; n += CAPACITY - 1) {
		sheaf = sheaf_prefill(f.sc, GFP_KERNEL, n);
		if (!CHECK(sheaf))
			break;
		CHECK(sheaf_size(sheaf) >= n);

		spin_lock_irqsave(&lock, flags);
		for (i = 0; i < CAPACITY; i++) {
			objs[i] = sheaf_alloc(f.sc, GFP_KERNEL, sheaf);
			if (!objs[i])
				break;
		}
		objs[i] = sheaf_alloc(f.sc, GFP_KERNEL, sheaf);
		spin_unlock_irqrestore(&lock, flags);

		/* A fresh sheaf is filled to capacity. */
		CHECK_EQ(i, CAPACITY);
		CHECK(!objs[i]);
		CHECK_EQ(sheaf_size(sheaf), 0);
		sheaf_return(f.sc, GFP_KERNEL, sheaf);
		free_all(f.sc, objs, i);
	}
	teardown(&f);
}

/* A returned sheaf is reused by the next prefill without a refill. */
static void test_prefill_reuse(void)
{
	struct fixture f;
	struct sheaf *sheaf;
	unsigned long fast, slow;
	void *obj;

	if (setup(&f, "t_reuse", CAPACITY))
		return;
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 8);
	if (!CHECK(sheaf))
		goto out;
	obj = sheaf_alloc(f.sc, GFP_KERNEL, sheaf);
	sheaf_return(f.sc, GFP_KERNEL, sheaf);
	sheaf_cache_free(f.sc, obj);

	fast = stat(f.sc, SHEAF_PREFILL_FAST);
	slow = stat(f.sc, SHEAF_PREFILL_SLOW);
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 8);
	if (CHECK(sheaf)) {
		CHECK_EQ(sheaf_size(sheaf), CAPACITY - 1);
		sheaf_return(f.sc, GFP_KERNEL, sheaf);
	}
	CHECK_EQ(stat(f.sc, SHEAF_PREFILL_FAST), fast + 1);
	CHECK_EQ(stat(f.sc, SHEAF_PREFILL_SLOW), slow);
	CHECK(stat(f.sc, SHEAF_RETURN_FAST) >= 2);
out:
	teardown(&f);
}

/* size > capacity builds an oversize sheaf, flushed and freed on return. */
static void test_prefill_oversize(void)
{
	unsigned int n = 3 * CAPACITY, i;
	void *objs[3 * CAPACITY];
	struct fixture f;
	struct sheaf *sheaf;

	if (setup(&f, "t_oversize", CAPACITY))
		return;
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, n);
	if (!CHECK(sheaf))
		goto out;
	CHECK_EQ(sheaf_size(sheaf), n);
	CHECK_EQ(stat(f.sc, SHEAF_PREFILL_OVERSIZE), 1);
	for (i = 0; i < n; i++)
		objs[i] = sheaf_alloc(f.sc, GFP_KERNEL, sheaf);
	CHECK(objs[n - 1]);
	CHECK(!sheaf_alloc(f.sc, GFP_KERNEL, sheaf));

	/* Refilled in place: it is already big enough. */
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &sheaf, n), 0);
	CHECK_EQ(sheaf_size(sheaf), n);

	CHECK_EQ(stat(f.sc, SHEAF_FREE), 0);
	sheaf_return(f.sc, GFP_KERNEL, sheaf);
	CHECK_EQ(stat(f.sc, SHEAF_FREE), 1);
	CHECK_EQ(stat(f.sc, SHEAF_FLUSH), n);
	free_all(f.sc, objs, n);
out:
	teardown(&f);
}

/* Every branch of sheaf_refill(), including -ENOMEM keeping the old sheaf. */
static void test_refill(void)
{
	struct sheaf *sheaf, *old;
	void *objs[4 * CAPACITY];
	struct fixture f;
	unsigned int i, n = 0;

	if (setup(&f, "t_refill", CAPACITY))
		return;
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 4);
	if (!CHECK(sheaf))
		goto out;

	/* Enough already: nothing happens. */
	old = sheaf;
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &sheaf, 4), 0);
	CHECK(sheaf == old);
	CHECK_EQ(sheaf_size(sheaf), CAPACITY);

	/* Within capacity: refilled in place, to capacity. */
	for (i = 0; i < CAPACITY - 2; i++)
		objs[n++] = sheaf_alloc(f.sc, GFP_KERNEL, sheaf);
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &sheaf, 10), 0);
	CHECK(sheaf == old);
	CHECK_EQ(sheaf_size(sheaf), CAPACITY);

	/* -ENOMEM in place: the sheaf is as it was and still works. */
	for (i = 0; i < CAPACITY - 2; i++)
		objs[n++] = sheaf_alloc(f.sc, GFP_KERNEL, sheaf);
	atomic_set(&f.sc->fail_allocs, 1);
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &sheaf, 10), -ENOMEM);
	CHECK(sheaf == old);
	CHECK_EQ(sheaf_size(sheaf), 2);

	/* -ENOMEM when growing beyond capacity: also unchanged. */
	atomic_set(&f.sc->fail_allocs, 2);
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &sheaf, 2 * CAPACITY), -ENOMEM);
	CHECK(sheaf == old);
	CHECK_EQ(sheaf_size(sheaf), 2);
	atomic_set(&f.sc->fail_allocs, 0);
	objs[n++] = sheaf_alloc(f.sc, GFP_KERNEL, sheaf);
	CHECK(objs[n - 1]);

	/* Beyond capacity: replaced by an oversize sheaf. */
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &sheaf, 2 * CAPACITY), 0);
	CHECK(sheaf != old);
	CHECK(sheaf_size(sheaf) >= 2 * CAPACITY);
	CHECK_EQ(stat(f.sc, SHEAF_PREFILL_OVERSIZE), 1);

	/* Larger still: replaced again. */
	old = sheaf;
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &sheaf, 3 * CAPACITY), 0);
	CHECK(sheaf != old);
	CHECK(sheaf_size(sheaf) >= 3 * CAPACITY);
	sheaf_return(f.sc, GFP_KERNEL, sheaf);
	free_all(f.sc, objs, n);
out:
	teardown(&f);
}

/* A failed prefill returns NULL and loses nothing. */
static void test_prefill_failure(void)
{
	struct fixture f;
	struct sheaf *sheaf;

	if (setup(&f, "t_prefill_fail", CAPACITY))
		return;
	atomic_set(&f.sc->fail_allocs, 2);
	CHECK(!sheaf_prefill(f.sc, GFP_KERNEL, 8));
	atomic_set(&f.sc->fail_allocs, 1);
	CHECK(!sheaf_prefill(f.sc, GFP_KERNEL, 2 * CAPACITY));
	atomic_set(&f.sc->fail_allocs, 0);
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 8);
	if (CHECK(sheaf))
		sheaf_return(f.sc, GFP_NOWAIT, sheaf);
	teardown(&f);
}

/* Scope-based cleanup returns the sheaf and destroys the cache. */
static void test_cleanup(void)
{
#ifdef SHEAF_HAVE_CLEANUP
	unsigned long returned;
	void *obj;

	struct sheaf_cache *sc __free(sheaf_cache_destroy) =
		sheaf_cache_create("t_cleanup", OBJ_SIZE, 0, 0, NULL, NULL);
	if (!CHECK(!IS_ERR(sc)))
		return;
	returned = stat(sc, SHEAF_RETURN_FAST) + stat(sc, SHEAF_RETURN_SLOW);
	{
		CLASS(sheaf_prefilled, pf)(sc, GFP_KERNEL, 8);

		if (!CHECK(pf.sheaf))
			return;
		obj = sheaf_alloc(sc, 0, pf.sheaf);
		CHECK(obj);
	}
	CHECK_EQ(stat(sc, SHEAF_RETURN_FAST) + stat(sc, SHEAF_RETURN_SLOW),
		 returned + 1);
	sheaf_cache_free(sc, obj);
	sheaf_cache_shrink(sc);
	CHECK_EQ(slab_outstanding(sc), 0);
#else
	mark_skipped("no <linux/cleanup.h> on this kernel");
#endif
}

/* ---- zeroing ------------------------------------------------------------ */

static bool all_bytes(const void *obj, u8 byte)
{
	return !memchr_inv(obj, byte, OBJ_SIZE);
}

/* __GFP_ZERO zeroes recycled objects, on both allocation paths. */
static void test_gfp_zero(void)
{
	void *obj, *objs[CAPACITY];
	struct fixture f;
	struct sheaf *sheaf;
	unsigned int i;

	if (setup(&f, "t_zero", CAPACITY))
		return;
	for (i = 0; i < CAPACITY; i++) {
		objs[i] = sheaf_cache_alloc(f.sc, GFP_KERNEL);
		memset(objs[i], 0xa5, OBJ_SIZE);
	}
	free_all(f.sc, objs, CAPACITY);

	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL | __GFP_ZERO);
	CHECK(obj && all_bytes(obj, 0));
	sheaf_cache_free(f.sc, obj);

	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 4);
	if (CHECK(sheaf)) {
		obj = sheaf_alloc(f.sc, __GFP_ZERO, sheaf);
		CHECK(obj && all_bytes(obj, 0));
		sheaf_cache_free(f.sc, obj);
		sheaf_return(f.sc, GFP_KERNEL, sheaf);
	}
	teardown(&f);
}

/*
 * With init_on_alloc or init_on_free (Debian's default is init_on_alloc),
 * recycled objects come back zeroed; constructed objects never are.
 */
static void test_init_on_alloc(void)
{
	bool init = want_init_on_alloc(GFP_KERNEL) || want_init_on_free();
	struct sheaf_cache_args args = { .capacity = CAPACITY };
	struct fixture f, c;
	void *obj;

	if (setup(&f, "t_init", CAPACITY))
		return;
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	memset(obj, 0xa5, OBJ_SIZE);
	sheaf_cache_free(f.sc, obj);
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	CHECK(all_bytes(obj, init ? 0 : 0xa5));
	sheaf_cache_free(f.sc, obj);
	teardown(&f);

	args.flags = SHEAF_CACHE_CTOR;
	if (setup_full(&c, "t_ctor", &args, obj_ctor))
		return;
	obj = sheaf_cache_alloc(c.sc, GFP_KERNEL);
	CHECK(all_bytes(obj, 0xc7));
	sheaf_cache_free(c.sc, obj);
	obj = sheaf_cache_alloc(c.sc, GFP_KERNEL);
	CHECK(all_bytes(obj, 0xc7));
	sheaf_cache_free(c.sc, obj);
	teardown(&c);

	/* SLAB_TYPESAFE_BY_RCU: readers may still look at freed objects. */
	args.flags = 0;
	c.sc = sheaf_cache_create("t_rcu", OBJ_SIZE, 0, SLAB_TYPESAFE_BY_RCU,
				  NULL, &args);
	if (!CHECK(!IS_ERR(c.sc)))
		return;
	CHECK(!c.sc->zero_on_free);
	migrate_disable();
	obj = sheaf_cache_alloc(c.sc, GFP_KERNEL);
	memset(obj, 0x5a, OBJ_SIZE);
	sheaf_cache_free(c.sc, obj);
	CHECK(all_bytes(obj, 0x5a));
	CHECK(sheaf_cache_alloc(c.sc, GFP_KERNEL) == obj);
	CHECK(all_bytes(obj, 0x5a));
	sheaf_cache_free(c.sc, obj);
	migrate_enable();
	sheaf_cache_destroy(c.sc);

	if (!init)
		mark_skipped("neither init_on_alloc nor init_on_free is on");
}

/* ---- per-CPU sheaves and barns -------------------------------------------- */

struct on_cpu {
	struct sheaf_cache *sc;
	void **objs;
	unsigned int n;
};

static long alloc_on_cpu(void *arg)
{
	struct on_cpu *oc = arg;
	unsigned int i;

	for (i = 0; i < oc->n; i++) {
		oc->objs[i] = sheaf_cache_alloc(oc->sc, GFP_KERNEL);
		if (!oc->objs[i])
			return -ENOMEM;
	}
	return 0;
}

static long free_on_cpu(void *arg)
{
	struct on_cpu *oc = arg;

	free_all(oc->sc, oc->objs, oc->n);
	return 0;
}

static struct sheaf_pcpu *pcs_of(struct sheaf_cache *sc, unsigned int cpu)
{
	return per_cpu_ptr(sc->pcpu, cpu);
}

static void barn_of(struct sheaf_cache *sc, unsigned int cpu,
		    unsigned int *nr_full, unsigned int *nr_empty)
{
	struct sheaf_barn *barn = sc->barns[cpu_to_mem(cpu)];

	*nr_full = READ_ONCE(barn->nr_full);
	*nr_empty = READ_ONCE(barn->nr_empty);
}

/*
 * Main, spare and barn trade sheaves as upstream's do, within the barn's
 * limits, seen through the counters and the per-CPU state.
 */
static void test_exchanges(void)
{
	struct sheaf_cache_args args = {
		.capacity = 8, .barn_max_full = 2, .barn_max_empty = 1,
	};
	unsigned int cpu = cpumask_first(cpu_online_mask);
	unsigned int nr_full, nr_empty;
	void *objs[64];
	struct on_cpu oc = { .objs = objs };
	struct sheaf_pcpu *pcs;
	struct fixture f;

	if (setup_full(&f, "t_exchange", &args, NULL))
		return;
	oc.sc = f.sc;
	pcs = pcs_of(f.sc, cpu);

	/* One allocation refills main from the slab: 8 in, 1 out. */
	oc.n = 1;
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	CHECK_EQ(stat(f.sc, SHEAF_REFILL), 8);
	CHECK_EQ(pcs->main->size, 7);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
	CHECK_EQ(pcs->main->size, 8);

	/* 16 allocations empty main twice; 16 frees fill main and spare. */
	oc.n = 16;
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
	CHECK(pcs->spare && pcs->spare->size == 8);
	CHECK_EQ(pcs->main->size, 8);

	/* 32 more frees: full sheaves go to the barn until its limit. */
	oc.n = 40;
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
	barn_of(f.sc, cpu, &nr_full, &nr_empty);
	CHECK_EQ(nr_full, 2);
	CHECK(stat(f.sc, BARN_PUT_FAIL) >= 1);
	CHECK(stat(f.sc, SHEAF_FLUSH) >= 8);

	/* Allocating takes full sheaves back from the barn. */
	oc.n = 40;
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	barn_of(f.sc, cpu, &nr_full, &nr_empty);
	CHECK_EQ(nr_full, 0);
	CHECK(nr_empty <= 1);
	CHECK(stat(f.sc, BARN_GET) >= 2);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
	teardown(&f);
}

/*
 * Capacity and barn limits change while the cache holds sheaves of the old
 * capacity on a CPU, in the barn and prefilled by a caller.
 */
static void test_tune(void)
{
	struct sheaf_cache_args args = {
		.capacity = 8, .barn_max_full = 4, .barn_max_empty = 4,
	};
	unsigned int cpu = cpumask_first(cpu_online_mask);
	unsigned int nr_full, nr_empty, c;
	unsigned long freed;
	void *objs[64];
	struct on_cpu oc = { .objs = objs, .n = 48 };
	struct sheaf *old, *sheaf;
	struct fixture f;

	if (setup_full(&f, "t_tune", &args, NULL))
		return;
	oc.sc = f.sc;
	/* 48 frees on one CPU: main, spare and full sheaves in the barn. */
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
	barn_of(f.sc, cpu, &nr_full, &nr_empty);
	CHECK(nr_full >= 3);
	old = sheaf_prefill(f.sc, GFP_KERNEL, 8);
	if (!CHECK(old))
		goto out;

	/* Lower barn limits trim the barn at once. */
	CHECK_EQ(sheaf_cache_set_barn_limits(f.sc, 1, SHEAF_BARN_KEEP), 0);
	barn_of(f.sc, cpu, &nr_full, &nr_empty);
	CHECK_EQ(nr_full, 1);
	CHECK_EQ(f.sc->barn_max_empty, 4);
	CHECK_EQ(sheaf_cache_set_barn_limits(f.sc, SHEAF_MAX_BARN + 1, 0),
		 -EINVAL);
	CHECK_EQ(f.sc->barn_max_full, 1);

	/*
	 * A larger capacity: every CPU's main is replaced, nothing cached but
	 * the prefilled sheaf's objects.
	 */
	CHECK_EQ(sheaf_cache_set_capacity(f.sc, 24), 0);
	CHECK_EQ(sheaf_cache_capacity(f.sc), 24);
	for_each_online_cpu(c)
		CHECK_EQ(pcs_of(f.sc, c)->main->capacity, 24);
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), sheaf_size(old));

	/* The old prefilled sheaf still serves, and is freed on return. */
	objs[0] = sheaf_alloc(f.sc, GFP_KERNEL, old);
	CHECK(objs[0]);
	freed = stat(f.sc, SHEAF_FREE);
	sheaf_return(f.sc, GFP_KERNEL, old);
	CHECK_EQ(stat(f.sc, SHEAF_FREE), freed + 1);
	sheaf_cache_free(f.sc, objs[0]);

	/* Prefills get sheaves of the new capacity, up to it. */
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 24);
	if (CHECK(sheaf)) {
		CHECK_EQ(sheaf->capacity, 24);
		CHECK_EQ(sheaf_size(sheaf), 24);
		sheaf_return(f.sc, GFP_KERNEL, sheaf);
	}
	CHECK_EQ(stat(f.sc, SHEAF_PREFILL_OVERSIZE), 0);

	/* Smaller again: a kept sheaf of 24 never serves as one of 4. */
	CHECK_EQ(sheaf_cache_set_capacity(f.sc, 4), 0);
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 4);
	if (CHECK(sheaf)) {
		CHECK_EQ(sheaf->capacity, 4);
		sheaf_return(f.sc, GFP_KERNEL, sheaf);
	}
	oc.n = 20;
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
	CHECK_EQ(pcs_of(f.sc, cpu)->main->capacity, 4);

	CHECK_EQ(sheaf_cache_set_capacity(f.sc, SHEAF_MAX_CAPACITY + 1), -EINVAL);
	CHECK_EQ(sheaf_cache_capacity(f.sc), 4);
	CHECK_EQ(sheaf_cache_set_capacity(f.sc, 0), 0);
	CHECK(sheaf_cache_capacity(f.sc) > 4);
out:
	teardown(&f);
}

/* Objects freed on another CPU than they were allocated on. */
static void test_cross_cpu_free(void)
{
	unsigned int a = cpumask_first(cpu_online_mask);
	unsigned int b = cpumask_next(a, cpu_online_mask);
	void *objs[100];
	struct on_cpu oc = { .objs = objs, .n = 100 };
	struct fixture f;

	if (b >= nr_cpu_ids) {
		mark_skipped("needs two online CPUs");
		return;
	}
	if (setup(&f, "t_cross", CAPACITY))
		return;
	oc.sc = f.sc;
	CHECK_EQ(work_on_cpu(a, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(b, free_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(b, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(a, free_on_cpu, &oc), 0);
	teardown(&f);
}

/* The trylock: a nested user on the same CPU bypasses the sheaves. */
static void test_nested_context(void)
{
	struct sheaf_pcpu *pcs;
	struct fixture f;
	unsigned long slab;
	void *obj;

	if (setup(&f, "t_nested", CAPACITY))
		return;
	/* As if an interrupt arrived while this CPU held its sheaves. */
	migrate_disable();
	pcs = this_cpu_ptr(f.sc->pcpu);
	WRITE_ONCE(pcs->locked, 1);
	slab = stat(f.sc, ALLOC_SLAB);
	obj = sheaf_cache_alloc(f.sc, GFP_ATOMIC);
	CHECK(obj);
	CHECK_EQ(stat(f.sc, ALLOC_SLAB), slab + 1);
	sheaf_cache_free(f.sc, obj);
	CHECK_EQ(stat(f.sc, FREE_SLAB), 1);
	WRITE_ONCE(pcs->locked, 0);
	migrate_enable();
	teardown(&f);
}

struct irq_test {
	struct hrtimer timer;
	struct sheaf_cache *sc;
	void *objs[16];
	int runs;
	bool ok;
};

static enum hrtimer_restart irq_test_fn(struct hrtimer *t)
{
	struct irq_test *it = container_of(t, struct irq_test, timer);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(it->objs); i++)
		it->objs[i] = sheaf_cache_alloc(it->sc, GFP_ATOMIC);
	for (i = 0; i < ARRAY_SIZE(it->objs); i++) {
		if (!it->objs[i])
			it->ok = false;
		sheaf_cache_free(it->sc, it->objs[i]);
	}
	if (--it->runs <= 0)
		return HRTIMER_NORESTART;
	hrtimer_forward_now(t, ns_to_ktime(20 * NSEC_PER_USEC));
	return HRTIMER_RESTART;
}

/* Hardirq allocations interrupting process-context ones on any CPU. */
static void test_irq_context(void)
{
	struct irq_test *it;
	struct fixture f;
	void *obj;
	int i;

	it = kzalloc(sizeof(*it), GFP_KERNEL);
	if (!CHECK(it))
		return;
	if (setup(&f, "t_irq", CAPACITY))
		goto out;
	it->sc = f.sc;
	it->runs = 200;
	it->ok = true;
	/* A hardirq timer; on PREEMPT_RT a softirq one, as RT requires. */
	sheaf_hrtimer_setup(&it->timer, irq_test_fn);
	hrtimer_start(&it->timer, ns_to_ktime(10 * NSEC_PER_USEC),
		      HRTIMER_MODE_REL);
	for (i = 0; i < 200000 && hrtimer_active(&it->timer); i++) {
		obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
		CHECK(obj);
		sheaf_cache_free(f.sc, obj);
		if (!(i % 64))
			cond_resched();
	}
	hrtimer_cancel(&it->timer);
	CHECK(it->ok);
	teardown(&f);
out:
	kfree(it);
}

/*
 * With interrupts off every call works and leaves them off: the stock bulk
 * calls, which need them on, are not used there.
 */
static void test_irqs_off(void)
{
	struct sheaf_cache_args args = {
		.capacity = 8, .barn_max_full = 1, .barn_max_empty = 1,
	};
	static void *objs[64];
	struct sheaf *sheaf;
	unsigned long flags;
	struct fixture f;
	unsigned int i;
	bool off = true;

	if (setup_full(&f, "t_irqs_off", &args, NULL))
		return;
	local_irq_save(flags);
	sheaf = sheaf_prefill(f.sc, GFP_ATOMIC, 2 * 8);	/* oversize */
	off &= irqs_disabled();
	if (sheaf) {
		CHECK_EQ(sheaf_refill(f.sc, GFP_ATOMIC, &sheaf, 3 * 8), 0);
		off &= irqs_disabled();
		sheaf_return(f.sc, GFP_ATOMIC, sheaf);
		off &= irqs_disabled();
	}
	sheaf = sheaf_prefill(f.sc, GFP_ATOMIC, 4);
	off &= irqs_disabled();
	if (sheaf) {
		sheaf_return(f.sc, GFP_ATOMIC, sheaf);
		off &= irqs_disabled();
	}
	/* Enough frees to overflow main, spare and barn: flushes. */
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		objs[i] = sheaf_cache_alloc(f.sc, GFP_ATOMIC);
	off &= irqs_disabled();
	free_all(f.sc, objs, ARRAY_SIZE(objs));
	off &= irqs_disabled();
	local_irq_restore(flags);

	CHECK(off);
	CHECK(sheaf);
	CHECK(stat(f.sc, SHEAF_FLUSH) >= 8);
	teardown(&f);
}

/* ---- NUMA ------------------------------------------------------------------- */

static void test_remote_node(void)
{
	int local = numa_mem_id(), remote = NUMA_NO_NODE, node;
	struct fixture f;
	void *obj;

	for_each_node_state(node, N_MEMORY)
		if (node != local)
			remote = node;
	if (remote == NUMA_NO_NODE) {
		mark_skipped("needs two NUMA nodes with memory");
		return;
	}
	if (setup(&f, "t_numa", CAPACITY))
		return;

	migrate_disable();
	obj = sheaf_cache_alloc_node(f.sc, GFP_KERNEL, remote);
	if (CHECK(obj)) {
		CHECK_EQ(page_to_nid(virt_to_head_page(obj)), remote);
		CHECK_EQ(stat(f.sc, ALLOC_SLAB), 1);
		sheaf_cache_free(f.sc, obj);
	}
	CHECK_EQ(stat(f.sc, FREE_REMOTE), 1);

	obj = sheaf_cache_alloc_node(f.sc, GFP_KERNEL, numa_mem_id());
	if (CHECK(obj)) {
		CHECK_EQ(page_to_nid(virt_to_head_page(obj)), numa_mem_id());
		sheaf_cache_free(f.sc, obj);
	}
	migrate_enable();
	teardown(&f);
}

/* ---- shrinking and CPU hotplug ----------------------------------------------- */

static void test_shrink(void)
{
	struct fixture f;
	void *objs[200];
	unsigned int i;

	if (setup(&f, "t_shrink", CAPACITY))
		return;
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		objs[i] = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	free_all(f.sc, objs, ARRAY_SIZE(objs));
	CHECK(sheaf_cache_nr_cached(f.sc) >= ARRAY_SIZE(objs));
	sheaf_cache_shrink(f.sc);
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), 0);
	CHECK_EQ(slab_outstanding(f.sc), 0);
	teardown(&f);
}

/*
 * Under memory pressure the shrinker empties barns and sheaves: the test
 * script drops the kernel's caches (which runs every shrinker) while this
 * case waits for the layer to hold nothing.
 */
/*
 * Every CPU fills main and spare and the rest goes to the barns: the layer
 * caches objects everywhere a shrinker must reach.
 */
static int cache_on_every_cpu(struct fixture *f, const char *name,
			      struct on_cpu *oc)
{
	unsigned int cpu, barn_full = 0;
	int node;

	oc->n = 4 * CAPACITY;
	oc->objs = kcalloc(oc->n, sizeof(void *), GFP_KERNEL);
	if (!CHECK(oc->objs))
		return -ENOMEM;
	if (setup(f, name, CAPACITY)) {
		kfree(oc->objs);
		return -ENOMEM;
	}
	oc->sc = f->sc;
	for_each_online_cpu(cpu) {
		CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, oc), 0);
		CHECK_EQ(work_on_cpu(cpu, free_on_cpu, oc), 0);
	}
	for_each_node(node)
		barn_full += READ_ONCE(f->sc->barns[node]->nr_full);
	CHECK(barn_full >= 1);
	CHECK(sheaf_cache_nr_cached(f->sc) >= 2 * CAPACITY);
	return 0;
}

/* The kernel's shrinker pass (sheaf.sh drops caches) empties the layer. */
static void test_shrinker(void)
{
	struct on_cpu oc;
	struct fixture f;
	int waited;

	if (cache_on_every_cpu(&f, "t_shrinker", &oc))
		return;
	pr_info("shrinker: waiting for memory pressure\n");
	for (waited = 0; waited < 30000; waited += 20) {
		if (!sheaf_cache_nr_cached(f.sc))
			break;
		msleep(20);
	}
	pr_info("shrinker: cached %lu after %d ms, %lu scans\n",
		sheaf_cache_nr_cached(f.sc), waited, stat(f.sc, SHRINKER_SCAN));
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), 0);
	CHECK(stat(f.sc, SHRINKER_SCAN) >= 1);
	teardown(&f);
	kfree(oc.objs);
}

/*
 * Real pressure: take free pages until reclaim has run the shrinker, then
 * give them back.  __GFP_NORETRY reclaims but never calls the OOM killer;
 * the guest has little else to reclaim.
 */
static unsigned long press_until_scanned(struct sheaf_cache *sc)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN;
	unsigned long scans = stat(sc, SHRINKER_SCAN), taken = 0;
	struct page *page, *next;
	LIST_HEAD(pages);

	while (stat(sc, SHRINKER_SCAN) == scans) {
		page = alloc_page(gfp);
		if (!page)
			break;
		list_add(&page->lru, &pages);
		taken++;
		if (!(taken % 1024))
			cond_resched();
	}
	list_for_each_entry_safe(page, next, &pages, lru)
		__free_page(page);
	return taken;
}

static void test_memory_pressure(void)
{
	unsigned long scans, taken;
	struct on_cpu oc;
	struct fixture f;
	int waited;

	if (cache_on_every_cpu(&f, "t_pressure", &oc))
		return;
	scans = stat(f.sc, SHRINKER_SCAN);
	taken = press_until_scanned(f.sc);
	/* The shrinker has the CPUs flush their sheaves in work items. */
	for (waited = 0; waited < 5000; waited += 20) {
		if (!sheaf_cache_nr_cached(f.sc))
			break;
		msleep(20);
	}
	pr_info("memory_pressure: cached %lu after taking %lu MiB, %lu scans\n",
		sheaf_cache_nr_cached(f.sc), taken >> (20 - PAGE_SHIFT),
		stat(f.sc, SHRINKER_SCAN) - scans);
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), 0);
	CHECK(stat(f.sc, SHRINKER_SCAN) > scans);
	teardown(&f);
	kfree(oc.objs);
}

/* ---- memory cgroups ------------------------------------------------------- */

#define MEMCG_OBJ_SIZE	1024
#define MEMCG_OBJS	8192		/* 8 MiB, 2048 pages */
#define MEMCG_PAGES	(MEMCG_OBJS * MEMCG_OBJ_SIZE / PAGE_SIZE)
/* What a memcg's per-CPU charge stocks may hold either way. */
#define MEMCG_SLACK	256

/*
 * Pages charged to the memory cgroup of the task running the case (the
 * script's insmod), or -1 when that is the root, which is never charged.
 */
static long memcg_charged(void)
{
	long pages = -1;
#ifdef CONFIG_MEMCG
	struct mem_cgroup *memcg;

	rcu_read_lock();
	memcg = mem_cgroup_from_task(current);
	if (memcg && memcg->css.parent)
		pages = page_counter_read(&memcg->memory);
	rcu_read_unlock();
#endif
	return pages;
}

/* Pages charged since @base: "charged" is most of MEMCG_PAGES, else none. */
static bool memcg_check(const char *step, long base, bool charged)
{
	long pages = memcg_charged() - base;

	pr_info("memcg_charge: %s: %ld pages charged\n", step, pages);
	if (charged)
		return CHECK(pages >= MEMCG_PAGES * 7 / 8);
	return CHECK(pages <= MEMCG_SLACK);
}

/*
 * Room for all the objects in one CPU's sheaves and barn, so that a layer
 * that kept charged objects would keep them all.
 */
static const struct sheaf_cache_args memcg_args = {
	.capacity = SHEAF_MAX_CAPACITY, .barn_max_full = 8,
};

/* A SLAB_ACCOUNT cache: charged at allocation, uncharged at free. */
static void memcg_accounted(void **objs, long base)
{
	struct sheaf_cache *sc;

	sc = sheaf_cache_create("t_memcg_acct", MEMCG_OBJ_SIZE, 0,
				SLAB_ACCOUNT, NULL, &memcg_args);
	if (!CHECK(!IS_ERR(sc)))
		return;
	/* One CPU and node: a remote node's objects would go to the slab. */
	migrate_disable();
	if (alloc_n(sc, GFP_KERNEL, objs, MEMCG_OBJS)) {
		memcg_check("SLAB_ACCOUNT, allocated", base, true);
		free_all(sc, objs, MEMCG_OBJS);
		memcg_check("SLAB_ACCOUNT, freed", base, false);
		CHECK_EQ(sheaf_cache_nr_cached(sc), 0);
	}
	migrate_enable();
	sheaf_cache_destroy(sc);
}

/*
 * An ordinary cache: objects in sheaves are charged to no one, however
 * many; a __GFP_ACCOUNT allocation is charged, and keeps its charge while
 * freed into a sheaf, until it reaches the slab; so is a sheaf prefilled
 * with __GFP_ACCOUNT, until it is returned.
 */
static void memcg_ordinary(void **objs, long base)
{
	struct sheaf_cache *sc;
	struct sheaf *sheaf;

	sc = sheaf_cache_create("t_memcg_plain", MEMCG_OBJ_SIZE, 0, 0, NULL,
				&memcg_args);
	if (!CHECK(!IS_ERR(sc)))
		return;
	migrate_disable();
	if (alloc_n(sc, GFP_KERNEL, objs, MEMCG_OBJS)) {
		memcg_check("ordinary, allocated", base, false);
		free_all(sc, objs, MEMCG_OBJS);
		memcg_check("ordinary, parked", base, false);
		CHECK(sheaf_cache_nr_cached(sc) >= MEMCG_OBJS);
	}
	migrate_enable();
	sheaf_cache_shrink(sc);

	migrate_disable();
	if (alloc_n(sc, GFP_KERNEL | __GFP_ACCOUNT, objs, MEMCG_OBJS)) {
		memcg_check("__GFP_ACCOUNT, allocated", base, true);
		free_all(sc, objs, MEMCG_OBJS);
		memcg_check("__GFP_ACCOUNT, parked", base, true);
		CHECK(sheaf_cache_nr_cached(sc) >= MEMCG_OBJS);
	}
	migrate_enable();
	sheaf_cache_shrink(sc);
	memcg_check("__GFP_ACCOUNT, shrunk", base, false);

	sheaf = sheaf_prefill(sc, GFP_KERNEL | __GFP_ACCOUNT, MEMCG_OBJS);
	if (CHECK(sheaf)) {
		memcg_check("__GFP_ACCOUNT prefill", base, true);
		sheaf_return(sc, GFP_KERNEL, sheaf);
		memcg_check("__GFP_ACCOUNT prefill, returned", base, false);
	}
	sheaf_cache_destroy(sc);
}

/*
 * Who is charged for what, read off the memory cgroup the script loads
 * this case in: the cgroup's page counter, before and after each step.
 */
static void test_memcg_charge(void)
{
	long base = memcg_charged();
	void **objs;

	if (base < 0) {
		mark_skipped(IS_ENABLED(CONFIG_MEMCG) ?
			     "not loaded in a child memory cgroup" : "no memcg");
		return;
	}
	objs = kvmalloc_array(MEMCG_OBJS, sizeof(*objs), GFP_KERNEL);
	if (!CHECK(objs))
		return;
	base = memcg_charged();
	memcg_accounted(objs, base);
	memcg_ordinary(objs, base);
	kvfree(objs);
}

/* A dead CPU's sheaves are flushed; the CPU works again once back. */
static void test_cpu_hotplug(void)
{
	unsigned int cpu = cpumask_last(cpu_online_mask);
	void *objs[20];
	struct on_cpu oc = { .objs = objs, .n = 20 };
	struct fixture f;
	unsigned long flushed;
	int err;

	if (cpu == cpumask_first(cpu_online_mask)) {
		mark_skipped("needs two online CPUs");
		return;
	}
	if (setup(&f, "t_hotplug", CAPACITY))
		return;
	oc.sc = f.sc;
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
	CHECK_EQ(pcs_of(f.sc, cpu)->main->size, CAPACITY);

	flushed = stat(f.sc, SHEAF_FLUSH);
	err = remove_cpu(cpu);
	if (err) {
		mark_skipped("CPU cannot be taken offline");
		goto out;
	}
	CHECK_EQ(pcs_of(f.sc, cpu)->main->size, 0);
	CHECK_EQ(stat(f.sc, SHEAF_FLUSH), flushed + CAPACITY);
	CHECK_EQ(add_cpu(cpu), 0);
	CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0);
	CHECK_EQ(work_on_cpu(cpu, free_on_cpu, &oc), 0);
out:
	teardown(&f);
}

/* ---- cache kinds ---------------------------------------------------------- */

/* SLAB_ACCOUNT and pass-through caches never park objects. */
static void test_bypass(void)
{
	static const unsigned int kinds[] = {
		SHEAF_CACHE_ACCOUNT, SHEAF_CACHE_PASSTHROUGH,
	};
	struct sheaf_cache_args args = { .capacity = CAPACITY };
	struct sheaf *sheaf;
	struct fixture f;
	unsigned int k;
	void *obj;

	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		args.flags = kinds[k];
		if (setup_full(&f, "t_bypass", &args, NULL))
			return;
		obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
		sheaf_cache_free(f.sc, obj);
		CHECK_EQ(stat(f.sc, ALLOC_SLAB), 1);
		CHECK_EQ(stat(f.sc, FREE_SLAB), 1);
		CHECK_EQ(sheaf_cache_nr_cached(f.sc), 0);

		/* Prefilled sheaves are the caller's own, never recycled. */
		sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 4);
		if (CHECK(sheaf)) {
			CHECK_EQ(sheaf_size(sheaf), 4);
			obj = sheaf_alloc(f.sc, 0, sheaf);
			sheaf_return(f.sc, GFP_KERNEL, sheaf);
			sheaf_cache_free(f.sc, obj);
		}
		CHECK_EQ(stat(f.sc, SHEAF_FLUSH), 3);
		CHECK_EQ(sheaf_cache_nr_cached(f.sc), 0);
		teardown(&f);
	}

	/* So is one prefilled with __GFP_ACCOUNT from an ordinary cache. */
	if (setup(&f, "t_bypass", CAPACITY))
		return;
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL | __GFP_ACCOUNT, CAPACITY);
	if (CHECK(sheaf)) {
		CHECK(sheaf->private);
		sheaf_return(f.sc, GFP_KERNEL, sheaf);
		CHECK_EQ(sheaf_cache_nr_cached(f.sc), 0);
	}
	teardown(&f);
}

/* sheaf_cache_create() owns its kmem_cache and reads its flags. */
static void test_create(void)
{
	struct sheaf_cache *sc;
	void *obj;

	sc = sheaf_cache_create("t_create", OBJ_SIZE, 0, SLAB_ACCOUNT, NULL,
				NULL);
	if (!CHECK(!IS_ERR(sc)))
		return;
	/* SLAB_ACCOUNT is 0 on a kernel without memcg: nothing to account. */
	CHECK(!!(sc->flags & SHEAF_CACHE_ACCOUNT) == !!SLAB_ACCOUNT);
	CHECK(sheaf_cache_capacity(sc) >= 60);
	CHECK(sheaf_cache_kmem_cache(sc));
	obj = sheaf_cache_alloc(sc, GFP_KERNEL);
	sheaf_cache_free(sc, obj);
	sheaf_cache_destroy(sc);

	sc = sheaf_cache_create("t_create", OBJ_SIZE, 0, 0, obj_ctor, NULL);
	if (!CHECK(!IS_ERR(sc)))
		return;
	CHECK(sc->flags & SHEAF_CACHE_CTOR);
	CHECK(!sc->zero_on_free);
	sheaf_cache_destroy(sc);
}

/* ---- debugging aids ------------------------------------------------------- */

/*
 * Verify mode: a write to a parked object and a double free into this
 * CPU's sheaves are caught, counted, warned about once, and harmless.
 */
static void test_verify(void)
{
	struct sheaf_cache_args args = {
		.capacity = CAPACITY, .flags = SHEAF_CACHE_VERIFY,
	};
	bool init = want_init_on_alloc(GFP_KERNEL) || want_init_on_free();
	struct fixture f;
	void *obj, *obj2;

	if (setup_full(&f, "t_verify", &args, NULL))
		return;
	CHECK(f.sc->verify);
	migrate_disable();
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	CHECK(all_bytes(obj, init ? 0 : SHEAF_POISON));
	sheaf_cache_free(f.sc, obj);
	CHECK(all_bytes(obj, SHEAF_POISON));

	EXPECT_WARN_BEGIN("verify");
	((u8 *)obj)[5] = 1;		/* a use after free */
	obj2 = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	CHECK(obj2 == obj);
	sheaf_cache_free(f.sc, obj2);
	sheaf_cache_free(f.sc, obj2);	/* a double free */
	EXPECT_WARN_END("verify");
	CHECK_EQ(stat(f.sc, PARKED_WRITE), 1);
	CHECK_EQ(stat(f.sc, DOUBLE_FREE), 1);

	/* The second free was dropped: the object comes back once. */
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	obj2 = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	CHECK(obj != obj2);
	sheaf_cache_free(f.sc, obj2);
	sheaf_cache_free(f.sc, obj);
	migrate_enable();
	CHECK_EQ(stat(f.sc, PARKED_WRITE), 1);
	teardown(&f);
}

/*
 * The double-free check sees this CPU's rcu sheaf too: an object waiting
 * for its grace period is refused when freed again, at once or deferred,
 * and so is a deferred free of an object parked in the main sheaf.
 */
static void test_verify_rcu(void)
{
	struct sheaf_cache_args args = {
		.capacity = CAPACITY, .flags = SHEAF_CACHE_VERIFY,
	};
	struct sheaf *rcu;
	struct fixture f;
	void *obj, *other;

	if (setup_full(&f, "t_verify_rcu", &args, NULL))
		return;
	migrate_disable();
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	other = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	sheaf_cache_free_rcu(f.sc, obj);
	rcu = pcs_of(f.sc, smp_processor_id())->rcu_free;
	if (!CHECK(rcu && rcu->size == 1 && rcu->objects[0] == obj)) {
		migrate_enable();
		sheaf_cache_free(f.sc, other);
		sheaf_cache_rcu_barrier(f.sc);
		teardown(&f);
		return;
	}
	sheaf_cache_free(f.sc, other);

	EXPECT_WARN_BEGIN("verify_rcu");
	sheaf_cache_free(f.sc, obj);		/* waiting, freed at once */
	sheaf_cache_free_rcu(f.sc, obj);	/* waiting, deferred again */
	sheaf_cache_free_rcu(f.sc, other);	/* parked, deferred */
	EXPECT_WARN_END("verify_rcu");
	CHECK_EQ(stat(f.sc, DOUBLE_FREE), 3);
	CHECK_EQ(rcu->size, 1);
	CHECK_EQ(stat(f.sc, FREE_RCU_SHEAF), 1);
	migrate_enable();

	/* One object went through a grace period; teardown sees no other. */
	sheaf_cache_rcu_barrier(f.sc);
	CHECK_EQ(stat(f.sc, RCU_DONE), 1);
	CHECK_EQ(stat(f.sc, PARKED_WRITE), 0);
	teardown(&f);
}

/*
 * The passthrough module parameter (set by the test script for this case;
 * the default on KASAN and slub_debug kernels) keeps new caches empty.
 */
static void test_passthrough_param(void)
{
	struct fixture f;
	void *obj;

	if (setup(&f, "t_passthrough", CAPACITY))
		return;
	CHECK(f.sc->bypass);
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	sheaf_cache_free(f.sc, obj);
	CHECK_EQ(stat(f.sc, ALLOC_SLAB), 1);
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), 0);
	teardown(&f);
}

/* ---- misuse --------------------------------------------------------------------- */

/* Bad arguments are refused with an error code and no warning. */
static void test_bad_args(void)
{
	struct sheaf_cache_args big = { .capacity = SHEAF_MAX_CAPACITY + 1 };
	struct sheaf_cache_args flags = { .flags = 1U << 31 };
	char long_name[SHEAF_NAME_LEN + 1];
	struct sheaf_cache *sc;
	struct fixture f;

	if (setup(&f, "t_args", CAPACITY))
		return;
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = 0;
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(f.s, "t_args", NULL)), -EEXIST);
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(f.s, "t_big", &big)), -EINVAL);
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(f.s, "t_flags", &flags)), -EINVAL);
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(f.s, NULL, NULL)), -EINVAL);
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(f.s, "", NULL)), -EINVAL);
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(f.s, "a/b", NULL)), -EINVAL);
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(f.s, long_name, NULL)), -EINVAL);
	CHECK_EQ(PTR_ERR(sheaf_cache_attach(NULL, "t_null", NULL)), -EINVAL);

	/* The name is free again after detach. */
	sc = sheaf_cache_attach(f.s, "t_args2", NULL);
	if (CHECK(!IS_ERR(sc))) {
		sheaf_cache_detach(sc);
		sc = sheaf_cache_attach(f.s, "t_args2", NULL);
		if (CHECK(!IS_ERR(sc)))
			sheaf_cache_detach(sc);
	}
	CHECK_EQ(stat(f.sc, MISUSE), 0);
	teardown(&f);
}

/* Misused prefilled sheaves warn once, are counted, and do no harm. */
static void test_misuse(void)
{
	struct fixture f, g;
	struct sheaf *sheaf, *null = NULL;
	void *obj;

	if (setup(&f, "t_misuse", CAPACITY))
		return;
	if (setup(&g, "t_misuse2", CAPACITY))
		goto out_f;
	sheaf = sheaf_prefill(f.sc, GFP_KERNEL, 4);
	if (!CHECK(sheaf))
		goto out;

	EXPECT_WARN_BEGIN("misuse");
	CHECK(!sheaf_prefill(f.sc, GFP_KERNEL, 0));
	CHECK(!sheaf_alloc(f.sc, GFP_KERNEL, NULL));
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, NULL, 4), -EINVAL);
	CHECK_EQ(sheaf_refill(f.sc, GFP_KERNEL, &null, 4), -EINVAL);
	sheaf_return(f.sc, GFP_KERNEL, NULL);
	CHECK_EQ(sheaf_size(NULL), 0);
	/* A sheaf of another cache. */
	CHECK(!sheaf_alloc(g.sc, GFP_KERNEL, sheaf));
	sheaf_return(g.sc, GFP_KERNEL, sheaf);
	CHECK_EQ(sheaf_size(sheaf), CAPACITY);
	/* Returned twice: the second time it is the CPU's spare again. */
	sheaf_return(f.sc, GFP_KERNEL, sheaf);
	sheaf_return(f.sc, GFP_KERNEL, sheaf);
	CHECK(!sheaf_alloc(f.sc, GFP_KERNEL, sheaf));
	EXPECT_WARN_END("misuse");

	CHECK_EQ(stat(f.sc, MISUSE), 7);
	CHECK_EQ(stat(g.sc, MISUSE), 2);
	/* Nothing was lost: the cache still works. */
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	CHECK(obj);
	sheaf_cache_free(f.sc, obj);
out:
	teardown(&g);
out_f:
	teardown(&f);
}

/* Detach with a prefilled sheaf out warns and stays safe until it returns. */
static void test_detach_outstanding(void)
{
	struct sheaf_cache *sc;
	struct sheaf *sheaf;
	struct kmem_cache *s;
	void *obj;

	sc = sheaf_cache_create("t_detach", OBJ_SIZE, 0, 0, NULL, NULL);
	if (!CHECK(!IS_ERR(sc)))
		return;
	s = sheaf_cache_kmem_cache(sc);
	sheaf = sheaf_prefill(sc, GFP_KERNEL, 4);
	if (!CHECK(sheaf)) {
		sheaf_cache_destroy(sc);
		return;
	}
	EXPECT_WARN_BEGIN("detach");
	sheaf_cache_destroy(sc);
	EXPECT_WARN_END("detach");

	/* Kept for the one sheaf out, which still works. */
	CHECK_EQ(atomic_read(&sc->dead_out), 1);
	obj = sheaf_alloc(sc, GFP_KERNEL, sheaf);
	CHECK(obj);
	kmem_cache_free(s, obj);
	/* The last one back frees the layer and destroys the cache. */
	sheaf_return(sc, GFP_KERNEL, sheaf);
}

/* ---- stress ------------------------------------------------------------------- */

#define XFER_SLOTS	256
#define CHURN_CACHES	3	/* kmem_caches layers come and go over */
#define CHURN_EVERY	16	/* a worker's rounds per attach/detach cycle */

static char figures[256];
module_param_string(figures, figures, sizeof(figures), 0444);
MODULE_PARM_DESC(figures, "what the case measured: \"name: value\", \"; \" between");

/* What workers did through one layer; exact once they are done. */
struct stress_count {
	long allocs;		/* objects the test got */
	long frees;		/* objects the test freed */
	long ops;		/* API calls */
	long alloc_fails;
	long prefill_fails;
	long refill_fails;
};

struct stress {
	struct sheaf_cache *sc;		/* every worker's, cross-CPU frees */
	struct kmem_cache *churn[CHURN_CACHES];
	spinlock_t lock;		/* xfer, total */
	void *xfer[XFER_SLOTS];		/* objects passed between CPUs */
	struct stress_count total;	/* through @sc */
	struct stress_count churned;	/* through the other layers */
	unsigned long deadline;
	bool faults;			/* allocations are made to fail */
	atomic_long_t cycles;		/* layers attached and detached */
	atomic_t next_layer;
	atomic_t running;
	struct completion done;
};

static void stress_add(struct stress_count *to, const struct stress_count *c)
{
	to->allocs += c->allocs;
	to->frees += c->frees;
	to->ops += c->ops;
	to->alloc_fails += c->alloc_fails;
	to->prefill_fails += c->prefill_fails;
	to->refill_fails += c->refill_fails;
}

static void stress_xfer(struct stress *st, void **obj)
{
	unsigned int slot = get_random_u32() % XFER_SLOTS;

	spin_lock(&st->lock);
	swap(st->xfer[slot], *obj);
	spin_unlock(&st->lock);
}

/* Fault injection's task filter fails this thread's allocations only. */
static void stress_make_it_fail(void)
{
#ifdef CONFIG_FAULT_INJECTION
	current->make_it_fail = 1;
#endif
}

/* Any node with memory: most are local, some remote. */
static int stress_node(void)
{
	int node = get_random_u32() % nr_node_ids;

	return node_state(node, N_MEMORY) ? node : numa_mem_id();
}

/* One object by one of the three allocation calls; NULL only if allowed. */
static void *stress_alloc(struct stress *st, struct sheaf_cache *sc,
			  unsigned int i, struct stress_count *c)
{
	gfp_t gfp = i & 1 ? GFP_ATOMIC : GFP_KERNEL;
	void *obj;

	if (i % 5 == 4)
		obj = sheaf_cache_alloc_node(sc, gfp, stress_node());
	else
		obj = sheaf_cache_alloc(sc, gfp);
	c->ops++;
	if (obj) {
		c->allocs++;
	} else {
		c->alloc_fails++;
		CHECK(st->faults || gfp == GFP_ATOMIC);
	}
	return obj;
}

/* Freed now, or after a grace period (@rcu). */
static void stress_free(struct sheaf_cache *sc, void *obj, bool rcu,
			struct stress_count *c)
{
	c->ops++;
	if (!obj)
		return;
	if (rcu)
		sheaf_cache_free_rcu(sc, obj);
	else
		sheaf_cache_free(sc, obj);
	c->frees++;
}

/* The objects a prefilled sheaf holds, as a fingerprint. */
static unsigned long sheaf_fingerprint(const struct sheaf *sheaf)
{
	unsigned long sum = sheaf->size;
	unsigned int i;

	for (i = 0; i < sheaf->size; i++)
		sum = sum * 31 + (unsigned long)sheaf->objects[i];
	return sum;
}

/*
 * -ENOMEM from a refill leaves the caller's sheaf exactly as it was; on
 * success it holds at least @want.
 */
static void stress_refill(struct stress *st, struct sheaf_cache *sc,
			  struct sheaf **sheafp, unsigned int want,
			  struct stress_count *c)
{
	unsigned long before = sheaf_fingerprint(*sheafp);
	struct sheaf *old = *sheafp;
	int err;

	err = sheaf_refill(sc, GFP_KERNEL, sheafp, want);
	c->ops++;
	if (!err) {
		CHECK(sheaf_size(*sheafp) >= want);
		return;
	}
	c->refill_fails++;
	CHECK(st->faults);
	CHECK_EQ(err, -ENOMEM);
	CHECK(*sheafp == old);
	CHECK_EQ(sheaf_fingerprint(*sheafp), before);
}

/*
 * Prefill, take what was asked for (never failing), maybe refill, return.
 * A prefill gives NULL or a sheaf with at least the size asked for.
 */
static void stress_prefilled(struct stress *st, struct sheaf_cache *sc,
			     struct stress_count *c, bool xfer)
{
	unsigned int k = get_random_u32() % 8, i;
	struct sheaf *sheaf;
	void *obj;

	sheaf = sheaf_prefill(sc, k & 4 ? GFP_NOWAIT : GFP_KERNEL, k + 1);
	c->ops++;
	if (!sheaf) {
		c->prefill_fails++;
		CHECK(st->faults || (k & 4));
		return;
	}
	CHECK(sheaf_size(sheaf) >= k + 1);
	for (i = 0; i <= k; i++) {
		obj = sheaf_alloc(sc, i & 1 ? __GFP_ZERO : 0, sheaf);
		c->ops++;
		if (!CHECK(obj))
			break;
		c->allocs++;
		if (xfer)
			stress_xfer(st, &obj);
		stress_free(sc, obj, false, c);
	}
	if (k & 1)
		stress_refill(st, sc, &sheaf, k * CAPACITY / 2 + 1, c);
	sheaf_return(sc, k & 2 ? GFP_NOWAIT : GFP_KERNEL, sheaf);
	c->ops++;
}

#define STRESS_BULK	(2 * CAPACITY)

/*
 * A bulk allocation of up to two sheaves' worth, all or nothing, then one
 * bulk free; some entries are traded with other CPUs first, NULL among
 * them, which the bulk free skips.
 */
static void stress_bulk(struct stress *st, struct sheaf_cache *sc,
			struct stress_count *c, bool xfer)
{
	unsigned int n = 1 + get_random_u32() % STRESS_BULK, i, freed = 0;
	gfp_t gfp = n & 1 ? GFP_ATOMIC : GFP_KERNEL;
	void *objs[STRESS_BULK];

	c->ops++;
	if (!sheaf_cache_alloc_bulk(sc, gfp, n, objs)) {
		c->alloc_fails++;
		CHECK(st->faults || gfp == GFP_ATOMIC);
		return;
	}
	c->allocs += n;
	for (i = 0; i < n; i++) {
		if (xfer && i % 4 == 0)
			stress_xfer(st, &objs[i]);
		freed += !!objs[i];
	}
	sheaf_cache_free_bulk(sc, n, objs);
	c->ops++;
	c->frees += freed;
}

static void stress_mix(struct stress *st, struct sheaf_cache *sc, void **objs,
		       unsigned int n, struct stress_count *c, bool xfer)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		objs[i] = stress_alloc(st, sc, i, c);
	stress_prefilled(st, sc, c, xfer);
	stress_bulk(st, sc, c, xfer);
	for (i = 0; i < n; i++) {
		if (xfer && i % 3 == 0)
			stress_xfer(st, &objs[i]);
		stress_free(sc, objs[i], i % 3 == 1, c);
	}
}

/*
 * Every object the test got through @sc was freed exactly once, the layer
 * counted as many handed out as given back, and after a shrink it holds
 * nothing and owes the slab nothing.  @sc must be idle.
 */
static void stress_conserved(struct sheaf_cache *sc,
			     const struct stress_count *c)
{
	long out, back;
	unsigned int tries;

	/*
	 * Every object freed with sheaf_cache_free_rcu() is done after the
	 * barrier: back through an rcu sheaf, or to the slab by a fallback.
	 */
	sheaf_cache_rcu_barrier(sc);
	CHECK_EQ(stat(sc, RCU_DONE), stat(sc, FREE_RCU_SHEAF) +
		 stat(sc, FREE_RCU_SHEAF_FAIL));
	CHECK_EQ(stat(sc, RCU_LOST), 0);
	out = stat(sc, ALLOC_CPU_SHEAF) + stat(sc, ALLOC_SLAB) +
	      stat(sc, ALLOC_FROM_SHEAF);
	back = stat(sc, FREE_CPU_SHEAF) + stat(sc, FREE_RCU_SHEAF) +
	       stat(sc, FREE_SLAB);

	/*
	 * The script shrinks and retunes every cache meanwhile: a flush it
	 * started holds objects out of the counters until it ends.
	 */
	for (tries = 0; tries < 50; tries++) {
		sheaf_cache_shrink(sc);
		if (!sheaf_cache_nr_cached(sc) && !slab_outstanding(sc))
			break;
		msleep(20);
	}
	if (tries)
		pr_info("stress: %s settled after %u shrinks\n", sc->name, tries + 1);
	CHECK_EQ(c->frees, c->allocs);
	/*
	 * sheaf_cache_alloc_node() gives back a remote object a sheaf held
	 * and asks the slab again: one more out and back the test never saw.
	 */
	CHECK(out >= c->allocs);
	CHECK_EQ(back - c->frees, out - c->allocs);
	CHECK_EQ(stat(sc, PREFILLED), stat(sc, RETURNED));
	CHECK_EQ(stat(sc, MISUSE), 0);
	CHECK_EQ(sheaf_cache_nr_cached(sc), 0);
	CHECK_EQ(slab_outstanding(sc), 0);
}

/*
 * A layer of this worker's own over one of the shared caches, used,
 * checked and detached while the other workers, CPU hotplug and the
 * script's tuning and shrinking go on.
 */
static void stress_churn(struct stress *st, void **objs, unsigned int nr_objs)
{
	struct sheaf_cache_args args = { .capacity = 1 + get_random_u32() % 64 };
	struct kmem_cache *s = st->churn[get_random_u32() % CHURN_CACHES];
	struct stress_count c = {};
	struct sheaf_cache *sc;
	char name[24];
	unsigned int r;

	snprintf(name, sizeof(name), "t_stress_%d",
		 atomic_inc_return(&st->next_layer));
	sc = sheaf_cache_attach(s, name, &args);
	if (IS_ERR(sc)) {
		CHECK(st->faults && PTR_ERR(sc) == -ENOMEM);
		return;
	}
	for (r = 0; r < 4; r++)
		stress_mix(st, sc, objs, get_random_u32() % nr_objs, &c, false);
	stress_conserved(sc, &c);
	sheaf_cache_detach(sc);
	c.ops += 3;
	spin_lock(&st->lock);
	stress_add(&st->churned, &c);
	spin_unlock(&st->lock);
	atomic_long_inc(&st->cycles);
}

static int stress_thread(void *arg)
{
	struct stress *st = arg;
	struct stress_count c = {};
	unsigned long rounds = 0;
	void *objs[100];

	if (st->faults)
		stress_make_it_fail();
	while (time_before(jiffies, st->deadline) && !kthread_should_stop()) {
		if (++rounds % CHURN_EVERY == 0)
			stress_churn(st, objs, ARRAY_SIZE(objs));
		else
			stress_mix(st, st->sc, objs,
				   get_random_u32() % ARRAY_SIZE(objs), &c, true);
		cond_resched();
	}
	spin_lock(&st->lock);
	stress_add(&st->total, &c);
	spin_unlock(&st->lock);
	if (atomic_dec_and_test(&st->running))
		complete(&st->done);
	return 0;
}

/*
 * sheafmod's own failure injection, on top of the kernel's: the next
 * allocation the layer makes for the shared cache fails, again and again
 * until the workers are done.  Returns how many failed.
 */
static unsigned long stress_inject(struct stress *st)
{
	unsigned long armed = 0;

	while (!wait_for_completion_timeout(&st->done, msecs_to_jiffies(2))) {
		if (!atomic_cmpxchg(&st->sc->fail_allocs, 0, 1))
			armed++;
	}
	return armed - atomic_xchg(&st->sc->fail_allocs, 0);
}

/* An unmergeable cache, so that its destruction checks it is empty. */
static struct kmem_cache *stress_cache(const char *name)
{
	return kmem_cache_create_usercopy(name, OBJ_SIZE, 0, 0, 0, OBJ_SIZE,
					  NULL);
}

static bool armed;
module_param(armed, bool, 0600);
MODULE_PARM_DESC(armed, "stress_faults: the script has armed failslab on its caches");

/*
 * The slab refuses SLAB_FAILSLAB at creation: the script sets it through
 * /sys/kernel/slab/<cache>/failslab once the caches exist, then says so.
 */
static void stress_wait_armed(void)
{
	unsigned int waited;

	if (!IS_ENABLED(CONFIG_FAILSLAB))
		return;
	pr_info("stress_faults: waiting for failslab on the caches\n");
	for (waited = 0; waited < 60000 && !READ_ONCE(armed); waited += 20)
		msleep(20);
	CHECK(READ_ONCE(armed));
}

static int stress_setup(struct stress *st, struct fixture *f, bool faults)
{
	struct sheaf_cache_args args = { .capacity = CAPACITY };
	const char *main_name = faults ? "t_faults" : "t_stress";
	char name[16];
	unsigned int i;

	for (i = 0; i < CHURN_CACHES; i++) {
		snprintf(name, sizeof(name), "t_churn%u", i);
		st->churn[i] = stress_cache(name);
		if (!CHECK(st->churn[i]))
			goto fail;
	}
	f->s = stress_cache(main_name);
	if (!CHECK(f->s))
		goto fail;
	f->sc = sheaf_cache_attach(f->s, main_name, &args);
	if (!CHECK(!IS_ERR(f->sc))) {
		kmem_cache_destroy(f->s);
		goto fail;
	}
	st->sc = f->sc;
	st->faults = faults;
	spin_lock_init(&st->lock);
	init_completion(&st->done);
	st->deadline = jiffies + seconds * HZ;
	return 0;
fail:
	for (i = 0; i < CHURN_CACHES; i++)
		kmem_cache_destroy(st->churn[i]);
	return -ENOMEM;
}

static void stress_teardown(struct stress *st, struct fixture *f)
{
	unsigned int i;

	for (i = 0; i < CHURN_CACHES; i++)
		kmem_cache_destroy(st->churn[i]);
	teardown(f);
}

static unsigned int stress_start(struct stress *st)
{
	unsigned int cpu, nthreads = 0;
	struct task_struct *t;

	atomic_set(&st->running, 1);
	for_each_online_cpu(cpu) {
		atomic_inc(&st->running);
		t = kthread_run(stress_thread, st, "sheaf_stress/%u", cpu);
		if (IS_ERR(t)) {
			atomic_dec(&st->running);
			continue;
		}
		nthreads++;
	}
	if (atomic_dec_and_test(&st->running))
		complete(&st->done);
	return nthreads;
}

static void stress_run(bool faults)
{
	unsigned long injected = 0;
	struct stress_count all;
	unsigned int nthreads, i;
	struct stress *st;
	struct fixture f;

	st = kzalloc(sizeof(*st), GFP_KERNEL);
	if (!CHECK(st))
		return;
	if (stress_setup(st, &f, faults))
		goto out;
	if (faults)
		stress_wait_armed();
	nthreads = stress_start(st);
	if (faults)
		injected = stress_inject(st);
	else
		wait_for_completion(&st->done);
	for (i = 0; i < XFER_SLOTS; i++)
		stress_free(f.sc, st->xfer[i], false, &st->total);

	CHECK(nthreads >= 1);
	stress_conserved(f.sc, &st->total);
	if (faults)
		CHECK(injected > 0);
	all = st->churned;
	stress_add(&all, &st->total);
	snprintf(figures, sizeof(figures),
		 "operations: %ld; objects: %ld; attach/detach cycles: %ld; prefill failures: %ld; refill failures: %ld; allocation failures: %ld; layer faults injected: %lu",
		 all.ops, all.allocs, atomic_long_read(&st->cycles),
		 all.prefill_fails, all.refill_fails, all.alloc_fails, injected);
	pr_info("stress: %u threads, %s\n", nthreads, figures);
	CHECK(atomic_long_read(&st->cycles) >= 1);
	stress_teardown(st, &f);
out:
	kfree(st);
}

/*
 * One thread per CPU mixes every call with cross-CPU frees, and attaches,
 * uses and detaches layers over three more caches, while the test script
 * takes CPUs offline and online, shrinks and retunes every cache.
 */
static void test_stress(void)
{
	stress_run(false);
}

/*
 * The same with allocations failing: the kernel's failslab (on the test's
 * caches) and fail_page_alloc (on the workers), set up by the test script
 * at several probabilities, and sheafmod's own injection.  Prefills give
 * NULL or enough, prefilled sheaves never fail, a failed refill leaves the
 * sheaf as it was, and every object is accounted for.
 */
static const char no_fault_injection[] =
	"no CONFIG_FAILSLAB/FAIL_PAGE_ALLOC/FAULT_INJECTION_DEBUG_FS: sheafmod's faults only";

static void test_stress_faults(void)
{
	stress_run(true);
	if (!IS_ENABLED(CONFIG_FAILSLAB) || !IS_ENABLED(CONFIG_FAIL_PAGE_ALLOC) ||
	    !IS_ENABLED(CONFIG_FAULT_INJECTION_DEBUG_FS))
		mark_skipped(no_fault_injection);
}

/* ---- security ----------------------------------------------------------------- */

/* Objects taken from the sheaf cache, then checked and freed together. */
struct taken {
	void *objs[64];
	unsigned int n;
	unsigned int checked;	/* objs[] before this were checked */
};

static void take(struct taken *t, void *obj)
{
	if (CHECK(obj) && !WARN_ON(t->n == ARRAY_SIZE(t->objs)))
		t->objs[t->n++] = obj;
}

/* Each object reads @want throughout; then it is dirtied with @dirty. */
static void check_taken(struct taken *t, u8 want, u8 dirty, const char *path)
{
	unsigned int i, bad = 0;

	for (i = t->checked; i < t->n; i++) {
		if (!all_bytes(t->objs[i], want))
			bad++;
		memset(t->objs[i], dirty, OBJ_SIZE);
	}
	if (bad)
		pr_err("init_paths: %u of %u objects from %s do not read 0x%02x\n",
		       bad, t->n - t->checked, path, want);
	t->checked = t->n;
	CHECK_EQ(bad, 0);
}

static void free_taken(struct sheaf_cache *sc, struct taken *t)
{
	free_all(sc, t->objs, t->n);
	t->n = 0;
	t->checked = 0;
}

/* @n objects from a prefilled sheaf, without __GFP_ZERO. */
static void take_from(struct fixture *f, struct taken *t, struct sheaf *sheaf,
		      unsigned int n)
{
	while (n--)
		take(t, sheaf_alloc(f->sc, 0, sheaf));
}

/*
 * Objects from every path of one CPU: bulk refills from the slab, then
 * (after they are dirtied and freed) main, the spare and the barn, and
 * after another round prefilled sheaves made of the spare and of the
 * barn's, a refill and an oversize sheaf.  With @dirty == @want (a
 * constructor's state) objects are not changed.
 */
static void init_paths_on(struct fixture *f, u8 want, u8 dirty)
{
	unsigned int cpu = smp_processor_id(), nr_full, nr_empty, i;
	struct sheaf_pcpu *pcs = pcs_of(f->sc, cpu);
	struct sheaf *spare, *barn;
	struct taken t = {};
	unsigned long got;

	/* 32 objects, refilled from the slab in bulk 8 at a time. */
	for (i = 0; i < 32; i++)
		take(&t, sheaf_cache_alloc(f->sc, GFP_KERNEL));
	CHECK(stat(f->sc, SHEAF_REFILL) >= 32);
	check_taken(&t, want, dirty, "bulk refills");
	free_taken(f->sc, &t);

	/* Parked in main, the spare and two full sheaves in the barn. */
	barn_of(f->sc, cpu, &nr_full, &nr_empty);
	CHECK_EQ(pcs->main->size, 8);
	CHECK(pcs->spare && pcs->spare->size == 8);
	CHECK_EQ(nr_full, 2);
	for (i = 0; i < 16; i++)
		take(&t, sheaf_cache_alloc(f->sc, GFP_KERNEL));
	check_taken(&t, want, dirty, "main and spare");
	got = stat(f->sc, BARN_GET);
	for (i = 0; i < 8; i++)
		take(&t, sheaf_cache_alloc(f->sc, GFP_KERNEL));
	CHECK_EQ(stat(f->sc, BARN_GET), got + 1);
	check_taken(&t, want, dirty, "the barn");
	/* Dirtied and parked again: main, spare, the barn's full sheaves. */
	free_taken(f->sc, &t);
	CHECK(pcs->spare && pcs->spare->size == 8);

	spare = sheaf_prefill(f->sc, GFP_KERNEL, 8);
	got = stat(f->sc, BARN_GET);
	barn = sheaf_prefill(f->sc, GFP_KERNEL, 8);
	if (CHECK(spare && barn)) {
		CHECK_EQ(stat(f->sc, BARN_GET), got + 1);
		take_from(f, &t, spare, 8);
		check_taken(&t, want, dirty, "a prefilled sheaf (the spare)");
		take_from(f, &t, barn, 8);
		check_taken(&t, want, dirty, "a prefilled sheaf (the barn's)");
		CHECK_EQ(sheaf_refill(f->sc, GFP_KERNEL, &spare, 4), 0);
		take_from(f, &t, spare, 4);
		check_taken(&t, want, dirty, "a refilled sheaf");
	}
	if (spare)
		sheaf_return(f->sc, GFP_KERNEL, spare);
	if (barn)
		sheaf_return(f->sc, GFP_KERNEL, barn);

	spare = sheaf_prefill(f->sc, GFP_KERNEL, 24);
	if (CHECK(spare)) {
		take_from(f, &t, spare, 24);
		check_taken(&t, want, dirty, "an oversize sheaf");
		sheaf_return(f->sc, GFP_KERNEL, spare);
	}
	free_taken(f->sc, &t);
}

/*
 * Under init_on_alloc or init_on_free, objects come out of every path as
 * the slab would give them: zeroed, and constructed objects untouched.
 */
static void test_init_paths(void)
{
	bool init = want_init_on_alloc(GFP_KERNEL) || want_init_on_free();
	struct sheaf_cache_args args = {
		.capacity = 8, .barn_max_full = 4, .barn_max_empty = 4,
	};
	struct fixture f;

	if (!init) {
		mark_skipped("neither init_on_alloc nor init_on_free is on");
		return;
	}
	snprintf(figures, sizeof(figures), "init_on_alloc: %d; init_on_free: %d",
		 want_init_on_alloc(GFP_KERNEL), want_init_on_free());

	if (setup_full(&f, "t_init_paths", &args, NULL))
		return;
	migrate_disable();
	init_paths_on(&f, 0, 0xa5);
	migrate_enable();
	teardown(&f);

	args.flags = SHEAF_CACHE_CTOR;
	if (setup_full(&f, "t_init_ctor", &args, obj_ctor))
		return;
	migrate_disable();
	init_paths_on(&f, 0xc7, 0xc7);
	migrate_enable();
	teardown(&f);
}

/* Kept from the case's load to the module's unload, for the script. */
static struct sheaf_cache *kept_cache;

/*
 * A cache the script inspects while the module stays loaded: its sysfs
 * files' modes, what an unprivileged user can read and write, and every
 * output scanned for kernel pointers.  Its counters are all non-zero.
 */
static void test_sysfs_access(void)
{
	struct sheaf *sheaf;
	void *obj;

	kept_cache = sheaf_cache_create("t_access", OBJ_SIZE, 0, 0, NULL, NULL);
	if (!CHECK(!IS_ERR(kept_cache))) {
		kept_cache = NULL;
		return;
	}
	obj = sheaf_cache_alloc(kept_cache, GFP_KERNEL);
	sheaf_cache_free(kept_cache, obj);
	sheaf = sheaf_prefill(kept_cache, GFP_KERNEL, 4);
	if (CHECK(sheaf)) {
		obj = sheaf_alloc(kept_cache, 0, sheaf);
		sheaf_cache_free(kept_cache, obj);
		sheaf_return(kept_cache, GFP_KERNEL, sheaf);
	}
}

/* ---- bulk calls ------------------------------------------------------------- */

#define BULK_MAX	(3 * CAPACITY)

/* Every entry an object, no two the same. */
static bool bulk_distinct(void **p, unsigned int n)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		if (!p[i])
			return false;
		for (j = 0; j < i; j++)
			if (p[i] == p[j])
				return false;
	}
	return true;
}

/* Every object of @a (@n long) is among the @m of @b. */
static bool bulk_subset(void **a, unsigned int n, void **b, unsigned int m)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		for (j = 0; j < m && b[j] != a[i]; j++)
			;
		if (j == m)
			return false;
	}
	return true;
}

static void bulk_fill(void **p, unsigned int n, u8 byte)
{
	while (n--)
		memset(p[n], byte, OBJ_SIZE);
}

static bool bulk_all_bytes(void **p, unsigned int n, u8 byte)
{
	while (n--)
		if (!all_bytes(p[n], byte))
			return false;
	return true;
}

/*
 * One size on one CPU with empty sheaves: the objects come from the slab,
 * distinct and writable; freed, they fill the sheaves (also beyond one
 * sheaf: the spare and the barn take the rest); allocated again they are
 * the same objects, from the sheaves, zeroed for __GFP_ZERO.
 */
static void bulk_round_trip(struct sheaf_cache *sc, unsigned int n)
{
	static void *p[BULK_MAX], *freed[BULK_MAX];
	unsigned long slab = stat(sc, ALLOC_SLAB);
	unsigned long in = stat(sc, FREE_CPU_SHEAF);
	unsigned long out = stat(sc, ALLOC_CPU_SHEAF);

	migrate_disable();
	if (!CHECK_EQ(sheaf_cache_alloc_bulk(sc, GFP_KERNEL, n, p), n))
		goto out;
	CHECK(bulk_distinct(p, n));
	CHECK_EQ(stat(sc, ALLOC_SLAB), slab + n);
	bulk_fill(p, n, 0xa5);
	memcpy(freed, p, n * sizeof(*p));
	sheaf_cache_free_bulk(sc, n, p);
	CHECK_EQ(stat(sc, FREE_CPU_SHEAF), in + n);
	CHECK_EQ(sheaf_cache_nr_cached(sc), n);

	if (!CHECK_EQ(sheaf_cache_alloc_bulk(sc, GFP_KERNEL | __GFP_ZERO, n, p), n))
		goto out;
	CHECK_EQ(stat(sc, ALLOC_CPU_SHEAF), out + n);
	CHECK_EQ(stat(sc, ALLOC_SLAB), slab + n);
	CHECK(bulk_distinct(p, n));
	CHECK(bulk_subset(p, n, freed, n));
	CHECK(bulk_all_bytes(p, n, 0));
	sheaf_cache_free_bulk(sc, n, p);
out:
	migrate_enable();
	sheaf_cache_shrink(sc);
}

/*
 * Sizes 0, 1, the capacity and beyond it; NULL entries in a free; both
 * calls with interrupts off.
 */
static void test_bulk(void)
{
	static const unsigned int sizes[] = { 1, CAPACITY, BULK_MAX };
	static void *p[BULK_MAX];
	unsigned long flags, in;
	struct fixture f;
	bool off = true;
	unsigned int i;
	void *held[4];

	if (setup(&f, "t_bulk", CAPACITY))
		return;
	/* Size 0 allocates nothing, touches nothing, and is no misuse. */
	p[0] = &f;
	CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 0, p), 0);
	CHECK(p[0] == &f);
	sheaf_cache_free_bulk(f.sc, 0, p);
	CHECK_EQ(stat(f.sc, ALLOC_BULK) + stat(f.sc, FREE_BULK), 0);
	CHECK_EQ(stat(f.sc, MISUSE), 0);

	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		bulk_round_trip(f.sc, sizes[i]);
	CHECK_EQ(stat(f.sc, ALLOC_BULK), 2 * ARRAY_SIZE(sizes));
	CHECK_EQ(stat(f.sc, FREE_BULK), 2 * ARRAY_SIZE(sizes));

	/* NULL entries of a free are skipped. */
	if (CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 4, held), 4)) {
		void *with_null[] = { NULL, held[0], NULL, held[1], held[2],
				      held[3], NULL };

		in = stat(f.sc, FREE_CPU_SHEAF) + stat(f.sc, FREE_SLAB);
		sheaf_cache_free_bulk(f.sc, ARRAY_SIZE(with_null), with_null);
		CHECK_EQ(stat(f.sc, FREE_CPU_SHEAF) + stat(f.sc, FREE_SLAB),
			 in + 4);
	}

	/* Interrupts off: the slab's part goes object by object. */
	local_irq_save(flags);
	i = sheaf_cache_alloc_bulk(f.sc, GFP_ATOMIC, BULK_MAX, p);
	off &= irqs_disabled();
	if (i == BULK_MAX)
		sheaf_cache_free_bulk(f.sc, BULK_MAX, p);
	off &= irqs_disabled();
	local_irq_restore(flags);
	CHECK_EQ(i, BULK_MAX);
	CHECK(off);
	CHECK_EQ(stat(f.sc, MISUSE), 0);
	teardown(&f);
}

/*
 * A partly filled main serves what it holds and the slab the rest; a free
 * that finds no room (the spare full, no empty sheaf to be had) sends the
 * rest to the slab.
 */
static void test_bulk_partial(void)
{
	enum { BULK_N = 2 * CAPACITY + 8 };
	static void *p[BULK_MAX], *kept[8];
	unsigned long sheaf_out, slab_out, sheaf_in, slab_in;
	struct sheaf_pcpu *pcs;
	struct fixture f;

	if (setup(&f, "t_bulk_partial", CAPACITY))
		return;
	migrate_disable();
	pcs = this_cpu_ptr(f.sc->pcpu);
	if (!CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 8, kept), 8))
		goto out;
	sheaf_cache_free_bulk(f.sc, 8, kept);
	if (!CHECK_EQ(pcs->main->size, 8) || !CHECK(!pcs->spare))
		goto out;
	memcpy(kept, pcs->main->objects, sizeof(kept));

	sheaf_out = stat(f.sc, ALLOC_CPU_SHEAF);
	slab_out = stat(f.sc, ALLOC_SLAB);
	if (!CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 20, p), 20))
		goto out;
	CHECK_EQ(stat(f.sc, ALLOC_CPU_SHEAF), sheaf_out + 8);
	CHECK_EQ(stat(f.sc, ALLOC_SLAB), slab_out + 12);
	CHECK_EQ(pcs->main->size, 0);
	CHECK(bulk_subset(kept, 8, p, 20));
	CHECK(bulk_distinct(p, 20));

	/* 20 fit main. */
	sheaf_cache_free_bulk(f.sc, 20, p);
	CHECK_EQ(pcs->main->size, 20);

	/* Main fills up, the full one becomes the spare, 4 go to a new main. */
	if (!CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, BULK_N, p),
		      BULK_N))
		goto out;
	sheaf_cache_free_bulk(f.sc, CAPACITY + 4, p);
	CHECK_EQ(pcs->main->size, 4);
	CHECK(pcs->spare && pcs->spare->size == CAPACITY);

	/* Main fills up; the spare is full and no empty sheaf can be had. */
	CHECK_EQ(sheaf_cache_set_barn_limits(f.sc, 0, 0), 0);
	sheaf_in = stat(f.sc, FREE_CPU_SHEAF);
	slab_in = stat(f.sc, FREE_SLAB);
	atomic_set(&f.sc->fail_allocs, 1);
	sheaf_cache_free_bulk(f.sc, BULK_N - CAPACITY - 4, p + CAPACITY + 4);
	CHECK_EQ(atomic_read(&f.sc->fail_allocs), 0);
	atomic_set(&f.sc->fail_allocs, 0);
	CHECK_EQ(stat(f.sc, FREE_CPU_SHEAF), sheaf_in + CAPACITY - 4);
	CHECK_EQ(stat(f.sc, FREE_SLAB), slab_in + BULK_N - 2 * CAPACITY);
	CHECK_EQ(pcs->main->size, CAPACITY);
out:
	migrate_enable();
	teardown(&f);
}

/*
 * A bulk allocation the slab cannot complete returns 0 and leaves
 * everything as it was: the objects it took from the sheaves are back,
 * nothing is owed to the slab, and the next call gets them again.
 */
static void test_bulk_failure(void)
{
	struct sheaf_cache_args pass = {
		.capacity = CAPACITY, .flags = SHEAF_CACHE_PASSTHROUGH,
	};
	static void *p[BULK_MAX], *kept[10];
	unsigned long cached, owed;
	struct sheaf_pcpu *pcs;
	struct fixture f, g;

	if (setup(&f, "t_bulk_fail", CAPACITY))
		return;
	migrate_disable();
	pcs = this_cpu_ptr(f.sc->pcpu);
	if (!CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 10, kept), 10))
		goto out;
	sheaf_cache_free_bulk(f.sc, 10, kept);
	memcpy(kept, pcs->main->objects, sizeof(kept));
	cached = sheaf_cache_nr_cached(f.sc);
	owed = slab_outstanding(f.sc);

	atomic_set(&f.sc->fail_allocs, 1);
	p[0] = NULL;
	CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 50, p), 0);
	CHECK_EQ(atomic_read(&f.sc->fail_allocs), 0);
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), cached);
	CHECK_EQ(slab_outstanding(f.sc), owed);
	CHECK_EQ(pcs->main->size, 10);
	CHECK(!memcmp(pcs->main->objects, kept, sizeof(kept)));

	/* The slab's part of a bulk allocation larger than any sheaf. */
	atomic_set(&f.sc->fail_allocs, 1);
	CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, BULK_MAX, p), 0);
	atomic_set(&f.sc->fail_allocs, 0);
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), cached);
	CHECK_EQ(slab_outstanding(f.sc), owed);

	if (CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 50, p), 50)) {
		CHECK(bulk_subset(kept, 10, p, 50));
		sheaf_cache_free_bulk(f.sc, 50, p);
	}
out:
	migrate_enable();
	teardown(&f);

	/* All from the slab, failing: nothing owed either. */
	if (setup_full(&g, "t_bulk_fail_pass", &pass, NULL))
		return;
	atomic_set(&g.sc->fail_allocs, 1);
	CHECK_EQ(sheaf_cache_alloc_bulk(g.sc, GFP_KERNEL, 20, p), 0);
	atomic_set(&g.sc->fail_allocs, 0);
	CHECK_EQ(slab_outstanding(g.sc), 0);
	teardown(&g);
}

struct bulk_on_cpu {
	struct sheaf_cache *sc;
	void **objs;
	unsigned int n;
};

static long bulk_alloc_on_cpu(void *arg)
{
	struct bulk_on_cpu *bc = arg;

	if (sheaf_cache_alloc_bulk(bc->sc, GFP_KERNEL, bc->n, bc->objs) != bc->n)
		return -ENOMEM;
	return bulk_distinct(bc->objs, bc->n) ? 0 : -EINVAL;
}

static long bulk_free_on_cpu(void *arg)
{
	struct bulk_on_cpu *bc = arg;

	sheaf_cache_free_bulk(bc->sc, bc->n, bc->objs);
	return 0;
}

/* A CPU other than @a: on @a's node if @same_node, else on another. */
static unsigned int bulk_other_cpu(unsigned int a, bool same_node)
{
	unsigned int cpu;

	for_each_online_cpu(cpu)
		if (cpu != a &&
		    (cpu_to_mem(cpu) == cpu_to_mem(a)) == same_node)
			return cpu;
	return nr_cpu_ids;
}

/*
 * Bulk-allocated on one CPU, bulk-freed on another: into that CPU's
 * sheaves on the same node, to the slab from another node.
 */
static void test_bulk_cross_cpu(void)
{
	unsigned int a = cpumask_first(cpu_online_mask);
	unsigned int b = bulk_other_cpu(a, true);
	unsigned int c = bulk_other_cpu(a, false);
	static void *objs[BULK_MAX];
	struct bulk_on_cpu bc = { .objs = objs, .n = BULK_MAX };
	unsigned long in, remote;
	struct fixture f;

	if (b >= nr_cpu_ids) {
		mark_skipped("needs two online CPUs on one node");
		return;
	}
	if (setup(&f, "t_bulk_cross", CAPACITY))
		return;
	bc.sc = f.sc;
	if (!CHECK_EQ(work_on_cpu(a, bulk_alloc_on_cpu, &bc), 0))
		goto out;
	in = stat(f.sc, FREE_CPU_SHEAF);
	CHECK_EQ(work_on_cpu(b, bulk_free_on_cpu, &bc), 0);
	CHECK_EQ(stat(f.sc, FREE_CPU_SHEAF), in + BULK_MAX);
	CHECK_EQ(pcs_of(f.sc, a)->main->size, 0);
	CHECK(pcs_of(f.sc, b)->main->size > 0);

	/* And back: what b's sheaves hold serves b. */
	if (!CHECK_EQ(work_on_cpu(b, bulk_alloc_on_cpu, &bc), 0))
		goto out;
	CHECK_EQ(work_on_cpu(a, bulk_free_on_cpu, &bc), 0);

	if (c < nr_cpu_ids && node_state(cpu_to_mem(c), N_MEMORY)) {
		if (!CHECK_EQ(work_on_cpu(a, bulk_alloc_on_cpu, &bc), 0))
			goto out;
		remote = stat(f.sc, FREE_REMOTE);
		CHECK_EQ(work_on_cpu(c, bulk_free_on_cpu, &bc), 0);
		CHECK_EQ(stat(f.sc, FREE_REMOTE), remote + BULK_MAX);
	}
out:
	teardown(&f);
}

/*
 * A NULL array and sizes beyond INT_MAX warn, are counted, and allocate
 * or free nothing; in verify mode a bulk free catches a double free.
 */
static void test_bulk_misuse(void)
{
	struct sheaf_cache_args args = {
		.capacity = CAPACITY, .flags = SHEAF_CACHE_VERIFY,
	};
	size_t huge = (size_t)INT_MAX + 1;
	void *p[4] = { NULL }, *again[1];
	struct fixture f, v;

	if (setup(&f, "t_bulk_misuse", CAPACITY))
		return;
	EXPECT_WARN_BEGIN("bulk_misuse");
	CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, 4, NULL), 0);
	CHECK_EQ(sheaf_cache_alloc_bulk(f.sc, GFP_KERNEL, huge, p), 0);
	CHECK(!p[0] && !p[3]);
	sheaf_cache_free_bulk(f.sc, 4, NULL);
	sheaf_cache_free_bulk(f.sc, huge, p);
	EXPECT_WARN_END("bulk_misuse");
	CHECK_EQ(stat(f.sc, MISUSE), 4);
	CHECK_EQ(stat(f.sc, ALLOC_BULK) + stat(f.sc, FREE_BULK), 0);
	CHECK_EQ(slab_outstanding(f.sc), 0);
	teardown(&f);

	if (setup_full(&v, "t_bulk_verify", &args, NULL))
		return;
	migrate_disable();
	if (CHECK_EQ(sheaf_cache_alloc_bulk(v.sc, GFP_KERNEL, 4, p), 4)) {
		again[0] = p[2];
		sheaf_cache_free_bulk(v.sc, 4, p);
		EXPECT_WARN_BEGIN("bulk_verify");
		sheaf_cache_free_bulk(v.sc, 1, again);	/* a double free */
		EXPECT_WARN_END("bulk_verify");
		CHECK_EQ(stat(v.sc, DOUBLE_FREE), 1);
		CHECK_EQ(sheaf_cache_nr_cached(v.sc), 4);
	}
	migrate_enable();
	teardown(&v);
}

/* ---- RCU-deferred frees ----------------------------------------------------- */

#define CANARY		0xa5
#define RCU_OBJS	(CAPACITY + 5)	/* one full rcu sheaf and a partial one */

static bool canary_intact(void *obj)
{
	return !memchr_inv(obj, CANARY, OBJ_SIZE);
}

/*
 * A reader on one CPU holds rcu_read_lock() while a freer on another frees
 * the objects it looks at with sheaf_cache_free_rcu(), then calls
 * sheaf_cache_rcu_barrier().  Freeing early would show in the objects:
 * zeroed or poisoned in a sheaf, or a free pointer written by the slab.
 */
struct rcu_gp {
	struct sheaf_cache *sc;
	void **objs;
	unsigned int n;
	unsigned int hold_ms;	/* the reader's longest read-side section */
	int ready, freed, done;
	unsigned int bad;	/* canaries the reader found damaged */
	bool done_after_frees, done_after_barrier;
	struct completion reader_end, freer_end;
};

static void rcu_gp_check_all(struct rcu_gp *g)
{
	unsigned int i;

	for (i = 0; i < g->n; i++)
		if (!canary_intact(g->objs[i]))
			g->bad++;
}

static int rcu_gp_reader(void *arg)
{
	struct rcu_gp *g = arg;
	ktime_t end = ktime_add_ms(ktime_get(), g->hold_ms);
	bool freed_seen = false;

	rcu_read_lock();
	WRITE_ONCE(g->ready, 1);
	while (ktime_before(ktime_get(), end)) {
		rcu_gp_check_all(g);
		/* Once everything is freed, keep looking a little longer. */
		if (!freed_seen && READ_ONCE(g->freed)) {
			freed_seen = true;
			end = ktime_add_ms(ktime_get(), 20);
		}
		cpu_relax();
	}
	rcu_gp_check_all(g);
	rcu_read_unlock();
	/* Orders the checks before it: pairs with the freer's acquire. */
	smp_store_release(&g->done, 1);
	complete(&g->reader_end);
	while (!kthread_should_stop())
		schedule_timeout_interruptible(1);
	return 0;
}

static int rcu_gp_freer(void *arg)
{
	struct rcu_gp *g = arg;
	unsigned int i;

	while (!READ_ONCE(g->ready))
		usleep_range(100, 200);
	for (i = 0; i < g->n; i++)
		sheaf_cache_free_rcu(g->sc, g->objs[i]);
	/* Pairs with the reader's release of @done. */
	g->done_after_frees = smp_load_acquire(&g->done);
	WRITE_ONCE(g->freed, 1);
	sheaf_cache_rcu_barrier(g->sc);
	/* Likewise. */
	g->done_after_barrier = smp_load_acquire(&g->done);
	complete(&g->freer_end);
	while (!kthread_should_stop())
		schedule_timeout_interruptible(1);
	return 0;
}

static struct task_struct *rcu_gp_thread(int (*fn)(void *), struct rcu_gp *g,
					 unsigned int cpu)
{
	struct task_struct *t = kthread_create(fn, g, "sheaf_rcu/%u", cpu);

	if (IS_ERR(t))
		return NULL;
	kthread_bind(t, cpu);
	wake_up_process(t);
	return t;
}

/*
 * Runs the reader and the freer on two CPUs over @n objects of @sc, which
 * the freer frees.  Return: false if it could not run.
 */
static bool rcu_gp_run(struct rcu_gp *g, struct sheaf_cache *sc, void **objs,
		       unsigned int n, unsigned int hold_ms)
{
	unsigned int rcpu = cpumask_first(cpu_online_mask);
	unsigned int fcpu = cpumask_last(cpu_online_mask);
	struct task_struct *reader, *freer;
	unsigned int i;

	*g = (struct rcu_gp){ .sc = sc, .objs = objs, .n = n,
			      .hold_ms = hold_ms };
	init_completion(&g->reader_end);
	init_completion(&g->freer_end);
	for (i = 0; i < n; i++)
		memset(objs[i], CANARY, OBJ_SIZE);
	reader = rcu_gp_thread(rcu_gp_reader, g, rcpu);
	if (!CHECK(reader))
		return false;
	freer = rcu_gp_thread(rcu_gp_freer, g, fcpu);
	if (!CHECK(freer)) {
		wait_for_completion(&g->reader_end);
		kthread_stop(reader);
		return false;
	}
	wait_for_completion(&g->reader_end);
	wait_for_completion(&g->freer_end);
	kthread_stop(reader);
	kthread_stop(freer);
	return true;
}

static bool rcu_needs_two_cpus(void)
{
	if (num_online_cpus() >= 2)
		return true;
	mark_skipped("needs two online CPUs");
	return false;
}

/*
 * The grace-period guarantee, for a default, a verify-mode and a
 * pass-through cache: the reader never sees an object freed, the frees
 * never wait for it, the barrier does, and afterwards every object is back.
 */
static void test_rcu_grace_period(void)
{
	static const unsigned int kinds[] = {
		0, SHEAF_CACHE_VERIFY, SHEAF_CACHE_PASSTHROUGH,
	};
	struct sheaf_cache_args args = { .capacity = CAPACITY };
	void *objs[RCU_OBJS];
	struct rcu_gp g;
	struct fixture f;
	unsigned int k;

	if (!rcu_needs_two_cpus())
		return;
	for (k = 0; k < ARRAY_SIZE(kinds); k++) {
		args.flags = kinds[k];
		if (setup_full(&f, "t_rcu_gp", &args, NULL))
			return;
		if (alloc_n(f.sc, GFP_KERNEL, objs, RCU_OBJS) &&
		    rcu_gp_run(&g, f.sc, objs, RCU_OBJS, 2000)) {
			pr_info("rcu_grace_period: flags %#x, damaged %u\n",
				kinds[k], g.bad);
			CHECK_EQ(g.bad, 0);
			CHECK(!g.done_after_frees);
			CHECK(g.done_after_barrier);
			CHECK_EQ(stat(f.sc, FREE_RCU_SHEAF), RCU_OBJS);
			CHECK_EQ(stat(f.sc, FREE_RCU_SHEAF_FAIL), 0);
			CHECK_EQ(stat(f.sc, RCU_SHEAF_SUBMIT), 2);
			CHECK_EQ(stat(f.sc, RCU_DONE), RCU_OBJS);
			CHECK_EQ(stat(f.sc, PARKED_WRITE), 0);
		}
		teardown(&f);
	}
}

static long free_rcu_on_cpu(void *arg)
{
	struct on_cpu *oc = arg;
	unsigned int i;

	for (i = 0; i < oc->n; i++)
		sheaf_cache_free_rcu(oc->sc, oc->objs[i]);
	return 0;
}

/*
 * Partial rcu sheaves wait for the barrier (not for a grace period alone),
 * on every CPU; after it every object has reached the barn or the slab.
 * A full sheaf of local objects comes back as a barn's full sheaf, ready
 * for allocations.  SLAB_TYPESAFE_BY_RCU objects are freed at once.
 */
static void test_rcu_barrier(void)
{
	struct sheaf_cache_args args = { .capacity = CAPACITY };
	void *objs[CAPACITY];
	struct on_cpu oc = { .objs = objs };
	unsigned int cpu, cpus = 0, n = 3;
	unsigned long before, cached;
	struct sheaf *rcu;
	struct fixture f;
	void *obj;

	if (setup(&f, "t_rcu_barrier", CAPACITY))
		return;
	oc.sc = f.sc;
	oc.n = n;
	for_each_online_cpu(cpu) {
		if (!CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0))
			goto out;
		cached = sheaf_cache_nr_cached(f.sc);
		CHECK_EQ(work_on_cpu(cpu, free_rcu_on_cpu, &oc), 0);
		CHECK_EQ(sheaf_cache_nr_cached(f.sc), cached + n);
		rcu = pcs_of(f.sc, cpu)->rcu_free;
		if (CHECK(rcu))
			CHECK_EQ(rcu->size, n);
		cpus++;
	}
	/* A grace period alone does not send partial sheaves. */
	synchronize_rcu();
	rcu_barrier();
	CHECK_EQ(stat(f.sc, RCU_SHEAF_SUBMIT), 0);
	CHECK_EQ(stat(f.sc, RCU_DONE), 0);

	cached = sheaf_cache_nr_cached(f.sc);
	before = stat(f.sc, SHEAF_FLUSH);
	sheaf_cache_rcu_barrier(f.sc);
	CHECK_EQ(stat(f.sc, RCU_SHEAF_SUBMIT), cpus);
	CHECK_EQ(stat(f.sc, RCU_DONE), n * cpus);
	/* Partial sheaves are flushed to the slab: the counts balance. */
	CHECK_EQ(stat(f.sc, SHEAF_FLUSH), before + n * cpus);
	CHECK_EQ(sheaf_cache_nr_cached(f.sc), cached - n * cpus);
	CHECK_EQ(slab_outstanding(f.sc), sheaf_cache_nr_cached(f.sc));
	for_each_online_cpu(cpu)
		CHECK(!pcs_of(f.sc, cpu)->rcu_free);

	/* A full sheaf of this CPU's objects: back in its barn. */
	cpu = cpumask_first(cpu_online_mask);
	oc.n = CAPACITY;
	if (CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0)) {
		cached = sheaf_cache_nr_cached(f.sc);
		before = stat(f.sc, BARN_PUT);
		CHECK_EQ(work_on_cpu(cpu, free_rcu_on_cpu, &oc), 0);
		CHECK_EQ(stat(f.sc, RCU_SHEAF_SUBMIT), cpus + 1);
		sheaf_cache_rcu_barrier(f.sc);
		/* Held again, not flushed: the slab has not seen them. */
		CHECK_EQ(stat(f.sc, BARN_PUT), before + 1);
		CHECK_EQ(sheaf_cache_nr_cached(f.sc), cached + CAPACITY);
		CHECK_EQ(slab_outstanding(f.sc), cached + CAPACITY);
	}
out:
	teardown(&f);

	/* SLAB_TYPESAFE_BY_RCU: no deferral, a plain sheaf free. */
	f.s = kmem_cache_create("t_rcu_typesafe", OBJ_SIZE, 0,
				SLAB_TYPESAFE_BY_RCU, NULL);
	if (!CHECK(f.s))
		return;
	args.flags = SHEAF_CACHE_TYPESAFE_BY_RCU;
	f.sc = sheaf_cache_attach(f.s, "t_rcu_typesafe", &args);
	if (!CHECK(!IS_ERR(f.sc))) {
		kmem_cache_destroy(f.s);
		return;
	}
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	if (CHECK(obj)) {
		before = stat(f.sc, FREE_CPU_SHEAF) + stat(f.sc, FREE_SLAB);
		sheaf_cache_free_rcu(f.sc, obj);
		CHECK_EQ(stat(f.sc, FREE_CPU_SHEAF) + stat(f.sc, FREE_SLAB),
			 before + 1);
		CHECK_EQ(stat(f.sc, FREE_RCU_SHEAF), 0);
		CHECK_EQ(stat(f.sc, FREE_RCU_SHEAF_FAIL), 0);
	}
	teardown(&f);
}

/*
 * Without memory for an rcu sheaf the object still waits for the grace
 * period: on a node of its own, on a node of the cache's reserve, and with
 * the reserve in flight, in synchronize_rcu() (the freer may sleep).
 */
static void test_rcu_fallback(void)
{
	void *objs[SHEAF_RCU_RESERVE + 4];
	unsigned int n = ARRAY_SIZE(objs);
	struct rcu_gp g;
	struct fixture f;
	void *obj;

	if (!rcu_needs_two_cpus())
		return;
	if (setup(&f, "t_rcu_fallback", CAPACITY))
		return;

	/* No sheaf (the barn has no empty one): a node from kmalloc. */
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	if (!CHECK(obj))
		goto out;
	atomic_set(&f.sc->fail_allocs, 1);
	sheaf_cache_free_rcu(f.sc, obj);
	CHECK_EQ(stat(f.sc, RCU_FALLBACK_NODE), 1);

	/* Nor a node: one of the reserve. */
	obj = sheaf_cache_alloc(f.sc, GFP_KERNEL);
	if (!CHECK(obj))
		goto out;
	atomic_set(&f.sc->fail_allocs, 2);
	sheaf_cache_free_rcu(f.sc, obj);
	CHECK_EQ(stat(f.sc, RCU_FALLBACK_RESERVE), 1);
	CHECK_EQ(atomic_read(&f.sc->fail_allocs), 0);
	sheaf_cache_rcu_barrier(f.sc);
	CHECK_EQ(stat(f.sc, RCU_DONE), 2);

	/* Everything fails while a reader holds on: reserve, then wait. */
	if (!alloc_n(f.sc, GFP_KERNEL, objs, n))
		goto out;
	atomic_set(&f.sc->fail_allocs, INT_MAX);
	if (rcu_gp_run(&g, f.sc, objs, n, 300)) {
		pr_info("rcu_fallback: damaged %u\n", g.bad);
		CHECK_EQ(g.bad, 0);
		/*
		 * The reserve ran out under the reader, so a free waited for
		 * it in synchronize_rcu(); reserve nodes may be back after.
		 */
		CHECK(g.done_after_frees);
		CHECK(stat(f.sc, RCU_FALLBACK_RESERVE) >= 1 + SHEAF_RCU_RESERVE);
		CHECK(stat(f.sc, RCU_FALLBACK_SYNC) >= 1);
		CHECK_EQ(stat(f.sc, RCU_FALLBACK_RESERVE) +
			 stat(f.sc, RCU_FALLBACK_SYNC), n + 1);
	}
	atomic_set(&f.sc->fail_allocs, 0);
	CHECK_EQ(stat(f.sc, FREE_RCU_SHEAF), 0);
	CHECK_EQ(stat(f.sc, FREE_RCU_SHEAF_FAIL), n + 2);
	CHECK_EQ(stat(f.sc, RCU_DONE), n + 2);
	CHECK_EQ(stat(f.sc, RCU_LOST), 0);
out:
	atomic_set(&f.sc->fail_allocs, 0);
	teardown(&f);
}

/*
 * The documented worst case: atomic context (inside a reader, where
 * synchronize_rcu() is not allowed), no memory, the reserve in flight.
 * The object is kept, counted and warned about, never freed early; the
 * caller can still free it after a grace period.
 */
static void test_rcu_worst_case(void)
{
	void *objs[SHEAF_RCU_RESERVE + 1];
	unsigned int n = ARRAY_SIZE(objs), i;
	void *last = NULL;
	struct fixture f;

	if (setup(&f, "t_rcu_worst", CAPACITY))
		return;
	/* No empty sheaf in a barn: every deferral needs an allocation. */
	CHECK_EQ(sheaf_cache_set_barn_limits(f.sc, SHEAF_BARN_KEEP, 0), 0);
	if (!alloc_n(f.sc, GFP_KERNEL, objs, n))
		goto out;
	last = objs[n - 1];
	memset(last, CANARY, OBJ_SIZE);
	atomic_set(&f.sc->fail_allocs, INT_MAX);
	rcu_read_lock();
	for (i = 0; i < n - 1; i++)
		sheaf_cache_free_rcu(f.sc, objs[i]);
	EXPECT_WARN_BEGIN("rcu_lost");
	sheaf_cache_free_rcu(f.sc, last);
	EXPECT_WARN_END("rcu_lost");
	CHECK(canary_intact(last));
	rcu_read_unlock();
	atomic_set(&f.sc->fail_allocs, 0);
	CHECK_EQ(stat(f.sc, RCU_FALLBACK_RESERVE), n - 1);
	CHECK_EQ(stat(f.sc, RCU_FALLBACK_SYNC), 0);
	CHECK_EQ(stat(f.sc, RCU_LOST), 1);

	synchronize_rcu();
	CHECK(canary_intact(last));
	sheaf_cache_free(f.sc, last);
	sheaf_cache_rcu_barrier(f.sc);
	CHECK_EQ(stat(f.sc, RCU_DONE), n - 1);
out:
	atomic_set(&f.sc->fail_allocs, 0);
	teardown(&f);
}

/*
 * Detach with rcu sheaves pending, full and partial: detach waits for
 * them, and the kmem_cache is found empty (the slab warns otherwise).
 */
static void test_rcu_detach(void)
{
	void *objs[RCU_OBJS];
	struct fixture f;
	unsigned int i;

	if (setup(&f, "t_rcu_detach", CAPACITY))
		return;
	if (alloc_n(f.sc, GFP_KERNEL, objs, RCU_OBJS)) {
		for (i = 0; i < RCU_OBJS; i++)
			sheaf_cache_free_rcu(f.sc, objs[i]);
		CHECK(stat(f.sc, RCU_DONE) < RCU_OBJS);
	}
	sheaf_cache_detach(f.sc);
	kmem_cache_destroy(f.s);
}

/* An offlined CPU's rcu sheaf is sent on its way. */
static void test_rcu_hotplug(void)
{
	unsigned int cpu = cpumask_last(cpu_online_mask);
	void *objs[5];
	struct on_cpu oc = { .objs = objs, .n = ARRAY_SIZE(objs) };
	struct fixture f;

	if (cpu == cpumask_first(cpu_online_mask)) {
		mark_skipped("needs two online CPUs");
		return;
	}
	if (setup(&f, "t_rcu_hotplug", CAPACITY))
		return;
	oc.sc = f.sc;
	if (!CHECK_EQ(work_on_cpu(cpu, alloc_on_cpu, &oc), 0))
		goto out;
	CHECK_EQ(work_on_cpu(cpu, free_rcu_on_cpu, &oc), 0);
	if (remove_cpu(cpu)) {
		mark_skipped("CPU cannot be taken offline");
		sheaf_cache_rcu_barrier(f.sc);
		goto out;
	}
	CHECK(!pcs_of(f.sc, cpu)->rcu_free);
	CHECK_EQ(stat(f.sc, RCU_SHEAF_SUBMIT), 1);
	rcu_barrier();
	CHECK_EQ(stat(f.sc, RCU_DONE), oc.n);
	CHECK_EQ(add_cpu(cpu), 0);
out:
	teardown(&f);
}

/* ---- the cases ---------------------------------------------------------------- */

static const struct test_case test_cases[] = {
	{ "prefill_guarantee", test_prefill_guarantee },
	{ "prefill_reuse", test_prefill_reuse },
	{ "prefill_oversize", test_prefill_oversize },
	{ "prefill_failure", test_prefill_failure },
	{ "cleanup", test_cleanup },
	{ "refill", test_refill },
	{ "gfp_zero", test_gfp_zero },
	{ "init_on_alloc", test_init_on_alloc },
	{ "exchanges", test_exchanges },
	{ "tune", test_tune },
	{ "cross_cpu_free", test_cross_cpu_free },
	{ "nested_context", test_nested_context },
	{ "irq_context", test_irq_context },
	{ "irqs_off", test_irqs_off },
	{ "remote_node", test_remote_node },
	{ "shrink", test_shrink },
	{ "shrinker", test_shrinker },
	{ "memory_pressure", test_memory_pressure },
	{ "memcg_charge", test_memcg_charge },
	{ "cpu_hotplug", test_cpu_hotplug },
	{ "bypass", test_bypass },
	{ "create", test_create },
	{ "bad_args", test_bad_args },
	{ "verify", test_verify },
	{ "verify_rcu", test_verify_rcu },
	{ "passthrough_param", test_passthrough_param },
	{ "misuse", test_misuse },
	{ "detach_outstanding", test_detach_outstanding },
	{ "bulk", test_bulk },
	{ "bulk_partial", test_bulk_partial },
	{ "bulk_failure", test_bulk_failure },
	{ "bulk_cross_cpu", test_bulk_cross_cpu },
	{ "bulk_misuse", test_bulk_misuse },
	{ "rcu_grace_period", test_rcu_grace_period },
	{ "rcu_barrier", test_rcu_barrier },
	{ "rcu_fallback", test_rcu_fallback },
	{ "rcu_worst_case", test_rcu_worst_case },
	{ "rcu_detach", test_rcu_detach },
	{ "rcu_hotplug", test_rcu_hotplug },
	{ "stress", test_stress },
	{ "stress_faults", test_stress_faults },
	{ "init_paths", test_init_paths },
	{ "sysfs_access", test_sysfs_access },
};

static int __init test_sheaf_init(void)
{
	return run_test_case(test_cases, ARRAY_SIZE(test_cases));
}

static void __exit test_sheaf_exit(void)
{
	sheaf_cache_destroy(kept_cache);
}

module_init(test_sheaf_init);
module_exit(test_sheaf_exit);

MODULE_DESCRIPTION("Tests of sheafmod");
MODULE_LICENSE("GPL");
