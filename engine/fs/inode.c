/*
 * inode.c - inodes: their encoding, the in-memory cache, numbers, and orphans.
 *
 * Owns: struct rd_inode lifetimes (see fs_priv.h), the inode-number allocator, and the
 * deletion of unlinked inodes once nothing references them.
 *
 * Must never: hand out an inode number twice (numbers are persisted in batches ahead of
 * use), or delete an inode that is still referenced.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "refdio/errors.h"
#include "fs_priv.h"

#define INO_BATCH	1024	/* numbers persisted ahead of use */

#ifndef NDEBUG
_Thread_local unsigned rd_inode_locks_held;	/* see rd_inode_lock (fs_priv.h) */
#endif

int64_t rd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rd_inode_pack(const struct rd_inode_mem *m, struct rd_inode_v *v)
{
	memset(v, 0, sizeof(*v));
	v->mode = rd_le32_of(m->mode);
	v->uid = rd_le32_of(m->uid);
	v->gid = rd_le32_of(m->gid);
	v->nlink = rd_le32_of(m->nlink);
	v->size = rd_le64_of(m->size);
	v->sectors = rd_le64_of(m->sectors);
	v->atime_ns = rd_le64_of((uint64_t)m->atime);
	v->mtime_ns = rd_le64_of((uint64_t)m->mtime);
	v->ctime_ns = rd_le64_of((uint64_t)m->ctime);
	v->btime_ns = rd_le64_of((uint64_t)m->btime);
	v->rdev = rd_le64_of(m->rdev);
	v->parent = rd_le64_of(m->parent);
	v->generation = rd_le32_of(m->generation);
	v->flags = rd_le32_of(m->flags);
}

void rd_inode_unpack(const struct rd_inode_v *v, struct rd_inode_mem *m)
{
	m->mode = rd_le32_get(v->mode);
	m->uid = rd_le32_get(v->uid);
	m->gid = rd_le32_get(v->gid);
	m->nlink = rd_le32_get(v->nlink);
	m->size = rd_le64_get(v->size);
	m->sectors = rd_le64_get(v->sectors);
	m->atime = (int64_t)rd_le64_get(v->atime_ns);
	m->mtime = (int64_t)rd_le64_get(v->mtime_ns);
	m->ctime = (int64_t)rd_le64_get(v->ctime_ns);
	m->btime = (int64_t)rd_le64_get(v->btime_ns);
	m->rdev = rd_le64_get(v->rdev);
	m->parent = rd_le64_get(v->parent);
	m->generation = rd_le32_get(v->generation);
	m->flags = rd_le32_get(v->flags);
}

static struct timespec ns_to_ts(int64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };

	if (ts.tv_nsec < 0) {	/* floor division for times before the epoch */
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

void rd_inode_to_stat(const struct rd_fs *fs, const struct rd_inode *ip, struct rd_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->ino = ip->ino;
	st->generation = ip->i.generation;
	st->mode = ip->i.mode;
	st->nlink = ip->i.nlink;
	st->uid = ip->i.uid;
	st->gid = ip->i.gid;
	st->rdev = ip->i.rdev;
	st->size = ip->i.size;
	st->blocks = ip->i.sectors;
	st->blksize = fs->s->geo.block_size;
	st->atime = ns_to_ts(ip->i.atime);
	st->mtime = ns_to_ts(ip->i.mtime);
	st->ctime = ns_to_ts(ip->i.ctime);
	st->btime = ns_to_ts(ip->i.btime);
}

void rd_inode_init(struct rd_inode_mem *m, uint32_t mode, const struct rd_fs_cred *cr,
		   uint64_t rdev)
{
	int64_t now = rd_now_ns();

	memset(m, 0, sizeof(*m));
	m->mode = mode;
	m->uid = cr ? cr->uid : 0;
	m->gid = cr ? cr->gid : 0;
	m->nlink = S_ISDIR(mode) ? 2 : 1;
	m->rdev = rdev;
	m->atime = m->mtime = m->ctime = m->btime = now;
	m->generation = randombytes_random();
}

/* ---- the cache ---------------------------------------------------------------------- */

int rd_icache_init(struct rd_fs *fs)
{
	fs->ihash_size = 4096;
	fs->ihash = calloc(fs->ihash_size, sizeof(*fs->ihash));
	if (!fs->ihash)
		return -ENOMEM;
	pthread_mutex_init(&fs->icache_lock, NULL);
	return 0;
}

static void inode_free(struct rd_inode *ip)
{
	if (ip->data)
		rd_data_inode_free(ip->data);
	pthread_mutex_destroy(&ip->lock);
	free(ip);
}

void rd_icache_exit(struct rd_fs *fs)
{
	for (size_t i = 0; i < fs->ihash_size; i++) {
		struct rd_inode *ip = fs->ihash[i], *next;

		for (; ip; ip = next) {
			next = ip->hnext;
			inode_free(ip);
		}
	}
	free(fs->ihash);
	fs->ihash = NULL;
	pthread_mutex_destroy(&fs->icache_lock);
}

static size_t ihash_of(const struct rd_fs *fs, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 32) & (fs->ihash_size - 1);
}

