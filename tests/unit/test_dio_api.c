/*
 * test_dio_api.c - the promises of dio.h about threads, lifetime and statistics.
 *
 * - done() is never called inside rd_dio_submit(), and exactly once;
 * - commit(), abort() and flush() never run on the submitting thread (they may block);
 *   with RD_DIO_SINK_MAY_BLOCK not even write() does, and with RD_DIO_SRC_MAY_BLOCK the
 *   submission is punted;
 * - inline submissions start chunks on the submitter, punted ones never do;
 * - rd_dio_destroy() waits for writes still running; a handle outlives done();
 * - the latency histogram and its percentiles, and stats reset.
 */
#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "refdio/errors.h"

#define MIB ((uint64_t)1024 * 1024)

static _Thread_local bool in_submit;
static _Atomic unsigned done_calls, done_in_submit;

static void on_done(void *priv, long res)
{
	if (in_submit)
		done_in_submit++;
	*(long *)priv = res;
	done_calls++;	/* publishes res (seq_cst) */
}

static int submit(struct rd_dio *d, struct tsink *ts, struct rd_dio_source *src,
		  struct rd_dio_args *a, long *res, struct rd_dio_write **h)
{
	int ret;

	a->done = on_done;
	a->priv = res;
	in_submit = true;
	ret = rd_dio_submit(d, &ts->sink, src, a, h);
	in_submit = false;
	return ret;
}

static void contexts(uint64_t seed)
{
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_opts o = { .workers = 2 };
	struct rd_dio_mem *m;
	struct rd_dio *d;
	struct tsink ts;
	long res[64];
	unsigned n = 0;

	so.file_size = 64 * MIB;
	so.max_delay_us = 200;
	so.fail_off = 3 * MIB + 512 * 1024;	/* write 3 fails at its third chunk */
	so.fail_err = -EIO;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	ts.watch = true;
	ts.watched = pthread_self();
	CHECK_OK(rd_dio_mem_alloc(4 * MIB, &m));
	pat_fill(rd_dio_mem_base(m), 4 * MIB, seed, 0);
	CHECK_OK(rd_dio_create(&o, &d));

	/* Writes of every kind, some failing, some dsync, many at once. */
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		for (unsigned is = 0; is < RD_DIO_NR_ISSUE; is++) {
			for (unsigned k = 0; k < 4; k++) {
				struct rd_dio_args a = { .off = n * MIB, .strategy = s, .issue = is,
							 .dsync = k & 1, .chunk = 256 * 1024 };
				struct rd_dio_source *src;

				CHECK_OK(rd_dio_source_mem(m, 0, MIB, &src));
				CHECK_OK(submit(d, &ts, src, &a, &res[n], NULL));
				n++;
			}
		}
	}
	rd_dio_destroy(d);	/* waits for all of them */
	CHECK_EQ(done_calls, n);
	CHECK_EQ(done_in_submit, 0);
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(res[i], i == 3 ? 512 * 1024 : MIB);
	CHECK_EQ(ts.watched_commits, 0);
	CHECK_EQ(ts.watched_aborts, 0);
	CHECK_EQ(ts.watched_flushes, 0);
	CHECK(ts.watched_writes > 0);	/* inline issue did start writes here */
	CHECK(ts.flushes > 0);

	/* A sink whose write() may block: never called on the submitter. */
	ts.sink.flags = RD_DIO_SINK_MAY_BLOCK;
	ts.watched_writes = 0;
	done_calls = 0;
	CHECK_OK(rd_dio_create(&o, &d));
	for (unsigned i = 0; i < 8; i++) {
		struct rd_dio_args a = { .off = (40 + i) * MIB, .strategy = i % RD_DIO_NR_STRATEGIES };
		struct rd_dio_source *src;

		CHECK_OK(rd_dio_source_mem(m, 0, MIB, &src));
		CHECK_OK(submit(d, &ts, src, &a, &res[i], NULL));
	}
	rd_dio_destroy(d);
	CHECK_EQ(done_calls, 8);
	for (unsigned i = 0; i < 8; i++)
		CHECK_EQ(res[i], MIB);
	CHECK_EQ(ts.watched_writes, 0);
	ts.sink.flags = 0;
	rd_dio_mem_exit(m);
	tsink_exit(&ts);
}

/* A zero-copy source that says its reads may block: the submission must be punted. */
static bool blocking_read_on_submitter;
static pthread_t submitter;

static void blocking_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	(void)src;
	if (pthread_equal(submitter, pthread_self()))
		blocking_read_on_submitter = true;
	static const uint8_t zeros[65536];

	rd->data = zeros;
	rd->done(rd, (long)rd->len);
}

static void blocking_put(struct rd_dio_source *src)
{
	free(src);
}

static const struct rd_dio_source_ops blocking_ops = {
	.name = "blocking", .read = blocking_read, .put = blocking_put,
};

