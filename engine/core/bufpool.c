/*
 * bufpool.c - the cache of page-aligned I/O buffers (see bufpool.h for the contract).
 *
 * Owns: one stack of free buffers per size class (the pointers kept here, outside the
 * buffers, so that leak checkers see them referenced) and the byte count they hold, under
 * one mutex. Under AddressSanitizer a cached buffer is poisoned, so that a use after
 * rd_bufpool_put still reports.
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "bufpool.h"

#if defined(__SANITIZE_ADDRESS__)
#define RD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RD_ASAN 1
#endif
#endif
#ifdef RD_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)	ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n)	((void)(p), (void)(n))
#define UNPOISON(p, n)	((void)(p), (void)(n))
#endif

#define PAGE		4096u
#define NR_CLASSES	48	/* 4 KiB .. RD_BUFPOOL_MAX_CLASS: class_of gives at most 43 */
#define PER_CLASS	64	/* free buffers kept per class at most */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *stacks[NR_CLASSES][PER_CLASS];	/* lock */
static unsigned depth[NR_CLASSES];		/* lock */
static uint64_t cached;				/* lock */
static uint64_t cap = RD_BUFPOOL_CACHE;		/* lock */
static _Atomic uint64_t gets, hits;

/* The class of len (> 0, <= RD_BUFPOOL_MAX_CLASS) and its size in *size. Classes: 4, 8,
 * 12, 16 KiB, then 20, 24, 28, 32, then 40, 48, 56, 64, ...: four per doubling. */
static unsigned class_of(size_t len, size_t *size)
{
	size_t step = PAGE, base = 4 * PAGE;
	unsigned idx = 0;

	if (len <= base) {
		*size = (len + PAGE - 1) / PAGE * PAGE;
		return (unsigned)(*size / PAGE) - 1;
	}
	idx = 3;
	while (len > base * 2) {
		base *= 2;
		step *= 2;
		idx += 4;
	}
	/* base < len <= 2 * base, in steps of step = base / 4. */
	*size = (len + step - 1) / step * step;
	return idx + (unsigned)((*size - base) / step);
}

void *rd_bufpool_get(size_t len)
{
	void *b = NULL;
	size_t size;
	unsigned cl;
	void *p;

	atomic_fetch_add_explicit(&gets, 1, memory_order_relaxed);
	if (!len || len > RD_BUFPOOL_MAX_CLASS) {
		size = (len + PAGE - 1) / PAGE * PAGE;
		return posix_memalign(&p, PAGE, size ? size : PAGE) ? NULL : p;
	}
	cl = class_of(len, &size);
	assert(cl < NR_CLASSES);
	pthread_mutex_lock(&lock);
	if (depth[cl]) {
		b = stacks[cl][--depth[cl]];
		cached -= size;
	}
	pthread_mutex_unlock(&lock);
	if (b) {
		atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed);
		UNPOISON(b, size);
		return b;
	}
	return posix_memalign(&p, PAGE, size) ? NULL : p;
}

void rd_bufpool_put(void *buf, size_t len)
{
	bool keep = false;
	size_t size;
	unsigned cl;

	if (!buf)
		return;
	if (!len || len > RD_BUFPOOL_MAX_CLASS) {
		free(buf);
		return;
	}
	cl = class_of(len, &size);
	assert(cl < NR_CLASSES);
	pthread_mutex_lock(&lock);
	if (cached + size <= cap && depth[cl] < PER_CLASS) {
		POISON(buf, size);
		stacks[cl][depth[cl]++] = buf;
		cached += size;
		keep = true;
	}
	pthread_mutex_unlock(&lock);
	if (!keep)
		free(buf);
}

void rd_bufpool_stats(struct rd_bufpool_stats *out)
{
	pthread_mutex_lock(&lock);
	out->cached = cached;
	out->cap = cap;
	pthread_mutex_unlock(&lock);
	out->gets = atomic_load(&gets);
	out->hits = atomic_load(&hits);
}

uint64_t rd_bufpool_set_cap(uint64_t new_cap)
{
	void *gone[NR_CLASSES * PER_CLASS];
	unsigned n = 0;
	uint64_t old;

	pthread_mutex_lock(&lock);
	old = cap;
	cap = new_cap;
	for (unsigned cl = NR_CLASSES; cl-- > 0 && cached > cap;) {
		size_t size = 0;

		/* The size of class cl: the inverse of class_of, found by asking it. */
		for (size_t s = PAGE; s <= RD_BUFPOOL_MAX_CLASS; s += PAGE)
			if (class_of(s, &size) == cl)
				break;
		while (depth[cl] && cached > cap) {
			void *b = stacks[cl][--depth[cl]];

			UNPOISON(b, size);
			cached -= size;
			gone[n++] = b;
		}
	}
	pthread_mutex_unlock(&lock);
	while (n)
		free(gone[--n]);
	return old;
}
