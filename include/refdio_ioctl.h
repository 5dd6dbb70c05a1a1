/*
 * refdio_ioctl.h - the ioctls of a mounted refdio filesystem (public header, installed).
 *
 * Direct writes from the caller's own memory: the daemon reads the bytes of the calling
 * process with process_vm_readv (the process the kernel names for the request, never one
 * taken from these structs; honouring its protections), a chunk at a time, with a bounded
 * number of chunks in flight and under the mount's memory budget. One call writes any
 * length: the kernel does not split it.
 *
 *   REFDIO_IOC_DIO_WRITE   synchronous: returns when the write ended. A signal (FUSE
 *                          interrupt) stops it at the next chunk boundary; the call then
 *                          returns the bytes written so far. Returns 0 with result = bytes
 *                          written (fewer than len on a short write), or -1 with errno
 *                          when nothing was written (EFAULT: bad or unreadable address,
 *                          PROT_NONE included; ENOSPC; EINTR; EBADF: the file is not open
 *                          for writing; EINVAL: bad fields; ENOBUFS: the write can never
 *                          fit the mount's memory budget, -o max_held (pin: the whole
 *                          write at once), nothing was written; ETIMEDOUT: the caller's
 *                          memory did not answer within -o source_timeout; ESHUTDOWN: the
 *                          daemon is stopping).
 *   REFDIO_IOC_DIO_SUBMIT  asynchronous: returns at once with id; the write goes on in
 *                          the daemon. If the caller exits meanwhile, the write ends at
 *                          the next chunk boundary (a prefix stays written). EAGAIN: this
 *                          user already has 64 writes running or uncollected, all running
 *                          (older uncollected results of the same user make room first).
 *   REFDIO_IOC_DIO_WAIT    the result of a submitted write (by id): waits for it (a
 *                          signal interrupts the wait, not the write) or, with
 *                          REFDIO_WAIT_NOWAIT, fails with EAGAIN while it still runs.
 *                          Only the submitting user (or root) may collect a result, once.
 *   REFDIO_IOC_STATS       a snapshot of the daemon's direct-write statistics; on any
 *                          file or directory of the mount, the root included.
 *
 * The file must be open for writing (O_WRONLY or O_RDWR) for the three dio ioctls. Every
 * struct has a fixed size (FUSE carries only restricted ioctls: the kernel copies exactly
 * _IOC_SIZE bytes each way). Reserved fields must be zero. All integers are native-endian;
 * the layout is the same for 32- and 64-bit callers.
 *
 * Versions: struct refdio_stats may grow at its end in a later version (a new size, hence a
 * new command number with the same type and nr); the daemon answers any size from the
 * start of strategy[] up, filling what both sides know and saying so in size.
 */
#ifndef REFDIO_IOCTL_H
#define REFDIO_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

#define REFDIO_IOCTL_MAGIC	0xD1

/* struct refdio_dio_write.strategy: 0 = the mount's (-o strategy=) */
#define REFDIO_STRATEGY_DEFAULT	0
#define REFDIO_STRATEGY_REFCTX	1	/* a window of chunks in flight (the default) */
#define REFDIO_STRATEGY_PIN	2	/* all of it read into the daemon first */
#define REFDIO_STRATEGY_CHUNK	3	/* one chunk at a time */
#define REFDIO_STRATEGY_BOUNCE64 4	/* synchronous 256 KiB steps through one bounce buffer */
#define REFDIO_NR_STRATEGIES	4

/* struct refdio_dio_write.issue: 0 = the mount's (-o issue=) */
/* The largest chunk a write takes (struct refdio_dio_write's chunk). */
#define REFDIO_CHUNK_MAX	(64u << 20)

#define REFDIO_ISSUE_DEFAULT	0
#define REFDIO_ISSUE_INLINE	1	/* the request's thread starts the first chunks */
#define REFDIO_ISSUE_PUNT	2	/* always handed to a dio worker */

/* struct refdio_dio_write.flags */
#define REFDIO_DIO_DSYNC	(1u << 0)	/* durable before completion (as O_DSYNC) */

