/*
 * test_data.c - the file-data path on a real image: aligned and unaligned writes and
 * reads, every overwrite shape (front, back, middle split, exact, spanning several),
 * holes and sparse files, truncate (grow, shrink, tail zeroing, many extents), every
 * fallocate mode, SEEK_DATA/SEEK_HOLE, appends, the asynchronous calls, the chunk-level
 * write API, persistence across a clean close and across a crash after fsync, and the
 * space accounting after each step.
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_int.h"
#include "data_util.h"

#define MAX_FILES 32

/* Every file the test made, with the contents it must have (NULL data: not tracked). */
struct model {
	uint64_t ino;
	uint8_t *data;
	uint64_t size, cap;
};

static struct model files[MAX_FILES];
static size_t nfiles;
static uint64_t seed;

static struct model *new_file(struct rd_fs *fs, const char *name)
{
	struct model *m = &files[nfiles++];

	CHECK(nfiles <= MAX_FILES);
	m->ino = du_create(fs, name);
	m->cap = 1 << 20;
	m->data = calloc(1, m->cap);
	CHECK(m->data);
	return m;
}

static void model_reserve(struct model *m, uint64_t size)
{
	uint64_t cap = m->cap;

	if (size <= cap)
		return;
	while (cap < size)
		cap *= 2;
	m->data = realloc(m->data, cap);
	CHECK(m->data);
	memset(m->data + m->cap, 0, cap - m->cap);
	m->cap = cap;
}

static void model_write(struct model *m, const void *buf, size_t len, uint64_t off)
{
	model_reserve(m, off + len);
	memcpy(m->data + off, buf, len);
	if (off + len > m->size)
		m->size = off + len;
}

static void model_truncate(struct model *m, uint64_t size)
{
	model_reserve(m, size);
	if (size < m->size)
		memset(m->data + size, 0, m->size - size);
	m->size = size;
}

static void model_zero(struct model *m, uint64_t off, uint64_t len, bool extend)
{
	uint64_t end = off + len;

	if (!extend && end > m->size)
		end = m->size;
	if (end <= off)
		return;
	model_reserve(m, end);
	memset(m->data + off, 0, end - off);
	if (end > m->size)
		m->size = end;
}

/* The file reads back exactly as its model, in one read and in odd-sized pieces. */
static void check_file(struct rd_fs *fs, const struct model *m)
{
	uint8_t *buf = malloc(m->size + 8192);
	uint64_t pos = 0;
	ssize_t n;

	CHECK(buf);
	CHECK_EQ(du_stat(fs, m->ino).size, m->size);
	n = rd_fs_read(fs, m->ino, buf, m->size + 8192, 0);
	CHECK_EQ(n, m->size);
	for (uint64_t i = 0; i < m->size; i++)
		if (buf[i] != m->data[i]) {
			fprintf(stderr, "ino %llu byte %llu: %02x, want %02x\n",
				(unsigned long long)m->ino, (unsigned long long)i, buf[i], m->data[i]);
			exit(1);
		}
	while (pos < m->size) {
		size_t len = 1 + test_rand(&seed) % 70000;

		n = rd_fs_read(fs, m->ino, buf, len, pos);
		CHECK(n > 0);
		CHECK(memcmp(buf, m->data + pos, (size_t)n) == 0);
		pos += (uint64_t)n;
	}
	free(buf);
}

static void check_all(struct rd_fs *fs)
{
	uint64_t inos[MAX_FILES];

	for (size_t i = 0; i < nfiles; i++) {
		inos[i] = files[i].ino;
		if (files[i].data)
			check_file(fs, &files[i]);
	}
	du_check_accounting(fs, inos, nfiles);
}

static void mwrite(struct rd_fs *fs, struct model *m, const void *buf, size_t len, uint64_t off)
{
	du_write(fs, m->ino, buf, len, off);
	model_write(m, buf, len, off);
}

