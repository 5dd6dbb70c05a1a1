/*
 * rbuf.h - reference-counted FUSE receive buffers and their pool.
 *
 * Owns: the memory requests are read into. A buffer is referenced by the loop thread
 * that received into it and by every request still using its payload (a write whose data
 * goes to disk straight from the buffer). The loop thread reuses a buffer only when it
 * holds the last reference; otherwise it takes a fresh one and the buffer returns to the
 * pool when its last user drops it.
 *
 * Layout: the kernel puts a FUSE_WRITE payload 80 bytes after the start of the request
 * (fuse_in_header, then fuse_write_in); receiving at page start + 4096 - 80 makes the
 * payload page aligned, ready for O_DIRECT without a copy. The struct rd_rbuf itself lives
 * at the start of that first page, so a write's payload leads to its buffer: the handover
 * from the loop to a request handler is the payload pointer libfuse passes the handler
 * (rd_rbuf_of_payload), nothing on the side. It holds because every request is received
 * into a buffer of the pool (loop.c; splice is never enabled, ops.c's init).
 *
 * Must never: be reused or freed while a reference is held; block in rd_rbuf_put.
 */
#ifndef RD_RBUF_H
#define RD_RBUF_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fuse_lowlevel.h>

#define RD_RBUF_PAYLOAD_OFFSET	80	/* fuse_in_header + fuse_write_in */

struct rd_rbuf_pool;

struct rd_rbuf {
	uint32_t		magic;	/* RD_RBUF_MAGIC while allocated */
	atomic_uint		refs;
	struct rd_rbuf_pool	*pool;
	void			*base;	/* page-aligned allocation of pool->alloc_size */
	struct fuse_buf		fbuf;	/* fbuf.mem = base + page - RD_RBUF_PAYLOAD_OFFSET */
	struct rd_rbuf		*next;	/* free list (pool lock) */
};

struct rd_rbuf_pool {
	pthread_mutex_t		lock;
	pthread_cond_t		freed;
	struct rd_rbuf		*free;
	size_t			recv_size;	/* bytes libfuse may read into fbuf.mem */
	size_t			alloc_size;
	unsigned		total;		/* buffers in existence */
	unsigned		nr_free;
	unsigned		max;		/* hard cap: beyond it, receivers wait */
	unsigned		keep;		/* free buffers kept instead of freed */
	/* statistics */
	atomic_uint_fast64_t	handed_off;	/* receives whose buffer stayed referenced */
	unsigned		peak;
};

/* recv_size: at least libfuse's session buffer size (max_write + 4 KiB). */
int rd_rbuf_pool_init(struct rd_rbuf_pool *p, size_t recv_size, unsigned keep, unsigned max);
/* Every buffer must have been returned. */
void rd_rbuf_pool_destroy(struct rd_rbuf_pool *p);

/* A buffer with one reference (the caller's); waits while max buffers are in use. NULL if
 * memory ran out. */
struct rd_rbuf *rd_rbuf_get(struct rd_rbuf_pool *p);
void rd_rbuf_ref(struct rd_rbuf *b);
void rd_rbuf_put(struct rd_rbuf *b);

/*
 * The buffer a FUSE_WRITE's payload (the `buf` libfuse passes the write handler) was
 * received into: what the handler references to keep the payload after it returns. NULL
 * if the payload does not lie in a buffer of pool p where a write's payload lies (only a
 * broken invariant: the caller fails the request with EIO).
 */
struct rd_rbuf *rd_rbuf_of_payload(const struct rd_rbuf_pool *p, const void *payload,
				   size_t len);

#endif
