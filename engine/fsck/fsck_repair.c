/*
 * fsck_repair.c - what `fsck -y` changes, each change an engine transaction: bucket data
 * counts set to what the extents hold; keys of missing owners deleted (extents with their
 * accounting); orphans left by a crash deleted with everything hanging off them (as the
 * next open would); inodes named by no entry named "#<ino>" in lost+found (created if
 * missing); link counts, sectors, parent pointers and the orphan flag rewritten from what
 * the trees say; stray orphan markers deleted; the inode-number key rewritten; entries
 * naming no inode turned into whiteouts.
 *
 * Every function keeps the table (fsck_int.h) in step with what it committed, so that the
 * verdicts made after it see the repaired state. Deletions of extents carry no accounting:
 * the buckets are set to what stays once the deletions are done (fsck_settle_buckets), so
 * a crash in between leaves counts too high (space unused until the next fsck), never too
 * low (a bucket reused under live data).
 *
 * Must never: rewrite or move user data, delete a key that an existing inode still needs,
 * or leave a state that a crash between two of its transactions would make worse than
 * before (each transaction is consistent on its own: accounting travels with deletions).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "dirents.h"
#include "refdio/errors.h"
#include "fs_priv.h"
#include "fsck_int.h"
#include "probe.h"
#include "store.h"

#define DELETE_BATCH	256	/* keys deleted per transaction */

/* ---- helpers --------------------------------------------------------------------------- */

/* Deletes every key of tree id in [from, to], DELETE_BATCH per transaction. Extents go
 * without accounting (see fsck_fix_stray). */
static int delete_range(struct fsck_fs *c, enum rd_btree_id id, struct rd_bpos from,
			struct rd_bpos to)
{
	return rd_trans_delete_range(c->s, id, from, to, DELETE_BATCH);
}

/* The end of a range of inode ino's keys that ends at offset off: every snapshot field
 * (a damaged key may carry one), so that nothing at off is left behind. */
static struct rd_bpos pos_last(uint64_t ino, uint64_t off)
{
	return (struct rd_bpos){ .inode = ino, .offset = off, .snapshot = UINT32_MAX };
}

/* Reads inode ino's attributes from its key. */
static int inode_read(struct fsck_fs *c, uint64_t ino, struct rd_inode_mem *m)
{
	struct rd_bkey *k;
	int ret = rd_btree_lookup(c->s, RD_BTREE_INODES, RD_POS(ino, 0), &k);

	if (ret)
		return ret;
	if (k->type != RD_KEY_INODE || k->val_len != sizeof(struct rd_inode_v))
		ret = -EUCLEAN;
	else
		rd_inode_unpack((const struct rd_inode_v *)k->val, m);
	free(k);
	return ret;
}

static int inode_put(struct rd_trans *t, uint64_t ino, const struct rd_inode_mem *m)
{
	struct rd_inode_v v;

	rd_inode_pack(m, &v);
	return rd_trans_put(t, RD_BTREE_INODES, RD_POS(ino, 0), RD_KEY_INODE, &v, sizeof(v));
}

/*
 * Where a new entry called name goes in dir: the first whiteout of its chain, else the
 * empty slot ending it (the rules of dirents.c). -EEXIST if the name is present.
 */
static int find_slot(struct fsck_fs *c, uint64_t dir, const char *name, size_t len,
		     uint64_t *slot)
{
	struct rd_probe_table tab = rd_probe_dirents(dir);
	struct rd_probe p;
	const struct rd_bkey *k;
	bool have = false;
	int ret;

	rd_probe_init(&p, c->s, &tab, rd_probe_hash_key(c->hash_key, c->hash_mask, name, len,
							  RD_HASH_SLOT_MAX));
	while (!(ret = rd_probe_next(&p, &k))) {
		struct rd_dirent d;
		const uint8_t *kname;
		size_t klen;

		if (k->type == RD_KEY_WHITEOUT) {
			if (!have)
				*slot = p.slot;
			have = true;
			continue;
		}
		if (!rd_dirent_decode(k, &d, &kname, &klen) && klen == len &&
		    !memcmp(kname, name, len)) {
			ret = -EEXIST;
			break;
		}
	}
	if (ret == -ENOENT) {
		if (!have)
			*slot = p.slot;
		ret = 0;
	}
	rd_probe_exit(&p);
	return ret;
}

/* ---- buckets, strays, orphans --------------------------------------------------------- */

int fsck_fix_bucket(struct fsck_fs *c, uint64_t b, uint32_t have, uint32_t want)
{
	struct rd_trans *t;
	int ret;

	assert(c->repair);
	t = rd_trans_new(c->s);
	if (!t)
		return -ENOMEM;
	ret = rd_trans_add_delta(t, b, (int64_t)want - (int64_t)have);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	return rd_trans_commit(t, NULL);
}

