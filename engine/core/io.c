/*
 * io.c - the I/O layer: the image fd, one io_uring per I/O thread, the request queues.
 *
 * Owns: opening the image (O_DIRECT where the filesystem allows it), the I/O threads and
 * their rings, the queue of submitted requests in front of each thread, resubmission of
 * partial transfers and retries, the calling of completion callbacks, and the counters
 * behind rd_io_stats().
 *
 * Must never: call a completion callback from inside rd_io_submit or on any thread but an
 * I/O thread; touch a request after its callback was called (it is the caller's again);
 * have more entries on a ring than its submission queue holds (so the completion queue,
 * twice as large, cannot overflow); do a blocking pread/pwrite.
 *
 * How it moves: rd_io_submit appends the request to one thread's queue (round-robin) under
 * that thread's mutex and, unless the thread was already told, writes the thread's eventfd.
 * Each I/O thread keeps a read of its eventfd armed on its own ring, so a single
 * io_uring_submit_and_wait() sleeps until either a completion or new work arrives. The
 * thread moves its queue into a private backlog and from there onto the ring while the ring
 * has room; whatever does not fit stays in the backlog. A partial transfer, or an -EAGAIN /
 * -EINTR result, puts the request back at the front of the backlog for the remainder.
 *
 * Each thread creates, uses and destroys its ring itself (so the ring can be set up as
 * single-issuer with deferred task work); no other thread ever touches a ring.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/fs.h>
#include <liburing.h>

#include "refdio/errors.h"
#include "bufpool.h"
#include "io.h"
#include "util.h"

#define RD_IO_DEFAULT_DEPTH	256
#define RD_IO_MIN_DEPTH		4
#define RD_IO_MAX_DEPTH		4096
#define RD_IO_MAX_THREADS	64
/* The most one ring entry asks for. The kernel transfers less than 2 GiB per call anyway;
 * the rest of a longer request goes out as a resubmission. */
#define RD_IO_MAX_XFER		(1u << 30)
/* Completions taken off the ring in one batch before their requests are handled. */
#define RD_IO_REAP_BATCH	64
/*
 * A seam for tests only: a test that includes this file may define it to rewrite a
 * request's result (a shorter count, -EAGAIN, -EINTR) and so drive the resubmission and
 * retry paths, which real files on this kernel do not reach. Never defined in the engine.
 */
#ifndef RD_IO_RESULT_HOOK
#define RD_IO_RESULT_HOOK(req, res)	(res)
#endif

/* Written only by the owning I/O thread, read by rd_io_stats() from anywhere. */
struct rd_io_counters {
	_Atomic uint64_t	sqes;
	_Atomic uint64_t	resubmits;
	_Atomic uint64_t	retries;
	_Atomic uint64_t	completed;
	_Atomic uint64_t	errors;
	_Atomic uint64_t	ring_full;
	_Atomic uint64_t	cq_overflows;
	_Atomic uint64_t	bytes_read;
	_Atomic uint64_t	bytes_written;
};

struct rd_io_thread {
	struct rd_io		*io;
	unsigned		idx;
	unsigned		depth;		/* ring entries asked for */
	pthread_t		tid;
	int			efd;		/* wakes the thread: new work, or stop */

	/* Shared with submitters and rd_io_close, under lock. */
	pthread_mutex_t		lock;
	struct rd_io_req	*q_head, *q_tail;
	/* An eventfd write was made whose read has not yet been handled; the thread takes the
	 * whole queue when it handles that read, so later submitters need not write again. */
	bool			woken;
	bool			stop;

	/* Startup handshake, under io->lock: 0 starting, 1 running, < 0 ring setup failed. */
	int			state;

	/* Private to the thread. */
	struct io_uring		ring;
	/*
	 * Ring entries in use: reqs_on_ring requests plus the wake-up read when wake_armed.
	 * Invariant: reqs_on_ring <= cap - 1, so there is always room to re-arm the wake-up
	 * read, and cap <= SQ size <= CQ size / 2, so neither queue can overflow.
	 */
	unsigned		cap;
	unsigned		reqs_on_ring;
	bool			wake_armed;
	bool			stopping;	/* stop seen: the wake-up read is not re-armed */
	uint64_t		efd_val;	/* the wake-up read's buffer; its address tags it */
	struct rd_io_req	*bl_head, *bl_tail;	/* waiting for room on the ring */

