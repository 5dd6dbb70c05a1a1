/*
 * test_io_stress.c - many submitters at once, and rd_io_close with work in flight.
 *
 * Stress: NSUB threads each keep up to WINDOW requests in flight, NREQ writes (with the odd
 * flush) of random sizes at random offsets, then NREQ random reads checked in the callback,
 * then the whole image read back. Overlapping writes carry the same pattern bytes (the
 * pattern is a function of the file position), so the final contents do not depend on their
 * order. The ring is kept small so requests must wait for room. Every request must complete
 * exactly once.
 */
#include <stdatomic.h>

#include "refdio/errors.h"
#include "io.h"
#include "io_util.h"

#define NSUB	4
#define NREQ	2000
#define WINDOW	48
#define MAXLEN	(64 * 1024)
#define IMAGE	(16u * 1024 * 1024)

struct stress;

struct slot {
	struct rd_io_req	req;	/* first: end_io gets back to the slot */
	struct worker		*w;
	unsigned		no;	/* request number within the phase */
	struct slot		*next_free;
};

struct worker {
	struct stress		*s;
	unsigned		id;
	pthread_t		tid;
	uint64_t		rng;
	pthread_mutex_t		lock;
	pthread_cond_t		cv;
	struct slot		*free;
	unsigned		nfree;
	struct slot		slots[WINDOW];
	/* what this worker wrote: (off, len) per write, to build the coverage map */
	uint64_t		w_off[NREQ];
	size_t			w_len[NREQ];
	atomic_uint		hits[NREQ];	/* end_io calls per request number */
};

struct stress {
	struct rd_io		*io;
	bool			direct;
	uint64_t		seed;
	int			phase;		/* 0 write, 1 read */
	uint8_t			*pattern;	/* the pattern over the whole image */
	uint8_t			*expect;	/* after phase 0: pattern where written, else 0 */
	struct worker		w[NSUB];
};

