/*
 * test_dio_equiv.c - every strategy and issue mode stores the same bytes.
 *
 * Random offsets and lengths (unaligned, from 0 bytes to several chunks), random chunk
 * sizes and windows, a sink that completes out of order (random delays on two threads)
 * or from inside write(). For each case all 8 strategy x issue combinations write the
 * same in-process source into a fresh in-memory file: the files must be identical and
 * equal to the expected image. Also: the zero-copy receive-buffer source (its get/put
 * balanced), several writes in flight at once, and the API's refusals.
 */
#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "refdio/errors.h"

#define MIB ((uint64_t)1024 * 1024)
#define FILE_SIZE (24 * MIB)

static uint64_t rng;
static uint64_t total_inversions;
static unsigned short_writes;	/* early-exit writes that stopped part-way */

static void rb_get(void *owner)
{
	__atomic_fetch_add((int *)owner, 1, __ATOMIC_RELAXED);
}

static void rb_put(void *owner)
{
	__atomic_fetch_sub((int *)owner, 1, __ATOMIC_RELAXED);
}

/* The file must be all zeroes except the source's first len bytes at off. */
static void check_file(struct tsink *ts, const uint8_t *src, const uint8_t *zero,
		       uint64_t off, uint64_t len)
{
	CHECK(!memcmp(ts->file, zero, off));
	CHECK(!memcmp(ts->file + off, src, len));
	CHECK(!memcmp(ts->file + off + len, zero, FILE_SIZE - off - len));
}

static void equivalence(struct rd_dio *d, unsigned iters, uint64_t seed)
{
	struct rd_dio_mem *m;
	uint8_t *rbuf;

	CHECK_OK(rd_dio_mem_alloc(32 * MIB, &m));
	pat_fill(rd_dio_mem_base(m), 32 * MIB, seed, 0);
	rbuf = malloc(32 * MIB);
	CHECK(rbuf);
	uint8_t *zero = calloc(1, FILE_SIZE);

	CHECK(zero);
	memcpy(rbuf, rd_dio_mem_base(m), 32 * MIB);

	for (unsigned it = 0; it < iters; it++) {
		struct tsink_opts so = tsink_opts_default();
		uint64_t off = test_rand(&rng) % (8 * MIB);
		uint64_t len;
		size_t chunk = 0;
		unsigned window = 0;
		bool inl = test_rand(&rng) % 4 == 0;
		bool zc = test_rand(&rng) % 3 == 0;

		switch (test_rand(&rng) % 4) {
		case 0:	len = test_rand(&rng) % 5000; break;
		case 1: len = test_rand(&rng) % (3 * MIB); break;
		default: len = test_rand(&rng) % (12 * MIB); break;
		}
		if (test_rand(&rng) % 2)
			chunk = 4096 + test_rand(&rng) % (700 * 1024);
		if (test_rand(&rng) % 2)
			window = 1 + test_rand(&rng) % 12;
		if (test_rand(&rng) % 3 == 0)
			so.max_chunk = 64 * 1024 + test_rand(&rng) % MIB;
		so.file_size = FILE_SIZE;
		so.max_delay_us = inl ? 0 : 400;
		if (it == 0) {
			/* Out of order for sure: 8 zero-copy chunks handed over back to back,
			 * each completing after a random 0-2 ms. */
			len = 8 * MIB + test_rand(&rng) % MIB;
			chunk = 0;
			window = 8;
			so.max_chunk = 0;
			so.max_delay_us = 2000;
			inl = false;
			zc = true;
		}
		so.complete_inline = inl;
		so.seed = test_rand(&rng);

		uint64_t inversions = 0;
		struct tsink ts;

		CHECK_OK(tsink_init(&ts, &so));
		for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
			for (unsigned is = 0; is < RD_DIO_NR_ISSUE; is++) {
				struct rd_dio_args a = { .off = off, .strategy = s, .issue = is,
							 .window = window, .chunk = chunk };
				struct rd_dio_source *src;
				int refs = 0;
				long res;

				memset(ts.file + off, 0, len);
				tsink_reset(&ts);
				if (zc) {
					struct rd_dio_rbuf rb = { rbuf, len, rb_get, rb_put, &refs };

					CHECK_OK(rd_dio_source_rbuf(&rb, &src));
					CHECK_EQ(refs, 1);
				} else {
					CHECK_OK(rd_dio_source_mem(m, 0, len, &src));
				}
				res = rd_dio_pwrite(d, &ts.sink, src, &a);
				if (res != (long)len)
					fprintf(stderr, "iter %u %s/%s off %" PRIu64 " len %" PRIu64
						" chunk %zu W %u: %ld\n", it, rd_dio_strategy_name(s),
						rd_dio_issue_name(is), off, len, chunk, window, res);
				CHECK_EQ(res, len);
				CHECK_EQ(refs, 0);
				CHECK_EQ(ts.csum_mismatch, 0);
				CHECK_EQ(ts.aborts, 0);
				CHECK_EQ(ts.flushes, 0);
				CHECK_OK(tsink_check_prefix(&ts, off, len));
				check_file(&ts, rbuf, zero, off, len);
				inversions += ts.inversions;
				total_inversions += ts.inversions;
			}
		}
		tsink_exit(&ts);
		if (it == 0)
			fprintf(stderr, "first case: off %" PRIu64 " len %" PRIu64 " chunk %zu W %u"
				" inversions %" PRIu64 "\n", off, len, chunk, window, inversions);
	}
	free(zero);
	free(rbuf);
	rd_dio_mem_exit(m);
}

