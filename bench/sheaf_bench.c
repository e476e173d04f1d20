// SPDX-License-Identifier: GPL-2.0
/*
 * sheaf_bench: microbenchmark of sheafmod against the stock slab.
 *
 * Classic slab microbenchmark style: each figure is the cost of one round
 * after a warm-up, over many rounds, minus an empty baseline loop; the
 * implementations compared are measured interleaved, several repetitions,
 * and reported as median, min and max.  Time is ktime_get_ns(): under
 * QEMU's -icount shift=0 that counts executed instructions.
 *
 * Results are kernel log lines "sheaf_bench: csv,<fields>" with the fields
 *	group,case,impl,n,k,cpus,unit,median,min,max,reps
 * which the test VM's init copies to its result channel.
 *
 * Parts (parameter parts=, comma-separated):
 *	prefill  prefill N, allocate k under spin_lock_irqsave, return, free k;
 *		 against bulk allocation, a mempool and (7.x) native sheaves
 *	percpu   alloc+free pair, and batches in order and shuffled
 *	scale    the pair on 1, 2 and 4 CPUs at once; throughput per CPU
 *	pc       producer/consumer on two CPUs: objects through the barns
 *	tune     the producer/consumer pair at several capacities, set at
 *		 runtime with sheaf_cache_set_capacity()
 *	bulk     bulk allocation and free of n objects at once; against the
 *		 stock kmem_cache_alloc_bulk()/kmem_cache_free_bulk() and (7.x)
 *		 the same on a native sheaf cache
 *	rcu      sheaf_cache_free_rcu() against call_rcu() + kmem_cache_free()
 *		 and kfree_rcu(), per free and per alloc + free pair
 *	memory   objects held by each sheafmod cache: peak, after shrink, bound
 *
 * The module stays loaded until removed.  An allocation that should not
 * have failed is reported as "sheaf_bench: error: ..." (the loader would
 * retry a failed init, running everything twice).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/cpumask.h>
#include <linux/kprobes.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mempool.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/wait.h>

#include "sheaf_compat.h"
#include "sheaf.h"
#include "sheaf_internal.h"

MODULE_IMPORT_NS(SHEAF_NS);

static unsigned int rounds = 20000;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "timed rounds per measurement");

static unsigned int reps = 5;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "repetitions of each comparison");

static unsigned int scale_ops = 200000;
module_param(scale_ops, uint, 0444);
MODULE_PARM_DESC(scale_ops, "alloc+free pairs per CPU in the scale and pc parts");

static char *parts = "prefill,percpu,bulk,scale,pc,tune,rcu,memory";
module_param(parts, charp, 0444);
MODULE_PARM_DESC(parts, "comma-separated parts to run");

#define OBJ_SIZE	64
#define CAPACITY	32
#define MAX_BATCH	1000
#define MAX_REPS	31
#define RING_SIZE	256
#define SCALE_MAX_CPUS	4

/*
 * ==== Kernel-version differences of the benchmark: all of them here ====
 *
 * Since 6.18 the slab has per-CPU sheaves of its own: a cache created with
 * kmem_cache_args.sheaf_capacity.  Its prefill API is not exported to
 * modules, so the benchmark (and only the benchmark: never the product)
 * resolves it at run time through kallsyms_lookup_name(), itself found
 * with a kprobe.  Before 6.18 there is nothing native to compare with.
 */
#if SHEAF_KERNEL_HAS_SHEAVES
typedef unsigned long (*lookup_name_fn)(const char *name);

static struct {
	struct slab_sheaf *(*prefill)(struct kmem_cache *s, gfp_t gfp,
				      unsigned int size);
	void *(*alloc)(struct kmem_cache *s, gfp_t gfp,
		       struct slab_sheaf *sheaf);
	void (*ret)(struct kmem_cache *s, gfp_t gfp, struct slab_sheaf *sheaf);
} native;

static struct kmem_cache *native_cache_create(const char *name)
{
	struct kmem_cache_args args = { .sheaf_capacity = CAPACITY };

	return kmem_cache_create(name, OBJ_SIZE, &args, 0);
}

/* A kprobe resolves any symbol: register one, read its address, drop it. */
static lookup_name_fn find_lookup_name(void)
{
	struct kprobe kp = { .symbol_name = "kallsyms_lookup_name" };
	lookup_name_fn fn;

	if (register_kprobe(&kp))
		return NULL;
	fn = (lookup_name_fn)kp.addr;
	unregister_kprobe(&kp);
	return fn;
}

static bool native_prefill_resolve(void)
{
	lookup_name_fn lookup = find_lookup_name();

	if (!lookup)
		return false;
	native.prefill = (void *)lookup("kmem_cache_prefill_sheaf");
	native.alloc = (void *)lookup("kmem_cache_alloc_from_sheaf_noprof");
	native.ret = (void *)lookup("kmem_cache_return_sheaf");
	return native.prefill && native.alloc && native.ret;
}

static void *native_prefill(struct kmem_cache *s, gfp_t gfp, unsigned int n)
{
	return native.prefill(s, gfp, n);
}

