/*
 * alloc_fake.h - a fake store for testing the allocator alone.
 *
 * Owns: just enough of the store, trees, transactions and journal for engine/alloc*.c:
 * an alloc "tree" kept as a log of puts by journal seq, a journal with a durable seq,
 * transactions that run the allocator's prepare/done hooks, a b-tree walk over a list of
 * node pointers, and a crash that forgets everything not durable. Tests built with it
 * compile the allocator's sources directly and never link the real engine.
 *
 * Must never: be linked together with the real engine library.
 */
#ifndef RD_ALLOC_FAKE_H
#define RD_ALLOC_FAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "btree.h"
#include "refdio/errors.h"
#include "journal.h"
#include "store.h"

#define FAKE_NB		64		/* buckets */
#define FAKE_BUCKET	(64u << 10)	/* bucket size: 128 sectors */
#define FAKE_BLOCK	4096u		/* 8 sectors */
#define FAKE_NODE	(16u << 10)	/* 32 sectors, 4 per bucket */
#define FAKE_SECTORS	(FAKE_NB * (FAKE_BUCKET >> 9))

/* A device range that becomes free (for the tests' ownership map) once seq is durable. */
struct fake_release {
	uint64_t off;
	uint32_t sectors;
	uint64_t seq;
};

/* Called under the journal lock for each release whose seq became durable, before the
 * allocator can see that seq durable. */
extern void (*fake_on_release)(const struct fake_release *r);

/* Sets up a store with the geometry above and runs rd_alloc_init. */
struct rd_store *fake_open(void);
/* Forgets every put not durable, then rd_alloc_exit + rd_alloc_init with the node
 * pointers given (the nodes a recovered checkpoint names). */
int fake_reopen(struct rd_store *s, const struct rd_node_info *nodes, size_t nr);
void fake_close(struct rd_store *s);

/* Commit with the index lock already held by the caller. */
int fake_commit_locked(struct rd_trans *t, uint64_t *seq);
/* Registers a range released when t's seq becomes durable. */
int fake_trans_release(struct rd_trans *t, uint64_t off, uint32_t sectors);

uint64_t fake_flushes(void);
/* Number of alloc keys currently in the tree (committed, durable or not). */
size_t fake_alloc_keys(void);
/* The committed alloc key of bucket b: false if none. */
bool fake_alloc_key(uint64_t b, struct rd_alloc_v *out);

#endif
