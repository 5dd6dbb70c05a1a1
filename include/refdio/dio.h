/*
 * refdio/dio.h - direct writes: one reference-counted object per write, fed from a caller source
 * and drained into a sink, a window of chunks at a time.
 *
 * Owns: the write object (struct rd_dio_write) and its lifetime, the chunk window, the
 * order in which extents become visible, the strategies, the dio worker threads and the
 * per-strategy statistics. Caller sources (where the caller's bytes are) live in
 * dio_source_*.c behind struct rd_dio_source; the storage behind struct rd_dio_sink is
 * provided by the layer above (the filesystem), which dio never calls any other way.
 *
 * Must never: hold more than `window` chunks of one write, make a chunk's extent visible
 * before every earlier chunk of the same write, read a caller's memory without a
 * get-if-alive, or call a write's done callback more than once or from inside
 * rd_dio_submit().
 *
 * A direct write, in one paragraph. rd_dio_submit() creates the write and returns at once.
 * The write is cut into chunks (default 1 MiB, capped by sink->max_chunk). Each chunk is
 * read from the source into a chunk buffer the write owns (zero-copy sources lend their
 * own private bytes instead), handed to sink->write() (asynchronous, may complete out of
 * order), then, once it and every chunk before it were written, sink->commit() makes its
 * extent visible. The first failure (a source read that finds the caller gone or faults,
 * a sink error such as ENOSPC, a cancel) fixes a stop position on a chunk boundary: the
 * chunks before it still commit, the ones after are aborted. Result: the bytes committed
 * when there are any, else the error.
 */
#ifndef RD_DIO_H
#define RD_DIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct rd_dio;
struct rd_dio_write;

/* ---- strategies ----------------------------------------------------------------------- */

enum rd_dio_strategy {
	RD_DIO_REFCTX,		/* window of W chunks (default 8) in flight; the default */
	RD_DIO_PIN,		/* read the whole range into memory first, then write it all */
	RD_DIO_CHUNK,		/* one chunk at a time (W = 1), like bcachefs */
	RD_DIO_BOUNCE64,	/* synchronous 256 KiB steps through one bounce buffer */
	RD_DIO_NR_STRATEGIES
};

enum rd_dio_issue {
	RD_DIO_INLINE,		/* the submitter starts the first chunks itself if that can't block */
	RD_DIO_PUNT,		/* always hand the write to a dio worker */
	RD_DIO_NR_ISSUE
};

/* The largest chunk any write takes (the filesystem's data path writes at most this much
 * at once; the mount's -o dio_chunk/max_chunk and the ioctls' chunk field stop here). */
#define RD_DIO_CHUNK_MAX	(64u << 20)

/* "refctx", "pin", "chunk", "bounce64"; NULL if unknown. parse: the value or -EINVAL. */
const char *rd_dio_strategy_name(unsigned s);
int rd_dio_strategy_parse(const char *name);
/* "inline", "punt". */
const char *rd_dio_issue_name(unsigned i);
int rd_dio_issue_parse(const char *name);

/* ---- the sink: where chunks go (implemented by the filesystem layer) ------------------ */

struct rd_dio_sink;

/* One chunk handed to the sink; lives inside dio's chunk. */
struct rd_dio_sink_req {
	uint64_t	off;		/* file offset */
	const void	*data;		/* private to this write, unchanged until commit/abort */
	size_t		len;
	/*
	 * The sink calls this exactly once with len (all written) or a negative error (nothing
	 * that needs undoing was written). Any thread, also from inside write(); it never
	 * blocks.
	 */
	void		(*end_io)(struct rd_dio_sink_req *req, long res);
	void		*sink_priv;	/* the sink's state between write and commit/abort */
};

