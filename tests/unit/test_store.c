/*
 * test_store.c - format options, refusing to overwrite, read-only opens, transaction
 * limits, flushes (sync and async), a tiny journal that wraps all the time, emptying a
 * tree, and node walks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "btree.h"
#include "csum.h"
#include "refdio/errors.h"
#include "store.h"

static char image[256];
static bool no_direct;

static struct rd_store *open_img(bool ro, uint64_t cache)
{
	struct rd_open_opts o = { .read_only = ro, .no_direct = no_direct, .cache_bytes = cache };
	struct rd_store *s;
	char why[256] = "";
	int ret = rd_store_open(image, &o, &s, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "open: %s: %s\n", rd_strerror(ret), why);
		exit(1);
	}
	return s;
}

static int format(struct rd_format_opts o, char *why, size_t len)
{
	o.no_direct = no_direct;
	return rd_store_format(image, &o, why, len);
}

static uint64_t file_csum(void)
{
	int fd = open(image, O_RDONLY);
	static uint8_t buf[1 << 20];
	uint64_t c = 0;
	ssize_t n;

	CHECK(fd >= 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		c = c * 31 + rd_csum(RD_CSUM_XXHASH, buf, (size_t)n);
	close(fd);
	return c;
}

static void put1(struct rd_store *s, unsigned id, struct rd_bpos pos, const char *val)
{
	struct rd_trans *t = rd_trans_new(s);

	CHECK(t);
	CHECK_OK(rd_trans_put(t, id, pos, 1, val, strlen(val)));
	CHECK_OK(rd_trans_commit(t, NULL));
}

static void expect(struct rd_store *s, unsigned id, struct rd_bpos pos, const char *val)
{
	struct rd_bkey *k = NULL;
	int ret = rd_btree_lookup(s, id, pos, &k);

	if (!val) {
		CHECK_EQ(ret, -ENOENT);
		return;
	}
	CHECK_OK(ret);
	CHECK_EQ(k->val_len, strlen(val));
	CHECK(!memcmp(k->val, val, k->val_len));
	free(k);
}

static atomic_int cb_calls;
static pthread_t main_thread;
static bool cb_other_thread;

static void flush_cb(void *priv, int err)
{
	(void)priv;
	CHECK_OK(err);
	cb_other_thread = !pthread_equal(pthread_self(), main_thread);
	atomic_fetch_add(&cb_calls, 1);
}

struct walk_count {
	unsigned nodes, leaves, errors;
	unsigned max_level;
};

static int walk_cb(void *priv, const struct rd_node_info *ni)
{
	struct walk_count *w = priv;

	w->nodes++;
	w->leaves += !ni->level;
	w->errors += ni->error != 0;
	if (ni->level > w->max_level)
		w->max_level = ni->level;
	return 0;
}

static void test_format_options(void)
{
	struct rd_format_opts o = { .size = 64ull << 20, .bucket_size = 64 << 10,
				    .btree_node_size = 4096, .data_csum = -1, .meta_csum = -1 };
	struct rd_format_opts b;
	char why[256];

	unlink(image);
	b = o; b.block_size = 1000;
	CHECK_EQ(format(b, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "block size"));
	b = o; b.block_size = 8192;	/* bucket 64 KiB < 16 blocks */
	CHECK_EQ(format(b, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "bucket size"));
	b = o; b.btree_node_size = 2048;
	CHECK_EQ(format(b, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "node size"));
	b = o; b.btree_node_size = 128 << 10;	/* above the bucket */
	CHECK_EQ(format(b, why, sizeof(why)), -EINVAL);
	b = o; b.size = 20 * 64 << 10;	/* 20 buckets: 1 + 4 journal + 8 + 1 fits */
	CHECK_OK(format(b, why, sizeof(why)));
	b.force = true;
	b.size = 12 * 64 << 10;
	CHECK_EQ(format(b, why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "too small"));
	b = o; b.meta_csum = RD_CSUM_NONE;
	CHECK_EQ(format(b, why, sizeof(why)), -EINVAL);
	b = o; b.label = "a label that is far too long for the superblock";
	CHECK_EQ(format(b, why, sizeof(why)), -EINVAL);

	/* An existing image is kept unless forced. */
	unlink(image);
	CHECK_OK(format(o, why, sizeof(why)));
	CHECK_EQ(format(o, why, sizeof(why)), -RD_ERR_IMAGE_EXISTS);
	b = o; b.force = true;
	CHECK_OK(format(b, why, sizeof(why)));
}

