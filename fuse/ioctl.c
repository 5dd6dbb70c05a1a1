/*
 * ioctl.c - the mount's ioctls (include/refdio_ioctl.h): direct writes from the caller's
 * own memory, synchronous or asynchronous, the collection of asynchronous results, and
 * the statistics snapshot.
 *
 * Owns: struct rd_ioctl (the table of asynchronous writes, the list of every ioctl write
 * in flight, the helper thread), struct sync_write (one REFDIO_IOC_DIO_WRITE), struct
 * async_write (one REFDIO_IOC_DIO_SUBMIT, from submission until its result is collected or
 * expires) and struct wait_req (one REFDIO_IOC_DIO_WAIT blocked on a running write).
 *
 * Lifetime rules:
 *  - The caller's identity (engine/dio_caller.c) is taken in the handler, while the
 *    caller is blocked in the request: the thread id is the request's (fuse_req_ctx), never
 *    a field of the caller's struct; the thread must be sitting in this very ioctl (same
 *    command, same argument) and its process is then pinned by a pidfd and checked after
 *    every read, so a connection abort or request timeout racing the handler can never
 *    make the daemon read another process's memory.
 *  - Every ioctl write is in ioc->live from before its submission until it is answered
 *    (its completion unlinks it); rd_ioctl_stop cancels them all, and ioc->stopping
 *    refuses new ones (ESHUTDOWN). A write whose handle is not stored yet is cancelled by
 *    its handler, which sees lw.cancel when it stores the handle.
 *  - A request registered for interrupts is unregistered (fuse_req_interrupt_func with
 *    NULL) before its reply: libfuse runs interrupt callbacks under the request's lock, so
 *    this waits for a callback running at that moment, and the callback's data never
 *    outlives the request. Interrupt callbacks never reply themselves (libfuse may still
 *    hold the request's lock after they return): an interrupted DIO_WAIT is answered EINTR
 *    by the helper thread.
 *  - A write's completion (a dio worker) never calls into the kernel's notifications: it
 *    queues its invalidation to the notifier (fuse/notify.c, where the rule is), which
 *    invalidates and then answers (sync) or publishes the result (async).
 *  - A struct sync_write has two references: the handler's (until the write's handle is
 *    stored) and the completion's (until the reply).
 *  - A struct async_write is in the table from before its submission until its result is
 *    collected (DIO_WAIT, or the failure of its own submission) or dropped: results not
 *    collected within ASYNC_TTL_S seconds are dropped, and a user with ASYNC_PER_UID
 *    entries makes room by dropping its own oldest result (counted in async_expired); a
 *    full table drops the oldest result of the user holding most. Only done entries ever
 *    leave the table, so the write's completion always finds its entry; it stores nothing
 *    into it after releasing the table lock.
 *
 * Locking order: libfuse's request lock (interrupt callbacks) -> ioc->lock -> a write's
 * own lock (rd_dio_cancel). Replies are sent with no lock of ours held.
 *
 * Must never: read the caller's memory other than through the procmem source, write
 * through a file handle that is not open for writing, reply to a request twice, or call a
 * kernel notification from any thread but the notifier.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "refdio.h"
#include "notify.h"
#include "refdio_ioctl.h"

#define ASYNC_MAX	1024	/* asynchronous writes known at once (running or done) */
#define ASYNC_PER_UID	64	/* of them, one user's (running or done) */
#define ASYNC_TTL_S	600	/* seconds a result waits to be collected */
#define CHUNK_MAX	(64u << 20)

_Static_assert(sizeof(struct refdio_dio_write) == 104, "refdio_dio_write ABI");
_Static_assert(sizeof(struct refdio_dio_wait) == 64, "refdio_dio_wait ABI");
_Static_assert(sizeof(struct refdio_strategy_stats) == 192, "refdio_strategy_stats ABI");
_Static_assert(sizeof(struct refdio_async_info) == 48, "refdio_async_info ABI");
_Static_assert(sizeof(struct refdio_stats) == 2472, "refdio_stats ABI");
_Static_assert(RD_DIO_NR_STRATEGIES == REFDIO_NR_STRATEGIES, "strategy numbering");
_Static_assert(RD_DIO_NR_STRATEGIES <= REFDIO_STATS_MAX_STRATEGIES, "stats slots");

