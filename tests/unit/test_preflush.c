/*
 * test_preflush.c - the journal flushes the device before writing entries whenever any
 * image write completed since the last flush (data must be stable before the extent keys
 * that point at it), and only then; rd_io_flush with nothing unflushed issues nothing.
 * The data path's own wiring is checked end to end by test_write_order.c.
 */
#include <unistd.h>

#include "../test.h"
#include "btree.h"
#include "errors.h"
#include "io.h"
#include "journal.h"
#include "store.h"

static void commit_one(struct rd_store *s, uint64_t i)
{
	struct rd_trans *t = rd_trans_new(s);
	uint64_t seq;

	CHECK(t);
	CHECK_OK(rd_trans_put(t, RD_BTREE_INODES, RD_POS(100 + i, 0), 1, "x", 1));
	CHECK_OK(rd_trans_commit(t, &seq));
	CHECK_OK(rd_store_flush(s, seq));
}

int main(void)
{
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";
	struct rd_format_opts fo = { .size = 64ull << 20, .bucket_size = 64 << 10,
				     .btree_node_size = 4096, .data_csum = -1, .meta_csum = -1 };
	struct rd_open_opts oo = { 0 };
	struct rd_journal_stats a, b, c;
	struct rd_store *s;
	char image[256], why[256];

	snprintf(image, sizeof(image), "%s/preflush-%d.img", dir, (int)getpid());
	CHECK_OK(rd_store_format(image, &fo, why, sizeof(why)));
	CHECK_OK(rd_store_open(image, &oo, &s, why, sizeof(why)));

	commit_one(s, 0);	/* may checkpoint first (after open): settle */
	rd_journal_stats(s->journal, &a);
	commit_one(s, 1);	/* no data written: no preflush */
	rd_journal_stats(s->journal, &b);
	CHECK_EQ(b.preflushes, a.preflushes);
	CHECK(b.entries_written > a.entries_written);

	/* Any image write counts, whoever made it: rewrite the primary superblock's block
	 * with the bytes it holds. */
	{
		void *blk = rd_io_buf_alloc(4096);

		CHECK(blk);
		CHECK_OK(rd_io_read(s->io, blk, 4096, 0));
		CHECK_OK(rd_io_write(s->io, blk, 4096, 0));
		CHECK(rd_io_has_unflushed(s->io));
		rd_io_buf_free(blk);
	}
	commit_one(s, 2);
	CHECK(!rd_io_has_unflushed(s->io));
	rd_journal_stats(s->journal, &c);
	CHECK_EQ(c.preflushes, b.preflushes + 1);
	CHECK(c.flushes >= b.flushes + 2);	/* the preflush and the entry's own flush */

	commit_one(s, 3);	/* nothing new written: no preflush again */
	rd_journal_stats(s->journal, &a);
	CHECK_EQ(a.preflushes, c.preflushes);

	/* A flush with nothing unflushed is not sent to the device. */
	{
		struct rd_io_stats x, y;

		rd_io_stats(s->io, &x);
		CHECK_OK(rd_io_flush(s->io));
		rd_io_stats(s->io, &y);
		CHECK_EQ(y.flushes, x.flushes);
		CHECK_EQ(y.flushes_skipped, x.flushes_skipped + 1);
	}

	CHECK_OK(rd_store_close(s));
	unlink(image);
	return 0;
}
