/*
 * store.h - an open refdio image: the object every engine module hangs off.
 *
 * Owns: formatting an image, opening it (superblock, I/O, journal replay, allocator),
 * closing it cleanly (final checkpoint, superblock marked clean) and the simulated crash
 * used by tests (drop everything in memory, write nothing more).
 *
 * Lifetime: rd_store_open returns a store that owns its io, journal, trees and allocator;
 * rd_store_close/rd_store_crash free all of it. Module state hangs off the pointers below;
 * each module's .c file is the only one that looks inside its own state struct.
 */
#ifndef RD_STORE_H
#define RD_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "format.h"
#include "refdio/image.h"
#include "sb.h"

struct rd_io;
struct rd_journal;
struct rd_btree_state;
struct rd_alloc;

struct rd_store {
	struct rd_io		*io;
	struct rd_sb		sb;	/* the superblock as last read or written */
	struct rd_geometry	geo;	/* decoded from sb */
	bool			read_only;
	bool			was_clean;	/* opened from a clean close: no replay */

	/*
	 * The index lock: held while reading or changing trees, committing transactions,
	 * and during checkpoints. Never held across user-data I/O.
	 */
	pthread_mutex_t		index_lock;

	struct rd_journal	*journal;
	struct rd_btree_state	*btree;
	struct rd_alloc		*alloc;
	uint64_t		replayed_entries;	/* journal entries replayed at open */
	uint64_t		replayed_records;

	/* Test switch (rd_open_opts.test_no_preflush): the journal skips its pre-flush. */
	bool			test_no_preflush;
};

/* The public calls on a store (format, open, close, flush, info) are in refdio/image.h. */

#endif
