/*
 * alloc_wp.c - write points: handing out space by appending into open buckets.
 *
 * Owns: opening buckets (the only place a generation is bumped), the user and b-tree write
 * points, spans and their open references, b-tree node slots and their release.
 *
 * Must never: open a bucket that breaks the reuse rule (alloc_free.h); flush the journal
 * with the alloc lock held or on behalf of the b-tree write point (its callers hold the
 * index lock); hand out a node slot from a bucket whose alloc key was not queued by
 * rd_alloc_btree_prepare (a checkpoint naming a node there could outlive its gen).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_priv.h"
#include "btree.h"
#include "refdio/errors.h"
#include "journal.h"
#include "store.h"

/* Tries to make the journal durable this many times before user allocation gives up. */
#define ALLOC_FLUSH_TRIES	3

static uint64_t round_up(uint64_t x, uint64_t m)
{
	return (x + m - 1) / m * m;
}

static int wp_grow(struct alloc_wp *wp)
{
	uint64_t *n;
	size_t cap;

	if (wp->nr < wp->cap)
		return 0;
	cap = wp->cap ? wp->cap * 2 : 4;
	n = realloc(wp->bkts, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	wp->bkts = n;
	wp->cap = cap;
	return 0;
}

/*
 * Opens the lowest ready bucket for write point wpi and appends it to the write point's
 * list (alloc lock held; pending buckets already migrated). -EAGAIN: only buckets waiting
 * for the journal are empty. -ENOSPC: none at all (for user data: none outside the
 * b-tree reserve).
 */
static int open_bucket(struct rd_alloc *a, enum rd_write_point wpi)
{
	struct alloc_wp *wp = &a->wp[wpi];
	struct rd_bheap_ent e;
	struct rd_bucket *b;
	enum alloc_class old;
	int ret;

	ret = wp_grow(wp);
	if (!ret)
		ret = alloc_gd_reserve(a, 1);
	if (ret)
		return ret;
	/* User data is reserved first (rd_alloc_reserve, which keeps the GC reserve out of
	 * reach of new reservations): a reserved write may take any bucket outside the
	 * b-tree reserve, and the mover never opens one that reservations count on. */
	if (wpi == RD_WP_USER && alloc_empty(a) <= a->meta_reserve)
		return -ENOSPC;
	if (wpi == RD_WP_GC && !alloc_gc_may_open(a))
		return -ENOSPC;
	if (!rd_bheap_pop(&a->ready, &e))
		return a->pending.nr ? -EAGAIN : -ENOSPC;
	b = &a->b[e.bucket];
	a->where[e.bucket] = ALLOC_IN_NONE;
	/*
	 * The reuse rule (see rd_bucket_reusable): no live user data, no live node, nobody
	 * holding it open, and the journal entry that emptied it durable. The ready heap only
	 * ever holds such buckets; a bucket failing this here means the state is corrupt.
	 */
	if (!rd_bucket_reusable(b, a->durable_seen)) {
		alloc_log("bucket %" PRIu64 " was ready but is not reusable (dirty %u, btree %u, "
			  "open %u, freed at %" PRIu64 ", durable %" PRIu64 ")", e.bucket,
			  b->dirty_sectors, b->btree_sectors, b->open_refs, b->freed_seq,
			  a->durable_seen);
		return -EUCLEAN;
	}
	old = alloc_class_of(b);
	/* A new life: pointers carrying the old generation are stale from now on. */
	__atomic_store_n(&b->gen, b->gen + 1, __ATOMIC_RELEASE);
	b->data_type = wpi == RD_WP_BTREE ? RD_DATA_BTREE : RD_DATA_USER;
	alloc_gd_add(a, e.bucket);
	b->open_refs = 1;	/* the write point's own reference */
	alloc_settle(a, e.bucket, old);
	if (!wp->nr)
		wp->fill = 0;
	assert(wp->nr < wp->cap);	/* wp_grow made room */
	wp->bkts[wp->nr++] = e.bucket;
	return 0;
}

/* Closes the bucket the write point is filling and moves on to the next one it holds. */
static void close_head(struct rd_alloc *a, struct alloc_wp *wp)
{
	uint64_t idx = wp->bkts[0];

	assert(wp->nr > 0);

	memmove(wp->bkts, wp->bkts + 1, (wp->nr - 1) * sizeof(*wp->bkts));
	wp->nr--;
	wp->fill = 0;
	alloc_put_ref(a, idx);
}

/* Hands out [min, want] sectors from write point wpi (alloc lock held). */
static int wp_take(struct rd_alloc *a, enum rd_write_point wpi, uint32_t want, uint32_t min,
		   struct rd_alloc_span *out)
{
	struct alloc_wp *wp = &a->wp[wpi];
	struct rd_bucket *b;
	enum alloc_class old;
	uint32_t n;
	uint64_t idx;
	int ret;

	/* The write point fills its bucket front to back; too small a rest is left unused. */
	while (!wp->nr || a->bucket_sectors - wp->fill < min) {
		if (wp->nr) {
			close_head(a, wp);
			continue;
		}
		ret = open_bucket(a, wpi);
		if (ret)
			return ret;
	}
	idx = wp->bkts[0];
	b = &a->b[idx];
	assert(b->open_refs > 0 && wp->fill < a->bucket_sectors);	/* the wp's ref */
	n = a->bucket_sectors - wp->fill;
	if (n > want)
		n = want;
	out->offset = idx * a->bucket_size + ((uint64_t)wp->fill << RD_SECTOR_SHIFT);
	out->sectors = n;
	out->bucket = idx;
	out->gen = b->gen;

	old = alloc_class_of(b);
	b->open_refs++;		/* the span's reference, until rd_alloc_span_put */
	if (wpi == RD_WP_BTREE) {
		b->btree_sectors += n;
		a->btree_sectors += n;
	}
	alloc_settle(a, idx, old);
	wp->fill += n;
	if (wp->fill == a->bucket_sectors)
		close_head(a, wp);
	return 0;
}

int rd_alloc_sectors(struct rd_store *s, enum rd_write_point wpi, uint32_t want_sectors,
		     uint32_t min_sectors, struct rd_alloc_span *out)
{
	struct rd_alloc *a = s->alloc;
	uint64_t want, min, flush_to;
	unsigned tries;
	int ret;

	if (!a || (unsigned)wpi >= RD_WP_NR || !min_sectors || want_sectors < min_sectors)
		return -EINVAL;
	/* Whole blocks only: min rounds up, want down (but never below min). */
	min = round_up(min_sectors, a->block_sectors);
	want = want_sectors / a->block_sectors * a->block_sectors;
	if (min > a->bucket_sectors)
		return -EINVAL;
	if (want < min)
		want = min;
	if (want > a->bucket_sectors)
		want = a->bucket_sectors;

	for (tries = 0;; tries++) {
		/* Read outside the alloc lock: the journal has locks of its own. */
		uint64_t durable = rd_journal_durable_seq(s->journal);

		pthread_mutex_lock(&a->lock);
		alloc_migrate(a, durable);
		ret = wp_take(a, wpi, (uint32_t)want, (uint32_t)min, out);
		flush_to = a->pending_max;
		pthread_mutex_unlock(&a->lock);
		if (ret != -EAGAIN)
			break;
		/* The b-tree write point runs under the index lock: it must not wait on the
		 * journal. Checkpoints flush before they need space, so this is a real shortage. */
		if (wpi == RD_WP_BTREE || tries == ALLOC_FLUSH_TRIES) {
			ret = -ENOSPC;
			break;
		}
		/* Only buckets waiting for the journal are empty: make the entries that emptied
		 * them durable (no lock held here), then try again. */
		ret = rd_journal_flush(s->journal, flush_to);
		if (ret)
			break;
	}
	if (ret == -ENOSPC && wpi == RD_WP_BTREE)
		ret = -RD_ERR_NO_SPACE_META;
	return ret;
}

void rd_alloc_span_put(struct rd_store *s, const struct rd_alloc_span *span)
{
	struct rd_alloc *a = s->alloc;

	if (!a || span->bucket >= a->nbuckets)
		return;
	pthread_mutex_lock(&a->lock);
	/* The span's reference kept the bucket from reuse, so the gen cannot have moved. */
	if (a->b[span->bucket].gen != span->gen)
		alloc_log("span in bucket %" PRIu64 " has gen %u, bucket is at %u (bug)",
			  span->bucket, span->gen, a->b[span->bucket].gen);
	else
		alloc_put_ref(a, span->bucket);
	pthread_mutex_unlock(&a->lock);
}

/* ---- b-tree nodes ---------------------------------------------------------------------- */

/* Node slots the b-tree write point holds ready (alloc lock held). */
static uint64_t btree_room(const struct rd_alloc *a)
{
	const struct alloc_wp *wp = &a->wp[RD_WP_BTREE];
	uint64_t per = a->bucket_sectors / a->node_sectors;
	uint64_t head;

	if (!wp->nr)
		return 0;
	head = round_up(wp->fill, a->node_sectors);
	head = head < a->bucket_sectors ? (a->bucket_sectors - head) / a->node_sectors : 0;
	return head + (wp->nr - 1) * per;
}

uint64_t rd_alloc_btree_room(struct rd_store *s)
{
	struct rd_alloc *a = s->alloc;
	uint64_t room;

	if (!a)
		return UINT64_MAX;	/* before the allocator exists (replay): no bound */
	pthread_mutex_lock(&a->lock);
	room = btree_room(a) + (a->ready.nr + a->pending.nr) *
	       (a->bucket_sectors / a->node_sectors);
	pthread_mutex_unlock(&a->lock);
	return room;
}

int rd_alloc_btree_prepare(struct rd_store *s, uint64_t nodes, struct rd_trans *t)
{
	struct rd_alloc *a = s->alloc;
	struct alloc_wp *wp;
	uint64_t durable;
	size_t i, start = 0;
	int ret = 0;

	if (!a)
		return -EINVAL;
	durable = rd_journal_durable_seq(s->journal);
	wp = &a->wp[RD_WP_BTREE];

	pthread_mutex_lock(&a->lock);
	alloc_migrate(a, durable);
	while (!ret && btree_room(a) < nodes)
		ret = open_bucket(a, RD_WP_BTREE);
	if (ret == -EAGAIN || ret == -ENOSPC)
		ret = -RD_ERR_NO_SPACE_META;
	if (ret || !t)
		goto unlock;
	/*
	 * Every bucket the write point holds whose new generation is not in the alloc tree
	 * yet gets its key in t, so the checkpoint entry that names nodes in it also carries
	 * the generation those nodes' pointers hold.
	 */
	ret = alloc_prep_begin(a, t, wp->nr);
	if (ret)
		goto unlock;
	start = a->prep_nr;
	for (i = 0; i < wp->nr; i++) {
		uint64_t idx = wp->bkts[i];
		const struct rd_bucket *b = &a->b[idx];

		if (!b->gen_dirty || alloc_prep_has(a, a->prep_nr, idx, b->gen))
			continue;
		a->prep[a->prep_nr++] = (struct alloc_prep){
			.bucket = idx, .gen = b->gen, .dirty = b->dirty_sectors,
			.type = RD_DATA_BTREE, .delta = false,
		};
	}
unlock:
	pthread_mutex_unlock(&a->lock);
	if (!ret && t)
		ret = alloc_prep_put(a, t, start);
	return ret;
}

int rd_alloc_btree_node(struct rd_store *s, uint64_t *offset, uint32_t *gen)
{
	struct rd_alloc *a = s->alloc;
	struct alloc_wp *wp;
	struct rd_bucket *b;
	enum alloc_class old;
	uint64_t idx, slot;
	int ret = 0;

	if (!a)
		return -EINVAL;
	wp = &a->wp[RD_WP_BTREE];
	pthread_mutex_lock(&a->lock);
	/* Only buckets rd_alloc_btree_prepare opened: never open one here (see the top). */
	for (;;) {
		if (!wp->nr) {
			alloc_log("b-tree node wanted beyond what rd_alloc_btree_prepare opened");
			ret = -RD_ERR_NO_SPACE_META;
			goto unlock;
		}
		slot = round_up(wp->fill, a->node_sectors);
		if (slot + a->node_sectors <= a->bucket_sectors)
			break;
		close_head(a, wp);
	}
	idx = wp->bkts[0];
	b = &a->b[idx];
	old = alloc_class_of(b);
	b->btree_sectors += a->node_sectors;
	a->btree_sectors += a->node_sectors;
	alloc_settle(a, idx, old);
	*offset = idx * a->bucket_size + (slot << RD_SECTOR_SHIFT);
	*gen = b->gen;
	wp->fill = (uint32_t)(slot + a->node_sectors);
	if (wp->fill + a->node_sectors > a->bucket_sectors)
		close_head(a, wp);
unlock:
	pthread_mutex_unlock(&a->lock);
	return ret;
}

void rd_alloc_btree_node_free(struct rd_store *s, uint64_t offset, uint64_t seq)
{
	struct rd_alloc *a = s->alloc;
	struct rd_bucket *b;
	enum alloc_class old;
	uint64_t idx;

	if (!a)
		return;
	idx = offset / a->bucket_size;
	if (idx >= a->nbuckets) {
		alloc_log("freeing a b-tree node at %" PRIu64 ", beyond the device", offset);
		return;
	}
	pthread_mutex_lock(&a->lock);
	b = &a->b[idx];
	if (b->btree_sectors < a->node_sectors) {
		alloc_log("freeing a b-tree node at %" PRIu64 ": bucket %" PRIu64 " holds only %u "
			  "node sectors (bug)", offset, idx, b->btree_sectors);
		goto unlock;
	}
	old = alloc_class_of(b);
	b->btree_sectors -= a->node_sectors;
	a->btree_sectors -= a->node_sectors;
	/* Still referenced by the previous checkpoint until seq is durable. */
	if (!b->btree_sectors && !b->dirty_sectors && seq > b->freed_seq)
		b->freed_seq = seq;
	alloc_settle(a, idx, old);
unlock:
	pthread_mutex_unlock(&a->lock);
}
