/*
 * ioctl.c - the mount's ioctls: dispatch, setup and teardown, the list of every ioctl write
 * in flight (what rd_ioctl_stop cuts), and the checks every direct write passes before it
 * starts (its arguments, its file handle, the caller's identity). The rules the ioctl files
 * keep together are in ioctl.h.
 *
 * Must never: read the caller's memory other than through the procmem source, or write
 * through a file handle that is not open for writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "ioctl.h"

_Static_assert(sizeof(struct refdio_dio_write) == 104, "refdio_dio_write ABI");
_Static_assert(sizeof(struct refdio_dio_wait) == 64, "refdio_dio_wait ABI");
_Static_assert(sizeof(struct refdio_strategy_stats) == 192, "refdio_strategy_stats ABI");
_Static_assert(sizeof(struct refdio_async_info) == 48, "refdio_async_info ABI");
_Static_assert(sizeof(struct refdio_stats) == 2472, "refdio_stats ABI");
_Static_assert(RD_DIO_NR_STRATEGIES == REFDIO_NR_STRATEGIES, "strategy numbering");
_Static_assert(RD_DIO_NR_STRATEGIES <= REFDIO_STATS_MAX_STRATEGIES, "stats slots");
_Static_assert(REFDIO_CHUNK_MAX == RD_DIO_CHUNK_MAX, "one chunk limit for the ioctls and the engine");

bool rd_fh_dsync(const struct rd_daemon *d, const struct rd_fh *fh, int req_flags)
{
	/* O_SYNC includes the O_DSYNC bit. */
	return ((req_flags | (fh ? fh->flags : 0)) & O_DSYNC) || d->opts.sync;
}

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

int rd_ioctl_init(struct rd_daemon *d)
{
	struct rd_ioctl *ioc = calloc(1, sizeof(*ioc));
	int ret;

	if (!ioc)
		return -ENOMEM;
	ioc->d = d;
	ioc->next_id = 1;
	pthread_mutex_init(&ioc->lock, NULL);
	pthread_cond_init(&ioc->cond, NULL);
	pthread_cond_init(&ioc->idle, NULL);
	ret = rd_ioctl_async_start(ioc);
	if (ret) {
		pthread_cond_destroy(&ioc->idle);
		pthread_cond_destroy(&ioc->cond);
		pthread_mutex_destroy(&ioc->lock);
		free(ioc);
		return ret;
	}
	d->ioc = ioc;
	return 0;
}

void rd_ioctl_stop(struct rd_daemon *d)
{
	struct rd_ioctl *ioc = d->ioc;

	if (!ioc)
		return;
	pthread_mutex_lock(&ioc->lock);
	ioc->stopping = true;
	for (struct live_write *lw = ioc->live; lw; lw = lw->next) {
		lw->cancel = true;
		if (lw->w)
			rd_dio_cancel(lw->w);
	}
	/* Each ends at its next chunk boundary: reads of a caller that does not answer are
	 * abandoned, so this waits for disk I/O and the notifier, never for a caller. */
	while (ioc->nr_running)
		pthread_cond_wait(&ioc->idle, &ioc->lock);
	/* The results stay (for nobody now), the handles go: rd_dio_destroy waits for them. */
	rd_ioctl_async_drop_handles_locked(ioc);
	pthread_mutex_unlock(&ioc->lock);
}

void rd_ioctl_exit(struct rd_daemon *d)
{
	struct rd_ioctl *ioc = d->ioc;

	if (!ioc)
		return;
	rd_ioctl_async_exit(ioc);	/* every write is done: rd_dio_destroy ran */
	pthread_cond_destroy(&ioc->idle);
	pthread_cond_destroy(&ioc->cond);
	pthread_mutex_destroy(&ioc->lock);
	free(ioc);
	d->ioc = NULL;
}

/* ---- what every direct write passes --------------------------------------------- */

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

/* The file handle, if it is open for writing; else -EBADF. */
static int writable_fh(struct rd_daemon *d, struct fuse_file_info *fi, struct rd_fh *out)
{
	if (!rd_fh_decode(fi, out) || (out->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (d->opts.read_only)
		return -EROFS;
	return 0;
}

/* The caller's memory as a source: its identity checked now, while it is blocked in this
 * very ioctl (cmd, arg), then after every read (engine/dio_caller.c). */
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

/* ---- dispatch ---------------------------------------------------------------------- */

void rd_op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		 struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		 size_t in_bufsz, size_t out_bufsz)
{
	struct rd_daemon *d = rd_ioctl_daemon(req);
	unsigned c = cmd;
	struct refdio_dio_write win;
	struct rd_fh fhv, *fh = &fhv;
	int ret;

	(void)flags;	/* FUSE_IOCTL_COMPAT: the structs have one layout for both */
	if (_IOC_TYPE(c) != REFDIO_IOCTL_MAGIC) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if (_IOC_NR(c) == _IOC_NR(REFDIO_IOC_STATS) && _IOC_DIR(c) == (_IOC_READ | _IOC_WRITE)) {
		size_t size = _IOC_SIZE(c);

		if (size < offsetof(struct refdio_stats, strategy) || in_bufsz != size ||
		    out_bufsz != size) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		rd_ioctl_stats(req, in_buf, size);
		return;
	}
	if (c == REFDIO_IOC_DIO_WAIT) {
		struct refdio_dio_wait wait_in;

		if (in_bufsz != sizeof(wait_in) || out_bufsz != sizeof(wait_in)) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memcpy(&wait_in, in_buf, sizeof(wait_in));	/* no alignment assumed */
		rd_ioctl_dio_wait(req, &wait_in);
		return;
	}
	if (c != REFDIO_IOC_DIO_WRITE && c != REFDIO_IOC_DIO_SUBMIT) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if (in_bufsz != sizeof(win) || out_bufsz != sizeof(win)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(&win, in_buf, sizeof(win));
	ret = writable_fh(d, fi, fh);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (c == REFDIO_IOC_DIO_WRITE)
		rd_ioctl_dio_write(req, ino, fh, cmd, arg, &win);
	else
		rd_ioctl_dio_submit(req, ino, fh, cmd, arg, &win);
}

