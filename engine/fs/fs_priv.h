/*
 * fs_priv.h - what the files of the filesystem layer share: struct rd_fs, in-memory
 * inodes, and the internal calls one part makes into another.
 *
 * Parts: fs.c (open/close, statfs, stats), inode.c (the inode cache, numbers, orphan
 * markers), inode_delete.c (deleting inodes and orphans on disk), probe.c (name hashing, linear probing), dirents.c (directory entries), namei.c (lookup,
 * create, link, unlink), rename.c, readdir.c, attr.c (getattr/setattr), xattr.c, and the
 * data path (extents.c, data_read.c, data_write.c, data_ops.c: truncate, fallocate, seek,
 * fsync).
 *
 * Locking order (always this way round, never the reverse):
 *   fs->rename_lock  ->  data range locks of one inode  ->  inode locks, in increasing
 *   inode number  ->  store index lock (inside rd_trans_commit / lookups)  ->  allocator
 *   lock. Namespace operations take the rename lock and inode locks, the data path range
 *   locks and then the inode lock; nothing takes a range lock while holding an inode lock.
 * fs->icache_lock is a leaf: nothing else is taken while it is held.
 */
#ifndef RD_FS_PRIV_H
#define RD_FS_PRIV_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

#include "btree.h"
#include "format.h"
#include "refdio/fs.h"
#include "store.h"

/* An inode's attributes in host form (the on-disk form is struct rd_inode_v). */
struct rd_inode_mem {
	uint32_t mode, uid, gid, nlink;
	uint32_t generation, flags;
	uint64_t size;		/* bytes */
	uint64_t sectors;	/* 512-byte sectors of live extents */
	uint64_t rdev;
	uint64_t parent;	/* directories: the parent directory (".."); else 0 */
	int64_t  atime, mtime, ctime, btime;	/* ns since the epoch */
};

struct rd_data_inode;	/* the data path's per-inode state (range locks); data code only */
struct rd_data_fs;	/* the data path's filesystem-wide state (async workers) */

/*
 * An inode in memory. Lifetime: held by refs (callers in the middle of an operation, via
 * rd_inode_get/put) and by nlookup (the kernel's lookup count, via rd_fs_iget/iput). When
 * both reach zero it leaves the cache; if its link count is zero by then, it is deleted on
 * disk first (data, then the inode and its orphan marker).
 */
struct rd_inode {
	uint64_t		ino;
	uint32_t		ftype;		/* S_IFMT bits of i.mode: never change, read
						 * without the lock */
	struct rd_inode		*hnext;		/* icache hash chain (icache_lock) */
	uint64_t		refs;		/* icache_lock */
	uint64_t		nlookup;	/* icache_lock */
	bool			dying;		/* being deleted: gets fail (icache_lock) */

	/* Held while changing i or, for a directory, its entries. */
	pthread_mutex_t		lock;
	struct rd_inode_mem	i;		/* as last committed (lock) */
	uint64_t		last_seq;	/* journal seq of the last change (lock) */
	bool			dead;		/* deleted on disk (lock) */
	int8_t			has_xattrs;	/* -1 unknown, 0 none, 1 some (lock) */

	struct rd_data_inode	*data;		/* created on first data access */
};

struct rd_fs {
	struct rd_store		*s;
	struct rd_fs_opts	opts;
	uint8_t			hash_key[16];	/* SipHash key for dirents and xattrs */
	uint64_t		lost_found_ino;

	pthread_mutex_t		icache_lock;
	struct rd_inode		**ihash;
	size_t			ihash_size;	/* power of two */
	size_t			icount;
	uint64_t		icache_unhashes;	/* inodes that left the cache, ever */

	pthread_mutex_t		ino_lock;	/* next_ino, ino_limit */
	uint64_t		next_ino;	/* next number to hand out */
	uint64_t		ino_limit;	/* persisted: numbers below it may have been used */

	pthread_mutex_t		rename_lock;	/* serialises cross-directory renames */

	struct rd_data_fs	*data;		/* data_work.c */
	struct rd_dio		*dio;		/* rd_fs_write's (data_write.c) */
	struct rd_gc		*gc;		/* the mover (move.c); NULL with no_gc */

	/* Called by the inode cache for the last reference to an unlinked inode: the deleter
	 * (inode_delete.c) lives above the cache, which cannot call it by name. */
	int			(*delete_inode)(struct rd_fs *fs, struct rd_inode *ip);

