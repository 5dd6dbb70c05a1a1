/*
 * rename.c - rd_fs_rename: moving and exchanging names, in one transaction.
 *
 * Owns: the POSIX rules of rename (a directory replaces only an empty directory, a
 * non-directory only a non-directory; same inode: nothing to do; no directory moves into
 * its own subtree), RD_RENAME_NOREPLACE and RD_RENAME_EXCHANGE, the parent pointers and
 * link counts of moved directories.
 *
 * Locking: a cross-directory rename holds fs->rename_lock for its whole length. Parent
 * pointers of existing directories change only here, under that lock, so the walk up from
 * the target directory (done before the inode locks, as the lock order demands) stays
 * true until the commit. Then up to four inodes are locked in increasing number and both
 * names are looked up again; if either changed, everything is dropped and retried.
 *
 * Must never: create a cycle in the tree, lose a name on failure (all or nothing), or
 * trim whiteouts in a directory the same transaction inserts into.
 */
#include <assert.h>
#include <errno.h>
#include <sys/stat.h>

#include "dirents.h"
#include "refdio/errors.h"
#include "fs_priv.h"
#include "namei.h"

#define DEPTH_MAX	(1u << 20)	/* deeper than this is taken for a loop: -ELOOP */

/* -EINVAL if ino is dir or one of its ancestors. Caller holds fs->rename_lock. */
static int check_not_ancestor(struct rd_fs *fs, uint64_t dir, uint64_t ino)
{
	uint64_t cur = dir;

	for (unsigned depth = 0; depth < DEPTH_MAX; depth++) {
		struct rd_inode *ip;
		uint64_t parent;
		int ret;

		if (cur == ino)
			return -EINVAL;
		if (cur == RD_ROOT_INO)
			return 0;
		ret = rd_inode_get(fs, cur, &ip);
		if (ret)
			return ret == -ENOENT ? -EIO : ret;
		rd_inode_lock(ip);
		parent = ip->i.parent;
		rd_inode_unlock(ip);
		rd_inode_put(fs, ip);
		if (!parent || parent == cur)	/* only the root is its own parent */
			return -EIO;
		cur = parent;
	}
	return -ELOOP;
}

struct rename_ctx {
	struct rd_fs	*fs;
	uint64_t	odir, ndir;
	const char	*oname, *nname;
	size_t		olen, nlen;
	unsigned	flags;
	bool		cross;
	struct rd_inode	*odp, *ndp;	/* the two directories (the same one if !cross) */
	struct rd_inode	*sip, *tip;	/* source, and target if the new name exists */
	struct rd_dirent src, tgt;
	struct rd_lockset ls;
};

/*
 * Looks both names up, takes references on what they name, checks the subtree rule, and
 * locks everything. Returns 1 if there is nothing to do (both names are the same inode),
 * 0 with everything locked, or an error with nothing locked or referenced.
 */
