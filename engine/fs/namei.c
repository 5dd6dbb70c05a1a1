/*
 * namei.c - the namespace operations but rename and readdir: lookup, mknod, mkdir,
 * symlink, readlink, link, unlink, rmdir.
 *
 * Owns: the link-count and timestamp rules of these calls, and the shape every change
 * takes: lock the inodes involved (increasing number), check under the locks, build the
 * new attributes in copies, commit dirents + inodes (+ orphan marker) as one transaction,
 * and only then copy the attributes into the in-memory inodes and set their last_seq.
 *
 * Must never: change an in-memory inode before its transaction committed, drop the last
 * reference to an inode while holding an inode lock (that may delete it, which takes
 * locks of its own), or give a directory a second name.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dirents.h"
#include "refdio/errors.h"
#include "fs_priv.h"
#include "namei.h"

#define SYMLINK_MAX	4095		/* bytes of a symlink target (PATH_MAX - 1) */

/* ---- shared helpers (namei.h) -------------------------------------------------------- */

int rd_name_check(const char *name, size_t *len)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, RD_NAME_MAX + 1);
	if (!n || memchr(name, '/', n))
		return -EINVAL;
	if (n > RD_NAME_MAX)
		return -ENAMETOOLONG;
	*len = n;
	return 0;
}

int rd_name_dots(const char *name, size_t len)
{
	if (len == 1 && name[0] == '.')
		return 1;
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return 2;
	return 0;
}

void rd_lockset_lock(struct rd_lockset *ls, struct rd_inode *const *ips, unsigned n)
{
	assert(n <= RD_LOCK_MAX);
	ls->n = 0;
	for (unsigned i = 0; i < n; i++) {
		struct rd_inode *ip = ips[i];
		unsigned j;

		if (!ip)
			continue;
		for (j = 0; j < ls->n && ls->ip[j] != ip; j++)
			;
		if (j < ls->n)	/* already in the set */
			continue;
		/* insertion sort by inode number */
		for (j = ls->n; j > 0 && ls->ip[j - 1]->ino > ip->ino; j--)
			ls->ip[j] = ls->ip[j - 1];
		ls->ip[j] = ip;
		ls->n++;
	}
	for (unsigned i = 0; i < ls->n; i++) {
		assert(!i || ls->ip[i - 1]->ino < ls->ip[i]->ino);	/* the locking order */
		pthread_mutex_lock(&ls->ip[i]->lock);
	}
}

void rd_lockset_unlock(struct rd_lockset *ls)
{
	while (ls->n)
		pthread_mutex_unlock(&ls->ip[--ls->n]->lock);
}

/* ---- local helpers ------------------------------------------------------------------- */

/* A referenced directory inode: -ENOTDIR if ino is something else. */
static int dir_get(struct rd_fs *fs, uint64_t ino, struct rd_inode **out)
{
	struct rd_inode *ip;
	int ret = rd_inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	if (!S_ISDIR(ip->ftype)) {
		rd_inode_put(fs, ip);
		return -ENOTDIR;
	}
	*out = ip;
	return 0;
}

static int stat_ino(struct rd_fs *fs, uint64_t ino, struct rd_stat *st)
{
	struct rd_inode *ip;
	int ret = rd_inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	rd_inode_lock(ip);
	rd_inode_to_stat(fs, ip, st);
	rd_inode_unlock(ip);
	rd_inode_put(fs, ip);
	return 0;
}

static void trans_drop(struct rd_trans *t)
{
	if (t)
		rd_trans_free(t);
}

/*
 * Queues the new attributes of ip (m) and of the directory dp (dm) into t, commits t (it is
 * consumed whatever happens) and only then publishes them: the in-memory inodes mirror
 * what is committed, and last_seq says which journal entry fsync must wait for. Both
 * inodes are locked by the caller.
 */
static int commit_pair(struct rd_trans *t, struct rd_inode *ip, const struct rd_inode_mem *m,
		       struct rd_inode *dp, const struct rd_inode_mem *dm)
{
	uint64_t seq;
	int ret = rd_inode_write_mem(t, ip->ino, m);

	assert(ip != dp && (m->mode & S_IFMT) == ip->ftype);

	if (!ret)
		ret = rd_inode_write_mem(t, dp->ino, dm);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, &seq);
	if (ret)
		return ret;
	ip->i = *m;
	ip->last_seq = seq;
	dp->i = *dm;
	dp->last_seq = seq;
	return 0;
}

