/*
 * fs_priv.h - what the files of the filesystem layer share: struct rd_fs, in-memory
 * inodes, and the internal calls one part makes into another.
 *
 * Parts: fs.c (open/close, statfs, stats), inode.c (the inode cache, numbers, orphans),
 * namei.c + dirent.c (names and directories), xattr.c, and the data path (extents.c,
 * data_read.c, data_write.c, data_ops.c: truncate, fallocate, seek, fsync).
 *
 * Locking order (always this way round, never the reverse):
 *   fs->rename_lock  ->  inode locks, in increasing inode number  ->  data range locks of
 *   one inode  ->  store index lock (inside rd_trans_commit / lookups)  ->  allocator lock.
 * fs->icache_lock is a leaf: nothing else is taken while it is held.
 */
#ifndef RD_FS_PRIV_H
#define RD_FS_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "btree.h"
#include "format.h"
#include "fs.h"
#include "store.h"

/* An inode's attributes in host form (the on-disk form is struct rd_inode_v). */
struct rd_inode_mem {
	uint32_t mode, uid, gid, nlink;
	uint32_t generation, flags;
	uint64_t size;		/* bytes */
	uint64_t sectors;	/* 512-byte sectors of live extents */
	uint64_t rdev;
	int64_t  atime, mtime, ctime, btime;	/* ns since the epoch */
};

struct rd_data_inode;	/* the data path's per-inode state (range locks); data code only */

/*
 * An inode in memory. Lifetime: held by refs (callers in the middle of an operation, via
 * rd_inode_get/put) and by nlookup (the kernel's lookup count, via rd_fs_iget/iput). When
 * both reach zero it leaves the cache; if its link count is zero by then, it is deleted on
 * disk first (data, then the inode and its orphan marker).
 */
struct rd_inode {
	uint64_t		ino;
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

	pthread_mutex_t		ino_lock;	/* next_ino, ino_limit */
	uint64_t		next_ino;	/* next number to hand out */
	uint64_t		ino_limit;	/* persisted: numbers below it may have been used */

	pthread_mutex_t		rename_lock;	/* serialises cross-directory renames */

	struct {
		atomic_uint_fast64_t reads, read_bytes, writes, write_bytes, rmw_blocks;
		atomic_uint_fast64_t csum_errors, extents_written, fsyncs;
	} st;
};

/* ---- inode.c ------------------------------------------------------------------------- */

int64_t rd_now_ns(void);
void rd_inode_pack(const struct rd_inode_mem *m, struct rd_inode_v *v);
void rd_inode_unpack(const struct rd_inode_v *v, struct rd_inode_mem *m);
void rd_inode_to_stat(const struct rd_fs *fs, const struct rd_inode *ip, struct rd_stat *st);

/* A referenced in-memory inode; -ENOENT if there is none (or it was deleted). */
int rd_inode_get(struct rd_fs *fs, uint64_t ino, struct rd_inode **out);
/* Takes another reference on an inode already held. */
void rd_inode_ref(struct rd_fs *fs, struct rd_inode *ip);
/* Drops a reference; may delete an unlinked inode (see struct rd_inode). */
void rd_inode_put(struct rd_fs *fs, struct rd_inode *ip);

/* Queues the inode's current attributes (ip->i) into t. Caller holds ip->lock. */
int rd_inode_write(struct rd_trans *t, const struct rd_inode *ip);

/* Reserves a new inode number, queueing the persisted limit into t when it moves. */
int rd_inode_alloc_number(struct rd_fs *fs, struct rd_trans *t, uint64_t *ino);
/* After the transaction creating inode ino (attributes m) committed as seq: the new
 * inode, referenced, in the cache. */
int rd_inode_instantiate(struct rd_fs *fs, uint64_t ino, const struct rd_inode_mem *m,
			 uint64_t seq, struct rd_inode **out);
/* Fills m for a new inode of the given mode and owner, times now, a fresh generation. */
void rd_inode_init(struct rd_inode_mem *m, uint32_t mode, const struct rd_fs_cred *cr,
		   uint64_t rdev);

/* Orphan markers: {0, ino, 0} in the inodes tree while an inode has nlink 0 but still
 * exists. Queued in the transaction that drops the last link / deletes the inode. */
int rd_inode_orphan_add(struct rd_trans *t, uint64_t ino);
int rd_inode_orphan_del(struct rd_trans *t, uint64_t ino);

/* Deletes every orphan not referenced in memory (at open, after a crash). */
int rd_inode_delete_orphans(struct rd_fs *fs);

/* Inode cache set-up and tear-down (fs.c). */
int rd_icache_init(struct rd_fs *fs);
void rd_icache_exit(struct rd_fs *fs);

/* ---- the data path (extents.c, data_*.c) ------------------------------------------------ */

/* Frees ip->data (cache eviction). */
void rd_data_inode_free(struct rd_data_inode *d);
/* Removes all extents at or past byte new_size (rounded up to a block; the partial block
 * before it is zeroed past new_size), releasing their space, in as many transactions as
 * needed; the last one also updates i_size/sectors. Caller holds no inode lock. */
int rd_data_truncate(struct rd_fs *fs, struct rd_inode *ip, uint64_t new_size);

/* ---- xattr.c ------------------------------------------------------------------------ */

/* Queues the deletion of every xattr key of ino into t. */
int rd_xattr_delete_all(struct rd_fs *fs, struct rd_trans *t, uint64_t ino);

/* ---- names (dirent.c) ----------------------------------------------------------------- */

/* The hash slot of a name in directory (or xattr set) owner. */
uint64_t rd_name_slot(const struct rd_fs *fs, const void *name, size_t len);

#endif
