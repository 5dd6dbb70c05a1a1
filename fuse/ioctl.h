/*
 * ioctl.h - what the daemon's ioctl files share (private to fuse/): the mount's ioctls
 * (include/refdio_ioctl.h) are direct writes from the caller's own memory, synchronous or
 * asynchronous, the collection of asynchronous results, and the statistics snapshot.
 *
 *   ioctl.c        dispatch (the file handle checked), setup and teardown;
 *   ioctl_common.c what every write passes: the list of writes in flight, the check of
 *                  its arguments, the caller's identity and memory as a source;
 *   ioctl_sync.c   REFDIO_IOC_DIO_WRITE (struct sync_write);
 *   ioctl_async.c  REFDIO_IOC_DIO_SUBMIT and _WAIT: the table of asynchronous writes
 *                  (struct async_write, struct wait_req) and its helper thread;
 *   ioctl_stats.c  REFDIO_IOC_STATS.
 *
 * Lifetime rules:
 *  - The caller's identity (engine/dio/dio_caller.c) is taken in the handler, while the
 *    caller is blocked in the request: the thread id is the request's (fuse_req_ctx), never
 *    a field of the caller's struct; the thread must be sitting in this very ioctl (same
 *    command, same argument) and its process is then pinned by a pidfd and checked after
 *    every read, so a connection abort or request timeout racing the handler can never
 *    make the daemon read another process's memory.
 *  - Every ioctl write is in ioc->live from before its submission until it is answered
 *    (its completion unlinks it); rd_ioctl_stop cancels them all, and ioc->stopping
 *    refuses new ones (ESHUTDOWN). A write whose handle is not stored yet is cancelled by
 *    its handler, which sees lw.cancel when it stores the handle.
 *  - A request registered for interrupts is unregistered (fuse_req_interrupt_func with
 *    NULL) before its reply: libfuse runs interrupt callbacks under the request's lock, so
 *    this waits for a callback running at that moment, and the callback's data never
 *    outlives the request. Interrupt callbacks never reply themselves (libfuse may still
 *    hold the request's lock after they return): an interrupted DIO_WAIT is answered EINTR
 *    by the helper thread.
 *  - A write's completion (a dio worker) never calls into the kernel's notifications: it
 *    queues its invalidation to the notifier (fuse/notify.c, where the rule is), which
 *    invalidates and then answers (sync) or publishes the result (async).
 *  - A struct sync_write has two references: the handler's (until the write's handle is
 *    stored) and the completion's (until the reply).
 *  - A struct async_write is in the table from before its submission until its result is
 *    collected (DIO_WAIT, or the failure of its own submission) or dropped: results not
 *    collected within ASYNC_TTL_S seconds are dropped, and a user with ASYNC_PER_UID
 *    entries makes room by dropping its own oldest result (counted in async_expired); a
 *    full table drops the oldest result of the user holding most. Only done entries ever
 *    leave the table, so the write's completion always finds its entry; it stores nothing
 *    into it after releasing the table lock.
 *
 * Locking order: libfuse's request lock (interrupt callbacks) -> ioc->lock -> a write's
 * own lock (rd_dio_cancel). Replies are sent with no lock of ours held.
 *
 * Must never: read the caller's memory other than through the procmem source, write
 * through a file handle that is not open for writing, reply to a request twice, or call a
 * kernel notification from any thread but the notifier.
 */
#ifndef RD_FUSE_IOCTL_H
#define RD_FUSE_IOCTL_H

#include <stdint.h>
#include <time.h>

#include "daemon.h"
#include "notify.h"
#include "refdio.h"
#include "refdio_ioctl.h"

struct async_write;
struct uid_count;
struct wait_req;

/* One ioctl write in flight, synchronous or asynchronous (all fields under ioc->lock). */
struct live_write {
	struct live_write	*next, *prev;	/* in ioc->live */
	struct rd_dio_write	*w;		/* the handle, once stored */
	bool			cancel;		/* cut it as soon as the handle is there */
};

/* The ioctls' state (d->ioc); the table's fields belong to ioctl_async.c. */
struct rd_ioctl {
	struct rd_daemon	*d;
	pthread_mutex_t		lock;
	pthread_cond_t		cond;		/* the helper: EINTR replies to send, or stop */
	pthread_cond_t		idle;		/* nr_running reached 0 */
	struct async_write	*head;
	struct uid_count	*uids;		/* entries per user */
	struct live_write	*live;		/* every ioctl write in flight */
	unsigned		nr, nr_running;	/* table entries; writes in live */
	bool			stopping;	/* refuse new writes */
	uint64_t		next_id;
	uint64_t		expired;
	struct wait_req		*eintr;		/* interrupted waits to answer */
	bool			stop;
	bool			helper_started;
	pthread_t		helper;
};

static inline struct rd_daemon *rd_ioctl_daemon(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline uint64_t rd_ioctl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ioctl_common.c: the live list (ioc->lock held for the _locked ones), a write's checks. */
void rd_ioctl_live_link_locked(struct rd_ioctl *ioc, struct live_write *lw);
void rd_ioctl_live_unlink_locked(struct rd_ioctl *ioc, struct live_write *lw);
void rd_ioctl_live_set_handle(struct rd_ioctl *ioc, struct live_write *lw,
			      struct rd_dio_write *w);
int rd_ioctl_dio_args_from(struct rd_daemon *d, const struct refdio_dio_write *in,
			   const struct rd_fh *fh, uid_t uid, struct rd_dio_args *a);
int rd_ioctl_caller_source(fuse_req_t req, unsigned cmd, const void *arg, bool whole_process,
			   const struct refdio_dio_write *in, struct rd_dio_source **src);

/* ioctl_sync.c */
void rd_ioctl_dio_write(fuse_req_t req, fuse_ino_t ino, struct rd_fh *fh, unsigned cmd,
			const void *arg, const struct refdio_dio_write *in);

/* ioctl_async.c: the helper thread starts at init; at stop the results stay but their
 * write handles go; at exit (every write done) the helper stops and the table goes. */
int rd_ioctl_async_start(struct rd_ioctl *ioc);
void rd_ioctl_async_drop_handles_locked(struct rd_ioctl *ioc);
void rd_ioctl_async_exit(struct rd_ioctl *ioc);
void rd_ioctl_dio_submit(fuse_req_t req, fuse_ino_t ino, struct rd_fh *fh, unsigned cmd,
			 const void *arg, const struct refdio_dio_write *in);
void rd_ioctl_dio_wait(fuse_req_t req, const struct refdio_dio_wait *in);
/* Fills st's async fields (counts and up to REFDIO_STATS_MAX_ASYNC entries). */
void rd_ioctl_async_stats(struct rd_ioctl *ioc, struct refdio_stats *st);

/* ioctl_stats.c */
void rd_ioctl_stats(fuse_req_t req, const void *in_buf, size_t size);

#endif
