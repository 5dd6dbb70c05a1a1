/*
 * ioctl_common.c - what every ioctl write goes through, synchronous or asynchronous: the
 * list of writes in flight (ioc->live: what rd_ioctl_stop cuts), the check of the
 * caller's struct into dio arguments, and the caller's memory as a source (its identity
 * checked while it sits in this very ioctl). Rules in ioctl.h.
 *
 * Must never: read the caller's memory other than through the procmem source.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>

#include "ioctl.h"

/* ---- the live list ---------------------------------------------------------------- */

void rd_ioctl_live_link_locked(struct rd_ioctl *ioc, struct live_write *lw)
{
	lw->prev = NULL;
	lw->next = ioc->live;
	if (ioc->live)
		ioc->live->prev = lw;
	ioc->live = lw;
	ioc->nr_running++;
}

/* Out of the live list; wakes rd_ioctl_stop when it was the last. */
void rd_ioctl_live_unlink_locked(struct rd_ioctl *ioc, struct live_write *lw)
{
	if (lw->prev)
		lw->prev->next = lw->next;
	else
		ioc->live = lw->next;
	if (lw->next)
		lw->next->prev = lw->prev;
	lw->next = lw->prev = NULL;
	if (!--ioc->nr_running)
		pthread_cond_broadcast(&ioc->idle);
}

/* The handle is there: store it, and cut the write if it was to be cut meanwhile. */
void rd_ioctl_live_set_handle(struct rd_ioctl *ioc, struct live_write *lw,
			      struct rd_dio_write *w)
{
	pthread_mutex_lock(&ioc->lock);
	lw->w = w;
	if (lw->cancel && w)
		rd_dio_cancel(w);
	pthread_mutex_unlock(&ioc->lock);
}


/* Checks the caller's struct and turns it into dio arguments (done/priv left to set). */
int rd_ioctl_dio_args_from(struct rd_daemon *d, const struct refdio_dio_write *in,
			 const struct rd_fh *fh, uid_t uid, struct rd_dio_args *a)
{
	bool zero = !in->reserved0;

	for (size_t i = 0; i < sizeof(in->reserved) / sizeof(in->reserved[0]); i++)
		zero = zero && !in->reserved[i];
	if (!zero || (in->flags & ~REFDIO_DIO_DSYNC) || in->strategy > REFDIO_NR_STRATEGIES ||
	    in->issue > REFDIO_ISSUE_PUNT || in->window > 65536 || in->chunk % 4096 ||
	    in->chunk > REFDIO_CHUNK_MAX || in->offset > INT64_MAX || in->len > INT64_MAX)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->off = in->offset;
	a->strategy = in->strategy ? in->strategy - 1 : d->opts.dio_strategy;
	a->issue = in->issue ? in->issue - 1 : d->opts.dio_issue;
	a->window = in->window ? in->window : d->opts.dio_window;
	a->chunk = in->chunk ? in->chunk : d->opts.dio_chunk;
	/* The mount's caps: a window or chunk above them is a hint taken as far as allowed. */
	if (a->window > d->opts.max_window)
		a->window = d->opts.max_window;
	if (a->chunk > d->opts.max_chunk)
		a->chunk = d->opts.max_chunk;
	a->dsync = (in->flags & REFDIO_DIO_DSYNC) || rd_fh_dsync(d, fh, 0);
	a->owner = uid;		/* its share of the budget (-o max_held_user) */
	return 0;
}


/* The caller's memory as a source: its identity checked now, while it is blocked in this
 * very ioctl (cmd, arg), then after every read (engine/dio/dio_caller.c). */
int rd_ioctl_caller_source(fuse_req_t req, unsigned cmd, const void *arg, bool whole_process,
			 const struct refdio_dio_write *in, struct rd_dio_source **src)
{
	struct rd_daemon *d = rd_ioctl_daemon(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct rd_dio_caller_expect ex = { .nr = SYS_ioctl, .arg1 = cmd,
					   .arg2 = (uint64_t)(uintptr_t)arg };
	struct rd_dio_caller *c;
	int ret;

	ret = rd_dio_caller_open(ctx->pid, whole_process, &ex, &c);
	if (ret)
		return ret;
	ret = rd_dio_source_procmem(d->readers, c, ctx->uid, in->buf, in->len, src);
	rd_dio_caller_put(c);
	return ret;
}
