/*
 * test_io_retry.c - resubmission and retry under injected results.
 *
 * Real files on this kernel never hand io_uring's user -EAGAIN or -EINTR, and regular files
 * rarely transfer short, so this test includes io.c itself with RD_IO_RESULT_HOOK defined:
 * most results are turned into -EAGAIN, -EINTR or a shorter count. Re-doing a read or a
 * write of bytes already transferred is harmless, so the data must still come out exact,
 * every request must complete once with its full length, and nothing may count as an error.
 */
#include <stdatomic.h>

#include "refdio/errors.h"
#include "io.h"
#include "io_util.h"

static atomic_bool fault_on;
static atomic_ulong fault_n, fault_short, fault_again, fault_intr;

/* Called by io.c for every request result, on the I/O thread. */
static int fault_result(struct rd_io_req *req, int res)
{
	unsigned long n;

	if (!atomic_load(&fault_on))
		return res;
	n = atomic_fetch_add(&fault_n, 1);
	switch (n % 5) {
	case 0:
		atomic_fetch_add(&fault_again, 1);
		return -EAGAIN;
	case 1:
		atomic_fetch_add(&fault_intr, 1);
		return -EINTR;
	case 2:
		/* Shorter, but still a multiple of 4096 so O_DIRECT can go on from there. */
		if (req->op != RD_IO_FLUSH && res >= 8192) {
			atomic_fetch_add(&fault_short, 1);
			return (res / 2) & ~4095;
		}
		return res;
	default:
		return res;
	}
}

#define RD_IO_RESULT_HOOK(req, res)	fault_result(req, res)
#include "io.c"

#define NREQ	1500
#define IMAGE	(8u * 1024 * 1024)
#define MAXLEN	(128 * 1024)

struct rq {
	struct rd_io_req	req;
	struct latch		*done;
	atomic_uint		calls;
	long			res;
};

static void rq_end_io(struct rd_io_req *req, long res)
{
	struct rq *r = (struct rq *)req;

	r->res = res;
	atomic_fetch_add(&r->calls, 1);
	latch_add(r->done);
}

/* Non-overlapping ranges tiling the image in random sizes, so reads can check writes. */
static unsigned tile(uint64_t *rng, uint64_t *off, size_t *len, bool direct)
{
	unsigned n = 0;
	uint64_t pos = 0;

	while (n < NREQ && pos < IMAGE) {
		size_t l = direct ? 4096 * (1 + test_rand(rng) % (MAXLEN / 4096))
				  : 1 + test_rand(rng) % MAXLEN;

		if (l > IMAGE - pos)
			l = IMAGE - pos;
		off[n] = pos;
		len[n] = l;
		pos += l;
		n++;
	}
	return n;
}

static void run(bool direct, uint64_t seed)
{
	struct rd_io_opts opts = { .no_direct = !direct, .threads = 2, .queue_depth = 16 };
	static uint64_t off[NREQ];
	static size_t len[NREQ];
	struct rq *rq = calloc(NREQ + 1, sizeof(*rq));
	uint8_t *data = rd_io_buf_alloc(IMAGE), *back = rd_io_buf_alloc(IMAGE);
	struct latch done = LATCH_INIT;
	struct rd_io_stats st;
	uint64_t rng = seed | 1;
	char path[32];
	struct rd_io *io;
	unsigned n;

	CHECK(rq && data && back);
	tmp_image(path, IMAGE);
	CHECK_OK(rd_io_open(path, &opts, &io));
	n = tile(&rng, off, len, direct);
	pattern_fill(data, seed, 0, IMAGE);

	atomic_store(&fault_on, true);
	/* Writes, then a flush, all in flight together. */
	for (unsigned i = 0; i <= n; i++) {
		rq[i].req.op = i < n ? RD_IO_WRITE : RD_IO_FLUSH;
		rq[i].req.fd = -1;
		rq[i].req.buf = i < n ? data + off[i] : NULL;
		rq[i].req.off = i < n ? off[i] : 0;
		rq[i].req.len = i < n ? len[i] : 0;
		rq[i].req.end_io = rq_end_io;
		rq[i].done = &done;
		rd_io_submit(io, &rq[i].req);
	}
	latch_wait(&done, n + 1);
	for (unsigned i = 0; i <= n; i++) {
		CHECK_EQ(atomic_load(&rq[i].calls), 1);
		CHECK_EQ(rq[i].res, i < n ? (long)len[i] : 0);
	}

	/* Reads of the same ranges into a second buffer. */
	for (unsigned i = 0; i < n; i++) {
		memset(&rq[i], 0, sizeof(rq[i]));
		rq[i].req.op = RD_IO_READ;
		rq[i].req.fd = -1;
		rq[i].req.buf = back + off[i];
		rq[i].req.off = off[i];
		rq[i].req.len = len[i];
		rq[i].req.end_io = rq_end_io;
		rq[i].done = &done;
		rd_io_submit(io, &rq[i].req);
	}
	latch_wait(&done, 2 * n + 1);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(atomic_load(&rq[i].calls), 1);
		CHECK_EQ(rq[i].res, (long)len[i]);
	}
	CHECK(!memcmp(back, data, IMAGE));

	/* The synchronous helpers under the same faults, and end of file. */
	memset(back, 0, MAXLEN);
	CHECK_OK(rd_io_read(io, back, MAXLEN, IMAGE - MAXLEN));
	CHECK(!memcmp(back, data + IMAGE - MAXLEN, MAXLEN));
	CHECK_EQ(rd_io_read(io, back, MAXLEN, IMAGE - MAXLEN / 2), -RD_ERR_TRUNCATED);
	CHECK_OK(rd_io_write(io, data, MAXLEN, 0));
	CHECK_OK(rd_io_flush(io));
	atomic_store(&fault_on, false);

	rd_io_stats(io, &st);
	fprintf(stderr, "%s: %u ranges; injected %lu -EAGAIN, %lu -EINTR, %lu short; stats: "
		"sqes %" PRIu64 " retries %" PRIu64 " resubmits %" PRIu64 "\n",
		direct ? "direct" : "buffered", n, atomic_load(&fault_again),
		atomic_load(&fault_intr), atomic_load(&fault_short), st.sqes, st.retries,
		st.resubmits);
	CHECK(st.retries > 0 && st.resubmits > 0);
	CHECK_EQ(st.retries, atomic_load(&fault_again) + atomic_load(&fault_intr));
	CHECK(st.resubmits >= atomic_load(&fault_short));
	CHECK_EQ(st.errors, 0);
	CHECK_EQ(st.completed, st.submitted);
	CHECK_EQ(st.sqes, st.submitted + st.retries + st.resubmits);
	rd_io_close(io);

	atomic_store(&fault_n, 0);
	atomic_store(&fault_again, 0);
	atomic_store(&fault_intr, 0);
	atomic_store(&fault_short, 0);
	unlink(path);
	rd_io_buf_free(data);
	rd_io_buf_free(back);
	free(rq);
}

int main(void)
{
	uint64_t seed = test_seed();

	run(true, seed);
	run(false, seed + 1);
	return 0;
}
