/*
 * data_ops.c - the file-data operations that are not reads or writes: truncate, fallocate,
 * SEEK_DATA/SEEK_HOLE, fsync.
 *
 * Owns: the tail invariant. Every byte of a file at or past i_size reads as zero if i_size
 * later grows: no written extent lies wholly past i_size (truncate removes them, writes
 * never put them there), and the bytes of the last partial block past i_size are zeros on
 * disk (truncate zeroes them, writes merge zeros there). Unwritten extents (fallocate) may
 * lie past i_size: they read as zeros. The write path relies on this: an edge block wholly
 * at or past i_size is zeros and needs no read.
 *
 * Crash behaviour: each transaction is atomic and leaves i_size, sectors and the extents
 * consistent. A shrinking truncate that must remove more extents than one transaction
 * takes removes them from the end of the file downwards, lowering i_size with each
 * transaction, so a crash part-way leaves the file cut at a block boundary between the new
 * and the old size: a prefix of its old contents, never a hole that was not there. The
 * last transaction carries the zeroed tail block and the final i_size.
 *
 * Must never: change extents or i_size without holding a range lock that covers them and
 * the inode lock, or leave a reservation or span reference behind.
 */
#include <assert.h>
#include <errno.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "data_int.h"
#include "refdio/errors.h"
#include "extents.h"

/* ---- helpers ----------------------------------------------------------------------- */

static uint64_t inode_size(struct rd_inode *ip)
{
	uint64_t size;

	rd_inode_lock(ip);
	size = ip->i.size;
	rd_inode_unlock(ip);
	return size;
}

/* Whether the block at boff holds written data (not a hole, not unwritten). Caller holds a
 * range lock covering it. */
static int block_has_data(struct rd_fs *fs, struct rd_inode *ip, uint64_t boff)
{
	struct rd_extent_list l = { 0 };
	uint64_t bs = rd_data_bs(fs);
	bool more;
	int ret;

	ret = rd_extents_collect(fs->s, ip->ino, boff >> RD_SECTOR_SHIFT,
				 (boff + bs) >> RD_SECTOR_SHIFT, 0, &l, &more);
	for (size_t i = 0; !ret && i < l.nr; i++)
		if (!rd_extent_unwritten(&l.e[i]))
			ret = 1;
	rd_extent_list_free(&l);
	return ret;
}

/* Writes zeros over [off, end) of one block, if that block holds data. Range locked. */
static int zero_partial(struct rd_fs *fs, struct rd_inode *ip, uint64_t off, uint64_t end)
{
	uint64_t bs = rd_data_bs(fs);
	void *z;
	ssize_t n;
	int ret;

	if (off >= end)
		return 0;
	assert(rd_round_down(off, bs) == rd_round_down(end - 1, bs));	/* one block */
	ret = block_has_data(fs, ip, rd_round_down(off, bs));
	if (ret <= 0)
		return ret;
	z = calloc(1, (size_t)(end - off));
	if (!z)
		return -ENOMEM;
	n = rd_data_write_once(fs, ip, z, (size_t)(end - off), off,
			       RD_DATA_WR_LOCKED | RD_DATA_WR_NO_EXTEND | RD_DATA_WR_INTERNAL);
	free(z);
	if (n < 0)
		return (int)n;
	return (uint64_t)n == end - off ? 0 : -EIO;
}

/* Puts the spans of a failed or finished fill back and drops its reservation. */
static void spans_put(struct rd_fs *fs, struct rd_alloc_span *sp, size_t nr, uint64_t resv)
{
	for (size_t i = 0; i < nr; i++)
		rd_alloc_span_put(fs->s, &sp[i]);
	if (resv)
		rd_alloc_unreserve(fs->s, resv);
}

/*
 * Makes sectors [lo, hi) of ip unwritten extents backed by real space: every hole in it
 * (replace false), or all of it, after removing what was there (replace true). Then i_size
 * grows to at least min_size. In windows of at most RD_DATA_TXN_OPS extent changes, each
 * reserved (-ENOSPC before it changes anything) and committed alone. Range locked.
 */