static void *native_alloc(struct kmem_cache *s, gfp_t gfp, void *sheaf)
{
	return native.alloc(s, gfp, sheaf);
}

static void native_return(struct kmem_cache *s, gfp_t gfp, void *sheaf)
{
	native.ret(s, gfp, sheaf);
}
#else
static struct kmem_cache *native_cache_create(const char *name)
{
	return NULL;
}

static bool native_prefill_resolve(void)
{
	return false;
}

static void *native_prefill(struct kmem_cache *s, gfp_t gfp, unsigned int n)
{
	return NULL;
}

static void *native_alloc(struct kmem_cache *s, gfp_t gfp, void *sheaf)
{
	return NULL;
}

static void native_return(struct kmem_cache *s, gfp_t gfp, void *sheaf)
{
}
#endif
/* ==== end of kernel-version differences ==== */

/* ---- state shared by the rounds ----------------------------------------- */

struct bench {
	struct sheaf_cache *sc;		/* the sheafmod cache under test */
	struct kmem_cache *stock;	/* a plain cache, same object size */
	struct kmem_cache *native;	/* 7.x: sheaf_capacity CAPACITY */
	mempool_t *pool;
	spinlock_t lock;		/* the critical section of a prefill */
	void **objs;			/* MAX_BATCH slots */
	unsigned int *order;		/* free order of a shuffled batch */
	unsigned int n, k;		/* prefill bound / objects used; batch */
	bool shuffled;
	bool native_prefill;		/* the native prefill API resolved */
	unsigned int failures;
};

static struct bench b;

/* Peak objects held, per sheafmod cache, sampled between measurements. */
struct held {
	const char *name;
	struct sheaf_cache *sc;
	unsigned long peak;
};

static struct held held[8];	/* one per part */
static unsigned int nr_held;

static void *check_obj(void *obj)
{
	if (unlikely(!obj))
		b.failures++;
	return obj;
}

/* What a caller does with an object: write to it. */
static void use(void *obj, unsigned int i)
{
	if (obj)
		*(unsigned long *)obj = i;
}

/* ---- one round of each case ----------------------------------------------- */

static void round_empty(void)
{
	barrier();
}

static void prefill_sheafmod(void)
{
	struct sheaf *sheaf = sheaf_prefill(b.sc, GFP_KERNEL, b.n);
	unsigned long flags;
	unsigned int i;

	if (!check_obj(sheaf))
		return;
	spin_lock_irqsave(&b.lock, flags);
	for (i = 0; i < b.k; i++) {
		b.objs[i] = check_obj(sheaf_alloc(b.sc, GFP_ATOMIC, sheaf));
		use(b.objs[i], i);
	}
	spin_unlock_irqrestore(&b.lock, flags);
	sheaf_return(b.sc, GFP_KERNEL, sheaf);
	for (i = 0; i < b.k; i++)
		sheaf_cache_free(b.sc, b.objs[i]);
}

static void prefill_bulk(void)
{
	unsigned long flags;
	unsigned int i;

	if (!sheaf_slab_alloc_bulk(b.stock, GFP_KERNEL, b.n, b.objs)) {
		b.failures++;
		return;
	}
	spin_lock_irqsave(&b.lock, flags);
	for (i = 0; i < b.k; i++)
		use(b.objs[i], i);
	spin_unlock_irqrestore(&b.lock, flags);
	if (b.n > b.k)
		kmem_cache_free_bulk(b.stock, b.n - b.k, &b.objs[b.k]);
	for (i = 0; i < b.k; i++)
		kmem_cache_free(b.stock, b.objs[i]);
}

static void prefill_mempool(void)
{
	unsigned long flags;
	unsigned int i;

	spin_lock_irqsave(&b.lock, flags);
	for (i = 0; i < b.k; i++) {
		b.objs[i] = check_obj(mempool_alloc(b.pool, GFP_ATOMIC));
		use(b.objs[i], i);
	}
	spin_unlock_irqrestore(&b.lock, flags);
	for (i = 0; i < b.k; i++)
		if (b.objs[i])
			mempool_free(b.objs[i], b.pool);
}

static void prefill_native(void)
{
	void *sheaf = native_prefill(b.native, GFP_KERNEL, b.n);
	unsigned long flags;
	unsigned int i;

	if (!check_obj(sheaf))
		return;
	spin_lock_irqsave(&b.lock, flags);
	for (i = 0; i < b.k; i++) {
		b.objs[i] = check_obj(native_alloc(b.native, GFP_ATOMIC, sheaf));
		use(b.objs[i], i);
	}
	spin_unlock_irqrestore(&b.lock, flags);
	native_return(b.native, GFP_KERNEL, sheaf);
	for (i = 0; i < b.k; i++)
		if (b.objs[i])
			kmem_cache_free(b.native, b.objs[i]);
}

static void pair_sheafmod(void)
{
	void *obj = check_obj(sheaf_cache_alloc(b.sc, GFP_KERNEL));

	use(obj, 0);
	sheaf_cache_free(b.sc, obj);
}

static void pair_slab(struct kmem_cache *s)
{
	void *obj = check_obj(kmem_cache_alloc(s, GFP_KERNEL));

	use(obj, 0);
	if (obj)
		kmem_cache_free(s, obj);
}

