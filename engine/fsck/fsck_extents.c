/*
 * fsck_extents.c - the pass over the extents tree, the data checksums, and the buckets'
 * user-data counts against what the extents say.
 *
 * Per extent: well formed (every field in range, the region whole blocks inside one
 * allocatable bucket, no larger than encoded_extent_max), owned by an existing regular
 * file, not overlapping the one before it, generation equal to its bucket's (a stale
 * pointer is an error: its data is gone), its bucket typed user data, and, written, not
 * past the block holding i_size (the tail invariant of data_ops.c; unwritten extents from
 * fallocate KEEP_SIZE may lie anywhere past it). Sizes are summed per inode (checked
 * against inode.sectors in fsck_fs.c) and, for current pointers, per bucket.
 *
 * Data (opts.data): every region a written, checksummed, current extent points into is
 * read whole and verified, in batches of up to BATCH_REGIONS regions and BATCH_BYTES
 * bytes in flight at once; a mismatch is reported for each extent of the batch using the
 * region, with its inode and file byte range.
 *
 * Must never: repair an extent (a stale or damaged one is reported and left: dropping it
 * would turn an I/O error into silent zeros), or count a stale pointer in its bucket (the
 * bucket's count belongs to its current generation).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "csum.h"
#include "refdio/errors.h"
#include "extents.h"
#include "fsck_int.h"
#include "io.h"
#include "store.h"

#define BATCH_REGIONS	64
#define BATCH_BYTES	(32u << 20)

/* ---- data verification ----------------------------------------------------------------- */

struct dregion {
	uint64_t dev_offset;
	uint32_t sectors, gen;
	uint8_t csum_type;
	uint64_t csum;
	void *buf;
	long res;
	struct rd_io_req req;
	struct dbatch *b;
};

struct dref {
	uint64_t ino;
	uint64_t start, end;	/* file sectors */
	size_t region;
};

struct dbatch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pending;
	struct dregion r[BATCH_REGIONS];
	size_t nr;
	size_t bytes;
	struct dref *refs;
	size_t nrefs, refcap;
};

static void dregion_end_io(struct rd_io_req *req, long res)
{
	struct dregion *r = req->priv;
	struct dbatch *b = r->b;

	pthread_mutex_lock(&b->lock);
	assert(b->pending > 0);
	r->res = res;
	if (!--b->pending)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* Reads every region of the batch, verifies them and reports; empties the batch. */
static int batch_run(struct fsck_fs *c, struct dbatch *b)
{
	int ret = 0;

	b->pending = (unsigned)b->nr;
	for (size_t i = 0; i < b->nr; i++) {
		struct dregion *r = &b->r[i];

		r->req = (struct rd_io_req){
			.op = RD_IO_READ, .fd = -1, .buf = r->buf, .off = r->dev_offset,
			.len = (size_t)r->sectors << RD_SECTOR_SHIFT, .end_io = dregion_end_io,
			.priv = r,
		};
		rd_io_submit(c->s->io, &r->req);
	}
	pthread_mutex_lock(&b->lock);
	while (b->pending)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);

	for (size_t i = 0; i < b->nr; i++) {
		struct dregion *r = &b->r[i];
		size_t len = (size_t)r->sectors << RD_SECTOR_SHIFT;
		const char *what = NULL;
		char why[64];

		if (r->res < 0 || (size_t)r->res != len) {
			snprintf(why, sizeof(why), "reading it failed: %s",
				 r->res < 0 ? rd_strerror((int)r->res) : "short read");
			what = why;
		} else if (rd_csum((enum rd_csum_type)r->csum_type, r->buf, len) != r->csum) {
			what = "checksum mismatch";
		} else {
			c->res->data_bytes += len;
		}
		for (size_t j = 0; what && j < b->nrefs; j++) {
			const struct dref *d = &b->refs[j];
			struct fsck_obj obj = fsck_obj_tree(RD_BTREE_EXTENTS, d->ino);

			if (d->region != i)
				continue;
			obj.has_bucket = true;
			obj.bucket = rd_alloc_bucket_of(c->s, r->dev_offset);
			obj.start = d->start << RD_SECTOR_SHIFT;
			obj.end = d->end << RD_SECTOR_SHIFT;
			fsck_say(c, r->res == (long)len ? "data-csum" : "data-read", RD_FSCK_ERROR,
				 false, &obj, "inode %" PRIu64 ": file bytes [%" PRIu64 ", %" PRIu64
				 "): data region of %u sectors at device offset %#" PRIx64
				 " (bucket %" PRIu64 "): %s", d->ino, obj.start, obj.end, r->sectors,
				 r->dev_offset, obj.bucket, what);
		}
		free(r->buf);
		r->buf = NULL;
	}
	b->nr = 0;
	b->nrefs = 0;
	b->bytes = 0;
	return ret;
}

