/*
 * test_btree_shape.c - the trees stay well formed under insert and delete patterns.
 *
 * Ascending, descending and random inserts; deleting every other key, random halves,
 * front to back and back to front; values from empty to the maximum. After each phase a
 * walk checks every node: within its size, no empty node but an empty root, no interior
 * node with a single child, children covering exactly their parent's range, and a depth
 * that a fill of at least a quarter per node explains. The contents are compared with a
 * plain array, and everything must read back the same after a clean reopen.
 */
#include <errno.h>
#include <unistd.h>

#include "../test.h"
#include "btree.h"
#include "refdio/errors.h"
#include "store.h"

#define NKEYS	6000

static char image[256];
static bool no_direct;
static uint16_t model[NKEYS];	/* value length + 1; 0 = absent */
static uint64_t rng;

struct shape {
	unsigned nodes, leaves, keys, empty_nonroot, single_child, bad_size, bad_range;
	unsigned depth;
	struct rd_bpos expect_min[40];	/* next min expected per level */
};

static int shape_cb(void *priv, const struct rd_node_info *ni)
{
	struct shape *sh = priv;
	bool root = !sh->nodes;	/* parents come before children: the root first */

	CHECK(!ni->error);
	if (root) {
		sh->depth = ni->level + 1;
		for (unsigned l = 0; l < 40; l++)
			sh->expect_min[l] = RD_POS_MIN;
	}
	sh->nodes++;
	if (ni->bytes > 4096)
		sh->bad_size++;
	if (!ni->level) {
		sh->leaves++;
		sh->keys += ni->nr_keys;
	}
	if (!root && !ni->nr_keys)
		sh->empty_nonroot++;
	if (!root && ni->level && ni->nr_keys == 1)
		sh->single_child++;
	/* Nodes of one level come in key order and tile the key space. */
	if (rd_bpos_cmp(ni->min_key, sh->expect_min[ni->level]))
		sh->bad_range++;
	sh->expect_min[ni->level] = rd_bpos_successor(ni->max_key);
	return 0;
}

static struct rd_bpos pos_of(unsigned i)
{
	return RD_POS(1 + i / 1000, (i % 1000) * 8);
}

static void fill(uint8_t *b, unsigned i, size_t len)
{
	for (size_t x = 0; x < len; x++)
		b[x] = (uint8_t)(i * 7 + x);
}

static void check(struct rd_store *s, const char *phase, size_t max_val)
{
	struct shape sh = { 0 };
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	unsigned present = 0, seen = 0;
	uint8_t buf[1024];
	int ret;

	for (unsigned i = 0; i < NKEYS; i++)
		present += model[i] != 0;
	CHECK_OK(rd_btree_walk(s, RD_BTREE_EXTENTS, true, shape_cb, &sh));
	printf("%-22s %5u keys: depth %u, %4u nodes, %4u leaves\n", phase, present, sh.depth,
	       sh.nodes, sh.leaves);
	CHECK_EQ(sh.keys, present);
	CHECK_EQ(sh.bad_size, 0);
	CHECK_EQ(sh.bad_range, 0);
	CHECK_EQ(sh.empty_nonroot, 0);
	CHECK_EQ(sh.single_child, 0);
	/* A leaf holds at least a quarter node of keys after merging, an interior node at
	 * least 2 children: depth is bounded by the key count. */
	if (present) {
		unsigned leaves_bound = present * (unsigned)(24 + max_val) / 992 + 2, d = 1;

		for (unsigned n = leaves_bound; n > 1; n = (n + 1) / 2)
			d++;
		CHECK(sh.depth <= d + 1);
	} else {
		CHECK(sh.depth <= 1);
	}
	rd_btree_iter_init(&it, s, RD_BTREE_EXTENTS, RD_POS_MIN, RD_POS_MAX);
	for (unsigned i = 0; i < NKEYS; i++) {
		if (!model[i])
			continue;
		CHECK_OK(rd_btree_iter_next(&it, &k));
		CHECK(!rd_bpos_cmp(k->pos, pos_of(i)));
		CHECK_EQ(k->val_len, model[i] - 1);
		fill(buf, i, k->val_len);
		CHECK(!memcmp(buf, k->val, k->val_len));
		seen++;
	}
	ret = rd_btree_iter_next(&it, &k);
	CHECK_EQ(ret, -ENOENT);
	rd_btree_iter_exit(&it);
	CHECK_EQ(seen, present);
}

