/*
 * test_bufpool.c - the I/O buffer cache (engine/core/bufpool.c) and rd_io_buf_alloc on it.
 *
 * Checks: buffers are 4096-aligned and as large as asked; a buffer given back is handed out
 * again for a request of its class (the point: no fresh mapping per request), never while
 * it is out; the cache never holds more than its cap; oversized requests work uncached;
 * rd_io_buf_alloc zero-fills a reused buffer; threads hammering it together (also under
 * TSan) never get one buffer twice. Negative control: with the cap at 0 nothing is reused,
 * and the reuse check sees it (the same test that passes above then reports no reuse).
 */
#include <pthread.h>
#include <stdint.h>

#include "../test.h"
#include "bufpool.h"
#include "refdio/image.h"

/* Whether a put buffer of len comes back for the next get of len: the same memory, and
 * counted as served from the cache (malloc alone may also give the same address back). */
static int reused(size_t len)
{
	struct rd_bufpool_stats s0, s1;
	void *a = rd_bufpool_get(len), *b;

	CHECK(a && (uintptr_t)a % 4096 == 0);
	memset(a, 0xab, len);
	rd_bufpool_put(a, len);
	rd_bufpool_stats(&s0);
	b = rd_bufpool_get(len);
	rd_bufpool_stats(&s1);
	CHECK(b && (uintptr_t)b % 4096 == 0);
	memset(b, 0xcd, len);
	rd_bufpool_put(b, len);
	return a == b && s1.hits == s0.hits + 1;
}

#define THREADS	4
#define ROUNDS	2000

static void *hammer(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	unsigned char tag = (unsigned char)(uintptr_t)arg;

	for (int i = 0; i < ROUNDS; i++) {
		size_t len = 4096u << (rand_r(&seed) % 7);
		unsigned char *p = rd_bufpool_get(len);

		CHECK(p);
		memset(p, tag, len);
		/* Nobody else may write it while it is ours. */
		for (size_t k = 0; k < len; k += 512)
			CHECK(p[k] == tag);
		rd_bufpool_put(p, len);
	}
	return NULL;
}

int main(void)
{
	struct rd_bufpool_stats st;
	void *held[64];
	pthread_t t[THREADS];
	uint64_t old;

	/* Reuse within a class, for every class shape (4 KiB steps, then quarter steps). */
	for (size_t len = 4096; len <= (4u << 20); len = len * 3 / 2 + 4096)
		CHECK(reused(len));
	/* A request and one just below it share a class; two out at once differ. */
	{
		void *a = rd_bufpool_get(300000), *b = rd_bufpool_get(300000);

		CHECK(a && b && a != b);
		rd_bufpool_put(a, 300000);
		rd_bufpool_put(b, 300000);
	}
	/* Oversized: plain allocations, never cached. */
	{
		size_t big = RD_BUFPOOL_MAX_CLASS + 4096;
		char *p = rd_bufpool_get(big);

		CHECK(p && (uintptr_t)p % 4096 == 0);
		p[big - 1] = 1;
		rd_bufpool_stats(&st);
		old = st.cached;
		rd_bufpool_put(p, big);
		rd_bufpool_stats(&st);
		CHECK_EQ(st.cached, old);
	}
	/* The cap: 64 buffers of 1 MiB given back, at most 16 MiB kept. */
	for (int i = 0; i < 64; i++)
		CHECK((held[i] = rd_bufpool_get(1u << 20)));
	for (int i = 0; i < 64; i++)
		rd_bufpool_put(held[i], 1u << 20);
	rd_bufpool_stats(&st);
	CHECK(st.cached <= st.cap && st.cap == RD_BUFPOOL_CACHE);
	CHECK(st.hits > 0 && st.hits <= st.gets);

	/* rd_io_buf_alloc: zero-filled even when its memory is reused. */
	{
		unsigned char *p = rd_io_buf_alloc(100000), *q;

		CHECK(p && (uintptr_t)p % 4096 == 0);
		memset(p, 0xff, 100000);
		rd_io_buf_free(p);
		q = rd_io_buf_alloc(100000);
		CHECK(q == p);
		for (size_t k = 0; k < 100000; k++)
			CHECK(q[k] == 0);
		rd_io_buf_free(q);
		rd_io_buf_free(NULL);
	}

	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK(!pthread_create(&t[i], NULL, hammer, (void *)(i + 1)));
	for (int i = 0; i < THREADS; i++)
		CHECK(!pthread_join(t[i], NULL));

	/* Negative control: nothing cached, nothing reused, and the check says so. */
	old = rd_bufpool_set_cap(0);
	rd_bufpool_stats(&st);
	CHECK_EQ(st.cached, 0);
	CHECK(!reused(65536));
	rd_bufpool_stats(&st);
	CHECK_EQ(st.cached, 0);
	rd_bufpool_set_cap(old);
	CHECK(reused(65536));
	printf("bufpool: ok (%llu gets, %llu from the cache)\n", (unsigned long long)st.gets,
	       (unsigned long long)st.hits);
	return 0;
}
