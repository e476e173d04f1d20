// SPDX-License-Identifier: GPL-2.0
/*
 * A consumer of the slab's prefilled-sheaf API written with the upstream
 * names only (sheaf_upstream.h), driven by selftests/sheaf/sheaf.sh as
 * test_sheaf.ko is: loading it with run=<case> runs that case, a failing
 * case fails the load, and "pass" or "skip: <why>" is left in the result
 * parameter.  The mode parameter says who serves the calls: "sheafmod",
 * or "native" where the code may call the slab's own.
 *
 * The checks hold for the slab's own API as well (where it is free to do
 * more than asked, a check says "at least"); what only sheafmod promises
 * is checked only when sheafmod serves.  Every case destroys its caches
 * at the end, and the slab warns if an object was left in one.
 *
 * Cases that provoke API misuse print "sheaf_test: expect-warn begin/end"
 * around it: the test bed allows kernel warnings only there.
 */
#define pr_fmt(fmt) "sheaf_test: " fmt

#include <linux/errno.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#include "sheaf_upstream.h"
/* For upstream_attach only: a layer attached with sheafmod's own API. */
#include "sheaf.h"
#include "sheaf_test.h"

#if SHEAF_NATIVE_PREFILL_API
#define SERVED_BY_SHEAFMOD false
static char mode[16] = "native";
#else
#define SERVED_BY_SHEAFMOD true
static char mode[16] = "sheafmod";
#endif
module_param_string(mode, mode, sizeof(mode), 0444);
MODULE_PARM_DESC(mode, "who serves the calls: sheafmod or native");

#define OBJ_SIZE	64
#define CAPACITY	32
#define MAX_OBJS	512
/* More objects than any sheaf array can hold: prefill must fail. */
#define HUGE_SIZE	(16U * 1024 * 1024)

/* ---- fixtures ------------------------------------------------------------- */

/* Objects taken from sheaves, freed at the end of the case. */
struct objs {
	void *p[MAX_OBJS];
	unsigned int n;
};

static struct kmem_cache *sheaf_cache(const char *name)
{
	struct kmem_cache *s;

	s = sheaf_upstream_cache_create(name, OBJ_SIZE, 0, 0, NULL, CAPACITY);
	CHECK(s);
	return s;
}

static struct kmem_cache *bare_cache(const char *name)
{
	struct kmem_cache *s;

	s = kmem_cache_create(name, OBJ_SIZE, 0, 0, NULL);
	CHECK(s);
	return s;
}

static bool all_zero(const void *obj)
{
	return !memchr_inv(obj, 0, OBJ_SIZE);
}

/* Takes @n objects from @sheaf; false (and a failed check) if one fails. */
static bool take(struct kmem_cache *s, struct slab_sheaf *sheaf,
		 struct objs *o, unsigned int n, gfp_t gfp)
{
	void *obj;

	while (n--) {
		if (!CHECK(o->n < MAX_OBJS))
			return false;
		obj = kmem_cache_alloc_from_sheaf(s, gfp, sheaf);
		if (!CHECK(obj))
			return false;
		if (gfp & __GFP_ZERO)
			CHECK(all_zero(obj));
		o->p[o->n++] = obj;
	}
	return true;
}

static void free_objs(struct kmem_cache *s, struct objs *o)
{
	while (o->n)
		kmem_cache_free(s, o->p[--o->n]);
}

static struct objs *objs_new(void)
{
	struct objs *o = kzalloc(sizeof(*o), GFP_KERNEL);

	CHECK(o);
	return o;
}

/* ---- the cases ------------------------------------------------------------ */

/*
 * All five calls on a cache with sheaves: prefill, k allocations under a
 * spinlock with interrupts off, refill in place, exactly sheaf_size()
 * allocations then NULL, refill beyond the capacity (a new oversize
 * sheaf), allocations from it, return; then prefills again.
 */