int fsck_fix_stray(struct fsck_fs *c, const struct fsck_stray *st)
{
	return delete_range(c, st->tree, RD_POS(st->ino, st->from), pos_last(st->ino, st->to));
}

int fsck_fix_orphan(struct fsck_fs *c, struct fsck_inode *fi)
{
	static const enum rd_btree_id ids[] = { RD_BTREE_EXTENTS, RD_BTREE_DIRENTS,
						RD_BTREE_XATTRS };
	struct rd_trans *t;
	int ret = 0;

	assert(c->repair && (fi->state & FI_ORPHAN) && !(fi->state & FI_GONE));
	/* What hangs off it first, in batches; the inode and its marker last, together: a
	 * crash part-way leaves the marker, and the next open or fsck finishes. */
	for (unsigned i = 0; !ret && i < sizeof(ids) / sizeof(ids[0]); i++)
		ret = delete_range(c, ids[i], RD_POS(fi->ino, 0), pos_last(fi->ino, UINT64_MAX));
	if (!ret)
		ret = delete_range(c, RD_BTREE_INODES, RD_POS(fi->ino, 1),
				   pos_last(fi->ino, UINT64_MAX));
	if (ret)
		return ret;
	t = rd_trans_new(c->s);
	if (!t)
		return -ENOMEM;
	ret = rd_trans_del(t, RD_BTREE_INODES, RD_POS(fi->ino, 0));
	if (!ret)
		ret = rd_trans_del(t, RD_BTREE_INODES, RD_POS(0, fi->ino));
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, NULL);
	if (!ret)
		fi->state |= FI_GONE;
	return ret;
}

/* ---- lost+found ------------------------------------------------------------------------ */

/* Creates lost+found in the root: -ENOENT without a root directory, -EEXIST if the root
 * holds something else of that name. */
static int lost_found_create(struct fsck_fs *c)
{
	struct fsck_inode *root = fsck_inode_find(c, RD_ROOT_INO), *lf;
	size_t nlen = strlen(RD_LOST_FOUND_NAME);
	struct rd_inode_mem m, rm;
	struct rd_inode_alloc_v av;
	struct rd_trans *t;
	uint64_t ino, slot = 0;
	int ret;

	if (!root || !(root->state & FI_EXISTS))
		return -ENOENT;
	ret = find_slot(c, RD_ROOT_INO, RD_LOST_FOUND_NAME, nlen, &slot);
	if (!ret)
		ret = inode_read(c, RD_ROOT_INO, &rm);
	if (ret)
		return ret;
	ino = c->max_ino + 1;
	if (c->have_ino_key && c->next_ino > ino)
		ino = c->next_ino;
	if (ino < RD_FIRST_FREE_INO)
		ino = RD_FIRST_FREE_INO;
	rd_inode_init(&m, S_IFDIR | 0700, NULL, 0);
	m.parent = RD_ROOT_INO;
	rm.nlink++;
	rm.mtime = rm.ctime = m.ctime;
	av = (struct rd_inode_alloc_v){ .next_ino = rd_le64_of(ino + 1) };
	t = rd_trans_new(c->s);
	if (!t)
		return -ENOMEM;
	ret = inode_put(t, ino, &m);
	if (!ret)
		ret = rd_dirent_put(t, RD_ROOT_INO, slot, RD_LOST_FOUND_NAME, nlen, ino,
				    rd_mode_dtype(m.mode));
	if (!ret)
		ret = inode_put(t, RD_ROOT_INO, &rm);
	if (!ret)
		ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(0, 0), RD_KEY_INODE_ALLOC, &av,
				   sizeof(av));
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, NULL);
	if (ret)
		return ret;
	c->have_ino_key = true;
	c->next_ino = ino + 1;
	c->max_ino = ino;
	c->lost_found = ino;
	lf = fsck_inode_add(c, ino);	/* may rebuild the table: root moves */
	if (!lf)
		return -ENOMEM;
	lf->state = FI_EXISTS | FI_REACHED;
	lf->mode = m.mode;
	lf->nlink = 2;
	lf->parent = RD_ROOT_INO;
	lf->names = 1;
	lf->named_in = RD_ROOT_INO;
	root = fsck_inode_find(c, RD_ROOT_INO);
	root->nlink++;
	root->subdirs++;
	root->entries++;
	return 0;
}

