/*
 * ioctl.c - the mount's ioctls: dispatch (each command to its file, the file handle
 * checked), setup and teardown of their state. The rules the ioctl files keep together
 * are in ioctl.h.
 *
 * Must never: start a write through a file handle that is not open for writing.
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
_Static_assert(REFDIO_CHUNK_MAX == RD_DIO_CHUNK_MAX, "one chunk limit, ioctls and engine");

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

/* The file handle, if it is open for writing; else -EBADF. */
static int writable_fh(struct rd_daemon *d, struct fuse_file_info *fi, struct rd_fh *out)
{
	if (!rd_fh_decode(fi, out) || (out->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if (d->opts.read_only)
		return -EROFS;
	return 0;
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
	if (c == REFDIO_IOC_GC) {
		rd_ioctl_gc(req, in_buf, in_bufsz, out_bufsz);
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

