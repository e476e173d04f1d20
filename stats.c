// SPDX-License-Identifier: GPL-2.0
/*
 * Statistics and settings of every sheaf cache in /sys/kernel/sheaf/<name>/:
 * one file per counter (upstream SLUB's CONFIG_SLUB_STATS names, in its
 * "total C<cpu>=n" format), "stats" with all counters, the cache's
 * parameters, per-node barn occupancy and the objects cached now.
 *
 * Root only, as /proc/slabinfo: counters and parameters are readable by
 * root alone (0400), tuning files are root's to read and write (0600),
 * shrink is root's to write (0200).  The counters tell allocation
 * patterns of other users' work.
 */
#include <linux/cpumask.h>
#include <linux/kobject.h>
#include <linux/nodemask.h>
#include <linux/sysfs.h>

#include "sheaf_internal.h"

static struct kset *sheaf_kset;

static struct sheaf_cache *to_sc(struct kobject *kobj)
{
	return container_of(kobj, struct sheaf_cache, kobj);
}

static struct kobj_attribute sheaf_stat_attrs[NR_SHEAF_STATS];

static ssize_t stat_show(struct kobject *kobj, struct kobj_attribute *attr,
			 char *buf)
{
	enum sheaf_stat item = attr - sheaf_stat_attrs;
	struct sheaf_cache *sc = to_sc(kobj);
	unsigned long v;
	unsigned int cpu;
	int len;

	len = sysfs_emit(buf, "%lu", sheaf_stat_sum(sc, item));
	for_each_possible_cpu(cpu) {
		v = per_cpu_ptr(sc->stats, cpu)->v[item];
		if (v)
			len += sysfs_emit_at(buf, len, " C%u=%lu", cpu, v);
	}
	return len + sysfs_emit_at(buf, len, "\n");
}

#define SHEAF_STAT_ATTR(name) __ATTR(name, 0400, stat_show, NULL)

static struct kobj_attribute sheaf_stat_attrs[NR_SHEAF_STATS] = {
	[ALLOC_CPU_SHEAF] = SHEAF_STAT_ATTR(alloc_cpu_sheaf),
	[FREE_CPU_SHEAF] = SHEAF_STAT_ATTR(free_cpu_sheaf),
	[SHEAF_FLUSH] = SHEAF_STAT_ATTR(sheaf_flush),
	[SHEAF_REFILL] = SHEAF_STAT_ATTR(sheaf_refill),
	[SHEAF_ALLOC] = SHEAF_STAT_ATTR(sheaf_alloc),
	[SHEAF_FREE] = SHEAF_STAT_ATTR(sheaf_free),
	[BARN_GET] = SHEAF_STAT_ATTR(barn_get),
	[BARN_GET_FAIL] = SHEAF_STAT_ATTR(barn_get_fail),
	[BARN_PUT] = SHEAF_STAT_ATTR(barn_put),
	[BARN_PUT_FAIL] = SHEAF_STAT_ATTR(barn_put_fail),
	[SHEAF_PREFILL_FAST] = SHEAF_STAT_ATTR(sheaf_prefill_fast),
	[SHEAF_PREFILL_SLOW] = SHEAF_STAT_ATTR(sheaf_prefill_slow),
	[SHEAF_PREFILL_OVERSIZE] = SHEAF_STAT_ATTR(sheaf_prefill_oversize),
	[SHEAF_RETURN_FAST] = SHEAF_STAT_ATTR(sheaf_return_fast),
	[SHEAF_RETURN_SLOW] = SHEAF_STAT_ATTR(sheaf_return_slow),
	[ALLOC_SLAB] = SHEAF_STAT_ATTR(alloc_slab),
	[FREE_SLAB] = SHEAF_STAT_ATTR(free_slab),
	[FREE_REMOTE] = SHEAF_STAT_ATTR(free_remote),
	[ALLOC_FROM_SHEAF] = SHEAF_STAT_ATTR(alloc_from_sheaf),
	[MISUSE] = SHEAF_STAT_ATTR(misuse),
	[SHRINKER_SCAN] = SHEAF_STAT_ATTR(shrinker_scan),
	[PARKED_WRITE] = SHEAF_STAT_ATTR(parked_write),
	[DOUBLE_FREE] = SHEAF_STAT_ATTR(double_free),
	[PREFILLED] = SHEAF_STAT_ATTR(prefilled),
	[RETURNED] = SHEAF_STAT_ATTR(returned),
	[ALLOC_BULK] = SHEAF_STAT_ATTR(alloc_bulk),
	[FREE_BULK] = SHEAF_STAT_ATTR(free_bulk),
	[FREE_RCU_SHEAF] = SHEAF_STAT_ATTR(free_rcu_sheaf),
	[FREE_RCU_SHEAF_FAIL] = SHEAF_STAT_ATTR(free_rcu_sheaf_fail),
	[RCU_SHEAF_SUBMIT] = SHEAF_STAT_ATTR(rcu_sheaf_submit),
	[RCU_DONE] = SHEAF_STAT_ATTR(rcu_done),
	[RCU_FALLBACK_NODE] = SHEAF_STAT_ATTR(rcu_fallback_node),
	[RCU_FALLBACK_SYNC] = SHEAF_STAT_ATTR(rcu_fallback_sync),
	[RCU_FALLBACK_RESERVE] = SHEAF_STAT_ATTR(rcu_fallback_reserve),
	[RCU_LOST] = SHEAF_STAT_ATTR(rcu_lost),
};

