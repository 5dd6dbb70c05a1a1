/*
 * refdio/fs.h - the POSIX layer of the engine: files, directories, links, xattrs, file data.
 *
 * Owns: the API that fuse/ and the tests call. Every function returns 0 (or a count) or a
 * negative errno; engine-private codes never leave this layer (a data checksum mismatch is
 * -EIO here, counted in rd_fs_stats). Inode numbers are FUSE node ids: RD_ROOT_INO is 1.
 *
 * Names are byte strings of 1..255 bytes without '/' or NUL; "." and ".." are not names.
 * Permission checks are the caller's (FUSE runs with default_permissions); this layer only
 * enforces what the kernel cannot: EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, ELOOP of renames.
 *
 * Lifetime of inodes: an inode whose link count drops to 0 while referenced
 * (rd_fs_iget without a matching rd_fs_iput: FUSE's lookup count) becomes an orphan and is
 * deleted, with its data, when the last reference goes; after a crash, orphans are
 * deleted at the next open. Unreferenced inodes are deleted at once.
 *
 * Thread safety: every function may be called from any thread concurrently.
 */
#ifndef RD_FS_H
#define RD_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>

#include "refdio/image.h"

/* The root directory's inode number (FUSE_ROOT_ID); engine/format.h holds the same value
 * as the on-disk truth. */
#define RD_ROOT_INO		1

struct rd_fs;

struct rd_fs_opts {
	struct rd_open_opts store;
	/* Test hook: keep only these low bits of name hashes (0 = all), to force collisions. */
	uint64_t test_hash_mask;
	/* No copying GC: no mover thread, no GC reserve; space in a partly dead bucket comes
	 * back only when the whole bucket empties (the control of the GC tests). */
	bool no_gc;
};

/* Opens a formatted image and its filesystem (creating the root directory and lost+found
 * on first open, deleting orphans left by a crash). why gets a message on failure. The one
 * exception to the errno rule above: open returns the engine's own code (-RD_ERR_*), so
 * that "not a refdio image" or "image is truncated" reach the user as such. */
int rd_fs_open(const char *path, const struct rd_fs_opts *o, struct rd_fs **out, char *why,
	       size_t why_len);
/* Waits for all I/O, deletes orphans if no longer referenced, closes the store cleanly. */
int rd_fs_close(struct rd_fs *fs);
/* Test hook: a process crash (see rd_store_crash; power cuts: io_model.h). */
void rd_fs_crash(struct rd_fs *fs);
/* The store under the filesystem (fsck, stats). */
struct rd_store *rd_fs_store(struct rd_fs *fs);

/* ---- attributes ------------------------------------------------------------------------ */

struct rd_stat {
	uint64_t ino;
	uint32_t generation;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t blocks;	/* 512-byte units */
	uint32_t blksize;
	struct timespec atime, mtime, ctime, btime;
};

/* rd_setattr.valid */
#define RD_SET_MODE		(1u << 0)
#define RD_SET_UID		(1u << 1)
#define RD_SET_GID		(1u << 2)
#define RD_SET_SIZE		(1u << 3)
#define RD_SET_ATIME		(1u << 4)	/* to .atime */
#define RD_SET_MTIME		(1u << 5)
#define RD_SET_ATIME_NOW	(1u << 6)
#define RD_SET_MTIME_NOW	(1u << 7)
#define RD_SET_CTIME		(1u << 8)