static int rename_lock_all(struct rename_ctx *c)
{
	struct rd_fs *fs = c->fs;

	for (unsigned tries = 0; tries < RD_RETRY_MAX; tries++) {
		struct rd_dirent s2, t2;
		bool have_tgt;
		int ret;

		ret = rd_dirent_lookup(fs, c->odir, c->oname, c->olen, &c->src);
		if (ret)
			return ret;
		ret = rd_dirent_lookup(fs, c->ndir, c->nname, c->nlen, &c->tgt);
		if (ret && ret != -ENOENT)
			return ret;
		have_tgt = !ret;
		if ((c->flags & RD_RENAME_EXCHANGE) && !have_tgt)
			return -ENOENT;
		if ((c->flags & RD_RENAME_NOREPLACE) && have_tgt)
			return -EEXIST;
		if (have_tgt && c->tgt.inum == c->src.inum)
			return 1;	/* two names of one inode (or one name): POSIX says no-op */

		ret = rd_inode_get(fs, c->src.inum, &c->sip);
		if (ret == -ENOENT)
			continue;
		if (ret)
			return ret;
		c->tip = NULL;
		if (have_tgt) {
			ret = rd_inode_get(fs, c->tgt.inum, &c->tip);
			if (ret) {
				rd_inode_put(fs, c->sip);
				c->sip = NULL;
				if (ret == -ENOENT)
					continue;
				return ret;
			}
		}
		if (c->cross && S_ISDIR(c->sip->ftype))
			ret = check_not_ancestor(fs, c->ndir, c->sip->ino);
		if (!ret && c->cross && c->tip && (c->flags & RD_RENAME_EXCHANGE) &&
		    S_ISDIR(c->tip->ftype))
			ret = check_not_ancestor(fs, c->odir, c->tip->ino);
		if (!ret) {
			rd_lockset_lock(&c->ls, (struct rd_inode *[]){ c->odp, c->ndp, c->sip,
								      c->tip }, 4);
			/* Still the same names for the same inodes? */
			ret = rd_dirent_lookup(fs, c->odir, c->oname, c->olen, &s2);
			if (!ret && (s2.inum != c->src.inum || s2.slot != c->src.slot))
				ret = -EAGAIN;
			if (!ret) {
				int r2 = rd_dirent_lookup(fs, c->ndir, c->nname, c->nlen, &t2);

				if (r2 && r2 != -ENOENT)
					ret = r2;
				else if (!r2 != have_tgt)
					ret = -EAGAIN;
				else if (have_tgt && (t2.inum != c->tgt.inum ||
						      t2.slot != c->tgt.slot))
					ret = -EAGAIN;
			}
			if (!ret)
				return 0;
			rd_lockset_unlock(&c->ls);
		}
		rd_inode_put(fs, c->sip);
		c->sip = NULL;
		if (c->tip)
			rd_inode_put(fs, c->tip);
		c->tip = NULL;
		if (ret != -EAGAIN && ret != -ENOENT)
			return ret;
	}
	return -EIO;
}

/* The type rules, checked under the locks. */
static int rename_check(struct rename_ctx *c)
{
	bool sdir = S_ISDIR(c->sip->ftype);
	int ret;

	if (!c->odp->i.nlink || !c->ndp->i.nlink)	/* a directory was removed */
		return -ENOENT;
	if (!c->sip->i.nlink || (c->tip && !c->tip->i.nlink))
		return -EIO;	/* named, so linked: the image is damaged */
	if (c->flags & RD_RENAME_EXCHANGE)
		return 0;
	if (c->tip) {
		bool tdir = S_ISDIR(c->tip->ftype);

		if (sdir && !tdir)
			return -ENOTDIR;
		if (!sdir && tdir)
			return -EISDIR;
		if (tdir) {
			ret = rd_dir_is_empty(c->fs, c->tip->ino);
			if (ret <= 0)
				return ret ? ret : -ENOTEMPTY;
		}
	} else if (sdir && c->cross && c->ndp->i.nlink >= RD_NLINK_MAX) {
		return -EMLINK;
	}
	return 0;
}

