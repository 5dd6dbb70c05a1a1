/*
 * xattr.c - extended attributes: set, get, list, remove, and removal with the inode.
 *
 * Owns: the xattr key encoding (format.h: a head key with name and the value's first
 * bytes at {ino, slot << 8}, continuation keys at {ino, slot << 8 | i}), probing among
 * heads as probe.h describes, and ip->has_xattrs, the answer to "does this inode have any
 * xattr at all": kept so that the question the kernel asks before every write
 * (security.capability) costs no b-tree access on an inode known to have none.
 *
 * Locking: every call holds the inode's lock for its whole length, so a value split over
 * several keys is always read as one commit wrote it.
 *
 * Must never: leave continuation keys of a removed or shortened value behind, or set
 * has_xattrs to 0 without having looked (it is -1 whenever unsure).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "refdio/errors.h"
#include "fs_priv.h"
#include "probe.h"

#define CHUNK_MASK	((1ull << RD_XATTR_CHUNK_BITS) - 1)
#define CHUNKS_MAX	(1u << RD_XATTR_CHUNK_BITS)	/* keys per value, head included */
#define DELETE_MAX	CHUNKS_MAX

/* Every b-tree access of this file goes through these, counted for the tests. */
static void tree_read(struct rd_fs *fs)
{
	atomic_fetch_add(&fs->st.xattr_tree_reads, 1);
}

static int name_check(const char *name, size_t *len)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, RD_NAME_MAX + 1);
	if (!n || n > RD_NAME_MAX)	/* as the kernel's xattr calls */
		return -ERANGE;
	*len = n;
	return 0;
}

/* A head key decoded. */
struct xhead {
	uint64_t	slot;
	uint32_t	value_len;
	size_t		first;		/* value bytes held by the head */
	struct rd_bkey	*k;		/* a copy (found heads only) */
};

static const struct rd_xattr_v *head_decode(const struct rd_bkey *k, size_t *first)
{
	const struct rd_xattr_v *v = (const void *)k->val;
	size_t hdr;

	if (k->type != RD_KEY_XATTR || k->val_len < sizeof(*v) || !v->name_len)
		return NULL;
	hdr = sizeof(*v) + v->name_len;
	if (k->val_len < hdr || rd_le32_get(v->value_len) > RD_XATTR_VALUE_MAX ||
	    k->val_len - hdr > rd_le32_get(v->value_len))
		return NULL;
	*first = k->val_len - hdr;
	return v;
}

/*
 * Walks name's chain: 0 with *h (h->k to free) if found, -ENODATA if not, with *free_slot
 * (if not NULL) the first whiteout of the chain or else the empty slot ending it.
 */
static int find(struct rd_fs *fs, uint64_t ino, const char *name, size_t len,
		struct xhead *h, uint64_t *free_slot)
{
	struct rd_probe_table tab = rd_probe_xattrs(ino);
	struct rd_probe p;
	const struct rd_bkey *k;
	bool have_free = false;
	int ret;

	tree_read(fs);
	rd_probe_init(&p, fs->s, &tab, rd_probe_hash(fs, name, len, RD_XATTR_SLOT_MAX));
	while (!(ret = rd_probe_next(&p, &k))) {
		const struct rd_xattr_v *v;
		size_t first;

		if (k->type == RD_KEY_XATTR_WHITEOUT) {
			if (!have_free && free_slot)
				*free_slot = p.slot;
			have_free = true;
			continue;
		}
		v = head_decode(k, &first);
		if (!v || v->name_len != len || memcmp(v->data, name, len))
			continue;
		h->slot = p.slot;
		h->value_len = rd_le32_get(v->value_len);
		h->first = first;
		h->k = malloc(sizeof(*k) + k->val_len);
		if (!h->k) {
			ret = -ENOMEM;
			break;
		}
		memcpy(h->k, k, sizeof(*k) + k->val_len);
		break;
	}
	if (ret == -ENOENT) {
		if (!have_free && free_slot)
			*free_slot = p.slot;
		ret = -ENODATA;
	}
	rd_probe_exit(&p);
	return ret;
}