static void stats_and_handles(uint64_t seed)
{
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_opts o = { .workers = 1, .chunk = 65536 };
	struct rd_dio_stats st;
	struct rd_dio_write *h;
	struct rd_dio *d;
	struct tsink ts;
	long res = 0;

	so.file_size = 4 * MIB;
	so.max_delay_us = 100;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	submitter = pthread_self();

	for (unsigned i = 0; i < 20; i++) {
		struct rd_dio_source *src = calloc(1, sizeof(*src));
		struct rd_dio_args a = { .off = 0, .issue = RD_DIO_INLINE };

		CHECK(src);
		*src = (struct rd_dio_source){ &blocking_ops, 1 + i * 50000,
					       RD_DIO_SRC_ZERO_COPY | RD_DIO_SRC_MAY_BLOCK };
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), 1 + i * 50000);
	}
	CHECK(!blocking_read_on_submitter);
	CHECK_OK(rd_dio_stats(d, RD_DIO_REFCTX, &st));
	CHECK_EQ(st.writes, 20);
	CHECK_EQ(st.punted_submits, 20);
	CHECK_EQ(st.inline_submits, 0);
	CHECK_EQ(st.failed, 0);
	CHECK_EQ(st.short_writes, 0);
	CHECK_EQ(st.bytes, 20 + 50000 * 190);
	uint64_t hsum = 0;

	for (unsigned i = 0; i < RD_DIO_LAT_BUCKETS; i++)
		hsum += st.lat_hist[i];
	CHECK_EQ(hsum, 20);
	CHECK(st.lat_p50_us > 0 && st.lat_p50_us <= st.lat_p90_us &&
	      st.lat_p90_us <= st.lat_p99_us);
	CHECK(st.lat_max_us <= st.lat_p99_us);	/* p99 of 20 is the max's bucket bound */
	CHECK(st.lat_max_us * 2 >= st.lat_p99_us);
	fprintf(stderr, "latency p50 <= %" PRIu64 " us, p99 <= %" PRIu64 " us, max %" PRIu64
		" us\n", st.lat_p50_us, st.lat_p99_us, st.lat_max_us);

	rd_dio_stats_reset(d);
	CHECK_OK(rd_dio_stats(d, RD_DIO_REFCTX, &st));
	CHECK_EQ(st.writes, 0);
	CHECK_EQ(st.lat_p50_us, 0);
	CHECK_EQ(st.inflight_max, 0);

	/* A handle outlives done(); get/put pairs; cancel after done does nothing. */
	{
		struct rd_dio_args a = { .off = 0, .issue = RD_DIO_PUNT };
		static uint8_t blk[65536];
		int puts = 0;

		done_calls = 0;
		CHECK_OK(submit(d, &ts, synth_new(3 * 65536, blk, sizeof(blk), &puts), &a, &res,
				&h));
		rd_dio_write_get(h);
		while (done_calls < 1)
			sleep_us(100);
		CHECK_EQ(res, 3 * 65536);
		CHECK_EQ(puts, 1);	/* the source went at completion, not with the handle */
		rd_dio_cancel(h);
		rd_dio_write_put(h);
		rd_dio_cancel(h);
		rd_dio_write_put(h);
	}
	CHECK_OK(rd_dio_stats(d, RD_DIO_REFCTX, &st));
	CHECK_EQ(st.interrupts, 0);
	CHECK_EQ(st.punted_submits, 1);
	rd_dio_destroy(d);
	tsink_exit(&ts);
}

/* The owner's reference count of a receive buffer, as the FUSE loop keeps it. */
static void ref_get(void *owner)
{
	++*(int *)owner;
}

static void ref_put(void *owner)
{
	--*(int *)owner;
}

static void source_refusals(void)
{
	struct rd_dio_source *src;
	struct rd_dio_rbuf rb = { 0 };
	int refs = 0;

	CHECK_EQ(rd_dio_source_procmem(NULL, NULL, 0, 0, 1, &src), -EINVAL);
	CHECK(src == NULL);
	/* A refused buffer takes no reference. */
	rb = (struct rd_dio_rbuf){ .len = 10, .get = ref_get, .put = ref_put, .owner = &refs };
	CHECK_EQ(rd_dio_source_rbuf(&rb, &src), -EINVAL);	/* no data */
	CHECK(src == NULL);
	CHECK_EQ(refs, 0);
	rb.data = "0123456789";
	rb.put = NULL;
	CHECK_EQ(rd_dio_source_rbuf(&rb, &src), -EINVAL);	/* get without put */
	CHECK_EQ(refs, 0);
	/* The constructor is the grab, the source's put the drop: exactly one each. */
	rb.put = ref_put;
	CHECK_OK(rd_dio_source_rbuf(&rb, &src));
	CHECK_EQ(refs, 1);
	rd_dio_source_put(src);
	CHECK_EQ(refs, 0);
	/* No callbacks: static data, nothing counted. */
	rb.get = rb.put = NULL;
	CHECK_OK(rd_dio_source_rbuf(&rb, &src));
	rd_dio_source_put(src);
	CHECK_EQ(refs, 0);
	CHECK_EQ(rd_dio_mem_new(NULL, 5, NULL, NULL, &(struct rd_dio_mem *){ 0 }), -EFAULT);
}

int main(void)
{
	uint64_t seed = test_seed();

	source_refusals();
	contexts(seed);
	stats_and_handles(seed);
	return 0;
}
