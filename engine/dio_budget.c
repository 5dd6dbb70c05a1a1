/*
 * dio_budget.c - chunk buffers and the memory budget of the dio engine (see dio_budget.h
 * for the contract: FIFO waiting, wake callbacks, lock order).
 *
 * Owns: the buffers' mappings and the pool of free ones. Buffers are their own mappings
 * (fresh memory costs a page fault per 4 KiB, so a bounded number are kept for reuse) and
 * are marked MADV_DONTFORK: a fork of the daemon must neither share them copy-on-write
 * while I/O fills them nor leave the daemon a copy fault per page afterwards.
 *
 * Must never: exceed max with reserved + pooled, call wake with a waiter that is not the
 * queue's head, or munmap under the lock (the unmaps collected under it happen after).
 */
#include <assert.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "dio_budget.h"

size_t dio_buf_cap(size_t len)
{
	unsigned shift = DIO_BUF_MIN_SHIFT;

	while (((size_t)1 << shift) < len)
		shift++;
	return (size_t)1 << shift;
}

static unsigned buf_class(size_t cap)
{
	return (unsigned)__builtin_ctzll(cap) - DIO_BUF_MIN_SHIFT;
}

struct dio_budget_owner {
	struct dio_budget_owner	*next;
	uint64_t		owner;
	uint64_t		reserved;
};

static struct dio_budget_owner *owner_find_locked(struct dio_budget *b, uint64_t owner)
{
	for (struct dio_budget_owner *o = b->owners; o; o = o->next)
		if (o->owner == owner)
			return o;
	return NULL;
}

static uint64_t owner_reserved_locked(struct dio_budget *b, uint64_t owner)
{
	struct dio_budget_owner *o = owner_find_locked(b, owner);

	return o ? o->reserved : 0;
}

/* Adds to owner's reservations (false: no memory for its entry); at 0 the entry goes. */
static bool owner_add_locked(struct dio_budget *b, uint64_t owner, int64_t d)
{
	struct dio_budget_owner *o = owner_find_locked(b, owner), **pp;

	if (!o) {
		if (d <= 0)
			return true;
		o = calloc(1, sizeof(*o));
		if (!o)
			return false;
		o->owner = owner;
		o->next = b->owners;
		b->owners = o;
	}
	assert(d >= 0 || o->reserved >= (uint64_t)-d);
	o->reserved += (uint64_t)d;
	if (o->reserved)
		return true;
	for (pp = &b->owners; *pp != o; pp = &(*pp)->next)
		;
	*pp = o->next;
	free(o);
	return true;
}

/* Whether bytes more stay within the owner's share. */
static bool owner_room_locked(struct dio_budget *b, uint64_t owner, uint64_t bytes)
{
	uint64_t r = owner_reserved_locked(b, owner);

	return bytes <= b->max_owner && r <= b->max_owner - bytes;
}

/* The first waiter whose owner has room for what it asks: the one served next. */
static struct dio_budget_waiter *first_eligible_locked(struct dio_budget *b)
{
	for (struct dio_budget_waiter *w = b->head; w; w = w->next)
		if (owner_room_locked(b, w->owner, w->need))
			return w;
	return NULL;
}

static void unmap_list(void *list)
{
	while (list) {
		void *buf = list;
		size_t cap = ((size_t *)buf)[1];

		list = *(void **)buf;
		munmap(buf, cap);
	}
}

void dio_budget_init(struct dio_budget *b, uint64_t max, uint64_t max_owner, uint64_t pool_max,
		     void (*wake)(struct dio_budget_waiter *wt, void *priv), void *priv)
{
	*b = (struct dio_budget){ .max = max, .max_owner = max_owner < max ? max_owner : max,
				  .pool_max = pool_max < max ? pool_max : max,
				  .wake = wake, .priv = priv };
	pthread_mutex_init(&b->lock, NULL);
}

void dio_budget_destroy(struct dio_budget *b)
{
	assert(!b->reserved && !b->head && !b->owners);
	for (unsigned cl = 0; cl < DIO_BUF_CLASSES; cl++) {
		while (b->pool[cl]) {
			void *buf = b->pool[cl];

			b->pool[cl] = *(void **)buf;
			munmap(buf, (size_t)1 << (cl + DIO_BUF_MIN_SHIFT));
		}
	}
	pthread_mutex_destroy(&b->lock);
}

/*
 * Under lock: makes room for bytes more by dropping pooled buffers (onto *gone, to unmap
 * unlocked); whether reserved + pooled + bytes then fits.
 */
static bool fits_locked(struct dio_budget *b, uint64_t bytes, void **gone)
{
	if (bytes > b->max - b->reserved)
		return false;
	for (unsigned cl = DIO_BUF_CLASSES; cl-- > 0 && b->reserved + b->pooled + bytes > b->max;) {
		size_t cap = (size_t)1 << (cl + DIO_BUF_MIN_SHIFT);

		while (b->pool[cl] && b->reserved + b->pooled + bytes > b->max) {
			void *buf = b->pool[cl];

			b->pool[cl] = *(void **)buf;
			b->pooled -= cap;
			((size_t *)buf)[1] = cap;
			*(void **)buf = *gone;
			*gone = buf;
		}
	}
	return b->reserved + b->pooled + bytes <= b->max;
}

