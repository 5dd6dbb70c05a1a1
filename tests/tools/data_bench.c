/*
 * data_bench.c - throughput of large aligned writes and reads through the data path.
 * Usage: data_bench [DIR [TOTAL_MIB [CHUNK_MIB [WINDOW]]]]   (defaults: /tmp 1024 8 4)
 *
 * Formats an image in DIR (sized for the data), then:
 *   write   rd_fs_write of CHUNK-sized aligned buffers, one after the other, then fsync;
 *   window  the chunk-level API (rd_data_wr_*) with WINDOW chunks in flight, committed in
 *           file order, then fsync: what the direct-write engine builds on;
 *   read    rd_fs_read of CHUNK-sized pieces.
 * Prints MiB/s for each. Not a test: run it by hand (scripts, benchmarks doc).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/data_util.h"
#include "data_int.h"

struct slot {
	struct rd_data_wr *wr;
	struct rd_completion w;
};

static double run_window(struct rd_fs *fs, uint64_t ino, const uint8_t *buf, size_t chunk,
			 uint64_t total, unsigned window)
{
	struct slot *sl = calloc(window, sizeof(*sl));
	struct rd_inode *ip;
	uint64_t next = 0, done = 0;
	unsigned head = 0, inflight = 0;
	double t0 = du_now();

	CHECK(sl);
	CHECK_OK(rd_inode_get(fs, ino, &ip));
	while (done < total) {
		/* Keep the window full; commit the oldest (file order) once it is written. */
		while (inflight < window && next < total) {
			struct slot *s = &sl[(head + inflight) % window];

			CHECK_OK(rd_data_wr_begin(fs, ip, next, chunk, 0, &s->wr));
			rd_completion_init(&s->w);
			rd_data_wr_submit(fs, s->wr, buf, rd_data_wait_done, &s->w);
			next += chunk;
			inflight++;
		}
		CHECK_OK((int)rd_completion_wait(&sl[head].w));
		CHECK_EQ(rd_data_wr_commit(fs, sl[head].wr, NULL), chunk);
		head = (head + 1) % window;
		inflight--;
		done += chunk;
	}
	CHECK_OK(rd_fs_fsync(fs, ino, false));
	rd_inode_put(fs, ip);
	free(sl);
	return du_now() - t0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	uint64_t total = (argc > 2 ? strtoull(argv[2], NULL, 0) : 1024) << 20;
	size_t chunk = (argc > 3 ? strtoull(argv[3], NULL, 0) : 8) << 20;
	unsigned window = argc > 4 ? (unsigned)atoi(argv[4]) : 4;
	struct du_geo g = { .size = total * 2 + (256 << 20) };
	uint64_t a, b;
	uint8_t *buf;
	char path[128];
	struct rd_fs *fs;
	double t0, tw, tn, tr;

	if (!chunk || !window || chunk > RD_DATA_WR_MAX || total % chunk) {
		fprintf(stderr, "usage: data_bench [DIR [TOTAL_MIB [CHUNK_MIB (<= 64) "
			"[WINDOW]]]]: TOTAL a multiple of CHUNK\n");
		return 2;
	}
	setenv("RD_TEST_DIR", dir, 1);
	buf = rd_io_buf_alloc(chunk);
	CHECK(buf);
	du_fill(buf, 5, 0, chunk);
	du_format(path, "bench", &g);
	fs = du_open(path);
	a = du_create(fs, "write");
	b = du_create(fs, "window");

	t0 = du_now();
	for (uint64_t off = 0; off < total; off += chunk)
		du_write(fs, a, buf, chunk, off);
	CHECK_OK(rd_fs_fsync(fs, a, false));
	tw = du_now() - t0;
	tn = run_window(fs, b, buf, chunk, total, window);
	t0 = du_now();
	for (uint64_t off = 0; off < total; off += chunk)
		CHECK_EQ(rd_fs_read(fs, a, buf, chunk, off), chunk);
	tr = du_now() - t0;
	printf("data_bench: %llu MiB in %zu MiB chunks on %s: write %.0f MiB/s, "
	       "window(%u) %.0f MiB/s, read %.0f MiB/s\n", (unsigned long long)(total >> 20),
	       chunk >> 20, dir, (double)(total >> 20) / tw, window,
	       (double)(total >> 20) / tn, (double)(total >> 20) / tr);
	CHECK_OK(rd_fs_close(fs));
	unlink(path);
	rd_io_buf_free(buf);
	return 0;
}
