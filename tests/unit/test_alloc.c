/*
 * test_alloc.c - the allocator on a real store (format, open, journal, checkpoints).
 *
 *  - generations: a reused bucket gets gen+1; the old pointer is stale, the new one not;
 *  - no reuse before durable: a bucket emptied by a committed entry is not handed out while
 *    that entry is not durable, and is once rd_store_flush made it so;
 *  - persistence: accounting and generations survive a clean close and a crash after flush;
 *  - write points: spans from many threads never overlap and fill buckets in sequence;
 *  - reservations and rd_alloc_space.
 * The journal's own flusher writes entries within 50 ms, so checks about "not yet durable"
 * are phrased so that it can never make them fail wrongly (the fake-store model test
 * covers the same rules deterministically).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "../test.h"
#include "alloc.h"
#include "btree.h"
#include "refdio/errors.h"
#include "store.h"

#define IMG_SIZE	(64ull << 20)
#define BUCKET		(128u << 10)
#define BSEC		(BUCKET >> 9)
#define NODE		(32u << 10)

static char img[256];

static void format_image(void)
{
	struct rd_format_opts o = {
		.size = IMG_SIZE, .block_size = 4096, .bucket_size = BUCKET,
		.btree_node_size = NODE, .encoded_extent_max = 64u << 10,
		.data_csum = -1, .meta_csum = -1, .force = true, .no_direct = true,
	};
	char why[256] = "";
	int ret = rd_store_format(img, &o, why, sizeof(why));

	if (ret)
		fprintf(stderr, "format: %s %s\n", rd_strerror(ret), why);
	CHECK_OK(ret);
}

static struct rd_store *open_image(void)
{
	struct rd_open_opts o = { .no_direct = true };
	struct rd_store *s;
	char why[256] = "";
	int ret = rd_store_open(img, &o, &s, why, sizeof(why));

	if (ret)
		fprintf(stderr, "open: %s %s\n", rd_strerror(ret), why);
	CHECK_OK(ret);
	return s;
}

/* Commits one accounting change and returns its seq. */
static uint64_t account(struct rd_store *s, uint64_t off, int64_t sectors)
{
	struct rd_trans *t = rd_trans_new(s);
	uint64_t seq;

	CHECK(t);
	CHECK_OK(rd_alloc_account(t, s, off, sectors));
	CHECK_OK(rd_trans_commit(t, &seq));
	return seq;
}

static struct rd_bucket bucket(struct rd_store *s, uint64_t b)
{
	struct rd_bucket bk;

	CHECK_OK(rd_alloc_bucket(s, b, &bk));
	return bk;
}

/* ---- generations and the reuse rule ---------------------------------------------------- */

