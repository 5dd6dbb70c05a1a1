/*
 * loop.c - the FUSE session loop (see loop.h).
 *
 * Must never: reuse a receive buffer that a request still references, or call into
 * libfuse's own loops (their single reused buffer per thread is what this replaces).
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"

struct loop {
	struct fuse_session	*se;
	struct rd_rbuf_pool	*pool;
	atomic_bool		stopping;
	atomic_uint		running;	/* threads not yet finished */
	atomic_int		error;
};

static void wake_handler(int sig)
{
	(void)sig;	/* only here so that a blocked read() returns EINTR */
}

static void *loop_thread(void *arg)
{
	struct loop *l = arg;
	struct rd_rbuf *b = NULL;
	sigset_t wake;

	sigemptyset(&wake);
	sigaddset(&wake, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &wake, NULL);

	while (!atomic_load(&l->stopping) && !fuse_session_exited(l->se)) {
		int res;

		if (!b) {
			b = rd_rbuf_get(l->pool);
			if (!b) {
				atomic_store(&l->error, -ENOMEM);
				break;
			}
		}
		b->fbuf.size = l->pool->recv_size;
		b->fbuf.flags = 0;
		res = fuse_session_receive_buf(l->se, &b->fbuf);
		if (res == -EINTR || res == -EAGAIN)
			continue;
		if (res <= 0) {
			/* ENODEV: unmounted. 0: the session was ended. */
			if (res < 0 && res != -ENODEV)
				atomic_store(&l->error, res);
			break;
		}
		/* The request's bytes are in b (splice is never enabled): a write handler finds
		 * b from its payload (rd_rbuf_of_payload) and references it to keep it. */
		assert(!(b->fbuf.flags & FUSE_BUF_IS_FD));
		fuse_session_process_buf(l->se, &b->fbuf);
		/* A request kept the buffer: leave it to them, receive into another. */
		if (atomic_load(&b->refs) != 1) {
			atomic_fetch_add(&l->pool->handed_off, 1);
			rd_rbuf_put(b);
			b = NULL;
		}
	}
	if (b)
		rd_rbuf_put(b);
	atomic_store(&l->stopping, true);
	atomic_fetch_sub(&l->running, 1);
	return NULL;
}

int rd_loop_run(struct fuse_session *se, struct rd_rbuf_pool *pool,
		const struct rd_loop_opts *o, struct rd_loop_result *res)
{
	struct loop l = { .se = se, .pool = pool };
	unsigned n = o && o->threads ? o->threads : 4;
	struct sigaction sa = { .sa_handler = wake_handler };	/* no SA_RESTART */
	struct timespec tick = { .tv_sec = 0, .tv_nsec = 100 * 1000 * 1000 };
	sigset_t term, old;
	pthread_t *threads;
	unsigned started = 0;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	threads = calloc(n, sizeof(*threads));
	if (!threads)
		return -ENOMEM;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	/* Threads inherit this mask: terminating signals come only to sigtimedwait below,
	 * SIGUSR1 is unblocked by each loop thread for itself. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigaddset(&term, SIGHUP);
	sigaddset(&term, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	sigdelset(&term, SIGUSR1);

	for (; started < n; started++) {
		atomic_fetch_add(&l.running, 1);
		ret = -pthread_create(&threads[started], NULL, loop_thread, &l);
		if (ret) {
			atomic_fetch_sub(&l.running, 1);
			atomic_store(&l.stopping, true);
			break;
		}
	}

	while (atomic_load(&l.running)) {
		int sig = sigtimedwait(&term, NULL, &tick);

		if (sig > 0 && !res->signal) {
			res->signal = sig;
			/* Whatever must end while requests are still answered ends now. */
			if (o && o->quiesce)
				o->quiesce(o->priv);
			atomic_store(&l.stopping, true);
			fuse_session_exit(se);
		}
		/* Wake threads blocked in read(); repeated each tick, since a thread may have
		 * been just about to enter read() when the previous one arrived. */
		if (atomic_load(&l.stopping))
			for (unsigned i = 0; i < started; i++)
				pthread_kill(threads[i], SIGUSR1);
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	res->error = atomic_load(&l.error);
	return ret ? ret : res->error;
}