static void pair_stock(void)
{
	pair_slab(b.stock);
}

static void pair_native(void)
{
	pair_slab(b.native);
}

static unsigned int batch_slot(unsigned int i)
{
	return b.shuffled ? b.order[i] : i;
}

static void batch_sheafmod(void)
{
	unsigned int i;

	for (i = 0; i < b.n; i++) {
		b.objs[i] = check_obj(sheaf_cache_alloc(b.sc, GFP_KERNEL));
		use(b.objs[i], i);
	}
	for (i = 0; i < b.n; i++)
		sheaf_cache_free(b.sc, b.objs[batch_slot(i)]);
}

static void batch_slab(struct kmem_cache *s)
{
	unsigned int i;
	void *obj;

	for (i = 0; i < b.n; i++) {
		b.objs[i] = check_obj(kmem_cache_alloc(s, GFP_KERNEL));
		use(b.objs[i], i);
	}
	for (i = 0; i < b.n; i++) {
		obj = b.objs[batch_slot(i)];
		if (obj)
			kmem_cache_free(s, obj);
	}
}

static void batch_stock(void)
{
	batch_slab(b.stock);
}

static void batch_native(void)
{
	batch_slab(b.native);
}

static void bulk_sheafmod(void)
{
	unsigned int i;

	if (!sheaf_cache_alloc_bulk(b.sc, GFP_KERNEL, b.n, b.objs)) {
		b.failures++;
		return;
	}
	for (i = 0; i < b.n; i++)
		use(b.objs[i], i);
	sheaf_cache_free_bulk(b.sc, b.n, b.objs);
}

static void bulk_slab(struct kmem_cache *s)
{
	unsigned int i;

	if (!sheaf_slab_alloc_bulk(s, GFP_KERNEL, b.n, b.objs)) {
		b.failures++;
		return;
	}
	for (i = 0; i < b.n; i++)
		use(b.objs[i], i);
	kmem_cache_free_bulk(s, b.n, b.objs);
}

static void bulk_stock(void)
{
	bulk_slab(b.stock);
}

static void bulk_native(void)
{
	bulk_slab(b.native);
}

/* ---- timing and reporting ------------------------------------------------- */

struct impl {
	const char *name;
	void (*round)(void);
	bool on;
};

/* Picoseconds per round over @nr rounds, after a warm-up of a tenth. */
static u64 time_rounds(void (*round)(void), unsigned int nr)
{
	unsigned int i;
	u64 t0, t1;

	for (i = 0; i < nr / 10 + 1; i++)
		round();
	t0 = ktime_get_ns();
	for (i = 0; i < nr; i++)
		round();
	t1 = ktime_get_ns();
	cond_resched();
	return div_u64((t1 - t0) * 1000, nr);
}

static int cmp_s64(const void *a, const void *b)
{
	s64 x = *(const s64 *)a, y = *(const s64 *)b;

	return x < y ? -1 : x > y;
}

/* Hundredths, printed with two decimals. */
static void fmt_centi(char *buf, size_t len, s64 v)
{
	const char *sign = v < 0 ? "-" : "";
	u64 a = v < 0 ? -v : v;

	snprintf(buf, len, "%s%llu.%02llu", sign, a / 100, a % 100);
}

static void emit(const char *group, const char *cs, const char *impl,
		 unsigned int n, unsigned int k, unsigned int cpus,
		 const char *unit, s64 *v, unsigned int nr)
{
	char med[24], lo[24], hi[24];

	sort(v, nr, sizeof(*v), cmp_s64, NULL);
	fmt_centi(med, sizeof(med), v[nr / 2]);
	fmt_centi(lo, sizeof(lo), v[0]);
	fmt_centi(hi, sizeof(hi), v[nr - 1]);
	pr_info("csv,%s,%s,%s,%u,%u,%u,%s,%s,%s,%s,%u\n", group, cs, impl,
		n, k, cpus, unit, med, lo, hi, nr);
}

static void sample_held(void)
{
	unsigned long now;
	unsigned int i;

	for (i = 0; i < nr_held; i++) {
		now = sheaf_cache_nr_cached(held[i].sc);
		held[i].peak = max(held[i].peak, now);
	}
}

/*
 * One comparison: every implementation that is on, interleaved, @reps
 * times, each rep with its own baseline; reports hundredths of ns per
 * round divided by @per (objects per round).
 */
static void compare(const char *group, const char *cs, struct impl *impls,
		    unsigned int nr_impls, unsigned int nr_rounds,
		    unsigned int per, const char *unit)
{
	static s64 v[8][MAX_REPS];
	unsigned int r, i;
	u64 base;

	for (r = 0; r < reps; r++) {
		base = time_rounds(round_empty, nr_rounds);
		for (i = 0; i < nr_impls; i++) {
			if (!impls[i].on)
				continue;
			v[i][r] = ((s64)time_rounds(impls[i].round, nr_rounds) -
				   (s64)base) / 10 / per;
			sample_held();
		}
	}
	for (i = 0; i < nr_impls; i++)
		if (impls[i].on)
			emit(group, cs, impls[i].name, b.n, b.k, 1, unit, v[i],
			     reps);
}

