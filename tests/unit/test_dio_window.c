/*
 * test_dio_window.c - the memory bound of a direct write.
 *
 * A 512 MiB write from an in-process buffer into a discarding, hashing test sink with
 * out-of-order completions: refctx with W = 4 never holds more than 4 chunks, chunk holds
 * one, bounce64 one 256 KiB buffer, and pin holds the whole write. Every chunk that reached
 * the sink hashes like the source range it came from. Then a 64 GiB write (synthetic
 * zero-copy source) completes with the same bound: nothing in a write is sized by its
 * length.
 */
#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "csum.h"
#include "refdio/errors.h"

#define MIB ((uint64_t)1024 * 1024)
#define GIB (1024 * MIB)
#define BIG (64 * GIB / TEST_DIO_SCALE / TEST_DIO_SCALE)
#define TOTAL (512 * MIB / TEST_DIO_SCALE)

static void check_hashes(struct tsink *ts, const uint8_t *src, uint64_t off)
{
	for (size_t i = 0; i < ts->log_n; i++) {
		const struct tsink_commit *c = &ts->log[i];

		CHECK(c->off >= off && c->off + c->len <= off + TOTAL);
		CHECK(c->hash == rd_csum(RD_CSUM_XXHASH, src + (c->off - off), c->len));
	}
}

static void one(struct rd_dio *d, struct tsink *ts, struct rd_dio_mem *m, unsigned strat,
		unsigned issue, unsigned window, uint64_t expect_peak)
{
	const uint8_t *src = rd_dio_mem_base(m);
	struct rd_dio_args a = { .off = 4096, .strategy = strat, .issue = issue,
				 .window = window };
	struct rd_dio_source *s;
	struct rd_dio_stats st;
	double t0, t;
	long res;

	rd_dio_stats_reset(d);
	tsink_reset(ts);
	CHECK_OK(rd_dio_source_mem(m, 0, TOTAL, &s));
	t0 = secs_now();
	res = rd_dio_pwrite(d, &ts->sink, s, &a);
	t = secs_now() - t0;
	CHECK_EQ(res, TOTAL);
	CHECK_OK(rd_dio_stats(d, strat, &st));
	fprintf(stderr, "%-8s %-6s W=%-3u %6.0f MiB/s  write held peak %5" PRIu64
		" MiB  chunks in flight max %" PRIu64 "  sink writes in flight max %" PRIu64
		"  inversions %" PRIu64 "\n",
		rd_dio_strategy_name(strat), rd_dio_issue_name(issue), window,
		TOTAL / MIB / t, st.write_held_peak / MIB, st.inflight_max, ts->max_in_write,
		ts->inversions);
	CHECK_EQ(st.writes, 1);
	CHECK_EQ(st.bytes, TOTAL);
	/* The bound, and (unless TSan slows the copies below the sink's pace) the window
	 * really filled up to it. */
	CHECK(st.write_held_peak <= expect_peak);
	CHECK(st.held_peak <= expect_peak);
	if (!TEST_DIO_TSAN || strat == RD_DIO_PIN)
		CHECK_EQ(st.write_held_peak, expect_peak);
	CHECK_EQ(st.held_now, 0);
	CHECK_EQ(st.inflight_now, 0);
	CHECK_EQ(ts->csum_mismatch, 0);
	CHECK_OK(tsink_check_prefix(ts, 4096, TOTAL));
	check_hashes(ts, src, 4096);
}

int main(void)
{
	uint64_t seed = test_seed();
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_opts dopts = { 0 };
	struct rd_dio_stats st;
	struct rd_dio_mem *m;
	struct rd_dio *d;
	struct tsink ts;

	so.max_delay_us = 2000;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&dopts, &d));
	CHECK_OK(rd_dio_mem_alloc(TOTAL, &m));
	pat_fill(rd_dio_mem_base(m), TOTAL, seed, 0);

	one(d, &ts, m, RD_DIO_REFCTX, RD_DIO_INLINE, 4, 4 * MIB);
	CHECK(ts.max_in_write <= 4);
	one(d, &ts, m, RD_DIO_REFCTX, RD_DIO_PUNT, 4, 4 * MIB);
	one(d, &ts, m, RD_DIO_REFCTX, RD_DIO_INLINE, 0, 8 * MIB);
	CHECK(ts.max_in_write <= 8);
	one(d, &ts, m, RD_DIO_CHUNK, RD_DIO_INLINE, 0, 1 * MIB);
	CHECK_EQ(ts.max_in_write, 1);
	one(d, &ts, m, RD_DIO_BOUNCE64, RD_DIO_INLINE, 0, 256 * 1024);
	one(d, &ts, m, RD_DIO_PIN, RD_DIO_INLINE, 0, TOTAL);
	rd_dio_mem_exit(m);

	/* 64 GiB: nothing per write grows with its length; memory stays at W chunks. */
	{
		static uint8_t block[1 << 20];
		struct rd_dio_args a = { .off = 0, .strategy = RD_DIO_REFCTX, .window = 4 };
		struct tsink ts2;
		int puts = 0;
		double t0;
		long res;

		so = tsink_opts_default();
		so.no_hash = true;
		so.threads = 2;
		CHECK_OK(tsink_init(&ts2, &so));
		rd_dio_stats_reset(d);
		t0 = secs_now();
		res = rd_dio_pwrite(d, &ts2.sink, synth_new(BIG, block, sizeof(block), &puts),
				    &a);
		CHECK_EQ(res, BIG);
		CHECK_EQ(puts, 1);
		CHECK_OK(rd_dio_stats(d, RD_DIO_REFCTX, &st));
		fprintf(stderr, "%" PRIu64 " GiB zero-copy write: %.2f s, %" PRIu64 " chunks, held peak %"
			PRIu64 " MiB\n", BIG / GIB, secs_now() - t0, st.chunks, st.write_held_peak / MIB);
		CHECK_EQ(st.chunks, BIG / MIB);
		CHECK(st.write_held_peak <= 4 * MIB);
		CHECK_OK(tsink_check_prefix(&ts2, 0, BIG));
		tsink_exit(&ts2);
	}

	rd_dio_destroy(d);
	tsink_exit(&ts);
	return 0;
}
