/*
 * test.h - the few assertion macros the C tests use.
 *
 * A failed check prints where and what, then exits 1 at once (so meson counts the test
 * failed): _exit, so that nothing waits for threads a failing test may leave stuck (a
 * stalled caller's read, a write that never completes), LeakSanitizer's final pass
 * included. Tests are plain programs, one scenario family per file.
 */
#ifndef RD_TEST_H
#define RD_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TEST_FAIL_EXIT() do { fflush(NULL); _exit(1); } while (0)

#define CHECK(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		TEST_FAIL_EXIT();						\
	}									\
} while (0)

#define CHECK_EQ(a, b) do {							\
	long long _a = (long long)(a), _b = (long long)(b);			\
	if (_a != _b) {								\
		fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",	\
			__FILE__, __LINE__, #a, _a, #b, _b);			\
		TEST_FAIL_EXIT();						\
	}									\
} while (0)

/* An engine call that must succeed: prints the engine's message when it does not. */
#define CHECK_OK(expr) do {							\
	int _r = (expr);							\
	if (_r < 0) {								\
		fprintf(stderr, "%s:%d: %s failed: %d (%s)\n", __FILE__, __LINE__, #expr, \
			_r, rd_strerror(_r));					\
		TEST_FAIL_EXIT();						\
	}									\
} while (0)

/* A seed from RD_TEST_SEED or the clock, printed so a failure can be replayed. */
static inline uint64_t test_seed(void)
{
	const char *e = getenv("RD_TEST_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);

	fprintf(stderr, "seed %" PRIu64 " (RD_TEST_SEED to replay)\n", seed);
	return seed;
}

/* xorshift64*: small, fast, reproducible. */
static inline uint64_t test_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

#endif