/* ---- parts ------------------------------------------------------------------ */

static void run_prefill(struct sheaf_cache *sc)
{
	static const unsigned int bounds[] = { 8, 32, 64 };
	unsigned int ks[4], i, j;
	struct impl impls[] = {
		{ "sheafmod", prefill_sheafmod, true },
		{ "bulk", prefill_bulk, true },
		{ "mempool", prefill_mempool, true },
		{ "native", prefill_native, b.native_prefill },
	};

	b.sc = sc;
	for (i = 0; i < ARRAY_SIZE(bounds); i++) {
		b.n = bounds[i];
		b.pool = mempool_create_slab_pool(b.n, b.stock);
		if (!b.pool) {
			b.failures++;
			return;
		}
		ks[0] = 0;
		ks[1] = 1;
		ks[2] = 3;
		ks[3] = b.n;
		for (j = 0; j < ARRAY_SIZE(ks); j++) {
			b.k = ks[j];
			compare("prefill", "prefill", impls, ARRAY_SIZE(impls),
				rounds, 1, "ns/round");
		}
		mempool_destroy(b.pool);
		b.pool = NULL;
	}
}

/* A fixed shuffle, the same in every boot. */
static void make_order(void)
{
	u32 x = 2463534242U;
	unsigned int i, j;

	for (i = 0; i < MAX_BATCH; i++)
		b.order[i] = i;
	for (i = MAX_BATCH - 1; i > 0; i--) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		j = x % (i + 1);
		swap(b.order[i], b.order[j]);
	}
}

static void restrict_order(unsigned int n)
{
	unsigned int i, j = 0;

	/* Keep the shuffle's relative order of the first @n slots. */
	make_order();
	for (i = 0; i < MAX_BATCH; i++)
		if (b.order[i] < n)
			b.order[j++] = b.order[i];
}

static void run_percpu(struct sheaf_cache *sc)
{
	static const unsigned int batches[] = { 1, 10, 100, 1000 };
	struct impl pair[] = {
		{ "sheafmod", pair_sheafmod, true },
		{ "stock", pair_stock, true },
		{ "native", pair_native, b.native },
	};
	struct impl batch[] = {
		{ "sheafmod", batch_sheafmod, true },
		{ "stock", batch_stock, true },
		{ "native", batch_native, b.native },
	};
	unsigned int i, nr;

	b.sc = sc;
	b.n = 1;
	b.k = 0;
	compare("percpu", "pair", pair, ARRAY_SIZE(pair), rounds, 1, "ns/op");
	for (i = 0; i < ARRAY_SIZE(batches); i++) {
		b.n = batches[i];
		/* The same number of objects for the larger batches. */
		nr = clamp(rounds * 10 / b.n, 50U, rounds);
		b.shuffled = false;
		compare("percpu", "batch-inorder", batch, ARRAY_SIZE(batch),
			nr, b.n, "ns/op");
		restrict_order(b.n);
		b.shuffled = true;
		compare("percpu", "batch-shuffled", batch, ARRAY_SIZE(batch),
			nr, b.n, "ns/op");
	}
	b.shuffled = false;
}

/*
 * Bulk allocation of n objects, each written once, then their bulk free:
 * cost per object.  n = 128 spans four sheaves of the benchmark capacity.
 */
static void run_bulk(struct sheaf_cache *sc)
{
	static const unsigned int sizes[] = { 1, 8, 32, 128 };
	struct impl impls[] = {
		{ "sheafmod", bulk_sheafmod, true },
		{ "stock", bulk_stock, true },
		{ "native", bulk_native, b.native },
	};
	unsigned int i, nr;

	b.sc = sc;
	b.k = 0;
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		b.n = sizes[i];
		/* The same number of objects for the larger sizes. */
		nr = clamp(rounds * 10 / b.n, 50U, rounds);
		compare("bulk", "alloc-free", impls, ARRAY_SIZE(impls), nr, b.n,
			"ns/op");
	}
}

/* ---- scale and producer/consumer: kthreads bound to CPUs ------------------ */

struct worker {
	struct task_struct *task;
	struct completion done;
	struct team *team;
	unsigned int cpu;
	u64 ns;
};

struct team {
	void (*pair)(void);
	wait_queue_head_t wq;
	bool go;
	/* producer/consumer ring */
	void *ring[RING_SIZE];
	unsigned int head, tail;
	struct kmem_cache *s;		/* NULL: the sheafmod cache */
	struct worker w[SCALE_MAX_CPUS];
};

static struct team team;

static void team_wait_go(struct team *t)
{
	wait_event(t->wq, READ_ONCE(t->go));
}

static int scale_fn(void *arg)
{
	struct worker *w = arg;
	unsigned int i;
	u64 t0;

	team_wait_go(w->team);
	t0 = ktime_get_ns();
	for (i = 0; i < scale_ops; i++) {
		w->team->pair();
		if (!(i & 1023))
			cond_resched();
	}
	w->ns = ktime_get_ns() - t0;
	complete(&w->done);
	return 0;
}

