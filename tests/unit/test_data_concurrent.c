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
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "data_util.h"

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
	printf("test_data_concurrent: ok (%d writers, %d unaligned writes, %.1f s)\n", NT,
	       NT * (WRITES_A + WRITES_B), du_now() - t0);
	return 0;
}
