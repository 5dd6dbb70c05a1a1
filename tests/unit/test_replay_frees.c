/*
 * test_replay_frees.c - replayed deletes never free space the checkpoint on disk needs.
 *
 * A checkpoint on disk names nodes; deletes after it (durable in the journal, no new
 * checkpoint) would merge most of them away. After a crash the checkpoint on disk still
 * needs every one of those nodes until the next checkpoint entry is durable, so replay
 * must not drop them (it does not merge) and the allocator must count them. The test
 * crashes in exactly that state and checks, on a read-only open (which replays without
 * checkpointing), that every node the trees reach on disk is counted in its bucket (fsck);
 * then a read-write open (whose first commit checkpoints after replay, and which may merge
 * from then on) and a crash right after must leave every surviving key readable and fsck
 * clean.
 */
#include <errno.h>
#include <inttypes.h>
#include <unistd.h>

#include "../test.h"
#include "alloc.h"
#include "btree.h"
#include "refdio/errors.h"
#include "refdio/fsck.h"
#include "store.h"

#define NKEYS	6000u
#define KEEP	50u	/* keys kept: every KEEP-th one */

static char image[256];

static struct rd_store *open_img(bool ro)
{
	/* The default cache: a small one would checkpoint on its own when dirty. */
	struct rd_open_opts o = { .read_only = ro };
	struct rd_store *s;
	char why[256] = "";
	int ret = rd_store_open(image, &o, &s, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "open: %s: %s\n", rd_strerror(ret), why);
		exit(1);
	}
	return s;
}

struct walk_count {
	unsigned on_disk;	/* nodes reached that live on disk */
	unsigned leaves;
};

static int walk_cb(void *priv, const struct rd_node_info *ni)
{
	struct walk_count *w = priv;

	CHECK_EQ(ni->error, 0);
	w->on_disk += ni->offset != 0;
	w->leaves += ni->level == 0;
	return 0;
}

static void check_fsck_clean(struct rd_store *s)
{
	struct rd_sb_report rep = { 0 };
	struct rd_fsck_opts fo = { 0 };
	struct rd_fsck_result res;

	CHECK_OK(rd_fsck(s, &rep, &fo, &res));
	CHECK_EQ(res.problems, 0);
}

static void check_keys(struct rd_store *s)
{
	for (unsigned i = 0; i < NKEYS; i++) {
		struct rd_bkey *k = NULL;
		int ret = rd_btree_lookup(s, RD_BTREE_DIRENTS, RD_POS(1, i), &k);

		if (i % KEEP == 0) {
			CHECK_OK(ret);
			CHECK_EQ(k->val_len, 40);
			CHECK_EQ(k->val[0], (uint8_t)i);
			free(k);
		} else {
			CHECK_EQ(ret, -ENOENT);
		}
	}
}

int main(void)
{
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";
	struct rd_format_opts fo = { .size = 64ull << 20, .bucket_size = 64 << 10,
				     .btree_node_size = 4096, .data_csum = -1, .meta_csum = -1 };
	struct walk_count before = { 0 }, after = { 0 };
	struct rd_store *s;
	char why[256];
	uint8_t val[40];

	snprintf(image, sizeof(image), "%s/replay-frees-%d.img", dir, (int)getpid());
	CHECK_OK(rd_store_format(image, &fo, why, sizeof(why)));

	/* A checkpoint on disk with many leaves. */
	s = open_img(false);
	for (unsigned i = 0; i < NKEYS; i += 100) {
		struct rd_trans *t = rd_trans_new(s);

		for (unsigned j = i; j < i + 100; j++) {
			memset(val, (int)(uint8_t)j, sizeof(val));
			CHECK_OK(rd_trans_put(t, RD_BTREE_DIRENTS, RD_POS(1, j), 1, val, sizeof(val)));
		}
		CHECK_OK(rd_trans_commit(t, NULL));
	}
	CHECK_OK(rd_store_close(s));
	s = open_img(true);
	CHECK_OK(rd_btree_walk(s, RD_BTREE_DIRENTS, true, walk_cb, &before));
	CHECK_OK(rd_store_close(s));
	CHECK(before.leaves > 20);

	/* Deletes that would merge most leaves away, durable in the journal only. */
	s = open_img(false);
	for (unsigned i = 0; i < NKEYS; i += 100) {
		struct rd_trans *t = rd_trans_new(s);

		for (unsigned j = i; j < i + 100; j++)
			if (j % KEEP)
				CHECK_OK(rd_trans_del(t, RD_BTREE_DIRENTS, RD_POS(1, j)));
		CHECK_OK(rd_trans_commit(t, NULL));
	}
	CHECK_OK(rd_store_flush(s, 0));
	rd_store_crash(s);

	/* Replay without checkpointing: every node of the checkpoint is still reached (and so
	 * counted by the allocator, which fsck checks bucket by bucket). */
	s = open_img(true);
	CHECK_OK(rd_btree_walk(s, RD_BTREE_DIRENTS, true, walk_cb, &after));
	fprintf(stderr, "checkpoint: %u leaves on disk; after replay: %u of them reached\n",
		before.leaves, after.on_disk);
	CHECK(after.on_disk >= before.leaves);
	check_keys(s);
	check_fsck_clean(s);
	CHECK_OK(rd_store_close(s));

	/* Replay with its checkpoint, then a crash: everything still there and consistent. */
	s = open_img(false);
	check_keys(s);
	rd_store_crash(s);
	s = open_img(false);
	check_keys(s);
	check_fsck_clean(s);
	CHECK_OK(rd_store_close(s));
	unlink(image);
	return 0;
}