static void *pc_alloc(struct team *t)
{
	if (!t->s)
		return sheaf_cache_alloc(b.sc, GFP_KERNEL);
	return kmem_cache_alloc(t->s, GFP_KERNEL);
}

static void pc_free(struct team *t, void *obj)
{
	if (!t->s)
		sheaf_cache_free(b.sc, obj);
	else
		kmem_cache_free(t->s, obj);
}

static void pc_wait(unsigned int spins)
{
	if (!(spins & 255))
		cond_resched();
	cpu_relax();
}

static int producer_fn(void *arg)
{
	struct worker *w = arg;
	struct team *t = w->team;
	unsigned int i, head, spins = 0;
	void *obj;
	u64 t0;

	team_wait_go(t);
	t0 = ktime_get_ns();
	for (i = 0; i < scale_ops; i++) {
		obj = check_obj(pc_alloc(t));
		use(obj, i);
		head = t->head;
		/* Acquire: the consumer is done with the slot we reuse. */
		while (head - smp_load_acquire(&t->tail) == RING_SIZE)
			pc_wait(++spins);
		t->ring[head % RING_SIZE] = obj;
		/* Release: the slot is written before it is published. */
		smp_store_release(&t->head, head + 1);
	}
	w->ns = ktime_get_ns() - t0;
	complete(&w->done);
	return 0;
}

static int consumer_fn(void *arg)
{
	struct worker *w = arg;
	struct team *t = w->team;
	unsigned int i, tail, spins = 0;
	void *obj;
	u64 t0;

	team_wait_go(t);
	t0 = ktime_get_ns();
	for (i = 0; i < scale_ops; i++) {
		tail = t->tail;
		/* Acquire: pairs with the producer's release of the slot. */
		while (smp_load_acquire(&t->head) == tail)
			pc_wait(++spins);
		obj = t->ring[tail % RING_SIZE];
		/* Release: the slot is read before the producer reuses it. */
		smp_store_release(&t->tail, tail + 1);
		if (obj)
			pc_free(t, obj);
	}
	w->ns = ktime_get_ns() - t0;
	complete(&w->done);
	return 0;
}

/* Starts fns[i] on cpus[i], releases them together, waits for all. */
static int team_run(struct team *t, int (*const *fns)(void *),
		    const unsigned int *cpus, unsigned int nr)
{
	unsigned int i;

	init_waitqueue_head(&t->wq);
	t->go = false;
	for (i = 0; i < nr; i++) {
		struct worker *w = &t->w[i];

		w->team = t;
		w->cpu = cpus[i];
		w->ns = 0;
		init_completion(&w->done);
		w->task = kthread_create(fns[i], w, "sheaf_bench/%u", w->cpu);
		if (IS_ERR(w->task))
			goto fail;
		kthread_bind(w->task, w->cpu);
		wake_up_process(w->task);
	}
	WRITE_ONCE(t->go, true);
	wake_up_all(&t->wq);
	for (i = 0; i < nr; i++)
		while (!wait_for_completion_timeout(&t->w[i].done, 10 * HZ))
			;
	return 0;
fail:
	/* Release those started, let them finish, report the failure. */
	WRITE_ONCE(t->go, true);
	wake_up_all(&t->wq);
	while (i--)
		wait_for_completion(&t->w[i].done);
	return -ENOMEM;
}

static unsigned int online_cpus_from(unsigned int *cpus, unsigned int want)
{
	unsigned int cpu, n = 0;

	for_each_online_cpu(cpu) {
		if (n == want)
			break;
		cpus[n++] = cpu;
	}
	return n;
}

/* Mean per-CPU throughput of the last run, in hundredths of Mops/s. */
static s64 team_throughput(struct team *t, unsigned int nr)
{
	u64 sum = 0;
	unsigned int i;

	for (i = 0; i < nr; i++)
		sum += div64_u64((u64)scale_ops * 100000, max_t(u64, t->w[i].ns, 1));
	return div_u64(sum, nr);
}

static int (*const scale_fns[SCALE_MAX_CPUS])(void *) = {
	scale_fn, scale_fn, scale_fn, scale_fn
};

static void run_scale(struct sheaf_cache *sc)
{
	static const unsigned int sizes[] = { 1, 2, 4 };
	struct impl impls[] = {
		{ "sheafmod", pair_sheafmod, true },
		{ "stock", pair_stock, true },
		{ "native", pair_native, b.native },
	};
	static s64 v[ARRAY_SIZE(sizes)][ARRAY_SIZE(impls)][MAX_REPS];
	unsigned int cpus[SCALE_MAX_CPUS], s, i, r, n;

	b.sc = sc;
	for (r = 0; r < reps; r++) {
		for (s = 0; s < ARRAY_SIZE(sizes); s++) {
			n = online_cpus_from(cpus, sizes[s]);
			if (n < sizes[s])
				break;
			for (i = 0; i < ARRAY_SIZE(impls); i++) {
				if (!impls[i].on)
					continue;
				team.pair = impls[i].round;
				if (team_run(&team, scale_fns, cpus, n)) {
					b.failures++;
					return;
				}
				v[s][i][r] = team_throughput(&team, n);
				sample_held();
			}
		}
	}
	for (s = 0; s < ARRAY_SIZE(sizes) && sizes[s] <= num_online_cpus(); s++)
		for (i = 0; i < ARRAY_SIZE(impls); i++)
			if (impls[i].on)
				emit("scale", "pair", impls[i].name, 1, 0, sizes[s],
				     "Mops/s/cpu", v[s][i], reps);
}