struct rd_dio_sink_ops {
	/*
	 * Write req's bytes to new space; must not block unless RD_DIO_SINK_MAY_BLOCK. The
	 * chunks of one write arrive in file order (each once its source read is done), and
	 * complete in any order.
	 */
	void	(*write)(struct rd_dio_sink *sink, struct rd_dio_sink_req *req);
	/*
	 * Make the extent written by req visible. Called from a dio worker (may block), only
	 * after end_io(len), strictly in file order within one write, and only for a contiguous
	 * prefix. 0, or an error after which the sink has released req's space itself.
	 */
	int	(*commit)(struct rd_dio_sink *sink, struct rd_dio_sink_req *req);
	/* A chunk written successfully that will never be committed: release its space. */
	void	(*abort)(struct rd_dio_sink *sink, struct rd_dio_sink_req *req);
	/* Make committed extents durable (dsync); from a dio worker, may block. */
	int	(*flush)(struct rd_dio_sink *sink);
};

#define RD_DIO_SINK_MAY_BLOCK	(1u << 0)	/* write() may block: no inline issue */
/* Cut chunks at file offsets that are multiples of the chunk size (the first chunk of a
 * write is shorter when the write starts between two): with a chunk size that is a multiple
 * of the sink's block, no two chunks of one write then share a block. */
#define RD_DIO_SINK_ALIGN_CHUNKS (1u << 1)

/* Embedded in the layer's own object (container_of). Must outlive every write using it. */
struct rd_dio_sink {
	const struct rd_dio_sink_ops *ops;
	size_t		max_chunk;	/* largest chunk (extent) the sink takes; 0 = no cap */
	unsigned	flags;
};

/* ---- sources: where the caller's bytes are -------------------------------------------- */

/*
 * Every source follows the kernel's mm pattern:
 *   grab          taken by the constructor: keeps the source's identity alive (mmgrab);
 *   get-if-alive  taken by each chunk read around the copy, failing once the caller is gone
 *                 (mmget_not_zero / mmput);
 *   read-chunk    one chunk, into the chunk buffer or, zero-copy, lent from the source;
 *   put           drops the grab (mmdrop); called once by the write when it completes.
 * rd_dio_submit() takes over the caller's grab, also when it fails.
 */
struct rd_dio_source;

struct rd_dio_src_read {
	uint64_t	pos;		/* offset into the source's range */
	size_t		len;
	void		*buf;		/* the chunk buffer (NULL for zero-copy sources) */
	const void	*data;		/* set by read(): where the bytes are (buf, or lent:
					 * then valid and unchanged until the source's put) */
	size_t		buf_cap;	/* buf is a private mapping of buf_cap bytes */
	/*
	 * Called exactly once, from inside read() or later from any thread (never blocking):
	 * len when all was read; 0 when the caller is gone (get-if-alive failed); -EFAULT
	 * when the range is not readable; fewer than len when it stops being readable inside
	 * the chunk; -ETIMEDOUT when the caller's memory did not answer in time; -ECANCELED
	 * after cancel(); else a negative error.
	 */
	void		(*done)(struct rd_dio_src_read *rd, long res);
	/*
	 * Set by the source before a failing done() when the read may still be writing into
	 * buf (it was abandoned, not finished): the mapping [buf, buf + buf_cap) is the
	 * source's from then on (it releases it), and the write forgets it.
	 */
	bool		buf_taken;
	void		*src_priv;	/* private to the source */
};

struct rd_dio_source_ops {
	const char	*name;
	void	(*read)(struct rd_dio_source *src, struct rd_dio_src_read *rd);
	/*
	 * Optional: if rd is still in flight, end it now (done(-ECANCELED), with buf_taken if
	 * the transfer cannot be stopped). rd is only a key: it may have completed already.
	 * Never blocks; called by the write's pumper, outside the write's lock, for reads the
	 * write no longer needs (at or after its stop position).
	 */
	void	(*cancel)(struct rd_dio_source *src, struct rd_dio_src_read *rd);
	void	(*put)(struct rd_dio_source *src);
};

#define RD_DIO_SRC_ZERO_COPY	(1u << 0)	/* read() lends the source's own private bytes */
#define RD_DIO_SRC_MAY_BLOCK	(1u << 1)	/* read() may block: no inline issue */

