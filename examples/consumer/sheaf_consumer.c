// SPDX-License-Identifier: GPL-2.0
/*
 * A third-party module using sheafmod as installed by DKMS: built against
 * the installed headers and Module.symvers (see Kbuild), it keeps a cache
 * of "sessions" with sheaves and fills a batch that must not fail from a
 * prefilled sheaf.  The cache stays until unload, so its statistics can be
 * read in /sys/kernel/sheaf/sheaf_consumer/.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/spinlock.h>

#include <sheaf.h>

MODULE_IMPORT_NS(SHEAF_NS);

#define BATCH	8

struct session {
	u64 id;
	u8 key[32];
};

static struct sheaf_cache *sessions;
static struct session *batch[BATCH];
static DEFINE_SPINLOCK(batch_lock);

/* The batch is filled under a spinlock, from a sheaf prefilled before it. */
static int fill_batch(void)
{
	struct sheaf *sheaf;
	unsigned long flags;
	unsigned int i;

	sheaf = sheaf_prefill(sessions, GFP_KERNEL, BATCH);
	if (!sheaf)
		return -ENOMEM;
	spin_lock_irqsave(&batch_lock, flags);
	for (i = 0; i < BATCH; i++) {
		batch[i] = sheaf_alloc(sessions, __GFP_ZERO, sheaf);
		batch[i]->id = i;
	}
	spin_unlock_irqrestore(&batch_lock, flags);
	sheaf_return(sessions, GFP_KERNEL, sheaf);
	return 0;
}

static void empty_batch(void)
{
	unsigned int i;

	for (i = 0; i < BATCH; i++)
		sheaf_cache_free(sessions, batch[i]);
}

static int __init sheaf_consumer_init(void)
{
	struct session *s;
	unsigned int i;
	int err = 0;

	sessions = sheaf_cache_create("sheaf_consumer", sizeof(struct session),
				      0, 0, NULL, NULL);
	if (IS_ERR(sessions))
		return PTR_ERR(sessions);

	for (i = 0; i < 1000 && !err; i++) {
		s = sheaf_cache_alloc(sessions, GFP_KERNEL);
		if (s)
			sheaf_cache_free(sessions, s);
		err = fill_batch();
		if (!err)
			empty_batch();
	}
	if (err) {
		sheaf_cache_destroy(sessions);
		return err;
	}
	pr_info("ready; see /sys/kernel/sheaf/sheaf_consumer/\n");
	return 0;
}

static void __exit sheaf_consumer_exit(void)
{
	sheaf_cache_destroy(sessions);
}

module_init(sheaf_consumer_init);
module_exit(sheaf_consumer_exit);

MODULE_DESCRIPTION("Example third-party consumer of sheafmod");
MODULE_LICENSE("GPL");
