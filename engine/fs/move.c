/*
 * move.c - copying garbage collection: the mover.
 *
 * Owns: struct rd_gc (the mover thread, its wake-ups and waiters, its counters), rounds
 * (choose victims, find the extents in them, move those), rd_fs_gc, and the reclaim hook
 * the allocator calls when a reservation runs short (alloc.h, rd_alloc_set_reclaim).
 *
 * A round: the allocator chooses victim buckets (least live data first, within the room
 * of the GC write point: alloc_gc.c). One walk of the extents tree finds every extent
 * pointing into a victim. They are moved a region at a time (the unit a checksum covers):
 *   1. try to take the file's range lock over the region's extents; if a writer holds
 *      any of it, leave the region (foreground I/O goes first; the next round sees it);
 *   2. under ip->lock, look the extents up again: those still pointing at the region are
 *      what moves (nobody can change them now: every extent change holds a range lock);
 *   3. read the whole region and verify its checksum (a mismatch: leave it, count it);
 *   4. write to new space on the GC write point: the region's bytes as they are, with
 *      the same checksum, when its extents cover all of it or when the checksum type may
 *      not be recomputed (must_copy_whole); else each extent's live part alone, with a
 *      checksum of exactly those (already verified) bytes: the dead part is not copied;
 *   5. one transaction, under ip->lock, replaces each extent key by one pointing at the
 *      new place (rd_extents_punch + rd_extents_insert: the buckets' counts move in the
 *      same transaction as the keys, -size in the victim, +size in the new bucket);
 *   6. release the spans and the range lock.
 * A victim whose count reaches 0 is freed by the allocator's ordinary rule: reusable once
 * that transaction is durable (alloc_free.h), so at a power cut before it the old keys,
 * and the bytes they name, are still there. The new bytes are written before the keys,
 * and the journal's pre-flush makes them stable before the entry naming them.
 *
 * Threads: the mover thread runs background rounds (free space under the low watermark)
 * and urgent ones (a reservation is waiting); rd_fs_gc runs rounds in its caller's thread.
 * run_lock serialises rounds. Locks a round takes, in order: a range lock (trylock only,
 * so a writer waiting for the mover while holding a range lock cannot deadlock it), the
 * inode lock, then the store's (inside commits and lookups). No lock of this file is held
 * across a round's I/O except run_lock. Inode references: taken for one inode's regions,
 * dropped after; the mover thread is stopped before the inode cache goes.
 *
 * Must never: change an extent's bytes (it copies them, verified, or leaves them), move a
 * region whose checksum fails, recompute a checksum of a type must_copy_whole names, wait
 * for a range lock, block the allocator's caller while holding any lock of its own, or
 * call the reclaim hook's wait from inside a round (it would wait for itself).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "csum.h"
#include "data_int.h"
#include "extents.h"
#include "io.h"
#include "refdio/errors.h"

/* Victims per round at most. */
#define GC_MAX_VICTIMS		64
/* Passes of the mover a reservation waits through while none wins space. */
#define GC_WAIT_PASSES		4
/* Rounds of one rd_fs_gc call at most (each must leave more empty buckets than before). */
#define GC_MAX_ROUNDS		4096

struct rd_gc {
	struct rd_fs		*fs;
	pthread_mutex_t		run_lock;	/* one round at a time */

	pthread_mutex_t		lock;		/* everything below */
	pthread_cond_t		cond;		/* state changed: wakes thread and waiters */
	pthread_t		thread;
	bool			started;
	bool			stop;
	bool			kick;		/* a background round is wanted */
	unsigned		waiters;	/* reservations waiting for a round */
	uint64_t		rounds_done;	/* passes of the thread's loop */
	int			last_gain;	/* empty buckets the last pass won (or error) */

	struct {
		atomic_uint_fast64_t rounds, buckets_freed, extents_moved, bytes_moved;
		atomic_uint_fast64_t bytes_read, skipped, waits;
	} st;
};

/* Set while a thread runs a round: the reclaim hook must not wait for itself. */
static _Thread_local bool in_round;

/* An extent found in a victim. */
struct gc_item {
	uint64_t bucket;	/* the victim it lies in */
	uint64_t ino;
	struct rd_extent e;
};

struct gc_list {
	struct gc_item *v;
	size_t nr, cap;
};