/* ---- lookup -------------------------------------------------------------------------- */

int rd_fs_lookup(struct rd_fs *fs, uint64_t dir, const char *name, struct rd_stat *st)
{
	struct rd_inode *dp;
	struct rd_dirent d;
	uint64_t ino = dir;
	size_t len;
	int ret;

	ret = rd_name_check(name, &len);
	if (ret)
		return ret;
	ret = dir_get(fs, dir, &dp);
	if (ret)
		return rd_errno(ret);
	switch (rd_name_dots(name, len)) {
	case 1:
		break;
	case 2:
		rd_inode_lock(dp);
		ino = dp->i.parent ? dp->i.parent : dir;
		rd_inode_unlock(dp);
		break;
	default:
		/* No lock: see dirents.h for why a racing walk is still right. */
		ret = rd_dirent_lookup(fs, dir, name, len, &d);
		ino = d.inum;
		break;
	}
	rd_inode_put(fs, dp);
	if (!ret)
		ret = stat_ino(fs, ino, st);
	return rd_errno(ret);
}

/* ---- creation ------------------------------------------------------------------------ */

static int symlink_put(struct rd_fs *fs, struct rd_trans *t, uint64_t ino, const char *target,
		       size_t len)
{
	size_t max = rd_btree_max_val(fs->s);
	int ret = 0;

	for (size_t off = 0, i = 0; off < len && !ret; i++) {
		size_t n = len - off < max ? len - off : max;

		ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(ino, 1 + i), RD_KEY_SYMLINK,
				   target + off, n);
		off += n;
	}
	return ret;
}

/* Creates name in dir: a new inode of mode (with rdev, or a symlink target). */
static int create(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		  uint64_t rdev, const char *target, size_t tlen, const struct rd_fs_cred *cr,
		  struct rd_stat *st)
{
	struct rd_inode *dp, *ip = NULL;
	struct rd_inode_mem m, dm;
	struct rd_trans *t = NULL;
	uint64_t slot = 0, ino = 0, seq = 0;
	size_t len;
	int ret;