static int fill_unwritten(struct rd_fs *fs, struct rd_inode *ip, uint64_t lo, uint64_t hi,
			  bool replace, uint64_t min_size)
{
	const struct rd_geometry *g = &fs->s->geo;
	uint32_t bsec = g->block_size >> RD_SECTOR_SHIFT;
	uint32_t emax = g->encoded_extent_max >> RD_SECTOR_SHIFT;
	/* Per window: at most TXN_OPS/4 * emax sectors, so at most TXN_OPS/4 new extents
	 * plus one per bucket boundary, and at most TXN_OPS old ones. */
	uint64_t cap = (uint64_t)(RD_DATA_TXN_OPS / 4) * emax;
	struct rd_extent_list l = { 0 };
	struct rd_alloc_span *sp;
	uint64_t (*tg)[2] = NULL;	/* the window's ranges to fill */
	uint64_t cur = lo;
	int ret = 0;

	assert(lo <= hi && !(lo % bsec) && !(hi % bsec));	/* whole blocks */
	sp = calloc(RD_DATA_TXN_OPS, sizeof(*sp));
	tg = calloc(RD_DATA_TXN_OPS + 1, sizeof(*tg));
	if (!sp || !tg) {
		ret = -ENOMEM;
		goto out;
	}
	do {
		struct rd_inode_mem old;
		struct rd_trans *t = NULL;
		uint64_t wend = hi - cur > cap ? cur + cap : hi, want = 0, resv = 0, removed = 0;
		uint64_t added = 0, h = cur;
		size_t nsp = 0, ntg = 0, k;
		bool more;

		rd_inode_lock(ip);
		old = ip->i;
		l.nr = 0;
		ret = rd_extents_collect(fs->s, ip->ino, cur, wend, RD_DATA_TXN_OPS, &l, &more);
		if (ret)
			goto unlock;
		if (more && l.e[l.nr - 1].end < wend)
			wend = l.e[l.nr - 1].end;
		if (replace) {
			if (cur < wend) {
				tg[0][0] = cur;
				tg[0][1] = wend;
				ntg = 1;
			}
		} else {
			/* The holes between the extents (which are in order, not overlapping). */
			for (k = 0; k < l.nr && h < wend; k++) {
				uint64_t s = rd_extent_start(&l.e[k]);

				if (s > h) {
					tg[ntg][0] = h;
					tg[ntg++][1] = s < wend ? s : wend;
				}
				if (l.e[k].end > h)
					h = l.e[k].end;
			}
			if (h < wend) {
				tg[ntg][0] = h;
				tg[ntg++][1] = wend;
			}
		}
		for (k = 0; k < ntg; k++)
			want += tg[k][1] - tg[k][0];
		if (want) {
			ret = rd_alloc_reserve(fs->s, want);
			if (ret)
				goto unlock;
			resv = want;
		}
		t = rd_trans_new(fs->s);
		if (!t) {
			ret = -ENOMEM;
			goto unlock;
		}
		if (replace)
			ret = rd_extents_punch(t, fs->s, ip->ino, cur, wend, l.e, l.nr, &removed);
		for (k = 0; k < ntg && !ret; k++) {
			for (h = tg[k][0]; h < tg[k][1] && !ret;) {
				uint64_t n = tg[k][1] - h;
				struct rd_extent e;

				if (nsp == RD_DATA_TXN_OPS) {
					ret = -E2BIG;	/* cannot happen with the window cap */
					break;
				}
				ret = rd_alloc_sectors(fs->s, RD_WP_USER,
						       (uint32_t)(n > emax ? emax : n), bsec, &sp[nsp]);
				if (ret) {
					ret = rd_errno(ret);
					break;
				}
				e = (struct rd_extent){
					.end = h + sp[nsp].sectors, .size = sp[nsp].sectors,
					.dev_offset = sp[nsp].offset, .gen = sp[nsp].gen,
					.region_sectors = sp[nsp].sectors, .region_offset = 0,
					.csum_type = RD_CSUM_NONE, .flags = RD_EXTENT_UNWRITTEN,
				};
				nsp++;
				ret = rd_extents_insert(t, fs->s, ip->ino, &e);
				added += e.size;
				h += e.size;
			}
		}
		if (ret)
			goto unlock;
		ip->i.sectors = old.sectors + added >= removed ? old.sectors + added - removed : 0;
		if (wend == hi && min_size > ip->i.size) {
			ip->i.size = min_size;
			ip->i.mtime = rd_now_ns();
		}
		if (replace)
			ip->i.mtime = rd_now_ns();
		ip->i.ctime = rd_now_ns();
		ret = rd_data_commit_inode(fs, ip, t, &old);
		t = NULL;
		if (!ret)
			atomic_fetch_add(&fs->st.extents_written, nsp);
unlock:
		rd_inode_unlock(ip);
		if (t)
			rd_trans_free(t);
		spans_put(fs, sp, nsp, resv);
		cur = wend;
	} while (!ret && cur < hi);
out:
	free(sp);
	free(tg);
	rd_extent_list_free(&l);
	return ret;
}

