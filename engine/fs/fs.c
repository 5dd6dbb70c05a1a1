/*
 * fs.c - opening and closing the filesystem, statfs and statistics.
 *
 * Owns: struct rd_fs set-up and tear-down, the first-open creation of the root directory
 * and lost+found, resuming inode numbering, and cleaning up orphans left by a crash.
 *
 * Must never: close the store while inodes still have I/O in flight (callers drain first:
 * the FUSE layer before rd_fs_close, tests by using the synchronous calls).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "alloc.h"
#include "refdio/dio.h"
#include "refdio/errors.h"
#include "fs_priv.h"

struct rd_store *rd_fs_store(struct rd_fs *fs)
{
	return fs->s;
}

/* Creates the root directory and lost+found in one transaction (first open). */
static int fs_create_root(struct rd_fs *fs)
{
	struct rd_inode_mem root, lf;
	struct rd_fs_cred cr = { 0, 0 };
	struct rd_inode_v v;
	struct rd_inode_alloc_v av;
	struct rd_dirent_v *d;
	struct rd_trans *t;
	size_t nlen = strlen(RD_LOST_FOUND_NAME);
	uint64_t slot;
	int ret;

	rd_inode_init(&root, S_IFDIR | 0755, &cr, 0);
	rd_inode_init(&lf, S_IFDIR | 0700, &cr, 0);
	root.nlink = 3;		/* ".", its own "..", and lost+found's ".." */
	root.parent = RD_ROOT_INO;	/* the root is its own parent */
	lf.parent = RD_ROOT_INO;
	fs->lost_found_ino = RD_FIRST_FREE_INO;
	fs->next_ino = RD_FIRST_FREE_INO + 1;
	fs->ino_limit = fs->next_ino + 1024;

	d = calloc(1, sizeof(*d) + nlen);
	t = rd_trans_new(fs->s);
	if (!d || !t) {
		ret = -ENOMEM;
		goto err;
	}
	rd_inode_pack(&root, &v);
	ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(RD_ROOT_INO, 0), RD_KEY_INODE, &v,
			   sizeof(v));
	rd_inode_pack(&lf, &v);
	if (!ret)
		ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(fs->lost_found_ino, 0), RD_KEY_INODE,
				   &v, sizeof(v));
	av = (struct rd_inode_alloc_v){ .next_ino = rd_le64_of(fs->ino_limit) };
	if (!ret)
		ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(0, 0), RD_KEY_INODE_ALLOC, &av,
				   sizeof(av));
	d->inum = rd_le64_of(fs->lost_found_ino);
	d->d_type = 4;	/* DT_DIR */
	d->name_len = (uint8_t)nlen;
	memcpy(d->name, RD_LOST_FOUND_NAME, nlen);
	slot = rd_name_slot(fs, RD_LOST_FOUND_NAME, nlen);	/* an empty directory: no probing */
	if (!ret)
		ret = rd_trans_put(t, RD_BTREE_DIRENTS, RD_POS(RD_ROOT_INO, slot), RD_KEY_DIRENT, d,
				   sizeof(*d) + nlen);
	if (ret)
		goto err;
	free(d);
	ret = rd_trans_commit(t, NULL);
	if (!ret)
		ret = rd_store_flush(fs->s, 0);
	return ret ? rd_errno(ret) : 0;
err:
	free(d);
	rd_trans_free(t);
	return ret;
}

/* Resumes inode numbering from the persisted limit, or creates the root (first open). */
static int fs_load_numbers(struct rd_fs *fs)
{
	struct rd_bkey *k;
	int ret;

	ret = rd_btree_lookup(fs->s, RD_BTREE_INODES, RD_POS(0, 0), &k);
	if (ret == -ENOENT)
		return fs->s->read_only ? -EROFS : fs_create_root(fs);
	if (ret)
		return rd_errno(ret);
	if (k->type != RD_KEY_INODE_ALLOC || k->val_len != sizeof(struct rd_inode_alloc_v)) {
		free(k);
		return -EIO;
	}
	/* Numbers below the persisted limit may have been used before a crash. */
	fs->next_ino = rd_le64_get(((const struct rd_inode_alloc_v *)k->val)->next_ino);
	free(k);
	/* And so may numbers above it: a create that crossed the limit can commit after a
	 * later one that did not (both reserved their numbers first), and a crash between
	 * the two leaves an inode past the persisted limit. Start past the highest inode. */
	ret = rd_btree_peek_prev(fs->s, RD_BTREE_INODES, RD_POS(RD_ROOT_INO, 0), RD_POS_MAX, &k);
	if (ret && ret != -ENOENT)
		return rd_errno(ret);
	if (!ret) {
		if (k->pos.inode >= fs->next_ino)
			fs->next_ino = k->pos.inode + 1;
		free(k);
	}
	fs->ino_limit = fs->next_ino;
	fs->lost_found_ino = 0;
	{
		struct rd_stat st;

		if (!rd_fs_lookup(fs, RD_ROOT_INO, RD_LOST_FOUND_NAME, &st) && (st.mode & S_IFDIR))
			fs->lost_found_ino = st.ino;
	}
	return 0;
}