/* Adds extent e of ino to the batch (sharing a region already in it), running the batch
 * first when full. */
static int batch_add(struct fsck_fs *c, struct dbatch *b, uint64_t ino, const struct rd_extent *e)
{
	size_t bytes = (size_t)e->region_sectors << RD_SECTOR_SHIFT, i;
	int ret;

	for (i = 0; i < b->nr; i++) {
		const struct dregion *r = &b->r[i];

		if (r->dev_offset == e->dev_offset && r->gen == e->gen &&
		    r->sectors == e->region_sectors && r->csum == e->csum &&
		    r->csum_type == e->csum_type)
			break;
	}
	if (i == b->nr) {
		if (b->nr == BATCH_REGIONS || (b->nr && b->bytes + bytes > BATCH_BYTES)) {
			ret = batch_run(c, b);
			if (ret)
				return ret;
			i = 0;
		}
		assert(i == b->nr && i < BATCH_REGIONS);
		b->r[i] = (struct dregion){
			.dev_offset = e->dev_offset, .sectors = e->region_sectors, .gen = e->gen,
			.csum_type = e->csum_type, .csum = e->csum, .b = b,
		};
		if (posix_memalign(&b->r[i].buf, 4096, bytes))
			return -ENOMEM;
		b->nr++;
		b->bytes += bytes;
	}
	if (b->nrefs == b->refcap) {
		size_t cap = b->refcap ? b->refcap * 2 : 64;
		struct dref *n = realloc(b->refs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		b->refs = n;
		b->refcap = cap;
	}
	b->refs[b->nrefs++] = (struct dref){ .ino = ino, .start = rd_extent_start(e),
					     .end = e->end, .region = i };
	return 0;
}

/* ---- the extents tree ------------------------------------------------------------------ */

struct epass {
	uint64_t ino;
	struct fsck_inode *fi;		/* NULL: the owner does not exist */
	uint64_t prev_end;
	uint64_t wrong_keys;		/* extents of an owner that is no regular file */
	struct dbatch data;
};

static void owner_end(struct fsck_fs *c, struct epass *p)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_EXTENTS, p->ino);

	if (p->wrong_keys)
		fsck_say(c, "extent-owner", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 " (mode "
			 "0%o) is no regular file but has %" PRIu64 " extents", p->ino, p->fi->mode,
			 p->wrong_keys);
}

static void owner_begin(struct fsck_fs *c, struct epass *p, uint64_t ino)
{
	struct fsck_inode *fi = fsck_inode_find(c, ino);

	p->ino = ino;
	p->fi = fi && (fi->state & FI_EXISTS) ? fi : NULL;
	p->prev_end = 0;
	p->wrong_keys = 0;
}