/* Whether ino has any xattr (a head that is not a whiteout): 1, 0, or an error. */
static int any_xattr(struct rd_fs *fs, uint64_t ino)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	int ret;

	tree_read(fs);
	rd_btree_iter_init(&it, fs->s, RD_BTREE_XATTRS, RD_POS(ino, 0), RD_POS(ino, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k)))
		if (k->type == RD_KEY_XATTR)
			break;
	rd_btree_iter_exit(&it);
	if (ret == -ENOENT)
		return 0;
	return ret ? ret : 1;
}

/* ip->has_xattrs made known. Caller holds ip->lock. */
static int has_xattrs(struct rd_fs *fs, struct rd_inode *ip)
{
	int ret;

	if (ip->has_xattrs >= 0)
		return ip->has_xattrs;
	ret = any_xattr(fs, ip->ino);
	if (ret >= 0)
		ip->has_xattrs = (int8_t)ret;
	return ret;
}

/* Copies the continuation keys of the value at slot into buf (after the head's bytes). */
static int read_rest(struct rd_fs *fs, uint64_t ino, const struct xhead *h, uint8_t *buf)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	size_t done = h->first;
	uint64_t base = h->slot << RD_XATTR_CHUNK_BITS, next = base + 1;
	int ret = -EIO;

	if (done == h->value_len)
		return 0;
	tree_read(fs);
	rd_btree_iter_init(&it, fs->s, RD_BTREE_XATTRS, RD_POS(ino, base + 1),
			   RD_POS(ino, base | CHUNK_MASK));
	while (done < h->value_len && !(ret = rd_btree_iter_next(&it, &k))) {
		if (k->type != RD_KEY_XATTR_MORE || k->pos.offset != next++ || !k->val_len ||
		    k->val_len > h->value_len - done) {
			ret = -EIO;
			break;
		}
		memcpy(buf + done, k->val, k->val_len);
		done += k->val_len;
	}
	rd_btree_iter_exit(&it);
	if (done == h->value_len)
		return 0;
	return ret == -ENOENT ? -EIO : ret;	/* a value cut short */
}

/* Queues deletion of the continuation keys of slot from chunk index from on. */
static int delete_chunks(struct rd_fs *fs, struct rd_trans *t, uint64_t ino, uint64_t slot,
			 unsigned from)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	uint64_t base = slot << RD_XATTR_CHUNK_BITS;
	int ret;

	if (from > CHUNK_MASK)
		return 0;
	tree_read(fs);
	rd_btree_iter_init(&it, fs->s, RD_BTREE_XATTRS, RD_POS(ino, base + from),
			   RD_POS(ino, base | CHUNK_MASK));
	while (!(ret = rd_btree_iter_next(&it, &k)))
		if ((ret = rd_trans_del(t, RD_BTREE_XATTRS, k->pos)))
			break;
	rd_btree_iter_exit(&it);
	return ret == -ENOENT ? 0 : ret;
}

/* Queues the value as a head at slot and continuation keys; the number of keys in *n. */
static int put_value(struct rd_fs *fs, struct rd_trans *t, uint64_t ino, uint64_t slot,
		     const char *name, size_t len, const uint8_t *value, size_t size,
		     unsigned *n)
{
	size_t max = rd_btree_max_val(fs->s);
	size_t first, off;
	struct rd_xattr_v *v;
	uint64_t base = slot << RD_XATTR_CHUNK_BITS;
	unsigned i;
	int ret;

	/* name_check and the probe bound them */
	assert(len && len <= RD_NAME_MAX && slot <= RD_XATTR_SLOT_MAX);
	if (max < sizeof(*v) + RD_NAME_MAX + 1)
		return -E2BIG;		/* nodes too small for any name: not a valid image */
	first = max - sizeof(*v) - len;
	first = size < first ? size : first;
	v = calloc(1, sizeof(*v) + len + first);
	if (!v)
		return -ENOMEM;
	v->name_len = (uint8_t)len;
	v->value_len = rd_le32_of((uint32_t)size);
	memcpy(v->data, name, len);
	if (first)
		memcpy(v->data + len, value, first);
	ret = rd_trans_put(t, RD_BTREE_XATTRS, RD_POS(ino, base), RD_KEY_XATTR, v,
			   sizeof(*v) + len + first);
	free(v);
	for (off = first, i = 1; !ret && off < size; i++) {
		size_t c = size - off < max ? size - off : max;

		if (i >= CHUNKS_MAX)
			return -E2BIG;
		ret = rd_trans_put(t, RD_BTREE_XATTRS, RD_POS(ino, base | i), RD_KEY_XATTR_MORE,
				   value + off, c);
		off += c;
	}
	*n = i;
	return ret;
}

