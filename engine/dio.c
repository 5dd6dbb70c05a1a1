/*
 * dio.c - the direct-write object, its chunk window, the strategies and the dio workers.
 *
 * Owns: struct rd_dio_write from rd_dio_submit() to its free, every chunk of it, the order
 * in which chunks are committed, the one place the result is decided (dio_result), and the
 * worker threads that continue writes (commits, flushes, completions may block there).
 * Chunk buffers and the memory budget are dio_budget.c's; this file reserves before it
 * allocates and gives back what it freed.
 *
 * Must never: call sink->commit() out of file order or past the stop position, let one
 * write hold more than its window of chunk buffers, touch a source after its put, call
 * done twice or from inside rd_dio_submit(), or block in a source/sink callback (those run
 * on I/O threads: they take the write's lock briefly and may queue it, nothing else).
 *
 * ---- Lifetime of a write (the rules every function below keeps) -------------------------
 *
 * Two counts, like the kernel's mm_users / mm_count:
 *
 *   active  the write's activity. Held by
 *             - the submission reference: from rd_dio_submit() until the pumper decides
 *               that no further chunk will be created (issue_done);
 *             - each chunk, from its creation to its release (committed or discarded);
 *             - each queue entry (a kick), from the push until the worker's step returns;
 *             - the submitting thread, for the duration of rd_dio_submit() (inline only).
 *           The drop that takes active to 0 completes the write, exactly once: dsync flush,
 *           source put, statistics, done(). That drop happens on a dio worker; a drop to 0
 *           anywhere else (the submitter) queues the completion to a worker instead, so
 *           done() never runs inside rd_dio_submit() nor on an I/O thread.
 *           An increment is only ever made while another reference is known to be held
 *           (under w->lock with a chunk or the submission reference alive), so active
 *           never comes back from 0.
 *   count   the struct's memory: 1 for all activity together (dropped by the completion)
 *           plus one per handle (rd_dio_write_get/put). The struct is freed at 0.
 *
 * Who may do what:
 *   - Only the pumper (the one thread with w->pumping set, under w->lock) changes the chunk
 *     list, creates, commits, aborts or releases chunks, and moves next_pos/issue_done.
 *     It drops w->lock around every call into the source or the sink.
 *   - Source/sink callbacks only set their chunk's state and result under w->lock, then
 *     kick: if a pumper is running it is told to look again (again), else the write is
 *     queued once (queued) with a new active reference.
 *   - rd_dio_cancel() only lowers stop_pos under w->lock and kicks.
 *
 * Stop position: the first failure (source gone, faulting or timed out, sink error, commit
 * error, cancel) lowers stop_pos to the failing chunk's start. Chunks before stop_pos go on
 * and commit, in order; chunks at or after it are aborted as soon as their I/O is done, and
 * their reads still in flight are cancelled (the source abandons them: a stalled caller is
 * never waited for). So the committed bytes are always a prefix [0, committed) on a chunk
 * boundary.
 *
 * Cost: the pumper never searches the chunk list. `hand` points at the first chunk not yet
 * handed to the sink, `doomed` lists chunks past stop_pos whose I/O is over, `to_cancel`
 * reads past it still in flight; callbacks and dio_stop_locked keep them (each chunk is
 * visited a bounded number of times), so a write of n chunks costs O(n), pin included.
 *
 * Memory: a write reserves from the budget before a chunk gets a new buffer (pin: all its
 * buffers at once, before its first read); when the budget is in use the write waits in
 * the budget's FIFO queue, a state, woken through d->wake by a worker. A write that can
 * never fit fails in rd_dio_submit with -ENOBUFS.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dio.h"
#include "dio_budget.h"
#include "dio_int.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define KIB		1024ul
#define MIB		(1024ul * 1024)
#define DIO_UNBOUNDED	UINT_MAX
#define DIO_CHUNK_MAX	(1ul << 30)
#define DIO_MAX_THREADS	512		/* workers, including those of sync steps */

struct rd_dio_write;

/* ---- strategies ----------------------------------------------------------------------- */

/*
 * A strategy is a window, a chunk size, a rule for when data writes may start, and a step
 * function that a worker runs when the write is kicked:
 *   dio_step_async  does everything possible now and returns; completions kick it again;
 *   dio_step_sync   stays with the write, waiting for each completion (old synchronous dio).
 */
struct dio_strategy {
	const char	*name;
	size_t		chunk;		/* 0 = the engine's default chunk */
	unsigned	window;		/* 0 = the engine's default; DIO_UNBOUNDED = no limit */
	bool		read_all_first;	/* no data write until the whole range was read */
	bool		sync;		/* occupies a worker for the whole write; never inline */
	void		(*step)(struct rd_dio_write *w);
};

static void dio_step_async(struct rd_dio_write *w);
static void dio_step_sync(struct rd_dio_write *w);

static const struct dio_strategy strategies[RD_DIO_NR_STRATEGIES] = {
	[RD_DIO_REFCTX]	  = { "refctx",   0,          0,             false, false, dio_step_async },
	[RD_DIO_PIN]	  = { "pin",      0,          DIO_UNBOUNDED, true,  false, dio_step_async },
	[RD_DIO_CHUNK]	  = { "chunk",    0,          1,             false, false, dio_step_async },
	[RD_DIO_BOUNCE64] = { "bounce64", 256 * KIB,  1,             false, true,  dio_step_sync },
};

static const char *const issue_names[RD_DIO_NR_ISSUE] = {
	[RD_DIO_INLINE] = "inline",
	[RD_DIO_PUNT]	= "punt",
};

/* ---- objects -------------------------------------------------------------------------- */

enum dio_chunk_state {
	CH_READING,	/* source read in flight */
	CH_READ,	/* source read finished with res */
	CH_WRITING,	/* sink write in flight */
	CH_WRITTEN,	/* sink write finished with res */
	CH_BUSY,	/* the pumper is committing or aborting it, outside w->lock */
};

