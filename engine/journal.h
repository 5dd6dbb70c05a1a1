/*
 * journal.h - the journal ring: entries, flushes, replay, space (engine-internal API).
 *
 * Owns: the journal buckets as a ring of entries (struct rd_jset + records, see format.h),
 * the open entry that commits append to, the flusher thread that writes closed entries
 * one at a time in seq order, durability (a seq is durable once its entry was written and
 * the device flushed), the live region [last checkpoint entry, head) and replay at open.
 *
 * When an entry is written: the open entry is closed and queued when it is full, when
 * someone waits for its seq (rd_journal_flush*), when a checkpoint needs it, or
 * RD_JOURNAL_DELAY_MS after its first record (the flusher's timer). The flusher writes each
 * queued entry with a single write that never wraps the ring (it skips to the ring's start
 * instead), then flushes the device once for the batch; only then are their seqs durable.
 *
 * Space: entries from the last durable checkpoint entry to the head are live and never
 * overwritten. rd_journal_want_checkpoint says when the live part passed half the ring;
 * an append that finds no room fails with -RD_ERR_NO_SPACE_META.
 *
 * Seqs are never reused: after replay writing resumes behind the newest valid entry N with
 * seq N + 2, so an entry N + 1 torn by the crash can never be mistaken for a later one.
 *
 * Locking: append/checkpoint calls run under the store's index lock; flush calls from any
 * thread; the journal has its own mutex inside. Must never: call into the trees (replay
 * hands records to a callback), or block in the flusher on anything but I/O.
 */
#ifndef RD_JOURNAL_H
#define RD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

struct rd_store;
struct rd_io;
struct rd_geometry;
struct rd_journal;

#define RD_JOURNAL_ENTRY_MAX	(1u << 20)	/* largest entry ever written or accepted */
#define RD_JOURNAL_DELAY_MS	50		/* a pending record waits at most this long */

/* Creates s->journal from s->geo (no I/O, no thread yet). */
int rd_journal_init(struct rd_store *s);
/* Stops the flusher if running (see rd_journal_stop) and frees s->journal. */
void rd_journal_free(struct rd_store *s);

/*
 * Replay at open: scans the whole ring for valid entries, takes the newest (N) and its
 * checkpoint L = N.last_seq, and calls apply for L's ROOT records, then for every record of
 * entries L+1..N in order (stopping with a warning at a gap). Positions the ring behind N,
 * with seq N + 2 next. Until a checkpoint entry is durable, rd_journal_want_checkpoint says
 * yes: the first commit checkpoints, so that no later replay has to cross the seq skipped
 * here (or a gap met here). -RD_ERR_JOURNAL_CORRUPT (why says what) if no usable
 * checkpoint is found.
 */
typedef int (*rd_journal_apply_fn)(void *priv, uint64_t seq, const struct rd_jrec *rec,
				   const void *payload, size_t payload_len);
int rd_journal_replay(struct rd_store *s, rd_journal_apply_fn apply, void *priv,
		      uint64_t *entries, uint64_t *records, char *why, size_t why_len);
/* After a clean close: the ring resumes at head, after entry seq (no scan). Nothing is live
 * until the first checkpoint entry, which must be the first entry written. */
void rd_journal_resume(struct rd_store *s, uint64_t seq, uint64_t head);

/* Starts the flusher thread (read-write stores only). */
int rd_journal_start(struct rd_store *s);
/* Stops the flusher. Without crash, every closed or pending entry is written first; with
 * crash, the entry being written (if any) completes and nothing more is written. Pending
 * async flush callbacks are called (with -ECANCELED if their seq never became durable). */
void rd_journal_stop(struct rd_store *s, bool crash);

/* ---- the commit path (index lock held) ---------------------------------------------- */

/* Most record bytes one entry can take (a transaction larger than this gets -E2BIG). */
size_t rd_journal_max_records(const struct rd_journal *j);
/* Whether the live part of the ring, with more bytes added, passes half of it, or no
 * checkpoint was written since the ring was resumed: then the commit checkpoints first. */
bool rd_journal_want_checkpoint(struct rd_journal *j, size_t more);
/*
 * Appends bytes of records (nr_records of them, already padded to 8 each) to the open
 * entry: fill(dst, priv) writes them. A run appended in one call never spans entries.
 * *seq gets the entry's seq. -E2BIG, -RD_ERR_NO_SPACE_META, or the journal's I/O error.
 */
int rd_journal_append(struct rd_journal *j, size_t bytes, uint32_t nr_records,
		      void (*fill)(void *dst, void *priv), void *priv, uint64_t *seq);

/* ---- checkpoints (index lock held) --------------------------------------------------- */

/* Closes the open entry if it holds records and waits until everything is durable. */
int rd_journal_flush_all(struct rd_journal *j);
/* The seq the checkpoint entry will get: valid after rd_journal_flush_all while the index
 * lock is held (nothing else can append). */
uint64_t rd_journal_next_seq(struct rd_journal *j);
/* Writes the checkpoint entry seq (== rd_journal_next_seq) holding nr roots and waits for
 * it to be durable; the ring before it becomes reclaimable. */
int rd_journal_write_checkpoint(struct rd_journal *j, uint64_t seq,
				const struct rd_btree_root_disk *roots, unsigned nr);

/* ---- flushes (any thread) ------------------------------------------------------------ */

int rd_journal_flush(struct rd_journal *j, uint64_t seq);
void rd_journal_flush_async(struct rd_journal *j, uint64_t seq,
			    void (*done)(void *priv, int err), void *priv);
/* The seq a commit now would get, and the highest durable seq. */
uint64_t rd_journal_seq(struct rd_journal *j);
uint64_t rd_journal_durable_seq(struct rd_journal *j);
/* The first I/O error the journal met (it then refuses everything), or 0. */
int rd_journal_error(struct rd_journal *j);
/* For the clean superblock: the last entry written and where the next would go. */
void rd_journal_position(struct rd_journal *j, uint64_t *last_seq, uint64_t *head);

struct rd_journal_stats {
	uint64_t entries_written;
	uint64_t bytes_written;
	uint64_t flushes;		/* device flushes issued by the flusher */
	uint64_t preflushes;		/* of those, before entries (some image write was
					 * unflushed: rd_io_flush) */
	uint64_t ring_size, ring_used;	/* bytes */
};
void rd_journal_stats(struct rd_journal *j, struct rd_journal_stats *st);

/* ---- formatting ---------------------------------------------------------------------- */

/* Writes the first entry of a new image at the ring's start: checkpoint seq with every
 * tree empty. *head gets where the next entry goes. Not flushed (the superblock write that
 * follows flushes). */
int rd_journal_format(struct rd_io *io, const struct rd_geometry *g, uint64_t seq,
		      uint64_t *head);

#endif
