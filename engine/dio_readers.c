/*
 * dio_readers.c - the threads that run blocking reads of callers' memory, each with a
 * deadline, and the write-off of reads that never end.
 *
 * Owns: struct rd_dio_readers (the queue, the running list, the reader threads, the
 * watchdog thread, the reads running and stuck per owner) and the state of every job from
 * dio_readers_submit() to its release.
 *
 * Fairness: an owner (a user) runs at most max_running_owner reads at once (its other
 * reads wait in the queue, behind nobody else's), and one with max_stalled_owner reads
 * stuck has its next reads refused at once; so a user whose memory stalls only ever
 * delays itself.
 *
 * Why threads and not io_uring: a read of another process's memory can block forever (a
 * page registered with userfaultfd that nobody resolves, a file mapping on a FUSE mount
 * that stopped answering). process_vm_readv waits killably there, so a thread stuck in it
 * never keeps the daemon from exiting; IORING_OP_ASYNC_CANCEL cannot end such a wait
 * (measured: -EALREADY, the read stays stuck) and an io-wq worker stuck in it also holds
 * up the ring's other work. So each read gets its own thread, and a read that does not end in
 * time is written off: the job completes at once (the write goes on without it), its
 * buffer is made inaccessible (freeing its memory; a late copy faults instead of landing
 * anywhere), its thread becomes a "ghost" that frees the job if its system call ever
 * returns, and a new thread takes its place.
 *
 * Job states: QUEUED -> RUNNING -> DONE, or QUEUED -> DONE (timed out or cancelled in the
 * queue), or RUNNING -> ABANDONED (timed out or cancelled while running; its thread is a
 * ghost). done() is called exactly once, by whoever moves the job to DONE or ABANDONED,
 * outside the lock.
 *
 * Lifetime: the pool struct has one reference for its owner and one per ghost; the last
 * one frees it. Normal threads are joined by destroy; ghosts are detached and never
 * waited for (teardown must not wait on a caller), and the process's exit kills them.
 *
 * Must never: wait for a running read (nothing here blocks but the reader threads in
 * run()), let a job's buffer be reused while its read may still write into it, or call
 * done() twice.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "dio_readers.h"

#define SEC_NS		1000000000ull

enum { J_QUEUED, J_RUNNING, J_DONE, J_ABANDONED };

struct reader_thread {
	struct rd_dio_readers	*r;
	pthread_t		t;
	struct reader_thread	*next;		/* in r->threads (normal threads only) */
	bool			ghost;		/* its job was abandoned (r->lock) */
};

/* One owner's reads running now and written off (stuck); freed when both are 0. */
struct owner_count {
	struct owner_count	*next;
	uint64_t		owner;
	unsigned		running, stalled;
};

struct rd_dio_readers {
	struct rd_dio_readers_opts o;
	pthread_mutex_t		lock;
	pthread_cond_t		work;		/* jobs queued, or stopping */
	pthread_cond_t		watch;		/* the watchdog: a new deadline, or stopping */
	unsigned		refs;		/* the owner's + one per ghost (lock) */
	bool			stopping;
	struct rd_dio_rjob	*q_head, *q_tail;	/* FIFO */
	struct rd_dio_rjob	*running;		/* list */
	struct reader_thread	*threads;		/* normal threads */
	unsigned		nthreads, idle;
	unsigned		stalled;		/* ghosts */
	struct owner_count	*owners;
	uint64_t		nrunning, timeouts, cancels;
	pthread_t		watchdog;
	bool			watchdog_started;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC_NS + (uint64_t)ts.tv_nsec;
}

static void list_del(struct rd_dio_rjob **head, struct rd_dio_rjob *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		*head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	j->next = j->prev = NULL;
}

static void queue_del_locked(struct rd_dio_readers *r, struct rd_dio_rjob *j)
{
	if (r->q_tail == j)
		r->q_tail = j->prev;
	list_del(&r->q_head, j);
}

static struct owner_count *owner_find_locked(struct rd_dio_readers *r, uint64_t owner)
{
	for (struct owner_count *o = r->owners; o; o = o->next)
		if (o->owner == owner)
			return o;
	return NULL;
}

/* Adds drun running and dstall stuck reads to owner's counts. */
static void owner_add_locked(struct rd_dio_readers *r, uint64_t owner, int drun, int dstall)
{
	struct owner_count *o = owner_find_locked(r, owner), **pp;

	if (!o) {
		if (drun < 0 || dstall < 0)
			return;	/* its entry could not be made: it was never counted */
		o = calloc(1, sizeof(*o));
		if (!o)
			return;	/* then this owner is not counted: no worse than no limit */
		o->owner = owner;
		o->next = r->owners;
		r->owners = o;
	}
	o->running += (unsigned)drun;
	o->stalled += (unsigned)dstall;
	if (o->running || o->stalled)
		return;
	for (pp = &r->owners; *pp != o; pp = &(*pp)->next)
		;
	*pp = o->next;
	free(o);
}

