/*
 * test_dio_gone.c - the owner of an in-process buffer exits in the middle of a write.
 *
 * rd_dio_mem_exit() drops the owner's users reference: the memory is unmapped at once (or
 * by the read copying from it at that moment) and every later get-if-alive fails. The write
 * must end at a chunk boundary with exactly the chunks read before the exit committed (no
 * read of unmapped memory: that would crash), count a caller gone when it was cut short,
 * and report -ESRCH when nothing was written. 20 random moments per strategy and mode.
 */
#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "refdio/errors.h"

#define MIB ((uint64_t)1024 * 1024)
#define LEN (4 * MIB)
#define CHUNK (256 * 1024)

struct killer {
	struct rd_dio_mem	*m;
	unsigned		delay_us;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	sleep_us(k->delay_us);
	rd_dio_mem_exit(k->m);	/* the owner's exit */
	return NULL;
}

int main(void)
{
	uint64_t seed = test_seed(), rng = seed | 1;
	uint64_t gone = 0, short_writes = 0, full = 0, nothing = 0;
	struct rd_dio_opts o = { .workers = 2 };
	struct rd_dio *d;

	struct tsink_opts so = tsink_opts_default();
	struct tsink ts;

	so.file_size = LEN;
	so.max_delay_us = 1000;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(&o, &d));
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		for (unsigned is = 0; is < RD_DIO_NR_ISSUE; is++) {
			for (unsigned rep = 0; rep < 20 / TEST_DIO_SCALE + 2; rep++) {
				struct rd_dio_args a = { .off = 0, .strategy = s, .issue = is,
							 .chunk = s == RD_DIO_BOUNCE64 ? 0 : CHUNK };
				size_t chunk = s == RD_DIO_BOUNCE64 ? 256 * 1024 : CHUNK;
				struct rd_dio_source *src;
				struct rd_dio_stats st0, st1;
				struct rd_dio_mem *m;
				struct killer k;
				pthread_t t;
				long res;

				memset(ts.file, 0, LEN);
				tsink_reset(&ts);
				CHECK_OK(rd_dio_mem_alloc(LEN, &m));
				pat_fill(rd_dio_mem_base(m), LEN, seed, 0);
				CHECK_OK(rd_dio_source_mem(m, 0, LEN, &src));
				CHECK_OK(rd_dio_stats(d, s, &st0));

				k = (struct killer){ m, (unsigned)(test_rand(&rng) % 3000) };
				CHECK(!pthread_create(&t, NULL, killer_main, &k));
				res = rd_dio_pwrite(d, &ts.sink, src, &a);
				pthread_join(t, NULL);
				CHECK_OK(rd_dio_stats(d, s, &st1));

				if (res == (long)LEN) {
					full++;
				} else if (res == -ESRCH) {
					nothing++;
					CHECK_EQ(st1.callers_gone, st0.callers_gone + 1);
				} else {
					CHECK(res > 0 && res < (long)LEN);
					CHECK_EQ(res % (long)chunk, 0);	/* a chunk boundary */
					CHECK_EQ(st1.callers_gone, st0.callers_gone + 1);
					short_writes++;
				}
				if (res < (long)LEN)
					gone++;
				uint64_t got = res > 0 ? (uint64_t)res : 0;

				CHECK_OK(tsink_check_prefix(&ts, 0, got));
				CHECK_OK(pat_check(ts.file, got, seed, 0));
				for (uint64_t i = got; i < LEN; i += 4096)
					CHECK(ts.file[i] == 0);
				CHECK_EQ(ts.csum_mismatch, 0);
				CHECK_EQ(st1.held_now, 0);
			}
		}
	}
	fprintf(stderr, "caller gone mid-write: %" PRIu64 " short, %" PRIu64 " before the first "
		"chunk, %" PRIu64 " finished first\n", short_writes, nothing, full);
	CHECK(short_writes > 0);
	rd_dio_destroy(d);
	tsink_exit(&ts);
	return 0;
}
