/*
 * test_journal_torn.c - a torn journal tail is ignored on reopen, and its seq is never used
 * again.
 *
 * Commits A (flushed), then B (flushed, two blocks long), crashes, zeroes B's second block
 * in the image as a torn write would leave it, and reopens: A is there, B is not, and the
 * journal carries on with seqs above B's. A third transaction C then survives a second
 * crash, and the ring never holds two valid entries with one seq.
 *
 * Then a hole in the middle: E, F, G flushed one by one, F's entry destroyed. Replay stops
 * at the hole (G is lost with it: nothing after a missing entry can be trusted to apply),
 * and a transaction H committed after that reopen survives the next crash: the first
 * commit after a replay checkpoints, so no replay ever has to cross the hole again.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "../test.h"
#include "btree.h"
#include "csum.h"
#include "refdio/errors.h"
#include "store.h"

static char image[256];
static bool no_direct;

static struct rd_store *open_img(void)
{
	struct rd_open_opts o = { .no_direct = no_direct };
	struct rd_store *s;
	char why[256] = "";
	int ret = rd_store_open(image, &o, &s, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "open: %s: %s\n", rd_strerror(ret), why);
		exit(1);
	}
	return s;
}

static void fill(uint8_t *buf, size_t len, unsigned tag)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(tag * 31 + i);
}

static uint64_t commit_keys(struct rd_store *s, unsigned tag, unsigned n, size_t len)
{
	struct rd_trans *t = rd_trans_new(s);
	uint8_t buf[1024];
	uint64_t seq;

	CHECK(t);
	fill(buf, len, tag);
	for (unsigned i = 0; i < n; i++)
		CHECK_OK(rd_trans_put(t, i % 2 ? RD_BTREE_INODES : RD_BTREE_EXTENTS,
				      RD_POS(tag, i), 1, buf, len));
	CHECK_OK(rd_trans_commit(t, &seq));
	return seq;
}

/* Whether all n keys of tag are present with their values (1), all absent (0); else dies. */
static int keys_state(struct rd_store *s, unsigned tag, unsigned n, size_t len)
{
	uint8_t buf[1024];
	unsigned present = 0;

	fill(buf, len, tag);
	for (unsigned i = 0; i < n; i++) {
		struct rd_bkey *k;
		int ret = rd_btree_lookup(s, i % 2 ? RD_BTREE_INODES : RD_BTREE_EXTENTS,
					  RD_POS(tag, i), &k);

		if (ret == -ENOENT)
			continue;
		CHECK_OK(ret);
		CHECK_EQ(k->val_len, len);
		CHECK(!memcmp(k->val, buf, len));
		free(k);
		present++;
	}
	CHECK(present == 0 || present == n);	/* a transaction is whole or absent */
	return present == n;
}

struct ring {
	uint64_t off, size, magic;
	uint32_t block;
};

static void read_ring(int fd, struct ring *r)
{
	struct rd_sb sb;
	uint64_t x;

	CHECK_EQ(pread(fd, &sb, sizeof(sb), RD_SB_OFFSET), sizeof(sb));
	memcpy(&x, sb.uuid, sizeof(x));
	r->magic = RD_JSET_MAGIC ^ le64toh(x);
	r->off = rd_le64_get(sb.journal_start) * rd_le32_get(sb.bucket_size);
	r->size = rd_le64_get(sb.journal_buckets) * rd_le32_get(sb.bucket_size);
	r->block = rd_le32_get(sb.block_size);
}

/* Visits every entry of the ring whose checksum is valid. */
static void scan(int fd, const struct ring *r, void (*cb)(void *, uint64_t pos,
							 const struct rd_jset *), void *priv)
{
	uint8_t *ring = malloc(r->size);

	CHECK(ring);
	CHECK_EQ(pread(fd, ring, r->size, (off_t)r->off), r->size);
	for (uint64_t pos = 0; pos + sizeof(struct rd_jset) <= r->size; pos += r->block) {
		const struct rd_jset *h = (const void *)(ring + pos);
		uint32_t bytes = rd_le32_get(h->bytes);

		if (rd_le64_get(h->magic) != r->magic || bytes < sizeof(*h) ||
		    bytes > r->size - pos)
			continue;
		if (rd_le32_get(h->csum) != (uint32_t)rd_csum(h->csum_type, ring + pos + 8, bytes - 8))
			continue;
		cb(priv, pos, h);
	}
	free(ring);
}

struct find {
	uint64_t seq, pos;
	uint32_t bytes;
	bool found;
};

static void find_cb(void *priv, uint64_t pos, const struct rd_jset *h)
{
	struct find *f = priv;

	if (rd_le64_get(h->seq) == f->seq) {
		CHECK(!f->found);
		f->found = true;
		f->pos = pos;
		f->bytes = rd_le32_get(h->bytes);
	}
}

struct uniq {
	uint64_t seqs[4096];
	unsigned n;
};

static void uniq_cb(void *priv, uint64_t pos, const struct rd_jset *h)
{
	struct uniq *u = priv;

	(void)pos;
	for (unsigned i = 0; i < u->n; i++)
		CHECK(u->seqs[i] != rd_le64_get(h->seq));
	CHECK(u->n < 4096);
	u->seqs[u->n++] = rd_le64_get(h->seq);
}

