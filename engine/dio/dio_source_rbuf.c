/*
 * dio_source_rbuf.c - a reference-counted receive buffer of the daemon as a dio source.
 *
 * Owns: the source's reference on the buffer: taken (get) by the constructor, dropped (put)
 * once when the write completes. Reads lend the buffer's bytes (zero-copy): they are the
 * daemon's own private copy of the request, which nobody changes while a reference is held.
 *
 * Must never: copy, or touch the buffer after put. The buffer's owner (the FUSE loop) is
 * reached only through the callbacks it gave: the engine includes no FUSE header.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "refdio/dio.h"
#include "util.h"

struct rbuf_source {
	struct rd_dio_source	src;
	struct rd_dio_rbuf	rb;
};

static void rbuf_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	struct rbuf_source *rs = container_of(src, struct rbuf_source, src);

	if (rd->pos > src->len || rd->len > src->len - rd->pos) {
		rd->done(rd, -EFAULT);
		return;
	}
	/* The grab keeps the bytes alive; the buffer cannot go away under a write. */
	assert(rs->rb.data || !rd->len);
	rd->data = (const char *)rs->rb.data + rd->pos;
	rd->done(rd, (long)rd->len);
}

static void rbuf_put(struct rd_dio_source *src)
{
	struct rbuf_source *rs = container_of(src, struct rbuf_source, src);

	if (rs->rb.put)
		rs->rb.put(rs->rb.owner);
	free(rs);
}

static const struct rd_dio_source_ops rbuf_ops = {
	.name	= "rbuf",
	.read	= rbuf_read,
	.put	= rbuf_put,
};

int rd_dio_source_rbuf(const struct rd_dio_rbuf *rb, struct rd_dio_source **out)
{
	struct rbuf_source *rs;

	*out = NULL;
	if (!rb || (!rb->data && rb->len) || !rb->get != !rb->put)
		return -EINVAL;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	rs->src.ops = &rbuf_ops;
	rs->src.len = rb->len;
	rs->src.flags = RD_DIO_SRC_ZERO_COPY;
	rs->rb = *rb;
	if (rs->rb.get)
		rs->rb.get(rs->rb.owner);	/* the grab */
	*out = &rs->src;
	return 0;
}
