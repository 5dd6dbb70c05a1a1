/*
 * inode_delete.c - deleting inodes on disk: the last reference to an unlinked inode, and
 * the orphans a crash left behind.
 *
 * Owns: the order of a deletion (data, then whatever else hangs off the inode in batches,
 * then the inode key with its orphan marker in one transaction) and the sweep of orphan
 * markers at open.
 *
 * Sits above inode.c, the data path and xattr.c, which it calls; none of them calls it by
 * name: the inode cache reaches it through fs->delete_inode (set by rd_fs_open), so the
 * cache stays below the code that deletes what an inode owns.
 *
 * Must never: delete the inode key before its data and xattrs are gone (a crash between
 * leaves the orphan marker, and the next open finishes the job), or run while anyone else
 * holds the inode (rd_inode_put calls it for the last reference only).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "btree.h"
#include "data_int.h"
#include "refdio/errors.h"
#include "fs_priv.h"

#define DELETE_BATCH	1024	/* keys deleted per transaction */

/*
 * Deletes an unlinked, unreferenced inode on disk: data first (rd_data_truncate may take
 * several transactions, each consistent), then what else hangs off it in batches (a
 * removed directory's whiteouts, xattrs, a symlink's target), then the inode key and its
 * orphan marker in one transaction. A crash part-way leaves the orphan marker, so the next
 * open finishes.
 */
int rd_inode_delete(struct rd_fs *fs, struct rd_inode *ip)
{
	struct rd_trans *t;
	int ret = 0;

	assert(!ip->i.nlink);	/* unlinked: nobody can reach it by name again */
	if (S_ISREG(ip->ftype))
		ret = rd_data_truncate(fs, ip, 0);
	if (!ret && S_ISDIR(ip->ftype))
		ret = rd_trans_delete_range(fs->s, RD_BTREE_DIRENTS, RD_POS(ip->ino, 0),
					    RD_POS(ip->ino, UINT64_MAX), DELETE_BATCH);
	if (!ret && ip->has_xattrs != 0)
		ret = rd_trans_delete_range(fs->s, RD_BTREE_XATTRS, RD_POS(ip->ino, 0),
					    RD_POS(ip->ino, UINT64_MAX), DELETE_BATCH);
	if (!ret && S_ISLNK(ip->ftype))
		ret = rd_trans_delete_range(fs->s, RD_BTREE_INODES, RD_POS(ip->ino, 1),
					    RD_POS(ip->ino, UINT64_MAX), DELETE_BATCH);
	if (ret)
		return rd_errno(ret);
	t = rd_trans_new(fs->s);
	if (!t)
		return -ENOMEM;
	ret = rd_trans_del(t, RD_BTREE_INODES, RD_POS(ip->ino, 0));
	if (!ret)
		ret = rd_inode_orphan_del(t, ip->ino);
	/* The xattrs went in batches above; this catches nothing unless the inode was
	 * thought to have none, and keeps "no xattr outlives its inode" in one place. */
	if (!ret)
		ret = rd_xattr_delete_all(fs, t, ip->ino);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, NULL);
	return ret ? rd_errno(ret) : 0;
}

int rd_inode_delete_orphans(struct rd_fs *fs)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	uint64_t *list = NULL;
	size_t n = 0, cap = 0;
	int ret;

	/* Collect first: deleting changes the tree under the iterator. */
	rd_btree_iter_init(&it, fs->s, RD_BTREE_INODES, RD_POS(0, 1), RD_POS(0, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		if (k->type != RD_KEY_ORPHAN)
			continue;
		if (n == cap) {
			uint64_t *nl = realloc(list, (cap = cap ? cap * 2 : 64) * sizeof(*list));

			if (!nl) {
				ret = -ENOMEM;
				break;
			}
			list = nl;
		}
		list[n++] = k->pos.offset;
	}
	rd_btree_iter_exit(&it);
	if (ret != -ENOENT)
		goto out;
	ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		struct rd_inode *ip;

		ret = rd_inode_get(fs, list[i], &ip);
		if (ret == -ENOENT) {	/* marker without inode: drop the marker */
			struct rd_trans *t = rd_trans_new(fs->s);

			if (!t) {
				ret = -ENOMEM;
				break;
			}
			ret = rd_inode_orphan_del(t, list[i]);
			ret = ret ? (rd_trans_free(t), ret) : rd_errno(rd_trans_commit(t, NULL));
			continue;
		}
		if (ret)
			break;
		if (ip->i.nlink == 0)
			ret = rd_inode_delete(fs, ip);
		ip->dead = ip->dead || (!ret && ip->i.nlink == 0);
		rd_inode_put(fs, ip);
	}
out:
	free(list);
	return ret;
}