struct async_write;

/* One ioctl write in flight, synchronous or asynchronous (all fields under ioc->lock). */
struct live_write {
	struct live_write	*next, *prev;	/* in ioc->live */
	struct rd_dio_write	*w;		/* the handle, once stored */
	bool			cancel;		/* cut it as soon as the handle is there */
};

struct wait_req {
	struct wait_req		*next;		/* in aw->waiters or ioc->eintr (ioc->lock) */
	fuse_req_t		req;
	struct rd_ioctl		*ioc;
	uint64_t		id;
	bool			linked;		/* in some aw->waiters (ioc->lock) */
	bool			interrupted;	/* (ioc->lock) */
	struct refdio_dio_wait	out;
};

struct async_write {
	struct async_write	*next;		/* the table, newest first (ioc->lock) */
	struct live_write	lw;		/* while it runs */
	struct rd_notify_ent	ne;		/* its invalidation, then async_finish */
	struct rd_ioctl		*ioc;
	uint64_t		id;
	pid_t			pid;
	uid_t			uid;
	fuse_ino_t		ino;
	uint64_t		off, len;
	unsigned		strategy;	/* enum rd_dio_strategy */
	uint64_t		t_submit, t_done;
	bool			done;		/* (ioc->lock) */
	long			result;		/* once done */
	struct rd_dio_write	*w;		/* handle, stored by rd_dio_submit itself */
	struct wait_req		*waiters;	/* (ioc->lock) */
	atomic_uint		refs;		/* the table's, and the handler's until it
						 * has stored the handle in lw */
};

/* Entries of one user in the table. */
struct uid_count {
	struct uid_count	*next;
	uid_t			uid;
	unsigned		n;
};

struct rd_ioctl {
	struct rd_daemon	*d;
	pthread_mutex_t		lock;
	pthread_cond_t		cond;		/* the helper: EINTR replies to send, or stop */
	pthread_cond_t		idle;		/* nr_running reached 0 */
	struct async_write	*head;
	struct uid_count	*uids;		/* entries per user */
	struct live_write	*live;		/* every ioctl write in flight */
	unsigned		nr, nr_running;	/* table entries; writes in live */
	bool			stopping;	/* refuse new writes */
	uint64_t		next_id;
	uint64_t		expired;
	struct wait_req		*eintr;		/* interrupted waits to answer */
	bool			stop;
	bool			helper_started;
	pthread_t		helper;
};

static struct rd_daemon *D_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool rd_fh_dsync(const struct rd_daemon *d, const struct rd_fh *fh, int req_flags)
{
	/* O_SYNC includes the O_DSYNC bit. */
	return ((req_flags | (fh ? fh->flags : 0)) & O_DSYNC) || d->opts.sync;
}

/* ---- the table ------------------------------------------------------------------------- */

/* Drops a reference; the table's is dropped where an entry is collected or dropped. */
static void async_free(struct async_write *aw)
{
	if (atomic_fetch_sub(&aw->refs, 1) != 1)
		return;
	rd_dio_write_put(aw->w);
	free(aw);
}

static struct uid_count *uid_find_locked(struct rd_ioctl *ioc, uid_t uid)
{
	for (struct uid_count *u = ioc->uids; u; u = u->next)
		if (u->uid == uid)
			return u;
	return NULL;
}

/* One more entry for uid (false: out of memory), or one fewer. */
static bool uid_add_locked(struct rd_ioctl *ioc, uid_t uid, int delta)
{
	struct uid_count *u = uid_find_locked(ioc, uid), **pp;

	if (delta > 0) {
		if (!u) {
			u = calloc(1, sizeof(*u));
			if (!u)
				return false;
			u->uid = uid;
			u->next = ioc->uids;
			ioc->uids = u;
		}
		u->n++;
		return true;
	}
	if (!u || --u->n)
		return true;
	for (pp = &ioc->uids; *pp != u; pp = &(*pp)->next)
		;
	*pp = u->next;
	free(u);
	return true;
}