int main(void)
{
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";
	struct rd_format_opts fo = {
		.size = 64ull << 20, .bucket_size = 64 << 10, .btree_node_size = 4096,
		.data_csum = -1, .meta_csum = -1, .force = true,
	};
	struct rd_store *s;
	struct ring r;
	struct find f = { 0 };
	struct uniq u = { .n = 0 };
	uint64_t seq_a, seq_b, seq_c;
	char why[256] = "";
	uint8_t *zero;
	int fd;

	no_direct = getenv("RD_TEST_NO_DIRECT") && atoi(getenv("RD_TEST_NO_DIRECT"));
	fo.no_direct = no_direct;
	snprintf(image, sizeof(image), "%s/index-torn-%d.img", dir, (int)getpid());
	unlink(image);
	if (rd_store_format(image, &fo, why, sizeof(why))) {
		fprintf(stderr, "format: %s\n", why);
		return 1;
	}

	s = open_img();
	seq_a = commit_keys(s, 1, 4, 100);
	CHECK_OK(rd_store_flush(s, seq_a));
	CHECK(rd_store_durable_seq(s) >= seq_a);
	seq_b = commit_keys(s, 2, 8, 900);	/* ~7.5 KB: two blocks */
	CHECK_OK(rd_store_flush(s, seq_b));
	CHECK(seq_b > seq_a);
	rd_store_crash(s);

	/* Tear B: its second block never reached the disk. */
	fd = open(image, O_RDWR);
	CHECK(fd >= 0);
	read_ring(fd, &r);
	f.seq = seq_b;
	scan(fd, &r, find_cb, &f);
	CHECK(f.found);
	CHECK(f.bytes > r.block);
	zero = calloc(1, r.block);
	CHECK(zero);
	CHECK_EQ(pwrite(fd, zero, r.block, (off_t)(r.off + f.pos + r.block)), r.block);
	f.found = false;
	scan(fd, &r, find_cb, &f);
	CHECK(!f.found);
	close(fd);

	s = open_img();
	CHECK_EQ(keys_state(s, 1, 4, 100), 1);
	CHECK_EQ(keys_state(s, 2, 8, 900), 0);
	/* The torn seq is never handed out again. */
	CHECK(rd_store_journal_seq(s) > seq_b);
	seq_c = commit_keys(s, 3, 6, 500);
	CHECK(seq_c > seq_b);
	CHECK_OK(rd_store_flush(s, seq_c));
	rd_store_crash(s);

	s = open_img();
	CHECK_EQ(keys_state(s, 1, 4, 100), 1);
	CHECK_EQ(keys_state(s, 2, 8, 900), 0);
	CHECK_EQ(keys_state(s, 3, 6, 500), 1);
	CHECK_OK(rd_store_close(s));

	/* No seq appears twice in the ring, and B's is gone for good. */
	fd = open(image, O_RDONLY);
	CHECK(fd >= 0);
	scan(fd, &r, uniq_cb, &u);
	f.seq = seq_b;
	f.found = false;
	scan(fd, &r, find_cb, &f);
	CHECK(!f.found);
	close(fd);

	/* A clean reopen after all that still has A and C. */
	s = open_img();
	CHECK_EQ(keys_state(s, 1, 4, 100), 1);
	CHECK_EQ(keys_state(s, 3, 6, 500), 1);
	CHECK_OK(rd_store_close(s));
	/* A hole in the middle of the live journal. */
	{
		uint64_t seq_e, seq_f, seq_g, seq_h;

		s = open_img();
		seq_e = commit_keys(s, 5, 3, 300);
		CHECK_OK(rd_store_flush(s, seq_e));
		seq_f = commit_keys(s, 6, 3, 300);
		CHECK_OK(rd_store_flush(s, seq_f));
		seq_g = commit_keys(s, 7, 3, 300);
		CHECK_OK(rd_store_flush(s, seq_g));
		CHECK(seq_e < seq_f && seq_f < seq_g);
		rd_store_crash(s);

		fd = open(image, O_RDWR);
		CHECK(fd >= 0);
		f.seq = seq_f;
		f.found = false;
		scan(fd, &r, find_cb, &f);
		CHECK(f.found);
		CHECK_EQ(pwrite(fd, zero, r.block, (off_t)(r.off + f.pos)), r.block);
		close(fd);

		s = open_img();
		CHECK_EQ(keys_state(s, 5, 3, 300), 1);
		CHECK_EQ(keys_state(s, 6, 3, 300), 0);
		CHECK_EQ(keys_state(s, 7, 3, 300), 0);
		seq_h = commit_keys(s, 8, 5, 700);
		CHECK(seq_h > seq_g);
		CHECK_OK(rd_store_flush(s, seq_h));
		rd_store_crash(s);

		s = open_img();
		CHECK_EQ(keys_state(s, 1, 4, 100), 1);
		CHECK_EQ(keys_state(s, 5, 3, 300), 1);
		CHECK_EQ(keys_state(s, 6, 3, 300), 0);
		CHECK_EQ(keys_state(s, 7, 3, 300), 0);
		CHECK_EQ(keys_state(s, 8, 5, 700), 1);
		CHECK_OK(rd_store_close(s));
	}
	free(zero);
	unlink(image);
	printf("journal_torn: ok (A seq %" PRIu64 ", torn B seq %" PRIu64 ", C seq %" PRIu64
	       ", %u entries in the ring)\n", seq_a, seq_b, seq_c, u.n);
	return 0;
}