struct rd_dio_source {
	const struct rd_dio_source_ops *ops;
	uint64_t	len;		/* bytes the caller offers */
	unsigned	flags;
};

/* Drops a source that was never submitted. */
void rd_dio_source_put(struct rd_dio_source *src);

/*
 * In-process memory, with two counts like the kernel's mm_count / mm_users: the struct
 * stays while count > 0, the memory stays while users > 0. The owner holds one of each;
 * rd_dio_mem_exit() is its exit: it drops both, so the memory goes away (release) as soon
 * as no read is copying from it, and every later get-if-alive fails.
 */
struct rd_dio_mem;

/* Wraps [base, base+len); release(base, len, priv) frees it when users reach 0 (NULL:
 * nothing to free). */
int rd_dio_mem_new(void *base, size_t len, void (*release)(void *base, size_t len, void *priv),
		   void *priv, struct rd_dio_mem **out);
/* Anonymous mmap of len bytes, unmapped when users reach 0. */
int rd_dio_mem_alloc(size_t len, struct rd_dio_mem **out);
void *rd_dio_mem_base(const struct rd_dio_mem *m);
void rd_dio_mem_exit(struct rd_dio_mem *m);
/* A source over [off, off+len) of m (grab: count + 1); -EFAULT if outside m. Only the
 * owner creates sources, before its exit (its count is what keeps m alive meanwhile). */
int rd_dio_source_mem(struct rd_dio_mem *m, uint64_t off, uint64_t len,
		      struct rd_dio_source **out);

/*
 * A reference-counted receive buffer of the daemon (a FUSE request's payload): zero-copy.
 * The constructor calls get(owner), put calls put(owner). The bytes must be private to the
 * daemon and never change while a reference is held.
 */
struct rd_dio_rbuf {
	const void	*data;
	size_t		len;
	void		(*get)(void *owner);
	void		(*put)(void *owner);
	void		*owner;
};
int rd_dio_source_rbuf(const struct rd_dio_rbuf *rb, struct rd_dio_source **out);

/*
 * A caller: the process (and thread) a direct write reads from, identified once, while it
 * is known to be the caller, and checked again after every read (dio_caller.c).
 *
 * rd_dio_caller_open(tid, ...) takes the thread id the kernel gave with the request and:
 * finds its process (tgid) and opens a pidfd on it; opens the thread's /proc mem file
 * (which pins the address space the caller has now: the kernel's mmgrab); records the
 * process's credentials; optionally checks that the thread sits in the system call the
 * request came from (expect); and only then checks that the pidfd is still alive, so that
 * everything opened belongs to the thread that was blocked in the request.
 * rd_dio_caller_check() after each read: still the same process (pidfd alive), still the
 * same address space (the mem file's mm has users), same credentials (no setuid exec).
 */
struct rd_dio_caller;

struct rd_dio_caller_expect {
	long		nr;		/* the system call the thread must be blocked in */
	uint64_t	arg1, arg2;	/* and its second and third arguments */
};

/*
 * whole_process: reads go through the process (any of its threads keeps the write going),
 * else through the thread tid itself (a synchronous write: the thread is blocked in it).
 * expect may be NULL. -ESRCH: gone (or not the thread expected); -EPERM: no access.
 */
int rd_dio_caller_open(pid_t tid, bool whole_process, const struct rd_dio_caller_expect *expect,
		       struct rd_dio_caller **out);
/* Whether reads made until now came from the caller as it was at open. Never blocks on
 * the caller (no fault is taken in its memory). */
bool rd_dio_caller_check(struct rd_dio_caller *c);
/* The pid reads address (process_vm_readv). */
pid_t rd_dio_caller_pid(const struct rd_dio_caller *c);
void rd_dio_caller_get(struct rd_dio_caller *c);
void rd_dio_caller_put(struct rd_dio_caller *c);