static void live_link_locked(struct rd_ioctl *ioc, struct live_write *lw)
{
	lw->prev = NULL;
	lw->next = ioc->live;
	if (ioc->live)
		ioc->live->prev = lw;
	ioc->live = lw;
	ioc->nr_running++;
}

/* Out of the live list; wakes rd_ioctl_stop when it was the last. */
static void live_unlink_locked(struct rd_ioctl *ioc, struct live_write *lw)
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
static void live_set_handle(struct rd_ioctl *ioc, struct live_write *lw, struct rd_dio_write *w)
{
	pthread_mutex_lock(&ioc->lock);
	lw->w = w;
	if (lw->cancel && w)
		rd_dio_cancel(w);
	pthread_mutex_unlock(&ioc->lock);
}

/* Unlinks aw (done) from the table. */
static void async_unlink_locked(struct rd_ioctl *ioc, struct async_write *aw)
{
	struct async_write **pp;

	for (pp = &ioc->head; *pp; pp = &(*pp)->next) {
		if (*pp == aw) {
			*pp = aw->next;
			ioc->nr--;
			uid_add_locked(ioc, aw->uid, -1);
			return;
		}
	}
}

static struct async_write *async_find_locked(struct rd_ioctl *ioc, uint64_t id)
{
	struct async_write *aw;

	for (aw = ioc->head; aw; aw = aw->next)
		if (aw->id == id)
			return aw;
	return NULL;
}

/* Drops done results older than the TTL; returns them in *gone to free unlocked. */
static void async_expire_locked(struct rd_ioctl *ioc, uint64_t now, struct async_write **gone)
{
	struct async_write **pp = &ioc->head;

	while (*pp) {
		struct async_write *aw = *pp;

		if (aw->done && now - aw->t_done > (uint64_t)ASYNC_TTL_S * 1000000000ull) {
			*pp = aw->next;
			ioc->nr--;
			uid_add_locked(ioc, aw->uid, -1);
			ioc->expired++;
			aw->next = *gone;
			*gone = aw;
		} else {
			pp = &aw->next;
		}
	}
}

/* The oldest done result of uid (any user: uid == (uid_t)-1), or NULL. */
static struct async_write *oldest_done_locked(struct rd_ioctl *ioc, uid_t uid)
{
	struct async_write *oldest = NULL;

	for (struct async_write *aw = ioc->head; aw; aw = aw->next)
		if (aw->done && (uid == (uid_t)-1 || aw->uid == uid))
			oldest = aw;	/* newest first: the last one seen is the oldest */
	return oldest;
}

/*
 * Makes room for one more entry of uid. A user at its quota drops its own oldest result;
 * a full table drops the oldest result of the user holding most (never of someone with
 * fewer than the quota unless everyone is under it). -EAGAIN: all of the user's entries
 * run (or, the table full, every entry that could go runs).
 */
static int async_room_locked(struct rd_ioctl *ioc, uid_t uid, struct async_write **gone)
{
	struct uid_count *u = uid_find_locked(ioc, uid);
	struct async_write *victim = NULL;

	if (u && u->n >= ASYNC_PER_UID) {
		victim = oldest_done_locked(ioc, uid);
		if (!victim)
			return -EAGAIN;
	} else if (ioc->nr >= ASYNC_MAX) {
		struct uid_count *most = NULL;

		for (struct uid_count *x = ioc->uids; x; x = x->next)
			if (oldest_done_locked(ioc, x->uid) && (!most || x->n > most->n))
				most = x;
		victim = most ? oldest_done_locked(ioc, most->uid) : NULL;
		if (!victim)
			return -EAGAIN;
	}
	if (victim) {
		async_unlink_locked(ioc, victim);
		ioc->expired++;
		victim->next = *gone;
		*gone = victim;
	}
	return 0;
}

static void async_free_list(struct async_write *list)
{
	while (list) {
		struct async_write *next = list->next;

		async_free(list);
		list = next;
	}
}

static void fill_wait(struct refdio_dio_wait *out, const struct async_write *aw)
{
	out->state = REFDIO_ASYNC_DONE;
	out->result = aw->result;
	out->len = aw->len;
	out->elapsed_ns = aw->t_done - aw->t_submit;
}