struct dio_chunk {
	struct rd_dio_write	*w;
	struct dio_chunk	*prev, *next;	/* the write's live chunks, in file order */
	struct dio_chunk	*dnext;		/* in w->doomed */
	struct dio_chunk	*cnext;		/* in w->to_cancel */
	uint64_t		pos;		/* offset inside the write */
	size_t			len;
	void			*buf;		/* chunk buffer, w->buf_cap bytes; NULL if lent */
	size_t			held;		/* bytes this chunk counts as held (statistics) */
	bool			owns;		/* counts w->buf_cap in w->owned (a budget buffer) */
	bool			buf_lost;	/* the source took buf (an abandoned read) */
	bool			doomed;		/* in w->doomed: past stop, I/O over */
	bool			cancel_sent;	/* was put in w->to_cancel */
	enum dio_chunk_state	state;
	long			res;
	struct rd_dio_src_read	rd;
	struct rd_dio_sink_req	sreq;
};

enum dio_stop {
	STOP_NONE,
	STOP_ERROR,	/* a read fault, a sink or commit error: stop_err */
	STOP_GONE,	/* the caller went away */
	STOP_CANCEL,	/* rd_dio_cancel */
};

struct rd_dio_write {
	struct rd_dio		*d;
	const struct dio_strategy *strat;
	unsigned		sid;		/* enum rd_dio_strategy */
	struct rd_dio_sink	*sink;
	struct rd_dio_source	*src;
	bool			lent;		/* zero-copy source: no chunk buffers */
	uint64_t		off, len;
	size_t			chunk;
	size_t			buf_cap;	/* a chunk buffer's real size (its size class) */
	unsigned		window;
	uint64_t		held_limit;	/* window * chunk, or unbounded */
	uint64_t		pin_need;	/* pin: every chunk's buffer, reserved at once */
	bool			dsync;
	void			(*done)(void *priv, long res);
	void			*priv;
	uint64_t		t_start;

	_Atomic unsigned	active;		/* see the lifetime rules at the top */
	_Atomic unsigned	count;

	pthread_mutex_t		lock;
	pthread_cond_t		cond;		/* dio_step_sync waits here for callbacks */
	/* Everything below is under lock. */
	struct dio_chunk	*head, *tail;
	struct dio_chunk	*hand;		/* first chunk not yet handed to the sink */
	struct dio_chunk	*doomed;	/* past stop_pos with their I/O over: to discard */
	struct dio_chunk	*to_cancel;	/* reads past stop_pos still in flight */
	unsigned		nchunks;
	unsigned		reading;	/* chunks in CH_READING */
	uint64_t		next_pos;	/* where the next chunk starts */
	uint64_t		stop_pos;	/* nothing at or after it commits; len at first */
	enum dio_stop		stop_why;
	int			stop_err;
	uint64_t		committed;	/* bytes: always the prefix [0, committed) */
	bool			issue_done;	/* no chunk will be created: submission ref gone */
	bool			pumping;	/* a thread is the pumper */
	bool			again;		/* a callback came while pumping */
	bool			queued;		/* in the worker queue (holds an active ref) */
	bool			completing;	/* queued for completion only (active == 0) */
	void			*spare;		/* one chunk buffer kept for the next chunk */
	uint64_t		held, held_peak;
	/* The budget: reserved >= owned (buffers of chunks and the spare); pin reserves all
	 * of pin_need at once, the others one buffer at a time. */
	uint64_t		reserved, owned;
	struct dio_budget_waiter bw;		/* under the budget's lock */
	struct rd_dio_write	*q_next;	/* under d->lock */
	struct rd_dio_write	*wake_next;	/* under d->lock */
	bool			wake_pending;	/* in d->wake (holds a count ref); d->lock */
};

struct rd_dio {
	struct rd_dio_opts	opts;
	pthread_mutex_t		lock;
	pthread_cond_t		work_cond;	/* work queued, or stopping */
	pthread_cond_t		idle_cond;	/* live reached 0 */
	struct rd_dio_write	*q_head, *q_tail;
	struct rd_dio_write	*wake_head, *wake_tail;	/* budget waiters to kick */
	bool			stopping;
	uint64_t		live;		/* writes not yet freed */
	pthread_t		*threads;	/* DIO_MAX_THREADS slots */
	unsigned		nthreads;	/* started (under lock once running) */
	unsigned		in_sync;	/* workers inside a sync step (lock) */
	struct dio_budget	budget;
	struct dio_stats	stats[RD_DIO_NR_STRATEGIES];
};

static _Thread_local bool dio_in_worker;

static uint64_t dio_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the worker queue ----------------------------------------------------------------- */

static void dio_push(struct rd_dio *d, struct rd_dio_write *w)
{
	pthread_mutex_lock(&d->lock);
	w->q_next = NULL;
	if (d->q_tail)
		d->q_tail->q_next = w;
	else
		d->q_head = w;
	d->q_tail = w;
	pthread_cond_signal(&d->work_cond);
	pthread_mutex_unlock(&d->lock);
}

/*
 * Under w->lock: make sure someone looks at w again. Returns true when the caller must
 * dio_push(w) after unlocking; the queue entry's active reference is already taken (safe:
 * the caller's chunk or the submission reference is alive, see the lifetime rules).
 */
static bool dio_kick_locked(struct rd_dio_write *w)
{
	if (w->pumping) {
		w->again = true;
		if (w->strat->sync)
			pthread_cond_signal(&w->cond);
		return false;
	}
	if (w->queued)
		return false;
	w->queued = true;
	atomic_fetch_add_explicit(&w->active, 1, memory_order_relaxed);
	return true;
}