/* Commits t with a ctime update of ip. Caller holds ip->lock. */
static int commit_with_ctime(struct rd_trans *t, struct rd_inode *ip)
{
	struct rd_inode_mem m = ip->i;
	uint64_t seq;
	int ret;

	m.ctime = rd_now_ns();
	ret = rd_inode_write_mem(t, ip->ino, &m);
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	ret = rd_trans_commit(t, &seq);
	if (ret)
		return ret;
	ip->i = m;
	ip->last_seq = seq;
	return 0;
}

int rd_fs_setxattr(struct rd_fs *fs, uint64_t ino, const char *name, const void *value,
		   size_t size, int flags)
{
	struct xhead h = { 0 };
	struct rd_inode *ip;
	struct rd_trans *t = NULL;
	uint64_t slot = 0;
	unsigned n = 0;
	size_t len;
	bool found;
	int ret;

	ret = name_check(name, &len);
	if (ret)
		return ret;
	if (size > RD_XATTR_VALUE_MAX)
		return -E2BIG;
	if ((flags & ~(RD_XATTR_CREATE | RD_XATTR_REPLACE)) || (size && !value))
		return -EINVAL;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return rd_errno(ret);
	rd_inode_lock(ip);
	if (ip->has_xattrs == 0) {
		/* No live attribute: the hash slot itself is free or a whiteout (which has
		 * no continuation keys), so the name can go there without a look. */
		ret = -ENODATA;
		slot = rd_probe_hash(fs, name, len, RD_XATTR_SLOT_MAX);
	} else {
		ret = find(fs, ino, name, len, &h, &slot);
	}
	if (ret && ret != -ENODATA)
		goto out;
	found = !ret;
	if (found && (flags & RD_XATTR_CREATE)) {
		ret = -EEXIST;
		goto out;
	}
	if (!found && (flags & RD_XATTR_REPLACE)) {
		ret = -ENODATA;
		goto out;
	}
	if (found)
		slot = h.slot;
	t = rd_trans_new(fs->s);
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	ret = put_value(fs, t, ino, slot, name, len, value, size, &n);
	if (!ret && found)	/* a shorter value leaves keys behind */
		ret = delete_chunks(fs, t, ino, slot, n);
	if (ret)
		goto out;
	ret = commit_with_ctime(t, ip);
	t = NULL;
	if (!ret)
		ip->has_xattrs = 1;
out:
	rd_inode_unlock(ip);
	if (t)
		rd_trans_free(t);
	free(h.k);
	rd_inode_put(fs, ip);
	return rd_errno(ret);
}

