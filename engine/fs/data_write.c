/*
 * data_write.c - writing file data: begin (lock, reserve, read edges), submit (allocate,
 * checksum, write), commit (index the new extents) or abort.
 *
 * Owns: struct rd_data_wr and the rule that data reaches the device before its extent key
 * reaches the index: commit refuses a wr whose writes have not all completed, so a crash
 * at any moment leaves either the old extents or new ones pointing at complete, checksummed
 * data. The chunks of every user write arrive here from the dio engine's file sink
 * (dio_fs.c); rd_fs_write is that engine over the caller's buffer (fs_write.c).
 *
 * Must never: insert an extent before its data write completed; commit from an I/O thread;
 * write less than whole blocks (edges are read back and merged under the range lock);
 * leave a reservation, span reference or range lock behind on any path.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "bufpool.h"
#include "csum.h"
#include "data_int.h"
#include "refdio/errors.h"
#include "refdio/dio_fs.h"
#include "extents.h"
#include "io.h"

struct wr_region {
	struct rd_alloc_span span;	/* where it was written; its reference until release */
	uint64_t sector;		/* first file sector */
	uint64_t csum;			/* of exactly the bytes written */
	struct rd_io_req req;
	struct rd_data_wr *wr;
};

enum wr_state { WR_BEGUN, WR_SUBMITTED };

struct rd_data_wr {
	struct rd_fs		*fs;
	struct rd_inode		*ip;		/* referenced */
	struct rd_data_inode	*d;
	uint64_t		off, len;	/* the caller's bytes */
	uint64_t		lo, hi;		/* the whole blocks written */
	unsigned		flags;
	enum wr_state		state;
	bool			locked;		/* range is ours to release */
	struct rd_range		range;
	uint64_t		reserved;	/* sectors */
	void			*edge_head;	/* old block [lo, lo + bs), if off is unaligned */
	void			*edge_tail;	/* old block [hi - bs, hi), if the end is */
	void			*bounce;
	struct wr_region	**reg;		/* in file order */
	size_t			nr_reg, cap_reg;
	atomic_uint		pending;	/* region writes in flight + the submitter */
	atomic_int		err;		/* first error of submit */
	rd_data_wr_done_fn	done;
	void			*priv;
};


/* Drops everything wr holds (space, references, lock, memory) and frees it. */
static void wr_release(struct rd_data_wr *wr)
{
	struct rd_fs *fs = wr->fs;

	for (size_t i = 0; i < wr->nr_reg; i++) {
		rd_alloc_span_put(fs->s, &wr->reg[i]->span);
		free(wr->reg[i]);
	}
	free(wr->reg);
	if (wr->reserved)
		rd_alloc_unreserve(fs->s, wr->reserved);
	if (wr->locked)
		rd_range_unlock(wr->d, &wr->range);
	rd_bufpool_put(wr->edge_head, (size_t)rd_data_bs(fs));
	rd_bufpool_put(wr->edge_tail, (size_t)rd_data_bs(fs));
	rd_bufpool_put(wr->bounce, (size_t)(wr->hi - wr->lo));
	rd_inode_put(fs, wr->ip);
	free(wr);
}

/* Reads back the block at boff for merging, or zeros if it lies wholly at or past i_size
 * (nothing there but holes and unwritten extents: see the tail invariant in data_ops.c). */
static int read_edge(struct rd_data_wr *wr, uint64_t boff, uint64_t size, void **out)
{
	size_t bs = (size_t)rd_data_bs(wr->fs);
	void *b = rd_bufpool_get(bs);
	int ret = 0;

	if (!b)
		return -ENOMEM;
	if (boff >= size) {
		memset(b, 0, bs);
	} else {
		ret = rd_data_read_raw(wr->fs, wr->ip, b, bs, boff);
		atomic_fetch_add(&wr->fs->st.rmw_blocks, 1);
	}
	if (ret)
		rd_bufpool_put(b, bs);
	else
		*out = b;
	return ret;
}

