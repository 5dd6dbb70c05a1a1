/*
 * test_dio_prefix.c - a write that fails part-way leaves exactly a prefix.
 *
 * For every strategy and issue mode, with a sink completing out of order (or inline): a
 * sink write error at chunk k, ENOSPC from an offset inside chunk k, and a commit error at
 * chunk k each give result = k chunks (the error itself when k = 0); the sink saw commits
 * of chunks 0..k-1 only, in file order, and holds their bytes; nothing is left uncommitted
 * and unaborted. dsync flushes once when something was committed and a failed flush is
 * the result.
 */
#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "refdio/errors.h"

#define KIB ((uint64_t)1024)
#define CHUNK (256 * KIB)
#define NCHUNKS 16
#define LEN (NCHUNKS * CHUNK)
#define OFF (8 * KIB)

static uint64_t rng, seed;

enum fault { F_WRITE, F_ENOSPC, F_COMMIT, F_NR };

static void one(struct rd_dio *d, struct rd_dio_mem *m, unsigned s, unsigned is,
		enum fault f, unsigned k, bool inl, bool dsync)
{
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_args a = { .off = OFF, .strategy = s, .issue = is, .chunk = CHUNK,
				 .window = 1 + test_rand(&rng) % 6, .dsync = dsync };
	struct rd_dio_source *src;
	struct tsink ts;
	long res, want;
	int err;

	so.file_size = OFF + LEN;
	so.max_delay_us = inl ? 0 : 200;
	so.complete_inline = inl;
	so.seed = test_rand(&rng);
	switch (f) {
	case F_WRITE:
		so.fail_off = OFF + k * CHUNK;
		so.fail_err = err = -EIO;
		break;
	case F_ENOSPC:
		so.enospc_off = OFF + k * CHUNK + 1 + test_rand(&rng) % (CHUNK - 1);
		err = -ENOSPC;
		break;
	default:
		so.commit_fail_off = OFF + k * CHUNK;
		so.commit_fail_err = err = -RD_ERR_NO_SPACE_META;
		break;
	}
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_source_mem(m, 0, LEN, &src));
	res = rd_dio_pwrite(d, &ts.sink, src, &a);
	want = k ? (long)(k * CHUNK) : err;
	if (res != want)
		fprintf(stderr, "%s/%s fault %d at chunk %u: %ld, want %ld\n",
			rd_dio_strategy_name(s), rd_dio_issue_name(is), f, k, res, want);
	CHECK_EQ(res, want);
	/* Exactly chunks 0..k-1, in order, with their bytes; the rest untouched. */
	CHECK_OK(tsink_check_prefix(&ts, OFF, k * CHUNK));
	CHECK_OK(pat_check(ts.file + OFF, k * CHUNK, seed, 0));
	for (uint64_t i = OFF + k * CHUNK; i < OFF + LEN; i++)
		CHECK(ts.file[i] == 0);
	CHECK_EQ(ts.csum_mismatch, 0);
	CHECK_EQ(ts.flushes, dsync && k ? 1 : 0);
	tsink_exit(&ts);	/* checks: nothing outstanding, no bad commit/abort */
}

static void flush_failure(struct rd_dio *d, struct rd_dio_mem *m)
{
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_args a = { .off = 0, .dsync = true };
	struct rd_dio_source *src;
	struct tsink ts;

	so.file_size = LEN;
	so.flush_err = -EIO;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_source_mem(m, 0, LEN, &src));
	CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), -EIO);
	CHECK_EQ(ts.flushes, 1);
	CHECK_OK(tsink_check_prefix(&ts, 0, LEN));	/* in place, just not known durable */
	tsink_exit(&ts);
}

int main(void)
{
	struct rd_dio_stats st;
	struct rd_dio_mem *m;
	struct rd_dio *d;

	seed = test_seed();
	rng = seed | 1;
	CHECK_OK(rd_dio_create(NULL, &d));
	CHECK_OK(rd_dio_mem_alloc(LEN, &m));
	pat_fill(rd_dio_mem_base(m), LEN, seed, 0);

	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		for (unsigned is = 0; is < RD_DIO_NR_ISSUE; is++) {
			for (unsigned f = 0; f < F_NR; f++) {
				unsigned ks[3] = { 0, 1 + test_rand(&rng) % (NCHUNKS - 2),
						   NCHUNKS - 1 };

				/* TSan: one random k per fault. */
				for (unsigned i = TEST_DIO_TSAN ? 1 : 0; i < (TEST_DIO_TSAN ? 2 : 3); i++)
					one(d, m, s, is, f, ks[i], test_rand(&rng) % 3 == 0,
					    test_rand(&rng) % 2);
			}
		}
	}
	flush_failure(d, m);
	CHECK_OK(rd_dio_stats(d, RD_DIO_REFCTX, &st));
	CHECK(st.short_writes > 0 && st.failed > 0);
	CHECK_EQ(st.held_now, 0);
	CHECK_EQ(st.inflight_now, 0);
	rd_dio_mem_exit(m);
	rd_dio_destroy(d);
	return 0;
}