/*
 * The budget's wake (under its lock): the head waiter may reserve now. A queued waiter is
 * alive (it leaves the queue before its submission reference goes), so a count reference is
 * safe to take; a worker kicks the write later, holding no other write's lock.
 */
static void dio_budget_wake(struct dio_budget_waiter *wt, void *priv)
{
	struct rd_dio *d = priv;
	struct rd_dio_write *w = container_of(wt, struct rd_dio_write, bw);

	pthread_mutex_lock(&d->lock);
	if (!w->wake_pending) {
		w->wake_pending = true;
		rd_dio_write_get(w);
		w->wake_next = NULL;
		if (d->wake_tail)
			d->wake_tail->wake_next = w;
		else
			d->wake_head = w;
		d->wake_tail = w;
		pthread_cond_signal(&d->work_cond);
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- completion ----------------------------------------------------------------------- */

static void dio_write_free(struct rd_dio_write *w)
{
	struct rd_dio *d = w->d;

	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);

	pthread_mutex_lock(&d->lock);
	if (!--d->live)
		pthread_cond_broadcast(&d->idle_cond);
	pthread_mutex_unlock(&d->lock);
	/* d may be gone from here on (rd_dio_destroy was waiting for live == 0). */
}

void rd_dio_write_get(struct rd_dio_write *w)
{
	unsigned old = atomic_fetch_add_explicit(&w->count, 1, memory_order_relaxed);

	assert(old > 0);
	(void)old;
}

void rd_dio_write_put(struct rd_dio_write *w)
{
	if (!w)
		return;
	if (atomic_fetch_sub_explicit(&w->count, 1, memory_order_acq_rel) == 1)
		dio_write_free(w);
}

/*
 * THE place the result of a write is decided. Bytes committed when any were (always a
 * prefix on a chunk boundary), else why the write stopped. A failed dsync flush wins: the
 * bytes are in place but not known to be durable.
 */
static long dio_result(const struct rd_dio_write *w, int flush_err)
{
	if (flush_err)
		return flush_err;
	if (w->committed || !w->len)
		return (long)w->committed;
	switch (w->stop_why) {
	case STOP_ERROR:
		return w->stop_err;
	case STOP_GONE:
		return -ESRCH;
	case STOP_CANCEL:
		return -EINTR;
	case STOP_NONE:
		break;
	}
	assert(!"a write of >0 bytes ended with nothing committed and no reason");
	return -EIO;
}

/* The last active reference went: runs once, on a dio worker (may block). */
static void dio_complete(struct rd_dio_write *w)
{
	struct dio_stats *st = &w->d->stats[w->sid];
	int flush_err = 0;
	long res;

	assert(dio_in_worker);
	assert(w->issue_done && !w->nchunks && !w->queued && !w->bw.queued);
	assert(w->committed <= w->stop_pos);

	if (w->dsync && w->committed) {
		flush_err = w->sink->ops->flush(w->sink);
		if (flush_err > 0)
			flush_err = -EIO;
	}
	res = dio_result(w, flush_err);

	w->src->ops->put(w->src);	/* the grab taken by the source's constructor */
	w->src = NULL;
	if (w->spare) {
		dio_stat_chunk(st, 0, -(int64_t)w->buf_cap);
		w->held -= w->buf_cap;
		dio_budget_free(&w->d->budget, &w->bw, w->spare, w->buf_cap);
		w->spare = NULL;
		w->owned -= w->buf_cap;
		w->reserved -= w->buf_cap;
	}
	assert(!w->held && !w->owned);
	dio_budget_unreserve(&w->d->budget, &w->bw, w->reserved);	/* pin: never issued */
	w->reserved = 0;

	if (w->stop_why == STOP_GONE && w->committed < w->len)
		atomic_fetch_add_explicit(&st->callers_gone, 1, memory_order_relaxed);
	if (w->stop_why == STOP_CANCEL && w->committed < w->len)
		atomic_fetch_add_explicit(&st->interrupts, 1, memory_order_relaxed);
	dio_stat_max(&st->write_held_peak, w->held_peak);
	dio_stat_done(st, w->len, res, dio_now() - w->t_start);

	w->done(w->priv, res);
	rd_dio_write_put(w);	/* the reference all activity held together */
}

/*
 * Drops an active reference. may_complete: the caller is a worker step or the pumper, where
 * the completion may run right here. Otherwise (the submitting thread) a last drop queues
 * the completion to a worker.
 */
static void dio_active_put(struct rd_dio_write *w, bool may_complete)
{
	unsigned old = atomic_fetch_sub_explicit(&w->active, 1, memory_order_acq_rel);

	assert(old > 0);
	if (old != 1)
		return;
	if (may_complete && dio_in_worker) {
		dio_complete(w);
	} else {
		w->completing = true;
		dio_push(w->d, w);
	}
}

/* ---- the stop position ---------------------------------------------------------------- */

/* Under w->lock: c is past stop_pos with its I/O over: onto the discard list, once. */
static void dio_doom_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	if (c->doomed)
		return;
	c->doomed = true;
	c->dnext = w->doomed;
	w->doomed = c;
}

/* Under w->lock: a read past stop_pos still in flight; the pumper asks the source to end
 * it (the write will never use it). */
static void dio_cancel_read_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	if (c->cancel_sent || !w->src->ops->cancel)
		return;
	c->cancel_sent = true;
	c->cnext = w->to_cancel;
	w->to_cancel = c;
}

/*
 * Lowers stop_pos to pos, the start of chunk from (NULL when pos is next_pos: no chunk
 * there yet). The chunks from `from` up to the old stop position are visited once, here:
 * those with their I/O over are doomed, reads in flight are marked for cancelling, the rest
 * are doomed by their callbacks (which see pos >= stop_pos). Chunks at or after the old stop
 * were handled when it was set, so over a write's life each chunk is visited at most once.
 */
