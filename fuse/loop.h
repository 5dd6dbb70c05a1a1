/*
 * loop.h - refdio's own FUSE session loop.
 *
 * Owns: the receiving threads, their signal handling, and the hand-off of receive buffers
 * (rbuf.h). Each thread receives into a buffer from the pool, processes the request, and
 * keeps the buffer for the next receive only if nothing else took a reference to it.
 *
 * Ending: the loop ends when the filesystem is unmounted (the kernel's read fails with
 * ENODEV), or when SIGTERM, SIGINT or SIGHUP arrives: then receiving stops, and threads
 * blocked in read() are woken with SIGUSR1 (libfuse's fuse_session_exit alone does not
 * wake them). On a signal, o->quiesce runs first, while requests are still received.
 * Requests still in flight are the caller's to drain after rd_loop_run.
 */
#ifndef RD_LOOP_H
#define RD_LOOP_H

#include <stdbool.h>

#include <fuse_lowlevel.h>

#include "rbuf.h"

struct rd_loop_opts {
	unsigned threads;	/* receiving threads; 0 = 4 */
	/* On a terminating signal, called on the main thread before receiving stops: the
	 * receive threads keep answering requests until it returns. May block. */
	void	(*quiesce)(void *priv);
	void	*priv;
};

struct rd_loop_result {
	int	signal;		/* the signal that ended the loop, 0 if unmounted */
	int	error;		/* 0, or the receive error that ended it */
};

/* Runs until unmount or a terminating signal. Call from the main thread; it blocks the
 * terminating signals in every thread and takes them itself. */
int rd_loop_run(struct fuse_session *se, struct rd_rbuf_pool *pool,
		const struct rd_loop_opts *o, struct rd_loop_result *res);

#endif