/*
 * Readers: the threads that run blocking reads of callers' memory, each with a deadline
 * (dio_readers.c). A read past its deadline, or cancelled, is abandoned: it completes at
 * once with -ETIMEDOUT / -ECANCELED and its buffer is taken (and made inaccessible); the
 * thread stuck in it is written off and replaced. Nothing ever waits for an abandoned read,
 * teardown included. An owner (a user id) runs at most max_running_owner reads at once,
 * and one with max_stalled_owner reads stuck has its next reads fail at once with
 * -ETIMEDOUT: a user whose memory stalls only delays itself.
 */
struct rd_dio_readers;

struct rd_dio_readers_opts {
	unsigned	threads;		/* reads running at once; 0 = 16 */
	unsigned	max_stalled;		/* stuck reads written off, in all; 0 = 64 */
	unsigned	max_stalled_owner;	/* per owner; 0 = 8 */
	unsigned	max_running_owner;	/* reads one owner runs at once; 0 = threads/2 */
	uint64_t	timeout_ns;		/* from submission; 0 = 5 s */
};

int rd_dio_readers_create(const struct rd_dio_readers_opts *o, struct rd_dio_readers **out);
/* Stops the threads; never waits for a stuck read (its thread frees what it holds when,
 * and if, its system call returns). Every source using r must be put first. Returns the
 * number of reads still stuck: their threads live on until the process exits. */
unsigned rd_dio_readers_destroy(struct rd_dio_readers *r);

struct rd_dio_readers_stats {
	uint64_t	running;	/* reads in progress (not written off) */
	uint64_t	stalled;	/* written off, their system call not returned yet */
	uint64_t	timeouts;	/* reads that ran past their deadline, in all */
	uint64_t	cancels;	/* reads abandoned on request, in all */
};
void rd_dio_readers_stats(struct rd_dio_readers *r, struct rd_dio_readers_stats *out);

/*
 * The caller's memory [addr, addr+len) as a source: each chunk is read with
 * process_vm_readv on a reader thread, which honours the caller's protections (a chunk
 * it may not read ends the write with -EFAULT, or a prefix before it), and then checked
 * with rd_dio_caller_check (a read from anything else counts as the caller gone). Takes a
 * reference on c. owner: whose stuck reads count (a user id).
 */
int rd_dio_source_procmem(struct rd_dio_readers *r, struct rd_dio_caller *c, uint64_t owner,
			  uint64_t addr, uint64_t len, struct rd_dio_source **out);

/* ---- the engine ----------------------------------------------------------------------- */

struct rd_dio_opts {
	unsigned	workers;	/* dio worker threads; 0 = 2 */
	size_t		chunk;		/* default chunk bytes (at most 1 GiB); 0 = 1 MiB */
	unsigned	window;		/* default refctx window; 0 = 8 */
	unsigned	inline_chunks;	/* chunks an inline submitter starts at most; 0 = 8 */
	unsigned	pool_bufs;	/* free buffers kept: up to pool_bufs * chunk bytes (and a
					 * quarter of max_held); 0 = 32 */
	uint64_t	max_held;	/* the budget: bytes of chunk buffers that may exist at
					 * once, held by writes or kept for reuse; 0 = no limit */
	uint64_t	max_held_owner;	/* of it, what one owner's writes may hold; 0 = all */
};

int rd_dio_create(const struct rd_dio_opts *opts, struct rd_dio **out);
/* Waits until every write has completed and every handle was put, then stops the workers.
 * Never call it from a done callback, nor submit once it has started. */
void rd_dio_destroy(struct rd_dio *d);