int rd_data_wr_begin(struct rd_fs *fs, struct rd_inode *ip, uint64_t off, size_t len,
		     unsigned flags, struct rd_data_wr **out)
{
	uint64_t bs = rd_data_bs(fs), size;
	struct rd_data_wr *wr;
	int ret;

	if (!len || len > RD_DATA_WR_MAX)
		return -EINVAL;
	if (!S_ISREG(ip->i.mode))	/* the file type never changes: no lock needed */
		return S_ISDIR(ip->i.mode) ? -EISDIR : -EINVAL;
	if (off >= RD_DATA_MAX_FILE || len > RD_DATA_MAX_FILE - off)
		return -EFBIG;
	wr = calloc(1, sizeof(*wr));
	if (!wr)
		return -ENOMEM;
	wr->d = rd_data_inode_of(ip);
	if (!wr->d) {
		free(wr);
		return -ENOMEM;
	}
	rd_inode_ref(fs, ip);
	wr->fs = fs;
	wr->ip = ip;
	wr->flags = flags;
	wr->state = WR_BEGUN;

	if (!(flags & RD_DATA_WR_LOCKED)) {
		if (flags & RD_DATA_WR_NOWAIT) {
			ret = rd_range_trylock(wr->d, &wr->range, rd_round_down(off, bs),
					       rd_round_up(off + len, bs));
			if (ret)
				goto err;
		} else {
			rd_range_lock(wr->d, &wr->range, rd_round_down(off, bs),
				      rd_round_up(off + len, bs));
		}
		wr->locked = true;
	}
	wr->off = off;
	wr->len = len;
	wr->lo = rd_round_down(off, bs);
	wr->hi = rd_round_up(off + len, bs);

	/* Space first: a full device says so before anything is read or written. */
	ret = rd_alloc_reserve(fs->s, (wr->hi - wr->lo) >> RD_SECTOR_SHIFT);
	if (ret)
		goto err;
	wr->reserved = (wr->hi - wr->lo) >> RD_SECTOR_SHIFT;

	/* Edge blocks, read under the range lock so that nobody changes them until our
	 * commit: the merged block carries their other bytes unchanged. */
	rd_inode_lock(ip);
	size = ip->i.size;
	rd_inode_unlock(ip);
	if (off != wr->lo) {
		ret = read_edge(wr, wr->lo, size, &wr->edge_head);
		if (ret)
			goto err;
	}
	if ((off + len) % bs && !(wr->edge_head && wr->hi - wr->lo == bs)) {
		ret = read_edge(wr, wr->hi - bs, size, &wr->edge_tail);
		if (ret)
			goto err;
	}
	*out = wr;
	return 0;
err:
	wr_release(wr);
	return ret;
}

/* One reference of pending dropped; the last one reports to the submitter's callback. */
static void wr_put_pending(struct rd_data_wr *wr)
{
	unsigned old = atomic_fetch_sub(&wr->pending, 1);

	assert(old > 0);
	if (old == 1)
		wr->done(wr->priv, atomic_load(&wr->err));
}

static void wr_set_err(struct rd_data_wr *wr, int err)
{
	int zero = 0;

	atomic_compare_exchange_strong(&wr->err, &zero, err);
}

static void region_end_io(struct rd_io_req *req, long res)
{
	struct wr_region *r = req->priv;

	if (res < 0)
		wr_set_err(r->wr, (int)res);
	else if ((size_t)res != req->len)
		wr_set_err(r->wr, -EIO);
	wr_put_pending(r->wr);
}

