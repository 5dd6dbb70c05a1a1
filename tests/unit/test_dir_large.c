/*
 * test_dir_large.c - one directory with many entries and forced hash collisions, on an
 * image with 4 KiB nodes (a deep dirents tree).
 *
 * Part 1: 800 names squeezed into 16 hash slots: a single chain 800 slots long,
 *         whiteouts in the middle of it, reuse of whiteouts, trimming at its end.
 * Part 2: 100,000 names in 2^17 hash slots (collisions everywhere, clusters): create,
 *         list (each name exactly once), look every name up, unlink half, look up again,
 *         re-create, close and reopen, list and look up again, empty it and remove it
 *         (its whiteouts go with it). Timings on stderr.
 */
#include <time.h>

#include "ns_util.h"

static char img[256];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Names of varying length; the index is recoverable from the name. */
static void name_of(char *buf, size_t len, unsigned i)
{
	static const char pad[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

	snprintf(buf, len, "e%u-%.*s", i, (int)(i % 60), pad);
}

struct counts {
	unsigned *seen;
	unsigned n;
	uint64_t last_cookie;
	uint64_t entries;
	bool bad;
};

static int count_fill(void *priv, const char *name, size_t len, uint64_t ino, unsigned type,
		      uint64_t cookie)
{
	struct counts *c = priv;
	char buf[RD_NAME_MAX + 1], expect[RD_NAME_MAX + 1];
	unsigned long i;

	(void)ino;
	if (cookie <= c->last_cookie)
		c->bad = true;	/* cookies strictly increase */
	c->last_cookie = cookie;
	memcpy(buf, name, len);
	buf[len] = '\0';
	if (!strcmp(buf, ".") || !strcmp(buf, ".."))
		return 0;
	c->entries++;
	if (buf[0] != 'e' || type != 8) {
		c->bad = true;
		return 0;
	}
	i = strtoul(buf + 1, NULL, 10);
	name_of(expect, sizeof(expect), (unsigned)i);
	if (i >= c->n || strcmp(expect, buf))
		c->bad = true;
	else
		c->seen[i]++;
	return 0;
}

/* Lists dir; checks that exactly the names with want(i) appear, each once. */
static void check_listing(struct rd_fs *fs, uint64_t dir, unsigned n, int (*want)(unsigned))
{
	struct counts c = { .seen = calloc(n, sizeof(unsigned)), .n = n };

	CHECK(c.seen);
	CHECK_OK(rd_fs_readdir(fs, dir, 0, count_fill, &c));
	CHECK(!c.bad);
	for (unsigned i = 0; i < n; i++)
		if (c.seen[i] != (unsigned)want(i)) {
			fprintf(stderr, "entry %u seen %u times\n", i, c.seen[i]);
			CHECK(0);
		}
	free(c.seen);
}

static int all(unsigned i)
{
	(void)i;
	return 1;
}

static int none(unsigned i)
{
	(void)i;
	return 0;
}

static int even(unsigned i)
{
	return !(i & 1);
}

static void check_lookups(struct rd_fs *fs, uint64_t dir, unsigned n, int (*want)(unsigned),
			  uint64_t *inos)
{
	char name[RD_NAME_MAX + 1];
	struct rd_stat st;

	for (unsigned i = 0; i < n; i++) {
		int ret;

		name_of(name, sizeof(name), i);
		ret = rd_fs_lookup(fs, dir, name, &st);
		if (want(i)) {
			CHECK_OK(ret);
			if (inos)
				CHECK_EQ(st.ino, inos[i]);
		} else {
			CHECK_EQ(ret, -ENOENT);
		}
	}
}

static void create_range(struct rd_fs *fs, uint64_t dir, unsigned n, unsigned step,
			 unsigned first, uint64_t *inos)
{
	char name[RD_NAME_MAX + 1];
	struct rd_stat st;

	for (unsigned i = first; i < n; i += step) {
		name_of(name, sizeof(name), i);
		CHECK_OK(rd_fs_mknod(fs, dir, name, S_IFREG | 0644, 0, &ns_cred, &st));
		inos[i] = st.ino;
	}
}

static void run(uint64_t mask, unsigned n, bool timed)
{
	char name[RD_NAME_MAX + 1];
	struct rd_btree_stats bs;
	struct rd_stat st;
	uint64_t *inos = calloc(n, sizeof(*inos));
	struct rd_fs *fs;
	uint64_t dir;
	double t0;

	CHECK(inos);
	ns_image(img, sizeof(img), "dirlarge", 1ull << 30, 4096);
	fs = ns_open(img, mask);
	CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, "big", 0755, &ns_cred, &st));
	dir = st.ino;

	t0 = now_s();
	create_range(fs, dir, n, 1, 0, inos);
	if (timed)
		fprintf(stderr, "create %u: %.2f s\n", n, now_s() - t0);
	/* a second create of any name fails */
	for (unsigned i = 0; i < n; i += n / 16) {
		name_of(name, sizeof(name), i);
		CHECK_EQ(rd_fs_mknod(fs, dir, name, S_IFREG, 0, &ns_cred, &st), -EEXIST);
	}

	t0 = now_s();
	check_listing(fs, dir, n, all);
	if (timed)
		fprintf(stderr, "readdir %u: %.2f s\n", n, now_s() - t0);
	t0 = now_s();
	check_lookups(fs, dir, n, all, inos);
	if (timed)
		fprintf(stderr, "lookup %u: %.2f s\n", n, now_s() - t0);

	t0 = now_s();
	for (unsigned i = 1; i < n; i += 2) {
		name_of(name, sizeof(name), i);
		CHECK_OK(rd_fs_unlink(fs, dir, name));
	}
	if (timed)
		fprintf(stderr, "unlink %u: %.2f s\n", n / 2, now_s() - t0);
	t0 = now_s();
	check_lookups(fs, dir, n, even, inos);
	if (timed)
		fprintf(stderr, "lookup %u after unlinks: %.2f s\n", n, now_s() - t0);
	check_listing(fs, dir, n, even);
	/* the unlinked inodes are gone */
	for (unsigned i = 1; i < n; i += n / 64 | 1)
		if (i & 1)
			CHECK_EQ(rd_fs_getattr(fs, inos[i], &st), -ENOENT);

	t0 = now_s();
	create_range(fs, dir, n, 2, 1, inos);
	if (timed)
		fprintf(stderr, "re-create %u: %.2f s\n", n / 2, now_s() - t0);
	check_lookups(fs, dir, n, all, inos);
	check_listing(fs, dir, n, all);
	CHECK_EQ(ns_stat(fs, dir).nlink, 2);

	rd_btree_stats(rd_fs_store(fs), &bs);
	if (timed)
		fprintf(stderr, "dirents tree depth %u\n", bs.depth[RD_BTREE_DIRENTS]);
	CHECK(bs.depth[RD_BTREE_DIRENTS] >= (n > 10000 ? 3u : 1u));

	t0 = now_s();
	CHECK_OK(rd_fs_close(fs));
	if (timed)
		fprintf(stderr, "close: %.2f s\n", now_s() - t0);
	t0 = now_s();
	fs = ns_open(img, mask);
	if (timed)
		fprintf(stderr, "open: %.2f s\n", now_s() - t0);
	check_listing(fs, dir, n, all);
	for (unsigned i = 0; i < n; i += 7) {	/* a sample: all were looked up above */
		name_of(name, sizeof(name), i);
		CHECK_OK(rd_fs_lookup(fs, dir, name, &st));
		CHECK_EQ(st.ino, inos[i]);
	}
	if (timed)
		fprintf(stderr, "reopen, list %u, look up %u: %.2f s\n", n, n / 7, now_s() - t0);

	/* empty it: every whiteout goes with the directory */
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		name_of(name, sizeof(name), i);
		CHECK_OK(rd_fs_unlink(fs, dir, name));
	}
	check_listing(fs, dir, n, none);
	CHECK_OK(rd_fs_rmdir(fs, RD_ROOT_INO, "big"));
	CHECK(ns_range_empty(fs, RD_BTREE_DIRENTS, dir));
	if (timed)
		fprintf(stderr, "unlink %u, rmdir: %.2f s\n", n, now_s() - t0);
	t0 = now_s();
	CHECK_OK(rd_fs_close(fs));
	if (timed)
		fprintf(stderr, "close: %.2f s\n", now_s() - t0);
	unlink(img);
	free(inos);
}

int main(void)
{
	double t0 = now_s();

	run(0xf, 800, false);
	fprintf(stderr, "800 names in one chain: %.2f s\n", now_s() - t0);
	run(0x1ffff, 100000, true);
	return 0;
}