static void dio_stop_locked(struct rd_dio_write *w, uint64_t pos, enum dio_stop why, int err,
			    struct dio_chunk *from)
{
	uint64_t old = w->stop_pos;

	if (pos >= old)
		return;
	assert(!from || from->pos == pos);
	w->stop_pos = pos;
	w->stop_why = why;
	w->stop_err = err;
	for (struct dio_chunk *c = from; c && c->pos < old; c = c->next) {
		if (c->state == CH_READ || c->state == CH_WRITTEN)
			dio_doom_locked(w, c);
		else if (c->state == CH_READING)
			dio_cancel_read_locked(w, c);
	}
}

/* A finished chunk's failure, if any, fixes the stop position at its start. */
static void dio_chunk_check_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	if (c->res == (long)c->len)
		return;
	if (c->state == CH_READ) {
		if (c->res == 0)
			dio_stop_locked(w, c->pos, STOP_GONE, 0, c);
		else if (c->res > 0)	/* the readable range ended inside the chunk */
			dio_stop_locked(w, c->pos, STOP_ERROR, -EFAULT, c);
		else
			dio_stop_locked(w, c->pos, STOP_ERROR, (int)c->res, c);
	} else if (c->state == CH_WRITTEN) {
		dio_stop_locked(w, c->pos, STOP_ERROR, c->res < 0 ? (int)c->res : -EIO, c);
	}
}

/* ---- callbacks from sources and sinks (any thread, never blocking) --------------------- */

static void dio_read_done(struct rd_dio_src_read *rd, long res)
{
	struct dio_chunk *c = container_of(rd, struct dio_chunk, rd);
	struct rd_dio_write *w = c->w;
	bool push;

	pthread_mutex_lock(&w->lock);
	assert(c->state == CH_READING);
	assert(!rd->buf_taken || res < 0);
	if (rd->buf_taken)
		c->buf_lost = true;
	c->res = res;
	c->state = CH_READ;
	w->reading--;
	dio_chunk_check_locked(w, c);
	if (c->pos >= w->stop_pos)
		dio_doom_locked(w, c);
	push = dio_kick_locked(w);
	pthread_mutex_unlock(&w->lock);
	/* From here on only the queue reference (if any) keeps w alive. */
	if (push)
		dio_push(w->d, w);
}

static void dio_sink_end_io(struct rd_dio_sink_req *req, long res)
{
	struct dio_chunk *c = container_of(req, struct dio_chunk, sreq);
	struct rd_dio_write *w = c->w;
	bool push;

	pthread_mutex_lock(&w->lock);
	assert(c->state == CH_WRITING);
	c->res = res;
	c->state = CH_WRITTEN;
	dio_chunk_check_locked(w, c);
	if (c->pos >= w->stop_pos)
		dio_doom_locked(w, c);
	push = dio_kick_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (push)
		dio_push(w->d, w);
}

/* ---- the pumper's actions ------------------------------------------------------------- */

enum dio_action {
	ACT_NONE,
	ACT_DISCARD,	/* a chunk at/after stop_pos whose I/O is over: abort, release */
	ACT_CANCEL,	/* a read at/after stop_pos in flight: ask the source to end it */
	ACT_COMMIT,	/* the head chunk is written: make its extent visible */
	ACT_WRITE,	/* a read chunk: hand it to the sink */
	ACT_ISSUE,	/* room in the window: create the next chunk and read it */
};

static bool dio_can_write_locked(const struct rd_dio_write *w, bool may_block)
{
	if (!may_block && (w->sink->flags & RD_DIO_SINK_MAY_BLOCK))
		return false;
	/* pin: the whole range is in memory before the first data write */
	return !w->strat->read_all_first || (w->issue_done && !w->reading);
}

/*
 * Under w->lock: whether the next chunk has a buffer to go to: lent bytes, the spare, room
 * in what the write reserved, or a new reservation. A reservation that does not fit queues
 * the write in the budget (it is woken when it may try again) and says no.
 */
static bool dio_room_locked(struct rd_dio_write *w)
{
	uint64_t need;

	if (w->lent || w->spare || w->reserved - w->owned >= w->buf_cap)
		return true;
	need = w->strat->read_all_first ? w->pin_need - w->reserved : w->buf_cap;
	if (!dio_budget_reserve(&w->d->budget, &w->bw, need))
		return false;
	w->reserved += need;
	return true;
}

/*
 * Under w->lock: the next thing the pumper can do, in O(1): the lists and the hand pointer
 * say where to look, nothing is searched. may_block: a worker (commits, aborts); else the
 * submitting thread, which only starts reads and writes. budget: chunks it may still create.
 */
static enum dio_action dio_next_locked(struct rd_dio_write *w, bool may_block,
				       unsigned budget, struct dio_chunk **cp)
{
	struct dio_chunk *c;

	/* Cancels first: then a doomed chunk is never still waiting in to_cancel. */
	if (w->to_cancel) {
		*cp = w->to_cancel;
		return ACT_CANCEL;
	}
	c = w->doomed;
	if (c && (may_block || c->state != CH_WRITTEN || c->res != (long)c->len)) {
		*cp = c;	/* a written chunk needs an abort: a worker's job */
		return ACT_DISCARD;
	}

	c = w->head;
	if (may_block && c && c->state == CH_WRITTEN && c->pos < w->stop_pos) {
		*cp = c;
		return ACT_COMMIT;
	}

	/* The sink gets chunks in file order: the first chunk not yet handed to it goes
	 * next, once its read is done (a sink may then lock ranges in ascending order). */
	c = w->hand;
	if (c && c->state == CH_READ && c->pos < w->stop_pos && dio_can_write_locked(w, may_block)) {
		*cp = c;
		return ACT_WRITE;
	}

	if (!w->issue_done && w->nchunks < w->window && budget && dio_room_locked(w))
		return ACT_ISSUE;
	return ACT_NONE;
}