int rd_fs_open(const char *path, const struct rd_fs_opts *o, struct rd_fs **out, char *why,
	       size_t why_len)
{
	struct rd_fs *fs;
	int ret;

	if (sodium_init() < 0) {
		snprintf(why, why_len, "libsodium failed to initialise");
		return -EIO;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	if (o)
		fs->opts = *o;
	pthread_mutex_init(&fs->ino_lock, NULL);
	pthread_mutex_init(&fs->rename_lock, NULL);
	fs->delete_inode = rd_inode_delete;
	ret = rd_icache_init(fs);
	if (ret)
		goto err_free;
	ret = rd_data_fs_init(fs);
	if (ret)
		goto err_icache;
	/* rd_fs_write's engine: the same dio engine the mount and the ioctls use, with its
	 * defaults (the mount brings its own, with the mount's options). */
	ret = rd_dio_create(&(struct rd_dio_opts){ .workers = 2 }, &fs->dio);
	if (ret)
		goto err_data;
	ret = rd_store_open(path, &fs->opts.store, &fs->s, why, why_len);
	if (ret)
		goto err_dio;
	memcpy(fs->hash_key, fs->s->sb.hash_secret, sizeof(fs->hash_key));

	ret = fs_load_numbers(fs);
	if (ret) {
		snprintf(why, why_len, "reading the inode table: %s", rd_strerror(ret));
		goto err_store;
	}
	if (!fs->s->read_only) {
		ret = rd_inode_delete_orphans(fs);
		if (ret) {
			snprintf(why, why_len, "deleting orphaned inodes: %s", rd_strerror(ret));
			goto err_store;
		}
	}
	ret = rd_gc_start(fs);
	if (ret) {
		snprintf(why, why_len, "starting the copying GC: %s", rd_strerror(ret));
		goto err_store;
	}
	*out = fs;
	return 0;

err_store:
	rd_store_close(fs->s);
err_dio:
	rd_dio_destroy(fs->dio);
err_data:
	rd_data_fs_exit(fs);
err_icache:
	rd_icache_exit(fs);
err_free:
	pthread_mutex_destroy(&fs->ino_lock);
	pthread_mutex_destroy(&fs->rename_lock);
	free(fs);
	return ret;	/* the engine's own code: callers print it with rd_strerror */
}

/* Drops every kernel reference (an unmount forgets everything), which deletes unlinked
 * inodes that were only kept alive by them. */
static void fs_forget_all(struct rd_fs *fs)
{
	for (;;) {
		struct rd_inode *ip = NULL;

		pthread_mutex_lock(&fs->icache_lock);
		for (size_t i = 0; i < fs->ihash_size && !ip; i++)
			for (struct rd_inode *p = fs->ihash[i]; p && !ip; p = p->hnext)
				if (p->nlookup && !p->dying)
					ip = p;
		if (ip) {
			ip->nlookup = 0;
			ip->refs++;
		}
		pthread_mutex_unlock(&fs->icache_lock);
		if (!ip)
			return;
		rd_inode_put(fs, ip);
	}
}

static void fs_free(struct rd_fs *fs)
{
	rd_data_fs_exit(fs);
	rd_icache_exit(fs);
	pthread_mutex_destroy(&fs->ino_lock);
	pthread_mutex_destroy(&fs->rename_lock);
	free(fs);
}

int rd_fs_close(struct rd_fs *fs)
{
	int ret;

	rd_dio_destroy(fs->dio);	/* waits for rd_fs_write calls still running */
	rd_gc_stop(fs);		/* no user write left to wait for it; before the icache goes */
	if (!fs->s->read_only)
		fs_forget_all(fs);
	rd_data_fs_exit(fs);	/* workers are idle: callers drained their I/O */
	ret = rd_store_close(fs->s);
	fs_free(fs);
	return rd_errno(ret);
}

void rd_fs_crash(struct rd_fs *fs)
{
	rd_dio_destroy(fs->dio);
	rd_gc_stop(fs);
	rd_data_fs_exit(fs);
	rd_store_crash(fs->s);
	fs_free(fs);
}

int rd_fs_statfs(struct rd_fs *fs, struct statvfs *st)
{
	struct rd_space sp;
	uint64_t bs = fs->s->geo.block_size;
	uint64_t used_inodes;

	rd_alloc_space(fs->s, &sp);
	assert(sp.free_bytes <= sp.usable_bytes);	/* free buckets are allocatable ones */
	memset(st, 0, sizeof(*st));
	st->f_bsize = bs;
	st->f_frsize = bs;
	st->f_blocks = sp.usable_bytes / bs;
	st->f_bfree = sp.free_bytes / bs;
	st->f_bavail = sp.available_bytes / bs;
	/* Inodes are keys, not a fixed table: report what would fit if every free block held
	 * one, and how many numbers have been used. */
	pthread_mutex_lock(&fs->ino_lock);
	used_inodes = fs->next_ino - RD_FIRST_FREE_INO + 1;
	pthread_mutex_unlock(&fs->ino_lock);
	st->f_ffree = sp.available_bytes / 128;
	st->f_favail = st->f_ffree;
	st->f_files = st->f_ffree + used_inodes;
	st->f_namemax = RD_NAME_MAX;
	memcpy(&st->f_fsid, fs->s->sb.uuid, sizeof(st->f_fsid) < 16 ? sizeof(st->f_fsid) : 16);
	return 0;
}

void rd_fs_stats(struct rd_fs *fs, struct rd_fs_stats *st)
{
	st->reads = atomic_load(&fs->st.reads);
	st->read_bytes = atomic_load(&fs->st.read_bytes);
	st->writes = atomic_load(&fs->st.writes);
	st->write_bytes = atomic_load(&fs->st.write_bytes);
	st->rmw_blocks = atomic_load(&fs->st.rmw_blocks);
	st->csum_errors = atomic_load(&fs->st.csum_errors);
	st->extents_written = atomic_load(&fs->st.extents_written);
	st->fsyncs = atomic_load(&fs->st.fsyncs);
	st->stale_retries = atomic_load(&fs->st.stale_retries);
	st->short_writes = atomic_load(&fs->st.short_writes);
	rd_gc_stats(fs, st);
	pthread_mutex_lock(&fs->icache_lock);
	st->inodes_cached = fs->icount;
	pthread_mutex_unlock(&fs->icache_lock);
}