/* Removes every extent in sectors [lo, hi), in windows, ascending. Range locked. */
static int punch_range(struct rd_fs *fs, struct rd_inode *ip, uint64_t lo, uint64_t hi)
{
	struct rd_extent_list l = { 0 };
	uint64_t cur = lo;
	int ret = 0;

	while (!ret && cur < hi) {
		struct rd_inode_mem old;
		struct rd_trans *t;
		uint64_t wend = hi, removed = 0;
		bool more;

		rd_inode_lock(ip);
		old = ip->i;
		l.nr = 0;
		ret = rd_extents_collect(fs->s, ip->ino, cur, hi, RD_DATA_TXN_OPS, &l, &more);
		if (ret || !l.nr) {
			rd_inode_unlock(ip);
			break;
		}
		if (more && l.e[l.nr - 1].end < wend)
			wend = l.e[l.nr - 1].end;
		t = rd_trans_new(fs->s);
		ret = t ? rd_extents_punch(t, fs->s, ip->ino, cur, wend, l.e, l.nr, &removed)
			: -ENOMEM;
		if (ret) {
			rd_trans_free(t);
		} else {
			ip->i.sectors = old.sectors >= removed ? old.sectors - removed : 0;
			ip->i.mtime = ip->i.ctime = rd_now_ns();
			ret = rd_data_commit_inode(fs, ip, t, &old);
		}
		rd_inode_unlock(ip);
		cur = wend;
	}
	rd_extent_list_free(&l);
	return ret;
}

/* ---- truncate ---------------------------------------------------------------------- */

/* Up to max extents of ino ending after sector cut, from the end of the file downwards.
 * *more: whether more remain below the last one. */
static int collect_top(struct rd_fs *fs, uint64_t ino, uint64_t cut, size_t max,
		       struct rd_extent_list *l, bool *more)
{
	uint64_t to = UINT64_MAX;
	int ret = 0;

