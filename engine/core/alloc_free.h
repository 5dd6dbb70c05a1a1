/*
 * alloc_free.h - the allocator's free-bucket structure and reuse rule, as pure code.
 *
 * Owns: a fixed-capacity binary min-heap of (key, bucket) pairs, and the predicate that
 * says whether a bucket may be handed out again. The allocator keeps two heaps: buckets
 * ready for reuse keyed by their index (lowest first, so a fresh device fills front to
 * back), and buckets waiting for the journal keyed by the seq that freed them (the first
 * to become reusable on top).
 *
 * Must never: lock, allocate after init, or know about stores and transactions; it is
 * used under the allocator's lock and unit-tested on its own.
 */
#ifndef RD_ALLOC_FREE_H
#define RD_ALLOC_FREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"

/*
 * The reuse rule, the heart of the allocator: a bucket may be opened again only if it
 * holds no live user data, no live b-tree node, nobody holds it open (a write point or an
 * allocation whose extent is not committed yet), and the journal entry that recorded it
 * becoming empty is durable. Reusing it earlier would let a crash bring back pointers
 * (with the old generation, hence not stale) into data that was overwritten.
 */
static inline bool rd_bucket_reusable(const struct rd_bucket *b, uint64_t durable_seq)
{
	return b->dirty_sectors == 0 && b->btree_sectors == 0 && b->open_refs == 0 &&
	       b->freed_seq <= durable_seq;
}

struct rd_bheap_ent {
	uint64_t key;
	uint64_t bucket;
};

/* Ordered by key, then bucket. Capacity is fixed at init: the allocator sizes it to the
 * number of buckets, and a bucket is in at most one heap at a time, so push cannot fail. */
struct rd_bheap {
	struct rd_bheap_ent *v;
	size_t nr, cap;
};

/* 0 or -ENOMEM. */
int rd_bheap_init(struct rd_bheap *h, size_t cap);
void rd_bheap_free(struct rd_bheap *h);
/* false (and nothing pushed) if the heap is full: a caller bug, reported by the caller. */
bool rd_bheap_push(struct rd_bheap *h, uint64_t key, uint64_t bucket);
/* The smallest entry, without removing it; false if empty. */
bool rd_bheap_peek(const struct rd_bheap *h, struct rd_bheap_ent *out);
/* Removes and returns the smallest entry; false if empty. */
bool rd_bheap_pop(struct rd_bheap *h, struct rd_bheap_ent *out);
/* Removes the entry of bucket (whatever its key); false if it is not in the heap. O(n):
 * for fsck repairs only, never on the allocation path. */
bool rd_bheap_remove(struct rd_bheap *h, uint64_t bucket);

#endif
