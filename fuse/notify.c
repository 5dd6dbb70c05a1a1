/*
 * notify.c - the notifier thread: the only thread of the daemon that calls into the
 * kernel's reverse notifications, and the queue that feeds it.
 *
 * Owns: struct rd_notify (the queue, the thread, the closed flag). The entries belong to
 * whoever queued them (intrusive: queuing never allocates, never fails, never blocks); the
 * notifier owns an entry from rd_notify_queue until it calls its `then`.
 *
 * THE RULE: no thread that a FUSE request needs in order to be answered may ever wait in a
 * kernel notification. fuse_lowlevel_notify_inval_inode waits, in the kernel, for the lock
 * of every cached page in the range. A buffered write into a partial, uncached page holds
 * that page locked until its FUSE_WRITE (or the FUSE_READ filling the page) is answered,
 * and answering it needs the receive threads, the dio workers (commit and reply), the data
 * workers and the I/O threads. If any of those waited for the page, the write would never
 * be answered and the page never unlocked: with one dio worker, a single invalidation is
 * enough to hang the mount (reproduced: four ioctl writers and one buffered writer of the
 * same 1 MiB, every dio worker asleep in __folio_lock). So:
 *   - only this thread calls fuse_lowlevel_notify_*; everyone else queues an entry;
 *   - nothing that a request other than an ioctl write needs ever waits for this thread.
 *     The ioctl writes' replies do (the caller's next read must see the new bytes), and
 *     that is safe: a caller blocked in an ioctl holds no page lock, so no page lock
 *     holder ever waits for the notifier, and every page lock it waits for is released by
 *     a request answered without it;
 *   - teardown: a notification can only end once the requests the page lock holders wait
 *     for are answered, so the daemon closes the notifier (rd_notify_close) while it still
 *     receives requests (on SIGTERM, before the receive loop stops), or after the
 *     connection is gone (unmount: the kernel has no inode left to invalidate, the call
 *     fails at once). After close no kernel call is made at all: a cache about to go away
 *     with its mount needs no invalidation.
 *
 * Coalescing and bound: the thread takes the whole queue at once and makes one call per
 * inode, over the hull of the ranges queued for it, before running every entry's `then`.
 * The queue holds at most one entry per ioctl write in flight (the entries live in them),
 * which the ioctl layer bounds (synchronous: one per caller thread; asynchronous: the
 * table's size).
 *
 * Must never: block anywhere but in the kernel call and its own condition wait, call
 * `then` twice, or make a kernel call after rd_notify_close returned.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "daemon.h"
#include "notify.h"

struct rd_notify {
	struct rd_daemon	*d;
	pthread_mutex_t		lock;
	pthread_cond_t		cond;		/* work queued, or stopping */
	pthread_cond_t		idle;		/* out of a kernel call, queue empty */
	struct rd_notify_ent	*head, *tail;
	bool			busy;		/* taking a batch through */
	bool			closed;		/* no kernel calls any more */
	bool			stop;
	pthread_t		thread;
};

/* One batch: an invalidation per inode over the hull of its ranges, then every `then`. */
static void notify_batch(struct rd_notify *n, struct rd_notify_ent *list, bool call)
{
	if (call) {
		for (struct rd_notify_ent *e = list; e; e = e->next) {
			uint64_t lo = e->off, hi = e->off + e->len;
			bool first = true;

			/* Only the first entry of an inode makes the call. */
			for (struct rd_notify_ent *x = list; x != e; x = x->next)
				if (x->ino == e->ino)
					first = false;
			if (!first)
				continue;
			for (struct rd_notify_ent *x = e->next; x; x = x->next) {
				if (x->ino != e->ino)
					continue;
				if (x->off < lo)
					lo = x->off;
				if (x->off + x->len > hi)
					hi = x->off + x->len;
			}
			(void)fuse_lowlevel_notify_inval_inode(n->d->se, e->ino, (off_t)lo,
							       (off_t)(hi - lo));
		}
	}
	while (list) {
		struct rd_notify_ent *e = list;

		list = e->next;
		e->then(e);
	}
}

static void *notify_main(void *arg)
{
	struct rd_notify *n = arg;

	pthread_mutex_lock(&n->lock);
	for (;;) {
		struct rd_notify_ent *list;
		bool call;

		while (!n->head && !n->stop)
			pthread_cond_wait(&n->cond, &n->lock);
		if (!n->head)
			break;
		list = n->head;
		n->head = n->tail = NULL;
		assert(!n->busy);
		n->busy = true;
		call = !n->closed;
		pthread_mutex_unlock(&n->lock);
		notify_batch(n, list, call);
		pthread_mutex_lock(&n->lock);
		n->busy = false;
		if (!n->head)
			pthread_cond_broadcast(&n->idle);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int rd_notify_init(struct rd_daemon *d)
{
	struct rd_notify *n = calloc(1, sizeof(*n));
	int ret;

	if (!n)
		return -ENOMEM;
	n->d = d;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	pthread_cond_init(&n->idle, NULL);
	ret = -pthread_create(&n->thread, NULL, notify_main, n);
	if (ret) {
		pthread_cond_destroy(&n->idle);
		pthread_cond_destroy(&n->cond);
		pthread_mutex_destroy(&n->lock);
		free(n);
		return ret;
	}
	d->notify = n;
	return 0;
}

void rd_notify_queue(struct rd_daemon *d, struct rd_notify_ent *e)
{
	struct rd_notify *n = d->notify;

	pthread_mutex_lock(&n->lock);
	assert(e->then && n->tail != e);	/* queued at most once at a time */
	e->next = NULL;
	if (n->tail)
		n->tail->next = e;
	else
		n->head = e;
	n->tail = e;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

void rd_notify_close(struct rd_daemon *d)
{
	struct rd_notify *n = d->notify;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->closed = true;
	while (n->busy || n->head)
		pthread_cond_wait(&n->idle, &n->lock);
	pthread_mutex_unlock(&n->lock);
}

void rd_notify_exit(struct rd_daemon *d)
{
	struct rd_notify *n = d->notify;

	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->closed = true;
	n->stop = true;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->thread, NULL);
	assert(!n->head);	/* every entry's then was called */
	pthread_cond_destroy(&n->idle);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	free(n);
	d->notify = NULL;
}