int fsck_fix_detached(struct fsck_fs *c, struct fsck_inode *fi)
{
	uint64_t ino = fi->ino, slot = 0;
	struct fsck_inode *lf;
	struct rd_inode_mem m, lm;
	struct rd_trans *t;
	char name[48];
	size_t len;
	bool dir = S_ISDIR(fi->mode);
	int ret;

	assert(c->repair && (fi->state & FI_DETACHED));
	if (!c->lost_found) {
		ret = lost_found_create(c);
		if (ret)
			return ret == -ENOENT || ret == -EEXIST ? -EBUSY : ret;
		fi = fsck_inode_find(c, ino);	/* the table may have grown */
		assert(fi);
	}
	lf = fsck_inode_find(c, c->lost_found);
	/* "#<ino>", or "#<ino>.<n>" if that is taken. */
	for (unsigned n = 0;; n++) {
		if (n)
			snprintf(name, sizeof(name), "#%" PRIu64 ".%u", ino, n);
		else
			snprintf(name, sizeof(name), "#%" PRIu64, ino);
		len = strlen(name);
		ret = find_slot(c, c->lost_found, name, len, &slot);
		if (ret != -EEXIST || n > 1000)
			break;
	}
	if (!ret)
		ret = inode_read(c, ino, &m);
	if (!ret)
		ret = inode_read(c, c->lost_found, &lm);
	if (ret)
		return ret;
	m.nlink = dir ? 2 + fi->subdirs : 1;
	m.parent = dir ? c->lost_found : 0;
	m.flags &= ~(uint32_t)RD_INODE_ORPHAN;
	m.ctime = rd_now_ns();
	if (dir)
		lm.nlink++;
	lm.mtime = lm.ctime = m.ctime;
	t = rd_trans_new(c->s);
	if (!t)
		return -ENOMEM;
	ret = rd_dirent_put(t, c->lost_found, slot, name, len, ino, rd_mode_dtype(m.mode));
	if (!ret)
		ret = inode_put(t, ino, &m);
	if (!ret)
		ret = inode_put(t, c->lost_found, &lm);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, NULL);
	if (ret)
		return ret;
	fi->state &= ~(uint32_t)FI_DETACHED;
	fi->state |= dir ? FI_REACHED : 0;
	fi->names = 1;
	fi->named_in = c->lost_found;
	fi->nlink = m.nlink;
	fi->parent = m.parent;
	fi->flags = m.flags;
	lf->entries++;
	if (dir) {
		lf->nlink++;
		lf->subdirs++;
	}
	return 0;
}

/* ---- inodes, markers, keys -------------------------------------------------------------- */

int fsck_fix_inode(struct fsck_fs *c, struct fsck_inode *fi, uint32_t nlink, uint64_t sectors,
		   uint64_t parent, uint32_t flags)
{
	struct rd_inode_mem m;
	struct rd_trans *t;
	int ret = inode_read(c, fi->ino, &m);

	if (ret)
		return ret;
	m.nlink = nlink;
	m.sectors = sectors;
	m.parent = parent;
	m.flags = flags;
	t = rd_trans_new(c->s);
	if (!t)
		return -ENOMEM;
	ret = inode_put(t, fi->ino, &m);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, NULL);
	if (ret)
		return ret;
	fi->nlink = nlink;
	fi->sectors = sectors;
	fi->parent = parent;
	fi->flags = flags;
	return 0;
}

int fsck_fix_marker(struct fsck_fs *c, uint64_t ino)
{
	struct rd_trans *t = rd_trans_new(c->s);
	struct fsck_inode *fi;
	int ret;

	if (!t)
		return -ENOMEM;
	ret = rd_trans_del(t, RD_BTREE_INODES, RD_POS(0, ino));
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, NULL);
	fi = fsck_inode_find(c, ino);
	if (!ret && fi)
		fi->state &= ~(uint32_t)FI_MARKER;
	return ret;
}

int fsck_fix_ino_key(struct fsck_fs *c, uint64_t next_ino)
{
	struct rd_inode_alloc_v av = { .next_ino = rd_le64_of(next_ino) };
	struct rd_trans *t = rd_trans_new(c->s);
	int ret;

	if (!t)
		return -ENOMEM;
	ret = rd_trans_put(t, RD_BTREE_INODES, RD_POS(0, 0), RD_KEY_INODE_ALLOC, &av, sizeof(av));
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, NULL);
	if (!ret) {
		c->have_ino_key = true;
		c->next_ino = next_ino;
	}
	return ret;
}

int fsck_fix_dirent(struct fsck_fs *c, uint64_t dir, uint64_t slot)
{
	struct rd_trans *t = rd_trans_new(c->s);
	int ret;

	if (!t)
		return -ENOMEM;
	ret = rd_trans_put(t, RD_BTREE_DIRENTS, RD_POS(dir, slot), RD_KEY_WHITEOUT, NULL, 0);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	return rd_trans_commit(t, NULL);
}