static void test_prefill(void)
{
	static DEFINE_SPINLOCK(lock);
	struct slab_sheaf *sheaf, *before;
	unsigned int size, k = 8;
	struct kmem_cache *s;
	unsigned long flags;
	struct objs *o;
	bool ok;

	o = objs_new();
	if (!o)
		return;
	s = sheaf_cache("t_up_prefill");
	if (!s)
		goto out;

	sheaf = kmem_cache_prefill_sheaf(s, GFP_KERNEL, k);
	if (!CHECK(sheaf))
		goto out_cache;
	size = kmem_cache_sheaf_size(sheaf);
	CHECK(size >= k);
	if (SERVED_BY_SHEAFMOD)		/* refilled to the capacity */
		CHECK_EQ(size, CAPACITY);

	spin_lock_irqsave(&lock, flags);
	ok = take(s, sheaf, o, k, __GFP_ZERO);
	spin_unlock_irqrestore(&lock, flags);
	CHECK(ok);
	CHECK_EQ(kmem_cache_sheaf_size(sheaf), size - k);

	/* Within the capacity the sheaf is refilled in place. */
	before = sheaf;
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL, &sheaf, CAPACITY), 0);
	CHECK(sheaf == before);
	size = kmem_cache_sheaf_size(sheaf);
	CHECK(size >= CAPACITY);
	/* Enough already: nothing to do. */
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL, &sheaf, 1), 0);
	CHECK(sheaf == before);
	CHECK_EQ(kmem_cache_sheaf_size(sheaf), size);

	/* Exactly sheaf_size() allocations, then NULL: no fallback. */
	take(s, sheaf, o, size, 0);
	CHECK_EQ(kmem_cache_sheaf_size(sheaf), 0);
	CHECK(!kmem_cache_alloc_from_sheaf(s, 0, sheaf));

	/* Beyond the capacity: a new, oversize sheaf replaces it. */
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL, &sheaf, 3 * CAPACITY),
		 0);
	CHECK(sheaf != before);
	size = kmem_cache_sheaf_size(sheaf);
	CHECK(size >= 3 * CAPACITY);
	take(s, sheaf, o, 3 * CAPACITY, __GFP_ZERO);
	CHECK_EQ(kmem_cache_sheaf_size(sheaf), size - 3 * CAPACITY);
	kmem_cache_return_sheaf(s, GFP_KERNEL, sheaf);

	/* Prefills after returns, the second one without sleeping. */
	sheaf = kmem_cache_prefill_sheaf(s, GFP_KERNEL, 4);
	if (CHECK(sheaf)) {
		take(s, sheaf, o, 1, 0);
		kmem_cache_return_sheaf(s, GFP_KERNEL, sheaf);
	}
	sheaf = kmem_cache_prefill_sheaf(s, GFP_NOWAIT, 4);
	if (CHECK(sheaf)) {
		CHECK(kmem_cache_sheaf_size(sheaf) >= 4);
		take(s, sheaf, o, 4, 0);
		kmem_cache_return_sheaf(s, GFP_NOWAIT, sheaf);
	}
	free_objs(s, o);
out_cache:
	sheaf_upstream_cache_destroy(s);
out:
	kfree(o);
}

/*
 * A cache that was never given sheaves: the calls still work, as the slab
 * makes them work for such a cache (oversize sheaves from the slab).
 */
static void test_unattached(void)
{
	struct slab_sheaf *sheaf, *before;
	struct kmem_cache *s;
	unsigned int size, i;
	struct objs *o;
	void *dirty[8];

	o = objs_new();
	if (!o)
		return;
	s = bare_cache("t_up_bare");
	if (!s)
		goto out;

	/* Objects dirtied and freed: __GFP_ZERO must zero them again. */
	for (i = 0; i < ARRAY_SIZE(dirty); i++) {
		dirty[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (CHECK(dirty[i]))
			memset(dirty[i], 0xa5, OBJ_SIZE);
	}
	for (i = 0; i < ARRAY_SIZE(dirty); i++)
		kmem_cache_free(s, dirty[i]);

	sheaf = kmem_cache_prefill_sheaf(s, GFP_KERNEL, 4);
	if (!CHECK(sheaf))
		goto out_cache;
	size = kmem_cache_sheaf_size(sheaf);
	CHECK(size >= 4);
	if (SERVED_BY_SHEAFMOD)		/* oversize: exactly what was asked */
		CHECK_EQ(size, 4);
	take(s, sheaf, o, size, __GFP_ZERO);
	CHECK(!kmem_cache_alloc_from_sheaf(s, 0, sheaf));

	/* In place within its capacity, to the capacity. */
	before = sheaf;
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL, &sheaf, 2), 0);
	CHECK(sheaf == before);
	CHECK(kmem_cache_sheaf_size(sheaf) >= 2);
	if (SERVED_BY_SHEAFMOD)
		CHECK_EQ(kmem_cache_sheaf_size(sheaf), 4);
	take(s, sheaf, o, 2, __GFP_ZERO);

	/* Beyond it: a bigger sheaf. */
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL, &sheaf, 16), 0);
	CHECK(kmem_cache_sheaf_size(sheaf) >= 16);
	take(s, sheaf, o, 3, __GFP_ZERO);
	/* Returned with objects in it: they go back to the slab. */
	kmem_cache_return_sheaf(s, GFP_KERNEL, sheaf);
	free_objs(s, o);
