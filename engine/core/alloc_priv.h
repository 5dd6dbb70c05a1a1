/*
 * alloc_priv.h - the allocator's private state, shared by alloc.c and alloc_wp.c only.
 *
 * Owns: struct rd_alloc (hanging off rd_store.alloc) and the helpers both files use to keep
 * its counters and free-bucket heaps in step with the bucket array.
 *
 * Locking: a.lock (the alloc lock) guards everything below except prep*, which only
 * transaction commits and checkpoints touch, and those run under the index lock. The
 * index lock may be held when the alloc lock is taken, never the other way round; no code
 * here calls out of the allocator (journal flush, durable seq, rd_trans_put) while holding
 * the alloc lock.
 *
 * Must never: be included outside alloc*.c.
 */
#ifndef RD_ALLOC_PRIV_H
#define RD_ALLOC_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "alloc_free.h"

struct rd_store;
struct rd_trans;

/* Where a bucket sits in the free-bucket structure. */
enum alloc_where {
	ALLOC_IN_NONE = 0,	/* in use, open, or never allocatable */
	ALLOC_IN_READY,		/* empty and reusable now */
	ALLOC_IN_PENDING,	/* empty, waiting for freed_seq to become durable */
};

/* What a bucket counts as in rd_space (kept as running counters). */
enum alloc_class {
	ALLOC_CLASS_NONE = 0,
	ALLOC_CLASS_USER,
	ALLOC_CLASS_BTREE,
};

/*
 * A write point: the buckets it holds open, in fill order. bkts[0] is being filled, fill
 * sectors of it are handed out. The user write point holds at most one bucket; the b-tree
 * one may hold several, opened ahead by rd_alloc_btree_prepare. Each bucket listed holds
 * one open_ref for the write point itself.
 */
struct alloc_wp {
	uint64_t	*bkts;
	size_t		nr, cap;
	uint32_t	fill;
};

/* An alloc key queued into the transaction being committed (see rd_alloc_trans_prepare). */
struct alloc_prep {
	uint64_t	bucket;
	uint32_t	gen;		/* the generation written */
	uint32_t	dirty;		/* dirty_sectors written */
	uint8_t		type;
	bool		delta;		/* dirty comes from t's deltas: apply it on done */
};

struct rd_alloc {
	pthread_mutex_t		lock;

	uint64_t		nbuckets;
	uint64_t		first, last;		/* allocatable buckets: [first, last) */
	uint32_t		bucket_size;		/* bytes */
	uint32_t		bucket_sectors;
	uint32_t		block_sectors;
	uint32_t		node_sectors;

	struct rd_bucket	*b;			/* nbuckets entries */
	uint8_t			*where;			/* enum alloc_where per bucket */
	struct rd_bheap		ready;			/* key = bucket index */
	struct rd_bheap		pending;		/* key = freed_seq */
	uint64_t		pending_max;		/* >= every pending freed_seq */
	uint64_t		durable_seen;		/* highest durable seq we were told */

	struct alloc_wp		wp[RD_WP_NR];

	/* Buckets whose gen_dirty is set: their new generation is not in the alloc tree yet. */
	uint64_t		*gd;
	size_t			gd_nr, gd_cap;

	/* Alloc keys queued into prep_t (index lock). Compared by address only. */
	const struct rd_trans	*prep_t;
	struct alloc_prep	*prep;
	size_t			prep_nr, prep_cap;

	uint64_t		reserved;		/* sectors reserved by writes in progress */
	uint64_t		meta_reserve;		/* buckets user data may not take */
	uint64_t		gc_reserve;		/* more of them, for the mover's writes */
	uint64_t		gc_low, gc_high;	/* empty buckets: mover starts / stops */
	rd_alloc_reclaim_fn	reclaim;		/* the mover's (rd_alloc_set_reclaim) */
	void			*reclaim_priv;
	uint64_t		user_sectors;		/* sum of dirty_sectors */
	uint64_t		btree_sectors;		/* sum of btree_sectors */
	uint64_t		nr_class[3];		/* buckets per enum alloc_class */
};

/* Class of a bucket, for the rd_space counters. */
static inline enum alloc_class alloc_class_of(const struct rd_bucket *b)
{
	if (b->dirty_sectors)
		return ALLOC_CLASS_USER;
	if (b->btree_sectors)
		return ALLOC_CLASS_BTREE;
	if (b->open_refs)
		return b->data_type == RD_DATA_BTREE ? ALLOC_CLASS_BTREE : ALLOC_CLASS_USER;
	return ALLOC_CLASS_NONE;
}

static inline bool alloc_allocatable(const struct rd_alloc *a, uint64_t bucket)
{
	return bucket >= a->first && bucket < a->last;
}

/* Remaining sectors of the user write point's open bucket (alloc lock held). */
static inline uint32_t alloc_user_remaining(const struct rd_alloc *a)
{
	const struct alloc_wp *wp = &a->wp[RD_WP_USER];

	return wp->nr ? a->bucket_sectors - wp->fill : 0;
}

/* Empty buckets, waiting ones included (alloc lock held). */
static inline uint64_t alloc_empty(const struct rd_alloc *a)
{
	return a->ready.nr + a->pending.nr;
}

/* Whether the GC write point may open one more bucket: it stays out of the b-tree reserve
 * and never takes space that reservations already count on (alloc lock held). */
bool alloc_gc_may_open(const struct rd_alloc *a);

/* Sectors new user data may still reserve (alloc lock held). */
uint64_t alloc_available(const struct rd_alloc *a);

void alloc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* After changing bucket idx (whose class was old before the change): update the class
 * counters and, if it became empty and unused, put it in the free-bucket structure.
 * Alloc lock held. */
void alloc_settle(struct rd_alloc *a, uint64_t idx, enum alloc_class old);

/* Moves pending buckets whose freed_seq <= durable to the ready heap. Alloc lock held. */
void alloc_migrate(struct rd_alloc *a, uint64_t durable);

/* Marks bucket idx gen_dirty and records it (capacity reserved by alloc_gd_reserve). */
void alloc_gd_add(struct rd_alloc *a, uint64_t idx);
int alloc_gd_reserve(struct rd_alloc *a, size_t more);

/* Drops the write point's own reference on bucket idx. Alloc lock held. */
void alloc_put_ref(struct rd_alloc *a, uint64_t idx);

/* The alloc keys queued into the transaction being committed (index lock held):
 * begin resets the list when t is a new transaction and makes room for more entries;
 * has looks for (bucket, gen) among the first upto entries; put queues entries
 * [from, prep_nr) into t and must be called WITHOUT the alloc lock. */
int alloc_prep_begin(struct rd_alloc *a, const struct rd_trans *t, size_t more);
bool alloc_prep_has(const struct rd_alloc *a, size_t upto, uint64_t bucket, uint32_t gen);
int alloc_prep_put(struct rd_alloc *a, struct rd_trans *t, size_t from);

#endif
