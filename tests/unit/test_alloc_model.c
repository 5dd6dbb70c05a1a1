/*
 * test_alloc_model.c - the allocator against a model, on the fake store (alloc_fake.h).
 *
 * A random sequence of writes (allocate, commit the extent, drop the span), failed writes,
 * partial and whole overwrites, checkpoints (b-tree nodes), flushes, crashes and clean
 * reopens runs against a model that knows, for every extent and node, the journal seq that
 * created and the one that removed it. After every step:
 *  - no new span or node overlaps anything that is live now OR would be live again after a
 *    crash (live in the durable state): the reuse rule, checked where it matters;
 *  - every live pointer is fresh (not stale), and dirty/b-tree sectors per bucket equal the
 *    model's sums; rd_alloc_space adds up.
 * After a crash the allocator is rebuilt from what was durable and must agree with the
 * model's durable state (rd_alloc_init would fail on a node pointer with a wrong gen).
 * Then many threads allocate, commit, overwrite, checkpoint and flush at once while an
 * ownership map checks that no sector is handed out twice (run under TSan too).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "../test.h"
#include "alloc_fake.h"
#include "alloc_free.h"

#define BSEC		(FAKE_BUCKET >> 9)
#define NSEC		(FAKE_NODE >> 9)
#define MAX_EXT		4096
#define MAX_NODES	64
#define MAX_CKPT	4096

struct ext {
	uint64_t off;
	uint32_t sectors;
	uint32_t gen;
	uint64_t add_seq;	/* committed at */
	uint64_t del_seq;	/* removed at; 0 = still live */
};

struct ckpt {
	uint64_t seq;
	size_t nr;
	uint64_t off[MAX_NODES];
	uint32_t gen[MAX_NODES];
};

static struct ext ext[MAX_EXT];
static size_t next;
static struct ckpt *ck;		/* ck[0]: the empty tree at seq 0 */
static size_t nck;
static uint64_t durable, seq_now;
static struct rd_alloc_span last_span;
static uint64_t nospc, ckpts, ckpt_nospc;
static size_t live_target;	/* overwrite harder above this many live extents */
static size_t nlive;

static bool live_now(const struct ext *e)
{
	return !e->del_seq;
}

static bool live_durable(const struct ext *e)
{
	return e->add_seq <= durable && (!e->del_seq || e->del_seq > durable);
}