	/* Counters (relaxed atomics; see struct rd_fs_stats). The data path keeps: reads,
	 * read_bytes (user reads, bytes returned), writes, write_bytes (user writes, bytes
	 * committed), rmw_blocks (edge blocks read back), csum_errors (regions that failed
	 * verification), extents_written (new data/unwritten extents committed), fsyncs,
	 * stale_retries (reads looked up again: a bucket was reused under them),
	 * short_writes (writes that stopped part-way and returned fewer bytes). */
	struct {
		atomic_uint_fast64_t reads, read_bytes, writes, write_bytes, rmw_blocks;
		atomic_uint_fast64_t csum_errors, extents_written, fsyncs;
		atomic_uint_fast64_t xattr_tree_reads;	/* b-tree reads made by xattr.c */
		atomic_uint_fast64_t stale_retries, short_writes;
	} st;
};

/* ---- inode locks ----------------------------------------------------------------------- */

/*
 * ip->lock, through these two only: they count the inode locks the thread holds (debug
 * builds), so that the locking order above is checked where it matters most: a range lock
 * is never taken under an inode lock (data_lock.c asserts it).
 */
#ifndef NDEBUG
extern _Thread_local unsigned rd_inode_locks_held;
#endif

static inline void rd_inode_lock(struct rd_inode *ip)
{
	pthread_mutex_lock(&ip->lock);
#ifndef NDEBUG
	rd_inode_locks_held++;
#endif
}

static inline void rd_inode_unlock(struct rd_inode *ip)
{
#ifndef NDEBUG
	assert(rd_inode_locks_held > 0);
	rd_inode_locks_held--;
#endif
	pthread_mutex_unlock(&ip->lock);
}

/* ---- inode.c ------------------------------------------------------------------------- */

int64_t rd_now_ns(void);
void rd_inode_pack(const struct rd_inode_mem *m, struct rd_inode_v *v);
void rd_inode_unpack(const struct rd_inode_v *v, struct rd_inode_mem *m);
void rd_inode_to_stat(const struct rd_fs *fs, const struct rd_inode *ip, struct rd_stat *st);

/* A referenced in-memory inode; -ENOENT if there is none (or it was deleted). */
int rd_inode_get(struct rd_fs *fs, uint64_t ino, struct rd_inode **out);
/* The same for a regular file: -EISDIR for a directory, -EINVAL for anything else. */
int rd_inode_get_file(struct rd_fs *fs, uint64_t ino, struct rd_inode **out);
/* Takes another reference on an inode already held. */
void rd_inode_ref(struct rd_fs *fs, struct rd_inode *ip);
/* Drops a reference; may delete an unlinked inode (see struct rd_inode). */
void rd_inode_put(struct rd_fs *fs, struct rd_inode *ip);

/* Queues the inode's current attributes (ip->i) into t. Caller holds ip->lock. */
int rd_inode_write(struct rd_trans *t, const struct rd_inode *ip);
/* Queues attributes m for inode ino into t: changes are built in a copy of ip->i and
 * copied back only once the transaction committed. */
int rd_inode_write_mem(struct rd_trans *t, uint64_t ino, const struct rd_inode_mem *m);

/* Reserves a new inode number, queueing the persisted limit into t when it moves. */
int rd_inode_alloc_number(struct rd_fs *fs, struct rd_trans *t, uint64_t *ino);
/* After the transaction creating inode ino (attributes m) committed as seq: the new
 * inode, referenced, in the cache. */
int rd_inode_instantiate(struct rd_fs *fs, uint64_t ino, const struct rd_inode_mem *m,
			 uint64_t seq, struct rd_inode **out);
/* Fills m for a new inode of the given mode and owner, times now, a fresh generation
 * (parent 0: a directory's creator sets it). */
void rd_inode_init(struct rd_inode_mem *m, uint32_t mode, const struct rd_fs_cred *cr,
		   uint64_t rdev);

/* Orphan markers: {0, ino, 0} in the inodes tree while an inode has nlink 0 but still
 * exists. Queued in the transaction that drops the last link / deletes the inode. */
int rd_inode_orphan_add(struct rd_trans *t, uint64_t ino);
int rd_inode_orphan_del(struct rd_trans *t, uint64_t ino);

/* ---- inode_delete.c (above inode.c, the data path and xattr.c) ------------------------- */

/* Deletes an unlinked inode nobody holds, on disk (fs->delete_inode points here). */
int rd_inode_delete(struct rd_fs *fs, struct rd_inode *ip);
/* Deletes every orphan not referenced in memory (at open, after a crash). */
int rd_inode_delete_orphans(struct rd_fs *fs);

/* Inode cache set-up and tear-down (fs.c). */
int rd_icache_init(struct rd_fs *fs);
void rd_icache_exit(struct rd_fs *fs);

