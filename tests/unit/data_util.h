/*
 * data_util.h - helpers shared by the file-data tests: formatted temporary images, opening
 * the filesystem, creating files, byte patterns, and the accounting checks (inode sectors
 * against the extents tree, buckets' dirty sectors against inode sectors).
 */
#ifndef RD_TEST_DATA_UTIL_H
#define RD_TEST_DATA_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../test.h"
#include "alloc.h"
#include "refdio/errors.h"
#include "extents.h"
#include "refdio/fs.h"
#include "fs_priv.h"
#include "io.h"
#include "store.h"

struct du_geo {
	uint64_t size;
	uint32_t block_size, bucket_size, eem, node_size;
};

/* Formats a temporary image in $RD_TEST_DIR (default /tmp); path gets its name (>= 128
 * bytes). */
static inline void du_format(char *path, const char *tag, const struct du_geo *g)
{
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";
	struct rd_format_opts o = { 0 };
	char why[256] = "";
	int fd;

	snprintf(path, 128, "%s/data-%s-XXXXXX", dir, tag);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(close(fd) == 0);
	o.size = g->size;
	o.block_size = g->block_size;
	o.bucket_size = g->bucket_size;
	o.encoded_extent_max = g->eem;
	o.btree_node_size = g->node_size;
	o.data_csum = -1;
	o.meta_csum = -1;
	o.force = true;
	if (rd_store_format(path, &o, why, sizeof(why))) {
		fprintf(stderr, "format: %s\n", why);
		exit(1);
	}
}

static inline struct rd_fs *du_open_with(const char *path, const struct rd_fs_opts *o)
{
	struct rd_fs *fs;
	char why[256] = "";
	int ret = rd_fs_open(path, o, &fs, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "rd_fs_open: %s: %s\n", rd_strerror(ret), why);
		exit(1);
	}
	return fs;
}

static inline struct rd_fs *du_open(const char *path)
{
	struct rd_fs_opts o = { 0 };

	return du_open_with(path, &o);
}

static inline uint64_t du_create(struct rd_fs *fs, const char *name)
{
	struct rd_fs_cred cr = { 0, 0 };
	struct rd_stat st;

	CHECK_OK(rd_fs_mknod(fs, RD_ROOT_INO, name, S_IFREG | 0644, 0, &cr, &st));
	return st.ino;
}

static inline struct rd_stat du_stat(struct rd_fs *fs, uint64_t ino)
{
	struct rd_stat st;

	CHECK_OK(rd_fs_getattr(fs, ino, &st));
	return st;
}

static inline void du_truncate(struct rd_fs *fs, uint64_t ino, uint64_t size)
{
	struct rd_setattr sa = { .valid = RD_SET_SIZE, .size = size };

	CHECK_OK(rd_fs_setattr(fs, ino, &sa, NULL));
}

/* Writes all of buf (CHECKs that the write is whole). */
static inline void du_write(struct rd_fs *fs, uint64_t ino, const void *buf, size_t len,
			    uint64_t off)
{
	ssize_t n = rd_fs_write(fs, ino, buf, len, off, 0);

	if (n != (ssize_t)len) {
		fprintf(stderr, "write %zu at %llu: %zd (%s)\n", len, (unsigned long long)off, n,
			n < 0 ? rd_strerror((int)n) : "short");
		exit(1);
	}
}

/* The pattern byte of a (seed, position). */
static inline uint8_t du_byte(uint64_t seed, uint64_t pos)
{
	uint64_t x = (pos >> 3) * 0x9e3779b97f4a7c15ull ^ (seed * 0xd1b54a32d192ed03ull);

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (uint8_t)(x >> ((pos & 7) * 8));
}

static inline void du_fill(void *buf, uint64_t seed, uint64_t pos, size_t len)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = du_byte(seed, pos + i);
}

/* Sum of the sizes of ino's extents, checking they are in order and do not overlap. nr
 * gets their number if not NULL. */
static inline uint64_t du_extent_sectors(struct rd_fs *fs, uint64_t ino, size_t *nr)
{
	struct rd_store *s = rd_fs_store(fs);
	struct rd_extent_list l = { 0 };
	uint64_t sum = 0, prev_end = 0;
	bool more;

	CHECK_OK(rd_extents_collect(s, ino, 0, UINT64_MAX, 0, &l, &more));
	for (size_t i = 0; i < l.nr; i++) {
		CHECK(rd_extent_start(&l.e[i]) >= prev_end);
		prev_end = l.e[i].end;
		sum += l.e[i].size;
	}
	if (nr)
		*nr = l.nr;
	rd_extent_list_free(&l);
	return sum;
}

/*
 * The accounting invariants for a filesystem whose only data are the files inos[0..n):
 * each inode's sectors equal its extents' sizes; the buckets' dirty sectors sum to the
 * inodes' sectors; the allocator's user_bytes agree.
 */
static inline void du_check_accounting(struct rd_fs *fs, const uint64_t *inos, size_t n)
{
	struct rd_store *s = rd_fs_store(fs);
	uint64_t isum = 0, bsum = 0;
	struct rd_space sp;

	for (size_t i = 0; i < n; i++) {
		struct rd_stat st = du_stat(fs, inos[i]);
		uint64_t es = du_extent_sectors(fs, inos[i], NULL);

		CHECK_EQ(st.blocks, es);
		isum += es;
	}
	for (uint64_t b = 0; b < s->geo.nbuckets; b++) {
		struct rd_bucket bk;

		CHECK_OK(rd_alloc_bucket(s, b, &bk));
		bsum += bk.dirty_sectors;
	}
	CHECK_EQ(bsum, isum);
	rd_alloc_space(s, &sp);
	CHECK_EQ(sp.user_bytes, isum << RD_SECTOR_SHIFT);
}

static inline double du_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