static unsigned long barns_contended(struct sheaf_cache *sc)
{
	unsigned long sum = 0;
	int node;

	for_each_node(node)
		sum += READ_ONCE(sc->barns[node]->contended);
	return sum;
}

static int (*const pc_fns[2])(void *) = { producer_fn, consumer_fn };

/*
 * Producer and consumer on two CPUs of one node (a remote node's objects
 * would bypass the sheaves): the consumer's sheaves fill up and go to the
 * barn, the producer's run empty and take them from it.
 */
static bool pc_cpus(const char *part, unsigned int cpus[2])
{
	cpus[0] = cpumask_first(cpumask_of_node(0));
	cpus[1] = cpumask_next(cpus[0], cpumask_of_node(0));
	if (cpus[1] >= nr_cpu_ids || !cpu_online(cpus[1])) {
		pr_info("%s: node 0 has fewer than two CPUs: skipped\n", part);
		return false;
	}
	return true;
}

static void run_pc(struct sheaf_cache *sc)
{
	struct { const char *name; struct kmem_cache *s; bool on; } impls[] = {
		{ "sheafmod", NULL, true },
		{ "stock", b.stock, true },
		{ "native", b.native, b.native },
	};
	static s64 v[3][MAX_REPS], cont[MAX_REPS], get[MAX_REPS], put[MAX_REPS];
	unsigned int cpus[2], i, r;
	unsigned long c0, g0, p0;

	b.sc = sc;
	if (!pc_cpus("pc", cpus))
		return;
	for (r = 0; r < reps; r++) {
		for (i = 0; i < ARRAY_SIZE(impls); i++) {
			if (!impls[i].on)
				continue;
			team.s = impls[i].s;
			team.head = 0;
			team.tail = 0;
			c0 = barns_contended(sc);
			g0 = sheaf_stat_sum(sc, BARN_GET);
			p0 = sheaf_stat_sum(sc, BARN_PUT);
			if (team_run(&team, pc_fns, cpus, 2)) {
				b.failures++;
				return;
			}
			v[i][r] = div_u64(max(team.w[0].ns, team.w[1].ns) * 100,
					  scale_ops);
			if (!team.s) {
				cont[r] = (barns_contended(sc) - c0) * 100;
				get[r] = (sheaf_stat_sum(sc, BARN_GET) - g0) * 100;
				put[r] = (sheaf_stat_sum(sc, BARN_PUT) - p0) * 100;
			}
			sample_held();
		}
	}
	for (i = 0; i < ARRAY_SIZE(impls); i++)
		if (impls[i].on)
			emit("pc", "ring", impls[i].name, RING_SIZE, 0, 2,
			     "ns/obj", v[i], reps);
	emit("pc", "ring", "sheafmod", RING_SIZE, 0, 2, "barn-contended",
	     cont, reps);
	emit("pc", "ring", "sheafmod", RING_SIZE, 0, 2, "barn-get", get, reps);
	emit("pc", "ring", "sheafmod", RING_SIZE, 0, 2, "barn-put", put, reps);
}

/*
 * The producer/consumer pair with the capacity changed between runs: small
 * sheaves mean more barn traffic per object, large ones fewer exchanges.
 */
static void run_tune(struct sheaf_cache *sc)
{
	static const unsigned int caps[] = { 8, 32, 128 };
	static s64 v[ARRAY_SIZE(caps)][MAX_REPS];
	static s64 cont[ARRAY_SIZE(caps)][MAX_REPS];
	unsigned int cpus[2], i, r;
	unsigned long c0;

	b.sc = sc;
	if (!pc_cpus("tune", cpus))
		return;
	team.s = NULL;
	for (r = 0; r < reps; r++) {
		for (i = 0; i < ARRAY_SIZE(caps); i++) {
			if (sheaf_cache_set_capacity(sc, caps[i])) {
				b.failures++;
				return;
			}
			team.head = 0;
			team.tail = 0;
			c0 = barns_contended(sc);
			if (team_run(&team, pc_fns, cpus, 2)) {
				b.failures++;
				return;
			}
			v[i][r] = div_u64(max(team.w[0].ns, team.w[1].ns) * 100,
					  scale_ops);
			cont[i][r] = (barns_contended(sc) - c0) * 100;
		}
	}
	for (i = 0; i < ARRAY_SIZE(caps); i++) {
		emit("tune", "ring", "sheafmod", caps[i], 0, 2, "ns/obj", v[i],
		     reps);
		emit("tune", "ring", "sheafmod", caps[i], 0, 2,
		     "barn-contended", cont[i], reps);
	}
	/* The memory part measures against the bound of the usual capacity. */
	if (sheaf_cache_set_capacity(sc, CAPACITY))
		b.failures++;
}

/* ---- RCU-deferred frees ---------------------------------------------------- */