static void test_read_only(void)
{
	struct rd_format_opts o = { .size = 64ull << 20, .bucket_size = 64 << 10,
				    .btree_node_size = 4096, .data_csum = -1, .meta_csum = -1,
				    .force = true };
	struct rd_store *s;
	struct rd_trans *t;
	char why[256];
	uint64_t c;

	CHECK_OK(format(o, why, sizeof(why)));
	s = open_img(false, 0);
	put1(s, RD_BTREE_DIRENTS, RD_POS(5, 5), "hello");
	CHECK_OK(rd_store_close(s));

	/* Clean image, read-only: nothing written, commits refused. */
	c = file_csum();
	s = open_img(true, 0);
	expect(s, RD_BTREE_DIRENTS, RD_POS(5, 5), "hello");
	t = rd_trans_new(s);
	CHECK_OK(rd_trans_put(t, RD_BTREE_DIRENTS, RD_POS(5, 6), 1, "x", 1));
	CHECK_EQ(rd_trans_commit(t, NULL), -EROFS);
	CHECK_OK(rd_store_flush(s, 0));
	CHECK_OK(rd_store_close(s));
	CHECK(file_csum() == c);

	/* Unclean image, read-only: replayed in memory only. */
	s = open_img(false, 0);
	put1(s, RD_BTREE_DIRENTS, RD_POS(5, 7), "world");
	CHECK_OK(rd_store_flush(s, 0));
	rd_store_crash(s);
	c = file_csum();
	s = open_img(true, 1 << 20);
	CHECK(!s->was_clean && s->replayed_records > 0);
	expect(s, RD_BTREE_DIRENTS, RD_POS(5, 5), "hello");
	expect(s, RD_BTREE_DIRENTS, RD_POS(5, 7), "world");
	CHECK_OK(rd_store_close(s));
	CHECK(file_csum() == c);
	s = open_img(false, 0);
	expect(s, RD_BTREE_DIRENTS, RD_POS(5, 7), "world");
	CHECK_OK(rd_store_close(s));
}

static void test_limits_and_flushes(void)
{
	/* 4 journal buckets of 64 KiB: entries of at most 32 KiB, checkpoints every few
	 * dozen transactions, the ring wrapping over and over. */
	struct rd_format_opts o = { .size = 64ull << 20, .bucket_size = 64 << 10,
				    .btree_node_size = 4096, .journal_size = 256 << 10,
				    .data_csum = -1, .meta_csum = RD_CSUM_XXHASH, .force = true };
	uint8_t big[968];
	struct rd_btree_stats bs;
	struct rd_store *s;
	struct rd_trans *t;
	uint64_t seq, seq2;
	char why[256];

	memset(big, 0xab, sizeof(big));
	CHECK_OK(format(o, why, sizeof(why)));
	s = open_img(false, 0);
	CHECK_EQ(rd_btree_max_val(s), 968);

	/* Bad updates are refused when queued. */
	t = rd_trans_new(s);
	CHECK(t);
	CHECK(rd_trans_empty(t));
	CHECK_EQ(rd_trans_put(t, RD_BTREE_NR, RD_POS(1, 1), 1, "x", 1), -EINVAL);
	CHECK_EQ(rd_trans_put(t, 0, RD_POS(1, 1), 0, "x", 1), -EINVAL);
	CHECK_EQ(rd_trans_put(t, 0, RD_POS(1, 1), 1, big, 969), -EINVAL);
	CHECK_EQ(rd_trans_del(t, 7, RD_POS(1, 1)), -EINVAL);
	CHECK(rd_trans_empty(t));
	/* An empty transaction commits to nothing. */
	CHECK_OK(rd_trans_commit(t, &seq));

	/* Too big for one entry: refused whole, the store goes on. */
	t = rd_trans_new(s);
	for (unsigned i = 0; i < 40; i++)
		CHECK_OK(rd_trans_put(t, 0, RD_POS(9, i), 1, big, sizeof(big)));
	CHECK_EQ(rd_trans_commit(t, NULL), -E2BIG);
	expect(s, 0, RD_POS(9, 0), NULL);

	/* Many transactions through the tiny ring, flushes sync and async. */
	main_thread = pthread_self();
	for (unsigned i = 0; i < 3000; i++) {
		char v[32];

		t = rd_trans_new(s);
		snprintf(v, sizeof(v), "v%u", i);
		CHECK_OK(rd_trans_put(t, i % 4, RD_POS(1, i), 2, big, 200 + i % 700));
		CHECK_OK(rd_trans_put(t, RD_BTREE_XATTRS, RD_POS(2, i % 500), 1, v, strlen(v)));
		if (i % 3 == 0)
			CHECK_OK(rd_trans_del(t, i % 4, RD_POS(1, i / 2)));
		CHECK_OK(rd_trans_commit(t, &seq));
		CHECK(seq >= rd_store_durable_seq(s));
		if (i % 97 == 0) {
			CHECK_OK(rd_store_flush(s, seq));
			CHECK(rd_store_durable_seq(s) >= seq);
		}
		if (i % 211 == 0)
			rd_store_flush_async(s, seq, flush_cb, NULL);
	}
	for (int i = 0; i < 5000 && atomic_load(&cb_calls) < 15; i++)
		usleep(1000);
	CHECK_EQ(atomic_load(&cb_calls), 15);
	CHECK(cb_other_thread);
	rd_btree_stats(s, &bs);
	CHECK(bs.checkpoints > 10);	/* the ring forced them */
	seq2 = rd_store_journal_seq(s);
	CHECK(seq2 >= seq);
	rd_store_crash(s);

	/* Whatever was flushed is there: transaction 2910 was flushed, so every put and
	 * delete of keys below 1400 (deleted, if at all, by transaction 2i or 2i + 1). */
	s = open_img(false, 1 << 20);
	for (unsigned i = 0; i < 1400; i++) {
		struct rd_bkey *k;
		bool deleted = false;

		for (unsigned j = 2 * i; j <= 2 * i + 1; j++)
			if (j % 3 == 0 && j % 4 == i % 4)
				deleted = true;
		if (deleted) {
			expect(s, i % 4, RD_POS(1, i), NULL);
			continue;
		}
		CHECK_OK(rd_btree_lookup(s, i % 4, RD_POS(1, i), &k));
		CHECK_EQ(k->val_len, 200 + i % 700);
		free(k);
	}
	CHECK_OK(rd_store_close(s));
}