static void test_reuse(void)
{
	struct rd_store *s;
	struct rd_alloc_span a, b;
	struct rd_bucket bk;
	uint64_t seq2, handed = 0;
	bool early = false;
	int ret;

	format_image();
	s = open_image();
	/* A whole bucket of user data, committed, then overwritten (emptied) at seq2. */
	CHECK_OK(rd_alloc_sectors(s, RD_WP_USER, BSEC, BSEC, &a));
	CHECK_EQ(a.sectors, BSEC);
	account(s, a.offset, a.sectors);
	rd_alloc_span_put(s, &a);
	bk = bucket(s, a.bucket);
	CHECK_EQ(bk.dirty_sectors, BSEC);
	CHECK_EQ(bk.gen, a.gen);
	CHECK_EQ(bk.data_type, RD_DATA_USER);
	CHECK(!rd_alloc_ptr_stale(s, a.offset, a.gen));

	seq2 = account(s, a.offset, -(int64_t)a.sectors);
	bk = bucket(s, a.bucket);
	CHECK_EQ(bk.dirty_sectors, 0);
	CHECK_EQ(bk.freed_seq, seq2);

	/*
	 * Take every other bucket through the b-tree write point, which never waits on the
	 * journal (index lock held, as its callers do). Whenever the emptied bucket comes out,
	 * seq2 must already be durable (durable only grows, so reading it afterwards is safe).
	 */
	pthread_mutex_lock(&s->index_lock);
	while ((ret = rd_alloc_sectors(s, RD_WP_BTREE, BSEC, BSEC, &b)) == 0) {
		handed++;
		if (b.bucket == a.bucket) {
			CHECK(rd_store_durable_seq(s) >= seq2);
			early = true;
			break;
		}
	}
	pthread_mutex_unlock(&s->index_lock);
	if (!early) {
		struct rd_space sp;

		CHECK_EQ(ret, -RD_ERR_NO_SPACE_META);
		rd_alloc_space(s, &sp);
		CHECK_EQ(sp.buckets_free, 0);
		CHECK(sp.buckets_pending >= 1);
		/* Durable now: it is the bucket handed out next, one generation on. */
		CHECK_OK(rd_store_flush(s, seq2));
		pthread_mutex_lock(&s->index_lock);
		CHECK_OK(rd_alloc_sectors(s, RD_WP_BTREE, BSEC, BSEC, &b));
		pthread_mutex_unlock(&s->index_lock);
		CHECK_EQ(b.bucket, a.bucket);
	} else {
		fprintf(stderr, "reuse: the journal flusher made seq %" PRIu64 " durable first\n",
			seq2);
	}
	CHECK(handed > 100);
	CHECK_EQ(b.gen, a.gen + 1);
	CHECK(rd_alloc_ptr_stale(s, a.offset, a.gen));
	CHECK(!rd_alloc_ptr_stale(s, b.offset, b.gen));
	bk = bucket(s, a.bucket);
	CHECK_EQ(bk.data_type, RD_DATA_BTREE);
	CHECK(bk.gen_dirty);

	/* Nothing of that reuse was committed: after a crash the bucket is back at a.gen,
	 * empty, and everything else the b-tree write point took is free again. (The open's
	 * own checkpoint may take the lowest free bucket for nodes again: then it is one
	 * generation on, committed, typed b-tree.) */
	rd_store_crash(s);
	s = open_image();
	bk = bucket(s, a.bucket);
	CHECK(bk.gen == a.gen || (bk.gen == a.gen + 1 && bk.data_type == RD_DATA_BTREE));
	CHECK_EQ(bk.dirty_sectors, 0);
	CHECK(!bk.gen_dirty);
	{
		struct rd_space sp;

		rd_alloc_space(s, &sp);
		CHECK_EQ(sp.user_bytes, 0);
		CHECK(sp.buckets_free + sp.buckets_pending > handed - 8);
	}
	CHECK_OK(rd_store_close(s));
}

/* ---- persistence ----------------------------------------------------------------------- */

#define NSPANS 40