/* What one write asks for. */
struct rd_dio_args {
	uint64_t		off;		/* file offset of the first byte */
	enum rd_dio_strategy	strategy;
	enum rd_dio_issue	issue;
	unsigned		window;		/* refctx only (the others fix theirs); 0 = default */
	size_t			chunk;		/* 0 = the strategy's default; <= 1 GiB */
	bool			dsync;		/* sink flush before completion */
	uint64_t		owner;		/* whose share of the budget it uses (a uid) */
	/*
	 * Called exactly once, on a dio worker, never inside rd_dio_submit: res = bytes
	 * committed (a prefix of the range, on a chunk boundary) when any were, else a
	 * negative error: the first chunk's (-EFAULT for an unreadable range, -ENOSPC, ...),
	 * -ESRCH when the caller was gone before anything was written, -EINTR when cancelled
	 * first; 0 for a 0-byte write. With dsync a failed flush gives its error instead.
	 */
	void			(*done)(void *priv, long res);
	void			*priv;
};

/*
 * Starts a write of all of src to sink at a->off. 0: accepted, done will be called. Else
 * -EINVAL/-EFBIG/-ENOMEM, or -ENOBUFS when the write can never fit its owner's share of
 * the budget (pin: all its chunk buffers at once; the others: one chunk buffer): done is
 * never called.
 * A write that fits but finds the budget in use waits for it (a state, not a thread). src is consumed either way. With handle,
 * *handle gets a reference on the write (for rd_dio_cancel), to drop with
 * rd_dio_write_put(); it stays valid after done.
 */
int rd_dio_submit(struct rd_dio *d, struct rd_dio_sink *sink, struct rd_dio_source *src,
		  const struct rd_dio_args *a, struct rd_dio_write **handle);

/* Submits and waits: the result done would get (a->done is ignored). */
long rd_dio_pwrite(struct rd_dio *d, struct rd_dio_sink *sink, struct rd_dio_source *src,
		   const struct rd_dio_args *a);

/* Stop at the next chunk boundary (FUSE_INTERRUPT): chunks already handed to the sink
 * finish; nothing new starts. Harmless after completion. */
void rd_dio_cancel(struct rd_dio_write *w);
/* Handle references (the write's mm_count). */
void rd_dio_write_get(struct rd_dio_write *w);
void rd_dio_write_put(struct rd_dio_write *w);

/* ---- statistics ----------------------------------------------------------------------- */

#define RD_DIO_LAT_BUCKETS 32	/* bucket i: latency in [2^i, 2^(i+1)) microseconds */

struct rd_dio_stats {
	uint64_t writes;		/* completed */
	uint64_t bytes;			/* committed (counted chunk by chunk, as they land) */
	uint64_t chunks;		/* committed */
	uint64_t short_writes;		/* completed with 0 < res < length */
	uint64_t failed;		/* completed with an error */
	uint64_t inflight_now, inflight_max;	/* chunks, over all writes of the strategy */
	uint64_t held_now, held_peak;	/* chunk bytes held, over all writes */
	uint64_t write_held_peak;	/* the most one write held */
	uint64_t inline_submits, punted_submits;
	uint64_t callers_gone;		/* writes ended because the caller went away */
	uint64_t interrupts;		/* cancels that cut a write short */
	uint64_t lat_hist[RD_DIO_LAT_BUCKETS];
	uint64_t lat_p50_us, lat_p90_us, lat_p99_us;	/* upper bounds of histogram buckets */
	uint64_t lat_max_us;		/* exact */
};

/* The budget (max_held): bytes of chunk buffers now and at peak, and the waits. */
struct rd_dio_budget_stats {
	uint64_t max;		/* UINT64_MAX: no limit */
	uint64_t held;		/* reserved by writes now */
	uint64_t peak;		/* the most ever reserved at once */
	uint64_t cached;	/* free buffers kept for reuse (count against max too) */
	uint64_t waited;	/* writes that had to wait for the budget */
	uint64_t waiting;	/* writes waiting now */
};
void rd_dio_budget_stats(struct rd_dio *d, struct rd_dio_budget_stats *out);

/* A snapshot of strategy s's counters; -EINVAL for an unknown s. */
int rd_dio_stats(struct rd_dio *d, unsigned s, struct rd_dio_stats *out);
/* Zeroes every strategy's counters and peaks (the now-values stay). */
void rd_dio_stats_reset(struct rd_dio *d);

#endif
