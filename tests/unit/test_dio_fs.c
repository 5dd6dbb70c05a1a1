/*
 * test_dio_fs.c - direct writes into real files: the dio engine over the filesystem's sink
 * (engine/fs/dio_fs.c), through the engine API with in-process sources.
 *
 *  1. Equivalence: random writes (aligned or not, chunk sizes that are block multiples or
 *     not, every strategy, both issue modes, windows 1..8), mixed with ordinary writes and
 *     truncates, give exactly the bytes of an in-memory model; also after a reopen.
 *  2. Concurrent overlapping writes (unaligned, several at once, plus ordinary writes into
 *     the same range) all finish (no deadlock between range locks, dio workers and data
 *     workers), and every byte comes from one of the writers that covered it.
 *  3. ENOSPC part-way: a short write on a chunk boundary, the file exactly that prefix,
 *     accounting consistent, the same after a reopen; for every strategy.
 *  4. dsync: a direct write with dsync survives a power cut.
 *  5. The caller going away mid-write (rd_dio_mem_exit) leaves exactly a prefix ending on a
 *     chunk boundary.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data_util.h"
#include "refdio/dio.h"
#include "refdio/dio_fs.h"
#include "test_dio_util.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)

static uint64_t rng;
/* Every file with data in the main image (the accounting check sums over all of them). */
static uint64_t all_inos[4];
static size_t nr_inos;

static uint64_t new_file(struct rd_fs *fs, const char *name)
{
	uint64_t ino = du_create(fs, name);

	CHECK(nr_inos < 4);
	all_inos[nr_inos++] = ino;
	return ino;
}

static struct rd_dio *dio_new(void)
{
	struct rd_dio_opts o = { .workers = 3 };
	struct rd_dio *d;

	CHECK_OK(rd_dio_create(&o, &d));
	return d;
}

/* A mem source over a fresh buffer filled with pattern seed (positions as file offsets). */
static struct rd_dio_mem *mem_pattern(size_t len, uint64_t seed, uint64_t off)
{
	struct rd_dio_mem *m;

	CHECK_OK(rd_dio_mem_alloc(len, &m));
	pat_fill(rd_dio_mem_base(m), len, seed, off);
	return m;
}

static long dio_write(struct rd_fs *fs, struct rd_dio *d, uint64_t ino, struct rd_dio_mem *m,
		      size_t len, const struct rd_dio_args *a)
{
	struct rd_dio_source *src;

	CHECK_OK(rd_dio_source_mem(m, 0, len, &src));
	return rd_fs_dio_pwrite(fs, d, ino, src, a);
}

static void check_model(struct rd_fs *fs, uint64_t ino, const uint8_t *model, uint64_t size)
{
	uint8_t *buf = malloc(size + 1);

	CHECK(buf);
	CHECK_EQ(du_stat(fs, ino).size, size);
	CHECK_EQ(rd_fs_read(fs, ino, buf, size + 1, 0), size);
	if (memcmp(buf, model, size)) {
		for (uint64_t i = 0; i < size; i++) {
			if (buf[i] != model[i]) {
				fprintf(stderr, "first difference at %llu\n", (unsigned long long)i);
				break;
			}
		}
		CHECK(!"file differs from the model");
	}
	free(buf);
}

/* ---- 1. equivalence ------------------------------------------------------------------ */

#define EQ_SPACE (12 * MIB)