static ssize_t stats_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct sheaf_cache *sc = to_sc(kobj);
	int item, len = 0;

	for (item = 0; item < NR_SHEAF_STATS; item++)
		len += sysfs_emit_at(buf, len, "%s %lu\n",
				     sheaf_stat_attrs[item].attr.name,
				     sheaf_stat_sum(sc, item));
	return len;
}

static struct kobj_attribute stats_attr = __ATTR_RO_MODE(stats, 0400);

static ssize_t capacity_show(struct kobject *kobj,
			     struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(to_sc(kobj)->capacity));
}

/* A new capacity, 0 for the default. */
static ssize_t capacity_store(struct kobject *kobj, struct kobj_attribute *attr,
			      const char *buf, size_t count)
{
	unsigned int capacity;
	int err;

	err = kstrtouint(buf, 0, &capacity);
	if (!err)
		err = sheaf_cache_set_capacity(to_sc(kobj), capacity);
	return err ?: count;
}

static struct kobj_attribute capacity_attr = __ATTR_RW_MODE(capacity, 0600);

/* One barn limit, the other kept. */
static ssize_t barn_limit_store(struct kobject *kobj, const char *buf,
				size_t count, bool full)
{
	unsigned int max;
	int err;

	err = kstrtouint(buf, 0, &max);
	if (!err && max > SHEAF_MAX_BARN)
		err = -EINVAL;
	if (!err)
		err = sheaf_cache_set_barn_limits(to_sc(kobj),
						  full ? max : SHEAF_BARN_KEEP,
						  full ? SHEAF_BARN_KEEP : max);
	return err ?: count;
}

static ssize_t barn_max_full_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(to_sc(kobj)->barn_max_full));
}

static ssize_t barn_max_full_store(struct kobject *kobj,
				   struct kobj_attribute *attr,
				   const char *buf, size_t count)
{
	return barn_limit_store(kobj, buf, count, true);
}

static struct kobj_attribute barn_max_full_attr = __ATTR_RW_MODE(barn_max_full, 0600);

static ssize_t barn_max_empty_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(to_sc(kobj)->barn_max_empty));
}

static ssize_t barn_max_empty_store(struct kobject *kobj,
				    struct kobj_attribute *attr,
				    const char *buf, size_t count)
{
	return barn_limit_store(kobj, buf, count, false);
}

static struct kobj_attribute barn_max_empty_attr = __ATTR_RW_MODE(barn_max_empty, 0600);