	struct rd_io_counters	c;
};

struct rd_io {
	int			fd;
	bool			direct;
	uint64_t		size;

	unsigned		nthreads;
	struct rd_io_thread	*threads;
	atomic_uint		next_thread;	/* round-robin cursor */

	const struct rd_io_hooks *hooks;	/* tests only (rd_io_opts.hooks), or NULL */

	/*
	 * The volatile write cache (io.h, rd_io_flush). writes_done counts image writes that
	 * completed, counted before their end_io; writes_flushed is the highest flush_mark of a
	 * flush that succeeded. Invariant: writes_flushed <= writes_done, and every write
	 * counted up to writes_flushed is on stable storage.
	 */
	_Atomic uint64_t	writes_done;
	_Atomic uint64_t	writes_flushed;
	_Atomic uint64_t	flushes, flushes_skipped;

	_Atomic uint64_t	submitted;
	/* Submitted and not yet completed (callback returned). close waits for 0. */
	_Atomic uint64_t	pending;
	atomic_bool		closing;

	pthread_mutex_t		lock;		/* with cv: startup handshake, close waiting */
	pthread_cond_t		cv;
};

/* The I/O thread this thread is, or NULL: the synchronous helpers refuse to run on one. */
static __thread struct rd_io_thread *rd_io_self;

static void stat_add(_Atomic uint64_t *c, uint64_t n)
{
	/* Only the owning thread writes: a load and a store are enough, and cheaper than a
	 * locked add. Release/acquire so that a reader who sees a completion also sees the
	 * submission counted before it (in_flight never goes negative). */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_release);
}

static uint64_t stat_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_acquire);
}

/* ---- the thread's backlog (private, no lock) ------------------------------------------- */

static void backlog_push_front(struct rd_io_thread *t, struct rd_io_req *req)
{
	req->next = t->bl_head;
	t->bl_head = req;
	if (!t->bl_tail)
		t->bl_tail = req;
}

static struct rd_io_req *backlog_pop(struct rd_io_thread *t)
{
	struct rd_io_req *req = t->bl_head;

	t->bl_head = req->next;
	if (!t->bl_head)
		t->bl_tail = NULL;
	req->next = NULL;
	return req;
}

/* ---- waking ------------------------------------------------------------------------------ */

static void wake_thread(struct rd_io_thread *t)
{
	uint64_t one = 1;
	ssize_t n;

	do
		n = write(t->efd, &one, sizeof(one));
	while (n < 0 && errno == EINTR);
	/* An eventfd write of 1 can only fail on a bad fd: a bug, not a condition. */
	if (n != (ssize_t)sizeof(one)) {
		fprintf(stderr, "refdio: io: eventfd write: %s\n", strerror(errno));
		abort();
	}
}

static uint64_t wake_tag(struct rd_io_thread *t)
{
	return (uint64_t)(uintptr_t)&t->efd_val;
}

static void arm_wake(struct rd_io_thread *t)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);

	/* Invariant above: requests leave one entry free for this read. */
	assert(sqe && !t->wake_armed);
	io_uring_prep_read(sqe, t->efd, &t->efd_val, sizeof(t->efd_val), 0);
	io_uring_sqe_set_data64(sqe, wake_tag(t));
	t->wake_armed = true;
}

/* The wake-up read completed: take the shared queue, and re-arm unless stopping. */
static void take_queue(struct rd_io_thread *t)
{
	struct rd_io_req *head, *tail;
	bool stop;

	pthread_mutex_lock(&t->lock);
	head = t->q_head;
	tail = t->q_tail;
	t->q_head = t->q_tail = NULL;
	t->woken = false;
	stop = t->stop;
	pthread_mutex_unlock(&t->lock);

	if (head) {
		if (t->bl_tail)
			t->bl_tail->next = head;
		else
			t->bl_head = head;
		t->bl_tail = tail;
	}
	if (stop)
		t->stopping = true;
	else
		arm_wake(t);
}

