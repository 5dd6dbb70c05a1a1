/*
 * alloc.h - buckets, generations, write points and space accounting.
 *
 * Owns: the in-memory bucket array (authoritative while the store is open; persisted as
 * keys of the alloc b-tree), the write points that hand out space by appending into open
 * buckets, and the rules for when a bucket may be reused.
 *
 * Invariants (written again next to the code that keeps them):
 *  - A bucket is handed out again only when it holds no live data, no live b-tree node, no
 *    open write point or allocation, and the journal entry that recorded it becoming empty
 *    is durable (freed_seq <= durable seq).
 *  - Reusing a bucket bumps its generation; a pointer whose gen differs is stale.
 *  - dirty_sectors changes only through committed transactions (rd_alloc_account), in the
 *    same journal entry as the extent change that caused it.
 *  - Space is reserved before it is written (rd_alloc_reserve), so a full device gives
 *    ENOSPC up front, never half an update.
 */
#ifndef RD_ALLOC_H
#define RD_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "refdio/image.h"

struct rd_store;
struct rd_trans;

/* In-memory state of one bucket. */
struct rd_bucket {
	uint32_t gen;
	uint8_t  data_type;	/* enum rd_data_type */
	uint32_t dirty_sectors;	/* live user data (persisted in the alloc tree) */
	uint32_t btree_sectors;	/* live b-tree nodes (derived from the trees at open) */
	uint32_t open_refs;	/* write points and outstanding allocations */
	uint64_t freed_seq;	/* journal seq that recorded it empty; reusable once durable */
	bool     gen_dirty;	/* gen/type changed in memory, alloc key not yet committed */
};

enum rd_write_point {
	RD_WP_BTREE,
	RD_WP_USER,
	RD_WP_GC,	/* copying GC's moves (alloc_gc.c): may dip into the GC reserve */
	RD_WP_NR
};

/* Space handed out by rd_alloc_sectors: contiguous, inside one bucket. */
struct rd_alloc_span {
	uint64_t offset;	/* device byte offset */
	uint32_t sectors;
	uint64_t bucket;
	uint32_t gen;
};

/* Builds the bucket array: gens, types and dirty_sectors from the alloc tree, b-tree
 * sectors from walking the trees' interior nodes. Called by rd_store_open after replay. */
int rd_alloc_init(struct rd_store *s);
void rd_alloc_exit(struct rd_store *s);

/* The bucket holding device byte offset off. */
uint64_t rd_alloc_bucket_of(const struct rd_store *s, uint64_t off);

/*
 * Hands out up to want_sectors (at least min_sectors) contiguous sectors from write point
 * wp, opening a fresh bucket when the current one is full. The span holds an open
 * reference on its bucket until rd_alloc_span_put. Data spans must be covered by a
 * reservation. -ENOSPC (-RD_ERR_NO_SPACE_META for RD_WP_BTREE) when no bucket is free.
 */
int rd_alloc_sectors(struct rd_store *s, enum rd_write_point wp, uint32_t want_sectors,
		     uint32_t min_sectors, struct rd_alloc_span *out);
/* Drops the span's open reference: after its extent was committed, or its write failed. */
void rd_alloc_span_put(struct rd_store *s, const struct rd_alloc_span *span);

/* Records in t that sectors (negative to release) of the extent at device offset off
 * change; on commit they update dirty_sectors and the alloc key in the same entry. */
int rd_alloc_account(struct rd_trans *t, const struct rd_store *s, uint64_t off,
		     int64_t sectors);

/* Called by rd_trans_commit with the index lock held: before journaling, turn t's deltas
 * (and any pending gen changes of the buckets they touch) into alloc-key puts in t. */
int rd_alloc_trans_prepare(struct rd_store *s, struct rd_trans *t);
/* After t was journaled as seq and applied: update the in-memory buckets. */
void rd_alloc_trans_done(struct rd_store *s, struct rd_trans *t, uint64_t seq);

/* B-tree node space, for checkpoints (index lock held). prepare opens enough btree buckets
 * for nodes more node writes and queues their alloc keys in t, so that the checkpoint's
 * own writes need no further allocator updates. nodes counts from now, including room
 * earlier calls opened: after prepare(n), n calls of rd_alloc_btree_node succeed (calling
 * it again with a larger total is how to grow the reservation, not with the difference). */