static int one_extent(struct fsck_fs *c, struct epass *p, const struct rd_bkey *k)
{
	const struct rd_geometry *g = &c->s->geo;
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_EXTENTS, p->ino);
	struct fsck_inode *fi = p->fi;
	struct rd_extent e;
	struct rd_bucket bk;
	const char *bad;
	uint64_t b, start;
	int ret;

	bad = rd_extent_decode(c->s, k, &e);
	if (bad) {
		if (!fi)	/* a stray: deleted whole, malformed or not */
			return fsck_stray_add(c, RD_BTREE_EXTENTS, k->pos.inode, k->pos.offset);
		char text[FSCK_KEY_TEXT];

		fsck_say(c, "extent-key", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": extent "
			 "key ending at sector %" PRIu64 " is malformed: %s (%s)", p->ino,
			 k->pos.offset, bad, fsck_key_text(RD_BTREE_EXTENTS, k, text,
							    sizeof(text)));
		return 0;
	}
	start = rd_extent_start(&e);
	obj.start = start << RD_SECTOR_SHIFT;
	obj.end = e.end << RD_SECTOR_SHIFT;
	b = e.dev_offset / g->bucket_size;
	obj.has_bucket = true;
	obj.bucket = b;
	ret = rd_alloc_bucket(c->s, b, &bk);
	if (ret)
		return ret;
	/* Current pointers count in their bucket; those the repairs delete apart. */
	if (bk.gen == e.gen) {
		if (!fi || (fi->state & FI_ORPHAN))
			c->going[b] += e.size;
		else
			c->live[b] += e.size;
	}
	if (!fi)
		return fsck_stray_add(c, RD_BTREE_EXTENTS, k->pos.inode, k->pos.offset);

	c->res->extents++;
	fi->ext_sectors += e.size;
	if (!S_ISREG(fi->mode)) {
		p->wrong_keys++;
		return 0;
	}
	if (bk.gen != e.gen) {
		fsck_say(c, "extent-stale", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": file "
			 "bytes [%" PRIu64 ", %" PRIu64 ") point into bucket %" PRIu64 " at "
			 "generation %u, the bucket is at %u: the data is gone", p->ino, obj.start,
			 obj.end, b, e.gen, bk.gen);
	} else if (bk.data_type != RD_DATA_USER) {
		fsck_say(c, "extent-bucket", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": file "
			 "bytes [%" PRIu64 ", %" PRIu64 ") point into bucket %" PRIu64 ", which "
			 "holds %s", p->ino, obj.start, obj.end, b,
			 bk.data_type == RD_DATA_BTREE ? "b-tree nodes" : "no user data");
	}
	if (start < p->prev_end)
		fsck_say(c, "extent-overlap", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": "
			 "extent at file bytes [%" PRIu64 ", %" PRIu64 ") overlaps the one before "
			 "it (ending at byte %" PRIu64 ")", p->ino, obj.start, obj.end,
			 p->prev_end << RD_SECTOR_SHIFT);
	p->prev_end = e.end;
	if (!rd_extent_unwritten(&e)) {
		uint64_t eof = (fi->size + g->block_size - 1) / g->block_size * g->block_size;

		if (obj.end > eof)
			fsck_say(c, "extent-past-eof", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64
				 ": written extent at file bytes [%" PRIu64 ", %" PRIu64 ") lies "
				 "past the block of i_size %" PRIu64, p->ino, obj.start, obj.end,
				 fi->size);
		if (c->o->data && e.csum_type != RD_CSUM_NONE && bk.gen == e.gen)
			return batch_add(c, &p->data, p->ino, &e);
	}
	return 0;
}

int fsck_pass_extents(struct fsck_fs *c)
{
	struct epass p = { 0 };
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	bool started = false;
	int ret;

	pthread_mutex_init(&p.data.lock, NULL);
	pthread_cond_init(&p.data.cond, NULL);
	fsck_phase(c, c->o->data ? "extents and data" : "extents",
		   c->res->tree_keys[RD_BTREE_EXTENTS]);
	rd_btree_iter_init(&it, c->s, RD_BTREE_EXTENTS, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		fsck_tick(c, 1);
		if (!started || k->pos.inode != p.ino) {
			if (started && p.fi)
				owner_end(c, &p);
			owner_begin(c, &p, k->pos.inode);
			started = true;
		}
		ret = one_extent(c, &p, k);
		if (ret)
			break;
	}
	rd_btree_iter_exit(&it);
	if (ret == -ENOENT) {
		if (started && p.fi)
			owner_end(c, &p);
		ret = batch_run(c, &p.data);
	} else {
		for (size_t i = 0; i < p.data.nr; i++)
			free(p.data.r[i].buf);
	}
	free(p.data.refs);
	pthread_mutex_destroy(&p.data.lock);
	pthread_cond_destroy(&p.data.cond);
	return ret;
}

/* ---- buckets ----------------------------------------------------------------------------- */

/* Every bucket's data sectors in its alloc key (0 where there is none); malformed keys
 * were reported by fsck.c and count as none. */
static int load_alloc_keys(struct fsck_fs *c, uint32_t *key_dirty)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	int ret;

	rd_btree_iter_init(&it, c->s, RD_BTREE_ALLOC, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k)))
		if (!k->pos.inode && k->pos.offset < c->s->geo.nbuckets &&
		    k->type == RD_KEY_ALLOC && k->val_len == sizeof(struct rd_alloc_v))
			key_dirty[k->pos.offset] =
				rd_le32_get(((const struct rd_alloc_v *)k->val)->dirty_sectors);
	rd_btree_iter_exit(&it);
	return ret == -ENOENT ? 0 : ret;
}