/* Applies updates to keys order[0..n) in transactions of 8: put if put, else delete. */
static void apply(struct rd_store *s, const unsigned *order, unsigned n, bool put, size_t len_lo,
		  size_t len_hi)
{
	uint8_t buf[1024];

	for (unsigned i = 0; i < n; i += 8) {
		struct rd_trans *t = rd_trans_new(s);

		CHECK(t);
		for (unsigned j = i; j < i + 8 && j < n; j++) {
			unsigned k = order[j];

			if (put) {
				size_t len = len_lo + test_rand(&rng) % (len_hi - len_lo + 1);

				fill(buf, k, len);
				CHECK_OK(rd_trans_put(t, RD_BTREE_EXTENTS, pos_of(k), 1, buf, len));
				model[k] = (uint16_t)(len + 1);
			} else {
				CHECK_OK(rd_trans_del(t, RD_BTREE_EXTENTS, pos_of(k)));
				model[k] = 0;
			}
		}
		CHECK_OK(rd_trans_commit(t, NULL));
	}
}

static struct rd_store *reopen(struct rd_store *s)
{
	struct rd_open_opts o = { .no_direct = no_direct };
	char why[256];

	if (s)
		CHECK_OK(rd_store_close(s));
	if (rd_store_open(image, &o, &s, why, sizeof(why))) {
		fprintf(stderr, "open: %s\n", why);
		exit(1);
	}
	return s;
}

int main(void)
{
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";
	struct rd_format_opts fo = { .size = 128ull << 20, .bucket_size = 64 << 10,
				     .btree_node_size = 4096, .data_csum = -1, .meta_csum = -1,
				     .force = true };
	static unsigned order[NKEYS];
	struct rd_store *s = NULL;
	char why[256];
	size_t mv;

	rng = test_seed() | 1;
	no_direct = getenv("RD_TEST_NO_DIRECT") && atoi(getenv("RD_TEST_NO_DIRECT"));
	fo.no_direct = no_direct;
	snprintf(image, sizeof(image), "%s/index-shape-%d.img", dir, (int)getpid());
	if (rd_store_format(image, &fo, why, sizeof(why))) {
		fprintf(stderr, "format: %s\n", why);
		return 1;
	}
	s = reopen(NULL);
	mv = rd_btree_max_val(s);

	for (unsigned i = 0; i < NKEYS; i++)
		order[i] = i;
	apply(s, order, NKEYS, true, 0, mv);
	check(s, "ascending", mv);
	s = reopen(s);
	check(s, "ascending, reopened", mv);

	/* delete every other key, then the rest from the back */
	for (unsigned i = 0; i < NKEYS / 2; i++)
		order[i] = 2 * i;
	apply(s, order, NKEYS / 2, false, 0, 0);
	check(s, "every other deleted", mv);
	for (unsigned i = 0; i < NKEYS / 2; i++)
		order[i] = NKEYS - 1 - 2 * i;
	apply(s, order, NKEYS / 2, false, 0, 0);
	check(s, "all deleted (back)", mv);

	/* descending inserts of small values */
	for (unsigned i = 0; i < NKEYS; i++)
		order[i] = NKEYS - 1 - i;
	apply(s, order, NKEYS, true, 0, 40);
	check(s, "descending, small", mv);

	/* random overwrites with large values (nodes split), random half deleted */
	for (unsigned i = NKEYS - 1; i > 0; i--) {
		unsigned j = (unsigned)(test_rand(&rng) % (i + 1)), x = order[i];

		order[i] = order[j];
		order[j] = x;
	}
	apply(s, order, NKEYS, true, mv / 2, mv);
	check(s, "random, large", mv);
	apply(s, order, NKEYS / 2, false, 0, 0);
	check(s, "random half deleted", mv);
	s = reopen(s);
	check(s, "reopened", mv);
	/* shrink every value to nothing: merges without deletes */
	apply(s, order + NKEYS / 2, NKEYS / 2, true, 0, 0);
	check(s, "values emptied", mv);
	apply(s, order + NKEYS / 2, NKEYS / 2, false, 0, 0);
	check(s, "all deleted (random)", mv);
	s = reopen(s);
	check(s, "empty, reopened", mv);
	CHECK_OK(rd_store_close(s));
	unlink(image);
	return 0;
}
