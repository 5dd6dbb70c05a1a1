/*
 * fs_write.c - rd_fs_write and rd_fs_write_async: the filesystem's write call is the dio
 * engine (refdio/dio.h) over the caller's buffer, with the filesystem's own dio instance
 * and file sink (dio_fs.c). Every user write, from FUSE, the ioctls or this API, is thus
 * cut into chunks, reserved, written and committed by that one path, with its one policy
 * for short writes (a prefix on a chunk boundary: the bytes written when any were, else
 * the error; nothing after the prefix is visible).
 *
 * Must never: write by any other path than rd_fs_dio_submit; answer a write twice.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "data_int.h"
#include "refdio/dio_fs.h"
#include "refdio/errors.h"

/* The caller's buffer is the source, lent in place (as a FUSE write's receive buffer is):
 * the caller keeps it valid and unchanged until done, so there is nothing to reference. */
static void lent_get(void *owner)
{
	(void)owner;
}

static void lent_put(void *owner)
{
	(void)owner;
}

struct write_call {
	rd_fs_done_fn	done;
	void		*priv;
};

static void write_call_done(void *priv, long res)
{
	struct write_call wc = *(struct write_call *)priv;

	free(priv);
	wc.done(wc.priv, res);
}

void rd_fs_write_async(struct rd_fs *fs, uint64_t ino, const void *buf, size_t len,
		       uint64_t off, unsigned flags, rd_fs_done_fn done, void *priv)
{
	struct rd_dio_rbuf rb = { .data = buf, .len = len > SSIZE_MAX ? SSIZE_MAX : len,
				  .get = lent_get, .put = lent_put };
	struct rd_dio_args a = { .off = off, .strategy = RD_DIO_REFCTX, .issue = RD_DIO_INLINE,
				 .dsync = flags & RD_WRITE_DSYNC, .done = write_call_done };
	struct rd_dio_source *src;
	struct write_call *wc;
	int ret;

	if (flags & ~RD_WRITE_DSYNC) {
		done(priv, -EINVAL);
		return;
	}
	wc = malloc(sizeof(*wc));
	if (!wc) {
		done(priv, -ENOMEM);
		return;
	}
	*wc = (struct write_call){ .done = done, .priv = priv };
	a.priv = wc;
	ret = rd_dio_source_rbuf(&rb, &src);
	if (!ret)
		ret = rd_fs_dio_submit(fs, fs->dio, ino, src, &a, NULL);
	if (ret) {	/* done will never be called by dio: answer here */
		free(wc);
		done(priv, ret);
	}
}

static void write_sync_done(void *priv, ssize_t res)
{
	rd_completion_done(priv, res);
}

ssize_t rd_fs_write(struct rd_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
		    unsigned flags)
{
	struct rd_completion c;

	rd_completion_init(&c);
	rd_fs_write_async(fs, ino, buf, len, off, flags, write_sync_done, &c);
	return rd_completion_wait(&c);
}