static void t_equivalence(struct rd_fs *fs, struct rd_dio *d)
{
	static const size_t chunks[] = { 0, 64 * KIB, 256 * KIB, 1 * MIB, 100 * KIB, 12 * KIB };
	uint64_t ino = new_file(fs, "equiv"), size = 0;
	uint8_t *model = calloc(1, EQ_SPACE);
	unsigned iters = 60 / TEST_DIO_SCALE + 8;

	CHECK(model);
	for (unsigned it = 0; it < iters; it++) {
		unsigned s = it % RD_DIO_NR_STRATEGIES, is = (it / RD_DIO_NR_STRATEGIES) % 2;
		uint64_t off = test_rand(&rng) % (8 * MIB), len = 1 + test_rand(&rng) % (3 * MIB);
		uint64_t seed = test_rand(&rng);
		struct rd_dio_args a = { .strategy = s, .issue = is,
					 .window = 1 + test_rand(&rng) % 8,
					 .chunk = chunks[test_rand(&rng) % 6],
					 .dsync = test_rand(&rng) % 8 == 0 };
		unsigned kind = test_rand(&rng) % 8;
		struct rd_dio_mem *m;
		long res;

		if (kind == 0)
			off &= ~(uint64_t)4095;		/* aligned start */
		if (kind == 1)
			len = (len + 4095) & ~(uint64_t)4095;	/* whole blocks */
		if (kind == 2)
			len = 1 + test_rand(&rng) % 5000;	/* tiny */
		a.off = off;
		m = mem_pattern(len, seed, off);
		if (kind == 3) {
			/* An ordinary write, for contrast. */
			res = rd_fs_write(fs, ino, rd_dio_mem_base(m), len, off, 0);
		} else if (kind == 4) {
			uint64_t ts = test_rand(&rng) % (size + 1);

			du_truncate(fs, ino, ts);
			if (ts < size)
				memset(model + ts, 0, size - ts);
			size = ts;
			res = dio_write(fs, d, ino, m, len, &a);
		} else {
			res = dio_write(fs, d, ino, m, len, &a);
		}
		if (res != (long)len)
			fprintf(stderr, "iteration %u: %s/%s off %llu len %llu chunk %zu: %ld\n",
				it, rd_dio_strategy_name(s), rd_dio_issue_name(is),
				(unsigned long long)off, (unsigned long long)len, a.chunk, res);
		CHECK_EQ(res, len);
		pat_fill(model + off, len, seed, off);
		if (off + len > size)
			size = off + len;
		rd_dio_mem_exit(m);
		check_model(fs, ino, model, size);
	}
	CHECK_OK(rd_fs_fsync(fs, ino, false));
	du_check_accounting(fs, all_inos, nr_inos);
	free(model);
}

/* ---- 2. concurrent overlapping writes ----------------------------------------------- */

#define CONC_N 5

struct conc_write {
	uint64_t off, len, seed;
	struct rd_dio_mem *m;
	long res;
	bool done, plain;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
};

static void conc_done(void *priv, long res)
{
	struct conc_write *c = priv;

	pthread_mutex_lock(c->lock);
	c->res = res;
	c->done = true;
	pthread_cond_broadcast(c->cond);
	pthread_mutex_unlock(c->lock);
}

static void conc_plain_done(void *priv, ssize_t res)
{
	conc_done(priv, (long)res);
}

static void t_concurrent(struct rd_fs *fs, struct rd_dio *d)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	uint64_t ino = new_file(fs, "conc");
	unsigned rounds = 24 / TEST_DIO_SCALE + 2;
	uint8_t *buf = malloc(8 * MIB);

	CHECK(buf);
	for (unsigned r = 0; r < rounds; r++) {
		struct conc_write cw[CONC_N];
		uint64_t end = 0;

		du_truncate(fs, ino, 0);
		for (unsigned i = 0; i < CONC_N; i++) {
			struct conc_write *c = &cw[i];

			memset(c, 0, sizeof(*c));
			c->lock = &lock;
			c->cond = &cond;
			c->off = test_rand(&rng) % (2 * MIB);
			c->len = 1 + test_rand(&rng) % (4 * MIB);
			c->seed = test_rand(&rng);
			c->plain = i == CONC_N - 1;
			c->m = mem_pattern(c->len, c->seed, c->off);
			if (c->off + c->len > end)
				end = c->off + c->len;
		}
		for (unsigned i = 0; i < CONC_N; i++) {
			struct conc_write *c = &cw[i];
			struct rd_dio_args a = { .off = c->off, .strategy = test_rand(&rng) % 4,
						 .issue = test_rand(&rng) % 2,
						 .window = 1 + test_rand(&rng) % 8,
						 .chunk = (i % 2) ? 256 * KIB : 100 * KIB,
						 .done = conc_done, .priv = c };
			struct rd_dio_source *src;

			if (c->plain) {
				rd_fs_write_async(fs, ino, rd_dio_mem_base(c->m), c->len, c->off,
						  0, conc_plain_done, c);
				continue;
			}
			CHECK_OK(rd_dio_source_mem(c->m, 0, c->len, &src));
			CHECK_OK(rd_fs_dio_submit(fs, d, ino, src, &a, NULL));
		}
		pthread_mutex_lock(&lock);
		for (unsigned i = 0; i < CONC_N; i++)
			while (!cw[i].done)
				pthread_cond_wait(&cond, &lock);
		pthread_mutex_unlock(&lock);

		CHECK_EQ(du_stat(fs, ino).size, end);
		CHECK_EQ(rd_fs_read(fs, ino, buf, end, 0), end);
		for (uint64_t o = 0; o < end; o++) {
			bool ok = false, covered = false;

			for (unsigned i = 0; i < CONC_N && !ok; i++) {
				if (o < cw[i].off || o >= cw[i].off + cw[i].len)
					continue;
				covered = true;
				ok = buf[o] == ((const uint8_t *)rd_dio_mem_base(cw[i].m))[o - cw[i].off];
			}
			if (!covered)
				ok = buf[o] == 0;
			if (!ok)
				fprintf(stderr, "round %u: byte %llu from no writer\n", r,
					(unsigned long long)o);
			CHECK(ok);
		}
		for (unsigned i = 0; i < CONC_N; i++) {
			CHECK_EQ(cw[i].res, cw[i].len);
			rd_dio_mem_exit(cw[i].m);
		}
	}
	du_check_accounting(fs, all_inos, nr_inos);
	free(buf);
}