static void test_persist(void)
{
	struct rd_alloc_span sp[NSPANS], extra;
	struct rd_bucket before[NSPANS];
	struct rd_store *s;
	uint64_t seq, rng = 12345;

	format_image();
	s = open_image();
	for (int i = 0; i < NSPANS; i++) {
		CHECK_OK(rd_alloc_sectors(s, RD_WP_USER, (1 + test_rand(&rng) % 32) * 8, 8, &sp[i]));
		account(s, sp[i].offset, sp[i].sectors);
		rd_alloc_span_put(s, &sp[i]);
	}
	/* half of every other span is overwritten */
	for (int i = 0; i < NSPANS; i += 2)
		if (sp[i].sectors >= 16)
			account(s, sp[i].offset, -(int64_t)(sp[i].sectors / 16 * 8));
	for (int i = 0; i < NSPANS; i++)
		before[i] = bucket(s, sp[i].bucket);

	/* Clean close and open: exactly the same. */
	CHECK_OK(rd_store_close(s));
	s = open_image();
	for (int i = 0; i < NSPANS; i++) {
		struct rd_bucket bk = bucket(s, sp[i].bucket);

		CHECK_EQ(bk.gen, before[i].gen);
		CHECK_EQ(bk.dirty_sectors, before[i].dirty_sectors);
		CHECK_EQ(bk.data_type, RD_DATA_USER);
		CHECK(!rd_alloc_ptr_stale(s, sp[i].offset, sp[i].gen));
	}

	/* Committed and flushed, then a crash: the same again. */
	seq = account(s, sp[1].offset, -(int64_t)sp[1].sectors);
	CHECK_OK(rd_store_flush(s, seq));
	before[1] = bucket(s, sp[1].bucket);
	for (int i = 0; i < NSPANS; i++)
		if (sp[i].bucket == sp[1].bucket)
			before[i] = before[1];
	/* A bucket opened but never committed to: its new gen is not persisted. */
	{
		CHECK_OK(rd_alloc_sectors(s, RD_WP_USER, BSEC, BSEC, &extra));
		CHECK(bucket(s, extra.bucket).gen_dirty);
	}
	rd_store_crash(s);
	s = open_image();
	for (int i = 0; i < NSPANS; i++) {
		struct rd_bucket bk = bucket(s, sp[i].bucket);

		CHECK_EQ(bk.gen, before[i].gen);
		CHECK_EQ(bk.dirty_sectors, before[i].dirty_sectors);
	}
	{
		/* back at its committed gen, unless the open's checkpoint reused it for nodes */
		struct rd_bucket bk = bucket(s, extra.bucket);

		CHECK(bk.gen == extra.gen - 1 ||
		      (bk.gen == extra.gen && bk.data_type == RD_DATA_BTREE && !bk.gen_dirty));
		CHECK_EQ(bk.dirty_sectors, 0);
	}

	/* Committed, maybe not flushed, then a crash: the old value or, if the entry made it
	 * to disk (the flusher runs on its own), the new one; nothing else. */
	seq = account(s, sp[3].offset, -(int64_t)sp[3].sectors);
	{
		struct rd_bucket old = bucket(s, sp[3].bucket), now;
		uint64_t durable = rd_store_durable_seq(s);

		old.dirty_sectors += sp[3].sectors;
		rd_store_crash(s);
		s = open_image();
		now = bucket(s, sp[3].bucket);
		if (durable >= seq)
			CHECK_EQ(now.dirty_sectors, old.dirty_sectors - sp[3].sectors);
		else
			CHECK(now.dirty_sectors == old.dirty_sectors ||
			      now.dirty_sectors == old.dirty_sectors - sp[3].sectors);
	}
	CHECK_OK(rd_store_close(s));
}

/* ---- many threads ---------------------------------------------------------------------- */

#define THREADS		4
#define PER_THREAD	400

struct worker {
	struct rd_store *s;
	uint64_t rng;
	struct rd_alloc_span sp[PER_THREAD];
	int n;
};

static void *worker(void *p)
{
	struct worker *w = p;

	for (int i = 0; i < PER_THREAD; i++) {
		struct rd_alloc_span *sp = &w->sp[w->n];
		uint32_t want = (1 + test_rand(&w->rng) % 8) * 8;
		int ret = rd_alloc_sectors(w->s, RD_WP_USER, want, 8, sp);

		if (ret == -ENOSPC)
			break;
		CHECK_OK(ret);
		CHECK(sp->sectors >= 8 && sp->sectors <= want);
		/* the extent is committed before the span's reference is dropped */
		account(w->s, sp->offset, sp->sectors);
		rd_alloc_span_put(w->s, sp);
		w->n++;
	}
	return NULL;
}