/* ---- requests on the ring ---------------------------------------------------------------- */

static void prep_req(struct rd_io_thread *t, struct io_uring_sqe *sqe, struct rd_io_req *req)
{
	int fd = req->fd < 0 ? t->io->fd : req->fd;
	size_t left = req->len - req->done;
	unsigned n = left > RD_IO_MAX_XFER ? RD_IO_MAX_XFER : (unsigned)left;

	switch (req->op) {
	case RD_IO_READ:
		io_uring_prep_read(sqe, fd, (char *)req->buf + req->done, n, req->off + req->done);
		break;
	case RD_IO_WRITE:
		io_uring_prep_write(sqe, fd, (const char *)req->buf + req->done, n,
				    req->off + req->done);
		break;
	case RD_IO_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, req);
	t->reqs_on_ring++;
	stat_add(&t->c.sqes, 1);
}

static void req_end(struct rd_io_thread *t, struct rd_io_req *req, long res);

/* Moves requests from the backlog onto the ring while it has room. */
static void fill_ring(struct rd_io_thread *t)
{
	while (t->bl_head) {
		struct io_uring_sqe *sqe;

		if (t->bl_head->forced_res) {	/* failed by a hook: never issued */
			struct rd_io_req *req = backlog_pop(t);

			req_end(t, req, req->forced_res);
			continue;
		}
		if (t->reqs_on_ring + 1 >= t->cap) {
			stat_add(&t->c.ring_full, 1);
			break;
		}
		sqe = io_uring_get_sqe(&t->ring);
		if (!sqe) {	/* cannot happen while the invariant holds; stay queued if it does */
			stat_add(&t->c.ring_full, 1);
			break;
		}
		prep_req(t, sqe, backlog_pop(t));
	}
}

/* A flush that succeeded makes every write counted up to its mark stable. */
static void flushed_up_to(struct rd_io *io, uint64_t mark)
{
	uint64_t cur = atomic_load(&io->writes_flushed);

	assert(mark <= atomic_load(&io->writes_done));	/* a mark counts completed writes */
	/* Flushes may complete out of order: keep the highest mark. */
	while (cur < mark && !atomic_compare_exchange_weak(&io->writes_flushed, &cur, mark))
		;
	atomic_fetch_add(&io->flushes, 1);
}

/* Hands the request back to its owner. Nothing may touch req after end_io. */
static void req_end(struct rd_io_thread *t, struct rd_io_req *req, long res)
{
	struct rd_io *io = t->io;

	if (req->fd < 0 && req->op != RD_IO_READ) {
		if (io->hooks && io->hooks->complete)
			res = io->hooks->complete(io->hooks->priv, req, res);
		/* Counted before end_io: whoever learns of the write's completion there (and
		 * commits a key naming it) finds it counted, so the next rd_io_flush flushes. A
		 * failed write may have changed part of its range: it counts too. */
		if (req->op == RD_IO_WRITE && !req->forced_res)
			atomic_fetch_add(&io->writes_done, 1);
		else if (req->op == RD_IO_FLUSH && res == 0)
			flushed_up_to(io, req->flush_mark);
	}
	if (res < 0)
		stat_add(&t->c.errors, 1);
	stat_add(&t->c.completed, 1);
	req->end_io(req, res);

	/*
	 * Sequentially consistent with rd_io_close's store of closing and load of pending:
	 * either close sees pending reach 0, or this sees closing and wakes it (under io->lock,
	 * which close holds between its check and its wait).
	 */
	if (atomic_fetch_sub(&io->pending, 1) == 1 && atomic_load(&io->closing)) {
		pthread_mutex_lock(&io->lock);
		pthread_cond_broadcast(&io->cv);
		pthread_mutex_unlock(&io->lock);
	}
}

