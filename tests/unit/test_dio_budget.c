/*
 * test_dio_budget.c - the engine's memory budget (rd_dio_opts.max_held) and the cost of
 * the pumper.
 *
 * Refusals: with an 8 MiB budget, a 16 MiB pin and a 16 MiB chunk can never fit: both are
 * refused with -ENOBUFS by rd_dio_submit (done is never called, the source is put, nothing
 * reaches the sink), while an 8 MiB pin fits and is written.
 *
 * Waiting: six refctx writes (W = 8) and one pin that needs the whole 4 MiB budget, all at
 * once, from in-process buffers into a slow out-of-order sink: every write completes with
 * the right bytes, the budget is never exceeded (its own peak and the per-strategy held
 * figures), writes waited for it, the pin was not starved, and nothing is held at the
 * end. Negative control: the same writes on an engine without a budget hold more than
 * 4 MiB at once and never wait (so the bound above is the budget's doing).
 *
 * Cost: a pin write of n 4 KiB chunks against one of 4n; the time must grow about 4x
 * (linear), not 16x (the old per-step walk of the chunk list). The same ratio test applied
 * to a deliberately quadratic loop must see more than the threshold (negative control).
 */
#include <pthread.h>

#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "csum.h"
#include "errors.h"

#define MIB ((uint64_t)1024 * 1024)
#define NWRITERS 6
#define WLEN (24 * MIB / TEST_DIO_SCALE)

static void refusals(void)
{
	struct rd_dio_opts o = { .workers = 2, .max_held = 8 * MIB };
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_budget_stats bs;
	struct rd_dio_mem *m;
	struct rd_dio *d;
	struct tsink ts;
	struct rd_dio_source *src;

	so.file_size = 16 * MIB;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	CHECK_OK(rd_dio_mem_alloc(16 * MIB, &m));
	pat_fill(rd_dio_mem_base(m), 16 * MIB, 3, 0);

	CHECK_OK(rd_dio_source_mem(m, 0, 16 * MIB, &src));
	CHECK_EQ(rd_dio_submit(d, &ts.sink, src, &(struct rd_dio_args){
			.strategy = RD_DIO_PIN, .done = (void (*)(void *, long))abort }, NULL),
		 -ENOBUFS);
	CHECK_OK(rd_dio_source_mem(m, 0, 16 * MIB, &src));
	CHECK_EQ(rd_dio_submit(d, &ts.sink, src, &(struct rd_dio_args){
			.strategy = RD_DIO_REFCTX, .chunk = 16 * MIB,
			.done = (void (*)(void *, long))abort }, NULL), -ENOBUFS);
	CHECK_EQ(ts.writes, 0);
	/* Exactly the budget: fits. */
	CHECK_OK(rd_dio_source_mem(m, 0, 8 * MIB, &src));
	CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &(struct rd_dio_args){ .strategy = RD_DIO_PIN }),
		 8 * MIB);
	CHECK_OK(pat_check(ts.file, 8 * MIB, 3, 0));
	rd_dio_budget_stats(d, &bs);
	CHECK_EQ(bs.max, 8 * MIB);
	CHECK_EQ(bs.peak, 8 * MIB);
	CHECK_EQ(bs.held, 0);
	rd_dio_mem_exit(m);
	rd_dio_destroy(d);
	tsink_exit(&ts);
}

struct waiter {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	unsigned	left;
	long		res[NWRITERS + 1];
};

struct wctx {
	struct waiter	*wt;
	unsigned	i;
};

static void on_done(void *priv, long res)
{
	struct wctx *c = priv;

	pthread_mutex_lock(&c->wt->lock);
	c->wt->res[c->i] = res;
	if (!--c->wt->left)
		pthread_cond_signal(&c->wt->cond);
	pthread_mutex_unlock(&c->wt->lock);
}

