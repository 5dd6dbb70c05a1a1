/*
 * bufpool.h - a process-wide cache of page-aligned I/O buffers, by size class.
 *
 * Owns: the free buffers. The data path's per-request buffers (region reads, write
 * bounces and edge blocks, FUSE read replies through rd_io_buf_alloc) come from here, so a
 * request reuses memory that is already mapped and faulted in instead of a fresh mmap of
 * glibc's (every allocation above its mmap threshold is one, and its munmap on free), whose
 * page faults cost more than the I/O on a virtual machine.
 *
 * Sizes: a request is rounded up to its class (4 KiB steps up to 16 KiB, then four classes
 * per doubling: at most a quarter wasted) up to RD_BUFPOOL_MAX_CLASS; larger ones are plain
 * aligned allocations, never cached. At most RD_BUFPOOL_CACHE bytes are kept free; a put
 * beyond that frees the buffer.
 *
 * Must never: hand out a buffer that is still out, keep more than the cap, or touch a
 * buffer's bytes (they are the caller's: not zeroed). Any thread; one short mutex.
 */
#ifndef RD_BUFPOOL_H
#define RD_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#define RD_BUFPOOL_MAX_CLASS	(16u << 20)
#define RD_BUFPOOL_CACHE	(16u << 20)

/* A buffer of at least len bytes (len > 0), 4096-aligned, contents undefined; NULL if out
 * of memory. */
void *rd_bufpool_get(size_t len);
/* Gives back a buffer from rd_bufpool_get with the same len; NULL is ignored. */
void rd_bufpool_put(void *buf, size_t len);

struct rd_bufpool_stats {
	uint64_t gets;		/* rd_bufpool_get calls */
	uint64_t hits;		/* of those, served from the cache */
	uint64_t cached;	/* bytes kept free now */
	uint64_t cap;		/* the most kept free */
};
void rd_bufpool_stats(struct rd_bufpool_stats *out);
/* Tests only: sets the cap (frees what is above it); returns the old one. */
uint64_t rd_bufpool_set_cap(uint64_t cap);

#endif