/* Several writes of different strategies in flight at once, into one sink. */
struct many {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned left;
	long res[16];
	uint64_t len[16];
};

struct many_one {
	struct many *mn;
	unsigned i;
};

static void many_done(void *priv, long res)
{
	struct many_one *o = priv;
	struct many *mn = o->mn;

	pthread_mutex_lock(&mn->lock);
	mn->res[o->i] = res;
	if (!--mn->left)
		pthread_cond_signal(&mn->cond);
	pthread_mutex_unlock(&mn->lock);
}

static void concurrent(struct rd_dio *d, uint64_t seed, bool exit_early)
{
	struct tsink_opts so = tsink_opts_default();
	struct many mn = { .left = 16 };
	struct many_one ones[16];
	struct rd_dio_mem *m;
	struct tsink ts;

	so.file_size = FILE_SIZE;
	so.max_delay_us = 300;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_mem_alloc(FILE_SIZE, &m));
	pat_fill(rd_dio_mem_base(m), FILE_SIZE, seed, 0);
	pthread_mutex_init(&mn.lock, NULL);
	pthread_cond_init(&mn.cond, NULL);

	/* 16 disjoint regions of up to 1.5 MiB, all strategies and modes at once, each with its
	 * own chunk size (none a divisor of another), so a prefix can be checked against its
	 * write's chunk boundaries. */
	static const size_t chunks[] = { 1024 * 1024, 320 * 1024, 132 * 1024, 452 * 1024,
					 196 * 1024 };
	size_t chunk[16];

	for (unsigned i = 0; i < 16; i++) {
		struct rd_dio_args a = { .off = i * 3 * MIB / 2, .strategy = i % RD_DIO_NR_STRATEGIES,
					 .issue = (i / 4) % 2, .done = many_done,
					 .priv = &ones[i], .chunk = chunks[i % 5] };
		struct rd_dio_source *src;

		chunk[i] = a.chunk;
		ones[i] = (struct many_one){ &mn, i };
		mn.len[i] = 3 * MIB / 2 - (i * 40961) % MIB;
		CHECK_OK(rd_dio_source_mem(m, a.off, mn.len[i], &src));
		CHECK_OK(rd_dio_submit(d, &ts.sink, src, &a, NULL));
	}
	if (exit_early)
		rd_dio_mem_exit(m);	/* the writes' grabs keep the struct; memory goes */
	pthread_mutex_lock(&mn.lock);
	while (mn.left)
		pthread_cond_wait(&mn.cond, &mn.lock);
	pthread_mutex_unlock(&mn.lock);
	if (!exit_early)
		rd_dio_mem_exit(m);
	for (unsigned i = 0; i < 16; i++) {
		/* If the owner exited right after submitting, each write is a prefix, and a
		 * short one ends on a boundary of its write's chunks. */
		if (!exit_early)
			CHECK_EQ(mn.res[i], mn.len[i]);
		CHECK(mn.res[i] == (long)mn.len[i] || mn.res[i] == -ESRCH ||
		      (mn.res[i] > 0 && mn.res[i] < (long)mn.len[i]));
		if (mn.res[i] > 0 && mn.res[i] < (long)mn.len[i]) {
			CHECK_EQ(mn.res[i] % (long)chunk[i], 0);
			short_writes++;
		}
		if (mn.res[i] > 0)
			CHECK_OK(pat_check(ts.file + i * 3 * MIB / 2, (size_t)mn.res[i], seed,
					   i * 3 * MIB / 2));
	}
	CHECK_EQ(ts.csum_mismatch, 0);
	tsink_exit(&ts);
	pthread_cond_destroy(&mn.cond);
	pthread_mutex_destroy(&mn.lock);
}