static int span_cmp(const void *x, const void *y)
{
	const struct rd_alloc_span *a = x, *b = y;

	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static void test_threads(uint64_t seed)
{
	static struct worker w[THREADS];
	static struct rd_alloc_span all[THREADS * PER_THREAD];
	static uint32_t sum[IMG_SIZE / BUCKET], end[IMG_SIZE / BUCKET];
	pthread_t th[THREADS];
	struct rd_store *s;
	size_t n = 0;
	struct timespec t0, t1;

	format_image();
	s = open_image();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < THREADS; i++) {
		w[i].s = s;
		w[i].rng = (seed + (uint64_t)i * 104729) | 1;
		w[i].n = 0;
		CHECK(!pthread_create(&th[i], NULL, worker, &w[i]));
	}
	for (int i = 0; i < THREADS; i++) {
		CHECK(!pthread_join(th[i], NULL));
		memcpy(all + n, w[i].sp, (size_t)w[i].n * sizeof(*all));
		n += (size_t)w[i].n;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ(n, THREADS * PER_THREAD);

	/* Nothing was freed, so nothing was reused: no two spans may overlap. */
	qsort(all, n, sizeof(*all), span_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			CHECK(all[i - 1].offset + ((uint64_t)all[i - 1].sectors << 9) <=
			      all[i].offset);
		CHECK(!rd_alloc_ptr_stale(s, all[i].offset, all[i].gen));
		sum[all[i].bucket] += all[i].sectors;
		if ((all[i].offset % BUCKET >> 9) + all[i].sectors > end[all[i].bucket])
			end[all[i].bucket] = (uint32_t)((all[i].offset % BUCKET >> 9) +
							all[i].sectors);
	}
	/* Appending: each bucket's spans tile it from its start, and the accounting agrees. */
	for (uint64_t b = 0; b < IMG_SIZE / BUCKET; b++) {
		CHECK_EQ(sum[b], end[b]);
		CHECK_EQ(bucket(s, b).dirty_sectors, sum[b]);
	}
	fprintf(stderr, "threads: %zu spans (each committed) in %.1f ms\n", n,
		((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e6);
	CHECK_OK(rd_store_close(s));
}

/* ---- reservations and space ------------------------------------------------------------- */

static void test_space(void)
{
	struct rd_store *s;
	struct rd_space a, b;
	struct rd_alloc_span sp;
	uint64_t avail, usable_buckets, empty;

	format_image();
	s = open_image();
	rd_alloc_space(s, &a);
	usable_buckets = (s->geo.last_bucket - s->geo.first_bucket);
	CHECK_EQ(a.total_bytes, IMG_SIZE);
	CHECK_EQ(a.usable_bytes, usable_buckets * BUCKET);
	CHECK_EQ(a.journal_bytes, s->geo.journal_buckets * BUCKET);
	CHECK(a.usable_bytes + a.journal_bytes < a.total_bytes);
	CHECK_EQ(a.user_bytes, 0);
	CHECK_EQ(a.reserved_bytes, 0);
	empty = a.buckets_free + a.buckets_pending;
	CHECK_EQ(a.free_bytes, empty * BUCKET);
	CHECK(empty + a.buckets_user + a.buckets_btree <= usable_buckets);
	CHECK(a.btree_bytes <= a.buckets_btree * BUCKET);
	CHECK(a.available_bytes < a.free_bytes);	/* a reserve is kept for b-tree nodes */

	avail = a.available_bytes >> 9;
	CHECK_EQ(rd_alloc_reserve(s, avail + 1), -ENOSPC);
	CHECK_OK(rd_alloc_reserve(s, avail - 8));
	CHECK_EQ(rd_alloc_reserve(s, 16), -ENOSPC);
	CHECK_OK(rd_alloc_reserve(s, 8));
	rd_alloc_space(s, &b);
	CHECK_EQ(b.available_bytes, 0);
	CHECK_EQ(b.reserved_bytes, avail << 9);
	rd_alloc_unreserve(s, avail);
	rd_alloc_space(s, &b);
	CHECK_EQ(b.reserved_bytes, 0);
	CHECK_EQ(b.available_bytes, a.available_bytes);

	/* Writing moves space from available to user data, sector for sector. */
	CHECK_OK(rd_alloc_reserve(s, 64));
	CHECK_OK(rd_alloc_sectors(s, RD_WP_USER, 64, 64, &sp));
	account(s, sp.offset, sp.sectors);
	rd_alloc_span_put(s, &sp);
	rd_alloc_unreserve(s, 64);
	rd_alloc_space(s, &b);
	CHECK_EQ(b.user_bytes, 64 << 9);
	CHECK_EQ(b.available_bytes, a.available_bytes - (64 << 9));
	CHECK_EQ(b.buckets_user, a.buckets_user + 1);
	CHECK_OK(rd_store_close(s));
}

static void remove_image(void)
{
	unlink(img);
}

int main(void)
{
	const char *dir = getenv("RD_TEST_DIR");
	uint64_t seed = test_seed();

	snprintf(img, sizeof(img), "%s/alloc-test-%d.img", dir ? dir : "/tmp", (int)getpid());
	atexit(remove_image);	/* failed checks exit() too */
	test_reuse();
	test_persist();
	test_space();
	test_threads(seed);
	return 0;
}
