/*
 * bench_matrix.c - the strategy matrix: one direct-write ioctl per run, from the bench's
 * own memory (the pattern), into a fresh file of the mount, with the daemon's figures
 * around it; and the host row of each size (O_DIRECT writes of 64 MiB blocks to the
 * baseline directory, what `dd oflag=direct bs=64M` does), run in the same loop.
 *
 * Owns: the cells and their runs. Per refdio run, in this order: the stats snapshot with
 * REFDIO_STATS_RESET (peaks start from zero), VmHWM reset (clear_refs), daemon CPU read;
 * the write; daemon CPU, VmHWM and stats read again; a sample of the bytes read back and
 * compared with the pattern; the file unlinked and syncfs() so its space is free for the
 * next cell. Only the write is timed.
 *
 * Results: ENOBUFS from the ioctl (or as the async result) marks the cell refused (the
 * daemon says the write can never fit its memory budget); any other error, a short write
 * or differing bytes mark it failed with the reason; a signal marks the run interrupted.
 * The bench refuses nothing itself: the only cells it does not run are pin cells whose
 * write would not fit in the machine's available memory (skipped, with the figures).
 *
 * Must never: run a cell after bench_stop, or leave a cell's file behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_cell_label(const struct bench_cell *c, char *buf, size_t len)
{
	char sz[24], ch[24], w[24] = "";

	bench_size_str(c->size, sz, sizeof(sz));
	if (c->host) {
		snprintf(buf, len, "host O_DIRECT 64M blocks, %s", sz);
		return;
	}
	if (c->window)
		snprintf(w, sizeof(w), " W=%u", c->window);
	snprintf(buf, len, "%s%s C=%s %s, %s", bench_strategy_name(c->strategy), w,
		 bench_size_str(c->chunk, ch, sizeof(ch)), bench_issue_name(c->issue), sz);
}

static struct bench_cell *add_cell(struct bench_result *r, unsigned *cap)
{
	struct bench_cell *c;

	if (r->nr_cells == *cap) {
		unsigned ncap = *cap ? *cap * 2 : 64;
		void *p = realloc(r->cells, ncap * sizeof(*c));

		if (!p)
			return NULL;
		r->cells = p;
		*cap = ncap;
	}
	c = &r->cells[r->nr_cells++];
	memset(c, 0, sizeof(*c));
	return c;
}

int bench_matrix_build(const struct bench_opts *o, struct bench_result *r)
{
	static const struct bench_list bounce_chunk = { { BENCH_BOUNCE64_CHUNK }, 1 };
	static const struct bench_list no_window = { { 0 }, 1 };
	unsigned cap = 0;

	if (o->no_matrix)
		return 0;
	for (unsigned z = 0; z < o->sizes.n; z++) {
		struct bench_cell *c = add_cell(r, &cap);

		if (!c)
			return -ENOMEM;
		c->host = true;
		c->size = o->sizes.v[z];
		for (unsigned s = 0; s < o->strategies.n; s++) {
			unsigned st = (unsigned)o->strategies.v[s];
			const struct bench_list *chunks = st == REFDIO_STRATEGY_BOUNCE64 ?
				&bounce_chunk : &o->chunks;
			const struct bench_list *windows = st == REFDIO_STRATEGY_REFCTX ?
				&o->windows : &no_window;

			for (unsigned k = 0; k < chunks->n; k++)
				for (unsigned w = 0; w < windows->n; w++)
					for (unsigned i = 0; i < o->issues.n; i++) {
						c = add_cell(r, &cap);
						if (!c)
							return -ENOMEM;
						c->strategy = st;
						c->chunk = chunks->v[k];
						c->window = (unsigned)windows->v[w];
						c->issue = (unsigned)o->issues.v[i];
						c->size = o->sizes.v[z];
					}
		}
	}
	for (unsigned i = 0; i < r->nr_cells; i++) {
		r->cells[i].runs = calloc(o->repeat, sizeof(struct bench_cell_run));
		if (!r->cells[i].runs)
			return -ENOMEM;
	}
	return 0;
}

static int stats_get(int fd, bool reset, struct refdio_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->flags = reset ? REFDIO_STATS_RESET : 0;
	return ioctl(fd, REFDIO_IOC_STATS, st) ? -errno : 0;
}

/* The write itself: 0 with *written, or -errno. */
static int dio_write(int fd, const struct bench_opts *o, const struct bench_cell *c,
		     const struct bench_pattern *p, uint64_t *written, double *daemon_s)
{
	struct refdio_dio_write io = {
		.buf = (uint64_t)(uintptr_t)p->addr,
		.len = c->size,
		.flags = o->dsync ? REFDIO_DIO_DSYNC : 0,
		.strategy = c->strategy,
		.window = c->window,
		.chunk = (uint32_t)c->chunk,
		.issue = c->issue,
	};
	struct refdio_dio_wait wt = { 0 };

	if (!o->async) {
		if (ioctl(fd, REFDIO_IOC_DIO_WRITE, &io))
			return -errno;
		*written = (uint64_t)io.result;
		*daemon_s = (double)io.elapsed_ns / 1e9;
		return 0;
	}
	if (ioctl(fd, REFDIO_IOC_DIO_SUBMIT, &io))
		return -errno;
	wt.id = io.id;
	while (ioctl(fd, REFDIO_IOC_DIO_WAIT, &wt)) {
		if (errno == EINTR && !bench_stop)
			continue;
		return -errno;	/* on a stop, the unmount cuts the write at a chunk boundary */
	}
	if (wt.result < 0)
		return (int)wt.result;
	*written = (uint64_t)wt.result;
	*daemon_s = (double)wt.elapsed_ns / 1e9;
	return 0;
}

