/*
 * extents.c - extent keys: encoding, range lookups, and cutting ranges out of a file.
 *
 * Owns: the overwrite rules. Removing file sectors [start, end) from an extent [s, e):
 *
 *     s < start, e > end    split: a front piece keyed at start, the back piece keyed at
 *                           e (same key position, so a put replaces the old key)
 *     s < start, e <= end   trim back: delete the key at e, put the front keyed at start
 *     s >= start, e > end   trim front: the key at e stays, region_offset moves forward
 *     s >= start, e <= end  delete
 *
 * Every piece keeps naming its whole checksummed region (dev_offset, region_sectors, csum);
 * only size and region_offset change. Every removed sector is accounted in the bucket of
 * the region, so an inode's sectors and its buckets' dirty_sectors move together.
 *
 * Must never: queue an extent change without its accounting, or trust a key read from
 * disk before rd_extent_unpack checked it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "refdio/errors.h"
#include "extents.h"
#include "store.h"

void rd_extent_pack(const struct rd_extent *e, struct rd_extent_v *v)
{
	memset(v, 0, sizeof(*v));
	v->dev_offset = rd_le64_of(e->dev_offset);
	v->gen = rd_le32_of(e->gen);
	v->size = rd_le32_of(e->size);
	v->region_sectors = rd_le32_of(e->region_sectors);
	v->region_offset = rd_le32_of(e->region_offset);
	v->csum_type = e->csum_type;
	v->flags = rd_le16_of(e->flags);
	v->csum = rd_le64_of(e->csum);
}

const char *rd_extent_decode(const struct rd_store *s, const struct rd_bkey *k,
			     struct rd_extent *e)
{
	const struct rd_geometry *g = &s->geo;
	const struct rd_extent_v *v = (const void *)k->val;
	uint64_t rbytes;

	if (k->type != RD_KEY_EXTENT || k->val_len != sizeof(*v))
		return "wrong key type or value size";
	if (k->pos.snapshot)
		return "has a snapshot";
	e->end = k->pos.offset;
	e->size = rd_le32_get(v->size);
	e->dev_offset = rd_le64_get(v->dev_offset);
	e->gen = rd_le32_get(v->gen);
	e->region_sectors = rd_le32_get(v->region_sectors);
	e->region_offset = rd_le32_get(v->region_offset);
	e->csum_type = v->csum_type;
	e->flags = rd_le16_get(v->flags);
	e->csum = rd_le64_get(v->csum);
	rbytes = (uint64_t)e->region_sectors << RD_SECTOR_SHIFT;
	if (!e->size)
		return "size 0";
	if (e->size > e->end)
		return "starts before the file's first sector";
	if (!e->region_sectors)
		return "empty region";
	if ((uint64_t)e->region_offset + e->size > e->region_sectors)
		return "data past the end of its region";
	if (rbytes > g->encoded_extent_max)
		return "region larger than encoded_extent_max";
	if (e->dev_offset % g->block_size || rbytes % g->block_size)
		return "region not made of whole blocks";
	if (e->csum_type >= RD_CSUM_NR)
		return "unknown checksum type";
	if (v->compression)
		return "compressed (no compression is defined)";
	if (e->flags & ~RD_EXTENT_UNWRITTEN)
		return "unknown flags";
	if (e->dev_offset / g->bucket_size != (e->dev_offset + rbytes - 1) / g->bucket_size)
		return "region crosses a bucket boundary";
	if (e->dev_offset / g->bucket_size < g->first_bucket ||
	    e->dev_offset / g->bucket_size >= g->last_bucket)
		return "region outside the allocatable buckets";
	return NULL;
}

int rd_extent_unpack(const struct rd_store *s, const struct rd_bkey *k, struct rd_extent *e)
{
	return rd_extent_decode(s, k, e) ? -EIO : 0;
}

void rd_extent_list_free(struct rd_extent_list *l)
{
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static int list_add(struct rd_extent_list *l, const struct rd_extent *e)
{
	if (l->nr == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct rd_extent *n = realloc(l->e, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->e = n;
		l->cap = cap;
	}
	l->e[l->nr++] = *e;
	return 0;
}

int rd_extents_collect(struct rd_store *s, uint64_t ino, uint64_t start, uint64_t end,
		       size_t max, struct rd_extent_list *l, bool *more)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	size_t added = 0;
	int ret;

	*more = false;
	if (start >= end)
		return 0;
	/* Keyed by end: the first extent that can overlap sector start ends after it. */
	rd_btree_iter_init(&it, s, RD_BTREE_EXTENTS, RD_POS(ino, start + 1),
			   RD_POS(ino, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		struct rd_extent e;

		ret = rd_extent_unpack(s, k, &e);
		if (ret)
			break;
		if (rd_extent_start(&e) >= end)
			break;
		if (max && added == max) {
			*more = true;
			break;
		}
		ret = list_add(l, &e);
		if (ret)
			break;
		added++;
	}
	rd_btree_iter_exit(&it);
	return ret == -ENOENT ? 0 : rd_errno(ret);
}

static int put_extent(struct rd_trans *t, uint64_t ino, const struct rd_extent *e)
{
	struct rd_extent_v v;

	/* What rd_extent_decode would accept back: a piece inside its region. */
	assert(e->size && e->size <= e->end &&
	       (uint64_t)e->region_offset + e->size <= e->region_sectors);
	rd_extent_pack(e, &v);
	return rd_trans_put(t, RD_BTREE_EXTENTS, RD_POS(ino, e->end), RD_KEY_EXTENT, &v,
			    sizeof(v));
}

int rd_extents_punch(struct rd_trans *t, struct rd_store *s, uint64_t ino, uint64_t start,
		     uint64_t end, const struct rd_extent *ext, size_t nr, uint64_t *removed)
{
	uint64_t total = 0;
	int ret = 0;

	for (size_t i = 0; i < nr && !ret; i++) {
		const struct rd_extent *o = &ext[i];
		uint64_t s0 = rd_extent_start(o), e0 = o->end;
		uint64_t cut_lo = s0 > start ? s0 : start;
		uint64_t cut_hi = e0 < end ? e0 : end;
		struct rd_extent front = *o, back = *o;

		if (cut_lo >= cut_hi)
			continue;	/* does not overlap: nothing to do */
		assert(cut_hi - cut_lo <= o->size);
		if (s0 < start) {
			/* A front piece survives, keyed at start. */
			front.end = start;
			front.size = (uint32_t)(start - s0);
		}
		if (e0 > end) {
			/* A back piece survives at the old position; its data starts further
			 * into the region. */
			back.size = (uint32_t)(e0 - end);
			back.region_offset = o->region_offset + (uint32_t)(end - s0);
		}
		if (e0 <= end)
			ret = rd_trans_del(t, RD_BTREE_EXTENTS, RD_POS(ino, e0));
		if (!ret && s0 < start)
			ret = put_extent(t, ino, &front);
		if (!ret && e0 > end)
			ret = put_extent(t, ino, &back);
		if (!ret)
			ret = rd_alloc_account(t, s, o->dev_offset, -(int64_t)(cut_hi - cut_lo));
		total += cut_hi - cut_lo;
	}
	if (!ret && removed)
		*removed = total;
	return ret;
}

int rd_extents_insert(struct rd_trans *t, struct rd_store *s, uint64_t ino,
		      const struct rd_extent *e)
{
	int ret = put_extent(t, ino, e);

	if (!ret)
		ret = rd_alloc_account(t, s, e->dev_offset, (int64_t)e->size);
	return ret;
}