struct refdio_dio_write {
	uint64_t	buf;		/* in: address of the bytes in the caller's memory */
	uint64_t	len;		/* in: bytes to write (any length) */
	uint64_t	offset;		/* in: file offset of the first byte */
	uint32_t	flags;		/* in: REFDIO_DIO_* */
	uint32_t	strategy;	/* in: REFDIO_STRATEGY_* */
	uint32_t	window;		/* in: refctx chunks in flight; 0 = the mount's; cut
					 * to the mount's -o max_window */
	uint32_t	chunk;		/* in: chunk bytes, a multiple of 4096 up to
					 * REFDIO_CHUNK_MAX;
					 * 0 = the mount's; cut to -o max_chunk */
	uint32_t	issue;		/* in: REFDIO_ISSUE_* */
	uint32_t	reserved0;
	uint64_t	id;		/* out (SUBMIT): the write's id, never 0 */
	int64_t		result;		/* out (WRITE): bytes written */
	uint64_t	elapsed_ns;	/* out (WRITE): from submission to completion */
	uint64_t	reserved[4];
};

/* struct refdio_dio_wait.flags */
#define REFDIO_WAIT_NOWAIT	(1u << 0)	/* EAGAIN instead of waiting */

/* state of an asynchronous write */
#define REFDIO_ASYNC_RUNNING	1
#define REFDIO_ASYNC_DONE	2

struct refdio_dio_wait {
	uint64_t	id;		/* in */
	uint32_t	flags;		/* in: REFDIO_WAIT_* */
	uint32_t	state;		/* out: REFDIO_ASYNC_DONE */
	int64_t		result;		/* out: bytes written (a prefix, on a chunk boundary,
					 * when short), or -errno when none were (ESRCH: the
					 * caller was gone before anything was written) */
	uint64_t	len;		/* out: bytes asked for */
	uint64_t	elapsed_ns;	/* out: from submission to completion */
	uint64_t	reserved[3];
};

/* Counters of one strategy, since the mount (or the last REFDIO_STATS_RESET). */
struct refdio_strategy_stats {
	uint64_t	writes;		/* completed (ioctl writes and FUSE writes) */
	uint64_t	bytes;		/* written */
	uint64_t	chunks;		/* written */
	uint64_t	short_writes;	/* completed with fewer bytes than asked */
	uint64_t	failed;		/* completed with an error, nothing written */
	uint64_t	inflight_now;	/* chunks in flight over all writes */
	uint64_t	inflight_max;
	uint64_t	held_now;	/* bytes of chunk memory held by writes */
	uint64_t	held_peak;
	uint64_t	write_held_peak;	/* the most one write held */
	uint64_t	inline_submits;	/* started by the request's own thread */
	uint64_t	punted_submits;	/* handed to a dio worker */
	uint64_t	callers_gone;	/* writes ended because the caller exited */
	uint64_t	interrupts;	/* writes cut short by an interrupt */
	uint64_t	lat_p50_us;	/* write latency percentiles (histogram bucket upper */
	uint64_t	lat_p90_us;	/*  bounds, powers of two) */
	uint64_t	lat_p99_us;
	uint64_t	lat_max_us;	/* exact */
	uint64_t	reserved[6];
};

/* One asynchronous write still known to the daemon (running, or done and not collected). */
struct refdio_async_info {
	uint64_t	id;
	uint64_t	len;
	int64_t		result;		/* when state is REFDIO_ASYNC_DONE */
	uint32_t	pid;		/* the submitter */
	uint32_t	state;		/* REFDIO_ASYNC_* */
	uint32_t	strategy;	/* REFDIO_STRATEGY_* */
	uint32_t	reserved0;
	uint64_t	elapsed_ns;	/* so far, or until completion */
};

#define REFDIO_STATS_VERSION	2
#define REFDIO_STATS_MAX_STRATEGIES 8
#define REFDIO_STATS_MAX_ASYNC	16

/* struct refdio_stats.flags (in) */
#define REFDIO_STATS_RESET	(1u << 0)	/* zero counters and peaks after the snapshot */