	ret = rd_name_check(name, &len);
	if (ret)
		return ret;
	if (rd_name_dots(name, len))
		return -EEXIST;
	ret = dir_get(fs, dir, &dp);
	if (ret)
		return rd_errno(ret);
	rd_inode_lock(dp);
	if (!dp->i.nlink) {		/* removed while we held a reference */
		ret = -ENOENT;
		goto out;
	}
	if (S_ISDIR(mode) && dp->i.nlink >= RD_NLINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	ret = rd_dirent_find_slot(fs, dir, name, len, &slot);
	if (ret)
		goto out;
	t = rd_trans_new(fs->s);
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	ret = rd_inode_alloc_number(fs, t, &ino);
	if (ret)
		goto out;
	rd_inode_init(&m, mode, cr, rdev);
	if (S_ISDIR(mode))
		m.parent = dir;
	if (target) {
		m.size = tlen;
		ret = symlink_put(fs, t, ino, target, tlen);
	}
	if (!ret)
		ret = rd_inode_write_mem(t, ino, &m);
	if (!ret)
		ret = rd_dirent_put(t, dir, slot, name, len, ino, rd_mode_dtype(mode));
	dm = dp->i;
	dm.mtime = dm.ctime = m.ctime;
	if (S_ISDIR(mode))
		dm.nlink++;	/* the new directory's ".." */
	if (!ret)
		ret = rd_inode_write_mem(t, dir, &dm);
	if (ret)
		goto out;
	ret = rd_trans_commit(t, &seq);
	t = NULL;
	if (ret)
		goto out;
	dp->i = dm;
	dp->last_seq = seq;
	/* On failure the inode is read back from disk when next wanted. */
	if (rd_inode_instantiate(fs, ino, &m, seq, &ip))
		ip = NULL;
out:
	rd_inode_unlock(dp);
	trans_drop(t);
	if (!ret && st) {
		if (ip) {
			rd_inode_lock(ip);
			rd_inode_to_stat(fs, ip, st);
			rd_inode_unlock(ip);
		} else {
			struct rd_inode tmp = { .ino = ino, .i = m };

			rd_inode_to_stat(fs, &tmp, st);
		}
	}
	if (ip)
		rd_inode_put(fs, ip);
	rd_inode_put(fs, dp);
	return rd_errno(ret);
}

int rd_fs_mknod(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode, uint64_t rdev,
		const struct rd_fs_cred *cr, struct rd_stat *st)
{
	uint32_t type = mode & S_IFMT;

	switch (type) {
	case 0:			/* as mknod(2): no type means a regular file */
		type = S_IFREG;
		/* fall through */
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return create(fs, dir, name, type | (mode & 07777), rdev, NULL, 0, cr, st);
}

int rd_fs_mkdir(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		const struct rd_fs_cred *cr, struct rd_stat *st)
{
	return create(fs, dir, name, S_IFDIR | (mode & 07777), 0, NULL, 0, cr, st);
}

int rd_fs_symlink(struct rd_fs *fs, uint64_t dir, const char *name, const char *target,
		  const struct rd_fs_cred *cr, struct rd_stat *st)
{
	size_t tlen;

	if (!target)
		return -EINVAL;
	tlen = strnlen(target, SYMLINK_MAX + 1);
	if (!tlen)
		return -ENOENT;		/* as symlink(2) with an empty target */
	if (tlen > SYMLINK_MAX)
		return -ENAMETOOLONG;
	return create(fs, dir, name, S_IFLNK | 0777, 0, target, tlen, cr, st);
}

/* The target never changes after creation and the reference keeps the inode, so no lock
 * is held while reading it. */
ssize_t rd_fs_readlink(struct rd_fs *fs, uint64_t ino, char *buf, size_t len)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_inode *ip;
	uint64_t size, done = 0, next = 1;
	int ret;

	if (len && !buf)
		return -EINVAL;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return rd_errno(ret);
	rd_inode_lock(ip);
	size = ip->i.size;
	rd_inode_unlock(ip);
	if (!S_ISLNK(ip->ftype)) {
		rd_inode_put(fs, ip);
		return -EINVAL;
	}
	rd_btree_iter_init(&it, fs->s, RD_BTREE_INODES, RD_POS(ino, 1), RD_POS(ino, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		/* chunks are contiguous, at offsets 1, 2, ... */
		if (k->type != RD_KEY_SYMLINK || k->pos.offset != next++ || !k->val_len ||
		    done + k->val_len > size) {
			ret = -EIO;
			break;
		}
		if (done < len)
			memcpy(buf + done, k->val,
			       len - done < k->val_len ? len - done : k->val_len);
		done += k->val_len;
	}
	rd_btree_iter_exit(&it);
	rd_inode_put(fs, ip);
	if (ret != -ENOENT)
		return rd_errno(ret);
	if (done != size || !size)
		return -EIO;
	if (done < len)
		buf[done] = '\0';
	return (ssize_t)(done < len ? done : len);
}

/* ---- link ---------------------------------------------------------------------------- */

int rd_fs_link(struct rd_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
	       struct rd_stat *st)
{
	struct rd_inode *ip, *dp = NULL;
	struct rd_inode_mem m, dm;
	struct rd_lockset ls;
	struct rd_trans *t = NULL;
	uint64_t slot;
	size_t len;
	int ret;

	ret = rd_name_check(newname, &len);
	if (ret)
		return ret;
	if (rd_name_dots(newname, len))
		return -EEXIST;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return rd_errno(ret);
	if (S_ISDIR(ip->ftype)) {
		rd_inode_put(fs, ip);
		return -EPERM;
	}
	ret = dir_get(fs, newdir, &dp);
	if (ret) {
		rd_inode_put(fs, ip);
		return rd_errno(ret);
	}
	rd_lockset_lock(&ls, (struct rd_inode *[]){ ip, dp }, 2);
	if (!ip->i.nlink || !dp->i.nlink) {	/* unlinked file or removed directory */
		ret = -ENOENT;
		goto out;
	}
	if (ip->i.nlink >= RD_NLINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	ret = rd_dirent_find_slot(fs, newdir, newname, len, &slot);
	if (ret)
		goto out;
	t = rd_trans_new(fs->s);
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	m = ip->i;
	dm = dp->i;
	m.nlink++;
	m.ctime = dm.mtime = dm.ctime = rd_now_ns();
	ret = rd_dirent_put(t, newdir, slot, newname, len, ino, rd_mode_dtype(m.mode));
	if (ret)
		goto out;
	ret = commit_pair(t, ip, &m, dp, &dm);
	t = NULL;
	if (!ret && st)
		rd_inode_to_stat(fs, ip, st);
out:
	rd_lockset_unlock(&ls);
	trans_drop(t);
	rd_inode_put(fs, dp);
	rd_inode_put(fs, ip);
	return rd_errno(ret);
}

/* ---- unlink, rmdir ------------------------------------------------------------------- */

/*
 * Finds name in dir and locks dir and the inode it names, in inode-number order: the
 * entry is looked up without locks, then again under them; if it changed meanwhile,
 * start over. On success *ipp is referenced and both are locked (ls).
 */
static int lock_entry(struct rd_fs *fs, struct rd_inode *dp, const char *name, size_t len,
		      struct rd_dirent *d, struct rd_inode **ipp, struct rd_lockset *ls)
{
	for (unsigned tries = 0; tries < RD_RETRY_MAX; tries++) {
		struct rd_dirent d2;
		struct rd_inode *ip;
		int ret;

		ret = rd_dirent_lookup(fs, dp->ino, name, len, d);
		if (ret)
			return ret;
		ret = rd_inode_get(fs, d->inum, &ip);
		if (ret == -ENOENT)	/* deleted since: look again */
			continue;
		if (ret)
			return ret;
		rd_lockset_lock(ls, (struct rd_inode *[]){ dp, ip }, 2);
		ret = rd_dirent_lookup(fs, dp->ino, name, len, &d2);
		if (!ret && d2.inum == d->inum && d2.slot == d->slot) {
			*ipp = ip;
			return 0;
		}
		rd_lockset_unlock(ls);
		rd_inode_put(fs, ip);
		if (ret && ret != -ENOENT)
			return ret;
	}
	return -EIO;
}

static int remove_entry(struct rd_fs *fs, uint64_t dir, const char *name, bool isdir)
{
	struct rd_inode *dp, *ip = NULL;
	struct rd_inode_mem m, dm;
	struct rd_lockset ls = { .n = 0 };
	struct rd_trans *t = NULL;
	struct rd_dirent d;
	size_t len;
	int ret;

	ret = rd_name_check(name, &len);
	if (ret)
		return ret;
	switch (rd_name_dots(name, len)) {
	case 1:
		return isdir ? -EINVAL : -EISDIR;
	case 2:
		return isdir ? -ENOTEMPTY : -EISDIR;
	}
	ret = dir_get(fs, dir, &dp);
	if (ret)
		return rd_errno(ret);
	ret = lock_entry(fs, dp, name, len, &d, &ip, &ls);
	if (ret)
		goto out;
	if (isdir && !S_ISDIR(ip->ftype)) {
		ret = -ENOTDIR;
		goto out;
	}
	if (!isdir && S_ISDIR(ip->ftype)) {
		ret = -EISDIR;
		goto out;
	}
	if (isdir) {
		ret = rd_dir_is_empty(fs, ip->ino);
		if (ret <= 0) {
			ret = ret ? ret : -ENOTEMPTY;
			goto out;
		}
	}
	if (!ip->i.nlink || !dp->i.nlink) {	/* named, so linked: the image is damaged */
		ret = -EIO;
		goto out;
	}
	t = rd_trans_new(fs->s);
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	m = ip->i;
	dm = dp->i;
	m.ctime = dm.mtime = dm.ctime = rd_now_ns();
	if (isdir) {
		m.nlink = 0;	/* its name and its "." go together */
		dm.nlink--;	/* its ".." */
	} else {
		m.nlink--;
	}
	ret = rd_dirent_remove(fs, t, dir, d.slot, true);
	if (!ret && !m.nlink) {
		/* Deleted when the last reference goes (rd_inode_put), or at the next open
		 * after a crash: the marker is what finds it then. */
		m.flags |= RD_INODE_ORPHAN;
		ret = rd_inode_orphan_add(t, ip->ino);
	}
	if (ret)
		goto out;
	ret = commit_pair(t, ip, &m, dp, &dm);
	t = NULL;
out:
	rd_lockset_unlock(&ls);
	trans_drop(t);
	if (ip)
		rd_inode_put(fs, ip);	/* may delete it: no lock held */
	rd_inode_put(fs, dp);
	return rd_errno(ret);
}

int rd_fs_unlink(struct rd_fs *fs, uint64_t dir, const char *name)
{
	return remove_entry(fs, dir, name, false);
}

int rd_fs_rmdir(struct rd_fs *fs, uint64_t dir, const char *name)
{
	return remove_entry(fs, dir, name, true);
}
