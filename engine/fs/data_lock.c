/*
 * data_lock.c - per-inode data state and its block range locks.
 *
 * Owns: struct rd_data_inode (created on first data access, freed at cache eviction) and
 * the range locks that serialise overlapping writers of one inode while letting disjoint
 * ones run in parallel (see data_int.h for what a range lock protects).
 *
 * Must never: hand out two overlapping ranges at once, or wait while holding ip->lock
 * (range locks come before the inode lock in the locking order).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "data_int.h"

struct rd_data_inode *rd_data_inode_of(struct rd_inode *ip)
{
	struct rd_data_inode *d;

	rd_inode_lock(ip);
	d = ip->data;
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (d) {
			pthread_mutex_init(&d->lock, NULL);
			pthread_cond_init(&d->cond, NULL);
			ip->data = d;
		}
	}
	rd_inode_unlock(ip);
	return d;
}

void rd_data_inode_free(struct rd_data_inode *d)
{
	if (!d)
		return;
	/* The inode is unreferenced: no range can be held. */
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
}

/* d->lock held. */
static bool range_busy(const struct rd_data_inode *d, uint64_t start, uint64_t end)
{
	for (const struct rd_range *r = d->held; r; r = r->next)
		if (r->start < end && start < r->end)
			return true;
	return false;
}

/* d->lock held, range free. */
static void range_take(struct rd_data_inode *d, struct rd_range *r, uint64_t start,
		       uint64_t end)
{
	r->start = start;
	r->end = end;
	r->next = d->held;
	d->held = r;
}

void rd_range_lock(struct rd_data_inode *d, struct rd_range *r, uint64_t start, uint64_t end)
{
	/* The locking order (fs_priv.h): a range lock is never waited for under an inode lock
	 * (its holder may need that inode lock to commit). */
	assert(!rd_inode_locks_held);
	pthread_mutex_lock(&d->lock);
	while (range_busy(d, start, end))
		pthread_cond_wait(&d->cond, &d->lock);
	range_take(d, r, start, end);
	pthread_mutex_unlock(&d->lock);
}

int rd_range_trylock(struct rd_data_inode *d, struct rd_range *r, uint64_t start,
		     uint64_t end)
{
	int ret = -EAGAIN;

	pthread_mutex_lock(&d->lock);
	if (!range_busy(d, start, end)) {
		range_take(d, r, start, end);
		ret = 0;
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

void rd_range_unlock(struct rd_data_inode *d, struct rd_range *r)
{
	struct rd_range **pp;

	pthread_mutex_lock(&d->lock);
	for (pp = &d->held; *pp && *pp != r; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = r->next;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}