/* NWRITERS refctx writes and a pin of 4 MiB at once; returns the budget figures. */
static void crowd(uint64_t max_held, struct rd_dio_budget_stats *bs, uint64_t *held_peak)
{
	struct rd_dio_opts o = { .workers = 3, .max_held = max_held };
	struct tsink_opts so = tsink_opts_default();
	struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			     NWRITERS + 1, { 0 } };
	struct wctx ctx[NWRITERS + 1];
	struct rd_dio_stats st;
	struct rd_dio_mem *m;
	struct rd_dio *d;
	struct tsink ts;
	uint64_t total = NWRITERS * WLEN + 4 * MIB;

	so.file_size = total;
	so.max_delay_us = 2000;
	so.threads = 4;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	CHECK_OK(rd_dio_mem_alloc(total, &m));
	pat_fill(rd_dio_mem_base(m), total, 11, 0);
	for (unsigned i = 0; i <= NWRITERS; i++) {
		bool pin = i == NWRITERS / 2;
		uint64_t off = i * WLEN + (i > NWRITERS / 2 ? 4 * MIB - WLEN : 0);
		uint64_t len = pin ? 4 * MIB : WLEN;
		struct rd_dio_args a = { .off = off, .window = 8, .done = on_done,
					 .priv = &ctx[i],
					 .strategy = pin ? RD_DIO_PIN : RD_DIO_REFCTX };
		struct rd_dio_source *src;

		ctx[i] = (struct wctx){ &wt, i };
		CHECK_OK(rd_dio_source_mem(m, off, len, &src));
		CHECK_OK(rd_dio_submit(d, &ts.sink, src, &a, NULL));
	}
	pthread_mutex_lock(&wt.lock);
	while (wt.left)
		pthread_cond_wait(&wt.cond, &wt.lock);
	pthread_mutex_unlock(&wt.lock);
	for (unsigned i = 0; i <= NWRITERS; i++)
		CHECK_EQ(wt.res[i], i == NWRITERS / 2 ? 4 * MIB : WLEN);
	CHECK_OK(pat_check(ts.file, total, 11, 0));
	CHECK_EQ(ts.csum_mismatch, 0);
	rd_dio_budget_stats(d, bs);
	*held_peak = 0;
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		CHECK_OK(rd_dio_stats(d, s, &st));
		CHECK_EQ(st.held_now, 0);
		if (st.held_peak > *held_peak)
			*held_peak = st.held_peak;
	}
	CHECK_EQ(bs->held, 0);
	rd_dio_mem_exit(m);
	rd_dio_destroy(d);
	tsink_exit(&ts);
}

static void waiting(void)
{
	struct rd_dio_budget_stats bs;
	uint64_t peak;

	crowd(4 * MIB, &bs, &peak);
	fprintf(stderr, "budget 4 MiB: peak %" PRIu64 " KiB reserved (a strategy's held peak "
		"%" PRIu64 " KiB), %" PRIu64 " writes waited\n", bs.peak >> 10, peak >> 10,
		bs.waited);
	CHECK(bs.peak <= 4 * MIB);
	CHECK(peak <= 4 * MIB);
	CHECK(bs.cached <= 4 * MIB);
	CHECK(bs.waited > 0);
	crowd(0, &bs, &peak);
	fprintf(stderr, "no budget: peak %" PRIu64 " KiB reserved, %" PRIu64 " writes waited\n",
		bs.peak >> 10, bs.waited);
	CHECK(bs.peak > 4 * MIB);
	CHECK_EQ(bs.waited, 0);
}

/* ---- cost ------------------------------------------------------------------------------- */

/* A pin write of n 4 KiB chunks from a zero-copy source (no buffers: only the pumper's
 * own work and the sink's grow with n); the best of three. */
static double pin_time(struct rd_dio *d, struct tsink *ts, const void *block, uint64_t n)
{
	struct rd_dio_args a = { .strategy = RD_DIO_PIN, .chunk = 4096 };
	double t0, best = 1e9;
	int puts = 0;

	for (int rep = 0; rep < 3; rep++) {
		tsink_reset(ts);
		t0 = secs_now();
		CHECK_EQ(rd_dio_pwrite(d, &ts->sink, synth_new(n * 4096, block, 4096, &puts), &a),
			 n * 4096);
		if (secs_now() - t0 < best)
			best = secs_now() - t0;
	}
	CHECK_EQ(puts, 3);
	return best;
}

struct node {
	struct node *next;
	uint64_t v;
};

/* The shape of the old pumper: a walk of the whole list for each of its n steps. */
static double quadratic_time(uint64_t n)
{
	struct node *nodes = calloc(n, sizeof(*nodes));
	volatile uint64_t sink = 0;
	double t0;

	CHECK(nodes);
	for (uint64_t i = 0; i + 1 < n; i++)
		nodes[i].next = &nodes[i + 1];
	t0 = secs_now();
	for (uint64_t step = 0; step < n; step++)
		for (struct node *x = nodes; x; x = x->next)
			sink += x->v;
	t0 = secs_now() - t0;
	free(nodes);
	return t0;
}

static void cost(void)
{
	const uint64_t n = 8192 / TEST_DIO_SCALE;
	static uint8_t block[4096];
	struct rd_dio_opts o = { .workers = 2 };
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio *d;
	struct tsink ts;
	double t1, t4, q1, q4;

	so.no_hash = true;
	so.complete_inline = true;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	(void)pin_time(d, &ts, block, n);	/* warm up */
	t1 = pin_time(d, &ts, block, n);
	t4 = pin_time(d, &ts, block, 4 * n);
	q1 = quadratic_time(n);
	q4 = quadratic_time(4 * n);
	fprintf(stderr, "pin of %" PRIu64 " chunks: %.1f ms, of %" PRIu64 " chunks: %.1f ms "
		"(x%.1f; quadratic would be x16); a quadratic walk: x%.1f\n", n, t1 * 1e3,
		4 * n, t4 * 1e3, t4 / t1, q4 / q1);
	CHECK(t4 / t1 < 8.0);
	CHECK(q4 / q1 > 8.0);	/* the ratio test tells a quadratic cost apart */
	rd_dio_destroy(d);
	tsink_exit(&ts);
}

int main(void)
{
	(void)test_seed();
	refusals();
	waiting();
	cost();
	return 0;
}
