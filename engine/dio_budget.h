/*
 * dio_budget.h - chunk-buffer memory of the dio engine: the buffers themselves and the
 * mount-wide budget they live under. Internal to engine/dio*.c.
 *
 * Owns: every chunk buffer (its own mapping, in power-of-two size classes from 4 KiB),
 * the pool of free buffers kept for reuse, and the budget: the bytes writes have reserved
 * plus the bytes kept in the pool never exceed `max`. A write reserves before it allocates
 * (dio_budget_reserve), frees buffers back (dio_budget_free) and returns what it reserved
 * but never allocated (dio_budget_unreserve).
 *
 * Owners: every reservation is an owner's (a user id), and one owner never holds more
 * than max_owner: a user whose writes stall (their reads wait for a caller's memory while
 * their buffers are reserved) leaves max - max_owner to everyone else.
 *
 * Waiting is a state, never a blocked thread: a reservation that does not fit queues the
 * write's waiter (FIFO) and fails; when memory comes back and the first waiter whose owner
 * is under its share fits, the budget calls wake(it) (under its lock; wake must only take
 * locks ordered after it). While such a waiter exists, only it may reserve: a running
 * write then goes on with the buffers it holds (every write can always progress with one
 * buffer), so the waiter is served once earlier writes give memory back, and newcomers
 * queue behind it. Waiters whose owner is at its share are passed over (only that owner's
 * own writes can make room for them).
 *
 * Lock order: a write's lock -> budget lock -> the engine's queue lock (inside wake).
 *
 * Must never: let reserved + pooled exceed max (asserted), hand out a buffer that is not
 * page aligned, or block (beyond mmap/munmap) in any call.
 */
#ifndef RD_DIO_BUDGET_H
#define RD_DIO_BUDGET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIO_BUF_MIN_SHIFT	12		/* buffers come in powers of two from 4 KiB */
#define DIO_BUF_CLASSES		(64 - DIO_BUF_MIN_SHIFT)

/* Embedded in a write; everything in it is under the budget's lock (owner: set once). */
struct dio_budget_waiter {
	struct dio_budget_waiter *next, *prev;
	uint64_t	owner;		/* whose share the write's reservations count in */
	uint64_t	need;		/* bytes asked for */
	bool		queued;
	bool		waited;		/* counted once in waits */
};

struct dio_budget_owner;

struct dio_budget {
	pthread_mutex_t	lock;
	uint64_t	max;		/* reserved + pooled never exceed it */
	uint64_t	max_owner;	/* one owner's reservations never exceed it */
	struct dio_budget_owner *owners;	/* those with something reserved */
	uint64_t	pool_max;	/* bytes of free buffers kept */
	uint64_t	reserved;	/* by writes: buffers they own or will allocate */
	uint64_t	reserved_peak;
	uint64_t	pooled;		/* free buffers kept for reuse */
	uint64_t	waits;		/* writes that had to wait, since the last reset */
	void		*pool[DIO_BUF_CLASSES];	/* linked through their first word */
	struct dio_budget_waiter *head, *tail;
	void		(*wake)(struct dio_budget_waiter *wt, void *priv);
	void		*priv;
};

/* A chunk buffer's real size for len bytes (its size class). */
size_t dio_buf_cap(size_t len);

void dio_budget_init(struct dio_budget *b, uint64_t max, uint64_t max_owner, uint64_t pool_max,
		     void (*wake)(struct dio_budget_waiter *wt, void *priv), void *priv);
/* Frees the pool; nothing may be reserved or waiting. */
void dio_budget_destroy(struct dio_budget *b);

/*
 * Reserves bytes for wt's write. true: reserved (wt left the queue if it was in it).
 * false: wt is (now, or still) queued; wake(wt) will tell when trying again makes sense.
 */
bool dio_budget_reserve(struct dio_budget *b, struct dio_budget_waiter *wt, uint64_t bytes);
/* Gives back bytes of wt's owner reserved and never allocated. */
void dio_budget_unreserve(struct dio_budget *b, struct dio_budget_waiter *wt, uint64_t bytes);
/* wt no longer wants anything: out of the queue. */
void dio_budget_leave(struct dio_budget *b, struct dio_budget_waiter *wt);

/* A buffer of cap bytes (a size class) against a reservation already made: from the pool,
 * else a fresh mapping; NULL when out of memory. */
void *dio_budget_buf_get(struct dio_budget *b, size_t cap);
/* Frees a buffer and the reservation it used (cap bytes of wt's owner): into the pool or
 * unmapped. */
void dio_budget_free(struct dio_budget *b, struct dio_budget_waiter *wt, void *buf, size_t cap);

struct dio_budget_stats {
	uint64_t max, reserved, reserved_peak, pooled, waits, waiting;
};
void dio_budget_read(struct dio_budget *b, struct dio_budget_stats *out);
/* Peak restarts from now; waits from 0. */
void dio_budget_reset(struct dio_budget *b);

#endif
