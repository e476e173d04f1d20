// SPDX-License-Identifier: GPL-2.0
/*
 * A small consumer of sheafmod: a cache of "requests" allocated the usual
 * way, plus a section that must not fail, made safe with a prefilled sheaf.
 *
 * Loading it runs a short workload and keeps the cache, so its statistics
 * can be read in /sys/kernel/sheaf/sheaf_example/ until it is unloaded.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/list.h>
#include <linux/module.h>
#include <linux/spinlock.h>

#include "sheaf.h"

MODULE_IMPORT_NS(SHEAF_NS);

static unsigned int rounds = 10000;
module_param(rounds, uint, 0444);
MODULE_PARM_DESC(rounds, "workload rounds run at load time");

struct request {
	struct list_head node;
	u64 id;
	u8 payload[48];
};

static struct sheaf_cache *requests;
static DEFINE_SPINLOCK(queue_lock);
static LIST_HEAD(queue);

/*
 * Queue up to @max requests under a spinlock with interrupts off, where
 * allocating from the slab could fail: the objects come from a sheaf
 * prefilled beforehand, so they cannot.
 */
static int queue_requests(unsigned int n, unsigned int max)
{
	struct sheaf *sheaf;
	struct request *rq;
	unsigned long flags;
	unsigned int i;

	sheaf = sheaf_prefill(requests, GFP_KERNEL, max);
	if (!sheaf)
		return -ENOMEM;

	spin_lock_irqsave(&queue_lock, flags);
	for (i = 0; i < n; i++) {
		rq = sheaf_alloc(requests, __GFP_ZERO, sheaf);
		rq->id = i;
		list_add_tail(&rq->node, &queue);
	}
	spin_unlock_irqrestore(&queue_lock, flags);

	sheaf_return(requests, GFP_KERNEL, sheaf);
	return 0;
}

static void complete_requests(void)
{
	struct request *rq, *next;
	LIST_HEAD(done);

	spin_lock_irq(&queue_lock);
	list_splice_init(&queue, &done);
	spin_unlock_irq(&queue_lock);

	list_for_each_entry_safe(rq, next, &done, node)
		sheaf_cache_free(requests, rq);
}

static int run_workload(void)
{
	struct request *batch[16];
	unsigned int r, i;
	int err;

	for (r = 0; r < rounds; r++) {
		/* The common path: per-CPU sheaves. */
		for (i = 0; i < ARRAY_SIZE(batch); i++)
			batch[i] = sheaf_cache_alloc(requests, GFP_KERNEL);
		for (i = 0; i < ARRAY_SIZE(batch); i++)
			sheaf_cache_free(requests, batch[i]);

		/* The guaranteed path: usually 1-3 requests, at most 32. */
		err = queue_requests(1 + r % 3, 32);
		if (err)
			return err;
		complete_requests();
		cond_resched();
	}
	return 0;
}

static int __init sheaf_example_init(void)
{
	int err;

	requests = sheaf_cache_create("sheaf_example", sizeof(struct request),
				      0, 0, NULL, NULL);
	if (IS_ERR(requests))
		return PTR_ERR(requests);

	err = run_workload();
	if (err) {
		sheaf_cache_destroy(requests);
		return err;
	}
	pr_info("%u rounds done; see /sys/kernel/sheaf/sheaf_example/\n",
		rounds);
	return 0;
}

static void __exit sheaf_example_exit(void)
{
	sheaf_cache_destroy(requests);
}

module_init(sheaf_example_init);
module_exit(sheaf_example_exit);

MODULE_DESCRIPTION("Example consumer of sheafmod");
MODULE_LICENSE("GPL");
