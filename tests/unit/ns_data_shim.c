/*
 * ns_data_shim.c - TEMPORARY, branch ns only: stands in for the data path (rd_data_*)
 * until the data branch lands on main, so the namespace tests link. Linked only into the
 * namespace test programs. A "truncate" here just sets i_size (there are no extents).
 */
#include <errno.h>

#include "errors.h"
#include "fs_priv.h"

void rd_data_inode_free(struct rd_data_inode *d)
{
	(void)d;
}

int rd_data_truncate(struct rd_fs *fs, struct rd_inode *ip, uint64_t new_size)
{
	struct rd_inode_mem m;
	struct rd_trans *t;
	uint64_t seq;
	int ret;

	pthread_mutex_lock(&ip->lock);
	m = ip->i;
	m.size = new_size;
	t = rd_trans_new(fs->s);
	ret = t ? rd_inode_write_mem(t, ip->ino, &m) : -ENOMEM;
	if (t && ret)
		rd_trans_free(t);
	if (!ret)
		ret = rd_trans_commit(t, &seq);
	if (!ret) {
		ip->i = m;
		ip->last_seq = seq;
	}
	pthread_mutex_unlock(&ip->lock);
	return rd_errno(ret);
}