static int list_push(struct gc_list *l, uint64_t bucket, uint64_t ino,
		     const struct rd_extent *e)
{
	if (l->nr == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct gc_item *n = realloc(l->v, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		l->v = n;
		l->cap = cap;
	}
	l->v[l->nr++] = (struct gc_item){ .bucket = bucket, .ino = ino, .e = *e };
	return 0;
}

static int item_cmp(const void *x, const void *y)
{
	const struct gc_item *p = x, *q = y;

	if (p->ino != q->ino)
		return p->ino < q->ino ? -1 : 1;
	if (p->e.dev_offset != q->e.dev_offset)
		return p->e.dev_offset < q->e.dev_offset ? -1 : 1;
	return p->e.end < q->e.end ? -1 : p->e.end > q->e.end;
}

static int victim_cmp(const void *x, const void *y)
{
	const struct rd_alloc_victim *p = x, *q = y;

	return p->bucket < q->bucket ? -1 : p->bucket > q->bucket;
}

static bool same_region(const struct rd_extent *a, const struct rd_extent *b)
{
	return a->dev_offset == b->dev_offset && a->gen == b->gen &&
	       a->region_sectors == b->region_sectors && a->csum_type == b->csum_type &&
	       a->csum == b->csum && a->flags == b->flags;
}

/*
 * Whether a region must be copied whole, bytes and checksum as they are. A plain checksum
 * of bytes just verified may be recomputed over a part of them; a type that authenticates
 * (an AEAD tag, bound to a nonce and key) may not, so such regions move whole.
 */
static bool must_copy_whole(uint8_t csum_type)
{
	switch (csum_type) {
	case RD_CSUM_NONE:
	case RD_CSUM_CRC32C:
	case RD_CSUM_XXHASH:
		return false;
	default:
		return true;
	}
}

/* Walks the extents tree for extents pointing into the victims v[0..nv) (sorted). */
static int find_extents(struct rd_store *s, const struct rd_alloc_victim *v, size_t nv,
			struct gc_list *out)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	int ret;

	rd_btree_iter_init(&it, s, RD_BTREE_EXTENTS, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		struct rd_alloc_victim key, *hit;
		struct rd_extent e;

		if (k->type != RD_KEY_EXTENT)
			continue;
		ret = rd_extent_unpack(s, k, &e);
		if (ret)
			break;
		key.bucket = rd_alloc_bucket_of(s, e.dev_offset);
		hit = bsearch(&key, v, nv, sizeof(*v), victim_cmp);
		if (!hit || hit->gen != e.gen)
			continue;
		ret = list_push(out, key.bucket, k->pos.inode, &e);
		if (ret)
			break;
	}
	rd_btree_iter_exit(&it);
	return ret == -ENOENT ? 0 : ret;
}

/* The extents of ip in sectors [lo, hi) that still point at region r (under ip->lock). */
static int current_extents(struct rd_fs *fs, struct rd_inode *ip, uint64_t lo, uint64_t hi,
			   const struct rd_extent *r, struct rd_extent_list *l)
{
	struct rd_extent_list all = { 0 };
	bool more;
	int ret;

	l->nr = 0;
	ret = rd_extents_collect(fs->s, ip->ino, lo, hi, 0, &all, &more);
	for (size_t i = 0; !ret && i < all.nr; i++) {
		if (!same_region(&all.e[i], r))
			continue;
		if (l->nr == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			struct rd_extent *n = realloc(l->e, cap * sizeof(*n));

			if (!n) {
				ret = -ENOMEM;
				break;
			}
			l->e = n;
			l->cap = cap;
		}
		l->e[l->nr++] = all.e[i];
	}
	rd_extent_list_free(&all);
	return ret;
}

static bool same_list(const struct rd_extent_list *a, const struct rd_extent_list *b)
{
	if (a->nr != b->nr)
		return false;
	for (size_t i = 0; i < a->nr; i++)
		if (a->e[i].end != b->e[i].end || a->e[i].size != b->e[i].size ||
		    a->e[i].region_offset != b->e[i].region_offset ||
		    !same_region(&a->e[i], &b->e[i]))
			return false;
	return true;
}

static void *aligned_buf(size_t len)
{
	void *p = NULL;

	return posix_memalign(&p, 4096, len ? len : 4096) ? NULL : p;
}

/* One move in progress: the extents it moves, their new places and spans. */
struct gc_move {
	struct rd_extent_list old;	/* as looked up under the range lock */
	struct rd_extent *neu;		/* old.nr new extents */
	struct rd_alloc_span *span;	/* nspan spans held */
	size_t nspan;
	void *buf;
	uint64_t written, read;
};