/* Unlinks c, returns its buffer, drops its active reference (never the last one: the
 * pumper holds its own). */
static void dio_chunk_release_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	struct dio_stats *st = &w->d->stats[w->sid];
	int64_t freed = (int64_t)c->held;
	unsigned old;

	assert(!c->doomed && !c->cancel_sent);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		w->tail = c->prev;
	if (w->hand == c)
		w->hand = c->next;
	w->nchunks--;

	/* The figures first, the budget after: held never shows more than the budget. */
	if (c->owns && c->buf && !c->buf_lost && !w->spare)
		freed = 0;	/* its buffer stays held: the next chunk reuses it */
	w->held -= (uint64_t)freed;
	dio_stat_chunk(st, -1, -freed);
	if (c->owns) {
		if (c->buf && !c->buf_lost && !w->spare) {
			w->spare = c->buf;
		} else {
			if (c->buf && !c->buf_lost)
				dio_budget_free(&w->d->budget, &w->bw, c->buf, w->buf_cap);
			else	/* never allocated, or the source took it */
				dio_budget_unreserve(&w->d->budget, &w->bw, w->buf_cap);
			w->owned -= w->buf_cap;
			w->reserved -= w->buf_cap;
		}
	}
	free(c);

	old = atomic_fetch_sub_explicit(&w->active, 1, memory_order_acq_rel);
	assert(old > 1);
	(void)old;
}

static void dio_discard_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	bool written = c->state == CH_WRITTEN && c->res == (long)c->len;

	assert(w->doomed == c && !w->to_cancel);
	w->doomed = c->dnext;
	c->doomed = false;
	c->state = CH_BUSY;
	if (written) {
		pthread_mutex_unlock(&w->lock);
		w->sink->ops->abort(w->sink, &c->sreq);
		pthread_mutex_lock(&w->lock);
	}
	dio_chunk_release_locked(w, c);
}

/* The source ends a read the write no longer needs. c stays in the list (CH_READING or, if
 * the read ended meanwhile, doomed): only the pumper releases chunks. */
static void dio_cancel_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	assert(w->to_cancel == c);
	w->to_cancel = c->cnext;
	c->cancel_sent = false;
	pthread_mutex_unlock(&w->lock);
	w->src->ops->cancel(w->src, &c->rd);
	pthread_mutex_lock(&w->lock);
}

static void dio_commit_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	int err;

	/* In file order, a contiguous prefix: everything before c is committed. */
	assert(c == w->head && c->pos == w->committed && c->pos < w->stop_pos);
	c->state = CH_BUSY;
	pthread_mutex_unlock(&w->lock);
	err = w->sink->ops->commit(w->sink, &c->sreq);
	pthread_mutex_lock(&w->lock);
	if (err) {
		dio_stop_locked(w, c->pos, STOP_ERROR, err < 0 ? err : -EIO, c);
	} else {
		w->committed += c->len;
		dio_stat_commit(&w->d->stats[w->sid], c->len);
	}
	dio_chunk_release_locked(w, c);
}

static void dio_write_chunk_locked(struct rd_dio_write *w, struct dio_chunk *c)
{
	assert(c == w->hand);
	w->hand = c->next;
	c->state = CH_WRITING;
	c->sreq.off = w->off + c->pos;
	c->sreq.data = c->rd.data;
	c->sreq.len = c->len;
	c->sreq.end_io = dio_sink_end_io;
	c->sreq.sink_priv = NULL;
	pthread_mutex_unlock(&w->lock);
	w->sink->ops->write(w->sink, &c->sreq);
	pthread_mutex_lock(&w->lock);
}

/*
 * The length of the chunk starting at pos: w->chunk, or what is left; with
 * RD_DIO_SINK_ALIGN_CHUNKS it ends at the next file offset that is a multiple of w->chunk
 * (only the first chunk is then shorter).
 */
static size_t dio_chunk_len(const struct rd_dio_write *w, uint64_t pos)
{
	uint64_t n = w->chunk;

	if (w->sink->flags & RD_DIO_SINK_ALIGN_CHUNKS)
		n = w->chunk - (w->off + pos) % w->chunk;
	if (n > w->len - pos)
		n = w->len - pos;
	return (size_t)n;
}

/* Creates the chunk at next_pos (it takes an active reference) and starts its read. The
 * buffer was made room for by dio_room_locked. */
static void dio_issue_locked(struct rd_dio_write *w)
{
	struct dio_stats *st = &w->d->stats[w->sid];
	struct dio_chunk *c;
	int64_t added;

	c = calloc(1, sizeof(*c));
	if (!c) {
		dio_stop_locked(w, w->next_pos, STOP_ERROR, -ENOMEM, NULL);
		return;
	}
	c->w = w;
	c->pos = w->next_pos;
	c->len = dio_chunk_len(w, c->pos);
	c->state = CH_READING;
	c->prev = w->tail;
	if (w->tail)
		w->tail->next = c;
	else
		w->head = c;
	w->tail = c;
	if (!w->hand)
		w->hand = c;
	w->nchunks++;
	w->reading++;
	w->next_pos += c->len;
	atomic_fetch_add_explicit(&w->active, 1, memory_order_relaxed);

	/* Memory: a lent chunk pins len bytes of the source; an owned one a whole buffer. */
	if (w->lent) {
		c->held = c->len;
		added = (int64_t)c->len;
	} else {
		c->held = w->buf_cap;
		c->owns = true;
		c->buf = w->spare;
		added = w->spare ? 0 : (int64_t)w->buf_cap;
		if (!w->spare) {
			assert(w->reserved - w->owned >= w->buf_cap);
			w->owned += w->buf_cap;
		}
		w->spare = NULL;
	}
	w->held += (uint64_t)added;
	if (w->held > w->held_peak)
		w->held_peak = w->held;
	/* The window bound: never more than `window` chunks' worth of memory per write. */
	assert(w->held <= w->held_limit);
	assert(w->owned <= w->reserved);
	dio_stat_chunk(st, 1, added);

	c->rd.pos = c->pos;
	c->rd.len = c->len;
	c->rd.done = dio_read_done;
	pthread_mutex_unlock(&w->lock);
	if (c->owns && !c->buf)
		c->buf = dio_budget_buf_get(&w->d->budget, w->buf_cap);
	c->rd.buf = c->buf;
	c->rd.buf_cap = c->buf ? w->buf_cap : 0;
	if (c->owns && !c->buf)
		dio_read_done(&c->rd, -ENOMEM);
	else
		w->src->ops->read(w->src, &c->rd);
	pthread_mutex_lock(&w->lock);
}