out_cache:
	kmem_cache_destroy(s);
out:
	kfree(o);
}

/* Failed prefills and refills change nothing; bad arguments as upstream. */
static void check_failures(struct kmem_cache *s)
{
	struct slab_sheaf *sheaf, *before, *null = NULL;
	unsigned int size;
	void *obj;

	CHECK(!kmem_cache_prefill_sheaf(s, GFP_KERNEL, 0));
	CHECK(!kmem_cache_prefill_sheaf(s, GFP_KERNEL | __GFP_NOWARN,
					HUGE_SIZE));
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL, NULL, 4), -EINVAL);
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL, &null, 4), -EINVAL);

	sheaf = kmem_cache_prefill_sheaf(s, GFP_KERNEL, 4);
	if (!CHECK(sheaf))
		return;
	size = kmem_cache_sheaf_size(sheaf);
	before = sheaf;
	CHECK_EQ(kmem_cache_refill_sheaf(s, GFP_KERNEL | __GFP_NOWARN, &sheaf,
					 HUGE_SIZE), -ENOMEM);
	/* The old sheaf is as it was, and still works. */
	CHECK(sheaf == before);
	CHECK_EQ(kmem_cache_sheaf_size(sheaf), size);
	obj = kmem_cache_alloc_from_sheaf(s, 0, sheaf);
	CHECK(obj);
	CHECK_EQ(kmem_cache_sheaf_size(sheaf), size - 1);
	kmem_cache_return_sheaf(s, GFP_KERNEL, sheaf);
	kmem_cache_free(s, obj);
}

static void test_failure(void)
{
	struct kmem_cache *s;

	s = sheaf_cache("t_up_fail");
	if (s) {
		check_failures(s);
		sheaf_upstream_cache_destroy(s);
	}
	s = bare_cache("t_up_fail_bare");
	if (s) {
		check_failures(s);
		kmem_cache_destroy(s);
	}
}

/*
 * Misuse the slab's own calls do not survive (a sheaf of another cache,
 * NULL) warns once and does no harm.
 */
static void test_misuse(void)
{
	struct kmem_cache *s, *t;
	struct slab_sheaf *sheaf;
	unsigned int size;

	if (!SERVED_BY_SHEAFMOD) {
		mark_skipped("the slab's own calls do not check their arguments");
		return;
	}
	s = sheaf_cache("t_up_misuse");
	if (!s)
		return;
	t = bare_cache("t_up_misuse_bare");
	if (!t)
		goto out;
	sheaf = kmem_cache_prefill_sheaf(s, GFP_KERNEL, 4);
	if (!CHECK(sheaf))
		goto out_t;
	size = kmem_cache_sheaf_size(sheaf);

	EXPECT_WARN_BEGIN("upstream_misuse");
	CHECK(!kmem_cache_alloc_from_sheaf(t, 0, sheaf));
	CHECK_EQ(kmem_cache_refill_sheaf(t, GFP_KERNEL, &sheaf, 8), -EINVAL);
	kmem_cache_return_sheaf(t, GFP_KERNEL, sheaf);
	CHECK(!kmem_cache_alloc_from_sheaf(s, 0, NULL));
	kmem_cache_return_sheaf(s, GFP_KERNEL, NULL);
	CHECK_EQ(kmem_cache_sheaf_size(NULL), 0);
	EXPECT_WARN_END("upstream_misuse");

	/* Nothing happened to the sheaf. */
	CHECK_EQ(kmem_cache_sheaf_size(sheaf), size);
	kmem_cache_return_sheaf(s, GFP_KERNEL, sheaf);
out_t:
	kmem_cache_destroy(t);
out:
	sheaf_upstream_cache_destroy(s);
}