static void move_release(struct rd_fs *fs, struct gc_move *m)
{
	for (size_t i = 0; i < m->nspan; i++)
		rd_alloc_span_put(fs->s, &m->span[i]);
	free(m->span);
	free(m->neu);
	free(m->buf);
	rd_extent_list_free(&m->old);
}

static int gc_alloc(struct rd_fs *fs, struct gc_move *m, uint32_t sectors,
		    struct rd_alloc_span **out)
{
	struct rd_alloc_span *sp = &m->span[m->nspan];
	int ret;

	ret = rd_alloc_sectors(fs->s, RD_WP_GC, sectors, sectors, sp);
	if (ret)
		return rd_errno(ret);
	m->nspan++;
	if (sp->sectors != sectors)
		return -EIO;	/* sizes are whole blocks: cannot happen */
	*out = sp;
	return 0;
}

/* Steps 3 and 4: reads, verifies and writes the region's live data to new space. */
static int move_data(struct rd_fs *fs, struct gc_move *m, const struct rd_extent *r)
{
	struct rd_store *s = fs->s;
	uint32_t bsec = s->geo.block_size >> RD_SECTOR_SHIFT;
	size_t rlen = (size_t)r->region_sectors << RD_SECTOR_SHIFT;
	uint64_t live = 0;
	bool whole;
	int ret;

	m->neu = calloc(m->old.nr, sizeof(*m->neu));
	m->span = calloc(m->old.nr, sizeof(*m->span));
	if (!m->neu || !m->span)
		return -ENOMEM;
	for (size_t i = 0; i < m->old.nr; i++) {
		live += m->old.e[i].size;
		if (m->old.e[i].size % bsec || m->old.e[i].region_offset % bsec)
			return -EINVAL;	/* not block aligned: left where it is */
	}
	if (r->region_sectors % bsec)
		return -EINVAL;

	if (rd_extent_unwritten(r)) {
		/* Nothing to read or write: reads give zeros. Each extent gets its own space. */
		for (size_t i = 0; i < m->old.nr; i++) {
			struct rd_alloc_span *sp = NULL;

			ret = gc_alloc(fs, m, m->old.e[i].size, &sp);
			if (ret)
				return ret;
			m->neu[i] = m->old.e[i];
			m->neu[i].dev_offset = sp->offset;
			m->neu[i].gen = sp->gen;
			m->neu[i].region_sectors = m->old.e[i].size;
			m->neu[i].region_offset = 0;
		}
		return 0;
	}

	m->buf = aligned_buf(rlen);
	if (!m->buf)
		return -ENOMEM;
	ret = rd_io_read(s->io, m->buf, rlen, r->dev_offset);
	if (ret)
		return rd_errno(ret);
	m->read = rlen;
	if (r->csum_type != RD_CSUM_NONE &&
	    rd_csum((enum rd_csum_type)r->csum_type, m->buf, rlen) != r->csum) {
		atomic_fetch_add(&fs->st.csum_errors, 1);
		fprintf(stderr, "refdio: gc: region at %" PRIu64 " fails its checksum: left "
			"where it is\n", r->dev_offset);
		return -EIO;
	}

	whole = must_copy_whole(r->csum_type) || live == r->region_sectors;
	if (whole) {
		struct rd_alloc_span *sp = NULL;

		ret = gc_alloc(fs, m, r->region_sectors, &sp);
		if (!ret)
			ret = rd_io_write(s->io, m->buf, rlen, sp->offset);
		if (ret)
			return rd_errno(ret);
		m->written += rlen;
		for (size_t i = 0; i < m->old.nr; i++) {
			m->neu[i] = m->old.e[i];
			m->neu[i].dev_offset = sp->offset;
			m->neu[i].gen = sp->gen;
		}
		return 0;
	}
	/* Narrowing: each extent's live bytes alone, checksummed as copied. */
	for (size_t i = 0; i < m->old.nr; i++) {
		const struct rd_extent *o = &m->old.e[i];
		const char *src = (const char *)m->buf +
				  ((size_t)o->region_offset << RD_SECTOR_SHIFT);
		size_t n = (size_t)o->size << RD_SECTOR_SHIFT;
		struct rd_alloc_span *sp = NULL;

		ret = gc_alloc(fs, m, o->size, &sp);
		if (!ret)
			ret = rd_io_write(s->io, src, n, sp->offset);
		if (ret)
			return rd_errno(ret);
		m->written += n;
		m->neu[i] = *o;
		m->neu[i].dev_offset = sp->offset;
		m->neu[i].gen = sp->gen;
		m->neu[i].region_sectors = o->size;
		m->neu[i].region_offset = 0;
		m->neu[i].csum = rd_csum((enum rd_csum_type)o->csum_type, src, n);
	}
	return 0;
}