static ssize_t object_size_show(struct kobject *kobj,
				struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", to_sc(kobj)->object_size);
}

static struct kobj_attribute object_size_attr = __ATTR_RO_MODE(object_size, 0400);

static ssize_t cached_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%lu\n", sheaf_cache_nr_cached(to_sc(kobj)));
}

static struct kobj_attribute cached_attr = __ATTR_RO_MODE(cached, 0400);

static ssize_t barns_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct sheaf_cache *sc = to_sc(kobj);
	unsigned int nr_full, nr_empty;
	int node, len = 0;

	for_each_node(node) {
		barn_counts(sc->barns[node], &nr_full, &nr_empty);
		len += sysfs_emit_at(buf, len, "node%d full=%u empty=%u\n",
				     node, nr_full, nr_empty);
	}
	return len;
}

static struct kobj_attribute barns_attr = __ATTR_RO_MODE(barns, 0400);

/* Writing anything gives every cached object back to the slab. */
static ssize_t shrink_store(struct kobject *kobj, struct kobj_attribute *attr,
			    const char *buf, size_t count)
{
	sheaf_cache_shrink(to_sc(kobj));
	return count;
}

static struct kobj_attribute shrink_attr = __ATTR_WO(shrink);

static struct attribute *sheaf_attrs[NR_SHEAF_STATS + 16] = {
	&stats_attr.attr,
	&capacity_attr.attr,
	&barn_max_full_attr.attr,
	&barn_max_empty_attr.attr,
	&object_size_attr.attr,
	&cached_attr.attr,
	&barns_attr.attr,
	&shrink_attr.attr,
	/* the counters follow, added by sheaf_sysfs_init() */
};

static const struct attribute_group sheaf_group = {
	.attrs = sheaf_attrs,
};

static const struct attribute_group *sheaf_groups[] = {
	&sheaf_group,
	NULL,
};

static void sheaf_kobj_release(struct kobject *kobj)
{
	kfree(to_sc(kobj));
}

static const struct kobj_type sheaf_ktype = {
	.release = sheaf_kobj_release,
	.sysfs_ops = &kobj_sysfs_ops,
	.default_groups = sheaf_groups,
};

/**
 * sheaf_sysfs_kobj_init() - prepare the kobject that frees a sheaf cache
 * @sc: the sheaf cache; freed by the last kobject_put() on @sc->kobj
 */
void sheaf_sysfs_kobj_init(struct sheaf_cache *sc)
{
	kobject_init(&sc->kobj, &sheaf_ktype);
	sc->kobj.kset = sheaf_kset;
}

/**
 * sheaf_sysfs_add() - show a sheaf cache in sysfs
 * @sc: the sheaf cache, after sheaf_sysfs_kobj_init()
 *
 * Return: 0 or a negative errno.
 */
int sheaf_sysfs_add(struct sheaf_cache *sc)
{
	return kobject_add(&sc->kobj, NULL, "%s", sc->name);
}

/**
 * sheaf_sysfs_del() - remove a sheaf cache from sysfs
 * @sc: the sheaf cache
 */
void sheaf_sysfs_del(struct sheaf_cache *sc)
{
	kobject_del(&sc->kobj);
}

/**
 * sheaf_sysfs_init() - create /sys/kernel/sheaf
 *
 * Return: 0 or -ENOMEM.
 */
int sheaf_sysfs_init(void)
{
	unsigned int i, n = 0;

	while (sheaf_attrs[n])
		n++;
	for (i = 0; i < NR_SHEAF_STATS; i++)
		sheaf_attrs[n + i] = &sheaf_stat_attrs[i].attr;

	sheaf_kset = kset_create_and_add("sheaf", NULL, kernel_kobj);
	return sheaf_kset ? 0 : -ENOMEM;
}

/**
 * sheaf_sysfs_exit() - remove /sys/kernel/sheaf
 */
void sheaf_sysfs_exit(void)
{
	kset_unregister(sheaf_kset);
}