/*
 * A layer attached with sheafmod's own API serves the upstream names from
 * the next prefill on, and no longer once detached; a sheaf prefilled
 * before the attach still goes back to the slab.
 */
static void test_attach(void)
{
	struct sheaf_cache_args args = { .capacity = CAPACITY };
	struct slab_sheaf *before, *after;
	struct sheaf_cache *sc;
	struct kmem_cache *s;
	void *a = NULL, *b = NULL;

	if (!SERVED_BY_SHEAFMOD) {
		mark_skipped("the slab's own sheaves serve here");
		return;
	}
	s = bare_cache("t_up_attach");
	if (!s)
		return;
	before = kmem_cache_prefill_sheaf(s, GFP_KERNEL, 2);
	if (!CHECK(before))
		goto out;
	CHECK_EQ(kmem_cache_sheaf_size(before), 2);

	sc = sheaf_cache_attach(s, "t_up_attach", &args);
	if (!CHECK(!IS_ERR(sc))) {
		kmem_cache_return_sheaf(s, GFP_KERNEL, before);
		goto out;
	}
	after = kmem_cache_prefill_sheaf(s, GFP_KERNEL, 2);
	if (CHECK(after)) {
		/* The layer's: refilled to its capacity. */
		CHECK_EQ(kmem_cache_sheaf_size(after), CAPACITY);
		b = kmem_cache_alloc_from_sheaf(s, 0, after);
		CHECK(b);
		kmem_cache_return_sheaf(s, GFP_KERNEL, after);
	}
	a = kmem_cache_alloc_from_sheaf(s, 0, before);
	CHECK(a);
	CHECK_EQ(kmem_cache_sheaf_size(before), 1);
	kmem_cache_return_sheaf(s, GFP_KERNEL, before);
	sheaf_cache_detach(sc);

	/* Without the layer again: exactly what is asked. */
	before = kmem_cache_prefill_sheaf(s, GFP_KERNEL, 3);
	if (CHECK(before)) {
		CHECK_EQ(kmem_cache_sheaf_size(before), 3);
		kmem_cache_return_sheaf(s, GFP_KERNEL, before);
	}
	kmem_cache_free(s, a);
	kmem_cache_free(s, b);
out:
	kmem_cache_destroy(s);
}

/*
 * One prefill, allocation and return on a cache kept until the module is
 * unloaded: sheaf.sh then looks at who served them (the layer's statistics
 * under /sys/kernel/sheaf/t_up_route, and the module's dependencies).
 */
static struct kmem_cache *route_cache;

static void test_routing(void)
{
	struct slab_sheaf *sheaf;
	void *obj;

	route_cache = sheaf_cache("t_up_route");
	if (!route_cache)
		return;
	sheaf = kmem_cache_prefill_sheaf(route_cache, GFP_KERNEL, 8);
	if (!CHECK(sheaf))
		return;
	obj = kmem_cache_alloc_from_sheaf(route_cache, 0, sheaf);
	CHECK(obj);
	kmem_cache_return_sheaf(route_cache, GFP_KERNEL, sheaf);
	kmem_cache_free(route_cache, obj);
}

static const struct test_case test_cases[] = {
	{ "upstream_prefill", test_prefill },
	{ "upstream_unattached", test_unattached },
	{ "upstream_failure", test_failure },
	{ "upstream_misuse", test_misuse },
	{ "upstream_attach", test_attach },
	{ "upstream_routing", test_routing },
};

static int __init test_sheaf_upstream_init(void)
{
	int ret;

	pr_info("calls served by %s\n", mode);
	ret = run_test_case(test_cases, ARRAY_SIZE(test_cases));
	if (ret)
		sheaf_upstream_cache_destroy(route_cache);
	return ret;
}

static void __exit test_sheaf_upstream_exit(void)
{
	sheaf_upstream_cache_destroy(route_cache);
}

module_init(test_sheaf_upstream_init);
module_exit(test_sheaf_upstream_exit);

MODULE_DESCRIPTION("A consumer of sheafmod written with the upstream names");
MODULE_LICENSE("GPL");