/* Step 5: the keys and the counts in one transaction (ip->lock held). */
static int move_commit(struct rd_fs *fs, struct rd_inode *ip, struct gc_move *m)
{
	struct rd_trans *t = rd_trans_new(fs->s);
	int ret = 0;

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < m->old.nr && !ret; i++) {
		const struct rd_extent *o = &m->old.e[i];
		uint64_t removed;

		ret = rd_extents_punch(t, fs->s, ip->ino, rd_extent_start(o), o->end, o, 1,
				       &removed);
		if (!ret)
			ret = rd_extents_insert(t, fs->s, ip->ino, &m->neu[i]);
	}
	if (ret) {
		rd_trans_free(t);
		return ret;
	}
	/* The file's contents, size and block count are unchanged: no inode update, and
	 * ip->last_seq stays: an fsync need not wait for a move (the old copy stays valid
	 * and unreused until this entry is durable). */
	return rd_errno(rd_trans_commit(t, NULL));
}

/*
 * Moves the extents of ip that point at region r and overlap file sectors [lo, hi); the
 * caller holds a range lock of ip covering them. 0 when moved or nothing is left to move;
 * 1 when left where it is (changed under us, damaged, not block aligned); -ENOSPC when
 * the GC write point is full; another negative errno on failure.
 */
static int move_region(struct rd_gc *gc, struct rd_inode *ip, const struct rd_extent *r,
		       uint64_t lo, uint64_t hi)
{
	struct rd_fs *fs = gc->fs;
	struct gc_move m = { 0 };
	struct rd_extent_list now = { 0 };
	int ret;

	rd_inode_lock(ip);
	ret = ip->dead ? 0 : current_extents(fs, ip, lo, hi, r, &m.old);
	rd_inode_unlock(ip);
	if (ret || !m.old.nr)
		goto out;

	ret = move_data(fs, &m, r);
	if (ret == -EIO || ret == -EINVAL) {
		ret = 1;
		goto out;
	}
	if (ret)
		goto out;

	rd_inode_lock(ip);
	/* The range lock kept every writer out; check it anyway before replacing keys. */
	ret = ip->dead ? 0 : current_extents(fs, ip, lo, hi, r, &now);
	if (!ret && !ip->dead && same_list(&now, &m.old))
		ret = move_commit(fs, ip, &m);
	else if (!ret)
		ret = 1;
	rd_inode_unlock(ip);
	if (!ret) {
		atomic_fetch_add(&gc->st.extents_moved, m.old.nr);
		atomic_fetch_add(&gc->st.bytes_moved, m.written);
	}
out:
	atomic_fetch_add(&gc->st.bytes_read, m.read);
	move_release(fs, &m);	/* after the commit: the spans kept the new buckets open */
	rd_extent_list_free(&now);
	return ret;
}

/* One inode's part of a victim: its items, a reference and a range lock over them. */
struct gc_part {
	const struct gc_item *items;
	size_t nr;
	struct rd_inode *ip;
	struct rd_data_inode *d;
	struct rd_range range;
	bool locked;
};

/*
 * Moves one victim's extents, items[0..nr) (sorted by inode, region, end). Every inode's
 * range is try-locked first: if any writer holds part of it, nothing of this victim is
 * moved (its room is not spent on a bucket that would stay in use). 0, 1 (left for later),
 * or a negative errno (-ENOSPC: the GC write point is full).
 */