struct rd_setattr {
	unsigned valid;
	uint32_t mode;		/* permission bits only; the file type never changes */
	uint32_t uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

int rd_fs_getattr(struct rd_fs *fs, uint64_t ino, struct rd_stat *st);
/* Applies sa; a size change truncates or extends (holes). st gets the result if not NULL. */
int rd_fs_setattr(struct rd_fs *fs, uint64_t ino, const struct rd_setattr *sa,
		  struct rd_stat *st);

/* References (FUSE lookup counts): see the lifetime rules above. */
int rd_fs_iget(struct rd_fs *fs, uint64_t ino);
void rd_fs_iput(struct rd_fs *fs, uint64_t ino, uint64_t n);

/* ---- namespace ------------------------------------------------------------------------- */

/* Who creates: owner of new inodes, and the times to stamp. */
struct rd_fs_cred {
	uint32_t uid, gid;
};

int rd_fs_lookup(struct rd_fs *fs, uint64_t dir, const char *name, struct rd_stat *st);
/* Regular files, fifos, sockets, character and block devices (type from mode). */
int rd_fs_mknod(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode, uint64_t rdev,
		const struct rd_fs_cred *cr, struct rd_stat *st);
int rd_fs_mkdir(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		const struct rd_fs_cred *cr, struct rd_stat *st);
int rd_fs_symlink(struct rd_fs *fs, uint64_t dir, const char *name, const char *target,
		  const struct rd_fs_cred *cr, struct rd_stat *st);
/* Copies the target (not NUL-terminated if it fills buf) and returns its length. */
ssize_t rd_fs_readlink(struct rd_fs *fs, uint64_t ino, char *buf, size_t len);
int rd_fs_link(struct rd_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
	       struct rd_stat *st);
int rd_fs_unlink(struct rd_fs *fs, uint64_t dir, const char *name);
int rd_fs_rmdir(struct rd_fs *fs, uint64_t dir, const char *name);

#define RD_RENAME_NOREPLACE	(1u << 0)
#define RD_RENAME_EXCHANGE	(1u << 1)
int rd_fs_rename(struct rd_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		 const char *newname, unsigned flags);

/*
 * Lists dir from cookie (0 = the start): ".", "..", then the entries. fill gets each
 * entry and the cookie that resumes after it; it returns nonzero to stop (buffer full).
 * Cookies stay valid while the directory changes: an entry present throughout is
 * returned exactly once.
 */
typedef int (*rd_fs_fill_fn)(void *priv, const char *name, size_t name_len, uint64_t ino,
			     unsigned d_type, uint64_t next_cookie);
int rd_fs_readdir(struct rd_fs *fs, uint64_t dir, uint64_t cookie, rd_fs_fill_fn fill,
		  void *priv);

/* ---- extended attributes --------------------------------------------------------------- */

#define RD_XATTR_CREATE		1	/* as XATTR_CREATE */
#define RD_XATTR_REPLACE	2	/* as XATTR_REPLACE */
int rd_fs_setxattr(struct rd_fs *fs, uint64_t ino, const char *name, const void *value,
		   size_t size, int flags);
/* The value's size; copies it if size > 0 (-ERANGE if it does not fit). -ENODATA if none. */
ssize_t rd_fs_getxattr(struct rd_fs *fs, uint64_t ino, const char *name, void *value,
		       size_t size);
/* NUL-separated names, as listxattr(2). */
ssize_t rd_fs_listxattr(struct rd_fs *fs, uint64_t ino, char *list, size_t size);
int rd_fs_removexattr(struct rd_fs *fs, uint64_t ino, const char *name);

/* ---- file data ------------------------------------------------------------------------- */

#define RD_WRITE_DSYNC		(1u << 0)	/* durable (journal flushed) before completion */

/*
 * Asynchronous data calls: done(priv, res) runs exactly once, on an engine thread (an I/O
 * thread included: done must not block), or in the calling thread when the call needs no
 * I/O (it fails before any, or a read finds only holes or nothing), with bytes transferred
 * or -errno.
 * buf must stay valid and, for writes, unchanged until done. Writes go through the dio
 * engine (dio.h) with the refctx strategy, as the mount's writes do, the buffer lent in
 * place: a write that fails part-way (ENOSPC) reports a prefix ending on a chunk boundary
 * (1 MiB), the bytes written when any were; everything it reports is in the file and
 * consistent, nothing after it is visible. Unaligned writes read-modify-write their edge
 * blocks, serialised per inode range so concurrent writers never lose each other's bytes.
 */
typedef void (*rd_fs_done_fn)(void *priv, ssize_t res);
void rd_fs_read_async(struct rd_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off,
		      rd_fs_done_fn done, void *priv);
void rd_fs_write_async(struct rd_fs *fs, uint64_t ino, const void *buf, size_t len,
		       uint64_t off, unsigned flags, rd_fs_done_fn done, void *priv);
void rd_fs_fsync_async(struct rd_fs *fs, uint64_t ino, bool datasync, rd_fs_done_fn done,
		       void *priv);

/* Synchronous forms of the above. Reads of holes give zeros; reads end at i_size. */
ssize_t rd_fs_read(struct rd_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off);
ssize_t rd_fs_write(struct rd_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
		    unsigned flags);
/* The journal flushed, with a device flush, up to the inode's last change. */
int rd_fs_fsync(struct rd_fs *fs, uint64_t ino, bool datasync);

/* mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE, FALLOC_FL_ZERO_RANGE
 * (optionally |KEEP_SIZE). Others: -EOPNOTSUPP. */
int rd_fs_fallocate(struct rd_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);
/* SEEK_DATA / SEEK_HOLE (SEEK_SET/CUR/END are the caller's): -ENXIO past the end. */
int rd_fs_lseek(struct rd_fs *fs, uint64_t ino, uint64_t off, int whence, uint64_t *out);

int rd_fs_statfs(struct rd_fs *fs, struct statvfs *st);

/* ---- statistics ------------------------------------------------------------------------ */

struct rd_fs_stats {
	uint64_t reads, read_bytes;
	uint64_t writes, write_bytes;
	uint64_t rmw_blocks;		/* edge blocks read back for unaligned writes */
	uint64_t csum_errors;		/* reads that failed verification (-EIO) */
	uint64_t extents_written;
	uint64_t fsyncs;
	uint64_t inodes_cached;
	uint64_t stale_retries;		/* reads looked up again: a bucket was reused under them */
	uint64_t short_writes;		/* writes that stopped part-way (e.g. ENOSPC) */
	/* Copying GC (rd_fs_gc and the mover thread), since the open. */
	uint64_t gc_rounds;		/* rounds that found victims */
	uint64_t gc_buckets_freed;	/* victims emptied */
	uint64_t gc_extents_moved;
	uint64_t gc_bytes_moved;	/* written to new space */
	uint64_t gc_bytes_read;		/* regions read (and verified) to move them */
	uint64_t gc_skipped;		/* regions left: range busy (foreground I/O) or damaged */
	uint64_t gc_waits;		/* reservations that waited for the mover */
};
void rd_fs_stats(struct rd_fs *fs, struct rd_fs_stats *st);

/* ---- copying GC ------------------------------------------------------------------------ */

/* What one rd_fs_gc call did (the same counters as rd_fs_stats' gc_*, for this call). */
struct rd_gc_report {
	uint64_t rounds, buckets_freed, extents_moved, bytes_moved, bytes_read, skipped;
	uint64_t empty_before, empty_after;	/* empty buckets before and after */
};

/*
 * Runs copying GC now, in the calling thread (the mover thread waits meanwhile): empties
 * the buckets with the least live data, moving their live extents to new space, round
 * after round, while each round leaves more empty buckets than before. Returns 0 (rep
 * filled, if not NULL), -EROFS on a read-only filesystem, or another negative errno.
 * Works with no_gc too (then the GC reserve is empty: it moves only into free space).
 */
int rd_fs_gc(struct rd_fs *fs, struct rd_gc_report *rep);

#endif