/* The device sector a file sector maps to (0 for a hole), from the extents tree. */
static uint64_t phys_of(struct rd_fs *fs, uint64_t ino, uint64_t sector, uint16_t *flags)
{
	struct rd_extent_list l = { 0 };
	uint64_t p = 0;
	bool more;

	CHECK_OK(rd_extents_collect(rd_fs_store(fs), ino, sector, sector + 1, 0, &l, &more));
	CHECK(l.nr <= 1);
	if (l.nr) {
		const struct rd_extent *e = &l.e[0];

		p = (e->dev_offset >> RD_SECTOR_SHIFT) + e->region_offset +
		    (sector - rd_extent_start(e));
		if (flags)
			*flags = e->flags;
	}
	rd_extent_list_free(&l);
	return p;
}

/* ---- the tests ------------------------------------------------------------------- */

static void t_aligned(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "aligned");
	size_t len = 1 << 20;
	uint8_t *buf = rd_io_buf_alloc(len + 4096), *rb = malloc(len + 1);

	CHECK(buf && rb);
	du_fill(buf, 1, 0, len);
	mwrite(fs, m, buf, len, 0);
	CHECK_EQ(du_stat(fs, m->ino).blocks, len / 512);
	/* Unaligned user buffer for an aligned range: written through a bounce copy. */
	du_fill(buf + 1, 2, 0, 65536);
	mwrite(fs, m, buf + 1, 65536, 131072);
	/* Reads into an unaligned buffer, at an unaligned offset. */
	CHECK_EQ(rd_fs_read(fs, m->ino, rb + 1, 100000, 12345), 100000);
	CHECK(memcmp(rb + 1, m->data + 12345, 100000) == 0);
	check_file(fs, m);
	rd_io_buf_free(buf);
	free(rb);
}

static void t_unaligned(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "unaligned");
	struct rd_fs_stats st0, st1;
	uint8_t buf[20000];

	rd_fs_stats(fs, &st0);
	for (int i = 0; i < 200; i++) {
		uint64_t off = test_rand(&seed) % 300000;
		size_t len = 1 + test_rand(&seed) % sizeof(buf);

		du_fill(buf, 100 + i, off, len);
		mwrite(fs, m, buf, len, off);
		if (i % 40 == 0)
			check_file(fs, m);
	}
	/* Within one block, across a block boundary, a single byte. */
	du_fill(buf, 7, 0, 10);
	mwrite(fs, m, buf, 10, 4090);
	mwrite(fs, m, buf, 1, 8191);
	mwrite(fs, m, buf, 3, 100);
	rd_fs_stats(fs, &st1);
	CHECK(st1.rmw_blocks > st0.rmw_blocks);
	check_file(fs, m);
}

static void t_overwrite(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "overwrite");
	static const struct { uint64_t off, len; } cases[] = {
		{ 0, 4096 },		/* front */
		{ 61440, 4096 },	/* back */
		{ 20480, 8192 },	/* middle: split */
		{ 20480, 8192 },	/* exact: the extent written just before */
		{ 3000, 50000 },	/* spanning several, unaligned */
		{ 0, 65536 },		/* everything */
	};
	uint8_t buf[65536];

	du_fill(buf, 11, 0, sizeof(buf));
	mwrite(fs, m, buf, sizeof(buf), 0);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint64_t before[128];
		uint64_t blo = cases[c].off / 4096 * 8, bhi = (cases[c].off + cases[c].len + 4095) / 4096 * 8;
		size_t nr;

		for (uint64_t s = 0; s < 128; s++)
			before[s] = phys_of(fs, m->ino, s, NULL);
		du_fill(buf, 20 + c, cases[c].off, cases[c].len);
		mwrite(fs, m, buf, cases[c].len, cases[c].off);
		for (uint64_t s = 0; s < 128; s++) {
			uint64_t p = phys_of(fs, m->ino, s, NULL);

			CHECK(p);
			/* Outside the blocks written the mapping is untouched (trimmed and split
			 * pieces keep pointing at the same bytes); inside, everything is new. */
			if (s < blo || s >= bhi)
				CHECK_EQ(p, before[s]);
			else
				CHECK(p != before[s]);
		}
		CHECK_EQ(du_extent_sectors(fs, m->ino, &nr), 128);
		CHECK_EQ(du_stat(fs, m->ino).blocks, 128);
		check_file(fs, m);
	}
}