static void run_fail(struct bench_cell *c, struct bench_cell_run *run, enum bench_status st,
		     int err, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void run_fail(struct bench_cell *c, struct bench_cell_run *run, enum bench_status st,
		     int err, const char *fmt, ...)
{
	va_list ap;

	run->status = st;
	run->err = err;
	if (c->reason[0] && c->status == st)
		return;		/* the first reason of this kind stays */
	c->status = st;
	c->err = err;
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

static void verify(const struct bench_opts *o, struct bench_cell *c, struct bench_cell_run *run,
		   const char *path, const struct bench_pattern *p)
{
	int fd, ret;

	if (o->no_verify || run->status != BST_OK)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		run_fail(c, run, BST_FAILED, errno, "read-back: %s", strerror(errno));
		return;
	}
	ret = bench_pattern_verify(p, fd, c->size, &run->verify_bytes, &run->verify_bad);
	close(fd);
	if (ret)
		run_fail(c, run, BST_FAILED, -ret, "read-back: %s", strerror(-ret));
	else if (run->verify_bad)
		run_fail(c, run, BST_FAILED, EIO, "verify: %" PRIu64 " of %" PRIu64
			 " sampled bytes differ from what was written", run->verify_bad,
			 run->verify_bytes);
}

static void run_refdio(const struct bench_opts *o, struct bench_env *e, struct bench_cell *c,
		       unsigned rep, const struct bench_pattern *p)
{
	struct bench_cell_run *run = &c->runs[rep];
	struct refdio_stats st;
	char path[PATH_MAX + 32];
	double t0, cpu0;
	uint64_t written = 0;
	int fd, ret;

	snprintf(path, sizeof(path), "%s/cell.dat", e->work);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		run_fail(c, run, BST_FAILED, errno, "open %s: %s", path, strerror(errno));
		return;
	}
	ret = stats_get(e->work_fd, true, &st);
	if (ret) {
		run_fail(c, run, BST_FAILED, -ret, "stats: %s", strerror(-ret));
		goto out;
	}
	if (e->clear_refs_ok)
		bench_proc_reset_hwm(e->daemon);
	cpu0 = bench_proc_cpu(e->daemon);

	t0 = now_s();
	ret = dio_write(fd, o, c, p, &written, &run->daemon_s);
	run->seconds = now_s() - t0;

	run->cpu_s = cpu0 >= 0 ? bench_proc_cpu(e->daemon) - cpu0 : -1;
	run->rss_peak = e->clear_refs_ok ? bench_proc_hwm(e->daemon) : 0;
	if (!stats_get(e->work_fd, false, &st) && c->strategy >= 1 &&
	    c->strategy <= st.nr_strategies && c->strategy <= REFDIO_STATS_MAX_STRATEGIES) {
		const struct refdio_strategy_stats *x = &st.strategy[c->strategy - 1];

		run->held_peak = x->held_peak;
		run->write_held_peak = x->write_held_peak;
		run->inflight_max = x->inflight_max;
		run->rss_stats = st.rss_bytes;
	}
	run->bytes = written;
	if (ret == -ENOBUFS) {
		char sz[24];

		run_fail(c, run, BST_REFUSED, ENOBUFS, "refused by the daemon (ENOBUFS): a %s "
			 "write with %s can never fit the mount's memory budget%s",
			 bench_size_str(c->size, sz, sizeof(sz)), bench_strategy_name(c->strategy),
			 o->max_held ? " (--max-held)" : "");
	} else if (ret && bench_stop) {
		run_fail(c, run, BST_INTERRUPTED, -ret, "interrupted");
	} else if (ret) {
		run_fail(c, run, BST_FAILED, -ret, "the ioctl failed: %s (errno %d)",
			 strerror(-ret), -ret);
	} else if (written != c->size) {
		if (bench_stop)
			run_fail(c, run, BST_INTERRUPTED, EINTR, "interrupted");
		else
			run_fail(c, run, BST_FAILED, EIO, "short write: %" PRIu64 " of %" PRIu64
				 " bytes", written, c->size);
	} else {
		run->status = BST_OK;
	}
	close(fd);
	fd = -1;
	verify(o, c, run, path, p);
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
	syncfs(e->work_fd);
}