/*
 * The pumper's loop, under w->lock with w->pumping owned: act until nothing can be done.
 * Every step is O(1) (dio_next_locked), so a write of n chunks costs O(n) in all, whatever
 * its window. Returns the number of chunks created.
 */
static unsigned dio_run_locked(struct rd_dio_write *w, bool may_block, unsigned budget)
{
	unsigned issued = 0;

	assert(w->pumping);
	for (;;) {
		struct dio_chunk *c = NULL;
		enum dio_action act;

		w->again = false;
		act = dio_next_locked(w, may_block, budget, &c);
		switch (act) {
		case ACT_NONE:
			break;
		case ACT_DISCARD:
			dio_discard_locked(w, c);
			break;
		case ACT_CANCEL:
			dio_cancel_locked(w, c);
			break;
		case ACT_COMMIT:
			dio_commit_locked(w, c);
			break;
		case ACT_WRITE:
			dio_write_chunk_locked(w, c);
			break;
		case ACT_ISSUE:
			dio_issue_locked(w);
			budget--;
			issued++;
			break;
		}
		if (!w->issue_done && w->next_pos >= w->stop_pos) {
			/* No chunk will ever be created again: the submission reference goes,
			 * and so does any wait for the budget (before it: a queued waiter must
			 * stay alive, see dio_budget_wake). */
			w->issue_done = true;
			dio_budget_leave(&w->d->budget, &w->bw);
			unsigned old = atomic_fetch_sub_explicit(&w->active, 1,
								  memory_order_acq_rel);
			assert(old > 1);
			(void)old;
			continue;
		}
		if (act == ACT_NONE)
			return issued;
	}
}

/* Claims the pumper role for a worker step; false if another thread has it (told again). */
static bool dio_claim_locked(struct rd_dio_write *w)
{
	w->queued = false;
	if (w->pumping) {
		w->again = true;
		if (w->strat->sync)
			pthread_cond_signal(&w->cond);
		return false;
	}
	w->pumping = true;
	return true;
}

/* refctx, pin, chunk: do what can be done now, return the worker to the pool. */
static void dio_step_async(struct rd_dio_write *w)
{
	pthread_mutex_lock(&w->lock);
	if (dio_claim_locked(w)) {
		dio_run_locked(w, true, UINT_MAX);
		w->pumping = false;
	}
	pthread_mutex_unlock(&w->lock);
}

/* bounce64: the worker stays with the write until its last chunk is released. */
static void dio_step_sync(struct rd_dio_write *w)
{
	pthread_mutex_lock(&w->lock);
	if (dio_claim_locked(w)) {
		for (;;) {
			dio_run_locked(w, true, UINT_MAX);
			if (w->issue_done && !w->nchunks)
				break;
			while (!w->again)
				pthread_cond_wait(&w->cond, &w->lock);
		}
		w->pumping = false;
	}
	pthread_mutex_unlock(&w->lock);
}

static void *dio_worker(void *arg);

/*
 * A sync step (bounce64) keeps its worker until the write ends, and the write may wait
 * for chunks of other writes to commit (a range lock in the sink): those commits need a
 * free worker. So, like the kernel's old dio that ran in the caller's own thread, every
 * write in a sync step gets a thread of its own: the pool grows so that `workers` threads
 * stay outside sync steps (up to DIO_MAX_THREADS in all; threads are kept until destroy).
 */
static void dio_sync_enter(struct rd_dio *d)
{
	pthread_mutex_lock(&d->lock);
	d->in_sync++;
	if (d->nthreads - d->in_sync < d->opts.workers && d->nthreads < DIO_MAX_THREADS &&
	    !pthread_create(&d->threads[d->nthreads], NULL, dio_worker, d))
		d->nthreads++;
	pthread_mutex_unlock(&d->lock);
}

static void dio_sync_exit(struct rd_dio *d)
{
	pthread_mutex_lock(&d->lock);
	d->in_sync--;
	pthread_mutex_unlock(&d->lock);
}

/* A budget waiter was told it may reserve: look at it again (no other lock held). */
static void dio_wake_one(struct rd_dio_write *w)
{
	bool push = false;

	pthread_mutex_lock(&w->lock);
	if (!w->issue_done || w->nchunks)	/* activity alive: a kick may take a ref */
		push = dio_kick_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (push)
		dio_push(w->d, w);
	rd_dio_write_put(w);	/* the reference dio_budget_wake took */
}