static void t_holes(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "sparse");
	uint8_t buf[8192];
	uint64_t far = 10 << 20;

	du_fill(buf, 31, far, 4096);
	mwrite(fs, m, buf, 4096, far);
	CHECK_EQ(du_stat(fs, m->ino).size, far + 4096);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 8);
	/* Reads stop at i_size, holes are zeros. */
	CHECK_EQ(rd_fs_read(fs, m->ino, buf, 8192, far), 4096);
	CHECK_EQ(rd_fs_read(fs, m->ino, buf, 8192, far + 4096), 0);
	CHECK_EQ(rd_fs_read(fs, m->ino, buf, 8192, far + 100000), 0);
	CHECK_EQ(rd_fs_read(fs, m->ino, buf, 8192, 4096), 8192);
	for (int i = 0; i < 8192; i++)
		CHECK_EQ(buf[i], 0);
	check_file(fs, m);
}

static void t_truncate(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "truncate");
	struct model *big = new_file(fs, "truncate-many");
	uint8_t buf[10000];
	size_t nr;

	du_fill(buf, 41, 0, sizeof(buf));
	mwrite(fs, m, buf, sizeof(buf), 0);
	du_truncate(fs, m->ino, 5000);
	model_truncate(m, 5000);
	check_file(fs, m);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 16);
	/* Growing again: the old tail must read as zeros. */
	du_truncate(fs, m->ino, 10000);
	model_truncate(m, 10000);
	check_file(fs, m);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 16);
	/* An unaligned write past the end after a shrink: the tail stays zero too. */
	du_truncate(fs, m->ino, 3000);
	model_truncate(m, 3000);
	mwrite(fs, m, buf, 10, 3500);
	check_file(fs, m);
	du_truncate(fs, m->ino, 8192);
	model_truncate(m, 8192);
	check_file(fs, m);
	du_truncate(fs, m->ino, 0);
	model_truncate(m, 0);
	check_file(fs, m);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 0);
	du_truncate(fs, m->ino, 1 << 20);	/* sparse, nothing allocated */
	model_truncate(m, 1 << 20);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 0);
	check_file(fs, m);

	/* More extents than one transaction takes: removed from the top in batches. */
	for (int i = 0; i < 1500; i++) {
		du_fill(buf, 50 + i, 0, 4096);
		mwrite(fs, big, buf, 4096, (uint64_t)i * 8192);
	}
	CHECK_EQ(du_extent_sectors(fs, big->ino, &nr), 1500 * 8);
	CHECK_EQ(nr, 1500);
	du_truncate(fs, big->ino, (1 << 20) + 100);
	model_truncate(big, (1 << 20) + 100);
	check_file(fs, big);
	CHECK_EQ(du_extent_sectors(fs, big->ino, &nr), 129 * 8);
	check_all(fs);
}

