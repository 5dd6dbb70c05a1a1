/*
 * test_dio_mutate.c - the caller changes its buffer while the write runs.
 *
 * The buffer is shared memory that a child process rewrites without pause (the caller's
 * other thread, in real life). The test sink checksums each chunk when it is handed over
 * and copies it only later, at completion, as a device would: with dio's private chunk
 * buffers both must agree, and each committed extent's stored bytes must hash to the
 * checksum the sink took. Negative control: a zero-copy source lending the live buffer
 * (what a dio without chunk buffers would do) must be caught by the same check.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "csum.h"
#include "refdio/errors.h"

#define MIB ((uint64_t)1024 * 1024)
#define LEN (8 * MIB)

static void unmap(void *base, size_t len, void *priv)
{
	(void)priv;
	munmap(base, len);
}

/* Unsafe on purpose: lends the caller's live memory instead of a private copy. */
struct lend_source {
	struct rd_dio_source	src;
	const uint8_t		*p;
};

static void lend_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	rd->data = ((struct lend_source *)src)->p + rd->pos;
	rd->done(rd, (long)rd->len);
}

static void lend_put(struct rd_dio_source *src)
{
	free(src);
}

static const struct rd_dio_source_ops lend_ops = {
	.name = "lend", .read = lend_read, .put = lend_put,
};

static void check_stored(struct tsink *ts)
{
	CHECK(ts->log_n > 0);
	for (size_t i = 0; i < ts->log_n; i++) {
		const struct tsink_commit *c = &ts->log[i];

		CHECK(c->hash == rd_csum(RD_CSUM_XXHASH, ts->file + c->off, c->len));
	}
}

int main(void)
{
	uint64_t seed = test_seed();
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_mem *m;
	struct rd_dio *d;
	struct tsink ts;
	uint8_t *buf;
	pid_t child;

	buf = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED);
	pat_fill(buf, LEN, seed, 0);
	/* The mutator, forked before any thread exists. */
	pid_t parent = getpid();

	child = fork();
	CHECK(child >= 0);
	if (!child) {
		/* Never outlive a failed test. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		volatile uint64_t *w = (volatile uint64_t *)buf;

		for (uint64_t n = 0;; n++)
			w[(n * 7919) % (LEN / 8)] = n;
	}

	so.file_size = LEN;
	so.max_delay_us = 500;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_create(NULL, &d));
	CHECK_OK(rd_dio_mem_new(buf, LEN, unmap, NULL, &m));

	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		for (unsigned is = 0; is < RD_DIO_NR_ISSUE; is++) {
			struct rd_dio_args a = { .strategy = s, .issue = is };
			struct rd_dio_source *src;

			tsink_reset(&ts);
			CHECK_OK(rd_dio_source_mem(m, 0, LEN, &src));
			CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), LEN);
			CHECK_EQ(ts.csum_mismatch, 0);
			check_stored(&ts);
		}
	}

	/* The control: the same check catches bytes that change under the sink. Completions
	 * wait up to 20 ms, so that the rewriting child gets the CPU between a chunk's
	 * checksum and its copy even on a busy machine. */
	uint64_t caught = 0;

	ts.o.max_delay_us = 20000;
	for (unsigned i = 0; i < 20 && !caught; i++) {
		struct lend_source *ls = calloc(1, sizeof(*ls));
		struct rd_dio_args a = { .strategy = RD_DIO_REFCTX };

		CHECK(ls);
		ls->src = (struct rd_dio_source){ &lend_ops, LEN, RD_DIO_SRC_ZERO_COPY };
		ls->p = buf;
		tsink_reset(&ts);
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, &ls->src, &a), LEN);
		caught = ts.csum_mismatch;
	}
	fprintf(stderr, "lending the live buffer: %" PRIu64 " chunks changed in flight\n",
		caught);
	CHECK(caught > 0);

	kill(child, SIGKILL);
	CHECK_EQ(waitpid(child, NULL, 0), child);
	rd_dio_mem_exit(m);
	rd_dio_destroy(d);
	tsink_exit(&ts);
	return 0;
}