/* Answers a waiter taken off every list (no lock held). */
static void wait_answer(struct wait_req *wr, int err)
{
	struct rd_daemon *d = wr->ioc->d;

	fuse_req_interrupt_func(wr->req, NULL, NULL);	/* waits out a running callback */
	if (err)
		fuse_reply_err(wr->req, err);
	else
		fuse_reply_ioctl(wr->req, 0, &wr->out, sizeof(wr->out));
	free(wr);
	rd_daemon_end(d);
}

/* The result is known and the kernel's cache invalidated: publish it (the notifier). */
static void async_finish(struct rd_notify_ent *ne)
{
	struct async_write *aw = (struct async_write *)((char *)ne -
							offsetof(struct async_write, ne));
	struct rd_ioctl *ioc = aw->ioc;
	struct wait_req *list, *wr;
	bool collected = false;

	pthread_mutex_lock(&ioc->lock);
	aw->t_done = now_ns();
	aw->done = true;
	live_unlink_locked(ioc, &aw->lw);
	list = aw->waiters;
	aw->waiters = NULL;
	for (wr = list; wr; wr = wr->next) {
		wr->linked = false;
		fill_wait(&wr->out, aw);
	}
	if (list) {
		/* Collected by the waiters: the entry goes. */
		async_unlink_locked(ioc, aw);
		collected = true;
	}
	pthread_mutex_unlock(&ioc->lock);

	while (list) {
		wr = list;
		list = wr->next;
		wait_answer(wr, 0);
	}
	if (collected)
		async_free(aw);	/* drops only our handle: dio frees the write when it is done */
}

/* The write's done (a dio worker): never a kernel notification here (fuse/notify.c). */
static void async_done(void *priv, long res)
{
	struct async_write *aw = priv;

	aw->result = res;	/* read by others only once done is set, under the lock */
	aw->ne.ino = aw->ino;
	aw->ne.off = aw->off;
	aw->ne.len = res > 0 ? (uint64_t)res : 0;
	aw->ne.then = async_finish;
	if (res > 0)
		rd_notify_queue(aw->ioc->d, &aw->ne);
	else
		async_finish(&aw->ne);
}

/* The helper thread: answers interrupted waits, expires old results. */
static void *helper_main(void *arg)
{
	struct rd_ioctl *ioc = arg;

	pthread_mutex_lock(&ioc->lock);
	while (!ioc->stop || ioc->eintr) {
		struct async_write *gone = NULL;
		struct wait_req *list;
		struct timespec ts;

		if (!ioc->eintr && !ioc->stop) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&ioc->cond, &ioc->lock, &ts);
		}
		list = ioc->eintr;
		ioc->eintr = NULL;
		async_expire_locked(ioc, now_ns(), &gone);
		pthread_mutex_unlock(&ioc->lock);

		async_free_list(gone);
		while (list) {
			struct wait_req *wr = list;

			list = wr->next;
			wait_answer(wr, EINTR);
		}
		pthread_mutex_lock(&ioc->lock);
	}
	pthread_mutex_unlock(&ioc->lock);
	return NULL;
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
	ret = -pthread_create(&ioc->helper, NULL, helper_main, ioc);
	if (ret) {
		pthread_cond_destroy(&ioc->idle);
		pthread_cond_destroy(&ioc->cond);
		pthread_mutex_destroy(&ioc->lock);
		free(ioc);
		return ret;
	}
	ioc->helper_started = true;
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
	for (struct async_write *aw = ioc->head; aw; aw = aw->next) {
		rd_dio_write_put(aw->w);
		aw->w = NULL;
	}
	pthread_mutex_unlock(&ioc->lock);
}

void rd_ioctl_exit(struct rd_daemon *d)
{
	struct rd_ioctl *ioc = d->ioc;

	if (!ioc)
		return;
	pthread_mutex_lock(&ioc->lock);
	ioc->stop = true;
	pthread_cond_signal(&ioc->cond);
	pthread_mutex_unlock(&ioc->lock);
	if (ioc->helper_started)
		pthread_join(ioc->helper, NULL);
	/* rd_dio_destroy ran: every write is done; uncollected results go with us. */
	async_free_list(ioc->head);
	while (ioc->uids) {
		struct uid_count *u = ioc->uids;

		ioc->uids = u->next;
		free(u);
	}
	pthread_cond_destroy(&ioc->idle);
	pthread_cond_destroy(&ioc->cond);
	pthread_mutex_destroy(&ioc->lock);
	free(ioc);
	d->ioc = NULL;
}