	*more = false;
	l->nr = 0;
	while (to > cut) {
		struct rd_bkey *k;
		struct rd_extent e;

		if (l->nr == max) {
			*more = true;
			break;
		}
		ret = rd_btree_peek_prev(fs->s, RD_BTREE_EXTENTS, RD_POS(ino, cut + 1),
					 RD_POS(ino, to), &k);
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (ret)
			return rd_errno(ret);
		ret = rd_extent_unpack(fs->s, k, &e);
		free(k);
		if (ret)
			return ret;
		if (l->nr == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct rd_extent *n = realloc(l->e, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			l->e = n;
			l->cap = cap;
		}
		l->e[l->nr++] = e;
		to = e.end - 1;
	}
	return ret;
}

/* Lowers the file from the top while more than one transaction's worth of extents lie
 * past sector cut (all of them if all), never below new_size (see the crash behaviour
 * above). Range locked from the cut on. */
static int truncate_top_batches(struct rd_fs *fs, struct rd_inode *ip, uint64_t cut,
				uint64_t new_size, bool all)
{
	struct rd_extent_list l = { 0 };
	int ret = 0;

	for (;;) {
		struct rd_inode_mem old;
		struct rd_trans *t;
		uint64_t low, removed = 0;
		bool more;

		rd_inode_lock(ip);
		ret = collect_top(fs, ip->ino, cut, RD_DATA_TXN_OPS, &l, &more);
		if (ret || !l.nr || (!more && !all)) {
			rd_inode_unlock(ip);
			break;
		}
		/* Descending: the last one collected is the lowest, and lies past cut. */
		low = rd_extent_start(&l.e[l.nr - 1]);
		if (low < cut)
			low = cut;
		old = ip->i;
		t = rd_trans_new(fs->s);
		ret = t ? rd_extents_punch(t, fs->s, ip->ino, low, UINT64_MAX, l.e, l.nr,
					   &removed) : -ENOMEM;
		if (ret) {
			rd_trans_free(t);
		} else {
			uint64_t mid = low << RD_SECTOR_SHIFT;

			if (mid < new_size)
				mid = new_size;
			ip->i.sectors = old.sectors >= removed ? old.sectors - removed : 0;
			if (mid < ip->i.size)
				ip->i.size = mid;
			ip->i.mtime = ip->i.ctime = rd_now_ns();
			ret = rd_data_commit_inode(fs, ip, t, &old);
		}
		rd_inode_unlock(ip);
		if (ret || !more)
			break;
	}
	rd_extent_list_free(&l);
	return ret;
}

/*
 * Begins the write of zeros over [new_size, its block's end) for a shrinking truncate. On
 * a full device, first removes everything past the cut (that may empty buckets), lowering
 * i_size to the cut, then tries again: -ENOSPC only if that did not free a block either
 * (the file is then cut at the block boundary above new_size).
 */
static int truncate_tail_begin(struct rd_fs *fs, struct rd_inode *ip, uint64_t new_size,
			       uint64_t cut, struct rd_data_wr **wr)
{
	uint64_t bs = rd_data_bs(fs);
	size_t zlen = (size_t)(bs - new_size % bs);
	unsigned flags = RD_DATA_WR_LOCKED | RD_DATA_WR_NO_EXTEND | RD_DATA_WR_INTERNAL;
	struct rd_completion w;
	void *z;
	int ret;

	z = calloc(1, zlen);
	if (!z)
		return -ENOMEM;
	ret = rd_data_wr_begin(fs, ip, new_size, zlen, flags, wr);
	if (ret == -ENOSPC) {
		ret = truncate_top_batches(fs, ip, cut, new_size, true);
		if (!ret)
			ret = rd_data_wr_begin(fs, ip, new_size, zlen, flags, wr);
	}
	if (!ret) {
		rd_completion_init(&w);
		rd_data_wr_submit(fs, *wr, z, rd_data_wait_done, &w);
		ret = (int)rd_completion_wait(&w);
		if (ret) {
			rd_data_wr_abort(fs, *wr);
			*wr = NULL;
		}
	}
	free(z);
	return ret;
}

/* The last step of a truncate without a tail block to zero: the remaining extents past
 * sector cut, and i_size. */
static int truncate_final(struct rd_fs *fs, struct rd_inode *ip, uint64_t cut,
			  uint64_t new_size)
{
	struct rd_extent_list l = { 0 };
	struct rd_inode_mem old;
	struct rd_trans *t = NULL;
	uint64_t removed = 0;
	bool more;
	int ret;

	rd_inode_lock(ip);
	old = ip->i;
	ret = rd_extents_collect(fs->s, ip->ino, cut, UINT64_MAX, 0, &l, &more);
	if (!ret && !l.nr && new_size == ip->i.size)
		goto unlock;	/* nothing to change */
	if (!ret) {
		t = rd_trans_new(fs->s);
		if (!t)
			ret = -ENOMEM;
	}
	if (!ret)
		ret = rd_extents_punch(t, fs->s, ip->ino, cut, UINT64_MAX, l.e, l.nr, &removed);
	if (ret) {
		rd_trans_free(t);
		goto unlock;
	}
	ip->i.sectors = old.sectors >= removed ? old.sectors - removed : 0;
	ip->i.size = new_size;
	ip->i.mtime = ip->i.ctime = rd_now_ns();
	ret = rd_data_commit_inode(fs, ip, t, &old);
unlock:
	rd_inode_unlock(ip);
	rd_extent_list_free(&l);
	return ret;
}

int rd_data_truncate(struct rd_fs *fs, struct rd_inode *ip, uint64_t new_size)
{
	uint64_t bs = rd_data_bs(fs), s0, s1, lo, cut;
	struct rd_data_wr *wr = NULL;
	struct rd_data_inode *d;
	struct rd_range range;
	int ret;

	if (S_ISDIR(ip->i.mode))
		return -EISDIR;
	if (!S_ISREG(ip->i.mode) && !S_ISLNK(ip->i.mode))
		return -EINVAL;
	if (new_size > RD_DATA_MAX_FILE)
		return -EFBIG;
	d = rd_data_inode_of(ip);
	if (!d)
		return -ENOMEM;
	/* Lock from the lower of the two sizes on: i_size moves, and whatever lies past it. */
	for (;;) {
		s0 = inode_size(ip);
		lo = rd_round_down(s0 < new_size ? s0 : new_size, bs);
		rd_range_lock(d, &range, lo, UINT64_MAX);
		s1 = inode_size(ip);
		if (rd_round_down(s1 < new_size ? s1 : new_size, bs) >= lo)
			break;
		rd_range_unlock(d, &range);
	}

	if (new_size > s1) {
		/* Growing: the bytes past the old size already read as zeros, and what lies
		 * past it (preallocated, unwritten) becomes part of the file. */
		struct rd_inode_mem old;
		struct rd_trans *t;

		ret = 0;
		rd_inode_lock(ip);
		if (new_size != ip->i.size) {
			old = ip->i;
			t = rd_trans_new(fs->s);
			if (!t) {
				ret = -ENOMEM;
			} else {
				ip->i.size = new_size;
				ip->i.mtime = ip->i.ctime = rd_now_ns();
				ret = rd_data_commit_inode(fs, ip, t, &old);
			}
		}
		rd_inode_unlock(ip);
		goto out;
	}

	/* Shrinking, or the same size: whatever lies past the new size's block goes
	 * (preallocations past the end included: a deleted file is truncated to 0). */
	cut = rd_round_up(new_size, bs) >> RD_SECTOR_SHIFT;
	/* The partial last block is rewritten with zeros past new_size, first (so a full
	 * device says ENOSPC before anything changed, as far as it can); it is indexed in
	 * the last step, with the final i_size. At the same size it already is. */
	if (new_size % bs && new_size < s1) {
		ret = block_has_data(fs, ip, rd_round_down(new_size, bs));
		if (ret > 0)
			ret = truncate_tail_begin(fs, ip, new_size, cut, &wr);
		if (ret < 0)
			goto out;
	}
	ret = truncate_top_batches(fs, ip, cut, new_size, false);
	if (ret) {
		if (wr)
			rd_data_wr_abort(fs, wr);
		goto out;
	}
	if (wr) {
		ssize_t n = rd_data_wr_commit_truncate(fs, wr, cut, new_size, NULL);

		ret = n < 0 ? (int)n : 0;
	} else {
		ret = truncate_final(fs, ip, cut, new_size);
	}
out:
	rd_range_unlock(d, &range);
	return ret;
}

/* ---- fallocate --------------------------------------------------------------------- */

/* Zeros the partial blocks at the edges of [off, end), as far as they lie inside i_size
 * (past it they read as zeros already). */
static int zero_edges(struct rd_fs *fs, struct rd_inode *ip, uint64_t off, uint64_t end)
{
	uint64_t bs = rd_data_bs(fs), size = inode_size(ip);
	uint64_t head_end = rd_round_up(off, bs), tail_start = rd_round_down(end, bs);
	int ret = 0;

	if (head_end > end)
		head_end = end;
	if (off % bs)
		ret = zero_partial(fs, ip, off, head_end < size ? head_end : size);
	/* The tail block, unless it is the head block (handled above). */
	if (!ret && end % bs && tail_start >= rd_round_up(off, bs))
		ret = zero_partial(fs, ip, tail_start, end < size ? end : size);
	return ret;
}

int rd_fs_fallocate(struct rd_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	uint64_t bs, end, blo, bhi;
	struct rd_data_inode *d;
	struct rd_inode *ip;
	struct rd_range range;
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	int ret;

	switch (mode) {
	case 0:
	case FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE:
	case FALLOC_FL_ZERO_RANGE:
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE:
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (!len)
		return -EINVAL;
	if (off >= RD_DATA_MAX_FILE || len > RD_DATA_MAX_FILE - off)
		return -EFBIG;
	ret = rd_inode_get_file(fs, ino, &ip);
	if (ret)
		return ret;
	d = rd_data_inode_of(ip);
	if (!d) {
		rd_inode_put(fs, ip);
		return -ENOMEM;
	}
	bs = rd_data_bs(fs);
	end = off + len;
	rd_range_lock(d, &range, rd_round_down(off, bs), rd_round_up(end, bs));
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		/* Partial edge blocks get zeros written; whole blocks lose their extents. */
		ret = zero_edges(fs, ip, off, end);
		blo = rd_round_up(off, bs);
		bhi = rd_round_down(end, bs);
		if (!ret && blo < bhi)
			ret = punch_range(fs, ip, blo >> RD_SECTOR_SHIFT, bhi >> RD_SECTOR_SHIFT);
	} else if (mode & FALLOC_FL_ZERO_RANGE) {
		/* Whole blocks become unwritten (zeros, space kept); edges get zeros. */
		ret = zero_edges(fs, ip, off, end);
		blo = rd_round_up(off, bs);
		bhi = rd_round_down(end, bs);
		if (!ret && blo < bhi)
			ret = fill_unwritten(fs, ip, blo >> RD_SECTOR_SHIFT, bhi >> RD_SECTOR_SHIFT,
					     true, keep ? 0 : end);
		else if (!ret && !keep && end > inode_size(ip))
			ret = fill_unwritten(fs, ip, 0, 0, false, end);	/* size only */
	} else {
		/* Holes become unwritten extents with real space; data stays. */
		ret = fill_unwritten(fs, ip, rd_round_down(off, bs) >> RD_SECTOR_SHIFT,
				     rd_round_up(end, bs) >> RD_SECTOR_SHIFT, false, keep ? 0 : end);
	}
	rd_range_unlock(d, &range);
	rd_inode_put(fs, ip);
	return ret;
}

/* ---- SEEK_DATA / SEEK_HOLE ----------------------------------------------------------- */

/*
 * Unwritten extents count as holes: they read as zeros and hold no data, so SEEK_DATA
 * skips them and SEEK_HOLE stops at them. Positions are block granular (extents are), and
 * the end of the file is a hole. A concurrent writer may move either answer: the result
 * is right for some moment during the call.
 */
int rd_fs_lseek(struct rd_fs *fs, uint64_t ino, uint64_t off, int whence, uint64_t *out)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_inode *ip;
	uint64_t size, cur = off;
	bool found = false;
	int ret;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	ret = rd_inode_get_file(fs, ino, &ip);
	if (ret)
		return ret;
	size = inode_size(ip);
	if (off >= size) {
		rd_inode_put(fs, ip);
		return -ENXIO;
	}
	rd_btree_iter_init(&it, fs->s, RD_BTREE_EXTENTS, RD_POS(ino, (off >> RD_SECTOR_SHIFT) + 1),
			   RD_POS(ino, UINT64_MAX));
	while (!found && cur < size && !(ret = rd_btree_iter_next(&it, &k))) {
		struct rd_extent e;
		uint64_t s, en;

		ret = rd_extent_unpack(fs->s, k, &e);
		if (ret)
			break;
		s = rd_extent_start(&e) << RD_SECTOR_SHIFT;
		en = e.end << RD_SECTOR_SHIFT;
		if (rd_extent_unwritten(&e))
			continue;
		if (whence == SEEK_DATA) {
			cur = s > cur ? s : cur;
			found = true;
		} else if (s > cur) {
			found = true;	/* a hole at cur */
		} else if (en > cur) {
			cur = en;
		}
	}
	rd_btree_iter_exit(&it);
	rd_inode_put(fs, ip);
	if (ret && ret != -ENOENT)
		return rd_errno(ret);
	if (whence == SEEK_DATA) {
		if (!found || cur >= size)
			return -ENXIO;
		*out = cur;
	} else {
		*out = cur < size ? cur : size;
	}
	return 0;
}