static void *dio_worker(void *arg)
{
	struct rd_dio *d = arg;

	dio_in_worker = true;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct rd_dio_write *w;

		while (!d->q_head && !d->wake_head && !d->stopping)
			pthread_cond_wait(&d->work_cond, &d->lock);
		if (d->wake_head) {
			w = d->wake_head;
			d->wake_head = w->wake_next;
			if (!d->wake_head)
				d->wake_tail = NULL;
			w->wake_pending = false;
			pthread_mutex_unlock(&d->lock);
			dio_wake_one(w);
			pthread_mutex_lock(&d->lock);
			continue;
		}
		w = d->q_head;
		if (!w)
			break;
		d->q_head = w->q_next;
		if (!d->q_head)
			d->q_tail = NULL;
		pthread_mutex_unlock(&d->lock);

		if (w->completing) {
			dio_complete(w);
		} else if (w->strat->sync) {
			dio_sync_enter(d);
			w->strat->step(w);
			dio_sync_exit(d);
			dio_active_put(w, true);	/* the queue entry's reference */
		} else {
			w->strat->step(w);
			dio_active_put(w, true);	/* the queue entry's reference */
		}
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- the public API ------------------------------------------------------------------- */

const char *rd_dio_strategy_name(unsigned s)
{
	return s < RD_DIO_NR_STRATEGIES ? strategies[s].name : NULL;
}

int rd_dio_strategy_parse(const char *name)
{
	for (unsigned i = 0; name && i < RD_DIO_NR_STRATEGIES; i++)
		if (!strcmp(name, strategies[i].name))
			return (int)i;
	return -EINVAL;
}

const char *rd_dio_issue_name(unsigned i)
{
	return i < RD_DIO_NR_ISSUE ? issue_names[i] : NULL;
}

int rd_dio_issue_parse(const char *name)
{
	for (unsigned i = 0; name && i < RD_DIO_NR_ISSUE; i++)
		if (!strcmp(name, issue_names[i]))
			return (int)i;
	return -EINVAL;
}

void rd_dio_source_put(struct rd_dio_source *src)
{
	if (src)
		src->ops->put(src);
}

int rd_dio_create(const struct rd_dio_opts *opts, struct rd_dio **out)
{
	struct rd_dio *d;
	int ret = -ENOMEM;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (opts)
		d->opts = *opts;
	if (!d->opts.workers)
		d->opts.workers = 2;
	if (!d->opts.chunk)
		d->opts.chunk = MIB;
	if (!d->opts.window)
		d->opts.window = 8;
	if (!d->opts.inline_chunks)
		d->opts.inline_chunks = 8;
	if (!d->opts.pool_bufs)
		d->opts.pool_bufs = 32;
	if (!d->opts.max_held)
		d->opts.max_held = UINT64_MAX;
	if (d->opts.workers > 256 || d->opts.window > 65536 || d->opts.chunk > DIO_CHUNK_MAX) {
		ret = -EINVAL;
		goto err_free;
	}

	d->threads = calloc(DIO_MAX_THREADS, sizeof(*d->threads));
	if (!d->threads)
		goto err_free;
	/* Free buffers kept for reuse count against the budget: at most a quarter of it. */
	if (!d->opts.max_held_owner || d->opts.max_held_owner > d->opts.max_held)
		d->opts.max_held_owner = d->opts.max_held;
	dio_budget_init(&d->budget, d->opts.max_held, d->opts.max_held_owner,
			(uint64_t)d->opts.pool_bufs * dio_buf_cap(d->opts.chunk) <
			d->opts.max_held / 4 ? (uint64_t)d->opts.pool_bufs *
			dio_buf_cap(d->opts.chunk) : d->opts.max_held / 4, dio_budget_wake, d);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->work_cond, NULL);
	pthread_cond_init(&d->idle_cond, NULL);

	for (; d->nthreads < d->opts.workers; d->nthreads++) {
		int err = pthread_create(&d->threads[d->nthreads], NULL, dio_worker, d);

		if (err) {
			ret = -err;
			goto err_stop;
		}
	}
	*out = d;
	return 0;

err_stop:
	rd_dio_destroy(d);
	return ret;
err_free:
	free(d->threads);
	free(d);
	return ret;
}

void rd_dio_destroy(struct rd_dio *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	while (d->live)
		pthread_cond_wait(&d->idle_cond, &d->lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->work_cond);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->nthreads; i++)
		pthread_join(d->threads[i], NULL);
	assert(!d->wake_head);
	dio_budget_destroy(&d->budget);
	pthread_cond_destroy(&d->idle_cond);
	pthread_cond_destroy(&d->work_cond);
	pthread_mutex_destroy(&d->lock);
	free(d->threads);
	free(d);
}

