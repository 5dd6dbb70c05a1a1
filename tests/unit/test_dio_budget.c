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
 * Shares: one owner's writes stalled behind a gate hold at most their share (6 of 8 MiB),
 * so another owner's write completes meanwhile; without shares it does not (negative
 * control). A pin above an owner's share is -ENOBUFS; zero-copy writes hold no budget.
 *
 * Cost: a pin write of n 4 KiB chunks against one of 16n; the time must grow about 16x
 * (linear; the test allows 96x for caches and load), not 256x (the old per-step walk of
 * the chunk list: measured, 26.6 s for 32768 chunks, against 69 ms now). The same ratio test applied
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

/* ---- shares ----------------------------------------------------------------------------- */

/* A source whose reads wait behind a gate (a caller whose memory does not answer). */
struct gate {
	pthread_mutex_t		lock;
	bool			open;
	struct rd_dio_src_read	*held[64];
	unsigned		n;
};

struct gate_source {
	struct rd_dio_source	src;
	struct gate		*g;
};

static void gate_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	struct gate *g = ((struct gate_source *)src)->g;

	memset(rd->buf, 0x5a, rd->len);
	rd->data = rd->buf;
	pthread_mutex_lock(&g->lock);
	if (!g->open) {
		CHECK(g->n < 64);
		g->held[g->n++] = rd;
		pthread_mutex_unlock(&g->lock);
		return;
	}
	pthread_mutex_unlock(&g->lock);
	rd->done(rd, (long)rd->len);
}

static void gate_put(struct rd_dio_source *src)
{
	free(src);
}

static const struct rd_dio_source_ops gate_ops = {
	.name = "gate", .read = gate_read, .put = gate_put,
};

static struct rd_dio_source *gate_new(struct gate *g, uint64_t len)
{
	struct gate_source *gs = calloc(1, sizeof(*gs));

	CHECK(gs);
	gs->src.ops = &gate_ops;
	gs->src.len = len;
	gs->g = g;
	return &gs->src;
}

static void gate_open(struct gate *g)
{
	unsigned n;
	struct rd_dio_src_read *held[64];

	pthread_mutex_lock(&g->lock);
	g->open = true;
	n = g->n;
	memcpy(held, g->held, sizeof(held));
	g->n = 0;
	pthread_mutex_unlock(&g->lock);
	for (unsigned i = 0; i < n; i++)
		held[i]->done(held[i], (long)held[i]->len);
}

/*
 * Owner 1's three writes stall (their reads wait behind a gate) while holding what they
 * reserved; owner 2's write must still complete: owner 1 can hold at most its share. The
 * negative control: with no share (an owner may hold everything), owner 2's write does
 * not complete until the gate opens.
 */
static bool shares_one(uint64_t share)
{
	struct rd_dio_opts o = { .workers = 2, .max_held = 8 * MIB, .max_held_owner = share };
	struct tsink_opts so = tsink_opts_default();
	struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 4, { 0 } };
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, false, { NULL }, 0 };
	struct wctx ctx[4];
	struct rd_dio_mem *m;
	struct rd_dio *d;
	struct tsink ts;
	bool b_done;

	so.file_size = 64 * MIB;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	for (unsigned i = 0; i < 3; i++) {
		struct rd_dio_args a = { .off = i * 8 * MIB, .window = 8, .owner = 1,
					 .done = on_done, .priv = &ctx[i] };

		ctx[i] = (struct wctx){ &wt, i };
		CHECK_OK(rd_dio_submit(d, &ts.sink, gate_new(&g, 8 * MIB), &a, NULL));
	}
	/* Owner 2: an ordinary in-process buffer. */
	{
		struct rd_dio_args a = { .off = 32 * MIB, .window = 8, .owner = 2,
					 .done = on_done, .priv = &ctx[3] };
		struct rd_dio_source *src;

		ctx[3] = (struct wctx){ &wt, 3 };
		CHECK_OK(rd_dio_mem_alloc(16 * MIB, &m));
		pat_fill(rd_dio_mem_base(m), 16 * MIB, 5, 0);
		CHECK_OK(rd_dio_source_mem(m, 0, 16 * MIB, &src));
		CHECK_OK(rd_dio_submit(d, &ts.sink, src, &a, NULL));
	}
	for (int i = 0; i < (TEST_DIO_TSAN ? 1000 : 200); i++) {
		pthread_mutex_lock(&wt.lock);
		b_done = wt.res[3] != 0;
		pthread_mutex_unlock(&wt.lock);
		if (b_done)
			break;
		sleep_us(10000);
	}
	gate_open(&g);
	pthread_mutex_lock(&wt.lock);
	while (wt.left)
		pthread_cond_wait(&wt.cond, &wt.lock);
	pthread_mutex_unlock(&wt.lock);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(wt.res[i], 8 * MIB);
	CHECK_EQ(wt.res[3], 16 * MIB);
	CHECK_OK(pat_check(ts.file + 32 * MIB, 16 * MIB, 5, 0));
	rd_dio_mem_exit(m);
	rd_dio_destroy(d);
	tsink_exit(&ts);
	return b_done;
}