static void slot_put(struct worker *w, struct slot *sl)
{
	pthread_mutex_lock(&w->lock);
	sl->next_free = w->free;
	w->free = sl;
	w->nfree++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

static struct slot *slot_get(struct worker *w)
{
	struct slot *sl;

	pthread_mutex_lock(&w->lock);
	while (!w->free)
		pthread_cond_wait(&w->cv, &w->lock);
	sl = w->free;
	w->free = sl->next_free;
	w->nfree--;
	pthread_mutex_unlock(&w->lock);
	return sl;
}

static void slots_drain(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->nfree < WINDOW)
		pthread_cond_wait(&w->cv, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static void stress_end_io(struct rd_io_req *req, long res)
{
	struct slot *sl = (struct slot *)req;
	struct worker *w = sl->w;
	struct stress *s = w->s;

	CHECK_EQ(atomic_fetch_add(&w->hits[sl->no], 1), 0);
	if (req->op == RD_IO_FLUSH) {
		CHECK_EQ(res, 0);
	} else {
		CHECK_EQ(res, (long)req->len);
	}
	if (req->op == RD_IO_READ && memcmp(req->buf, s->expect + req->off, req->len)) {
		fprintf(stderr, "read mismatch in [%" PRIu64 ", +%zu)\n", req->off, req->len);
		exit(1);
	}
	slot_put(w, sl);
}

/* A random (off, len): block-aligned with O_DIRECT, any bytes without. */
static void pick_range(struct stress *s, struct worker *w, uint64_t *off, size_t *len)
{
	if (s->direct) {
		size_t blocks = 1 + test_rand(&w->rng) % (MAXLEN / 4096);

		*len = blocks * 4096;
		*off = (test_rand(&w->rng) % (IMAGE / 4096 - blocks + 1)) * 4096;
	} else {
		*len = 1 + test_rand(&w->rng) % MAXLEN;
		*off = test_rand(&w->rng) % (IMAGE - *len + 1);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;

	for (unsigned i = 0; i < NREQ; i++) {
		struct slot *sl = slot_get(w);
		struct rd_io_req *req = &sl->req;
		void *buf = req->buf;

		sl->no = i;
		memset(req, 0, sizeof(*req));
		req->fd = -1;
		req->buf = buf;
		req->end_io = stress_end_io;
		if (s->phase == 0 && i % 97 == 96) {
			req->op = RD_IO_FLUSH;
			w->w_len[i] = 0;
		} else {
			pick_range(s, w, &req->off, &req->len);
			if (s->phase == 0) {
				req->op = RD_IO_WRITE;
				memcpy(buf, s->pattern + req->off, req->len);
				w->w_off[i] = req->off;
				w->w_len[i] = req->len;
			} else {
				req->op = RD_IO_READ;
			}
		}
		rd_io_submit(s->io, req);
	}
	slots_drain(w);
	return NULL;
}

static void run_phase(struct stress *s, int phase)
{
	s->phase = phase;
	for (unsigned i = 0; i < NSUB; i++) {
		struct worker *w = &s->w[i];

		for (unsigned j = 0; j < NREQ; j++)
			atomic_store(&w->hits[j], 0);
		CHECK(pthread_create(&w->tid, NULL, worker_main, w) == 0);
	}
	for (unsigned i = 0; i < NSUB; i++) {
		CHECK(pthread_join(s->w[i].tid, NULL) == 0);
		for (unsigned j = 0; j < NREQ; j++)
			CHECK_EQ(atomic_load(&s->w[i].hits[j]), 1);
	}
}

static void stress(bool direct, unsigned threads, unsigned depth, uint64_t seed)
{
	struct rd_io_opts opts = { .no_direct = !direct, .threads = threads,
				   .queue_depth = depth };
	struct stress *s = calloc(1, sizeof(*s));
	struct rd_io_stats st;
	char path[32];
	uint8_t *buf;
	double t0 = now_sec();

	CHECK(s);
	s->direct = direct;
	s->seed = seed;
	s->pattern = malloc(IMAGE);
	s->expect = calloc(IMAGE, 1);
	CHECK(s->pattern && s->expect);
	pattern_fill(s->pattern, seed, 0, IMAGE);
	tmp_image(path, IMAGE);
	CHECK_OK(rd_io_open(path, &opts, &s->io));
	CHECK_EQ(rd_io_is_direct(s->io), direct);
	for (unsigned i = 0; i < NSUB; i++) {
		struct worker *w = &s->w[i];

		w->s = s;
		w->id = i;
		w->rng = seed * 4 + i + 1;
		CHECK(pthread_mutex_init(&w->lock, NULL) == 0);
		CHECK(pthread_cond_init(&w->cv, NULL) == 0);
		for (unsigned j = 0; j < WINDOW; j++) {
			w->slots[j].w = w;
			w->slots[j].req.buf = rd_io_buf_alloc(MAXLEN);
			CHECK(w->slots[j].req.buf);
			slot_put(w, &w->slots[j]);
		}
	}

	run_phase(s, 0);
	for (unsigned i = 0; i < NSUB; i++)
		for (unsigned j = 0; j < NREQ; j++)
			memcpy(s->expect + s->w[i].w_off[j], s->pattern + s->w[i].w_off[j],
			       s->w[i].w_len[j]);
	run_phase(s, 1);

	/* The whole image, byte-exact. */
	buf = rd_io_buf_alloc(1024 * 1024);
	CHECK(buf);
	for (uint64_t off = 0; off < IMAGE; off += 1024 * 1024) {
		CHECK_OK(rd_io_read(s->io, buf, 1024 * 1024, off));
		CHECK(!memcmp(buf, s->expect + off, 1024 * 1024));
	}
	rd_io_buf_free(buf);

	rd_io_stats(s->io, &st);
	fprintf(stderr, "stress %s threads=%u depth=%u: %.2fs, submitted %" PRIu64
		" sqes %" PRIu64 " resubmits %" PRIu64 " retries %" PRIu64 " ring_full %"
		PRIu64 "\n", direct ? "direct" : "buffered", threads, depth, now_sec() - t0,
		st.submitted, st.sqes, st.resubmits, st.retries, st.ring_full);
	CHECK_EQ(st.submitted, 2 * NSUB * NREQ + IMAGE / (1024 * 1024));
	CHECK_EQ(st.completed, st.submitted);
	CHECK_EQ(st.in_flight, 0);
	CHECK_EQ(st.errors, 0);
	CHECK_EQ(st.cq_overflows, 0);
	if (depth && depth <= 16)
		CHECK(st.ring_full > 0);	/* the small ring really was full at times */

	rd_io_close(s->io);
	unlink(path);
	for (unsigned i = 0; i < NSUB; i++) {
		for (unsigned j = 0; j < WINDOW; j++)
			rd_io_buf_free(s->w[i].slots[j].req.buf);
		pthread_mutex_destroy(&s->w[i].lock);
		pthread_cond_destroy(&s->w[i].cv);
	}
	free(s->pattern);
	free(s->expect);
	free(s);
}

/* ---- rd_io_close waits ------------------------------------------------------------------ */

struct pending {
	struct rd_io_req	req;
	atomic_uint		*done;
	char			buf[100];
};

static void pending_end_io(struct rd_io_req *req, long res)
{
	struct pending *p = (struct pending *)req;

	CHECK_EQ(res, 100);
	atomic_fetch_add(p->done, 1);
}

#define NPIPE 8
static int pipes[NPIPE][2];

static void *late_writer(void *arg)
{
	char msg[100];

	(void)arg;
	sleep_ms(300);
	for (unsigned i = 0; i < NPIPE; i++) {
		memset(msg, 'a' + i, sizeof(msg));
		CHECK_EQ(write(pipes[i][1], msg, sizeof(msg)), (long)sizeof(msg));
	}
	return NULL;
}

/* Reads that cannot complete until a writer shows up 300 ms later: close must wait. */
static void test_close_waits_blocked(void)
{
	struct rd_io_opts opts = { .threads = 2 };
	struct pending p[NPIPE];
	atomic_uint done = 0;
	pthread_t writer;
	char path[32];
	struct rd_io *io;
	double t0;

	tmp_image(path, 65536);
	CHECK_OK(rd_io_open(path, &opts, &io));
	for (unsigned i = 0; i < NPIPE; i++) {
		CHECK(pipe2(pipes[i], O_CLOEXEC) == 0);
		memset(&p[i], 0, sizeof(p[i]));
		p[i].req.op = RD_IO_READ;
		p[i].req.fd = pipes[i][0];
		p[i].req.buf = p[i].buf;
		p[i].req.len = sizeof(p[i].buf);
		p[i].req.end_io = pending_end_io;
		p[i].done = &done;
		rd_io_submit(io, &p[i].req);
	}
	t0 = now_sec();
	CHECK(pthread_create(&writer, NULL, late_writer, NULL) == 0);
	rd_io_close(io);
	CHECK_EQ(atomic_load(&done), NPIPE);
	CHECK(now_sec() - t0 >= 0.25);
	CHECK(pthread_join(writer, NULL) == 0);
	for (unsigned i = 0; i < NPIPE; i++) {
		for (unsigned j = 0; j < sizeof(p[i].buf); j++)
			CHECK_EQ(p[i].buf[j], 'a' + i);
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	unlink(path);
}

/* Many writes submitted and close called at once: all complete before close returns. */
struct burst {
	struct rd_io_req	req;
	atomic_uint		*done;
};

static void burst_end_io(struct rd_io_req *req, long res)
{
	struct burst *b = (struct burst *)req;

	CHECK_EQ(res, 4096);
	atomic_fetch_add(b->done, 1);
}

static void test_close_waits_burst(uint64_t seed)
{
	struct rd_io_opts opts = { .threads = 2, .queue_depth = 8 };
	enum { N = 1000 };
	struct burst *b = calloc(N, sizeof(*b));
	uint8_t *data = rd_io_buf_alloc(N * 4096);
	atomic_uint done = 0;
	char path[32];
	struct rd_io *io;
	int fd;

	CHECK(b && data);
	pattern_fill(data, seed, 0, N * 4096);
	tmp_image(path, N * 4096);
	CHECK_OK(rd_io_open(path, &opts, &io));
	for (unsigned i = 0; i < N; i++) {
		b[i].req.op = RD_IO_WRITE;
		b[i].req.fd = -1;
		b[i].req.buf = data + i * 4096;
		b[i].req.len = 4096;
		b[i].req.off = (uint64_t)i * 4096;
		b[i].req.end_io = burst_end_io;
		b[i].done = &done;
		rd_io_submit(io, &b[i].req);
	}
	rd_io_close(io);
	CHECK_EQ(atomic_load(&done), N);
	memset(data, 0, N * 4096);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, data, N * 4096, 0), N * 4096);
	CHECK_EQ(pattern_check(data, seed, 0, N * 4096), N * 4096);
	close(fd);
	unlink(path);
	rd_io_buf_free(data);
	free(b);
}

/* A callback that submits the next step of its chain, also while close is waiting. */
struct chain {
	struct rd_io_req	req;
	struct rd_io		*io;
	atomic_uint		steps;
	unsigned		max;
	void			*buf;
};

static void chain_end_io(struct rd_io_req *req, long res)
{
	struct chain *c = (struct chain *)req;

	CHECK_EQ(res, 4096);
	if (atomic_fetch_add(&c->steps, 1) + 1 < c->max) {
		c->req.off = (c->req.off + 4096) % (256 * 1024);
		rd_io_submit(c->io, &c->req);
	}
}

static void test_close_waits_chain(void)
{
	struct rd_io_opts opts = { .threads = 2 };
	struct chain c[4];
	char path[32];
	struct rd_io *io;
	struct rd_io_stats st;

	tmp_image(path, 256 * 1024);
	CHECK_OK(rd_io_open(path, &opts, &io));
	for (unsigned i = 0; i < 4; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].io = io;
		c[i].max = 200;
		c[i].buf = rd_io_buf_alloc(4096);
		CHECK(c[i].buf);
		c[i].req.op = i % 2 ? RD_IO_READ : RD_IO_WRITE;
		c[i].req.fd = -1;
		c[i].req.buf = c[i].buf;
		c[i].req.len = 4096;
		c[i].req.off = i * 4096;
		c[i].req.end_io = chain_end_io;
		rd_io_submit(io, &c[i].req);
	}
	rd_io_stats(io, &st);
	CHECK(st.submitted >= 4);
	rd_io_close(io);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(atomic_load(&c[i].steps), 200);
		rd_io_buf_free(c[i].buf);
	}
	unlink(path);
}

int main(void)
{
	uint64_t seed = test_seed();

	stress(true, 2, 16, seed);
	stress(false, 3, 8, seed + 1);
	stress(true, 1, 0, seed + 2);
	test_close_waits_blocked();
	test_close_waits_burst(seed);
	test_close_waits_chain();
	return 0;
}