static void t_fallocate(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "falloc");
	uint8_t buf[65536];
	uint16_t fl = 0;
	uint64_t out;

	/* Mode 0: unwritten extents with real space, size grows, reads zeros. */
	CHECK_OK(rd_fs_fallocate(fs, m->ino, 0, 0, 1 << 20));
	model_truncate(m, 1 << 20);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 2048);
	CHECK(phys_of(fs, m->ino, 100, &fl) && (fl & RD_EXTENT_UNWRITTEN));
	CHECK_EQ(rd_fs_lseek(fs, m->ino, 0, SEEK_DATA, &out), -ENXIO);
	CHECK_OK(rd_fs_lseek(fs, m->ino, 0, SEEK_HOLE, &out));
	CHECK_EQ(out, 0);
	check_file(fs, m);
	/* Writing into unwritten space, unaligned: the edges merge with zeros. */
	du_fill(buf, 61, 0, 10000);
	mwrite(fs, m, buf, 10000, 5000);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 2048);
	check_file(fs, m);
	/* KEEP_SIZE past the end: space, no size. Mode 0 over data keeps the data. */
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
	CHECK_EQ(du_stat(fs, m->ino).size, 1 << 20);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 4096);
	CHECK_OK(rd_fs_fallocate(fs, m->ino, 0, 0, 100));
	CHECK_EQ(du_stat(fs, m->ino).blocks, 4096);
	check_file(fs, m);
	/* Growing over preallocated space past the end reads zeros. */
	du_truncate(fs, m->ino, (1 << 20) + 5000);
	model_truncate(m, (1 << 20) + 5000);
	check_file(fs, m);
	du_truncate(fs, m->ino, 1 << 20);	/* drops the preallocation past the end */
	model_truncate(m, 1 << 20);
	CHECK_EQ(du_stat(fs, m->ino).blocks, 2048);

	/* PUNCH_HOLE|KEEP_SIZE, unaligned, inside data. */
	du_fill(buf, 62, 0, sizeof(buf));
	mwrite(fs, m, buf, sizeof(buf), 200000);
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 201000, 20000));
	model_zero(m, 201000, 20000, false);
	check_file(fs, m);
	CHECK_EQ(phys_of(fs, m->ino, 208000 / 512, NULL), 0);	/* a real hole now */
	/* Within one block, and past the end (nothing to do but no error). */
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 230001, 17));
	model_zero(m, 230001, 17, false);
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 (1 << 20) - 100, 1 << 20));
	model_zero(m, (1 << 20) - 100, 1 << 20, false);
	CHECK_EQ(du_stat(fs, m->ino).size, 1 << 20);
	check_file(fs, m);

	/* ZERO_RANGE inside data: whole blocks become unwritten, space stays. */
	mwrite(fs, m, buf, sizeof(buf), 400000);
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_ZERO_RANGE, 401234, 30000));
	model_zero(m, 401234, 30000, true);
	CHECK(phys_of(fs, m->ino, 410000 / 512, &fl) && (fl & RD_EXTENT_UNWRITTEN));
	check_file(fs, m);
	/* ZERO_RANGE past the end: extends without KEEP_SIZE, not with it. */
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				 (1 << 20) + 10, 50000));
	CHECK_EQ(du_stat(fs, m->ino).size, 1 << 20);
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_ZERO_RANGE, (1 << 20) - 10, 50000));
	model_zero(m, (1 << 20) - 10, 50000, true);
	CHECK_EQ(du_stat(fs, m->ino).size, (1 << 20) + 49990);
	check_file(fs, m);
	CHECK_OK(rd_fs_fallocate(fs, m->ino, FALLOC_FL_ZERO_RANGE, m->size + 100, 7));
	model_zero(m, m->size + 100, 7, true);
	check_file(fs, m);

	/* Truncating to the same size drops preallocation past the end, also on an empty
	 * file (deleting a file truncates it to 0: nothing may stay behind). */
	{
		struct model *e = new_file(fs, "falloc-empty");

		CHECK_OK(rd_fs_fallocate(fs, e->ino, FALLOC_FL_KEEP_SIZE, 0, 65536));
		CHECK_EQ(du_stat(fs, e->ino).size, 0);
		CHECK_EQ(du_stat(fs, e->ino).blocks, 128);
		du_truncate(fs, e->ino, 0);
		CHECK_EQ(du_stat(fs, e->ino).blocks, 0);
		du_write(fs, e->ino, buf, 5000, 0);
		model_write(e, buf, 5000, 0);
		CHECK_OK(rd_fs_fallocate(fs, e->ino, FALLOC_FL_KEEP_SIZE, 0, 65536));
		CHECK_EQ(du_stat(fs, e->ino).blocks, 128);
		du_truncate(fs, e->ino, 5000);
		CHECK_EQ(du_stat(fs, e->ino).blocks, 16);
		check_file(fs, e);
	}

	/* Unsupported modes and bad arguments. */
	CHECK_EQ(rd_fs_fallocate(fs, m->ino, FALLOC_FL_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
	CHECK_EQ(rd_fs_fallocate(fs, m->ino, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -EOPNOTSUPP);
	CHECK_EQ(rd_fs_fallocate(fs, m->ino, FALLOC_FL_INSERT_RANGE, 0, 4096), -EOPNOTSUPP);
	CHECK_EQ(rd_fs_fallocate(fs, m->ino, 0, 0, 0), -EINVAL);
	CHECK_EQ(rd_fs_fallocate(fs, RD_ROOT_INO, 0, 0, 4096), -EISDIR);
	check_all(fs);
}

static void t_seek(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "seek");
	uint8_t buf[4096];
	uint64_t out;

	du_fill(buf, 71, 0, sizeof(buf));
	mwrite(fs, m, buf, 4096, 0);
	mwrite(fs, m, buf, 4096, 1 << 20);
	du_truncate(fs, m->ino, 3 << 20);
	model_truncate(m, 3 << 20);
	CHECK_OK(rd_fs_fallocate(fs, m->ino, 0, 2 << 20, 4096));	/* unwritten: a hole */

	CHECK_OK(rd_fs_lseek(fs, m->ino, 0, SEEK_DATA, &out));
	CHECK_EQ(out, 0);
	CHECK_OK(rd_fs_lseek(fs, m->ino, 100, SEEK_DATA, &out));
	CHECK_EQ(out, 100);
	CHECK_OK(rd_fs_lseek(fs, m->ino, 0, SEEK_HOLE, &out));
	CHECK_EQ(out, 4096);
	CHECK_OK(rd_fs_lseek(fs, m->ino, 5000, SEEK_DATA, &out));
	CHECK_EQ(out, 1 << 20);
	CHECK_OK(rd_fs_lseek(fs, m->ino, (1 << 20) + 10, SEEK_HOLE, &out));
	CHECK_EQ(out, (1 << 20) + 4096);
	CHECK_EQ(rd_fs_lseek(fs, m->ino, (1 << 20) + 4096, SEEK_DATA, &out), -ENXIO);
	CHECK_OK(rd_fs_lseek(fs, m->ino, 2 << 20, SEEK_HOLE, &out));
	CHECK_EQ(out, 2 << 20);
	CHECK_EQ(rd_fs_lseek(fs, m->ino, 3 << 20, SEEK_HOLE, &out), -ENXIO);
	CHECK_EQ(rd_fs_lseek(fs, m->ino, 3 << 20, SEEK_DATA, &out), -ENXIO);
	/* The end of the file is a hole. */
	du_truncate(fs, m->ino, 4096);
	model_truncate(m, 4096);
	CHECK_OK(rd_fs_lseek(fs, m->ino, 0, SEEK_HOLE, &out));
	CHECK_EQ(out, 4096);
	CHECK_EQ(rd_fs_lseek(fs, m->ino, 0, SEEK_SET, &out), -EINVAL);
}

static void t_append(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "append");
	uint8_t buf[5000];

	for (int i = 0; i < 5; i++) {
		du_fill(buf, 80 + i, 0, sizeof(buf));
		CHECK_EQ(rd_fs_write(fs, m->ino, buf, 1000 + i * 700, m->size, 0), 1000 + i * 700);
		model_write(m, buf, 1000 + i * 700, m->size);
	}
	CHECK_EQ(rd_fs_write(fs, m->ino, buf, 10, 0, RD_WRITE_DSYNC), 10);
	model_write(m, buf, 10, 0);
	CHECK_EQ(rd_fs_write(fs, m->ino, buf, 10, 0, 1u << 1), -EINVAL);
	CHECK_EQ(rd_fs_write(fs, m->ino, buf, 0, 0, 0), 0);
	CHECK_EQ(rd_fs_write(fs, RD_ROOT_INO, buf, 10, 0, 0), -EISDIR);
	CHECK_EQ(rd_fs_read(fs, RD_ROOT_INO, buf, 10, 0), -EISDIR);
	CHECK_EQ(rd_fs_write(fs, 999999, buf, 10, 0, 0), -ENOENT);
	check_file(fs, m);
}

struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int left;
	ssize_t res[8];
};

static struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, { 0 } };

static void async_done(void *priv, ssize_t res)
{
	pthread_mutex_lock(&wt.lock);
	wt.res[(intptr_t)priv] = res;
	wt.left--;
	pthread_cond_signal(&wt.cond);
	pthread_mutex_unlock(&wt.lock);
}

static void async_wait(void)
{
	pthread_mutex_lock(&wt.lock);
	while (wt.left)
		pthread_cond_wait(&wt.cond, &wt.lock);
	pthread_mutex_unlock(&wt.lock);
}

static void t_async(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "async");
	static uint8_t buf[4][30000], rb[2][30000];

	wt.left = 4;
	for (int i = 0; i < 4; i++) {
		du_fill(buf[i], 90 + i, 0, sizeof(buf[i]));
		rd_fs_write_async(fs, m->ino, buf[i], sizeof(buf[i]), (uint64_t)i * 40000, 0,
				  async_done, (void *)(intptr_t)i);
		model_write(m, buf[i], sizeof(buf[i]), (uint64_t)i * 40000);
	}
	async_wait();
	for (int i = 0; i < 4; i++)
		CHECK_EQ(wt.res[i], sizeof(buf[i]));
	wt.left = 3;
	rd_fs_read_async(fs, m->ino, rb[0], sizeof(rb[0]), 40000, async_done, (void *)0);
	rd_fs_read_async(fs, m->ino, rb[1], sizeof(rb[1]), 130000, async_done, (void *)1);
	rd_fs_fsync_async(fs, m->ino, false, async_done, (void *)2);
	async_wait();
	CHECK_EQ(wt.res[0], sizeof(rb[0]));
	CHECK(memcmp(rb[0], m->data + 40000, sizeof(rb[0])) == 0);
	CHECK_EQ(wt.res[1], m->size - 130000);
	CHECK(memcmp(rb[1], m->data + 130000, (size_t)wt.res[1]) == 0);
	CHECK_EQ(wt.res[2], 0);
	wt.left = 1;
	rd_fs_read_async(fs, 999999, rb[0], 10, 0, async_done, (void *)0);
	async_wait();
	CHECK_EQ(wt.res[0], -ENOENT);
	check_file(fs, m);
}