int rd_alloc_btree_prepare(struct rd_store *s, uint64_t nodes, struct rd_trans *t);
int rd_alloc_btree_node(struct rd_store *s, uint64_t *offset, uint32_t *gen);
/* Node slots a checkpoint could take now: room left in the b-tree write point's buckets
 * plus every empty bucket (pending ones included: a checkpoint flushes the journal first).
 * The b-trees checkpoint before their dirty nodes could outgrow it. */
uint64_t rd_alloc_btree_room(struct rd_store *s);
/* A node at offset stops being live when the checkpoint seq is durable. */
void rd_alloc_btree_node_free(struct rd_store *s, uint64_t offset, uint64_t seq);

/* Whether a pointer (offset, gen) is stale: its bucket's generation moved on. */
bool rd_alloc_ptr_stale(const struct rd_store *s, uint64_t offset, uint32_t gen);

/* Reserve sectors of user data before writing them; -ENOSPC if they do not fit. */
int rd_alloc_reserve(struct rd_store *s, uint64_t sectors);
void rd_alloc_unreserve(struct rd_store *s, uint64_t sectors);

/* (rd_alloc_space and struct rd_space: refdio/image.h) */

/* ---- copying GC's side of the allocator (alloc_gc.c) ---------------------------------- */

/*
 * The mover above (engine/fs/move.c) registers reclaim: rd_alloc_reserve calls it without
 * any lock held, with wait false when a reservation left free space under the low
 * watermark (a kick: start a background round, do not wait), and with wait true when a
 * reservation does not fit (run a round and wait for it; > 0 if the round freed space,
 * 0 if it could not, then the reservation fails with -ENOSPC). Registering it also keeps
 * reserve_buckets empty buckets out of reach of new reservations, for the mover to write
 * into. fn NULL unregisters (before the mover goes away).
 */
typedef int (*rd_alloc_reclaim_fn)(void *priv, bool wait);
void rd_alloc_set_reclaim(struct rd_store *s, rd_alloc_reclaim_fn fn, void *priv,
			  uint64_t reserve_buckets);

/* A bucket the mover may empty: live user data, nobody holding it open. */
struct rd_alloc_victim {
	uint64_t bucket;
	uint32_t gen;
	uint32_t live;		/* dirty sectors when chosen */
};

/*
 * Chooses up to max victims, least live data first, whose live sectors add up to what
 * the GC write point can take now without breaking any reservation (less a margin for
 * the unused tails of its buckets). Only buckets whose live data is below max_live
 * sectors are chosen. *nr gets the count (0: nothing to do or no room).
 */
int rd_alloc_gc_victims(struct rd_store *s, uint32_t max_live, struct rd_alloc_victim *out,
			size_t max, size_t *nr);

/* What a round may want to know (alloc lock taken inside). */
struct rd_alloc_gc_state {
	uint64_t empty;		/* empty buckets, waiting ones included */
	uint64_t low, high;	/* watermarks: a round starts under low, stops at high */
	uint64_t bucket_sectors;
	uint64_t dead_sectors;	/* in buckets holding live user data: what GC could win */
	uint64_t candidates;	/* buckets that are partly dead and nobody holds open */
};
void rd_alloc_gc_state(struct rd_store *s, struct rd_alloc_gc_state *st);

/* A copy of bucket b's state (for fsck and tests); -ERANGE if b is out of range. */
int rd_alloc_bucket(struct rd_store *s, uint64_t b, struct rd_bucket *out);

/*
 * fsck repairs only (nothing else may use the store): lets a transaction add sectors to
 * bucket b although the allocator counts it empty (live extents were found in it): takes
 * it out of the free-bucket structure, types it user data and holds it open, as a write
 * point would. rd_alloc_fsck_release drops the hold once the transaction committed (or
 * failed). -EBUSY if b holds b-tree nodes or is not allocatable, -ERANGE out of range.
 */
int rd_alloc_fsck_hold(struct rd_store *s, uint64_t b);
void rd_alloc_fsck_release(struct rd_store *s, uint64_t b);

#endif