/* ---- the data path (extents.c, data_*.c) ------------------------------------------------ */

/* Filesystem-wide data state: set up at open (no threads yet: workers start on the first
 * asynchronous call), torn down at close/crash once callers have drained their I/O. */
int rd_data_fs_init(struct rd_fs *fs);
void rd_data_fs_exit(struct rd_fs *fs);

/* Frees ip->data (cache eviction: nobody holds a range lock of it any more). */
void rd_data_inode_free(struct rd_data_inode *d);
/* Removes all extents at or past byte new_size (rounded up to a block; the partial block
 * before it is zeroed past new_size), releasing their space, in as many transactions as
 * needed; the last one also updates i_size/sectors. Caller holds no inode lock. */
int rd_data_truncate(struct rd_fs *fs, struct rd_inode *ip, uint64_t new_size);

/*
 * The chunk-level write (data_write.c), in four steps; the dio engine's filesystem sink
 * (dio_fs.c), and so every user write, is built on it. A wr covers [off, off + len) of a regular file, len <=
 * 64 MiB; it is written to new space as whole blocks (edge blocks read-modify-written) and
 * becomes visible only at commit.
 *
 *  begin   takes a reference on ip, locks the blocks [off, off + len) touch (waits for
 *          overlapping writers; RD_DATA_WR_NOWAIT: -EAGAIN instead), reserves their space
 *          (-ENOSPC up front, nothing changed), and reads back the partial edge blocks.
 *          May block (range lock, edge reads). flags: RD_DATA_WR_*.
 *  submit  allocates regions on the user write point (each <= encoded_extent_max, inside
 *          one bucket), checksums exactly the bytes written, and writes them
 *          asynchronously (buf is used in place when 4096-aligned and the edges are block
 *          aligned, else copied once into an aligned bounce buffer). done(priv, err) runs
 *          once all region writes ended: on an I/O thread, or in the calling thread if
 *          submit failed early. It must not block and must not commit: commit from a
 *          thread that may block. buf must stay valid and unchanged until done.
 *  commit  after done(0): under the inode lock, in one transaction when it fits (else
 *          several, in file order), removes what the new extents overwrite (trim/split/
 *          delete, accounted), inserts them (accounted), updates i_size, sectors, mtime,
 *          ctime and ip->last_seq (durability is the caller's: dio's dsync flush).
 *          Releases everything and frees wr. Returns the bytes of [off, off + len) made
 *          visible: len, or fewer if a later transaction failed (a short write, everything
 *          reported consistent), or a negative errno if none. *seq (if not NULL) gets the
 *          last seq committed.
 *  abort   instead of commit (after done, or instead of submit): releases everything;
 *          nothing written becomes visible. Frees wr.
 */
struct rd_data_wr;
typedef void (*rd_data_wr_done_fn)(void *priv, int err);
#define RD_DATA_WR_NOWAIT	(1u << 8)	/* begin: -EAGAIN rather than wait for a range */

int rd_data_wr_begin(struct rd_fs *fs, struct rd_inode *ip, uint64_t off, size_t len,
		     unsigned flags, struct rd_data_wr **out);
void rd_data_wr_submit(struct rd_fs *fs, struct rd_data_wr *wr, const void *buf,
		       rd_data_wr_done_fn done, void *priv);
ssize_t rd_data_wr_commit(struct rd_fs *fs, struct rd_data_wr *wr, uint64_t *seq);
void rd_data_wr_abort(struct rd_fs *fs, struct rd_data_wr *wr);

/* ---- move.c: copying GC ------------------------------------------------------------- */

/* The mover: its thread, the allocator's reclaim hook and the GC reserve. start at open
 * (writable, not no_gc) after orphans are gone; stop at close/crash once no user write is
 * running any more and before the inode cache goes. */
int rd_gc_start(struct rd_fs *fs);
void rd_gc_stop(struct rd_fs *fs);
/* The counters of rd_fs_stats' gc_* (zeros without a mover... except what rd_fs_gc did). */
void rd_gc_stats(struct rd_fs *fs, struct rd_fs_stats *st);

/* ---- xattr.c ------------------------------------------------------------------------ */

/* Queues the deletion of every xattr key of ino into t. */
int rd_xattr_delete_all(struct rd_fs *fs, struct rd_trans *t, uint64_t ino);

/* ---- names (probe.c; dirents.h and probe.h hold the rest) ----------------------------- */

/* The hash slot of a directory entry name, in [RD_HASH_SLOT_MIN, RD_HASH_SLOT_MAX]. */
uint64_t rd_name_slot(const struct rd_fs *fs, const void *name, size_t len);

#endif
