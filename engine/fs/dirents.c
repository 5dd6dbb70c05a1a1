/*
 * dirents.c - directory entries (see dirents.h).
 *
 * Owns: encoding entries, walking a name's chain to find it or the slot for it, queueing
 * inserts and removals, and telling whether a directory is empty.
 *
 * Must never: reuse a whiteout for a name that is present later in the same chain (the
 * name would then be in the directory twice), or leave an empty slot inside a chain.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "dirents.h"
#include "fs_priv.h"
#include "probe.h"

int rd_dirent_decode(const struct rd_bkey *k, struct rd_dirent *d, const uint8_t **name,
		     size_t *len)
{
	const struct rd_dirent_v *v = (const void *)k->val;

	if (k->type != RD_KEY_DIRENT || k->val_len < sizeof(*v) || !v->name_len ||
	    k->val_len < sizeof(*v) + v->name_len)
		return -EIO;
	d->slot = k->pos.offset;
	d->inum = rd_le64_get(v->inum);
	d->d_type = v->d_type;
	*name = v->name;
	*len = v->name_len;
	return 0;
}

/*
 * Walks name's chain to its end or to name. Returns 0 with *d if found; -ENOENT if not,
 * with *free_slot (if not NULL) the first whiteout of the chain or else the empty slot
 * that ends it.
 */
static int walk(struct rd_fs *fs, uint64_t dir, const char *name, size_t len,
		struct rd_dirent *d, uint64_t *free_slot)
{
	struct rd_probe_table tab = rd_probe_dirents(dir);
	struct rd_probe p;
	const struct rd_bkey *k;
	bool have_free = false;
	int ret;

	rd_probe_init(&p, fs->s, &tab, rd_name_slot(fs, name, len));
	while (!(ret = rd_probe_next(&p, &k))) {
		const uint8_t *kname;
		size_t klen;

		if (k->type == RD_KEY_WHITEOUT) {
			if (!have_free && free_slot)
				*free_slot = p.slot;
			have_free = true;
			continue;
		}
		/* A malformed entry still occupies its slot; it just never matches. */
		if (rd_dirent_decode(k, d, &kname, &klen))
			continue;
		if (klen == len && !memcmp(kname, name, len))
			break;
	}
	if (ret == -ENOENT && !have_free && free_slot)
		*free_slot = p.slot;
	assert(ret || d->slot == p.slot);	/* found: the slot the probe stopped at */
	rd_probe_exit(&p);
	return ret;
}

int rd_dirent_lookup(struct rd_fs *fs, uint64_t dir, const char *name, size_t len,
		     struct rd_dirent *d)
{
	return walk(fs, dir, name, len, d, NULL);
}

int rd_dirent_find_slot(struct rd_fs *fs, uint64_t dir, const char *name, size_t len,
			uint64_t *slot)
{
	struct rd_dirent d;
	int ret = walk(fs, dir, name, len, &d, slot);

	if (!ret)
		return -EEXIST;
	return ret == -ENOENT ? 0 : ret;
}

int rd_dirent_put(struct rd_trans *t, uint64_t dir, uint64_t slot, const char *name,
		  size_t len, uint64_t inum, unsigned d_type)
{
	uint8_t buf[sizeof(struct rd_dirent_v) + RD_NAME_MAX];
	struct rd_dirent_v *v = (void *)buf;

	if (!len || len > RD_NAME_MAX)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->inum = rd_le64_of(inum);
	v->d_type = (uint8_t)d_type;
	v->name_len = (uint8_t)len;
	memcpy(v->name, name, len);
	return rd_trans_put(t, RD_BTREE_DIRENTS, RD_POS(dir, slot), RD_KEY_DIRENT, v,
			    sizeof(*v) + len);
}

int rd_dirent_remove(struct rd_fs *fs, struct rd_trans *t, uint64_t dir, uint64_t slot,
		     bool trim)
{
	struct rd_probe_table tab = rd_probe_dirents(dir);

	return rd_probe_remove(fs->s, t, &tab, slot, trim);
}

int rd_dir_is_empty(struct rd_fs *fs, uint64_t dir)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	int ret;

	rd_btree_iter_init(&it, fs->s, RD_BTREE_DIRENTS, RD_POS(dir, RD_HASH_SLOT_MIN),
			   RD_POS(dir, RD_HASH_SLOT_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k)))
		if (k->type != RD_KEY_WHITEOUT)
			break;
	rd_btree_iter_exit(&it);
	if (ret == -ENOENT)
		return 1;
	return ret ? ret : 0;
}
