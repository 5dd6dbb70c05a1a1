/*
 * test_dio_cancel.c - rd_dio_cancel (FUSE_INTERRUPT) stops a write at a chunk boundary.
 *
 * A long write into a slow sink is cancelled at a random moment: the result is a short
 * count on a chunk boundary (-EINTR if nothing was committed), at least everything that was
 * committed when the cancel came, the sink holds exactly that prefix, and the interrupt is
 * counted. Cancelling through a handle after completion, or twice, is harmless; the handle
 * keeps the write's memory until it is put.
 */
#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "refdio/errors.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)
#define LEN (16 * MIB)

struct waiter {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	bool		done;
	long		res;
	unsigned	calls;
};

static void on_done(void *priv, long res)
{
	struct waiter *wt = priv;

	pthread_mutex_lock(&wt->lock);
	wt->res = res;
	wt->done = true;
	wt->calls++;
	pthread_cond_signal(&wt->cond);
	pthread_mutex_unlock(&wt->lock);
}

static long wait_done(struct waiter *wt)
{
	pthread_mutex_lock(&wt->lock);
	while (!wt->done)
		pthread_cond_wait(&wt->cond, &wt->lock);
	pthread_mutex_unlock(&wt->lock);
	return wt->res;
}

static uint64_t committed_bytes(struct tsink *ts)
{
	uint64_t b = 0;

	pthread_mutex_lock(&ts->lock);
	for (size_t i = 0; i < ts->log_n; i++)
		b += ts->log[i].len;
	pthread_mutex_unlock(&ts->lock);
	return b;
}

int main(void)
{
	uint64_t seed = test_seed(), rng = seed | 1;
	unsigned cut = 0, zero = 0;
	struct rd_dio_mem *m;
	struct rd_dio *d;

	struct tsink_opts so = tsink_opts_default();
	struct tsink ts;

	so.file_size = LEN + 4096;
	so.max_delay_us = 1500;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(NULL, &d));
	CHECK_OK(rd_dio_mem_alloc(LEN, &m));
	pat_fill(rd_dio_mem_base(m), LEN, seed, 0);

	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		for (unsigned rep = 0; rep < 10; rep++) {
			struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
			struct rd_dio_args a = { .off = 4096, .strategy = s, .issue = rep % 2,
						 .chunk = s == RD_DIO_BOUNCE64 ? 0 : 512 * KIB,
						 .done = on_done, .priv = &wt };
			size_t chunk = s == RD_DIO_BOUNCE64 ? 256 * KIB : 512 * KIB;
			struct rd_dio_stats st0, st1;
			struct rd_dio_write *w;
			struct rd_dio_source *src;
			uint64_t before;
			long res;

			memset(ts.file, 0, LEN + 4096);
			tsink_reset(&ts);
			CHECK_OK(rd_dio_stats(d, s, &st0));
			CHECK_OK(rd_dio_source_mem(m, 0, LEN, &src));
			CHECK_OK(rd_dio_submit(d, &ts.sink, src, &a, &w));
			sleep_us(rep == 0 ? 0 : (unsigned)(test_rand(&rng) % 12000));
			before = committed_bytes(&ts);
			rd_dio_cancel(w);
			rd_dio_cancel(w);	/* twice: the first boundary stays */
			res = wait_done(&wt);
			rd_dio_cancel(w);	/* after completion: nothing happens */
			CHECK_OK(rd_dio_stats(d, s, &st1));

			if (res == -EINTR) {
				CHECK_EQ(before, 0);
				zero++;
			} else {
				CHECK(res > 0);
				CHECK(res == (long)LEN || res % (long)chunk == 0);
				CHECK((uint64_t)res >= before);
			}
			if (res != (long)LEN) {
				cut++;
				CHECK_EQ(st1.interrupts, st0.interrupts + 1);
			}
			uint64_t got = res > 0 ? (uint64_t)res : 0;

			CHECK_OK(tsink_check_prefix(&ts, 4096, got));
			CHECK_OK(pat_check(ts.file + 4096, got, seed, 0));
			CHECK_EQ(wt.calls, 1);
			rd_dio_write_put(w);
		}
	}
	fprintf(stderr, "cancelled: %u cut short (%u before anything was committed)\n", cut, zero);
	CHECK(cut > RD_DIO_NR_STRATEGIES * 5);
	rd_dio_mem_exit(m);
	rd_dio_destroy(d);
	tsink_exit(&ts);
	return 0;
}