/* Under lock: if the waiter to be served next could be served now, tell it. */
static void wake_head_locked(struct dio_budget *b)
{
	struct dio_budget_waiter *w = first_eligible_locked(b);

	if (w && w->need <= b->max - b->reserved)
		b->wake(w, b->priv);
}

static void dequeue_locked(struct dio_budget *b, struct dio_budget_waiter *wt)
{
	if (wt->prev)
		wt->prev->next = wt->next;
	else
		b->head = wt->next;
	if (wt->next)
		wt->next->prev = wt->prev;
	else
		b->tail = wt->prev;
	wt->next = wt->prev = NULL;
	wt->queued = false;
}

bool dio_budget_reserve(struct dio_budget *b, struct dio_budget_waiter *wt, uint64_t bytes)
{
	void *gone = NULL;
	bool ok;

	pthread_mutex_lock(&b->lock);
	if (owner_room_locked(b, wt->owner, bytes)) {
		struct dio_budget_waiter *first = first_eligible_locked(b);

		ok = (!first || first == wt) && fits_locked(b, bytes, &gone) &&
		     owner_add_locked(b, wt->owner, (int64_t)bytes);
	} else {
		ok = false;
	}
	if (ok) {
		b->reserved += bytes;
		if (b->reserved > b->reserved_peak)
			b->reserved_peak = b->reserved;
		assert(b->reserved + b->pooled <= b->max);
		if (wt->queued) {
			dequeue_locked(b, wt);	/* it was the one to serve */
			wake_head_locked(b);
		}
	} else {
		wt->need = bytes;
		if (!wt->queued) {
			wt->queued = true;
			wt->next = NULL;
			wt->prev = b->tail;
			if (b->tail)
				b->tail->next = wt;
			else
				b->head = wt;
			b->tail = wt;
			if (!wt->waited) {
				wt->waited = true;
				b->waits++;
			}
		}
	}
	pthread_mutex_unlock(&b->lock);
	unmap_list(gone);
	return ok;
}

void dio_budget_unreserve(struct dio_budget *b, struct dio_budget_waiter *wt, uint64_t bytes)
{
	if (!bytes)
		return;
	pthread_mutex_lock(&b->lock);
	assert(b->reserved >= bytes);
	b->reserved -= bytes;
	owner_add_locked(b, wt->owner, -(int64_t)bytes);
	wake_head_locked(b);
	pthread_mutex_unlock(&b->lock);
}

void dio_budget_leave(struct dio_budget *b, struct dio_budget_waiter *wt)
{
	pthread_mutex_lock(&b->lock);
	if (wt->queued) {
		dequeue_locked(b, wt);
		wake_head_locked(b);
	}
	pthread_mutex_unlock(&b->lock);
}

void *dio_budget_buf_get(struct dio_budget *b, size_t cap)
{
	unsigned cl = buf_class(cap);
	void *buf;

	pthread_mutex_lock(&b->lock);
	buf = b->pool[cl];
	if (buf) {
		b->pool[cl] = *(void **)buf;
		b->pooled -= cap;	/* it was counted in the pool; now in a reservation */
	}
	pthread_mutex_unlock(&b->lock);
	if (buf)
		return buf;

	buf = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return NULL;
	(void)madvise(buf, cap, MADV_DONTFORK);	/* best effort */
	return buf;
}

void dio_budget_free(struct dio_budget *b, struct dio_budget_waiter *wt, void *buf, size_t cap)
{
	unsigned cl = buf_class(cap);

	pthread_mutex_lock(&b->lock);
	assert(b->reserved >= cap);
	b->reserved -= cap;
	owner_add_locked(b, wt->owner, -(int64_t)cap);
	if (buf && b->pooled + cap <= b->pool_max && b->reserved + b->pooled + cap <= b->max) {
		*(void **)buf = b->pool[cl];
		b->pool[cl] = buf;
		b->pooled += cap;
		buf = NULL;
	}
	wake_head_locked(b);
	pthread_mutex_unlock(&b->lock);
	if (buf)
		munmap(buf, cap);
}

void dio_budget_read(struct dio_budget *b, struct dio_budget_stats *out)
{
	pthread_mutex_lock(&b->lock);
	out->max = b->max;
	out->reserved = b->reserved;
	out->reserved_peak = b->reserved_peak;
	out->pooled = b->pooled;
	out->waits = b->waits;
	out->waiting = 0;
	for (struct dio_budget_waiter *w = b->head; w; w = w->next)
		out->waiting++;
	pthread_mutex_unlock(&b->lock);
}

void dio_budget_reset(struct dio_budget *b)
{
	pthread_mutex_lock(&b->lock);
	b->reserved_peak = b->reserved;
	b->waits = 0;
	pthread_mutex_unlock(&b->lock);
}