/* Builds and commits the transaction; updates the in-memory inodes once it committed. */
static int rename_commit(struct rename_ctx *c)
{
	struct rd_fs *fs = c->fs;
	struct rd_inode_mem ms, mt, mo, mn, *pn;
	bool sdir = S_ISDIR(c->sip->ftype);
	bool tdir = c->tip && S_ISDIR(c->tip->ftype);
	struct rd_trans *t;
	uint64_t seq, slot;
	int64_t now = rd_now_ns();
	int ret = 0;

	/* rename_lock_all returned 1 for two names of one inode; cross iff two directories */
	assert(c->sip != c->tip && c->cross == (c->odp != c->ndp));
	t = rd_trans_new(fs->s);
	if (!t)
		return -ENOMEM;
	ms = c->sip->i;
	mo = c->odp->i;
	mn = c->ndp->i;
	pn = c->cross ? &mn : &mo;	/* the new directory's attributes */
	mt = c->tip ? c->tip->i : ms;	/* (unused without a target) */
	ms.ctime = mo.mtime = mo.ctime = now;
	pn->mtime = pn->ctime = now;

	if (c->flags & RD_RENAME_EXCHANGE) {
		mt.ctime = now;
		ret = rd_dirent_put(t, c->odir, c->src.slot, c->oname, c->olen, c->tgt.inum,
				    rd_mode_dtype(mt.mode));
		if (!ret)
			ret = rd_dirent_put(t, c->ndir, c->tgt.slot, c->nname, c->nlen,
					    c->src.inum, rd_mode_dtype(ms.mode));
		if (c->cross && sdir) {
			ms.parent = c->ndir;
			mo.nlink--;
			pn->nlink++;
		}
		if (c->cross && tdir) {
			mt.parent = c->odir;
			mo.nlink++;
			pn->nlink--;
		}
	} else {
		if (c->tip) {
			slot = c->tgt.slot;	/* the target's entry now names the source */
		} else {
			ret = rd_dirent_find_slot(fs, c->ndir, c->nname, c->nlen, &slot);
			if (ret == -EEXIST)	/* checked under the locks: cannot be */
				ret = -EIO;
		}
		if (!ret)
			ret = rd_dirent_put(t, c->ndir, slot, c->nname, c->nlen, c->src.inum,
					    rd_mode_dtype(ms.mode));
		/* Trim only when the insert went to another directory (see probe.h). */
		if (!ret)
			ret = rd_dirent_remove(fs, t, c->odir, c->src.slot, c->cross);
		if (c->cross && sdir) {
			ms.parent = c->ndir;
			mo.nlink--;
			pn->nlink++;
		}
		if (c->tip) {
			mt.ctime = now;
			if (tdir) {
				mt.nlink = 0;
				pn->nlink--;	/* the replaced directory's ".." */
			} else {
				mt.nlink--;
			}
			if (!mt.nlink) {
				mt.flags |= RD_INODE_ORPHAN;
				if (!ret)
					ret = rd_inode_orphan_add(t, c->tip->ino);
			}
		}
	}
	if (!ret)
		ret = rd_inode_write_mem(t, c->sip->ino, &ms);
	if (!ret && c->tip)
		ret = rd_inode_write_mem(t, c->tip->ino, &mt);
	if (!ret)
		ret = rd_inode_write_mem(t, c->odir, &mo);
	if (!ret && c->cross)
		ret = rd_inode_write_mem(t, c->ndir, &mn);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, &seq);
	if (ret)
		return ret;
	c->sip->i = ms;
	c->sip->last_seq = seq;
	if (c->tip) {
		c->tip->i = mt;
		c->tip->last_seq = seq;
	}
	c->odp->i = mo;
	c->odp->last_seq = seq;
	if (c->cross) {
		c->ndp->i = mn;
		c->ndp->last_seq = seq;
	}
	return 0;
}

int rd_fs_rename(struct rd_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		 const char *newname, unsigned flags)
{
	struct rename_ctx c = {
		.fs = fs, .odir = dir, .ndir = newdir, .oname = name, .nname = newname,
		.flags = flags, .cross = dir != newdir,
	};
	int ret;

	ret = rd_name_check(name, &c.olen);
	if (!ret)
		ret = rd_name_check(newname, &c.nlen);
	if (ret)
		return ret;
	if (rd_name_dots(name, c.olen) || rd_name_dots(newname, c.nlen))
		return -EINVAL;
	if ((flags & ~(RD_RENAME_NOREPLACE | RD_RENAME_EXCHANGE)) ||
	    (flags & RD_RENAME_NOREPLACE && flags & RD_RENAME_EXCHANGE))
		return -EINVAL;

	if (c.cross)
		pthread_mutex_lock(&fs->rename_lock);
	ret = rd_inode_get(fs, dir, &c.odp);
	if (ret)
		goto out;
	if (!S_ISDIR(c.odp->ftype)) {
		ret = -ENOTDIR;
		goto out;
	}
	if (c.cross) {
		ret = rd_inode_get(fs, newdir, &c.ndp);
		if (ret)
			goto out;
		if (!S_ISDIR(c.ndp->ftype)) {
			ret = -ENOTDIR;
			goto out;
		}
	} else {
		c.ndp = c.odp;
	}

	ret = rename_lock_all(&c);
	if (ret == 1) {
		ret = 0;
		goto out;
	}
	if (ret)
		goto out;
	ret = rename_check(&c);
	if (!ret)
		ret = rename_commit(&c);
	rd_lockset_unlock(&c.ls);
out:
	if (c.cross)
		pthread_mutex_unlock(&fs->rename_lock);
	/* A replaced target may be deleted now: no lock is held. */
	if (c.sip)
		rd_inode_put(fs, c.sip);
	if (c.tip)
		rd_inode_put(fs, c.tip);
	if (c.cross && c.ndp)
		rd_inode_put(fs, c.ndp);
	if (c.odp)
		rd_inode_put(fs, c.odp);
	return rd_errno(ret);
}
