/*
 * test_data_concurrent.c - several threads writing one file at unaligned offsets: nobody
 * loses anybody's bytes.
 *
 * The file is cut into cells of CELL bytes (not a multiple of the block size, so cells
 * share blocks and every write read-modify-writes edge blocks that other threads write at
 * the same time).
 *
 *  Phase A (disjoint ranges, shared blocks): cell c belongs to thread c % NT, which writes
 *  its cells in random order with increasing versions, remembering the last version of
 *  each. Afterwards every cell must hold exactly its last version: a lost read-modify-write
 *  would bring back an older version of a neighbour's cell.
 *
 *  Phase B (overlapping ranges): every thread writes runs of 1..16 consecutive cells, each
 *  cell stamped with (thread, write number) and a body derived from the stamp. Afterwards
 *  every cell must be whole (stamp and body agree: no torn cell) and its stamp must name
 *  a write that covered it.
 *
 * A reader thread reads random ranges throughout and an fsync thread flushes, so the
 * read path and the journal run alongside (under ThreadSanitizer in the 'tsan' suite).
 *
 *  Phase C (bucket reuse under readers): on a small image, writers keep rewriting a file
 *  in whole aligned blocks, so buckets empty and are reused all the time, while readers
 *  read it. Every block carries its own stamp and a body derived from it: a block read
 *  back must be whole (a read that raced with the reuse of its bucket must have noticed
 *  the generation change and looked the extent up again, never returned the new owner's
 *  bytes). The count of such retries is printed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "data_util.h"
#include "util.h"

#define NT		4
#define CELL		700
#define NCELLS		480
#define FILE_SIZE	((uint64_t)CELL * NCELLS)
#define WRITES_A	250
#define WRITES_B	150
#define RUN_MAX		16

static struct rd_fs *fs;
static uint64_t ino;
static uint64_t base_seed;
static uint32_t version[NCELLS];		/* phase A: the owner's last version */
static struct { uint16_t c0, n; } runs[NT][WRITES_B];	/* phase B: what each write covered */
static atomic_bool stop;

/* Phase A cell contents: a function of (cell, version). */
static void cell_a(uint8_t *p, unsigned c, uint32_t v)
{
	du_fill(p, base_seed ^ ((uint64_t)v << 20) ^ c, (uint64_t)c * CELL, CELL);
}

/* Phase B cell contents: an 8-byte stamp then a body derived from it. */
static void cell_b(uint8_t *p, unsigned c, unsigned t, unsigned w)
{
	uint64_t stamp = (uint64_t)t << 32 | w;

	memcpy(p, &stamp, 8);
	du_fill(p + 8, base_seed ^ (stamp * 0x9e37) ^ ((uint64_t)c << 40), 0, CELL - 8);
}

static void *writer_a(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t rs = base_seed + t + 1;
	uint8_t buf[CELL];

	for (int i = 0; i < WRITES_A; i++) {
		unsigned c = (unsigned)(test_rand(&rs) % (NCELLS / NT)) * NT + t;
		uint32_t v = version[c] + 1;	/* only this thread touches cell c */

		cell_a(buf, c, v);
		CHECK_EQ(rd_fs_write(fs, ino, buf, CELL, (uint64_t)c * CELL, 0), CELL);
		version[c] = v;
	}
	return NULL;
}

static void *writer_b(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t rs = base_seed * 7 + t + 1;
	static __thread uint8_t buf[CELL * RUN_MAX];

	for (unsigned w = 0; w < WRITES_B; w++) {
		unsigned n = 1 + (unsigned)(test_rand(&rs) % RUN_MAX);
		unsigned c0 = (unsigned)(test_rand(&rs) % (NCELLS - n + 1));

		for (unsigned k = 0; k < n; k++)
			cell_b(buf + k * CELL, c0 + k, t, w);
		runs[t][w].c0 = (uint16_t)c0;
		runs[t][w].n = (uint16_t)n;
		CHECK_EQ(rd_fs_write(fs, ino, buf, (size_t)n * CELL, (uint64_t)c0 * CELL, 0),
			 (ssize_t)n * CELL);
	}
	return NULL;
}

