// SPDX-License-Identifier: GPL-2.0
/*
 * The barn: a NUMA node's depot of whole sheaves, full and empty, each list
 * bounded.  CPUs trade sheaves with it when their own run full or empty.
 *
 * The lock is a raw spinlock taken with interrupts disabled: the per-CPU
 * paths call in with preemption disabled (also on PREEMPT_RT), from any
 * context including hardirq, and hold it only for O(1) list operations.
 */
#include <linux/slab.h>

#include "sheaf_internal.h"

struct sheaf_barn *barn_create(int node)
{
	struct sheaf_barn *barn;

	/* A memoryless node's barn lives on whichever node has memory. */
	if (!node_state(node, N_MEMORY))
		node = NUMA_NO_NODE;
	barn = kzalloc_node(sizeof(*barn), GFP_KERNEL, node);
	if (!barn)
		return NULL;
	raw_spin_lock_init(&barn->lock);
	INIT_LIST_HEAD(&barn->full);
	INIT_LIST_HEAD(&barn->empty);
	return barn;
}

/* The barn must be empty: see barn_take_excess(). */
void barn_destroy(struct sheaf_barn *barn)
{
	WARN_ON_ONCE(barn->nr_full || barn->nr_empty);
	kfree(barn);
}

/* Counts contention for the statistics: a racy peek is good enough. */
static unsigned long barn_lock(struct sheaf_barn *barn)
	__acquires(&barn->lock)
{
	bool busy = raw_spin_is_locked(&barn->lock);
	unsigned long flags;

	raw_spin_lock_irqsave(&barn->lock, flags);
	if (busy)
		barn->contended++;
	return flags;
}

static void barn_unlock(struct sheaf_barn *barn, unsigned long flags)
	__releases(&barn->lock)
{
	raw_spin_unlock_irqrestore(&barn->lock, flags);
}

static struct sheaf *barn_pop(struct list_head *list, unsigned int *nr)
{
	struct sheaf *sheaf;

	sheaf = list_first_entry_or_null(list, struct sheaf, barn_list);
	if (sheaf) {
		list_del(&sheaf->barn_list);
		(*nr)--;
	}
	return sheaf;
}

/**
 * barn_get_full() - take a full sheaf from a barn
 * @barn: the node's barn
 *
 * Context: any context but NMI.
 * Return: a full sheaf now owned by the caller, or NULL if there is none.
 */
struct sheaf *barn_get_full(struct sheaf_barn *barn)
{
	struct sheaf *sheaf;
	unsigned long flags;

	if (!READ_ONCE(barn->nr_full))
		return NULL;
	flags = barn_lock(barn);
	sheaf = barn_pop(&barn->full, &barn->nr_full);
	barn_unlock(barn, flags);
	return sheaf;
}

/**
 * barn_get_empty() - take an empty sheaf from a barn
 * @barn: the node's barn
 *
 * Context: any context but NMI.
 * Return: an empty sheaf now owned by the caller, or NULL if there is none.
 */
struct sheaf *barn_get_empty(struct sheaf_barn *barn)
{
	struct sheaf *sheaf;
	unsigned long flags;

	if (!READ_ONCE(barn->nr_empty))
		return NULL;
	flags = barn_lock(barn);
	sheaf = barn_pop(&barn->empty, &barn->nr_empty);
	barn_unlock(barn, flags);
	return sheaf;
}

/**
 * barn_get_full_or_empty() - take a sheaf from a barn, preferring a full one
 * @barn: the node's barn
 *
 * Context: any context but NMI.
 * Return: a sheaf now owned by the caller, or NULL if the barn is empty.
 */
struct sheaf *barn_get_full_or_empty(struct sheaf_barn *barn)
{
	struct sheaf *sheaf;
	unsigned long flags;

	if (!READ_ONCE(barn->nr_full) && !READ_ONCE(barn->nr_empty))
		return NULL;
	flags = barn_lock(barn);
	sheaf = barn_pop(&barn->full, &barn->nr_full);
	if (!sheaf)
		sheaf = barn_pop(&barn->empty, &barn->nr_empty);
	barn_unlock(barn, flags);
	return sheaf;
}

static bool barn_push(struct sheaf_barn *barn, struct list_head *list,
		      unsigned int *nr, unsigned int max, struct sheaf *sheaf)
{
	unsigned long flags;
	bool added = false;

	flags = barn_lock(barn);
	if (*nr < max) {
		list_add(&sheaf->barn_list, list);
		(*nr)++;
		added = true;
	}
	barn_unlock(barn, flags);
	return added;
}

/**
 * barn_put_full() - give a full sheaf to a barn
 * @barn: the node's barn
 * @sheaf: a sheaf holding objects, owned by the caller
 * @max: the barn's limit of full sheaves
 *
 * Context: any context but NMI.
 * Return: true if the barn took @sheaf; false if it holds @max already, in
 * which case @sheaf stays the caller's.
 */
bool barn_put_full(struct sheaf_barn *barn, struct sheaf *sheaf,
		   unsigned int max)
{
	return barn_push(barn, &barn->full, &barn->nr_full, max, sheaf);
}

/**
 * barn_put_empty() - give an empty sheaf to a barn
 * @barn: the node's barn
 * @sheaf: a sheaf holding no objects, owned by the caller
 * @max: the barn's limit of empty sheaves
 *
 * Context: any context but NMI.
 * Return: true if the barn took @sheaf; false if it holds @max already, in
 * which case @sheaf stays the caller's.
 */
bool barn_put_empty(struct sheaf_barn *barn, struct sheaf *sheaf,
		    unsigned int max)
{
	return barn_push(barn, &barn->empty, &barn->nr_empty, max, sheaf);
}

/**
 * barn_has_room_for_full() - whether barn_put_full() would likely succeed
 * @barn: the node's barn
 * @max: the barn's limit of full sheaves
 *
 * A hint, read without the lock, to skip refilling a sheaf that the barn
 * would then refuse.
 *
 * Return: true if the barn held fewer than @max full sheaves.
 */
bool barn_has_room_for_full(struct sheaf_barn *barn, unsigned int max)
{
	return READ_ONCE(barn->nr_full) < max;
}

/**
 * barn_take_excess() - take the sheaves a barn holds beyond its limits
 * @barn: the node's barn
 * @max_full: how many full sheaves may stay
 * @max_empty: how many empty sheaves may stay
 * @out: list that receives the others
 *
 * With limits of 0 the barn is emptied.  The lock is held for one list
 * operation per sheaf taken, at most the old limits.
 *
 * Context: any context but NMI.
 */
void barn_take_excess(struct sheaf_barn *barn, unsigned int max_full,
		      unsigned int max_empty, struct list_head *out)
{
	unsigned long flags;

	flags = barn_lock(barn);
	for (; barn->nr_full > max_full; barn->nr_full--)
		list_move(barn->full.next, out);
	for (; barn->nr_empty > max_empty; barn->nr_empty--)
		list_move(barn->empty.next, out);
	barn_unlock(barn, flags);
}

/**
 * barn_counts() - how many sheaves a barn holds
 * @barn: the node's barn
 * @nr_full: receives the number of full sheaves
 * @nr_empty: receives the number of empty sheaves
 */
void barn_counts(struct sheaf_barn *barn, unsigned int *nr_full,
		 unsigned int *nr_empty)
{
	unsigned long flags;

	flags = barn_lock(barn);
	*nr_full = barn->nr_full;
	*nr_empty = barn->nr_empty;
	barn_unlock(barn, flags);
}