static int move_victim(struct rd_gc *gc, const struct gc_item *items, size_t nr)
{
	struct rd_fs *fs = gc->fs;
	uint64_t bs = rd_data_bs(fs);
	struct gc_part *p;
	size_t np = 0, i, j;
	int ret = 0;

	p = calloc(nr, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (i = 0; i < nr; i = j) {
		uint64_t lo = rd_extent_start(&items[i].e), hi = items[i].e.end;
		struct gc_part *q = &p[np];

		for (j = i; j < nr && items[j].ino == items[i].ino; j++) {
			if (rd_extent_start(&items[j].e) < lo)
				lo = rd_extent_start(&items[j].e);
			if (items[j].e.end > hi)
				hi = items[j].e.end;
		}
		q->items = items + i;
		q->nr = j - i;
		if (rd_inode_get_file(fs, items[i].ino, &q->ip))
			continue;	/* deleted meanwhile: its extents went with it */
		np++;
		q->d = rd_data_inode_of(q->ip);
		if (!q->d) {
			ret = -ENOMEM;
			goto out;
		}
		if (rd_range_trylock(q->d, &q->range, rd_round_down(lo << RD_SECTOR_SHIFT, bs),
				     rd_round_up(hi << RD_SECTOR_SHIFT, bs))) {
			ret = 1;	/* a writer (or truncate) is there: it goes first */
			goto out;
		}
		q->locked = true;
	}
	for (size_t k = 0; k < np && ret <= 0; k++) {
		const struct gc_item *it = p[k].items;

		for (i = 0; i < p[k].nr && !ret; i = j) {
			uint64_t lo = rd_extent_start(&it[i].e), hi = it[i].e.end;

			for (j = i; j < p[k].nr && same_region(&it[j].e, &it[i].e); j++) {
				if (rd_extent_start(&it[j].e) < lo)
					lo = rd_extent_start(&it[j].e);
				if (it[j].e.end > hi)
					hi = it[j].e.end;
			}
			ret = move_region(gc, p[k].ip, &it[i].e, lo, hi);
			if (ret == 1) {
				atomic_fetch_add(&gc->st.skipped, 1);
				ret = 0;
			}
		}
	}
out:
	for (i = 0; i < np; i++) {
		if (p[i].locked)
			rd_range_unlock(p[i].d, &p[i].range);
		rd_inode_put(fs, p[i].ip);
	}
	free(p);
	return ret;
}

static int item_bucket_cmp(const void *x, const void *y)
{
	const struct gc_item *p = x, *q = y;

	if (p->bucket != q->bucket)
		return p->bucket < q->bucket ? -1 : 1;
	return item_cmp(x, y);
}

/*
 * One round: victims chosen, their extents found and moved, a victim at a time. *freed
 * gets the victims emptied. 0 (also when there was nothing to do: *freed 0), or a
 * negative errno (-ENOSPC: the GC write point filled up part-way; what was moved stays
 * moved).
 */
static int gc_round(struct rd_gc *gc, uint32_t max_live, uint64_t *freed)
{
	struct rd_fs *fs = gc->fs;
	struct rd_alloc_victim v[GC_MAX_VICTIMS];
	struct gc_list l = { 0 };
	size_t nv, i = 0;
	int ret;

	*freed = 0;
	ret = rd_alloc_gc_victims(fs->s, max_live, v, GC_MAX_VICTIMS, &nv);
	if (ret || !nv)
		return ret;
	atomic_fetch_add(&gc->st.rounds, 1);
	qsort(v, nv, sizeof(*v), victim_cmp);
	ret = find_extents(fs->s, v, nv, &l);
	if (!ret)
		qsort(l.v, l.nr, sizeof(*l.v), item_bucket_cmp);
	while (!ret && i < l.nr) {
		size_t j = i + 1;

		while (j < l.nr && l.v[j].bucket == l.v[i].bucket)
			j++;
		ret = move_victim(gc, l.v + i, j - i);
		if (ret == 1) {
			atomic_fetch_add(&gc->st.skipped, 1);
			ret = 0;
		}
		i = j;
	}
	free(l.v);
	for (i = 0; i < nv; i++) {
		struct rd_bucket b;

		if (!rd_alloc_bucket(fs->s, v[i].bucket, &b) &&
		    (b.gen != v[i].gen || !b.dirty_sectors))
			(*freed)++;
	}
	atomic_fetch_add(&gc->st.buckets_freed, *freed);
	return ret;
}

/* Highest live data a victim may hold: at least 1/16 of it must be dead. */
static uint32_t gc_max_live(const struct rd_alloc_gc_state *st)
{
	return (uint32_t)(st->bucket_sectors - st->bucket_sectors / 16);
}

enum gc_mode {
	GC_BACKGROUND,	/* under the low watermark: rounds until the high one */
	GC_URGENT,	/* a reservation waits: at least one round, then as background */
	GC_FULL,	/* rd_fs_gc: rounds while they win empty buckets */
};

/*
 * Rounds while they win empty buckets, as the mode says. Returns the empty buckets won
 * (>= 0) or a negative errno. run_lock held.
 */
static int gc_run(struct rd_gc *gc, enum gc_mode mode, struct rd_gc_report *rep)
{
	struct rd_alloc_gc_state st;
	uint64_t start;
	int ret = 0;

	rd_alloc_gc_state(gc->fs->s, &st);
	start = st.empty;
	if (rep)
		rep->empty_before = st.empty;
	for (unsigned n = 0; n < GC_MAX_ROUNDS; n++) {
		uint64_t before = st.empty, freed;
		struct rd_fs_stats s0, s1;

		if (mode != GC_FULL && (mode == GC_BACKGROUND || n) && st.empty >= st.high)
			break;
		rd_gc_stats(gc->fs, &s0);
		ret = gc_round(gc, gc_max_live(&st), &freed);
		rd_gc_stats(gc->fs, &s1);
		if (rep) {
			rep->rounds += s1.gc_rounds - s0.gc_rounds;
			rep->buckets_freed += freed;
			rep->extents_moved += s1.gc_extents_moved - s0.gc_extents_moved;
			rep->bytes_moved += s1.gc_bytes_moved - s0.gc_bytes_moved;
			rep->bytes_read += s1.gc_bytes_read - s0.gc_bytes_read;
			rep->skipped += s1.gc_skipped - s0.gc_skipped;
		}
		rd_alloc_gc_state(gc->fs->s, &st);
		if (getenv("RD_GC_DEBUG"))
			fprintf(stderr, "gc: mode %d round %u: %d, freed %" PRIu64 ", empty %" PRIu64
				" -> %" PRIu64 " (low %" PRIu64 " high %" PRIu64 "), %" PRIu64
				" candidates\n", mode, n, ret, freed, before, st.empty, st.low,
				st.high, st.candidates);
		if (ret == -ENOSPC)
			ret = 0;	/* the round filled its room: the next one sees more */
		if (ret || !freed || st.empty <= before)
			break;
	}
	if (rep)
		rep->empty_after = st.empty;
	if (ret)
		return ret;
	return st.empty > start ? (int)(st.empty - start > INT32_MAX ? INT32_MAX :
					st.empty - start) : 0;
}

/* ---- the thread and the hook ------------------------------------------------------- */

static void *gc_thread(void *arg)
{
	struct rd_gc *gc = arg;

	in_round = true;	/* this thread never waits for itself */
	pthread_mutex_lock(&gc->lock);
	while (!gc->stop) {
		bool urgent;
		int gain;

		if (!gc->kick && !gc->waiters) {
			pthread_cond_wait(&gc->cond, &gc->lock);
			continue;
		}
		urgent = gc->waiters > 0;
		gc->kick = false;
		pthread_mutex_unlock(&gc->lock);

		pthread_mutex_lock(&gc->run_lock);
		gain = gc_run(gc, urgent ? GC_URGENT : GC_BACKGROUND, NULL);
		pthread_mutex_unlock(&gc->run_lock);
		if (gain < 0 && gain != -ENOSPC)
			fprintf(stderr, "refdio: gc: a round failed: %s\n", rd_strerror(gain));

		pthread_mutex_lock(&gc->lock);
		gc->rounds_done++;
		gc->last_gain = gain;
		pthread_cond_broadcast(&gc->cond);
	}
	pthread_mutex_unlock(&gc->lock);
	return NULL;
}

/* rd_alloc_reclaim_fn: no lock of the allocator is held when it is called. */
static int gc_reclaim(void *priv, bool wait)
{
	struct rd_gc *gc = priv;
	uint64_t target;
	int gain = 0;

	if (in_round)
		return 0;
	pthread_mutex_lock(&gc->lock);
	if (gc->stop) {
		pthread_mutex_unlock(&gc->lock);
		return 0;
	}
	if (!wait) {
		if (!gc->kick) {
			gc->kick = true;
			pthread_cond_broadcast(&gc->cond);
		}
		pthread_mutex_unlock(&gc->lock);
		return 0;
	}
	atomic_fetch_add(&gc->st.waits, 1);
	/* Passes that start after this point: one already running may have chosen its
	 * victims before the shortage. The first pass that wins space ends the wait; after
	 * GC_WAIT_PASSES passes without a gain (what is left is live, or in ranges writers
	 * hold) the reservation fails. */
	target = gc->rounds_done + 1 + GC_WAIT_PASSES;
	if (!gc->waiters++)
		pthread_cond_broadcast(&gc->cond);
	while (!gc->stop && gc->rounds_done < target) {
		uint64_t seen = gc->rounds_done;

		pthread_cond_wait(&gc->cond, &gc->lock);
		if (gc->rounds_done != seen && gc->last_gain > 0)
			break;
	}
	gain = gc->stop ? 0 : gc->last_gain;
	gc->waiters--;
	pthread_mutex_unlock(&gc->lock);
	return gain > 0 ? 1 : 0;
}

/* The GC reserve: what the mover may write into when nothing else is empty. Victims fit
 * in 3/4 of its room (alloc_gc.c): 1/64 of the device, at least four buckets. */
static uint64_t gc_reserve_buckets(const struct rd_fs *fs)
{
	uint64_t n = fs->s->geo.last_bucket - fs->s->geo.first_bucket;

	return n / 64 > 4 ? n / 64 : 4;
}

int rd_gc_start(struct rd_fs *fs)
{
	struct rd_gc *gc = calloc(1, sizeof(*gc));
	int ret;

	if (!gc)
		return -ENOMEM;
	gc->fs = fs;
	pthread_mutex_init(&gc->run_lock, NULL);
	pthread_mutex_init(&gc->lock, NULL);
	pthread_cond_init(&gc->cond, NULL);
	fs->gc = gc;
	if (fs->s->read_only || fs->opts.no_gc)
		return 0;	/* counters only: rd_fs_gc may still run in its caller */
	ret = pthread_create(&gc->thread, NULL, gc_thread, gc);
	if (ret) {
		rd_gc_stop(fs);
		return -ret;
	}
	gc->started = true;
	rd_alloc_set_reclaim(fs->s, gc_reclaim, gc, gc_reserve_buckets(fs));
	return 0;
}

void rd_gc_stop(struct rd_fs *fs)
{
	struct rd_gc *gc = fs->gc;

	if (!gc)
		return;
	if (gc->started) {
		/* No reservation reaches the hook any more, then the thread ends; waiters
		 * (none should be left: user writes are drained) get "no gain". */
		rd_alloc_set_reclaim(fs->s, NULL, NULL, 0);
		pthread_mutex_lock(&gc->lock);
		gc->stop = true;
		pthread_cond_broadcast(&gc->cond);
		pthread_mutex_unlock(&gc->lock);
		pthread_join(gc->thread, NULL);
	}
	pthread_cond_destroy(&gc->cond);
	pthread_mutex_destroy(&gc->lock);
	pthread_mutex_destroy(&gc->run_lock);
	free(gc);
	fs->gc = NULL;
}

void rd_gc_stats(struct rd_fs *fs, struct rd_fs_stats *st)
{
	struct rd_gc *gc = fs->gc;

	st->gc_rounds = st->gc_buckets_freed = st->gc_extents_moved = 0;
	st->gc_bytes_moved = st->gc_bytes_read = st->gc_skipped = st->gc_waits = 0;
	if (!gc)
		return;
	st->gc_rounds = atomic_load(&gc->st.rounds);
	st->gc_buckets_freed = atomic_load(&gc->st.buckets_freed);
	st->gc_extents_moved = atomic_load(&gc->st.extents_moved);
	st->gc_bytes_moved = atomic_load(&gc->st.bytes_moved);
	st->gc_bytes_read = atomic_load(&gc->st.bytes_read);
	st->gc_skipped = atomic_load(&gc->st.skipped);
	st->gc_waits = atomic_load(&gc->st.waits);
}

int rd_fs_gc(struct rd_fs *fs, struct rd_gc_report *rep)
{
	struct rd_gc *gc = fs->gc;
	bool was;
	int ret;

	if (rep)
		*rep = (struct rd_gc_report){ 0 };
	if (fs->s->read_only)
		return -EROFS;
	if (!gc)
		return -EINVAL;
	pthread_mutex_lock(&gc->run_lock);
	was = in_round;
	in_round = true;
	ret = gc_run(gc, GC_FULL, rep);
	in_round = was;
	pthread_mutex_unlock(&gc->run_lock);
	return ret < 0 ? ret : 0;
}