static void *reader(void *arg)
{
	uint64_t rs = base_seed * 13;
	static uint8_t buf[65536];
	unsigned reads = 0;

	(void)arg;
	while (!atomic_load(&stop)) {
		uint64_t off = test_rand(&rs) % FILE_SIZE;
		size_t len = 1 + (size_t)(test_rand(&rs) % sizeof(buf));
		ssize_t n = rd_fs_read(fs, ino, buf, len, off);

		CHECK_EQ(n, off + len > FILE_SIZE ? FILE_SIZE - off : len);
		if (++reads % 16 == 0)
			CHECK_OK(rd_fs_fsync(fs, ino, false));
	}
	return NULL;
}

static void run_phase(void *(*fn)(void *))
{
	pthread_t th[NT], rd;

	atomic_store(&stop, false);
	CHECK(pthread_create(&rd, NULL, reader, NULL) == 0);
	for (unsigned t = 0; t < NT; t++)
		CHECK(pthread_create(&th[t], NULL, fn, (void *)(uintptr_t)t) == 0);
	for (unsigned t = 0; t < NT; t++)
		CHECK(pthread_join(th[t], NULL) == 0);
	atomic_store(&stop, true);
	CHECK(pthread_join(rd, NULL) == 0);
}

static uint8_t *read_all(void)
{
	uint8_t *buf = malloc(FILE_SIZE);

	CHECK(buf);
	CHECK_EQ(rd_fs_read(fs, ino, buf, FILE_SIZE, 0), FILE_SIZE);
	return buf;
}

static void check_a(void)
{
	uint8_t *buf = read_all(), want[CELL];

	for (unsigned c = 0; c < NCELLS; c++) {
		cell_a(want, c, version[c]);
		if (memcmp(buf + (uint64_t)c * CELL, want, CELL)) {
			fprintf(stderr, "phase A: cell %u does not hold its version %u\n", c,
				version[c]);
			exit(1);
		}
	}
	free(buf);
}

static void check_b(void)
{
	uint8_t *buf = read_all(), want[CELL];
	unsigned from_b = 0;

	for (unsigned c = 0; c < NCELLS; c++) {
		const uint8_t *p = buf + (uint64_t)c * CELL;
		uint64_t stamp;
		unsigned t, w;

		cell_a(want, c, version[c]);
		if (!memcmp(p, want, CELL))
			continue;	/* no phase B write covered it */
		memcpy(&stamp, p, 8);
		t = (unsigned)(stamp >> 32);
		w = (unsigned)stamp;
		CHECK(t < NT && w < WRITES_B);
		CHECK(runs[t][w].c0 <= c && c < runs[t][w].c0 + runs[t][w].n);
		cell_b(want, c, t, w);
		if (memcmp(p, want, CELL)) {
			fprintf(stderr, "phase B: cell %u is torn (stamp %u/%u)\n", c, t, w);
			exit(1);
		}
		from_b++;
	}
	CHECK(from_b > NCELLS / 2);
	free(buf);
}

/* ---- phase C ---- */

#define C_BLOCKS	256		/* a 1 MiB file of 4 KiB blocks */
#define C_SECONDS	3.0

static atomic_uint_fast64_t c_stamp, c_enospc;

static void block_c(uint8_t *p, unsigned blk, uint64_t stamp)
{
	memcpy(p, &stamp, 8);
	memcpy(p + 8, &blk, sizeof(blk));
	du_fill(p + 16, base_seed ^ stamp * 0x9e3779b97f4a7c15ull, 0, 4096 - 16);
}

static bool block_ok(const uint8_t *p, unsigned blk)
{
	static __thread uint8_t want[4096];
	uint64_t stamp;
	unsigned b;

	memcpy(&stamp, p, 8);
	memcpy(&b, p + 8, sizeof(b));
	if (b != blk)
		return false;
	block_c(want, blk, stamp);
	return !memcmp(p, want, 4096);
}

static void *writer_c(void *arg)
{
	uint64_t rs = base_seed * 31 + (uintptr_t)arg;
	static __thread uint8_t buf[64 * 4096];
	double end = du_now() + C_SECONDS;

	while (du_now() < end) {
		unsigned n = 1 + (unsigned)(test_rand(&rs) % 64);
		unsigned b0 = (unsigned)(test_rand(&rs) % (C_BLOCKS - n + 1));

		ssize_t w;

		for (unsigned k = 0; k < n; k++)
			block_c(buf + k * 4096, b0 + k, atomic_fetch_add(&c_stamp, 1));
		/* Without copying GC the small device can fill up with partly live buckets:
		 * a short write or ENOSPC is legal (whole blocks, a prefix). */
		w = rd_fs_write(fs, ino, buf, n * 4096, (uint64_t)b0 * 4096, 0);
		CHECK(w == (ssize_t)n * 4096 || w == -ENOSPC || (w > 0 && w % 4096 == 0));
		if (w != (ssize_t)n * 4096)
			atomic_fetch_add(&c_enospc, 1);
	}
	return NULL;
}

