/*
 * io.h - the engine's I/O layer on io_uring.
 *
 * Owns: the image file descriptor (opened O_DIRECT when the filesystem under it allows),
 * the rings, and the I/O threads that own them. Requests are submitted from any thread
 * through a queue and complete through a callback on an I/O thread. Partial transfers are
 * resubmitted for the remainder; a transfer that reaches end of file (or, for a foreign fd
 * such as /proc/PID/mem, a 0-byte read) completes with the bytes done so far.
 *
 * Must never: block in a completion callback (callbacks run on the I/O thread: they may take
 * short mutexes and submit more I/O, nothing else), or do blocking pread/pwrite on the data
 * path. The synchronous helpers below are for metadata and tools; they wait on a completion.
 *
 * Alignment: with O_DIRECT, buffers, offsets and lengths on the device must be multiples of
 * the device's logical block size; rd_io_buf_alloc() returns suitably aligned memory.
 */
#ifndef RD_IO_H
#define RD_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "refdio/image.h"

struct rd_io;

enum rd_io_op {
	RD_IO_READ,
	RD_IO_WRITE,
	RD_IO_FLUSH,	/* fdatasync of the device: orders durability of completed writes */
};

struct rd_io_req {
	enum rd_io_op	op;
	int		fd;	/* -1: the image; else any fd the caller keeps open */
	void		*buf;
	uint64_t	off;
	size_t		len;
	/*
	 * Called once, on an I/O thread, with the bytes transferred (possibly short at end of
	 * file) or a negative errno if nothing was transferred. The request memory belongs to
	 * the submitter again from this call on.
	 */
	void		(*end_io)(struct rd_io_req *req, long res);
	void		*priv;
	/* private to io.c */
	size_t		done;
	uint64_t	flush_mark;	/* RD_IO_FLUSH: image writes completed when submitted */
	int		forced_res;	/* a hook failed it: end with this, never issued */
	struct rd_io_req *next;
};

/*
 * A seam for tests (engine/core/io_model.c, the power-cut model, and write-order checks): sees
 * every write and flush of the image, and may fail one. Off unless rd_io_opts.hooks is set.
 */
struct rd_io_hooks {
	/*
	 * In rd_io_submit, before an image write or flush is queued, on the submitting thread
	 * (which may be an I/O thread: tests only, it may block briefly). A negative errno fails
	 * the request with that result without issuing it (end_io still comes later, on an I/O
	 * thread). The image holds the write's bytes only after its end_io.
	 */
	int	(*submit)(void *priv, const struct rd_io_req *req);
	/* On the I/O thread, right before end_io of an image write or flush: returns the
	 * result end_io gets (res, or an error in its place: a power cut in between). */
	long	(*complete)(void *priv, const struct rd_io_req *req, long res);
	void	*priv;
};

struct rd_io_opts {
	bool		read_only;
	bool		no_direct;	/* open without O_DIRECT (tests on tmpfs, tools) */
	unsigned	queue_depth;	/* ring entries per thread; 0 = 256 */
	unsigned	threads;	/* I/O threads; 0 = 1 */
	const struct rd_io_hooks *hooks;	/* tests only; must outlive the io */
};

/* Opens path (which must exist) and starts the I/O threads. */
int rd_io_open(const char *path, const struct rd_io_opts *opts, struct rd_io **out);
/* Waits for every submitted request to complete, then stops the threads and closes.
 * Once close has started, only completion callbacks may still submit (continuations of work
 * submitted before; close waits for them too); any other submission is a bug (asserted). */
void rd_io_close(struct rd_io *io);

/* Size of the image file in bytes, as of open. */
uint64_t rd_io_size(const struct rd_io *io);
/* Whether the image is open with O_DIRECT. */
bool rd_io_is_direct(const struct rd_io *io);
/* The image's fd, for tools that need it (never for data-path I/O). */
int rd_io_fd(const struct rd_io *io);

/* Queues req; end_io is called later, never from inside this call. */
void rd_io_submit(struct rd_io *io, struct rd_io_req *req);

/* Synchronous helpers: submit and wait. They return 0 only if all of len was transferred,
 * -RD_ERR_TRUNCATED on a short transfer, else -errno. Never call them on an I/O thread
 * (from a completion callback): that thread would wait for itself. Asserted; with NDEBUG
 * they return -EDEADLK there instead. */
int rd_io_read(struct rd_io *io, void *buf, size_t len, uint64_t off);
int rd_io_write(struct rd_io *io, const void *buf, size_t len, uint64_t off);

/*
 * The device's volatile write cache, as this layer sees it. Every image write is counted
 * when it completes (before its end_io); a flush records the count as of its submission,
 * and once it succeeds every write counted up to there is stable. rd_io_flush makes every
 * image write that completed before the call stable: it issues a device flush unless no
 * write completed since the last flush that succeeded was submitted (then there is nothing
 * to flush, and it returns at once). This is the one place that knows whether unflushed
 * writes exist, whoever wrote them (data, nodes, journal, superblock, repairs).
 */
int rd_io_flush(struct rd_io *io);
/* Whether some image write completed that no successful flush covers yet. */
bool rd_io_has_unflushed(struct rd_io *io);

/* (rd_io_buf_alloc and rd_io_buf_free: refdio/image.h) */

/* Counters since open, summed over the I/O threads. Each field is read on its own: the set
 * is not one atomic snapshot, so a live reader may see completed briefly ahead of another. */
struct rd_io_stats {
	uint64_t	submitted;	/* requests accepted by rd_io_submit */
	uint64_t	completed;	/* end_io calls made */
	uint64_t	in_flight;	/* submitted - completed: queued, on a ring, or resubmitted */
	uint64_t	sqes;		/* ring entries issued: first tries, resubmits, retries */
	uint64_t	resubmits;	/* continuations of partial transfers */
	uint64_t	retries;	/* -EAGAIN/-EINTR results issued again */
	uint64_t	errors;		/* requests completed with a negative result */
	uint64_t	ring_full;	/* times a thread left requests queued: its ring was full */
	uint64_t	cq_overflows;	/* times a completion queue overflow was seen (expect 0) */
	uint64_t	bytes_read;
	uint64_t	bytes_written;
	uint64_t	image_writes;	/* writes to the image completed */
	uint64_t	flushes;	/* device flushes completed successfully */
	uint64_t	flushes_skipped; /* rd_io_flush calls with nothing to flush */
};
void rd_io_stats(struct rd_io *io, struct rd_io_stats *out);

#endif