/* ---- 3. ENOSPC part-way ------------------------------------------------------------- */

static void t_enospc(void)
{
	struct du_geo g = { .size = 48 << 20, .node_size = 64 << 10 };
	const size_t len = 64 * MIB;
	struct rd_dio_mem *m = mem_pattern(len, 7, 0);
	struct rd_dio *d = dio_new();
	char path[128];
	struct rd_fs *fs;
	uint64_t ino;

	du_format(path, "diofs-enospc", &g);
	fs = du_open(path);
	ino = du_create(fs, "full");
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct rd_dio_args a = { .off = 0, .strategy = s, .window = 4, .chunk = MIB };
		size_t chunk = s == RD_DIO_BOUNCE64 ? 256 * KIB : MIB;
		long res;

		du_truncate(fs, ino, 0);
		CHECK_OK(rd_fs_fsync(fs, ino, false));	/* the freed space is reusable */
		if (s == RD_DIO_BOUNCE64)
			a.chunk = 0;
		res = dio_write(fs, d, ino, m, len, &a);
		printf("%-8s ENOSPC after %ld MiB\n", rd_dio_strategy_name(s), res >> 20);
		CHECK(res > 0 && res < (long)len);
		CHECK_EQ(res % (long)chunk, 0);
		CHECK_EQ(du_stat(fs, ino).size, res);
		CHECK_EQ(du_extent_sectors(fs, ino, NULL), (uint64_t)res >> 9);
		du_check_accounting(fs, &ino, 1);
		{
			uint8_t *buf = malloc((size_t)res);

			CHECK(buf);
			CHECK_EQ(rd_fs_read(fs, ino, buf, (size_t)res, 0), res);
			CHECK_OK(pat_check(buf, (size_t)res, 7, 0));
			free(buf);
		}
		if (s == RD_DIO_NR_STRATEGIES - 1) {
			/* What was reported is on disk. */
			CHECK_OK(rd_fs_close(fs));
			fs = du_open(path);
			CHECK_EQ(du_stat(fs, ino).size, res);
			du_check_accounting(fs, &ino, 1);
		}
	}
	rd_dio_destroy(d);
	CHECK_OK(rd_fs_close(fs));
	rd_dio_mem_exit(m);
	unlink(path);
}

/* ---- 4. dsync survives a power cut ---------------------------------------------------- */

static void t_dsync(void)
{
	struct du_geo g = { .size = 256 << 20 };
	const size_t len = 3 * MIB + 12345;
	struct rd_dio_mem *m = mem_pattern(len, 9, 777);
	char path[128];
	uint64_t inos[RD_DIO_NR_STRATEGIES];
	struct rd_fs *fs;
	struct rd_dio *d;

	du_format(path, "diofs-dsync", &g);
	fs = du_open(path);
	d = dio_new();
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct rd_dio_args a = { .off = 777, .strategy = s, .dsync = true };
		char name[16];

		snprintf(name, sizeof(name), "f%u", s);
		inos[s] = du_create(fs, name);
		CHECK_OK(rd_fs_fsync(fs, RD_ROOT_INO, false));	/* the name itself */
		CHECK_EQ(dio_write(fs, d, inos[s], m, len, &a), len);
	}
	rd_dio_destroy(d);
	rd_fs_crash(fs);
	fs = du_open(path);
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		uint8_t *buf = malloc(len + 777);

		CHECK(buf);
		CHECK_EQ(du_stat(fs, inos[s]).size, len + 777);
		CHECK_EQ(rd_fs_read(fs, inos[s], buf, len + 777, 0), len + 777);
		for (unsigned i = 0; i < 777; i++)
			CHECK(buf[i] == 0);
		CHECK_OK(pat_check(buf + 777, len, 9, 777));
		free(buf);
	}
	du_check_accounting(fs, inos, RD_DIO_NR_STRATEGIES);
	CHECK_OK(rd_fs_close(fs));
	rd_dio_mem_exit(m);
	unlink(path);
}