/* What the stock ways need in the object: an rcu_head, OBJ_SIZE in all. */
struct rcu_obj {
	struct rcu_head rcu;
	char payload[OBJ_SIZE - sizeof(struct rcu_head)];
};

static void rcu_obj_free(struct rcu_head *head)
{
	kmem_cache_free(b.stock, container_of(head, struct rcu_obj, rcu));
}

static void *rcu_alloc_sheafmod(void)
{
	return sheaf_cache_alloc(b.sc, GFP_KERNEL);
}

static void rcu_free_sheafmod(void *obj)
{
	sheaf_cache_free_rcu(b.sc, obj);
}

static void *rcu_alloc_stock(void)
{
	return kmem_cache_alloc(b.stock, GFP_KERNEL);
}

static void rcu_free_call_rcu(void *obj)
{
	call_rcu(&((struct rcu_obj *)obj)->rcu, rcu_obj_free);
}

static void *rcu_alloc_kmalloc(void)
{
	return kmalloc(sizeof(struct rcu_obj), GFP_KERNEL);
}

static void rcu_free_kfree_rcu(void *obj)
{
	struct rcu_obj *o = obj;

	kfree_rcu(o, rcu);
}

struct rcu_impl {
	const char *name;
	void *(*alloc)(void);
	void (*free)(void *obj);
};

static const struct rcu_impl rcu_impls[] = {
	{ "sheafmod", rcu_alloc_sheafmod, rcu_free_sheafmod },
	{ "call_rcu", rcu_alloc_stock, rcu_free_call_rcu },
	{ "kfree_rcu", rcu_alloc_kmalloc, rcu_free_kfree_rcu },
};

/*
 * Picoseconds per deferred free: batches of MAX_BATCH objects allocated
 * untimed, then freed timed.  Callbacks of earlier batches that run
 * meanwhile (softirq, on this CPU) are part of the cost.
 */
static u64 rcu_time_frees(const struct rcu_impl *impl, unsigned int batches)
{
	u64 t0, total = 0;
	unsigned int i, j;

	for (j = 0; j <= batches; j++) {
		for (i = 0; i < MAX_BATCH; i++) {
			b.objs[i] = check_obj(impl->alloc());
			use(b.objs[i], i);
		}
		t0 = ktime_get_ns();
		for (i = 0; i < MAX_BATCH; i++)
			if (b.objs[i])
				impl->free(b.objs[i]);
		if (j)		/* the first batch warms up */
			total += ktime_get_ns() - t0;
		cond_resched();
	}
	return div_u64(total * 1000, batches * MAX_BATCH);
}

/* Picoseconds per allocation + deferred free, one object at a time. */
static u64 rcu_time_pairs(const struct rcu_impl *impl, unsigned int nr)
{
	unsigned int i;
	void *obj;
	u64 t0;

	for (i = 0; i < nr / 10 + 1; i++) {
		obj = check_obj(impl->alloc());
		if (obj)
			impl->free(obj);
	}
	t0 = ktime_get_ns();
	for (i = 0; i < nr; i++) {
		obj = check_obj(impl->alloc());
		use(obj, i);
		if (obj)
			impl->free(obj);
	}
	t0 = ktime_get_ns() - t0;
	cond_resched();
	return div_u64(t0 * 1000, nr);
}

/*
 * Interleaved, each measurement followed (untimed) by rcu_barrier() so
 * that no implementation pays for another's callbacks.
 */
static void run_rcu(struct sheaf_cache *sc)
{
	static s64 vf[ARRAY_SIZE(rcu_impls)][MAX_REPS];
	static s64 vp[ARRAY_SIZE(rcu_impls)][MAX_REPS];
	unsigned int batches = max(rounds / MAX_BATCH, 1U);
	unsigned int r, i;

	b.sc = sc;
	for (r = 0; r < reps; r++) {
		for (i = 0; i < ARRAY_SIZE(rcu_impls); i++) {
			vf[i][r] = rcu_time_frees(&rcu_impls[i], batches) / 10;
			sheaf_cache_rcu_barrier(sc);
			vp[i][r] = rcu_time_pairs(&rcu_impls[i], rounds) / 10;
			sheaf_cache_rcu_barrier(sc);
			sample_held();
		}
	}
	for (i = 0; i < ARRAY_SIZE(rcu_impls); i++) {
		emit("rcu", "free", rcu_impls[i].name, MAX_BATCH, 0, 1,
		     "ns/obj", vf[i], reps);
		emit("rcu", "pair", rcu_impls[i].name, 1, 0, 1, "ns/op",
		     vp[i], reps);
	}
}

/* ---- memory held ----------------------------------------------------------- */

/* 2 sheaves per possible CPU, barn_max_full full ones per node. */
static unsigned long held_bound(struct sheaf_cache *sc)
{
	return (2UL * num_possible_cpus() + (unsigned long)nr_node_ids *
		sc->barn_max_full) * sc->capacity;
}

static void emit_count(const char *cs, struct sheaf_cache *sc,
		       const char *unit, unsigned long n)
{
	s64 v = (s64)n * 100;

	emit("memory", cs, "sheafmod", sc->capacity, 0, num_possible_cpus(),
	     unit, &v, 1);
}