static void shares(void)
{
	struct rd_dio_opts o = { .workers = 1, .max_held = 8 * MIB, .max_held_owner = 6 * MIB };
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_source *src;
	struct rd_dio *d;
	struct tsink ts;
	static uint8_t block[4096];
	int puts = 0;

	/* A pin above an owner's share can never fit, even under the budget. */
	so.file_size = 8 * MIB;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	src = gate_new(&(struct gate){ PTHREAD_MUTEX_INITIALIZER, true, { NULL }, 0 }, 7 * MIB);
	CHECK_EQ(rd_dio_submit(d, &ts.sink, src, &(struct rd_dio_args){ .strategy = RD_DIO_PIN,
			.owner = 3, .done = (void (*)(void *, long))abort }, NULL), -ENOBUFS);
	/* A zero-copy source holds no budget: any size. */
	CHECK_EQ(rd_dio_pwrite(d, &ts.sink, synth_new(8 * MIB, block, 4096, &puts),
			       &(struct rd_dio_args){ .strategy = RD_DIO_PIN, .chunk = 4096 }),
		 8 * MIB);
	rd_dio_destroy(d);
	tsink_exit(&ts);

	CHECK(shares_one(6 * MIB));
	fprintf(stderr, "shares: with a 6 of 8 MiB share, another owner's write completed "
		"while the first owner's stalled; without shares it did not\n");
	CHECK(!shares_one(0));
}

/* ---- cost ------------------------------------------------------------------------------- */

/* A pin write of n 4 KiB chunks from a zero-copy source (no buffers: only the pumper's
 * own work and the sink's grow with n); the best of five. */
static double pin_time(struct rd_dio *d, struct tsink *ts, const void *block, uint64_t n)
{
	struct rd_dio_args a = { .strategy = RD_DIO_PIN, .chunk = 4096 };
	double t0, best = 1e9;
	int puts = 0;

	for (int rep = 0; rep < 5; rep++) {
		tsink_reset(ts);
		t0 = secs_now();
		CHECK_EQ(rd_dio_pwrite(d, &ts->sink, synth_new(n * 4096, block, 4096, &puts), &a),
			 n * 4096);
		if (secs_now() - t0 < best)
			best = secs_now() - t0;
	}
	CHECK_EQ(puts, 5);
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
	uint64_t sum = 0;
	double t0;

	CHECK(nodes);
	for (uint64_t i = 0; i + 1 < n; i++)
		nodes[i].next = &nodes[i + 1];
	t0 = secs_now();
	for (uint64_t step = 0; step < n; step++)
		for (struct node *x = nodes; x; x = x->next)
			sum += *(volatile uint64_t *)&x->v;	/* not hoisted out */
	t0 = secs_now() - t0;
	CHECK_EQ(sum, 0);	/* the walks happened (and are not optimised away) */
	free(nodes);
	return t0;
}

static void cost(void)
{
	const uint64_t n = 4096 / TEST_DIO_SCALE;
	static uint8_t block[4096];
	struct rd_dio_opts o = { .workers = 2 };
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio *d;
	struct tsink ts;
	double t1, t16, q1, q16;

	so.no_hash = true;
	so.complete_inline = true;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	/* Warm up with the large write: the allocator's arenas grow (and fault their pages)
	 * once, not inside the measurement. */
	(void)pin_time(d, &ts, block, 16 * n);
	t1 = pin_time(d, &ts, block, n);
	t16 = pin_time(d, &ts, block, 16 * n);
	q1 = q16 = 1e9;
	for (int rep = 0; rep < 3; rep++) {	/* the best of three, like pin_time */
		double a = quadratic_time(1024), b = quadratic_time(16 * 1024);

		q1 = a < q1 ? a : q1;
		q16 = b < q16 ? b : q16;
	}
	fprintf(stderr, "pin of %" PRIu64 " chunks: %.1f ms, of %" PRIu64 " chunks: %.1f ms "
		"(x%.1f; linear x16, quadratic x256); a quadratic walk: x%.1f\n", n, t1 * 1e3,
		16 * n, t16 * 1e3, t16 / t1, q16 / q1);
	/* Linear with room for caches and a loaded machine; quadratic is far above. */
	CHECK(t16 / t1 < 96.0);
	CHECK(q16 / q1 > 96.0);	/* the ratio test tells a quadratic cost apart */
	rd_dio_destroy(d);
	tsink_exit(&ts);
}

int main(void)
{
	(void)test_seed();
	refusals();
	waiting();
	shares();
	cost();
	return 0;
}
