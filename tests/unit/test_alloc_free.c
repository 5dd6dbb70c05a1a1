/*
 * test_alloc_free.c - the allocator's free-bucket heap and reuse rule, without a store.
 *
 * The heap is checked against a brute-force model under random pushes, pops and removals
 * of arbitrary entries; the reuse predicate is checked condition by condition.
 */
#include <errno.h>

#include "../test.h"
#include "alloc_free.h"
#include "refdio/errors.h"

#define CAP 2000

static void test_predicate(void)
{
	struct rd_bucket b = { .gen = 7 };

	CHECK(rd_bucket_reusable(&b, 0));
	b.dirty_sectors = 1;
	CHECK(!rd_bucket_reusable(&b, 100));
	b.dirty_sectors = 0;
	b.btree_sectors = 8;
	CHECK(!rd_bucket_reusable(&b, 100));
	b.btree_sectors = 0;
	b.open_refs = 1;
	CHECK(!rd_bucket_reusable(&b, 100));
	b.open_refs = 0;
	/* Emptied by entry 10: not before 10 is durable, and from then on. */
	b.freed_seq = 10;
	CHECK(!rd_bucket_reusable(&b, 9));
	CHECK(rd_bucket_reusable(&b, 10));
	CHECK(rd_bucket_reusable(&b, 11));
}

/* The smallest (key, bucket) of the model, by linear scan; -1 if empty. */
static long model_min(const uint64_t *key, const bool *in)
{
	long best = -1;

	for (long i = 0; i < CAP; i++) {
		if (!in[i])
			continue;
		if (best < 0 || key[i] < key[best])
			best = i;
	}
	return best;
}

static void test_heap(uint64_t seed)
{
	static uint64_t key[CAP];
	static bool in[CAP];
	struct rd_bheap h;
	struct rd_bheap_ent e;
	size_t nr = 0;
	long i;

	CHECK_OK(rd_bheap_init(&h, CAP));
	CHECK(!rd_bheap_pop(&h, &e));
	CHECK(!rd_bheap_peek(&h, &e));

	for (int op = 0; op < 200000; op++) {
		uint64_t r = test_rand(&seed);

		if (r % 7 == 0) {
			/* remove an arbitrary bucket (fsck repairs): present or not */
			i = test_rand(&seed) % CAP;
			CHECK_EQ(rd_bheap_remove(&h, (uint64_t)i), in[i]);
			if (in[i])
				nr--;
			in[i] = false;
		} else if (r % 3 && nr < CAP) {
			/* push a bucket not in the heap, with a key from a small range (ties) */
			do
				i = test_rand(&seed) % CAP;
			while (in[i]);
			key[i] = test_rand(&seed) % 50;
			in[i] = true;
			nr++;
			CHECK(rd_bheap_push(&h, key[i], (uint64_t)i));
		} else {
			long m = model_min(key, in);

			if (m < 0) {
				CHECK(!rd_bheap_pop(&h, &e));
				continue;
			}
			CHECK(rd_bheap_peek(&h, &e));
			/* ties are broken by bucket index, as the model's scan does */
			CHECK_EQ(e.key, key[m]);
			CHECK_EQ(e.bucket, m);
			CHECK(rd_bheap_pop(&h, &e));
			CHECK_EQ(e.bucket, m);
			in[m] = false;
			nr--;
		}
		CHECK_EQ(h.nr, nr);
	}
	/* Full: push refuses instead of overflowing. */
	while (nr < CAP) {
		do
			i = test_rand(&seed) % CAP;
		while (in[i]);
		in[i] = true;
		nr++;
		CHECK(rd_bheap_push(&h, 1, (uint64_t)i));
	}
	CHECK(!rd_bheap_push(&h, 0, 0));
	/* Drains in order. */
	{
		struct rd_bheap_ent prev = { 0, 0 };
		size_t n = 0;

		while (rd_bheap_pop(&h, &e)) {
			CHECK(n == 0 || prev.key < e.key ||
			      (prev.key == e.key && prev.bucket < e.bucket));
			prev = e;
			n++;
		}
		CHECK_EQ(n, CAP);
	}
	rd_bheap_free(&h);
}

int main(void)
{
	uint64_t seed = test_seed();

	test_predicate();
	test_heap(seed | 1);
	return 0;
}