static void refusals(struct rd_dio *d)
{
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_args a = { 0 };
	struct rd_dio_stats st;
	struct tsink ts;
	int puts = 0;
	char blk[16];

	so.file_size = MIB;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_EQ(rd_dio_submit(d, &ts.sink, synth_new(1, blk, 16, &puts), &a, NULL), -EINVAL);
	CHECK_EQ(puts, 1);	/* the source is consumed also on refusal */
	a.strategy = RD_DIO_NR_STRATEGIES;
	CHECK_EQ(rd_dio_pwrite(d, &ts.sink, synth_new(1, blk, 16, &puts), &a), -EINVAL);
	CHECK_EQ(puts, 2);
	a.strategy = RD_DIO_REFCTX;
	a.off = INT64_MAX;
	CHECK_EQ(rd_dio_pwrite(d, &ts.sink, synth_new(2, blk, 16, &puts), &a), -EFBIG);
	CHECK_EQ(puts, 3);
	/* A 0-byte write completes with 0, on a worker, and touches nothing. */
	a.off = 100;
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		for (unsigned is = 0; is < RD_DIO_NR_ISSUE; is++) {
			a.strategy = s;
			a.issue = is;
			CHECK_EQ(rd_dio_pwrite(d, &ts.sink, synth_new(0, blk, 16, &puts), &a), 0);
		}
	}
	CHECK_EQ(puts, 3 + 8);
	CHECK_EQ(ts.writes, 0);
	CHECK_OK(rd_dio_stats(d, RD_DIO_PIN, &st));
	CHECK(rd_dio_stats(d, 99, &st) < 0);
	struct rd_dio_mem *m;

	CHECK_OK(rd_dio_mem_alloc(4096, &m));
	struct rd_dio_source *src;

	CHECK_EQ(rd_dio_source_mem(m, 4000, 100, &src), -EFAULT);
	rd_dio_mem_exit(m);
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++)
		CHECK_EQ(rd_dio_strategy_parse(rd_dio_strategy_name(s)), s);
	CHECK_EQ(rd_dio_issue_parse("punt"), RD_DIO_PUNT);
	CHECK(rd_dio_strategy_parse("nope") < 0);
	tsink_exit(&ts);
}

int main(void)
{
	uint64_t seed = test_seed();
	struct rd_dio_opts o = { .workers = 3 };
	struct rd_dio *d;

	rng = seed | 1;
	CHECK_OK(rd_dio_create(&o, &d));
	refusals(d);
	equivalence(d, getenv("RD_TEST_LONG") ? 200 : 12 / TEST_DIO_SCALE + 2, seed);
	/* The sink really completed out of order. */
	fprintf(stderr, "completions out of order: %" PRIu64 "\n", total_inversions);
	CHECK(total_inversions > 0);
	for (unsigned i = 0; i < 4; i++)
		concurrent(d, seed + i, i % 2);
	fprintf(stderr, "early exits that left a short prefix: %u\n", short_writes);
	rd_dio_destroy(d);
	return 0;
}