/* Under lock: the first queued job whose owner may run one more read, or NULL. One owner
 * never holds more than max_running_owner threads, so a caller whose memory stalls can
 * only ever block its own reads. */
static struct rd_dio_rjob *next_job_locked(struct rd_dio_readers *r)
{
	for (struct rd_dio_rjob *j = r->q_head; j; j = j->next) {
		struct owner_count *o = owner_find_locked(r, j->owner);

		if (!o || o->running < r->o.max_running_owner)
			return j;
	}
	return NULL;
}

static void readers_free(struct rd_dio_readers *r)
{
	while (r->owners) {
		struct owner_count *o = r->owners;

		r->owners = o->next;
		free(o);
	}
	pthread_cond_destroy(&r->watch);
	pthread_cond_destroy(&r->work);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Drops a reference taken under the lock; the lock is held and released here. */
static void readers_put_unlock(struct rd_dio_readers *r)
{
	bool last = !--r->refs;

	pthread_mutex_unlock(&r->lock);
	if (last)
		readers_free(r);
}

static void *reader_main(void *arg);

/* Under lock: a thread for the queue if none is idle and there is room. */
static void spawn_locked(struct rd_dio_readers *r)
{
	struct reader_thread *rt;

	if (!r->q_head || r->idle || r->nthreads >= r->o.threads || r->stopping)
		return;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return;	/* the queue waits for a thread, or for its deadline */
	rt->r = r;
	if (pthread_create(&rt->t, NULL, reader_main, rt)) {
		free(rt);
		return;
	}
	rt->next = r->threads;
	r->threads = rt;
	r->nthreads++;
}

/*
 * Under lock: j's read will not be waited for. Queued: it simply leaves the queue.
 * Running: its thread becomes a ghost (detached, holding a pool reference), its buffer is
 * made inaccessible, and a new thread is started if the queue needs one. Returns whether
 * the buffer was taken; the caller calls done() after unlocking.
 */
static bool abandon_locked(struct rd_dio_readers *r, struct rd_dio_rjob *j)
{
	struct reader_thread *rt = j->thread, **pp;

	if (j->state == J_QUEUED) {
		queue_del_locked(r, j);
		j->state = J_DONE;
		return false;
	}
	assert(j->state == J_RUNNING);
	list_del(&r->running, j);
	r->nrunning--;
	j->state = J_ABANDONED;
	rt->ghost = true;
	for (pp = &r->threads; *pp != rt; pp = &(*pp)->next)
		;
	*pp = rt->next;
	r->nthreads--;
	pthread_detach(rt->t);
	r->stalled++;
	r->refs++;
	owner_add_locked(r, j->owner, -1, +1);
	pthread_cond_broadcast(&r->work);	/* the owner may run another read */
	/* A fresh inaccessible mapping over the buffer: its memory goes now, and whatever
	 * the stuck call copies later faults (it fails) instead of landing in memory that
	 * is someone else's by then. The ghost unmaps the range when its call returns. */
	if (j->buf)
		(void)mmap(j->buf, j->buf_cap, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	if (r->stalled < r->o.max_stalled)
		spawn_locked(r);
	return true;
}

static void *reader_main(void *arg)
{
	struct reader_thread *rt = arg;
	struct rd_dio_readers *r = rt->r;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		struct rd_dio_rjob *j;
		long res;

		while (!(j = next_job_locked(r)) && !r->stopping) {
			r->idle++;
			pthread_cond_wait(&r->work, &r->lock);
			r->idle--;
		}
		if (!j)
			break;
		queue_del_locked(r, j);
		owner_add_locked(r, j->owner, +1, 0);
		j->state = J_RUNNING;
		j->thread = rt;
		j->next = r->running;
		if (r->running)
			r->running->prev = j;
		r->running = j;
		r->nrunning++;
		pthread_mutex_unlock(&r->lock);

		res = j->run(j);

		pthread_mutex_lock(&r->lock);
		if (rt->ghost) {
			/* Written off long ago: done() was called; clean up and go. */
			assert(j->state == J_ABANDONED);
			r->stalled--;
			owner_add_locked(r, j->owner, 0, -1);
			pthread_mutex_unlock(&r->lock);
			if (j->buf)
				munmap(j->buf, j->buf_cap);
			j->release(j);
			free(rt);
			pthread_mutex_lock(&r->lock);
			readers_put_unlock(r);
			return NULL;
		}
		list_del(&r->running, j);
		r->nrunning--;
		owner_add_locked(r, j->owner, -1, 0);
		if (r->q_head)
			pthread_cond_broadcast(&r->work);	/* a held-back job may go now */
		j->state = J_DONE;
		pthread_mutex_unlock(&r->lock);
		j->done(j, res, false);
		j->release(j);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* Under lock: the first expired job (queued or running), or NULL with *next set to the
 * earliest deadline to come (UINT64_MAX: none). */
static struct rd_dio_rjob *expired_locked(struct rd_dio_readers *r, uint64_t now,
					  uint64_t *next)
{
	*next = UINT64_MAX;
	for (int l = 0; l < 2; l++) {
		for (struct rd_dio_rjob *j = l ? r->running : r->q_head; j; j = j->next) {
			if (j->deadline <= now)
				return j;
			if (j->deadline < *next)
				*next = j->deadline;
		}
	}
	return NULL;
}

static void *watchdog_main(void *arg)
{
	struct rd_dio_readers *r = arg;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		uint64_t next, now = now_ns();
		struct rd_dio_rjob *j = expired_locked(r, now, &next);

		if (j) {
			bool taken = abandon_locked(r, j);

			r->timeouts++;
			if (!taken)
				spawn_locked(r);
			pthread_mutex_unlock(&r->lock);
			j->done(j, -ETIMEDOUT, taken);
			if (!taken)
				j->release(j);
			pthread_mutex_lock(&r->lock);
			continue;
		}
		if (next == UINT64_MAX) {
			pthread_cond_wait(&r->watch, &r->lock);
		} else {
			struct timespec ts = { .tv_sec = (time_t)(next / SEC_NS),
					       .tv_nsec = (long)(next % SEC_NS) };

			pthread_cond_timedwait(&r->watch, &r->lock, &ts);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int rd_dio_readers_create(const struct rd_dio_readers_opts *o, struct rd_dio_readers **out)
{
	struct rd_dio_readers *r;
	pthread_condattr_t ca;
	int ret;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (o)
		r->o = *o;
	if (!r->o.threads)
		r->o.threads = 16;
	if (!r->o.max_stalled)
		r->o.max_stalled = 64;
	if (!r->o.max_stalled_owner)
		r->o.max_stalled_owner = 8;
	if (!r->o.max_running_owner)
		r->o.max_running_owner = r->o.threads / 2 ? r->o.threads / 2 : 1;
	if (!r->o.timeout_ns)
		r->o.timeout_ns = 5 * SEC_NS;
	r->refs = 1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->watch, &ca);
	pthread_condattr_destroy(&ca);
	ret = -pthread_create(&r->watchdog, NULL, watchdog_main, r);
	if (ret) {
		readers_free(r);
		return ret;
	}
	r->watchdog_started = true;
	*out = r;
	return 0;
}

unsigned rd_dio_readers_destroy(struct rd_dio_readers *r)
{
	struct reader_thread *list;
	unsigned stuck;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	assert(!r->q_head && !r->running);	/* every source was put */
	r->stopping = true;
	pthread_cond_broadcast(&r->work);
	pthread_cond_broadcast(&r->watch);
	list = r->threads;
	r->threads = NULL;
	pthread_mutex_unlock(&r->lock);
	while (list) {
		struct reader_thread *rt = list;

		list = rt->next;
		pthread_join(rt->t, NULL);
		free(rt);
	}
	if (r->watchdog_started)
		pthread_join(r->watchdog, NULL);
	pthread_mutex_lock(&r->lock);
	stuck = r->stalled;
	readers_put_unlock(r);	/* ghosts, if any, free it when their calls return */
	return stuck;
}

void dio_readers_submit(struct rd_dio_readers *r, struct rd_dio_rjob *j)
{
	struct owner_count *o;

	pthread_mutex_lock(&r->lock);
	o = owner_find_locked(r, j->owner);
	if (o && o->stalled >= r->o.max_stalled_owner) {
		/* This owner's memory already holds enough reads hostage. */
		r->timeouts++;
		pthread_mutex_unlock(&r->lock);
		j->done(j, -ETIMEDOUT, false);
		j->release(j);
		return;
	}
	j->state = J_QUEUED;
	j->deadline = now_ns() + r->o.timeout_ns;
	j->thread = NULL;
	j->next = NULL;
	j->prev = r->q_tail;
	if (r->q_tail)
		r->q_tail->next = j;
	else
		r->q_head = j;
	r->q_tail = j;
	if (r->idle)
		pthread_cond_signal(&r->work);
	else
		spawn_locked(r);
	pthread_cond_signal(&r->watch);
	pthread_mutex_unlock(&r->lock);
}

void dio_readers_cancel(struct rd_dio_readers *r, struct rd_dio_rjob *j)
{
	bool taken;

	pthread_mutex_lock(&r->lock);
	if (j->state != J_QUEUED && j->state != J_RUNNING) {
		pthread_mutex_unlock(&r->lock);
		return;
	}
	taken = abandon_locked(r, j);
	r->cancels++;
	pthread_mutex_unlock(&r->lock);
	j->done(j, -ECANCELED, taken);
	if (!taken)
		j->release(j);
}

void rd_dio_readers_stats(struct rd_dio_readers *r, struct rd_dio_readers_stats *out)
{
	pthread_mutex_lock(&r->lock);
	out->running = r->nrunning;
	out->stalled = r->stalled;
	out->timeouts = r->timeouts;
	out->cancels = r->cancels;
	pthread_mutex_unlock(&r->lock);
}