/* ---- direct writes ------------------------------------------------------------------- */

/* Checks the caller's struct and turns it into dio arguments (done/priv left to set). */
static int dio_args_from(struct rd_daemon *d, const struct refdio_dio_write *in,
			 const struct rd_fh *fh, uid_t uid, struct rd_dio_args *a)
{
	bool zero = !in->reserved0;

	for (size_t i = 0; i < sizeof(in->reserved) / sizeof(in->reserved[0]); i++)
		zero = zero && !in->reserved[i];
	if (!zero || (in->flags & ~REFDIO_DIO_DSYNC) || in->strategy > REFDIO_NR_STRATEGIES ||
	    in->issue > REFDIO_ISSUE_PUNT || in->window > 65536 || in->chunk % 4096 ||
	    in->chunk > CHUNK_MAX || in->offset > INT64_MAX || in->len > INT64_MAX)
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
static int caller_source(fuse_req_t req, unsigned cmd, const void *arg, bool whole_process,
			 const struct refdio_dio_write *in, struct rd_dio_source **src)
{
	struct rd_daemon *d = D_of(req);
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

struct sync_write {
	fuse_req_t		req;
	struct rd_daemon	*d;
	struct live_write	lw;		/* (ioc->lock) */
	struct rd_notify_ent	ne;		/* its invalidation, then sync_write_reply */
	fuse_ino_t		ino;
	long			res;
	struct refdio_dio_write	io;		/* the caller's struct, returned filled */
	uint64_t		t0;
	atomic_uint		refs;		/* the handler's and the completion's */
};

static void sync_write_put(struct sync_write *sw)
{
	if (atomic_fetch_sub(&sw->refs, 1) != 1)
		return;
	rd_dio_write_put(sw->lw.w);
	free(sw);
}

/* FUSE_INTERRUPT (the caller got a signal): stop at the next chunk boundary. Runs under
 * libfuse's request lock; never replies. */
static void sync_write_interrupt(fuse_req_t req, void *data)
{
	struct sync_write *sw = data;
	struct rd_ioctl *ioc = sw->d->ioc;

	(void)req;
	pthread_mutex_lock(&ioc->lock);
	sw->lw.cancel = true;
	if (sw->lw.w)
		rd_dio_cancel(sw->lw.w);
	pthread_mutex_unlock(&ioc->lock);
}

/* The reply, once the kernel's cache of the range is invalidated (the notifier). */
static void sync_write_reply(struct rd_notify_ent *ne)
{
	struct sync_write *sw = (struct sync_write *)((char *)ne -
						      offsetof(struct sync_write, ne));
	struct rd_daemon *d = sw->d;

	fuse_req_interrupt_func(sw->req, NULL, NULL);
	if (sw->res < 0) {
		fuse_reply_err(sw->req, (int)-sw->res);
	} else {
		sw->io.result = sw->res;
		sw->io.elapsed_ns = now_ns() - sw->t0;
		fuse_reply_ioctl(sw->req, 0, &sw->io, sizeof(sw->io));
	}
	pthread_mutex_lock(&d->ioc->lock);
	live_unlink_locked(d->ioc, &sw->lw);
	pthread_mutex_unlock(&d->ioc->lock);
	sync_write_put(sw);
	rd_daemon_end(d);
}

/* The write's done (a dio worker): never a kernel notification here (fuse/notify.c). */
static void sync_write_done(void *priv, long res)
{
	struct sync_write *sw = priv;

	sw->res = res;
	sw->ne.ino = sw->ino;
	sw->ne.off = sw->io.offset;
	sw->ne.len = res > 0 ? (uint64_t)res : 0;
	sw->ne.then = sync_write_reply;
	if (res > 0)
		rd_notify_queue(sw->d, &sw->ne);
	else
		sync_write_reply(&sw->ne);
}

static void ioctl_dio_write(fuse_req_t req, fuse_ino_t ino, struct rd_fh *fh, unsigned cmd,
			    const void *arg, const struct refdio_dio_write *in)
{
	struct rd_daemon *d = D_of(req);
	struct rd_ioctl *ioc = d->ioc;
	struct rd_dio_source *src = NULL;
	struct rd_dio_write *w = NULL;
	struct sync_write *sw;
	struct rd_dio_args a;
	bool linked;
	int ret;

	ret = dio_args_from(d, in, fh, fuse_req_ctx(req)->uid, &a);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	sw = calloc(1, sizeof(*sw));
	if (!sw) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	sw->req = req;
	sw->d = d;
	sw->ino = ino;
	sw->io = *in;
	sw->t0 = now_ns();
	atomic_init(&sw->refs, 2);
	rd_daemon_begin(d);
	/* Before the write exists: an interrupt that came already is seen right here. */
	fuse_req_interrupt_func(req, sync_write_interrupt, sw);

	pthread_mutex_lock(&ioc->lock);
	ret = ioc->stopping ? -ESHUTDOWN : 0;
	if (!ret)
		live_link_locked(ioc, &sw->lw);
	pthread_mutex_unlock(&ioc->lock);
	linked = !ret;
	if (!ret)
		ret = caller_source(req, cmd, arg, false, in, &src);
	if (!ret) {
		a.done = sync_write_done;
		a.priv = sw;
		ret = rd_fs_dio_submit(d->fs, d->dio, ino, src, &a, &w);
	}
	if (ret) {
		/* Nothing started: the completion's reference is ours too. */
		fuse_req_interrupt_func(req, NULL, NULL);
		pthread_mutex_lock(&ioc->lock);
		if (linked)
			live_unlink_locked(ioc, &sw->lw);
		pthread_mutex_unlock(&ioc->lock);
		fuse_reply_err(req, -ret);
		sync_write_put(sw);
		sync_write_put(sw);
		rd_daemon_end(d);
		return;
	}
	live_set_handle(ioc, &sw->lw, w);
	sync_write_put(sw);
}

static void ioctl_dio_submit(fuse_req_t req, fuse_ino_t ino, struct rd_fh *fh, unsigned cmd,
			     const void *arg, const struct refdio_dio_write *in)
{
	struct rd_daemon *d = D_of(req);
	struct rd_ioctl *ioc = d->ioc;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct async_write *aw, *gone = NULL;
	struct refdio_dio_write out = *in;
	struct rd_dio_source *src = NULL;
	struct wait_req *list = NULL;
	struct rd_dio_args a;
	int ret;

	ret = dio_args_from(d, in, fh, fuse_req_ctx(req)->uid, &a);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	aw = calloc(1, sizeof(*aw));
	if (!aw) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = caller_source(req, cmd, arg, true, in, &src);
	if (ret) {
		free(aw);
		fuse_reply_err(req, -ret);
		return;
	}
	aw->ioc = ioc;
	aw->pid = ctx->pid;
	aw->uid = ctx->uid;
	aw->ino = ino;
	aw->off = in->offset;
	aw->len = in->len;
	aw->strategy = a.strategy;
	aw->t_submit = now_ns();
	atomic_init(&aw->refs, 2);

	/* In the table first: the write's done must find it, however soon it comes. */
	pthread_mutex_lock(&ioc->lock);
	ret = ioc->stopping ? -ESHUTDOWN : async_room_locked(ioc, aw->uid, &gone);
	if (!ret && !uid_add_locked(ioc, aw->uid, +1))
		ret = -ENOMEM;
	if (!ret) {
		aw->id = ioc->next_id++;
		aw->next = ioc->head;
		ioc->head = aw;
		ioc->nr++;
		live_link_locked(ioc, &aw->lw);
	}
	pthread_mutex_unlock(&ioc->lock);
	async_free_list(gone);
	if (ret) {
		rd_dio_source_put(src);
		free(aw);
		fuse_reply_err(req, -ret);
		return;
	}
	out.id = aw->id;

	a.done = async_done;
	a.priv = aw;
	ret = rd_fs_dio_submit(d->fs, d->dio, ino, src, &a, &aw->w);
	if (ret) {
		/* Never started: out of the table, and anyone already waiting learns why. */
		pthread_mutex_lock(&ioc->lock);
		aw->done = true;
		aw->result = ret;
		aw->t_done = now_ns();
		live_unlink_locked(ioc, &aw->lw);
		list = aw->waiters;
		aw->waiters = NULL;
		for (struct wait_req *wr = list; wr; wr = wr->next) {
			wr->linked = false;
			fill_wait(&wr->out, aw);
		}
		async_unlink_locked(ioc, aw);
		pthread_mutex_unlock(&ioc->lock);
		while (list) {
			struct wait_req *wr = list;

			list = wr->next;
			wait_answer(wr, 0);
		}
		async_free(aw);
		async_free(aw);
		fuse_reply_err(req, -ret);
		return;
	}
	/* The handle for rd_ioctl_stop, while the write runs (our reference keeps aw). */
	pthread_mutex_lock(&ioc->lock);
	if (!aw->done) {
		aw->lw.w = aw->w;
		if (aw->lw.cancel)
			rd_dio_cancel(aw->w);
	}
	pthread_mutex_unlock(&ioc->lock);
	async_free(aw);
	fuse_reply_ioctl(req, 0, &out, sizeof(out));
}

/* An interrupted DIO_WAIT: the helper answers it (never from here). */
static void wait_interrupt(fuse_req_t req, void *data)
{
	struct wait_req *wr = data;
	struct rd_ioctl *ioc = wr->ioc;

	(void)req;
	pthread_mutex_lock(&ioc->lock);
	wr->interrupted = true;
	if (wr->linked) {
		struct async_write *aw = async_find_locked(ioc, wr->id);
		struct wait_req **pp;

		for (pp = aw ? &aw->waiters : NULL; pp && *pp; pp = &(*pp)->next) {
			if (*pp == wr) {
				*pp = wr->next;
				break;
			}
		}
		wr->linked = false;
		wr->next = ioc->eintr;
		ioc->eintr = wr;
		pthread_cond_signal(&ioc->cond);
	}
	pthread_mutex_unlock(&ioc->lock);
}

static void ioctl_dio_wait(fuse_req_t req, const struct refdio_dio_wait *in)
{
	struct rd_daemon *d = D_of(req);
	struct rd_ioctl *ioc = d->ioc;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct async_write *aw, *collect = NULL;
	struct wait_req *wr;
	int err = 0;
	bool answer = true;

	if ((in->flags & ~REFDIO_WAIT_NOWAIT) || in->reserved[0] || in->reserved[1] ||
	    in->reserved[2]) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	wr = calloc(1, sizeof(*wr));
	if (!wr) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	wr->req = req;
	wr->ioc = ioc;
	wr->id = in->id;
	wr->out = *in;
	rd_daemon_begin(d);
	/* Registered before the waiter can be found by anyone else. */
	fuse_req_interrupt_func(req, wait_interrupt, wr);

	pthread_mutex_lock(&ioc->lock);
	aw = async_find_locked(ioc, in->id);
	if (!aw) {
		err = ENOENT;	/* never submitted, collected already, or expired */
	} else if (ctx->uid && ctx->uid != aw->uid) {
		err = EPERM;
	} else if (aw->done) {
		fill_wait(&wr->out, aw);
		async_unlink_locked(ioc, aw);
		collect = aw;
	} else if (in->flags & REFDIO_WAIT_NOWAIT) {
		err = EAGAIN;
	} else if (wr->interrupted) {
		err = EINTR;
	} else {
		wr->linked = true;
		wr->next = aw->waiters;
		aw->waiters = wr;
		answer = false;	/* the write's done, or an interrupt, answers */
	}
	pthread_mutex_unlock(&ioc->lock);
	if (collect)
		async_free(collect);
	if (answer)
		wait_answer(wr, err);
}

/* ---- statistics ---------------------------------------------------------------------- */

static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void ioctl_stats(fuse_req_t req, const void *in_buf, size_t size)
{
	struct rd_daemon *d = D_of(req);
	struct rd_ioctl *ioc = d->ioc;
	struct refdio_stats *st = calloc(1, size > sizeof(*st) ? size : sizeof(*st));
	uint32_t flags;
	unsigned n = 0;

	if (!st) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(&flags, (const char *)in_buf + offsetof(struct refdio_stats, flags), 4);
	st->size = (uint32_t)(size < sizeof(*st) ? size : sizeof(*st));
	st->version = REFDIO_STATS_VERSION;
	st->flags = flags;
	st->nr_strategies = RD_DIO_NR_STRATEGIES;
	st->rss_bytes = rss_bytes();
	st->uptime_ns = now_ns() - d->t_start;
	st->default_strategy = d->opts.dio_strategy + 1;
	st->default_issue = d->opts.dio_issue + 1;
	st->default_window = d->opts.dio_window;
	st->default_chunk = d->opts.dio_chunk;
	st->requests_inflight = (uint64_t)atomic_load(&d->inflight);
	st->daemon_pid = (uint64_t)getpid();
	st->max_window = d->opts.max_window;
	st->max_chunk = d->opts.max_chunk;
	{
		struct rd_dio_budget_stats bs;
		struct rd_dio_readers_stats rs;

		rd_dio_budget_stats(d->dio, &bs);
		st->budget_max = bs.max;
		st->budget_max_user = d->opts.max_held_user;
		st->budget_held = bs.held;
		st->budget_peak = bs.peak;
		st->budget_waits = bs.waited;
		rd_dio_readers_stats(d->readers, &rs);
		st->reads_stalled = rs.stalled;
		st->reads_timed_out = (uint32_t)rs.timeouts;
	}
	pthread_mutex_lock(&d->pool.lock);
	st->rbufs_in_use = d->pool.total - d->pool.nr_free;
	st->rbufs_peak = d->pool.peak;
	pthread_mutex_unlock(&d->pool.lock);

	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct refdio_strategy_stats *o = &st->strategy[s];
		struct rd_dio_stats ds;

		if (rd_dio_stats(d->dio, s, &ds))
			continue;
		o->writes = ds.writes;
		o->bytes = ds.bytes;
		o->chunks = ds.chunks;
		o->short_writes = ds.short_writes;
		o->failed = ds.failed;
		o->inflight_now = ds.inflight_now;
		o->inflight_max = ds.inflight_max;
		o->held_now = ds.held_now;
		o->held_peak = ds.held_peak;
		o->write_held_peak = ds.write_held_peak;
		o->inline_submits = ds.inline_submits;
		o->punted_submits = ds.punted_submits;
		o->callers_gone = ds.callers_gone;
		o->interrupts = ds.interrupts;
		o->lat_p50_us = ds.lat_p50_us;
		o->lat_p90_us = ds.lat_p90_us;
		o->lat_p99_us = ds.lat_p99_us;
		o->lat_max_us = ds.lat_max_us;
	}

	pthread_mutex_lock(&ioc->lock);
	st->async_running = ioc->nr_running;
	st->async_done = ioc->nr - ioc->nr_running;
	st->async_expired = ioc->expired;
	for (struct async_write *aw = ioc->head; aw && n < REFDIO_STATS_MAX_ASYNC; aw = aw->next) {
		struct refdio_async_info *ai = &st->async[n++];

		ai->id = aw->id;
		ai->len = aw->len;
		ai->pid = (uint32_t)aw->pid;
		ai->strategy = aw->strategy + 1;
		ai->state = aw->done ? REFDIO_ASYNC_DONE : REFDIO_ASYNC_RUNNING;
		ai->result = aw->done ? aw->result : 0;
		ai->elapsed_ns = (aw->done ? aw->t_done : now_ns()) - aw->t_submit;
	}
	st->nr_async = n;
	pthread_mutex_unlock(&ioc->lock);

	if (flags & REFDIO_STATS_RESET)
		rd_dio_stats_reset(d->dio);
	fuse_reply_ioctl(req, 0, st, size);
	free(st);
}

/* ---- dispatch ---------------------------------------------------------------------- */

void rd_op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		 struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		 size_t in_bufsz, size_t out_bufsz)
{
	struct rd_daemon *d = D_of(req);
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
		ioctl_stats(req, in_buf, size);
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
		ioctl_dio_wait(req, &wait_in);
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
		ioctl_dio_write(req, ino, fh, cmd, arg, &win);
	else
		ioctl_dio_submit(req, ino, fh, cmd, arg, &win);
}