/* ---- 5. the caller goes away ------------------------------------------------------------ */

struct gone_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	long res;
};

static void gone_done(void *priv, long res)
{
	struct gone_wait *g = priv;

	pthread_mutex_lock(&g->lock);
	g->res = res;
	g->done = true;
	pthread_cond_signal(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void t_gone(struct rd_fs *fs, struct rd_dio *d)
{
	const size_t len = 48 * MIB / TEST_DIO_SCALE;
	uint64_t ino = new_file(fs, "gone");
	uint8_t *buf = malloc(len);
	unsigned cut = 0;

	CHECK(buf);
	for (unsigned r = 0; r < 12; r++) {
		struct gone_wait g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
		struct rd_dio_args a = { .off = 0, .strategy = r % 3, .issue = r % 2,
					 .chunk = 256 * KIB, .window = 4,
					 .done = gone_done, .priv = &g };
		struct rd_dio_mem *m = mem_pattern(len, 100 + r, 0);
		struct rd_dio_source *src;
		uint64_t size;

		du_truncate(fs, ino, 0);
		CHECK_OK(rd_dio_source_mem(m, 0, len, &src));
		CHECK_OK(rd_fs_dio_submit(fs, d, ino, src, &a, NULL));
		sleep_us((unsigned)(test_rand(&rng) % 30000));
		rd_dio_mem_exit(m);	/* the owner exits: its memory goes */
		pthread_mutex_lock(&g.lock);
		while (!g.done)
			pthread_cond_wait(&g.cond, &g.lock);
		pthread_mutex_unlock(&g.lock);

		size = du_stat(fs, ino).size;
		if (g.res == -ESRCH) {
			CHECK_EQ(size, 0);
		} else {
			CHECK(g.res > 0);
			CHECK_EQ(g.res % (long)(256 * KIB), 0);
			CHECK_EQ(size, g.res);
			if (g.res < (long)len)
				cut++;
			CHECK_EQ(rd_fs_read(fs, ino, buf, len, 0), size);
			CHECK_OK(pat_check(buf, size, 100 + r, 0));
		}
	}
	printf("caller gone: %u of 12 writes cut short\n", cut);
	du_check_accounting(fs, all_inos, nr_inos);
	free(buf);
}

int main(void)
{
	struct du_geo g = { .size = 512 << 20 };
	char path[128];
	struct rd_fs *fs;
	struct rd_dio *d;
	uint64_t bad = 0;

	rng = test_seed() | 1;
	du_format(path, "diofs", &g);
	fs = du_open(path);
	d = dio_new();

	/* Bad arguments: nothing starts, the source is consumed. */
	{
		struct rd_dio_args a = { .done = conc_done, .priv = NULL };
		struct rd_dio_mem *m = mem_pattern(4096, 1, 0);
		struct rd_dio_source *src;

		CHECK_OK(rd_dio_source_mem(m, 0, 4096, &src));
		CHECK_EQ(rd_fs_dio_submit(fs, d, RD_ROOT_INO, src, &a, NULL), -EISDIR);
		CHECK_OK(rd_dio_source_mem(m, 0, 4096, &src));
		CHECK_EQ(rd_fs_dio_submit(fs, d, 999999, src, &a, NULL), -ENOENT);
		rd_dio_mem_exit(m);
	}

	t_equivalence(fs, d);
	t_concurrent(fs, d);
	t_gone(fs, d);
	rd_dio_destroy(d);
	CHECK_OK(rd_fs_close(fs));
	fs = du_open(path);
	{
		struct rd_fs_stats st;

		rd_fs_stats(fs, &st);
		bad = st.csum_errors;
	}
	CHECK_EQ(bad, 0);
	CHECK_OK(rd_fs_close(fs));
	unlink(path);

	t_enospc();
	t_dsync();
	return 0;
}