int fsck_check_buckets(struct fsck_fs *c)
{
	const struct rd_geometry *g = &c->s->geo;
	uint32_t *key_dirty = calloc(g->nbuckets ? g->nbuckets : 1, sizeof(*key_dirty));
	size_t cap = 0;
	int ret;

	if (!key_dirty)
		return -ENOMEM;
	fsck_phase(c, "data per bucket", g->nbuckets);
	ret = load_alloc_keys(c, key_dirty);
	for (uint64_t b = 0; !ret && b < g->nbuckets; b++) {
		struct fsck_obj obj = fsck_obj_bucket(b);
		struct fsck_bucket_fix *f;
		struct rd_bucket bk;

		fsck_tick(c, 1);
		ret = rd_alloc_bucket(c->s, b, &bk);
		if (ret)
			break;
		if (key_dirty[b] != bk.dirty_sectors)
			fsck_say(c, "alloc-key-sectors", RD_FSCK_ERROR, false, &obj, "bucket %"
				 PRIu64 ": its alloc key says %u data sectors, the allocator %u", b,
				 key_dirty[b], bk.dirty_sectors);
		if (bk.dirty_sectors == c->live[b] && !c->going[b])
			continue;
		if (c->nbfix == cap) {
			cap = cap ? cap * 2 : 16;
			f = realloc(c->bfix, cap * sizeof(*f));
			if (!f) {
				ret = -ENOMEM;
				break;
			}
			c->bfix = f;
		}
		f = &c->bfix[c->nbfix++];
		*f = (struct fsck_bucket_fix){ .b = b, .have = bk.dirty_sectors,
					       .live = c->live[b], .going = c->going[b] };
		/* Not repairable: b-tree nodes live there, or the extents that stay claim more
		 * than the bucket holds (they overlap on disk). */
		f->can = !bk.btree_sectors && f->live <= g->bucket_size >> RD_SECTOR_SHIFT;
		/* Held before anything is committed (fsck_int.h). */
		if (c->repair && f->can && f->live > f->have) {
			ret = rd_alloc_fsck_hold(c->s, b);
			f->held = !ret;
			f->can = !ret;
			if (ret == -EBUSY)
				ret = 0;
		}
	}
	free(key_dirty);
	return ret;
}

int fsck_settle_buckets(struct fsck_fs *c, bool failed)
{
	int ret = 0;

	for (size_t i = 0; i < c->nbfix; i++) {
		struct fsck_bucket_fix *f = &c->bfix[i];
		struct fsck_obj obj = fsck_obj_bucket(f->b);
		/* Damage is a count that differs from every extent it should cover; a count
		 * that also covers what the repairs just deleted (orphans) was right. */
		bool wrong = f->have != f->live + f->going, fix = false;

		if (failed) {		/* the deletions did not all happen: only let go */
			if (f->held)
				rd_alloc_fsck_release(c->s, f->b);
			continue;
		}
		if (!ret && c->repair && f->can && f->have != f->live) {
			ret = fsck_fix_bucket(c, f->b, f->have, (uint32_t)f->live);
			fix = !ret;
		}
		/* Right once the deletions are done: resolved by them. */
		if (c->repair && f->have == f->live)
			fix = true;
		if (f->held)
			rd_alloc_fsck_release(c->s, f->b);
		if (ret || !wrong)
			continue;
		if (f->going)
			fsck_say(c, "bucket-sectors", RD_FSCK_ERROR, fix, &obj, "bucket %" PRIu64
				 ": the allocator counts %u data sectors, current extents hold %"
				 PRIu64 " (%" PRIu64 " of them in keys to delete)%s", f->b, f->have,
				 f->live + f->going, f->going, fix ? "; corrected" : "");
		else
			fsck_say(c, "bucket-sectors", RD_FSCK_ERROR, fix, &obj, "bucket %" PRIu64
				 ": the allocator counts %u data sectors, current extents hold %"
				 PRIu64 "%s", f->b, f->have, f->live, fix ? "; corrected" : "");
	}
	return ret;
}
