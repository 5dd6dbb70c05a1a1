/*
 * ioctl_async.c - asynchronous direct writes: REFDIO_IOC_DIO_SUBMIT starts one and answers
 * at once with its id, REFDIO_IOC_DIO_WAIT collects its result. Owns the table of them
 * (struct async_write, from submission until its result is collected or expires), the
 * waits blocked on running writes (struct wait_req), the per-user counts and the helper
 * thread that answers interrupted waits and expires old results. Rules in ioctl.h.
 *
 * Must never: reply to a request twice, reply from an interrupt callback, let an entry
 * leave the table before its write is done, or store into an entry after the table lock
 * is released in its completion.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ioctl.h"

#define ASYNC_MAX	1024	/* asynchronous writes known at once (running or done) */
#define ASYNC_PER_UID	64	/* of them, one user's (running or done) */
#define ASYNC_TTL_S	600	/* seconds a result waits to be collected */

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

/* Drops a reference; the table's is dropped where an entry is collected or dropped. */
static void async_free(struct async_write *aw)
{
	unsigned old = atomic_fetch_sub(&aw->refs, 1);

	assert(old > 0);
	if (old != 1)
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
	assert(u && u->n > 0);	/* every entry in the table is counted */
	if (!u || --u->n)
		return true;
	for (pp = &ioc->uids; *pp != u; pp = &(*pp)->next)
		;
	*pp = u->next;
	free(u);
	return true;
}

/* Unlinks aw (done) from the table. */
static void async_unlink_locked(struct rd_ioctl *ioc, struct async_write *aw)
{
	struct async_write **pp;

	assert(aw->done);	/* never before its write is done */
	for (pp = &ioc->head; *pp; pp = &(*pp)->next) {
		if (*pp == aw) {
			assert(ioc->nr > 0);
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
	assert(!aw->done);	/* finished once */
	aw->t_done = rd_ioctl_now_ns();
	aw->done = true;
	rd_ioctl_live_unlink_locked(ioc, &aw->lw);
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
		async_expire_locked(ioc, rd_ioctl_now_ns(), &gone);
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

int rd_ioctl_async_start(struct rd_ioctl *ioc)
{
	int ret = -pthread_create(&ioc->helper, NULL, helper_main, ioc);

	if (!ret)
		ioc->helper_started = true;
	return ret;
}

/* Teardown, every write cut and answered: the results stay (for nobody now), the handles
 * go, since rd_dio_destroy waits for them. */
void rd_ioctl_async_drop_handles_locked(struct rd_ioctl *ioc)
{
	for (struct async_write *aw = ioc->head; aw; aw = aw->next) {
		rd_dio_write_put(aw->w);
		aw->w = NULL;
	}
}

void rd_ioctl_async_exit(struct rd_ioctl *ioc)
{
	pthread_mutex_lock(&ioc->lock);
	ioc->stop = true;
	pthread_cond_signal(&ioc->cond);
	pthread_mutex_unlock(&ioc->lock);
	if (ioc->helper_started)
		pthread_join(ioc->helper, NULL);
	/* Every write is done; uncollected results go with us. */
	async_free_list(ioc->head);
	ioc->head = NULL;
	while (ioc->uids) {
		struct uid_count *u = ioc->uids;

		ioc->uids = u->next;
		free(u);
	}
}

void rd_ioctl_async_stats(struct rd_ioctl *ioc, struct refdio_stats *st)
{
	unsigned n = 0;

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
		ai->elapsed_ns = (aw->done ? aw->t_done : rd_ioctl_now_ns()) - aw->t_submit;
	}
	st->nr_async = n;
	pthread_mutex_unlock(&ioc->lock);
}

void rd_ioctl_dio_submit(fuse_req_t req, fuse_ino_t ino, struct rd_fh *fh, unsigned cmd,
			     const void *arg, const struct refdio_dio_write *in)
{
	struct rd_daemon *d = rd_ioctl_daemon(req);
	struct rd_ioctl *ioc = d->ioc;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct async_write *aw, *gone = NULL;
	struct refdio_dio_write out = *in;
	struct rd_dio_source *src = NULL;
	struct wait_req *list = NULL;
	struct rd_dio_args a;
	int ret;

	ret = rd_ioctl_dio_args_from(d, in, fh, fuse_req_ctx(req)->uid, &a);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	aw = calloc(1, sizeof(*aw));
	if (!aw) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = rd_ioctl_caller_source(req, cmd, arg, true, in, &src);
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
	aw->t_submit = rd_ioctl_now_ns();
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
		rd_ioctl_live_link_locked(ioc, &aw->lw);
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
		aw->t_done = rd_ioctl_now_ns();
		rd_ioctl_live_unlink_locked(ioc, &aw->lw);
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

void rd_ioctl_dio_wait(fuse_req_t req, const struct refdio_dio_wait *in)
{
	struct rd_daemon *d = rd_ioctl_daemon(req);
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