static void test_empty_tree_and_walk(void)
{
	struct rd_format_opts o = { .size = 64ull << 20, .bucket_size = 64 << 10,
				    .btree_node_size = 4096, .data_csum = -1, .meta_csum = -1,
				    .force = true };
	uint8_t val[500];
	struct rd_btree_stats bs;
	struct walk_count w = { 0 };
	struct rd_store *s;
	struct rd_trans *t;
	char why[256];

	memset(val, 7, sizeof(val));
	CHECK_OK(format(o, why, sizeof(why)));
	s = open_img(false, 0);
	rd_btree_stats(s, &bs);
	CHECK_EQ(bs.depth[RD_BTREE_INODES], 0);
	for (unsigned i = 0; i < 4000; i += 8) {
		t = rd_trans_new(s);
		for (unsigned j = i; j < i + 8; j++)
			CHECK_OK(rd_trans_put(t, RD_BTREE_INODES, RD_POS(3, j), 1, val, sizeof(val)));
		CHECK_OK(rd_trans_commit(t, NULL));
	}
	rd_btree_stats(s, &bs);
	CHECK(bs.depth[RD_BTREE_INODES] >= 3);
	CHECK_OK(rd_btree_walk(s, RD_BTREE_INODES, true, walk_cb, &w));
	CHECK(w.leaves >= 4000 / 7 && !w.errors && w.max_level >= 2);
	CHECK_OK(rd_store_close(s));

	/* After a clean close the walk reads nodes from disk, and without leaves reports
	 * the same number of nodes from their parents' pointers. */
	s = open_img(false, 1 << 20);
	memset(&w, 0, sizeof(w));
	CHECK_OK(rd_btree_walk(s, RD_BTREE_INODES, false, walk_cb, &w));
	{
		struct walk_count w2 = { 0 };

		CHECK_OK(rd_btree_walk(s, RD_BTREE_INODES, true, walk_cb, &w2));
		CHECK_EQ(w.nodes, w2.nodes);
		CHECK(!w2.errors);
	}
	/* Delete everything: the tree shrinks back to nothing. */
	for (unsigned i = 0; i < 4000; i += 16) {
		t = rd_trans_new(s);
		for (unsigned j = i; j < i + 16; j++)
			CHECK_OK(rd_trans_del(t, RD_BTREE_INODES, RD_POS(3, j)));
		CHECK_OK(rd_trans_commit(t, NULL));
	}
	rd_btree_stats(s, &bs);
	CHECK_EQ(bs.depth[RD_BTREE_INODES], 0);
	CHECK_OK(rd_store_close(s));
	s = open_img(false, 0);
	rd_btree_stats(s, &bs);
	CHECK_EQ(bs.depth[RD_BTREE_INODES], 0);
	CHECK_EQ(rd_le64_get(s->sb.roots[RD_BTREE_INODES].ptr.offset), 0);
	memset(&w, 0, sizeof(w));
	CHECK_OK(rd_btree_walk(s, RD_BTREE_INODES, true, walk_cb, &w));
	CHECK_EQ(w.nodes, 0);
	expect(s, RD_BTREE_INODES, RD_POS(3, 5), NULL);
	CHECK_OK(rd_store_close(s));
}