static void t_wr_api(struct rd_fs *fs)
{
	struct model *m = new_file(fs, "wr-api");
	struct rd_data_wr *wr, *wr2;
	struct rd_completion w;
	struct rd_inode *ip;
	struct rd_space sp;
	uint8_t buf[12000];
	uint64_t seq;

	du_fill(buf, 101, 0, sizeof(buf));
	mwrite(fs, m, buf, sizeof(buf), 0);
	CHECK_OK(rd_inode_get(fs, m->ino, &ip));

	/* Written, then aborted: nothing visible, nothing held. */
	CHECK_OK(rd_data_wr_begin(fs, ip, 100, 5000, 0, &wr));
	rd_alloc_space(rd_fs_store(fs), &sp);
	CHECK(sp.reserved_bytes >= 8192);
	/* An overlapping writer cannot get in; a disjoint one can. */
	CHECK_EQ(rd_data_wr_begin(fs, ip, 8000, 10, RD_DATA_WR_NOWAIT, &wr2), -EAGAIN);
	CHECK_OK(rd_data_wr_begin(fs, ip, 9000, 10, RD_DATA_WR_NOWAIT, &wr2));
	rd_data_wr_abort(fs, wr2);
	du_fill(buf, 102, 0, sizeof(buf));
	rd_completion_init(&w);
	rd_data_wr_submit(fs, wr, buf, rd_data_wait_done, &w);
	CHECK_OK((int)rd_completion_wait(&w));
	rd_data_wr_abort(fs, wr);
	rd_alloc_space(rd_fs_store(fs), &sp);
	CHECK_EQ(sp.reserved_bytes, 0);
	check_file(fs, m);

	/* Committed: visible, with its seq. */
	CHECK_OK(rd_data_wr_begin(fs, ip, m->size, 777, 0, &wr));
	rd_completion_init(&w);
	rd_data_wr_submit(fs, wr, buf, rd_data_wait_done, &w);
	CHECK_OK((int)rd_completion_wait(&w));
	CHECK_EQ(rd_data_wr_commit(fs, wr, &seq), 777);
	CHECK(seq > 0);
	model_write(m, buf, 777, m->size);
	/* Commit before submit is refused (and releases everything). */
	CHECK_OK(rd_data_wr_begin(fs, ip, 0, 10, 0, &wr));
	CHECK_EQ(rd_data_wr_commit(fs, wr, NULL), -EINVAL);
	CHECK_EQ(rd_data_wr_begin(fs, ip, 0, 0, 0, &wr), -EINVAL);
	CHECK_EQ(rd_data_wr_begin(fs, ip, RD_DATA_MAX_FILE, 10, 0, &wr), -EFBIG);
	rd_inode_put(fs, ip);
	rd_alloc_space(rd_fs_store(fs), &sp);
	CHECK_EQ(sp.reserved_bytes, 0);
	check_file(fs, m);
}

