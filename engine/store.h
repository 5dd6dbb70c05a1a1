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

struct rd_format_opts {
	uint64_t	size;			/* bytes; 0 = the existing file's size */
	uint32_t	block_size;		/* 0 = 4096 */
	uint32_t	bucket_size;		/* 0 = 1 MiB */
	uint32_t	btree_node_size;	/* 0 = 256 KiB */
	uint32_t	encoded_extent_max;	/* 0 = 256 KiB */
	uint64_t	journal_size;		/* 0 = size/32 within [4 buckets, 1 GiB] */
	int		data_csum;		/* enum rd_csum_type; -1 = crc32c */
	int		meta_csum;		/* enum rd_csum_type; -1 = crc32c */
	const char	*label;
	bool		force;			/* overwrite an existing refdio image */
	bool		no_direct;		/* see rd_io_opts */
};

/* Creates (sparse) or reuses path and writes an empty filesystem: superblocks, an empty
 * journal checkpoint, empty trees. -RD_ERR_IMAGE_EXISTS without force if path already
 * holds a refdio image. why gets a message on bad options. */
int rd_store_format(const char *path, const struct rd_format_opts *o, char *why,
		    size_t why_len);

struct rd_open_opts {
	bool		read_only;	/* no writes at all: replay is done in memory only */
	bool		no_direct;
	uint64_t	cache_bytes;	/* node cache bound; 0 = 64 MiB */
	/* Tests only. io_hooks: see rd_io_hooks (the power-cut model, write-order checks);
	 * test_no_preflush: the journal writes entries without flushing the data they name
	 * first, the bug the write-order and power-cut tests must catch (negative controls). */
	const struct rd_io_hooks *io_hooks;
	bool		test_no_preflush;
};

/* Opens an image: reads the superblock, replays the journal unless it was closed cleanly,
 * builds the allocator. why gets a message naming the problem on failure. */
int rd_store_open(const char *path, const struct rd_open_opts *o, struct rd_store **out,
		  char *why, size_t why_len);

/* Checkpoints, writes the superblock with the roots and RD_SB_CLEAN, frees everything.
 * Returns the first error met; the store is freed in all cases. */
int rd_store_close(struct rd_store *s);

/* Test hook: a crash of the process: everything in memory is dropped and nothing more is
 * written after this call starts, but every write already issued reaches the image. A
 * power cut, where the device also loses what it had not flushed, is rd_io_model's job
 * (io_model.h) on top of this. */
void rd_store_crash(struct rd_store *s);

/* Makes every transaction committed up to seq durable (0 = everything so far): the journal
 * is written and the device flushed. */
int rd_store_flush(struct rd_store *s, uint64_t seq);

/* Like rd_store_flush, but returns at once; done(priv, err) runs on another thread once
 * seq is durable. */
void rd_store_flush_async(struct rd_store *s, uint64_t seq,
			  void (*done)(void *priv, int err), void *priv);

/* The seq a transaction committed now would get, and the highest durable seq. */
uint64_t rd_store_journal_seq(struct rd_store *s);
uint64_t rd_store_durable_seq(struct rd_store *s);

#endif