static void run_host(const struct bench_opts *o, struct bench_env *e, struct bench_cell *c,
		     unsigned rep, const struct bench_pattern *p)
{
	struct bench_cell_run *run = &c->runs[rep];
	char path[PATH_MAX + 32];
	uint64_t off = 0;
	double t0;
	int fd;

	snprintf(path, sizeof(path), "%s/host.dat", e->base);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0) {
		run_fail(c, run, BST_FAILED, errno, "open %s: %s", path, strerror(errno));
		return;
	}
	run->cpu_s = -1;
	t0 = now_s();
	while (off < c->size && !bench_stop) {
		uint64_t n = c->size - off < BENCH_HOST_BLOCK ? c->size - off : BENCH_HOST_BLOCK;
		ssize_t w = pwrite(fd, p->addr + off, n, (off_t)off);

		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			break;
		}
		off += (uint64_t)w;
	}
	if (off == c->size && o->dsync)
		fdatasync(fd);
	run->seconds = now_s() - t0;
	run->bytes = off;
	if (off == c->size)
		run->status = BST_OK;
	else if (bench_stop)
		run_fail(c, run, BST_INTERRUPTED, EINTR, "interrupted");
	else
		run_fail(c, run, BST_FAILED, errno, "host write: %s at %" PRIu64,
			 strerror(errno), off);
	close(fd);
	verify(o, c, run, path, p);
	unlink(path);
}

static bool runnable(const struct bench_cell *c)
{
	return c->status != BST_REFUSED && c->status != BST_SKIPPED;
}

/* Pin holds the whole write in the daemon: do not push the machine out of memory. */
static void check_memory(struct bench_cell *c)
{
	uint64_t avail = bench_proc_mem_available();
	char a[24], b[24];

	if (c->host || c->strategy != REFDIO_STRATEGY_PIN || !avail || c->size <= avail / 4 * 3)
		return;
	c->status = BST_SKIPPED;
	snprintf(c->reason, sizeof(c->reason), "pin would hold %s in the daemon and the machine "
		 "has %s available: not run", bench_human((double)c->size, a, sizeof(a)),
		 bench_human((double)avail, b, sizeof(b)));
}

void bench_matrix_run(const struct bench_opts *o, struct bench_env *e, struct bench_result *r)
{
	struct bench_pattern p;
	uint64_t max = 0;
	int ret;

	if (!r->nr_cells)
		return;
	for (unsigned i = 0; i < r->nr_cells; i++)
		if (r->cells[i].size > max)
			max = r->cells[i].size;
	ret = bench_pattern_map(1, max, &p);
	if (ret) {
		bench_progress_clear();
		fprintf(stderr, "refdio bench: mapping the pattern: %s\n", strerror(-ret));
		for (unsigned i = 0; i < r->nr_cells; i++) {
			r->cells[i].status = BST_FAILED;
			r->cells[i].err = -ret;
			snprintf(r->cells[i].reason, sizeof(r->cells[i].reason),
				 "mapping the pattern: %s", strerror(-ret));
		}
		return;
	}
	for (unsigned rep = 0; rep < o->repeat && !bench_stop; rep++) {
		for (unsigned i = 0; i < r->nr_cells && !bench_stop; i++) {
			struct bench_cell *c = &r->cells[i];
			char label[128], what[160];

			if (!rep)
				check_memory(c);
			if (!runnable(c))
				continue;
			bench_cell_label(c, label, sizeof(label));
			snprintf(what, sizeof(what), "matrix %s (run %u/%u)", label, rep + 1,
				 o->repeat);
			bench_progress_begin(what, (double)c->size / bench_progress_rate_get() + 0.2);
			if (c->host)
				run_host(o, e, c, rep, &p);
			else
				run_refdio(o, e, c, rep, &p);
			c->nr_runs = rep + 1;
			bench_progress_end();
			if (c->runs[rep].status == BST_FAILED ||
				   c->runs[rep].status == BST_REFUSED) {
				bench_progress_clear();
				fprintf(stderr, "refdio bench: %s: %s: %s\n", label,
					bench_status_name(c->runs[rep].status), c->reason);
			}
		}
	}
	for (unsigned i = 0; i < r->nr_cells; i++) {
		struct bench_cell *c = &r->cells[i];
		bool all_ok = c->nr_runs > 0;

		for (unsigned k = 0; k < c->nr_runs; k++)
			all_ok = all_ok && c->runs[k].status == BST_OK;
		if (c->status == BST_NOTRUN && all_ok)
			c->status = BST_OK;
		else if (c->status == BST_NOTRUN && bench_stop)
			c->status = BST_INTERRUPTED;
		if (c->status == BST_FAILED)
			r->failures++;
	}
	bench_pattern_unmap(&p);
}