/* One writer, two readers, one flusher at the same time (run under TSan as well). */
struct thr {
	struct rd_store *s;
	atomic_int *stop;
	unsigned id;
	uint64_t done;
};

static void *writer(void *arg)
{
	struct thr *t = arg;

	for (unsigned i = 0; !atomic_load(t->stop); i++) {
		struct rd_trans *tr = rd_trans_new(t->s);
		uint64_t v[16];

		for (unsigned j = 0; j < 16; j++)
			v[j] = i;
		CHECK(tr);
		CHECK_OK(rd_trans_put(tr, RD_BTREE_EXTENTS, RD_POS(8, i % 3000), 1, v,
				      8 * (1 + i % 16)));
		CHECK_OK(rd_trans_put(tr, RD_BTREE_DIRENTS, RD_POS(8, i % 3000), 1, v, 8));
		if (i % 5 == 0)
			CHECK_OK(rd_trans_del(tr, RD_BTREE_EXTENTS, RD_POS(8, (i * 7) % 3000)));
		CHECK_OK(rd_trans_commit(tr, NULL));
		t->done++;
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct thr *t = arg;
	uint64_t rng = 77 + t->id;

	while (!atomic_load(t->stop)) {
		struct rd_btree_iter it;
		const struct rd_bkey *k;
		struct rd_bkey *pk;
		uint64_t n = 0, v0, vx;
		int ret;

		rd_btree_iter_init(&it, t->s, RD_BTREE_EXTENTS, RD_POS(8, test_rand(&rng) % 3000),
				   RD_POS(8, 3000));
		while (n < 200 && !(ret = rd_btree_iter_next(&it, &k))) {
			/* every value is one number repeated */
			CHECK(k->val_len >= 8 && k->val_len % 8 == 0);
			memcpy(&v0, k->val, 8);
			for (unsigned j = 8; j < k->val_len; j += 8) {
				memcpy(&vx, k->val + j, 8);
				CHECK(vx == v0);
			}
			CHECK_EQ(v0 % 3000, k->pos.offset);
			n++;
		}
		rd_btree_iter_exit(&it);
		ret = rd_btree_peek_prev(t->s, RD_BTREE_DIRENTS, RD_POS(8, 0),
					 RD_POS(8, test_rand(&rng) % 3000), &pk);
		CHECK(ret == 0 || ret == -ENOENT);
		if (!ret)
			free(pk);
		t->done++;
	}
	return NULL;
}

static void *flusher_thr(void *arg)
{
	struct thr *t = arg;

	while (!atomic_load(t->stop)) {
		CHECK_OK(rd_store_flush(t->s, 0));
		t->done++;
		usleep(2000);
	}
	return NULL;
}

static void test_threads(void)
{
	struct rd_format_opts o = { .size = 64ull << 20, .bucket_size = 64 << 10,
				    .btree_node_size = 4096, .journal_size = 512 << 10,
				    .data_csum = -1, .meta_csum = -1, .force = true };
	struct thr th[4];
	pthread_t tid[4];
	atomic_int stop = 0;
	char why[256];
	struct rd_store *s;

	CHECK_OK(format(o, why, sizeof(why)));
	s = open_img(false, 256 << 10);	/* 64 nodes: eviction under the readers */
	for (unsigned i = 0; i < 4; i++) {
		th[i] = (struct thr){ .s = s, .stop = &stop, .id = i };
		CHECK(!pthread_create(&tid[i], NULL, i == 0 ? writer : i == 3 ? flusher_thr : reader,
				      &th[i]));
	}
	usleep(1500 * 1000);
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < 4; i++)
		pthread_join(tid[i], NULL);
	CHECK(th[0].done > 100 && th[1].done > 10 && th[3].done > 10);
	CHECK_OK(rd_store_close(s));
	printf("threads: %" PRIu64 " commits, %" PRIu64 "+%" PRIu64 " reader passes, %" PRIu64
	       " flushes\n", th[0].done, th[1].done, th[2].done, th[3].done);
}

int main(void)
{
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";

	no_direct = getenv("RD_TEST_NO_DIRECT") && atoi(getenv("RD_TEST_NO_DIRECT"));
	snprintf(image, sizeof(image), "%s/index-store-%d.img", dir, (int)getpid());
	test_format_options();
	test_read_only();
	test_limits_and_flushes();
	test_empty_tree_and_walk();
	test_threads();
	unlink(image);
	printf("store: ok\n");
	return 0;
}