static int wr_add_region(struct rd_data_wr *wr, struct wr_region *r)
{
	if (wr->nr_reg == wr->cap_reg) {
		size_t cap = wr->cap_reg ? wr->cap_reg * 2 : 8;
		struct wr_region **n = realloc(wr->reg, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		wr->reg = n;
		wr->cap_reg = cap;
	}
	wr->reg[wr->nr_reg++] = r;
	return 0;
}

void rd_data_wr_submit(struct rd_fs *fs, struct rd_data_wr *wr, const void *buf,
		       rd_data_wr_done_fn done, void *priv)
{
	const struct rd_geometry *g = &fs->s->geo;
	uint32_t bsec = g->block_size >> RD_SECTOR_SHIFT;
	uint32_t emax = g->encoded_extent_max >> RD_SECTOR_SHIFT;
	size_t span = (size_t)(wr->hi - wr->lo);
	const char *src = buf;
	uint64_t pos;

	assert(wr->state == WR_BEGUN);	/* submitted once */
	wr->done = done;
	wr->priv = priv;
	wr->state = WR_SUBMITTED;
	atomic_store(&wr->pending, 1);	/* ours, until every region is issued */
	atomic_store(&wr->err, 0);

	/* The caller's bytes are written in place when they already are whole aligned
	 * blocks; otherwise they are merged with the edges into one aligned copy. */
	if (wr->edge_head || wr->edge_tail || (uintptr_t)buf % 4096) {
		wr->bounce = rd_bufpool_get(span);
		if (!wr->bounce) {
			wr_set_err(wr, -ENOMEM);
			goto out;
		}
		if (wr->edge_head)
			memcpy(wr->bounce, wr->edge_head, g->block_size);
		if (wr->edge_tail)
			memcpy((char *)wr->bounce + span - g->block_size, wr->edge_tail,
			       g->block_size);
		memcpy((char *)wr->bounce + (wr->off - wr->lo), buf, wr->len);
		src = wr->bounce;
	}

	for (pos = wr->lo; pos < wr->hi;) {
		uint64_t want = (wr->hi - pos) >> RD_SECTOR_SHIFT;
		struct wr_region *r = calloc(1, sizeof(*r));
		size_t n;
		int ret;

		if (want > emax)
			want = emax;
		if (!r) {
			wr_set_err(wr, -ENOMEM);
			break;
		}
		/* Minimum one block: the reservation counted on taking any tail of a bucket. */
		ret = rd_alloc_sectors(fs->s, RD_WP_USER, (uint32_t)want, bsec, &r->span);
		if (!ret && (ret = wr_add_region(wr, r)))
			rd_alloc_span_put(fs->s, &r->span);
		if (ret) {
			free(r);
			wr_set_err(wr, rd_errno(ret));
			break;
		}
		n = (size_t)r->span.sectors << RD_SECTOR_SHIFT;
		assert(n && !(n % g->block_size) && pos + n <= wr->hi);	/* whole blocks */
		r->wr = wr;
		r->sector = pos >> RD_SECTOR_SHIFT;
		/* The checksum covers exactly the bytes handed to the device. */
		r->csum = rd_csum((enum rd_csum_type)g->data_csum, src + (pos - wr->lo), n);
		r->req = (struct rd_io_req){
			.op = RD_IO_WRITE, .fd = -1, .buf = (void *)(src + (pos - wr->lo)),
			.off = r->span.offset, .len = n, .end_io = region_end_io, .priv = r,
		};
		atomic_fetch_add(&wr->pending, 1);
		rd_io_submit(fs->s->io, &r->req);
		pos += n;
	}
out:
	wr_put_pending(wr);
}

void rd_data_wr_abort(struct rd_fs *fs, struct rd_data_wr *wr)
{
	(void)fs;
	/* Whatever was written stays unreferenced: the spans go back without any extent
	 * ever naming them, so their bucket empties as if they were never written. */
	wr_release(wr);
}

int rd_data_commit_inode(struct rd_fs *fs, struct rd_inode *ip, struct rd_trans *t,
			 const struct rd_inode_mem *old)
{
	uint64_t seq;
	int ret;

	(void)fs;
	ret = rd_inode_write(t, ip);
	if (ret) {
		rd_trans_free(t);
		ip->i = *old;
		return ret;
	}
	ret = rd_trans_commit(t, &seq);
	if (ret) {
		ip->i = *old;
		return rd_errno(ret);
	}
	ip->last_seq = seq;
	return 0;
}

static uint64_t region_end(const struct wr_region *r)
{
	return r->sector + r->span.sectors;
}

/*
 * Regions [i, *j) to commit in the next transaction, and in *l every old extent they
 * overlap. Bounded so the transaction stays far inside one journal entry: at most
 * RD_DATA_TXN_OPS old extents (unless one region alone overlaps more) and as many new.
 */
static int wr_next_batch(struct rd_data_wr *wr, size_t i, size_t *j, struct rd_extent_list *l)
{
	struct rd_store *s = wr->fs->s;
	uint64_t b_lo = wr->reg[i]->sector, w_hi = wr->hi >> RD_SECTOR_SHIFT;
	size_t k = i, maxnew = RD_DATA_TXN_OPS;
	bool more;
	int ret;

	assert(i < wr->nr_reg);
	l->nr = 0;
	ret = rd_extents_collect(s, wr->ip->ino, b_lo, w_hi, RD_DATA_TXN_OPS, l, &more);
	if (ret)
		return ret;
	if (!more) {
		k = wr->nr_reg;
	} else {
		/* Extents past the last one collected were left out: only regions ending
		 * before it are fully covered by the list. */
		uint64_t x = l->e[l->nr - 1].end;

		while (k < wr->nr_reg && region_end(wr->reg[k]) <= x)
			k++;
	}
	if (k - i > maxnew)
		k = i + maxnew;
	if (k == i) {
		/* One region overlapping very many extents: take it alone, all of them. */
		k = i + 1;
		l->nr = 0;
		ret = rd_extents_collect(s, wr->ip->ino, b_lo, region_end(wr->reg[i]), 0, l,
					 &more);
	}
	assert(k > i && k <= wr->nr_reg);
	*j = k;
	return ret;
}

static ssize_t wr_commit(struct rd_fs *fs, struct rd_data_wr *wr, bool trunc,
			 uint64_t punch_lo, uint64_t new_size, uint64_t *seq_out)
{
	const struct rd_geometry *g = &fs->s->geo;
	struct rd_inode *ip = wr->ip;
	struct rd_extent_list l = { 0 };
	uint64_t woff = wr->off, committed = woff, wend = woff + wr->len, last_seq = 0;
	size_t i = 0;
	int ret = 0;

	if (wr->state != WR_SUBMITTED || atomic_load(&wr->pending)) {
		ret = -EINVAL;	/* commit before done: a caller bug, nothing is indexed */
		goto out;
	}
	ret = atomic_load(&wr->err);
	if (ret)
		goto out;

	rd_inode_lock(ip);
	/* Invariant: every extent change of this inode happens under ip->lock, so the old
	 * extents collected here are exactly what the transaction replaces. */
	while (i < wr->nr_reg && !ret) {
		struct rd_inode_mem old = ip->i;
		uint64_t removed = 0, removed2 = 0, added = 0, b_hi, seq;
		struct rd_trans *t;
		size_t j;
		bool last;

		ret = wr_next_batch(wr, i, &j, &l);
		if (ret)
			break;
		last = j == wr->nr_reg;
		b_hi = region_end(wr->reg[j - 1]);
		t = rd_trans_new(fs->s);
		if (!t) {
			ret = -ENOMEM;
			break;
		}
		/* Old extents go first: the new keys may take their positions. */
		ret = rd_extents_punch(t, fs->s, ip->ino, wr->reg[i]->sector, b_hi, l.e, l.nr,
				       &removed);
		if (!ret && trunc && last) {
			bool more;

			l.nr = 0;
			ret = rd_extents_collect(fs->s, ip->ino, punch_lo, UINT64_MAX, 0, &l, &more);
			if (!ret)
				ret = rd_extents_punch(t, fs->s, ip->ino, punch_lo, UINT64_MAX, l.e,
						       l.nr, &removed2);
		}
		for (size_t k = i; k < j && !ret; k++) {
			const struct wr_region *r = wr->reg[k];
			struct rd_extent e = {
				.end = region_end(r), .size = r->span.sectors,
				.dev_offset = r->span.offset, .gen = r->span.gen,
				.region_sectors = r->span.sectors, .region_offset = 0,
				.csum_type = g->data_csum, .flags = 0, .csum = r->csum,
			};

			ret = rd_extents_insert(t, fs->s, ip->ino, &e);
			added += e.size;
		}
		if (ret) {
			rd_trans_free(t);
			break;
		}
		removed += removed2;
		ip->i.sectors = old.sectors + added >= removed ? old.sectors + added - removed : 0;
		if (trunc && last) {
			ip->i.size = new_size;
		} else if (!(wr->flags & RD_DATA_WR_NO_EXTEND)) {
			uint64_t data_end = b_hi << RD_SECTOR_SHIFT;

			if (data_end > wend)
				data_end = wend;
			if (data_end > ip->i.size)
				ip->i.size = data_end;
		}
		ip->i.mtime = ip->i.ctime = rd_now_ns();
		ret = rd_data_commit_inode(fs, ip, t, &old);
		if (ret)
			break;
		seq = ip->last_seq;
		last_seq = seq;
		atomic_fetch_add(&fs->st.extents_written, j - i);
		committed = b_hi << RD_SECTOR_SHIFT;
		if (committed > wend)
			committed = wend;
		if (committed < wr->off)
			committed = wr->off;
		i = j;
	}
	rd_inode_unlock(ip);
	rd_extent_list_free(&l);

	if (seq_out)
		*seq_out = last_seq;
	/* (User writes are counted whole by the dio sink, dio_fs.c; bytes here, per piece.) */
	if (committed > wr->off && !(wr->flags & RD_DATA_WR_INTERNAL))
		atomic_fetch_add(&fs->st.write_bytes, committed - wr->off);
out:
	wr_release(wr);
	if (committed > woff || !ret)
		return (ssize_t)(committed - woff);
	return ret;
}

ssize_t rd_data_wr_commit(struct rd_fs *fs, struct rd_data_wr *wr, uint64_t *seq)
{
	return wr_commit(fs, wr, false, 0, 0, seq);
}

ssize_t rd_data_wr_commit_truncate(struct rd_fs *fs, struct rd_data_wr *wr, uint64_t punch_lo,
				   uint64_t size, uint64_t *seq)
{
	return wr_commit(fs, wr, true, punch_lo, size, seq);
}

/* ---- waiting for a submit ---------------------------------------------------------- */

void rd_data_wait_done(void *priv, int err)
{
	rd_completion_done(priv, err);
}

/* ---- one piece, waited for --------------------------------------------------------- */

ssize_t rd_data_write_once(struct rd_fs *fs, struct rd_inode *ip, const void *buf, size_t len,
			   uint64_t off, unsigned flags)
{
	struct rd_completion w;
	struct rd_data_wr *wr;
	int ret;

	ret = rd_data_wr_begin(fs, ip, off, len, flags, &wr);
	if (ret)
		return ret;
	rd_completion_init(&w);
	rd_data_wr_submit(fs, wr, buf, rd_data_wait_done, &w);
	ret = (int)rd_completion_wait(&w);
	if (ret) {
		rd_data_wr_abort(fs, wr);
		return ret;
	}
	return rd_data_wr_commit(fs, wr, NULL);
}