/* The checkpoint a crash now would recover. */
static const struct ckpt *ck_durable(void)
{
	size_t i = nck;

	while (i > 1 && ck[i - 1].seq > durable)
		i--;
	return &ck[i - 1];
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* A fresh span or node must not touch anything live now or live after a crash. */
static void check_fresh(uint64_t off, uint32_t sectors)
{
	uint64_t len = (uint64_t)sectors << 9;
	const struct ckpt *d = ck_durable(), *c = &ck[nck - 1];

	for (size_t i = 0; i < next; i++)
		if (live_now(&ext[i]) || live_durable(&ext[i]))
			CHECK(!overlaps(off, len, ext[i].off, (uint64_t)ext[i].sectors << 9));
	for (size_t i = 0; i < d->nr; i++)
		CHECK(!overlaps(off, len, d->off[i], FAKE_NODE));
	for (size_t i = 0; i < c->nr; i++)
		CHECK(!overlaps(off, len, c->off[i], FAKE_NODE));
}

static void check_state(struct rd_store *s)
{
	static uint32_t dirty[FAKE_NB], bt[FAKE_NB];
	const struct ckpt *c = &ck[nck - 1];
	uint64_t user = 0, btree = 0, nuser = 0, nbtree = 0, empty = 0;
	struct rd_space sp;

	memset(dirty, 0, sizeof(dirty));
	memset(bt, 0, sizeof(bt));
	nlive = 0;
	for (size_t i = 0; i < next; i++) {
		if (!live_now(&ext[i]))
			continue;
		nlive++;
		CHECK(!rd_alloc_ptr_stale(s, ext[i].off, ext[i].gen));
		dirty[rd_alloc_bucket_of(s, ext[i].off)] += ext[i].sectors;
	}
	for (size_t i = 0; i < c->nr; i++) {
		CHECK(!rd_alloc_ptr_stale(s, c->off[i], c->gen[i]));
		bt[rd_alloc_bucket_of(s, c->off[i])] += NSEC;
	}
	for (uint64_t b = 0; b < FAKE_NB; b++) {
		struct rd_bucket bk;

		CHECK_OK(rd_alloc_bucket(s, b, &bk));
		CHECK_EQ(bk.dirty_sectors, dirty[b]);
		CHECK_EQ(bk.btree_sectors, bt[b]);
		CHECK(!bk.dirty_sectors || bk.data_type == RD_DATA_USER);
		CHECK(!bk.btree_sectors || bk.data_type == RD_DATA_BTREE);
		user += dirty[b];
		btree += bt[b];
		if (b < s->geo.first_bucket || b >= s->geo.last_bucket)
			continue;
		if (dirty[b])
			nuser++;
		else if (bt[b])
			nbtree++;
		else if (!bk.open_refs)
			empty++;
	}
	rd_alloc_space(s, &sp);
	CHECK_EQ(sp.user_bytes, user << 9);
	CHECK_EQ(sp.btree_bytes, btree << 9);
	CHECK_EQ(sp.buckets_free + sp.buckets_pending, empty);
	CHECK_EQ(sp.free_bytes, empty * FAKE_BUCKET);
	CHECK(sp.buckets_user >= nuser && sp.buckets_btree >= nbtree);
	CHECK(sp.buckets_user + sp.buckets_btree + empty <=
	      s->geo.last_bucket - s->geo.first_bucket);
	CHECK_EQ(sp.usable_bytes, (s->geo.last_bucket - s->geo.first_bucket) * FAKE_BUCKET);
}

static void do_flush(struct rd_store *s)
{
	CHECK_OK(rd_journal_flush(s->journal, 0));
	durable = rd_journal_durable_seq(s->journal);
	CHECK_EQ(durable, seq_now);
}

/* Deletes up to 8 random live extents in one transaction. */
static void do_delete(struct rd_store *s, uint64_t *rng)
{
	struct rd_trans *t = rd_trans_new(s);
	uint64_t seq;
	size_t n = 0;

	CHECK(t);
	for (int k = 0; k < 8 && next; k++) {
		struct ext *e = &ext[test_rand(rng) % next];

		if (!live_now(e))
			continue;
		CHECK_OK(rd_alloc_account(t, s, e->off, -(int64_t)e->sectors));
		e->del_seq = UINT64_MAX;
		n++;
	}
	CHECK_OK(rd_trans_commit(t, &seq));
	CHECK_EQ(seq, seq_now + 1);
	seq_now = seq;
	for (size_t i = 0; i < next; i++)
		if (ext[i].del_seq == UINT64_MAX)
			ext[i].del_seq = seq;
	(void)n;
}

/* A write: allocate, commit (maybe overwriting others in the same transaction), put. */
static void do_write(struct rd_store *s, uint64_t *rng)
{
	uint32_t want = (1 + test_rand(rng) % 12) * 8;
	struct rd_alloc_span sp;
	struct rd_trans *t;
	uint64_t seq;
	int ret;

	if (next + 4 >= MAX_EXT)
		return;
	ret = rd_alloc_sectors(s, RD_WP_USER, want, 8, &sp);
	/* The user write point may flush the journal on its own to free waiting buckets. */
	durable = rd_journal_durable_seq(s->journal);
	if (ret == -ENOSPC) {
		nospc++;
		do_delete(s, rng);	/* full: the user deletes some files */
		return;
	}
	CHECK_OK(ret);
	CHECK(sp.sectors >= 8 && sp.sectors <= want && sp.sectors % 8 == 0);
	CHECK_EQ(sp.offset % FAKE_BLOCK, 0);
	CHECK_EQ(rd_alloc_bucket_of(s, sp.offset), sp.bucket);
	CHECK_EQ(rd_alloc_bucket_of(s, sp.offset + ((uint64_t)sp.sectors << 9) - 1), sp.bucket);
	check_fresh(sp.offset, sp.sectors);
	/* appending: the next span of the same bucket life starts where the last ended */
	if (sp.bucket == last_span.bucket && sp.gen == last_span.gen)
		CHECK_EQ(sp.offset, last_span.offset + ((uint64_t)last_span.sectors << 9));
	last_span = sp;

	if (test_rand(rng) % 10 == 0) {
		/* the data write failed: nothing committed */
		rd_alloc_span_put(s, &sp);
		return;
	}
	t = rd_trans_new(s);
	CHECK(t);
	CHECK_OK(rd_alloc_account(t, s, sp.offset, sp.sectors));
	/* overwrite up to two live extents: whole, or trim the back half */
	for (int k = 0; k < (nlive > live_target ? 4 : 1) && next; k++) {
		struct ext *e = &ext[test_rand(rng) % next];

		if (!live_now(e) || e->del_seq == UINT64_MAX)
			continue;
		if (e->sectors >= 16 && test_rand(rng) % 2) {
			uint32_t keep = e->sectors / 16 * 8;

			CHECK_OK(rd_alloc_account(t, s, e->off + ((uint64_t)keep << 9),
						  -(int64_t)(e->sectors - keep)));
			ext[next] = (struct ext){ e->off, keep, e->gen, 0, 0 };
			ext[next].add_seq = UINT64_MAX;	/* set after commit */
			next++;
		} else {
			CHECK_OK(rd_alloc_account(t, s, e->off, -(int64_t)e->sectors));
		}
		e->del_seq = UINT64_MAX;		/* set after commit */
	}
	CHECK_OK(rd_trans_commit(t, &seq));
	CHECK_EQ(seq, seq_now + 1);
	seq_now = seq;
	for (size_t i = 0; i < next; i++) {
		if (ext[i].del_seq == UINT64_MAX)
			ext[i].del_seq = seq;
		if (ext[i].add_seq == UINT64_MAX)
			ext[i].add_seq = seq;
	}
	ext[next++] = (struct ext){ sp.offset, sp.sectors, sp.gen, seq, 0 };
	rd_alloc_span_put(s, &sp);
}

/* A checkpoint: rewrite a few nodes to fresh space, free the old ones at its seq. */
static void do_checkpoint(struct rd_store *s, uint64_t *rng)
{
	struct ckpt *prev = &ck[nck - 1], *c;
	size_t nodes = 1 + test_rand(rng) % 6;
	struct rd_trans *t;
	uint64_t seq;
	int ret;

	if (nck == MAX_CKPT)
		return;
	c = &ck[nck];
	memset(c, 0, sizeof(*c));
	t = rd_trans_new(s);
	CHECK(t);
	pthread_mutex_lock(&s->index_lock);
	ckpts++;
	ret = rd_alloc_btree_prepare(s, nodes, t);
	if (ret == -RD_ERR_NO_SPACE_META) {
		ckpt_nospc++;
		pthread_mutex_unlock(&s->index_lock);
		rd_trans_free(t);
		return;
	}
	CHECK_OK(ret);
	for (size_t i = 0; i < nodes; i++) {
		CHECK_OK(rd_alloc_btree_node(s, &c->off[i], &c->gen[i]));
		CHECK_EQ(c->off[i] % FAKE_NODE, 0);
		check_fresh(c->off[i], NSEC);
		c->nr++;
	}
	CHECK_OK(fake_commit_locked(t, &seq));
	for (size_t i = 0; i < prev->nr; i++)
		rd_alloc_btree_node_free(s, prev->off[i], seq);
	pthread_mutex_unlock(&s->index_lock);
	CHECK_EQ(seq, seq_now + 1);
	seq_now = seq;
	c->seq = seq;
	nck++;
}

/* Crash (or, with clean, flush everything first) and rebuild from the durable state. */
static void do_reopen(struct rd_store *s, bool clean)
{
	struct rd_node_info ni[MAX_NODES];
	const struct ckpt *d;
	size_t j = 0;

	if (clean)
		do_flush(s);
	/* the model forgets what was not durable */
	for (size_t i = 0; i < next; i++) {
		if (ext[i].add_seq > durable)
			continue;
		if (ext[i].del_seq > durable)
			ext[i].del_seq = 0;
		ext[j++] = ext[i];
	}
	next = j;
	d = ck_durable();
	nck = (size_t)(d - ck) + 1;
	for (size_t i = 0; i < d->nr; i++)
		ni[i] = (struct rd_node_info){ .id = RD_BTREE_EXTENTS, .offset = d->off[i],
					       .gen = d->gen[i] };
	CHECK_OK(fake_reopen(s, ni, d->nr));
	/* a generation never made durable may be handed out again */
	last_span = (struct rd_alloc_span){ 0 };
	/* seqs of a torn tail are not reused: the journal goes on after seq_now */
}

static void test_model(uint64_t seed)
{
	struct rd_store *s = fake_open();
	uint64_t rng = seed | 1, writes = 0, crashes = 0;

	CHECK(s);
	ck = calloc(MAX_CKPT, sizeof(*ck));
	CHECK(ck);
	nck = 1;
	next = 0;
	durable = seq_now = 0;
	for (int step = 0; step < 30000; step++) {
		unsigned op = test_rand(&rng) % 100;

		/* phases: roomy, then a device kept near full (ENOSPC, b-tree shortage) */
		live_target = step % 10000 < 6000 ? 24 : 80;

		if (op < 70) {
			do_write(s, &rng);
			writes++;
		} else if (op < 80) {
			do_checkpoint(s, &rng);
		} else if (op < 92) {
			do_flush(s);
		} else if (op < 96) {
			do_reopen(s, false);
			crashes++;
		} else if (op < 98) {
			do_reopen(s, true);
		} else {
			/* compact the model: drop extents whose removal is durable (one added
			 * and removed after durable may still be live in a state a partial
			 * flush makes durable later) */
			size_t j = 0;

			for (size_t i = 0; i < next; i++)
				if (!ext[i].del_seq || ext[i].del_seq > durable)
					ext[j++] = ext[i];
			next = j;
		}
		check_state(s);
	}
	fprintf(stderr, "model: %" PRIu64 " writes (%" PRIu64 " ENOSPC), %" PRIu64 " checkpoints "
		"(%" PRIu64 " short of space), %" PRIu64 " crashes, %" PRIu64 " flushes\n", writes,
		nospc, ckpts, ckpt_nospc, crashes, fake_flushes());
	CHECK(nospc > 0 && nospc < writes / 2 && ckpt_nospc < ckpts / 2);
	fake_close(s);
	free(ck);
}

/* ---- generations and the reuse rule, step by step -------------------------------------- */

static void test_generations(void)
{
	struct rd_store *s = fake_open();
	struct rd_alloc_span a, b;
	struct rd_bucket bk;
	struct rd_alloc_v v;
	struct rd_trans *t;
	uint64_t seq, seq2;

	CHECK(s);
	/* A full bucket's worth: the write point closes it at once. */
	CHECK_OK(rd_alloc_sectors(s, RD_WP_USER, BSEC, BSEC, &a));
	CHECK_EQ(a.sectors, BSEC);
	CHECK_EQ(a.bucket, s->geo.first_bucket);	/* lowest first */
	CHECK_EQ(a.gen, 1);
	t = rd_trans_new(s);
	CHECK_OK(rd_alloc_account(t, s, a.offset, a.sectors));
	CHECK_OK(rd_trans_commit(t, &seq));
	rd_alloc_span_put(s, &a);
	/* The alloc key carries the new gen in the same entry as the data. */
	CHECK(fake_alloc_key(a.bucket, &v));
	CHECK_EQ(rd_le32_get(v.gen), 1);
	CHECK_EQ(rd_le32_get(v.dirty_sectors), BSEC);
	CHECK_EQ(v.data_type, RD_DATA_USER);

	/* Overwritten: empty at seq2, not durable yet. */
	t = rd_trans_new(s);
	CHECK_OK(rd_alloc_account(t, s, a.offset, -(int64_t)a.sectors));
	CHECK_OK(rd_trans_commit(t, &seq2));
	CHECK_OK(rd_alloc_bucket(s, a.bucket, &bk));
	CHECK_EQ(bk.dirty_sectors, 0);
	CHECK_EQ(bk.freed_seq, seq2);
	CHECK(!rd_bucket_reusable(&bk, rd_journal_durable_seq(s->journal)));

	/* Take every other bucket through the b-tree write point (which never flushes). */
	{
		struct rd_space sp;
		int ret;

		rd_alloc_space(s, &sp);
		CHECK_EQ(sp.buckets_pending, 1);
		while ((ret = rd_alloc_sectors(s, RD_WP_BTREE, BSEC, BSEC, &b)) == 0)
			CHECK(b.bucket != a.bucket);
		CHECK_EQ(ret, -RD_ERR_NO_SPACE_META);
		/* Durable: now it is the one handed out, with the next generation. */
		CHECK_OK(rd_journal_flush(s->journal, seq2));
		CHECK_OK(rd_alloc_sectors(s, RD_WP_BTREE, BSEC, BSEC, &b));
		CHECK_EQ(b.bucket, a.bucket);
		CHECK_EQ(b.gen, a.gen + 1);
		CHECK(rd_alloc_ptr_stale(s, a.offset, a.gen));
		CHECK(!rd_alloc_ptr_stale(s, b.offset, b.gen));
		CHECK(rd_alloc_ptr_stale(s, (uint64_t)FAKE_NB * FAKE_BUCKET, 0));
	}
	fake_close(s);
}

/* ---- reservations ------------------------------------------------------------------------ */

static void test_reserve(void)
{
	struct rd_store *s = fake_open();
	struct rd_alloc_span sp;
	struct rd_space a, b;
	uint64_t avail;

	CHECK(s);
	rd_alloc_space(s, &a);
	avail = a.available_bytes >> 9;
	CHECK(avail > 0 && a.available_bytes < a.free_bytes);	/* the b-tree reserve */
	CHECK_EQ(a.reserved_bytes, 0);
	CHECK_EQ(rd_alloc_reserve(s, avail + 1), -ENOSPC);
	CHECK_OK(rd_alloc_reserve(s, avail - 8));
	CHECK_EQ(rd_alloc_reserve(s, 16), -ENOSPC);
	CHECK_OK(rd_alloc_reserve(s, 8));
	rd_alloc_space(s, &b);
	CHECK_EQ(b.available_bytes, 0);
	CHECK_EQ(b.reserved_bytes, avail << 9);
	rd_alloc_unreserve(s, avail);
	rd_alloc_space(s, &b);
	CHECK_EQ(b.available_bytes, avail << 9);

	/* Opening a bucket moves space from free buckets into the write point: same total. */
	CHECK_OK(rd_alloc_sectors(s, RD_WP_USER, 8, 8, &sp));
	rd_alloc_space(s, &b);
	CHECK_EQ(b.available_bytes, (avail - 8) << 9);
	CHECK_EQ(b.free_bytes, a.free_bytes - FAKE_BUCKET);
	rd_alloc_span_put(s, &sp);

	/* User data stops short of the b-tree reserve; b-tree nodes may use it. */
	{
		/* spans are kept: a put without commit would free the bucket for reuse */
		static struct rd_alloc_span held[FAKE_NB * 2];
		uint64_t got = 0;
		size_t nh = 0;
		int ret;

		while ((ret = rd_alloc_sectors(s, RD_WP_USER, BSEC, 8, &sp)) == 0) {
			CHECK(nh < FAKE_NB * 2);
			held[nh++] = sp;
			got += sp.sectors;
		}
		CHECK_EQ(ret, -ENOSPC);
		/* everything that was available, and not a sector more */
		CHECK_EQ(got, avail - 8);
		rd_alloc_space(s, &b);
		CHECK_EQ(b.available_bytes, 0);
		CHECK(b.buckets_free > 0);
		CHECK_OK(rd_alloc_sectors(s, RD_WP_BTREE, NSEC, NSEC, &sp));
		while (nh)
			rd_alloc_span_put(s, &held[--nh]);
	}
	fake_close(s);
}

/* ---- many threads -------------------------------------------------------------------------- */

#define THREADS		6
#define PER_THREAD	3000

static uint8_t owner[FAKE_SECTORS];	/* 1: handed out and not yet free (atomic) */

/* Per bucket life (gen): sectors handed out and the highest end. Spans are disjoint (the
 * ownership map), so sum == end means they tile [0, end): appended in sequence. */
static struct life {
	uint32_t gen;
	uint64_t sum, end;
} life[FAKE_NB];
static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t lives;

static void life_check(const struct life *l)
{
	CHECK_EQ(l->sum, l->end);
}

static void life_add(const struct rd_alloc_span *sp)
{
	struct life *l = &life[sp->bucket];

	pthread_mutex_lock(&life_lock);
	if (l->gen != sp->gen) {
		CHECK(sp->gen > l->gen);
		life_check(l);
		*l = (struct life){ .gen = sp->gen };
		lives++;
	}
	l->sum += sp->sectors;
	if ((sp->offset % FAKE_BUCKET >> 9) + sp->sectors > l->end)
		l->end = (sp->offset % FAKE_BUCKET >> 9) + sp->sectors;
	pthread_mutex_unlock(&life_lock);
}

static void own(uint64_t off, uint32_t sectors)
{
	for (uint64_t i = off >> 9; i < (off >> 9) + sectors; i++) {
		uint8_t zero = 0;

		CHECK(__atomic_compare_exchange_n(&owner[i], &zero, 1, false, __ATOMIC_ACQ_REL,
						  __ATOMIC_ACQUIRE));
	}
}

static void disown(uint64_t off, uint32_t sectors)
{
	for (uint64_t i = off >> 9; i < (off >> 9) + sectors; i++)
		CHECK(__atomic_exchange_n(&owner[i], 0, __ATOMIC_ACQ_REL) == 1);
}

static void release_cb(const struct fake_release *r)
{
	disown(r->off, r->sectors);
}

struct worker {
	struct rd_store *s;
	uint64_t rng;
	int id;
	uint64_t spans, nospc;
};

static void *worker(void *p)
{
	struct worker *w = p;
	struct rd_store *s = w->s;
	struct { uint64_t off; uint32_t sectors; } mine[64];
	size_t nmine = 0;

	for (int i = 0; i < PER_THREAD; i++) {
		struct rd_alloc_span sp;
		struct rd_trans *t;
		int ret;

		if (w->id == 0 && i % 50 == 0) {
			/* one thread also checkpoints: nodes come and go like data */
			static uint64_t nodes[8];
			static size_t nn;
			uint64_t off[8], seq;
			uint32_t gen;
			size_t n = 1 + test_rand(&w->rng) % 8;

			t = rd_trans_new(s);
			CHECK(t);
			pthread_mutex_lock(&s->index_lock);
			ret = rd_alloc_btree_prepare(s, n, t);
			if (!ret) {
				for (size_t k = 0; k < n; k++) {
					CHECK_OK(rd_alloc_btree_node(s, &off[k], &gen));
					own(off[k], NSEC);
				}
				for (size_t k = 0; k < nn; k++)
					CHECK_OK(fake_trans_release(t, nodes[k], NSEC));
				CHECK_OK(fake_commit_locked(t, &seq));
				for (size_t k = 0; k < nn; k++)
					rd_alloc_btree_node_free(s, nodes[k], seq);
				memcpy(nodes, off, n * sizeof(*off));
				nn = n;
			} else {
				CHECK_EQ(ret, -RD_ERR_NO_SPACE_META);
				rd_trans_free(t);
			}
			pthread_mutex_unlock(&s->index_lock);
			CHECK_OK(rd_journal_flush(s->journal, 0));
		}

		ret = nmine == 64 ? -ENOSPC :
		      rd_alloc_sectors(s, RD_WP_USER, (1 + test_rand(&w->rng) % 16) * 8, 8, &sp);
		if (ret == -ENOSPC) {
			/* full: overwrite (free) everything this thread wrote */
			w->nospc += nmine < 64;
			t = rd_trans_new(s);
			CHECK(t);
			for (size_t k = 0; k < nmine; k++) {
				CHECK_OK(rd_alloc_account(t, s, mine[k].off, -(int64_t)mine[k].sectors));
				CHECK_OK(fake_trans_release(t, mine[k].off, mine[k].sectors));
			}
			CHECK_OK(rd_trans_commit(t, NULL));
			nmine = 0;
			continue;
		}
		CHECK_OK(ret);
		own(sp.offset, sp.sectors);
		life_add(&sp);
		w->spans++;
		if (test_rand(&w->rng) % 8 == 0) {
			/* failed write */
			disown(sp.offset, sp.sectors);
			rd_alloc_span_put(s, &sp);
			continue;
		}
		t = rd_trans_new(s);
		CHECK(t);
		CHECK_OK(rd_alloc_account(t, s, sp.offset, sp.sectors));
		CHECK_OK(rd_trans_commit(t, NULL));
		rd_alloc_span_put(s, &sp);
		mine[nmine].off = sp.offset;
		mine[nmine].sectors = sp.sectors;
		nmine++;
	}
	return NULL;
}

static void test_threads(uint64_t seed)
{
	struct rd_store *s = fake_open();
	struct worker w[THREADS];
	pthread_t th[THREADS];
	uint64_t spans = 0, full = 0;

	CHECK(s);
	fake_on_release = release_cb;
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .s = s, .rng = (seed + (uint64_t)i * 7919) | 1, .id = i };
		CHECK(!pthread_create(&th[i], NULL, worker, &w[i]));
	}
	for (int i = 0; i < THREADS; i++) {
		CHECK(!pthread_join(th[i], NULL));
		spans += w[i].spans;
		full += w[i].nospc;
	}
	for (int b = 0; b < FAKE_NB; b++)
		life_check(&life[b]);
	CHECK(lives > FAKE_NB);		/* buckets were reused */
	fprintf(stderr, "threads: %" PRIu64 " spans, %" PRIu64 " bucket lives, %" PRIu64
		" ENOSPC, %" PRIu64 " flushes\n", spans, lives, full, fake_flushes());
	fake_on_release = NULL;
	fake_close(s);
}

int main(void)
{
	uint64_t seed = test_seed();

	test_generations();
	test_reserve();
	test_model(seed);
	test_threads(seed);
	return 0;
}