ssize_t rd_fs_getxattr(struct rd_fs *fs, uint64_t ino, const char *name, void *value,
		       size_t size)
{
	struct xhead h = { 0 };
	struct rd_inode *ip;
	size_t len;
	ssize_t ret;

	ret = name_check(name, &len);
	if (ret)
		return ret;
	if (size && !value)
		return -EINVAL;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return rd_errno((int)ret);
	rd_inode_lock(ip);
	ret = has_xattrs(fs, ip);	/* the fast path: 0 without a tree access */
	if (ret <= 0) {
		ret = ret ? ret : -ENODATA;
		goto out;
	}
	ret = find(fs, ino, name, len, &h, NULL);
	if (ret)
		goto out;
	ret = h.value_len;
	if (!size)
		goto out;
	if (size < h.value_len) {
		ret = -ERANGE;
		goto out;
	}
	memcpy(value, ((const struct rd_xattr_v *)h.k->val)->data + len, h.first);
	ret = read_rest(fs, ino, &h, value);
	if (!ret)
		ret = h.value_len;
out:
	rd_inode_unlock(ip);
	free(h.k);
	rd_inode_put(fs, ip);
	return ret < 0 ? rd_errno((int)ret) : ret;
}

ssize_t rd_fs_listxattr(struct rd_fs *fs, uint64_t ino, char *list, size_t size)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_inode *ip;
	size_t total = 0;
	int ret;

	if (size && !list)
		return -EINVAL;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return rd_errno(ret);
	rd_inode_lock(ip);
	if (ip->has_xattrs == 0)
		goto out;
	tree_read(fs);
	rd_btree_iter_init(&it, fs->s, RD_BTREE_XATTRS, RD_POS(ino, 0), RD_POS(ino, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		const struct rd_xattr_v *v;
		size_t first;

		if ((k->pos.offset & CHUNK_MASK) || !(v = head_decode(k, &first)))
			continue;	/* continuation keys, whiteouts */
		if (size && total + v->name_len + 1 <= size) {
			memcpy(list + total, v->data, v->name_len);
			list[total + v->name_len] = '\0';
		}
		total += v->name_len + 1u;
	}
	rd_btree_iter_exit(&it);
	if (ret != -ENOENT)
		goto out;
	ret = 0;
	ip->has_xattrs = total ? 1 : 0;
	if (size && total > size)
		ret = -ERANGE;
out:
	rd_inode_unlock(ip);
	rd_inode_put(fs, ip);
	return ret ? rd_errno(ret) : (ssize_t)total;
}

int rd_fs_removexattr(struct rd_fs *fs, uint64_t ino, const char *name)
{
	struct rd_probe_table tab = rd_probe_xattrs(ino);
	struct xhead h = { 0 };
	struct rd_inode *ip;
	struct rd_trans *t = NULL;
	size_t len;
	int ret;

	ret = name_check(name, &len);
	if (ret)
		return ret;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return rd_errno(ret);
	rd_inode_lock(ip);
	ret = has_xattrs(fs, ip);
	if (ret <= 0) {
		ret = ret ? ret : -ENODATA;
		goto out;
	}
	ret = find(fs, ino, name, len, &h, NULL);
	if (ret)
		goto out;
	t = rd_trans_new(fs->s);
	if (!t) {
		ret = -ENOMEM;
		goto out;
	}
	ret = delete_chunks(fs, t, ino, h.slot, 1);
	if (!ret) {
		tree_read(fs);	/* the trim looks at neighbouring slots */
		ret = rd_probe_remove(fs->s, t, &tab, h.slot, true);
	}
	if (ret)
		goto out;
	ret = commit_with_ctime(t, ip);
	t = NULL;
	if (!ret)
		ip->has_xattrs = -1;	/* others may remain: look when next asked */
out:
	rd_inode_unlock(ip);
	if (t)
		rd_trans_free(t);
	free(h.k);
	rd_inode_put(fs, ip);
	return rd_errno(ret);
}

int rd_xattr_delete_all(struct rd_fs *fs, struct rd_trans *t, uint64_t ino)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	int ret;

	tree_read(fs);
	rd_btree_iter_init(&it, fs->s, RD_BTREE_XATTRS, RD_POS(ino, 0), RD_POS(ino, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k)))
		if ((ret = rd_trans_del(t, RD_BTREE_XATTRS, k->pos)))
			break;
	rd_btree_iter_exit(&it);
	return ret == -ENOENT ? 0 : ret;
}
