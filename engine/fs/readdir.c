/*
 * readdir.c - rd_fs_readdir: listing a directory with resumable cookies.
 *
 * Owns: the cookie scheme. Cookie 0 starts with ".", 1 resumes at "..", 2 at the first
 * entry; after the entry in slot s the cookie is s + 1 (slots start at RD_HASH_SLOT_MIN,
 * so the ranges never meet). Entries never move between slots, so a listing that resumes
 * from a cookie while the directory changes returns every entry present throughout
 * exactly once: it walks slots in increasing order and each such entry has one slot.
 *
 * Must never: hold a lock while calling fill (it may block on the caller's buffer), or
 * return a whiteout.
 */
#include <assert.h>
#include <errno.h>
#include <sys/stat.h>

#include "dirents.h"
#include "refdio/errors.h"
#include "fs_priv.h"

#define COOKIE_DOT	1	/* resumes after "." */
#define COOKIE_DOTDOT	2	/* resumes after ".." */

int rd_fs_readdir(struct rd_fs *fs, uint64_t dir, uint64_t cookie, rd_fs_fill_fn fill,
		  void *priv)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_inode *dp;
	uint64_t parent, nlink;
	int ret;

	ret = rd_inode_get(fs, dir, &dp);
	if (ret)
		return rd_errno(ret);
	rd_inode_lock(dp);
	parent = dp->i.parent ? dp->i.parent : dir;
	nlink = dp->i.nlink;
	rd_inode_unlock(dp);
	if (!S_ISDIR(dp->ftype)) {
		ret = -ENOTDIR;
		goto out;
	}
	if (!nlink) {		/* removed, still referenced: nothing to list */
		ret = -ENOENT;
		goto out;
	}
	if (cookie == 0 && fill(priv, ".", 1, dir, rd_mode_dtype(S_IFDIR), COOKIE_DOT))
		goto out;
	if (cookie <= COOKIE_DOT && fill(priv, "..", 2, parent, rd_mode_dtype(S_IFDIR), COOKIE_DOTDOT))
		goto out;
	if (cookie < RD_HASH_SLOT_MIN)
		cookie = RD_HASH_SLOT_MIN;
	if (cookie > RD_HASH_SLOT_MAX)	/* past the last slot: the end */
		goto out;

	rd_btree_iter_init(&it, fs->s, RD_BTREE_DIRENTS, RD_POS(dir, cookie),
			   RD_POS(dir, RD_HASH_SLOT_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		struct rd_dirent d;
		const uint8_t *name;
		size_t len;

		if (k->type == RD_KEY_WHITEOUT || rd_dirent_decode(k, &d, &name, &len))
			continue;	/* whiteout, or an entry fsck will have to look at */
		assert(d.slot >= cookie && d.slot + 1 > COOKIE_DOTDOT);	/* ranges apart */
		if (fill(priv, (const char *)name, len, d.inum, d.d_type, d.slot + 1))
			break;
	}
	rd_btree_iter_exit(&it);
	ret = ret == -ENOENT ? 0 : ret;
out:
	rd_inode_put(fs, dp);
	return rd_errno(ret);
}