/* Writes after the last fsync may or may not survive a crash; what was fsynced must. */
static struct rd_fs *t_crash(struct rd_fs *fs, const char *path)
{
	struct model *m = new_file(fs, "crash");
	uint8_t buf[50000];

	du_fill(buf, 111, 0, sizeof(buf));
	mwrite(fs, m, buf, sizeof(buf), 0);
	du_truncate(fs, m->ino, 30000);
	model_truncate(m, 30000);
	CHECK_OK(rd_fs_fsync(fs, m->ino, false));
	/* Unsynced: another file's change... and a DSYNC write, which is durable itself. */
	du_fill(buf, 112, 0, sizeof(buf));
	CHECK_EQ(rd_fs_write(fs, files[0].ino, buf, 100, 0, 0), 100);
	CHECK_EQ(rd_fs_write(fs, m->ino, buf, 1000, 30000, RD_WRITE_DSYNC), 1000);
	model_write(m, buf, 1000, 30000);
	rd_fs_crash(fs);
	fs = du_open(path);
	check_file(fs, m);
	/* files[0] may have either content in its first 100 bytes: accept the disk's. */
	CHECK_EQ(rd_fs_read(fs, files[0].ino, files[0].data, 100, 0), 100);
	check_all(fs);
	return fs;
}

int main(void)
{
	struct du_geo g = { .size = 256 << 20 };
	char path[128];
	struct rd_fs *fs;

	seed = test_seed();
	du_format(path, "unit", &g);
	fs = du_open(path);
	t_aligned(fs);
	t_unaligned(fs);
	t_overwrite(fs);
	t_holes(fs);
	check_all(fs);
	t_truncate(fs);
	t_fallocate(fs);
	t_seek(fs);
	t_append(fs);
	t_async(fs);
	t_wr_api(fs);
	check_all(fs);

	/* Everything survives a clean close. */
	CHECK_OK(rd_fs_close(fs));
	fs = du_open(path);
	check_all(fs);
	fs = t_crash(fs, path);
	CHECK_OK(rd_fs_close(fs));
	unlink(path);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i].data);
	printf("test_data: ok (%zu files)\n", nfiles);
	return 0;
}
