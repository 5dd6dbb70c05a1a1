/*
 * test_dio_util.h - helpers shared by the dio tests: a reproducible byte pattern keyed by
 * file offset, and a synthetic zero-copy source for writes too large to keep in memory.
 */
#ifndef TEST_DIO_UTIL_H
#define TEST_DIO_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "refdio/dio.h"

/* TSan makes every byte copied ~20x dearer: the tests shrink their volumes under it (the
 * bounds they assert stay the same). */
#ifdef __SANITIZE_THREAD__
#define TEST_DIO_SCALE 8
#define TEST_DIO_TSAN 1
#else
#define TEST_DIO_SCALE 1
#define TEST_DIO_TSAN 0
#endif

/* The pattern's 8-byte word number i (a cheap mix of seed and i). */
static inline uint64_t pat_word(uint64_t seed, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 29);
}

static inline uint8_t pat_byte(uint64_t seed, uint64_t o)
{
	return (uint8_t)(pat_word(seed, o / 8) >> (8 * (o % 8)));
}

/* p[0..len) = the pattern's bytes [o, o+len). */
static inline void pat_fill(void *p, size_t len, uint64_t seed, uint64_t o)
{
	uint8_t *b = p;
	size_t i = 0;

	for (; i < len && (o + i) % 8; i++)
		b[i] = pat_byte(seed, o + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = pat_word(seed, (o + i) / 8);

		memcpy(b + i, &w, 8);
	}
	for (; i < len; i++)
		b[i] = pat_byte(seed, o + i);
}

/* Whether p[0..len) equals the pattern's bytes [o, o+len). */
static inline int pat_check(const void *p, size_t len, uint64_t seed, uint64_t o)
{
	const uint8_t *b = p;
	size_t i = 0;

	for (; i < len && (o + i) % 8; i++)
		if (b[i] != pat_byte(seed, o + i))
			return -1;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, b + i, 8);
		if (w != pat_word(seed, (o + i) / 8))
			return -1;
	}
	for (; i < len; i++)
		if (b[i] != pat_byte(seed, o + i))
			return -1;
	return 0;
}

static inline void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static inline double secs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A synthetic zero-copy source of any length: every chunk lends the same block of bytes.
 * For writes far larger than memory (64 GiB); the sink then runs with no_hash.
 */
struct synth_source {
	struct rd_dio_source	src;
	const void		*block;
	size_t			block_len;
	int			*puts;
};

static inline void synth_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	struct synth_source *ss = (struct synth_source *)src;

	CHECK(rd->len <= ss->block_len);
	rd->data = ss->block;
	rd->done(rd, (long)rd->len);
}

static inline void synth_put(struct rd_dio_source *src)
{
	struct synth_source *ss = (struct synth_source *)src;

	(*ss->puts)++;
	free(ss);
}

static const struct rd_dio_source_ops synth_ops = {
	.name = "synth", .read = synth_read, .put = synth_put,
};

static inline struct rd_dio_source *synth_new(uint64_t len, const void *block,
					      size_t block_len, int *puts)
{
	struct synth_source *ss = calloc(1, sizeof(*ss));

	CHECK(ss);
	ss->src.ops = &synth_ops;
	ss->src.len = len;
	ss->src.flags = RD_DIO_SRC_ZERO_COPY;
	ss->block = block;
	ss->block_len = block_len;
	ss->puts = puts;
	return &ss->src;
}

#endif
