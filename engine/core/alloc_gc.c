/*
 * alloc_gc.c - the allocator's side of copying garbage collection.
 *
 * Owns: the GC reserve (empty buckets that new reservations may not take, so the mover
 * always has somewhere to write), the rule for when the GC write point may open a bucket,
 * the choice of victims (least live data first, within the room the mover has), the
 * registration of the mover's reclaim hook, and the numbers a round looks at.
 *
 * Must never: choose a bucket someone holds open (a write point, a span in flight, fsck),
 * a bucket holding b-tree nodes, or more live data than the GC write point can take
 * without eating space reservations already count on; call the mover (reclaim) with the
 * alloc lock held. The mover itself (engine/fs/move.c) moves the data; freeing a victim is
 * the ordinary rule: its dirty_sectors reach 0 in the transaction that moves its last
 * extent, and it is reused once that transaction is durable (alloc_free.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "alloc_priv.h"
#include "journal.h"
#include "store.h"

bool alloc_gc_may_open(const struct rd_alloc *a)
{
	uint64_t empty = alloc_empty(a), after;

	if (empty <= a->meta_reserve)
		return false;
	after = (empty - 1 - a->meta_reserve) * a->bucket_sectors + alloc_user_remaining(a);
	return after >= a->reserved;
}

void rd_alloc_set_reclaim(struct rd_store *s, rd_alloc_reclaim_fn fn, void *priv,
			  uint64_t reserve_buckets)
{
	struct rd_alloc *a = s->alloc;
	uint64_t step;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->reclaim = fn;
	a->reclaim_priv = fn ? priv : NULL;
	a->gc_reserve = fn ? reserve_buckets : 0;
	/* A round starts when the empty buckets outside both reserves fall under 1/16 of the
	 * device (at least two buckets) and stops at twice that. */
	step = (a->last - a->first) / 16 > 2 ? (a->last - a->first) / 16 : 2;
	a->gc_low = a->meta_reserve + a->gc_reserve + step;
	a->gc_high = a->gc_low + step;
	pthread_mutex_unlock(&a->lock);
}

/* Sectors the GC write point may still write now (alloc lock held). */
static uint64_t gc_room(const struct rd_alloc *a)
{
	const struct alloc_wp *wp = &a->wp[RD_WP_GC];
	uint64_t empty = alloc_empty(a), room, k;

	room = wp->nr ? a->bucket_sectors - wp->fill : 0;
	/* Buckets it may open: k such that after opening them the b-tree reserve is intact
	 * and every reservation still fits. */
	for (k = 0; empty > a->meta_reserve + k; k++) {
		uint64_t left = (empty - k - 1 - a->meta_reserve) * a->bucket_sectors +
				alloc_user_remaining(a);

		if (left < a->reserved)
			break;
	}
	return room + k * a->bucket_sectors;
}

static bool gc_candidate(const struct rd_alloc *a, uint64_t i, uint32_t max_live)
{
	const struct rd_bucket *b = &a->b[i];

	return alloc_allocatable(a, i) && b->data_type == RD_DATA_USER && b->dirty_sectors &&
	       b->dirty_sectors < max_live && !b->btree_sectors && !b->open_refs;
}

static int victim_cmp(const void *x, const void *y)
{
	const struct rd_alloc_victim *p = x, *q = y;

	if (p->live != q->live)
		return p->live < q->live ? -1 : 1;
	return p->bucket < q->bucket ? -1 : p->bucket > q->bucket;
}

int rd_alloc_gc_victims(struct rd_store *s, uint32_t max_live, struct rd_alloc_victim *out,
			size_t max, size_t *nr)
{
	struct rd_alloc *a = s->alloc;
	struct rd_alloc_victim *all;
	uint64_t budget, sum = 0, durable;
	size_t n = 0, i, k = 0;

	*nr = 0;
	if (!a)
		return -EINVAL;
	all = malloc((a->nbuckets ? a->nbuckets : 1) * sizeof(*all));
	if (!all)
		return -ENOMEM;
	durable = rd_journal_durable_seq(s->journal);
	pthread_mutex_lock(&a->lock);
	alloc_migrate(a, durable);
	if (max_live > a->bucket_sectors)
		max_live = a->bucket_sectors;
	for (i = a->first; i < a->last; i++)
		if (gc_candidate(a, i, max_live))
			all[n++] = (struct rd_alloc_victim){ .bucket = i, .gen = a->b[i].gen,
							     .live = a->b[i].dirty_sectors };
	/* A quarter of the room is kept for what moving leaves unused: the tail of a bucket
	 * too short for the next region, and block rounding. */
	budget = gc_room(a);
	budget -= budget / 4;
	pthread_mutex_unlock(&a->lock);

	qsort(all, n, sizeof(*all), victim_cmp);
	for (i = 0; i < n && k < max; i++) {
		if (sum + all[i].live > budget)
			break;
		sum += all[i].live;
		out[k++] = all[i];
	}
	free(all);
	*nr = k;
	return 0;
}

void rd_alloc_gc_state(struct rd_store *s, struct rd_alloc_gc_state *st)
{
	struct rd_alloc *a = s->alloc;
	uint64_t i, durable;

	*st = (struct rd_alloc_gc_state){ 0 };
	if (!a)
		return;
	durable = rd_journal_durable_seq(s->journal);
	pthread_mutex_lock(&a->lock);
	alloc_migrate(a, durable);
	st->empty = alloc_empty(a);
	st->bucket_sectors = a->bucket_sectors;
	st->low = a->gc_low;
	st->high = a->gc_high;
	for (i = a->first; i < a->last; i++) {
		const struct rd_bucket *b = &a->b[i];

		if (b->data_type != RD_DATA_USER || !b->dirty_sectors || b->btree_sectors ||
		    b->open_refs)
			continue;
		st->dead_sectors += a->bucket_sectors - b->dirty_sectors;
		if (gc_candidate(a, i, a->bucket_sectors))
			st->candidates++;
	}
	pthread_mutex_unlock(&a->lock);
}