static void report_held(void)
{
	unsigned int i;

	for (i = 0; i < nr_held; i++) {
		struct held *h = &held[i];

		sample_held();
		emit_count(h->name, h->sc, "objects-peak", h->peak);
		sheaf_cache_shrink(h->sc);
		emit_count(h->name, h->sc, "objects-after-shrink",
			   sheaf_cache_nr_cached(h->sc));
		emit_count(h->name, h->sc, "objects-bound", held_bound(h->sc));
	}
}

/* ---- set-up and the module ------------------------------------------------- */

static bool part_on(const char *name)
{
	size_t len = strlen(name);
	const char *p = parts;

	while (p && *p) {
		if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

static struct sheaf_cache *bench_cache(const char *name, const char *part)
{
	struct sheaf_cache_args args = { .capacity = CAPACITY };
	struct sheaf_cache *sc;

	sc = sheaf_cache_create(name, OBJ_SIZE, 0, 0, NULL, &args);
	if (IS_ERR(sc))
		return sc;
	if (WARN_ON_ONCE(nr_held == ARRAY_SIZE(held))) {
		sheaf_cache_destroy(sc);
		return ERR_PTR(-ENOSPC);
	}
	held[nr_held].name = part;
	held[nr_held].sc = sc;
	held[nr_held].peak = 0;
	nr_held++;
	return sc;
}

static void destroy_all(void)
{
	while (nr_held)
		sheaf_cache_destroy(held[--nr_held].sc);
	rcu_barrier();		/* the rcu part's call_rcu() frees to b.stock */
	kmem_cache_destroy(b.native);
	kmem_cache_destroy(b.stock);
	kfree(b.objs);
	kfree(b.order);
}

static int set_up(void)
{
	b.objs = kcalloc(MAX_BATCH, sizeof(*b.objs), GFP_KERNEL);
	b.order = kcalloc(MAX_BATCH, sizeof(*b.order), GFP_KERNEL);
	b.stock = kmem_cache_create("sheaf_bench_stock", OBJ_SIZE, 0, 0, NULL);
	if (!b.objs || !b.order || !b.stock)
		return -ENOMEM;
	spin_lock_init(&b.lock);
	b.native = native_cache_create("sheaf_bench_native");
	b.native_prefill = b.native && native_prefill_resolve();
	pr_info("native sheaves: %s; native prefill API: %s\n",
		b.native ? "yes" : "no", b.native_prefill ? "resolved" : "no");
	return 0;
}

typedef void (*part_fn)(struct sheaf_cache *sc);

/* Each part gets a sheafmod cache of its own, named @cache. */
static int run_part(const char *name, const char *cache, part_fn fn)
{
	struct sheaf_cache *sc;

	if (!part_on(name))
		return 0;
	sc = bench_cache(cache, name);
	if (IS_ERR(sc))
		return PTR_ERR(sc);
	pr_info("part %s: start\n", name);
	fn(sc);
	pr_info("part %s: done\n", name);
	return 0;
}

struct runner {
	struct completion done;
	int ret;
};

/* Single-CPU parts run on one CPU, so that per-CPU state stays put. */
static int bench_main(void *arg)
{
	struct runner *run = arg;
	int ret;

	ret = run_part("prefill", "sheaf_bench_prefill", run_prefill);
	if (!ret)
		ret = run_part("percpu", "sheaf_bench_percpu", run_percpu);
	if (!ret)
		ret = run_part("bulk", "sheaf_bench_bulk", run_bulk);
	if (!ret)
		ret = run_part("scale", "sheaf_bench_scale", run_scale);
	if (!ret)
		ret = run_part("pc", "sheaf_bench_pc", run_pc);
	if (!ret)
		ret = run_part("tune", "sheaf_bench_tune", run_tune);
	if (!ret)
		ret = run_part("rcu", "sheaf_bench_rcu", run_rcu);
	if (!ret && part_on("memory"))
		report_held();
	run->ret = ret;
	complete(&run->done);
	return 0;
}

static int __init sheaf_bench_init(void)
{
	struct task_struct *task;
	struct runner run;
	int ret;

	if (!reps || reps > MAX_REPS || !rounds)
		return -EINVAL;
	ret = set_up();
	if (ret)
		goto out;
	init_completion(&run.done);
	task = kthread_create(bench_main, &run, "sheaf_bench");
	if (IS_ERR(task)) {
		ret = PTR_ERR(task);
		goto out;
	}
	kthread_bind(task, cpumask_first(cpu_online_mask));
	wake_up_process(task);
	/* Short waits: a long benchmark is not a hung task. */
	while (!wait_for_completion_timeout(&run.done, 10 * HZ))
		;
	ret = run.ret;
	if (b.failures)
		pr_err("error: %u allocations failed\n", b.failures);
out:
	destroy_all();
	return ret;
}

static void __exit sheaf_bench_exit(void)
{
}

module_init(sheaf_bench_init);
module_exit(sheaf_bench_exit);

MODULE_DESCRIPTION("Benchmark of sheafmod against the stock slab");
MODULE_LICENSE("GPL");
