/*
 * util.h - the few helpers every layer of the engine shares: container_of, rounding,
 * buffers aligned for O_DIRECT, and a one-shot completion a thread can wait for.
 *
 * Owns: nothing with state of its own. It sits at the bottom of the engine: it includes
 * only the C library, and every other engine file may include it.
 *
 * Must never: grow anything that knows about stores, trees, files or I/O.
 */
#ifndef RD_UTIL_H
#define RD_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline uint64_t rd_round_down(uint64_t x, uint64_t a)
{
	return x / a * a;
}

static inline uint64_t rd_round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* Memory aligned for O_DIRECT, not zeroed: large buffers that are always written before
 * they are read (rd_io_buf_alloc zero-fills, which faults in every page up front). */
static inline void *rd_buf_alloc_uninit(size_t len)
{
	void *p = NULL;

	return posix_memalign(&p, 4096, (len + 4095) & ~(size_t)4095) ? NULL : p;
}

/*
 * A one-shot completion: one thread waits (rd_completion_wait) for a result that another
 * thread posts exactly once (rd_completion_done), e.g. from an I/O callback. It lives on
 * the waiter's stack: the poster must not touch it after rd_completion_done returns, which
 * the lock guarantees (the waiter cannot return before the poster unlocks).
 */
struct rd_completion {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	bool		done;
	long		res;
};

static inline void rd_completion_init(struct rd_completion *c)
{
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->done = false;
	c->res = 0;
}

static inline void rd_completion_done(struct rd_completion *c, long res)
{
	pthread_mutex_lock(&c->lock);
	c->res = res;
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Waits for the result, then destroys c (it may go out of scope). */
static inline long rd_completion_wait(struct rd_completion *c)
{
	long res;

	pthread_mutex_lock(&c->lock);
	while (!c->done)
		pthread_cond_wait(&c->cond, &c->lock);
	res = c->res;
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	return res;
}

#endif