/* icache_lock held. */
static struct rd_inode *icache_find(struct rd_fs *fs, uint64_t ino)
{
	struct rd_inode *ip = fs->ihash[ihash_of(fs, ino)];

	while (ip && ip->ino != ino)
		ip = ip->hnext;
	return ip;
}

/* icache_lock held. */
static void icache_unhash(struct rd_fs *fs, struct rd_inode *ip)
{
	struct rd_inode **pp = &fs->ihash[ihash_of(fs, ip->ino)];

	while (*pp != ip)
		pp = &(*pp)->hnext;
	*pp = ip->hnext;
	fs->icount--;
	fs->icache_unhashes++;
}

/* icache_lock held. Grows the table when it gets crowded (allocation failure: keep the
 * old table, chains just get longer). */
static void icache_hash(struct rd_fs *fs, struct rd_inode *ip)
{
	size_t h;

	if (fs->icount >= fs->ihash_size * 2) {
		size_t nsize = fs->ihash_size * 4;
		struct rd_inode **n = calloc(nsize, sizeof(*n));

		if (n) {
			struct rd_inode **old = fs->ihash;
			size_t osize = fs->ihash_size;

			fs->ihash = n;
			fs->ihash_size = nsize;
			for (size_t i = 0; i < osize; i++) {
				struct rd_inode *p = old[i], *next;

				for (; p; p = next) {
					next = p->hnext;
					h = ihash_of(fs, p->ino);
					p->hnext = n[h];
					n[h] = p;
				}
			}
			free(old);
		}
	}
	h = ihash_of(fs, ip->ino);
	ip->hnext = fs->ihash[h];
	fs->ihash[h] = ip;
	fs->icount++;
}

static struct rd_inode *inode_alloc(uint64_t ino, const struct rd_inode_mem *m)
{
	struct rd_inode *ip = calloc(1, sizeof(*ip));

	if (!ip)
		return NULL;
	ip->ino = ino;
	ip->ftype = m->mode & S_IFMT;
	ip->i = *m;
	ip->has_xattrs = -1;
	pthread_mutex_init(&ip->lock, NULL);
	return ip;
}

static int inode_read(struct rd_fs *fs, uint64_t ino, struct rd_inode_mem *m)
{
	struct rd_bkey *k;
	int ret;

	ret = rd_btree_lookup(fs->s, RD_BTREE_INODES, RD_POS(ino, 0), &k);
	if (ret)
		return ret == -ENOENT ? -ENOENT : rd_errno(ret);
	if (k->type != RD_KEY_INODE || k->val_len != sizeof(struct rd_inode_v)) {
		free(k);
		return -EIO;
	}
	rd_inode_unpack((const struct rd_inode_v *)k->val, m);
	free(k);
	return 0;
}