/* ---- fsync ------------------------------------------------------------------------- */

static uint64_t fsync_seq(struct rd_inode *ip)
{
	uint64_t seq;

	rd_inode_lock(ip);
	seq = ip->last_seq;
	rd_inode_unlock(ip);
	/* 0: no change since it was loaded. Its last change may still be in flight in the
	 * journal (the inode was evicted and read back): flush everything, which is safe. */
	return seq;
}

int rd_fs_fsync(struct rd_fs *fs, uint64_t ino, bool datasync)
{
	struct rd_inode *ip;
	int ret;

	(void)datasync;	/* data and metadata go through the same journal */
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		return ret;
	ret = rd_store_flush(fs->s, fsync_seq(ip));
	rd_inode_put(fs, ip);
	atomic_fetch_add(&fs->st.fsyncs, 1);
	return rd_errno(ret);
}

struct fsync_async {
	rd_fs_done_fn done;
	void *priv;
};

static void fsync_async_done(void *priv, int err)
{
	struct fsync_async *fa = priv;
	rd_fs_done_fn done = fa->done;
	void *p = fa->priv;

	free(fa);
	done(p, rd_errno(err));
}

void rd_fs_fsync_async(struct rd_fs *fs, uint64_t ino, bool datasync, rd_fs_done_fn done,
		       void *priv)
{
	struct fsync_async *fa;
	struct rd_inode *ip;
	uint64_t seq;
	int ret;

	(void)datasync;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret) {
		done(priv, ret);
		return;
	}
	seq = fsync_seq(ip);
	rd_inode_put(fs, ip);
	fa = malloc(sizeof(*fa));
	if (!fa) {
		done(priv, -ENOMEM);
		return;
	}
	fa->done = done;
	fa->priv = priv;
	atomic_fetch_add(&fs->st.fsyncs, 1);
	rd_store_flush_async(fs->s, seq, fsync_async_done, fa);
}