static void req_result(struct rd_io_thread *t, struct rd_io_req *req, int res)
{
	assert(t->reqs_on_ring > 0);
	t->reqs_on_ring--;

	if (res == -EAGAIN || res == -EINTR) {
		stat_add(&t->c.retries, 1);
		backlog_push_front(t, req);
		return;
	}
	if (req->op == RD_IO_FLUSH) {
		req_end(t, req, res);
		return;
	}
	if (res < 0) {
		/* An error after some progress ends the request short, with what was done. */
		req_end(t, req, req->done ? (long)req->done : res);
		return;
	}
	if (res > 0) {
		stat_add(req->op == RD_IO_READ ? &t->c.bytes_read : &t->c.bytes_written,
			 (uint64_t)res);
		req->done += (size_t)res;
		assert(req->done <= req->len);
		if (req->done < req->len) {
			stat_add(&t->c.resubmits, 1);
			backlog_push_front(t, req);
			return;
		}
	}
	/* Complete, or 0 bytes: end of file, or a /proc/PID/mem whose process is gone. */
	req_end(t, req, (long)req->done);
}

/* Takes every available completion off the ring and handles it. */
static void reap(struct rd_io_thread *t)
{
	struct { uint64_t ud; int res; } batch[RD_IO_REAP_BATCH];
	unsigned n, i;

	do {
		struct io_uring_cqe *cqe;
		unsigned head;

		/* Copy out and release the slots first: callbacks may run long enough that the
		 * kernel could use the room. */
		n = 0;
		io_uring_for_each_cqe(&t->ring, head, cqe) {
			batch[n].ud = io_uring_cqe_get_data64(cqe);
			batch[n].res = cqe->res;
			if (++n == RD_IO_REAP_BATCH)
				break;
		}
		io_uring_cq_advance(&t->ring, n);

		for (i = 0; i < n; i++) {
			if (batch[i].ud == wake_tag(t)) {
				t->wake_armed = false;
				take_queue(t);
			} else {
				struct rd_io_req *req = (void *)(uintptr_t)batch[i].ud;

				req_result(t, req, RD_IO_RESULT_HOOK(req, batch[i].res));
			}
		}
	} while (n == RD_IO_REAP_BATCH);
}

/* ---- the thread ---------------------------------------------------------------------------- */

