/*
 * ioctl_sync.c - REFDIO_IOC_DIO_WRITE: one direct write from the caller's memory, answered
 * when it is done (struct sync_write, from the handler until the reply). Rules in ioctl.h.
 *
 * Must never: reply twice, reply from an interrupt callback, or call a kernel notification
 * from a dio worker (the notifier answers, fuse/notify.c).
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "ioctl.h"

struct sync_write {
	fuse_req_t		req;
	struct rd_daemon	*d;
	struct live_write	lw;		/* (ioc->lock) */
	struct rd_notify_ent	ne;		/* its invalidation, then sync_write_reply */
	fuse_ino_t		ino;
	long			res;
	struct refdio_dio_write	io;		/* the caller's struct, returned filled */
	uint64_t		t0;
	atomic_uint		refs;		/* the handler's and the completion's */
};

static void sync_write_put(struct sync_write *sw)
{
	unsigned old = atomic_fetch_sub(&sw->refs, 1);

	assert(old > 0);
	if (old != 1)
		return;
	rd_dio_write_put(sw->lw.w);
	free(sw);
}

/* FUSE_INTERRUPT (the caller got a signal): stop at the next chunk boundary. Runs under
 * libfuse's request lock; never replies. */
static void sync_write_interrupt(fuse_req_t req, void *data)
{
	struct sync_write *sw = data;
	struct rd_ioctl *ioc = sw->d->ioc;

	(void)req;
	pthread_mutex_lock(&ioc->lock);
	sw->lw.cancel = true;
	if (sw->lw.w)
		rd_dio_cancel(sw->lw.w);
	pthread_mutex_unlock(&ioc->lock);
}

/* The reply, once the kernel's cache of the range is invalidated (the notifier). */
static void sync_write_reply(struct rd_notify_ent *ne)
{
	struct sync_write *sw = (struct sync_write *)((char *)ne -
						      offsetof(struct sync_write, ne));
	struct rd_daemon *d = sw->d;

	fuse_req_interrupt_func(sw->req, NULL, NULL);
	if (sw->res < 0) {
		fuse_reply_err(sw->req, (int)-sw->res);
	} else {
		sw->io.result = sw->res;
		sw->io.elapsed_ns = rd_ioctl_now_ns() - sw->t0;
		fuse_reply_ioctl(sw->req, 0, &sw->io, sizeof(sw->io));
	}
	pthread_mutex_lock(&d->ioc->lock);
	rd_ioctl_live_unlink_locked(d->ioc, &sw->lw);
	pthread_mutex_unlock(&d->ioc->lock);
	sync_write_put(sw);
	rd_daemon_end(d);
}

/* The write's done (a dio worker): never a kernel notification here (fuse/notify.c). */
static void sync_write_done(void *priv, long res)
{
	struct sync_write *sw = priv;

	sw->res = res;
	sw->ne.ino = sw->ino;
	sw->ne.off = sw->io.offset;
	sw->ne.len = res > 0 ? (uint64_t)res : 0;
	sw->ne.then = sync_write_reply;
	if (res > 0)
		rd_notify_queue(sw->d, &sw->ne);
	else
		sync_write_reply(&sw->ne);
}

void rd_ioctl_dio_write(fuse_req_t req, fuse_ino_t ino, struct rd_fh *fh, unsigned cmd,
			    const void *arg, const struct refdio_dio_write *in)
{
	struct rd_daemon *d = rd_ioctl_daemon(req);
	struct rd_ioctl *ioc = d->ioc;
	struct rd_dio_source *src = NULL;
	struct rd_dio_write *w = NULL;
	struct sync_write *sw;
	struct rd_dio_args a;
	bool linked;
	int ret;

	ret = rd_ioctl_dio_args_from(d, in, fh, fuse_req_ctx(req)->uid, &a);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	sw = calloc(1, sizeof(*sw));
	if (!sw) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	sw->req = req;
	sw->d = d;
	sw->ino = ino;
	sw->io = *in;
	sw->t0 = rd_ioctl_now_ns();
	atomic_init(&sw->refs, 2);
	rd_daemon_begin(d);
	/* Before the write exists: an interrupt that came already is seen right here. */
	fuse_req_interrupt_func(req, sync_write_interrupt, sw);

	pthread_mutex_lock(&ioc->lock);
	ret = ioc->stopping ? -ESHUTDOWN : 0;
	if (!ret)
		rd_ioctl_live_link_locked(ioc, &sw->lw);
	pthread_mutex_unlock(&ioc->lock);
	linked = !ret;
	if (!ret)
		ret = rd_ioctl_caller_source(req, cmd, arg, false, in, &src);
	if (!ret) {
		a.done = sync_write_done;
		a.priv = sw;
		ret = rd_fs_dio_submit(d->fs, d->dio, ino, src, &a, &w);
	}
	if (ret) {
		/* Nothing started: the completion's reference is ours too. */
		fuse_req_interrupt_func(req, NULL, NULL);
		pthread_mutex_lock(&ioc->lock);
		if (linked)
			rd_ioctl_live_unlink_locked(ioc, &sw->lw);
		pthread_mutex_unlock(&ioc->lock);
		fuse_reply_err(req, -ret);
		sync_write_put(sw);
		sync_write_put(sw);
		rd_daemon_end(d);
		return;
	}
	rd_ioctl_live_set_handle(ioc, &sw->lw, w);
	sync_write_put(sw);
}