static void read_c_done(void *priv, ssize_t res)
{
	rd_completion_done(priv, res);
}

/* Reader 3 reads asynchronously: small reads then run inline (submitted here, verified and
 * finished on the I/O thread), and a stale pointer found there goes to a data worker. */
static ssize_t read_c(uintptr_t who, void *buf, size_t len, uint64_t off)
{
	struct rd_completion c;

	if (who != 3)
		return rd_fs_read(fs, ino, buf, len, off);
	rd_completion_init(&c);
	rd_fs_read_async(fs, ino, buf, len, off, read_c_done, &c);
	return rd_completion_wait(&c);
}

static void *reader_c(void *arg)
{
	uint64_t rs = base_seed * 37 + (uintptr_t)arg;
	static __thread uint8_t buf[C_BLOCKS * 4096];
	double end = du_now() + C_SECONDS;

	while (du_now() < end) {
		unsigned n = 1 + (unsigned)(test_rand(&rs) % C_BLOCKS);
		unsigned b0 = (unsigned)(test_rand(&rs) % (C_BLOCKS - n + 1));

		if ((uintptr_t)arg == 3 && test_rand(&rs) % 2)
			n = 1 + n % 16;		/* small: the inline path */
		b0 = b0 < C_BLOCKS - n ? b0 : C_BLOCKS - n;
		CHECK_EQ(read_c((uintptr_t)arg, buf, n * 4096, (uint64_t)b0 * 4096), n * 4096);
		for (unsigned k = 0; k < n; k++)
			if (!block_ok(buf + k * 4096, b0 + k)) {
				fprintf(stderr, "phase C: block %u read back torn or misplaced\n",
					b0 + k);
				exit(1);
			}
	}
	return NULL;
}

static void phase_c(void)
{
	struct du_geo g = { .size = 32 << 20, .node_size = 64 << 10 };
	static uint8_t buf[C_BLOCKS * 4096];
	pthread_t th[4];
	struct rd_fs_stats st;
	char path[128];
	uint64_t inos[1];

	du_format(path, "conc-c", &g);
	fs = du_open(path);
	ino = du_create(fs, "reused");
	for (unsigned b = 0; b < C_BLOCKS; b++)
		block_c(buf + b * 4096, b, atomic_fetch_add(&c_stamp, 1));
	du_write(fs, ino, buf, sizeof(buf), 0);
	for (uintptr_t i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, i < 2 ? writer_c : reader_c, (void *)i) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	inos[0] = ino;
	du_check_accounting(fs, inos, 1);
	rd_fs_stats(fs, &st);
	printf("phase C: %llu block writes (%llu short or ENOSPC), %llu reads looked up again "
	       "after a bucket reuse\n", (unsigned long long)atomic_load(&c_stamp),
	       (unsigned long long)atomic_load(&c_enospc), (unsigned long long)st.stale_retries);
	CHECK_EQ(st.csum_errors, 0);
	CHECK_OK(rd_fs_close(fs));
	unlink(path);
}

int main(void)
{
	struct du_geo g = { .size = 256 << 20 };
	uint8_t *init;
	char path[128];
	double t0;

	base_seed = test_seed();
	du_format(path, "conc", &g);
	fs = du_open(path);
	ino = du_create(fs, "shared");
	init = malloc(FILE_SIZE);
	CHECK(init);
	for (unsigned c = 0; c < NCELLS; c++)
		cell_a(init + (uint64_t)c * CELL, c, 0);
	du_write(fs, ino, init, FILE_SIZE, 0);
	free(init);

	t0 = du_now();
	run_phase(writer_a);
	check_a();
	run_phase(writer_b);
	check_b();
	{
		uint64_t inos[1] = { ino };

		du_check_accounting(fs, inos, 1);
	}
	/* And the same after a reopen. */
	CHECK_OK(rd_fs_close(fs));
	fs = du_open(path);
	check_b();
	CHECK_OK(rd_fs_close(fs));
	unlink(path);
	phase_c();
	printf("test_data_concurrent: ok (%d writers, %d unaligned writes, %.1f s)\n", NT,
	       NT * (WRITES_A + WRITES_B), du_now() - t0);
	return 0;
}