static int ring_init(struct rd_io_thread *t)
{
	/* Best first; older kernels reject the newer flags with -EINVAL. */
	static const unsigned flag_sets[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int ret = -EINVAL;

	for (unsigned i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE | flag_sets[i];
		p.cq_entries = 2 * t->depth;
		ret = io_uring_queue_init_params(t->depth, &t->ring, &p);
		if (ret != -EINVAL)
			break;
	}
	if (ret)
		return ret;

	t->cap = t->ring.sq.ring_entries;
	if (t->cap > t->ring.cq.ring_entries / 2)
		t->cap = t->ring.cq.ring_entries / 2;
	return 0;
}

static void *io_thread_main(void *arg)
{
	struct rd_io_thread *t = arg;
	struct rd_io *io = t->io;
	char name[16];
	int ret;

	rd_io_self = t;
	snprintf(name, sizeof(name), "rd-io-%u", t->idx);
	pthread_setname_np(pthread_self(), name);	/* cosmetic: failure does not matter */

	ret = ring_init(t);
	pthread_mutex_lock(&io->lock);
	t->state = ret ? ret : 1;
	pthread_cond_broadcast(&io->cv);
	pthread_mutex_unlock(&io->lock);
	if (ret)
		return NULL;

	arm_wake(t);
	for (;;) {
		fill_ring(t);
		/* Stop is only sent once nothing is pending, so the backlog is empty by then. */
		if (t->stopping && !t->reqs_on_ring && !t->wake_armed) {
			assert(!t->bl_head);
			break;
		}
		ret = io_uring_submit_and_wait(&t->ring, 1);
		if (ret == -EAGAIN || ret == -ENOMEM) {
			/* The kernel is short of resources: let completions come back first. */
			struct timespec ts = { 0, 1000 * 1000 };

			nanosleep(&ts, NULL);
		} else if (ret < 0 && ret != -EINTR && ret != -EBUSY) {
			/* Bad fd or arguments to our own ring: a bug, nothing to recover. */
			fprintf(stderr, "refdio: io: io_uring_submit_and_wait: %s\n", strerror(-ret));
			abort();
		}
		if (io_uring_cq_has_overflow(&t->ring))
			stat_add(&t->c.cq_overflows, 1);
		reap(t);
	}
	io_uring_queue_exit(&t->ring);
	return NULL;
}

/* Stops and joins threads [0, io->nthreads); nothing may be pending. */
static void threads_stop(struct rd_io *io)
{
	for (unsigned i = 0; i < io->nthreads; i++) {
		struct rd_io_thread *t = &io->threads[i];

		pthread_mutex_lock(&t->lock);
		assert(!t->q_head);
		t->stop = true;
		pthread_mutex_unlock(&t->lock);
		wake_thread(t);
	}
	for (unsigned i = 0; i < io->nthreads; i++) {
		struct rd_io_thread *t = &io->threads[i];

		pthread_join(t->tid, NULL);
		close(t->efd);
		pthread_mutex_destroy(&t->lock);
	}
	io->nthreads = 0;
}

static int thread_start(struct rd_io *io, struct rd_io_thread *t)
{
	int ret;

	t->efd = eventfd(0, EFD_CLOEXEC);	/* blocking: io_uring then polls it, not -EAGAIN */
	if (t->efd < 0)
		return -errno;
	ret = -pthread_mutex_init(&t->lock, NULL);
	if (ret)
		goto err_efd;
	ret = -pthread_create(&t->tid, NULL, io_thread_main, t);
	if (ret)
		goto err_lock;

	pthread_mutex_lock(&io->lock);
	while (!t->state)
		pthread_cond_wait(&io->cv, &io->lock);
	ret = t->state < 0 ? t->state : 0;
	pthread_mutex_unlock(&io->lock);
	if (!ret)
		return 0;

	pthread_join(t->tid, NULL);
err_lock:
	pthread_mutex_destroy(&t->lock);
err_efd:
	close(t->efd);
	return ret;
}

static int threads_start(struct rd_io *io, const struct rd_io_opts *opts)
{
	unsigned n = opts->threads ? opts->threads : 1;
	unsigned depth = opts->queue_depth ? opts->queue_depth : RD_IO_DEFAULT_DEPTH;
	sigset_t all, old;
	int ret = 0;

	if (n > RD_IO_MAX_THREADS)
		n = RD_IO_MAX_THREADS;
	if (depth < RD_IO_MIN_DEPTH)
		depth = RD_IO_MIN_DEPTH;
	if (depth > RD_IO_MAX_DEPTH)
		depth = RD_IO_MAX_DEPTH;

	io->threads = calloc(n, sizeof(*io->threads));
	if (!io->threads)
		return -ENOMEM;

	/* I/O threads inherit a full signal mask: signals stay with the application's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < n; i++) {
		struct rd_io_thread *t = &io->threads[i];

		t->io = io;
		t->idx = i;
		t->depth = depth;
		ret = thread_start(io, t);
		if (ret)
			break;
		io->nthreads = i + 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	if (ret) {
		threads_stop(io);
		free(io->threads);
		io->threads = NULL;
	}
	return ret;
}

/* ---- public -------------------------------------------------------------------------------- */

static int image_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) ? -errno : 0;
	return -EINVAL;		/* an image is a regular file or a block device */
}