struct refdio_stats {
	uint32_t	size;		/* in: sizeof(struct refdio_stats); out: bytes filled */
	uint32_t	version;	/* out: REFDIO_STATS_VERSION */
	uint32_t	flags;		/* in: REFDIO_STATS_* */
	uint32_t	nr_strategies;	/* out: entries used in strategy[] */
	uint64_t	rss_bytes;	/* out: the daemon's resident memory */
	uint64_t	uptime_ns;	/* out: since the mount */
	uint32_t	default_strategy;	/* out: the mount's, REFDIO_STRATEGY_* */
	uint32_t	default_issue;		/* out: REFDIO_ISSUE_* */
	uint32_t	default_window;
	uint32_t	default_chunk;
	uint64_t	requests_inflight;	/* FUSE requests not yet answered */
	uint64_t	rbufs_in_use;		/* receive buffers (1 MiB + 8 KiB each) */
	uint64_t	rbufs_peak;
	uint64_t	async_running;		/* asynchronous writes running */
	uint64_t	async_done;		/* finished, result not collected yet */
	uint64_t	async_expired;		/* results dropped uncollected (age or room) */
	uint32_t	nr_async;		/* entries used in async[] (newest first) */
	/* Version 2 (zero from a version 1 daemon): */
	uint32_t	max_window;		/* out: -o max_window */
	uint64_t	daemon_pid;		/* out: the daemon's process id */
	uint64_t	budget_max;		/* out: -o max_held: chunk-buffer bytes at most */
	uint64_t	budget_max_user;	/* out: -o max_held_user: of it, one user's */
	uint64_t	budget_held;		/* out: reserved by writes now */
	uint64_t	budget_peak;		/* out: the most reserved at once */
	uint64_t	budget_waits;		/* out: writes that waited for the budget */
	uint64_t	reads_stalled;		/* out: reads of a caller's memory written off
						 * (timed out or cancelled) and still stuck */
	uint32_t	max_chunk;		/* out: -o max_chunk (bytes) */
	uint32_t	reads_timed_out;	/* out: reads that passed -o source_timeout */
	struct refdio_strategy_stats strategy[REFDIO_STATS_MAX_STRATEGIES];
	struct refdio_async_info async[REFDIO_STATS_MAX_ASYNC];
};

#define REFDIO_IOC_DIO_WRITE	_IOWR(REFDIO_IOCTL_MAGIC, 1, struct refdio_dio_write)
#define REFDIO_IOC_DIO_SUBMIT	_IOWR(REFDIO_IOCTL_MAGIC, 2, struct refdio_dio_write)
#define REFDIO_IOC_DIO_WAIT	_IOWR(REFDIO_IOCTL_MAGIC, 3, struct refdio_dio_wait)
#define REFDIO_IOC_STATS	_IOWR(REFDIO_IOCTL_MAGIC, 4, struct refdio_stats)

/*
 * Copying GC on a mounted filesystem (on any file or directory of the mount). Without
 * REFDIO_GC_RUN it only reads the counters; with it, a full GC pass runs first, in the
 * request's thread (the call returns when the pass is done), and run_* say what it did.
 */
#define REFDIO_GC_RUN		(1u << 0)

struct refdio_gc {
	uint32_t	flags;		/* in: REFDIO_GC_* */
	uint32_t	reserved0;
	/* out, with REFDIO_GC_RUN: this pass */
	uint64_t	run_rounds, run_buckets_freed, run_extents_moved, run_bytes_moved;
	uint64_t	run_bytes_read, run_skipped, run_empty_before, run_empty_after;
	/* out: since the mount (mover thread and forced passes) */
	uint64_t	rounds, buckets_freed, extents_moved, bytes_moved, bytes_read, skipped;
	uint64_t	waits;		/* writes that waited for the mover to win space */
	uint64_t	reserved[8];
};

#define REFDIO_IOC_GC		_IOWR(REFDIO_IOCTL_MAGIC, 5, struct refdio_gc)

#endif