int rd_dio_submit(struct rd_dio *d, struct rd_dio_sink *sink, struct rd_dio_source *src,
		  const struct rd_dio_args *a, struct rd_dio_write **handle)
{
	const struct dio_strategy *strat;
	struct rd_dio_write *w;
	struct dio_chunk *c;
	struct dio_stats *st;
	bool inline_issue, lent, push = false;
	uint64_t pin_need = 0;
	unsigned issued;
	size_t chunk;
	int ret;

	if (handle)
		*handle = NULL;
	ret = -EINVAL;
	if (!d || !sink || !sink->ops || !src || !a || !a->done ||
	    a->strategy >= RD_DIO_NR_STRATEGIES || a->issue >= RD_DIO_NR_ISSUE ||
	    a->window > 65536)
		goto err_src;
	strat = &strategies[a->strategy];
	chunk = a->chunk ? a->chunk : strat->chunk ? strat->chunk : d->opts.chunk;
	if (sink->max_chunk && chunk > sink->max_chunk)
		chunk = sink->max_chunk;
	if (chunk > DIO_CHUNK_MAX)
		goto err_src;
	ret = -EFBIG;
	if (a->off > INT64_MAX || src->len > INT64_MAX - a->off)
		goto err_src;
	/* What it can never get: one chunk buffer, or (pin) all of them at once. */
	ret = -ENOBUFS;
	lent = src->flags & RD_DIO_SRC_ZERO_COPY;
	if (!lent && src->len) {
		uint64_t nchunks, cap = dio_buf_cap(chunk);

		if (sink->flags & RD_DIO_SINK_ALIGN_CHUNKS) {
			uint64_t first = chunk - a->off % chunk;

			nchunks = first >= src->len ? 1 :
				  1 + (src->len - first + chunk - 1) / chunk;
		} else {
			nchunks = (src->len + chunk - 1) / chunk;
		}
		if (cap > d->opts.max_held_owner)
			goto err_src;
		if (strat->read_all_first) {
			if (nchunks > d->opts.max_held_owner / cap)
				goto err_src;
			pin_need = nchunks * cap;
		}
	}
	ret = -ENOMEM;
	w = calloc(1, sizeof(*w));
	if (!w)
		goto err_src;

	w->d = d;
	w->strat = strat;
	w->sid = a->strategy;
	w->sink = sink;
	w->src = src;
	w->lent = lent;
	w->bw.owner = a->owner;
	w->pin_need = pin_need;
	w->off = a->off;
	w->len = src->len;
	w->chunk = chunk;
	w->buf_cap = dio_buf_cap(chunk);
	w->window = strat->window ? strat->window : a->window ? a->window : d->opts.window;
	w->held_limit = w->window == DIO_UNBOUNDED ? UINT64_MAX :
			(uint64_t)w->window * w->buf_cap;
	w->dsync = a->dsync;
	w->done = a->done;
	w->priv = a->priv;
	w->stop_pos = w->len;
	w->t_start = dio_now();
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	/* The submission reference, plus the submitter's own (inline) or the first queue
	 * entry's (punt). count: all activity together, plus the caller's handle. */
	atomic_init(&w->active, 2);
	atomic_init(&w->count, handle ? 2 : 1);
	if (handle)
		*handle = w;

	pthread_mutex_lock(&d->lock);
	d->live++;
	pthread_mutex_unlock(&d->lock);

	st = &d->stats[w->sid];
	inline_issue = a->issue == RD_DIO_INLINE && !strat->sync &&
		       !(src->flags & RD_DIO_SRC_MAY_BLOCK);
	if (!inline_issue) {
		atomic_fetch_add_explicit(&st->punted_submits, 1, memory_order_relaxed);
		w->queued = true;
		dio_push(d, w);
		return 0;
	}

	/* Inline: start the first chunks on this thread; leave blocking work to a worker. */
	pthread_mutex_lock(&w->lock);
	w->pumping = true;
	issued = dio_run_locked(w, false, d->opts.inline_chunks);
	w->pumping = false;
	if (dio_next_locked(w, true, UINT_MAX, &c) != ACT_NONE)
		push = dio_kick_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (push)
		dio_push(d, w);
	atomic_fetch_add_explicit(issued ? &st->inline_submits : &st->punted_submits, 1,
				  memory_order_relaxed);
	dio_active_put(w, false);	/* the submitter's reference */
	return 0;

err_src:
	rd_dio_source_put(src);
	return ret;
}

void rd_dio_cancel(struct rd_dio_write *w)
{
	bool push = false;

	pthread_mutex_lock(&w->lock);
	/* Activity is alive iff issue is not done or chunks remain (see the lifetime rules). */
	if (!w->issue_done || w->nchunks) {
		/* The boundary: the first chunk not yet handed to the sink. Its read, and
		 * every later one, is cancelled by the pumper: nothing waits for a caller. */
		dio_stop_locked(w, w->hand ? w->hand->pos : w->next_pos, STOP_CANCEL, -EINTR,
				w->hand);
		push = dio_kick_locked(w);
	}
	pthread_mutex_unlock(&w->lock);
	if (push)
		dio_push(w->d, w);
}

struct dio_waiter {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	bool		done;
	long		res;
};

static void dio_waiter_done(void *priv, long res)
{
	struct dio_waiter *wt = priv;

	pthread_mutex_lock(&wt->lock);
	wt->res = res;
	wt->done = true;
	pthread_cond_signal(&wt->cond);
	pthread_mutex_unlock(&wt->lock);
}

long rd_dio_pwrite(struct rd_dio *d, struct rd_dio_sink *sink, struct rd_dio_source *src,
		   const struct rd_dio_args *a)
{
	struct dio_waiter wt = { .done = false };
	struct rd_dio_args args;
	int ret;

	if (!a) {
		rd_dio_source_put(src);
		return -EINVAL;
	}
	args = *a;
	args.done = dio_waiter_done;
	args.priv = &wt;
	pthread_mutex_init(&wt.lock, NULL);
	pthread_cond_init(&wt.cond, NULL);
	ret = rd_dio_submit(d, sink, src, &args, NULL);
	if (ret < 0) {
		wt.res = ret;
		goto out;
	}
	pthread_mutex_lock(&wt.lock);
	while (!wt.done)
		pthread_cond_wait(&wt.cond, &wt.lock);
	pthread_mutex_unlock(&wt.lock);
out:
	pthread_cond_destroy(&wt.cond);
	pthread_mutex_destroy(&wt.lock);
	return wt.res;
}

int rd_dio_stats(struct rd_dio *d, unsigned s, struct rd_dio_stats *out)
{
	if (!d || s >= RD_DIO_NR_STRATEGIES || !out)
		return -EINVAL;
	dio_stat_read(&d->stats[s], out);
	return 0;
}

void rd_dio_stats_reset(struct rd_dio *d)
{
	for (unsigned i = 0; i < RD_DIO_NR_STRATEGIES; i++)
		dio_stat_reset(&d->stats[i]);
	dio_budget_reset(&d->budget);
}

void rd_dio_budget_stats(struct rd_dio *d, struct rd_dio_budget_stats *out)
{
	struct dio_budget_stats bs;

	dio_budget_read(&d->budget, &bs);
	out->max = bs.max;
	out->held = bs.reserved;
	out->peak = bs.reserved_peak;
	out->cached = bs.pooled;
	out->waited = bs.waits;
	out->waiting = bs.waiting;
}
