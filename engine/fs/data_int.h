/*
 * data_int.h - what the files of the data path share (extents.c, data_*.c, and dio_fs.c,
 * the direct-write sink built on the chunk-level write); nothing else includes it.
 *
 * Owns: the per-inode data state (struct rd_data_inode: the block range locks), the
 * filesystem-wide data state (struct rd_data_fs: the workers that run the asynchronous
 * calls), and the internal read and write calls the operations are built from.
 *
 * Range locks: every change to an inode's extents or i_size is made by a holder of a range
 * lock covering the blocks it changes (and, when i_size moves, everything from the old or
 * new size's block on). Ranges are in bytes, block aligned, end exclusive; UINT64_MAX
 * means "to the end of any file". Overlapping ranges exclude each other, disjoint ones do
 * not, so unaligned writes to different blocks proceed in parallel while two writers of
 * one block read-modify-write it one after the other. Order: range lock, then ip->lock,
 * then the store's locks (fs_priv.h).
 */
#ifndef RD_DATA_INT_H
#define RD_DATA_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"
#include "fs_priv.h"
#include "refdio/dio.h"

/* ---- limits ------------------------------------------------------------------------- */

/* Largest file (bytes): keeps every sector number and byte offset far from overflow. */
#define RD_DATA_MAX_FILE	(1ull << 60)
/* Largest write one rd_data_wr carries: the dio engine's largest chunk. */
#define RD_DATA_WR_MAX		RD_DIO_CHUNK_MAX
/* Extent changes queued into one transaction at most (far below one journal entry). */
#define RD_DATA_TXN_OPS		1024
/* Bytes of region buffers one read keeps in flight at most. */
#define RD_DATA_READ_BUDGET	(16u << 20)

/* ---- range locks (data_lock.c) ------------------------------------------------------ */

struct rd_range {
	uint64_t start, end;		/* bytes, [start, end) */
	struct rd_range *next;		/* in rd_data_inode.held */
};

struct rd_data_inode {
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* broadcast when a range is released */
	struct rd_range *held;
};

/* The inode's data state, created on first use; NULL if out of memory. */
struct rd_data_inode *rd_data_inode_of(struct rd_inode *ip);

/* Waits until no held range overlaps [start, end), then holds r = [start, end). */
void rd_range_lock(struct rd_data_inode *d, struct rd_range *r, uint64_t start, uint64_t end);
/* As rd_range_lock, but -EAGAIN instead of waiting. */
int rd_range_trylock(struct rd_data_inode *d, struct rd_range *r, uint64_t start,
		     uint64_t end);
void rd_range_unlock(struct rd_data_inode *d, struct rd_range *r);

/* ---- asynchronous calls (data_work.c) ----------------------------------------------- */

struct rd_data_work {
	void (*fn)(struct rd_data_work *w);
	struct rd_data_work *next;
};

struct rd_data_fs;

/* Runs w->fn(w) on a data worker thread. -ENOMEM if no worker could be started. */
int rd_data_queue(struct rd_fs *fs, struct rd_data_work *w);

/* ---- reading (data_read.c) ---------------------------------------------------------- */

/*
 * Reads [off, off + len) of ip as stored, whatever i_size says: holes and unwritten
 * extents give zeros. Every region is verified before its bytes are copied; a stale
 * pointer (the bucket was reused while reading) is looked up again. Returns 0 or -EIO
 * (checksum mismatch, counted), or another negative errno.
 */
int rd_data_read_raw(struct rd_fs *fs, struct rd_inode *ip, void *buf, size_t len,
		     uint64_t off);

/* ---- writing (data_write.c) --------------------------------------------------------- */

/* Internal rd_data_wr flags (next to RD_DATA_WR_NOWAIT). A user write's bytes count in
 * write_bytes piece by piece; the write itself is counted once, by the dio sink. */
#define RD_DATA_WR_LOCKED	(1u << 16)	/* caller holds a range lock covering it */
#define RD_DATA_WR_NO_EXTEND	(1u << 17)	/* never moves i_size (zeroing inside it) */
#define RD_DATA_WR_INTERNAL	(1u << 18)	/* not a user write: no write stats */

/*
 * One rd_data_wr of [off, off + len) (at most RD_DATA_WR_MAX), begun, submitted, waited
 * for and committed; for the engine's own small writes (zeroing a partial block). User
 * writes go through the dio engine instead (rd_fs_write). Returns the bytes committed or a
 * negative errno.
 */
ssize_t rd_data_write_once(struct rd_fs *fs, struct rd_inode *ip, const void *buf, size_t len,
			   uint64_t off, unsigned flags);

/* Truncate's last step (data_ops.c): commit wr like rd_data_wr_commit, but also remove
 * every extent in sectors [punch_lo, UINT64_MAX) and set i_size to size exactly, in the
 * last transaction. */
ssize_t rd_data_wr_commit_truncate(struct rd_fs *fs, struct rd_data_wr *wr, uint64_t punch_lo,
				   uint64_t size, uint64_t *seq);

/*
 * Commits an inode-only change made by the caller: ip->i already holds the new values
 * (the caller holds ip->lock and saved the old ones in *old, restored on failure). On
 * success ip->last_seq is updated.
 */
int rd_data_commit_inode(struct rd_fs *fs, struct rd_inode *ip, struct rd_trans *t,
			 const struct rd_inode_mem *old);

/* Waiting for an rd_data_wr_submit: pass rd_data_wait_done with a struct rd_completion
 * (util.h) as priv, then rd_completion_wait() gives the error. */
void rd_data_wait_done(void *priv, int err);	/* the rd_data_wr_done_fn */

/* The block size (rounding helpers: util.h). */
static inline uint64_t rd_data_bs(const struct rd_fs *fs)
{
	return fs->s->geo.block_size;
}

#endif
