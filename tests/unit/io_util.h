/*
 * io_util.h - helpers shared by the I/O layer's tests: temporary images, a completion
 * counter to wait on, and a reproducible byte pattern.
 */
#ifndef RD_TEST_IO_UTIL_H
#define RD_TEST_IO_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"

/* Creates an empty temporary image of size bytes; path receives its name (>= 32 bytes). */
static inline void tmp_image(char *path, uint64_t size)
{
	int fd;

	strcpy(path, "/tmp/io-test-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	CHECK(close(fd) == 0);
}

/* The pattern byte at absolute position pos, for a given seed. */
static inline uint8_t pattern_byte(uint64_t seed, uint64_t pos)
{
	uint64_t x = (pos >> 3) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (uint8_t)(x >> ((pos & 7) * 8));
}

static inline void pattern_fill(void *buf, uint64_t seed, uint64_t pos, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = pattern_byte(seed, pos + i);
}

/* Index of the first byte that differs from the pattern, or len. */
static inline size_t pattern_check(const void *buf, uint64_t seed, uint64_t pos, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern_byte(seed, pos + i))
			return i;
	return len;
}

/* A counter completion callbacks bump and a test thread waits on. */
struct latch {
	pthread_mutex_t	lock;
	pthread_cond_t	cv;
	unsigned long	count;
};
#define LATCH_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 }

static inline void latch_add(struct latch *l)
{
	pthread_mutex_lock(&l->lock);
	l->count++;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->lock);
}

static inline unsigned long latch_get(struct latch *l)
{
	unsigned long n;

	pthread_mutex_lock(&l->lock);
	n = l->count;
	pthread_mutex_unlock(&l->lock);
	return n;
}

static inline void latch_wait(struct latch *l, unsigned long n)
{
	pthread_mutex_lock(&l->lock);
	while (l->count < n)
		pthread_cond_wait(&l->cv, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

static inline double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

#endif