int rd_inode_get(struct rd_fs *fs, uint64_t ino, struct rd_inode **out)
{
	struct rd_inode_mem m;
	struct rd_inode *ip, *raced;
	uint64_t unhashes;
	int ret;

	if (!ino)
		return -ENOENT;
again:
	pthread_mutex_lock(&fs->icache_lock);
	ip = icache_find(fs, ino);
	if (ip) {
		if (ip->dying) {
			pthread_mutex_unlock(&fs->icache_lock);
			return -ENOENT;
		}
		ip->refs++;
		pthread_mutex_unlock(&fs->icache_lock);
		goto found;
	}
	unhashes = fs->icache_unhashes;
	pthread_mutex_unlock(&fs->icache_lock);

	/* Read without the cache lock (it may hit the disk), then insert unless another
	 * thread won the race. */
	ret = inode_read(fs, ino, &m);
	if (ret)
		return ret;
	ip = inode_alloc(ino, &m);
	if (!ip)
		return -ENOMEM;
	/* Its last change may be in a journal entry not yet durable (it left the cache since):
	 * fsync must then flush up to now. */
	ip->last_seq = rd_store_journal_seq(fs->s);
	pthread_mutex_lock(&fs->icache_lock);
	raced = icache_find(fs, ino);
	/* Invariant: at most one in-memory copy, never older than the disk. If any inode
	 * left the cache since the read, a copy of this one may have been cached, changed
	 * (after our read) and evicted meanwhile: what we read may be stale. Read again. */
	if (!raced && fs->icache_unhashes != unhashes) {
		pthread_mutex_unlock(&fs->icache_lock);
		inode_free(ip);
		goto again;
	}
	if (raced && raced->dying) {
		pthread_mutex_unlock(&fs->icache_lock);
		inode_free(ip);
		return -ENOENT;
	}
	if (raced) {
		raced->refs++;
		pthread_mutex_unlock(&fs->icache_lock);
		inode_free(ip);
		ip = raced;
		goto found;
	}
	ip->refs = 1;
	icache_hash(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
found:
	assert(ip->ino == ino);
	rd_inode_lock(ip);
	ret = ip->dead ? -ENOENT : 0;
	rd_inode_unlock(ip);
	if (ret) {
		rd_inode_put(fs, ip);
		return ret;
	}
	*out = ip;
	return 0;
}

int rd_inode_get_file(struct rd_fs *fs, uint64_t ino, struct rd_inode **out)
{
	int ret = rd_inode_get(fs, ino, out);

	if (ret)
		return ret;
	if (!S_ISREG((*out)->ftype)) {	/* the file type never changes: no lock needed */
		ret = S_ISDIR((*out)->ftype) ? -EISDIR : -EINVAL;
		rd_inode_put(fs, *out);
		*out = NULL;
	}
	return ret;
}

void rd_inode_ref(struct rd_fs *fs, struct rd_inode *ip)
{
	pthread_mutex_lock(&fs->icache_lock);
	assert(ip->refs > 0);	/* the caller holds one */
	ip->refs++;
	pthread_mutex_unlock(&fs->icache_lock);
}

void rd_inode_put(struct rd_fs *fs, struct rd_inode *ip)
{
	bool last, delete;

	pthread_mutex_lock(&fs->icache_lock);
	assert(ip->refs > 0);
	last = --ip->refs == 0 && ip->nlookup == 0;
	/* nlink is stable here: it only changes under ip->lock by holders of a reference,
	 * and there are none left. */
	delete = last && ip->i.nlink == 0 && !ip->dead;
	if (delete)
		ip->dying = true;	/* stays hashed so a racing get sees -ENOENT */
	else if (last)
		icache_unhash(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
	if (!last)
		return;
	if (delete) {
		/* On failure the orphan marker stays and the next open retries. The deleter
		 * sits above this file (inode_delete.c): it needs the data and xattr code. */
		(void)fs->delete_inode(fs, ip);
		pthread_mutex_lock(&fs->icache_lock);
		icache_unhash(fs, ip);
		pthread_mutex_unlock(&fs->icache_lock);
	}
	inode_free(ip);
}

int rd_fs_iget(struct rd_fs *fs, uint64_t ino)
{
	struct rd_inode *ip;
	int ret = rd_inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	pthread_mutex_lock(&fs->icache_lock);
	ip->nlookup++;
	pthread_mutex_unlock(&fs->icache_lock);
	rd_inode_put(fs, ip);
	return 0;
}

void rd_fs_iput(struct rd_fs *fs, uint64_t ino, uint64_t n)
{
	struct rd_inode *ip;

	pthread_mutex_lock(&fs->icache_lock);
	ip = icache_find(fs, ino);
	if (!ip) {	/* the kernel forgets what it never looked up: ignore */
		pthread_mutex_unlock(&fs->icache_lock);
		return;
	}
	ip->nlookup = n > ip->nlookup ? 0 : ip->nlookup - n;
	ip->refs++;
	pthread_mutex_unlock(&fs->icache_lock);
	rd_inode_put(fs, ip);
}

int rd_inode_write_mem(struct rd_trans *t, uint64_t ino, const struct rd_inode_mem *m)
{
	struct rd_inode_v v;

	rd_inode_pack(m, &v);
	return rd_trans_put(t, RD_BTREE_INODES, RD_POS(ino, 0), RD_KEY_INODE, &v, sizeof(v));
}

int rd_inode_write(struct rd_trans *t, const struct rd_inode *ip)
{
	return rd_inode_write_mem(t, ip->ino, &ip->i);
}

/* ---- numbers ------------------------------------------------------------------------- */

int rd_inode_alloc_number(struct rd_fs *fs, struct rd_trans *t, uint64_t *ino)
{
	int ret = 0;

	pthread_mutex_lock(&fs->ino_lock);
	/* Invariant: every number below ino_limit may have been handed out before a crash;
	 * the persisted limit moves ahead in the same transaction as the first number that
	 * crosses it, so a number is never handed out twice. */
	if (fs->next_ino >= fs->ino_limit) {
		struct rd_inode_alloc_v v = { .next_ino = rd_le64_of(fs->next_ino + INO_BATCH) };

		ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(0, 0), RD_KEY_INODE_ALLOC, &v,
				   sizeof(v));
		if (!ret)
			fs->ino_limit = fs->next_ino + INO_BATCH;
	}
	if (!ret)
		*ino = fs->next_ino++;
	assert(ret || *ino < fs->ino_limit);	/* never above the persisted limit */
	pthread_mutex_unlock(&fs->ino_lock);
	return ret;
}

int rd_inode_instantiate(struct rd_fs *fs, uint64_t ino, const struct rd_inode_mem *m,
			 uint64_t seq, struct rd_inode **out)
{
	struct rd_inode *ip = inode_alloc(ino, m), *raced;

	if (!ip)
		return -ENOMEM;
	ip->last_seq = seq;
	ip->has_xattrs = 0;
	ip->refs = 1;
	pthread_mutex_lock(&fs->icache_lock);
	/* Lookups take no directory lock, so the new name may already have been found and
	 * the inode read from disk: then that copy (as committed, or newer) is the one. */
	raced = icache_find(fs, ino);
	if (raced) {
		raced->refs++;
		pthread_mutex_unlock(&fs->icache_lock);
		inode_free(ip);
		rd_inode_lock(raced);
		if (raced->last_seq < seq)
			raced->last_seq = seq;
		rd_inode_unlock(raced);
		*out = raced;
		return 0;
	}
	icache_hash(fs, ip);
	pthread_mutex_unlock(&fs->icache_lock);
	*out = ip;
	return 0;
}

/* ---- orphans ------------------------------------------------------------------------- */

int rd_inode_orphan_add(struct rd_trans *t, uint64_t ino)
{
	return rd_trans_put(t, RD_BTREE_INODES, RD_POS(0, ino), RD_KEY_ORPHAN, NULL, 0);
}

int rd_inode_orphan_del(struct rd_trans *t, uint64_t ino)
{
	return rd_trans_del(t, RD_BTREE_INODES, RD_POS(0, ino));
}
