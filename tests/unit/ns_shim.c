/*
 * ns_shim.c - TEMPORARY stand-ins for the namespace half of the filesystem layer (dirent.c,
 * namei.c, attr.c, xattr.c), linked only into the data path's test programs until that half
 * lands on main. Remove this file (and its mention in tests/meson.build) then.
 *
 * Owns nothing real: rd_fs_mknod commits a bare inode key (no directory entry: tests keep
 * the inode numbers), getattr/setattr cover what the data tests need (size through
 * rd_data_truncate), and the rest answer "nothing there".
 *
 * Must never: be linked into the engine library or anything shipped.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "errors.h"
#include "fs_priv.h"

uint64_t rd_name_slot(const struct rd_fs *fs, const void *name, size_t len)
{
	const unsigned char *p = name;
	uint64_t h = 1469598103934665603ull;

	(void)fs;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return RD_HASH_SLOT_MIN + h % (RD_HASH_SLOT_MAX - RD_HASH_SLOT_MIN);
}

int rd_xattr_delete_all(struct rd_fs *fs, struct rd_trans *t, uint64_t ino)
{
	(void)fs;
	(void)t;
	(void)ino;
	return 0;
}

int rd_fs_lookup(struct rd_fs *fs, uint64_t dir, const char *name, struct rd_stat *st)
{
	(void)fs;
	(void)dir;
	(void)name;
	(void)st;
	return -ENOENT;
}

int rd_fs_mknod(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode, uint64_t rdev,
		const struct rd_fs_cred *cr, struct rd_stat *st)
{
	struct rd_inode_mem m;
	struct rd_inode_v v;
	struct rd_inode *ip;
	struct rd_trans *t;
	uint64_t ino, seq;
	int ret;

	(void)dir;
	(void)name;
	t = rd_trans_new(fs->s);
	if (!t)
		return -ENOMEM;
	ret = rd_inode_alloc_number(fs, t, &ino);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	rd_inode_init(&m, mode, cr, rdev);
	rd_inode_pack(&m, &v);
	ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(ino, 0), RD_KEY_INODE, &v, sizeof(v));
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, &seq);
	if (ret)
		return rd_errno(ret);
	ret = rd_inode_instantiate(fs, ino, &m, seq, &ip);
	if (ret)
		return ret;
	if (st)
		rd_inode_to_stat(fs, ip, st);
	rd_inode_put(fs, ip);
	return 0;
}

int rd_fs_getattr(struct rd_fs *fs, uint64_t ino, struct rd_stat *st)
{
	struct rd_inode *ip;
	int ret = rd_inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	pthread_mutex_lock(&ip->lock);
	rd_inode_to_stat(fs, ip, st);
	pthread_mutex_unlock(&ip->lock);
	rd_inode_put(fs, ip);
	return 0;
}

int rd_fs_setattr(struct rd_fs *fs, uint64_t ino, const struct rd_setattr *sa,
		  struct rd_stat *st)
{
	struct rd_inode *ip;
	int ret = rd_inode_get(fs, ino, &ip);

	if (ret)
		return ret;
	if (sa->valid & ~RD_SET_SIZE)
		ret = -EOPNOTSUPP;
	else if (sa->valid & RD_SET_SIZE)
		ret = rd_data_truncate(fs, ip, sa->size);
	if (!ret && st) {
		pthread_mutex_lock(&ip->lock);
		rd_inode_to_stat(fs, ip, st);
		pthread_mutex_unlock(&ip->lock);
	}
	rd_inode_put(fs, ip);
	return ret;
}