int rd_io_open(const char *path, const struct rd_io_opts *opts, struct rd_io **out)
{
	static const struct rd_io_opts defaults;
	struct rd_io *io;
	int flags, ret;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	ret = -pthread_mutex_init(&io->lock, NULL);
	if (ret)
		goto err_free;
	ret = -pthread_cond_init(&io->cv, NULL);
	if (ret)
		goto err_lock;

	flags = (opts->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	io->hooks = opts->hooks;
	io->direct = !opts->no_direct;
	io->fd = open(path, flags | (io->direct ? O_DIRECT : 0));
	if (io->fd < 0 && io->direct && errno == EINVAL) {
		/* The filesystem does not do O_DIRECT (ramfs, some FUSE mounts): go buffered. */
		io->direct = false;
		io->fd = open(path, flags);
	}
	if (io->fd < 0) {
		ret = -errno;
		goto err_cv;
	}
	ret = image_size(io->fd, &io->size);
	if (ret)
		goto err_fd;
	ret = threads_start(io, opts);
	if (ret)
		goto err_fd;

	*out = io;
	return 0;

err_fd:
	close(io->fd);
err_cv:
	pthread_cond_destroy(&io->cv);
err_lock:
	pthread_mutex_destroy(&io->lock);
err_free:
	free(io);
	return ret;
}

void rd_io_close(struct rd_io *io)
{
	if (!io)
		return;
	/* From a callback, this thread would wait for its own requests. */
	assert(!rd_io_self);

	atomic_store(&io->closing, true);
	pthread_mutex_lock(&io->lock);
	while (atomic_load(&io->pending))
		pthread_cond_wait(&io->cv, &io->lock);
	pthread_mutex_unlock(&io->lock);

	threads_stop(io);
	free(io->threads);
	close(io->fd);
	pthread_cond_destroy(&io->cv);
	pthread_mutex_destroy(&io->lock);
	free(io);
}

uint64_t rd_io_size(const struct rd_io *io)
{
	return io->size;
}

bool rd_io_is_direct(const struct rd_io *io)
{
	return io->direct;
}

int rd_io_fd(const struct rd_io *io)
{
	return io->fd;
}

void rd_io_submit(struct rd_io *io, struct rd_io_req *req)
{
	struct rd_io_thread *t;
	bool wake;

	assert(req->end_io);
	assert(req->op == RD_IO_READ || req->op == RD_IO_WRITE || req->op == RD_IO_FLUSH);
	assert(req->op == RD_IO_FLUSH || req->buf || !req->len);
	/* After close started, only callbacks of this io may add (continuation) work. */
	assert(!atomic_load(&io->closing) || (rd_io_self && rd_io_self->io == io));

	req->done = 0;
	req->next = NULL;
	req->forced_res = 0;
	req->flush_mark = 0;
	if (req->fd < 0 && req->op == RD_IO_FLUSH)
		req->flush_mark = atomic_load(&io->writes_done);
	if (req->fd < 0 && req->op != RD_IO_READ && io->hooks && io->hooks->submit) {
		int r = io->hooks->submit(io->hooks->priv, req);

		assert(r <= 0);
		req->forced_res = r;
	}
	atomic_fetch_add(&io->submitted, 1);
	/* Counted before it is visible to any thread, so pending cannot reach 0 under it. */
	atomic_fetch_add(&io->pending, 1);

	t = &io->threads[atomic_fetch_add_explicit(&io->next_thread, 1, memory_order_relaxed) %
			 io->nthreads];
	pthread_mutex_lock(&t->lock);
	if (t->q_tail)
		t->q_tail->next = req;
	else
		t->q_head = req;
	t->q_tail = req;
	wake = !t->woken;
	t->woken = true;
	pthread_mutex_unlock(&t->lock);
	if (wake)
		wake_thread(t);
}

/* ---- synchronous helpers ------------------------------------------------------------------- */

static void waiter_end_io(struct rd_io_req *req, long res)
{
	rd_completion_done(req->priv, res);
}

/* Submits one request and waits for it: bytes transferred or -errno. */
static long io_sync(struct rd_io *io, enum rd_io_op op, void *buf, size_t len, uint64_t off)
{
	struct rd_completion w;
	struct rd_io_req req = {
		.op = op, .fd = -1, .buf = buf, .off = off, .len = len,
		.end_io = waiter_end_io, .priv = &w,
	};

	/* An I/O thread waiting here could be the one that has to complete the request. */
	assert(!rd_io_self && "synchronous rd_io call on an I/O thread");
	if (rd_io_self)
		return -EDEADLK;

	rd_completion_init(&w);
	rd_io_submit(io, &req);
	return rd_completion_wait(&w);
}

static int sync_result(long res, size_t len)
{
	if (res < 0)
		return (int)res;
	return (size_t)res < len ? -RD_ERR_TRUNCATED : 0;
}

int rd_io_read(struct rd_io *io, void *buf, size_t len, uint64_t off)
{
	return sync_result(io_sync(io, RD_IO_READ, buf, len, off), len);
}

int rd_io_write(struct rd_io *io, const void *buf, size_t len, uint64_t off)
{
	/* The request's buf is not const because reads share it; a write never stores to it. */
	return sync_result(io_sync(io, RD_IO_WRITE, (void *)buf, len, off), len);
}

bool rd_io_has_unflushed(struct rd_io *io)
{
	return atomic_load(&io->writes_done) != atomic_load(&io->writes_flushed);
}

int rd_io_flush(struct rd_io *io)
{
	long res;

	/* Nothing completed since the last successful flush was submitted: the device holds
	 * nothing of ours in its cache. (Writes still in flight are not ours to flush: no
	 * flush covers a write that has not completed.) */
	if (!rd_io_has_unflushed(io)) {
		atomic_fetch_add(&io->flushes_skipped, 1);
		return 0;
	}
	res = io_sync(io, RD_IO_FLUSH, NULL, 0, 0);
	return res < 0 ? (int)res : 0;
}

/*
 * rd_io_buf_alloc's buffers come from the buffer cache (bufpool.h) with one page in front
 * that remembers their size, so that rd_io_buf_free, which is not told it, can give them
 * back to the right class. A FUSE read's reply buffer is one per read: cached, its pages
 * stay faulted in.
 */
struct io_buf_head {
	size_t len;		/* what was asked of rd_bufpool_get */
	uint64_t magic;
};
#define IO_BUF_MAGIC	0x72646275665f696full	/* "rdbuf_io" */
#define IO_BUF_HEAD	4096u

void *rd_io_buf_alloc(size_t len)
{
	size_t n = IO_BUF_HEAD + (len ? len : 1);
	struct io_buf_head *h;

	if (n < IO_BUF_HEAD)
		return NULL;	/* len near SIZE_MAX */
	h = rd_bufpool_get(n);
	if (!h)
		return NULL;
	h->len = n;
	h->magic = IO_BUF_MAGIC;
	memset((char *)h + IO_BUF_HEAD, 0, len);
	return (char *)h + IO_BUF_HEAD;
}

void rd_io_buf_free(void *buf)
{
	struct io_buf_head *h;

	if (!buf)
		return;
	h = (struct io_buf_head *)((char *)buf - IO_BUF_HEAD);
	assert(h->magic == IO_BUF_MAGIC);
	h->magic = 0;
	rd_bufpool_put(h, h->len);
}

void rd_io_stats(struct rd_io *io, struct rd_io_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < io->nthreads; i++) {
		struct rd_io_counters *c = &io->threads[i].c;

		out->sqes += stat_get(&c->sqes);
		out->resubmits += stat_get(&c->resubmits);
		out->retries += stat_get(&c->retries);
		out->completed += stat_get(&c->completed);
		out->errors += stat_get(&c->errors);
		out->ring_full += stat_get(&c->ring_full);
		out->cq_overflows += stat_get(&c->cq_overflows);
		out->bytes_read += stat_get(&c->bytes_read);
		out->bytes_written += stat_get(&c->bytes_written);
	}
	/* Read after the completions it must cover: a request is counted submitted first. */
	out->image_writes = atomic_load(&io->writes_done);
	out->flushes = atomic_load(&io->flushes);
	out->flushes_skipped = atomic_load(&io->flushes_skipped);
	out->submitted = atomic_load(&io->submitted);
	out->in_flight = out->submitted > out->completed ? out->submitted - out->completed : 0;
}
