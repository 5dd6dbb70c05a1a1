/*
 * attr.c - rd_fs_getattr and rd_fs_setattr.
 *
 * Owns: which attributes a setattr may change and what else changes with them: ctime
 * moves with every change (unless set explicitly), a size change also moves mtime (unless
 * set explicitly). A size change goes through the data path (rd_data_truncate: extents,
 * then i_size) before the other attributes are committed: two transactions, each
 * consistent on its own.
 *
 * Must never: change the file type bits, or clear anything the caller did not ask for
 * (a mode change leaves set-id bits as given: permission policy is the kernel's).
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "refdio/errors.h"
#include "fs_priv.h"

int rd_fs_getattr(struct rd_fs *fs, uint64_t ino, struct rd_stat *st)
{
	struct rd_inode *ip;
	int ret = rd_inode_get(fs, ino, &ip);

	if (ret)
		return rd_errno(ret);
	rd_inode_lock(ip);
	rd_inode_to_stat(fs, ip, st);
	rd_inode_unlock(ip);
	rd_inode_put(fs, ip);
	return 0;
}

#define NS	1000000000ll

/* A time as ns since the epoch, clamped to what an inode can hold (about +-292 years). */
static int64_t ts_ns(struct timespec ts)
{
	if (ts.tv_sec >= INT64_MAX / NS)
		return INT64_MAX;
	if (ts.tv_sec <= INT64_MIN / NS)
		return INT64_MIN;
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

#define RD_SET_ALL	(RD_SET_MODE | RD_SET_UID | RD_SET_GID | RD_SET_SIZE | RD_SET_ATIME | \
			 RD_SET_MTIME | RD_SET_ATIME_NOW | RD_SET_MTIME_NOW | RD_SET_CTIME)

int rd_fs_setattr(struct rd_fs *fs, uint64_t ino, const struct rd_setattr *sa,
		  struct rd_stat *st)
{
	struct rd_inode *ip;
	struct rd_inode_mem m;
	struct rd_trans *t;
	uint64_t seq;
	int64_t now = rd_now_ns();
	int ret;

	if (sa->valid & ~RD_SET_ALL)
		return -EINVAL;
	for (int i = 0; i < 3; i++) {
		const struct timespec *ts = i == 0 ? &sa->atime : i == 1 ? &sa->mtime : &sa->ctime;
		unsigned bit = i == 0 ? RD_SET_ATIME : i == 1 ? RD_SET_MTIME : RD_SET_CTIME;

		if ((sa->valid & bit) && (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000))
			return -EINVAL;
	}
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return rd_errno(ret);
	if (sa->valid & RD_SET_SIZE) {
		if (S_ISDIR(ip->ftype)) {
			ret = -EISDIR;
			goto out_put;
		}
		if (!S_ISREG(ip->ftype)) {
			ret = -EINVAL;
			goto out_put;
		}
		if (sa->size > (uint64_t)INT64_MAX) {
			ret = -EFBIG;
			goto out_put;
		}
		/* Extents and i_size, under the data path's own locking. */
		ret = rd_data_truncate(fs, ip, sa->size);
		if (ret)
			goto out_put;
	}

	rd_inode_lock(ip);
	m = ip->i;
	if (sa->valid & RD_SET_MODE)
		m.mode = (m.mode & S_IFMT) | (sa->mode & 07777);
	if (sa->valid & RD_SET_UID)
		m.uid = sa->uid;
	if (sa->valid & RD_SET_GID)
		m.gid = sa->gid;
	if (sa->valid & RD_SET_ATIME_NOW)
		m.atime = now;
	else if (sa->valid & RD_SET_ATIME)
		m.atime = ts_ns(sa->atime);
	if (sa->valid & RD_SET_MTIME_NOW)
		m.mtime = now;
	else if (sa->valid & RD_SET_MTIME)
		m.mtime = ts_ns(sa->mtime);
	else if (sa->valid & RD_SET_SIZE)
		m.mtime = now;
	m.ctime = sa->valid & RD_SET_CTIME ? ts_ns(sa->ctime) : now;
	assert((m.mode & S_IFMT) == ip->ftype);	/* the type bits never change */
	if (!sa->valid)
		goto out_stat;	/* nothing to change: just the attributes */

	t = rd_trans_new(fs->s);
	if (!t) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	ret = rd_inode_write_mem(t, ino, &m);
	if (ret) {
		rd_trans_free(t);
		goto out_unlock;
	}
	ret = rd_trans_commit(t, &seq);
	if (ret)
		goto out_unlock;
	ip->i = m;
	ip->last_seq = seq;
out_stat:
	if (st)
		rd_inode_to_stat(fs, ip, st);
out_unlock:
	rd_inode_unlock(ip);
out_put:
	rd_inode_put(fs, ip);
	return rd_errno(ret);
}
