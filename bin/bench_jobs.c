/*
 * bench_jobs.c - the everyday jobs, issued by the bench itself with io_uring (liburing,
 * like fio's io_uring engine): sequential 1 MiB and random 4 KiB writes and reads at a
 * queue depth, O_DIRECT or buffered, time-based; and a metadata job (create, stat, unlink
 * N files with plain system calls, like fio's filecreate/filestat/filedelete engines).
 * Each job runs on the baseline directory and on the mount, interleaved: repeat r runs
 * baseline then refdio when r is even, refdio then baseline when odd.
 *
 * Owns: one file per job and target (laid out once, untimed, before the job's first run,
 * removed after its last), the io_uring ring of a run, its buffers and the per-I/O
 * latencies. Buffered writes end with fsync() inside the timed span (else they would
 * measure the page cache); buffered reads start cold (fdatasync + POSIX_FADV_DONTNEED).
 *
 * Lifetime: a buffer belongs to the kernel from its submission to its completion; a run
 * never frees buffers or the ring with I/O in flight: on a signal it stops submitting and
 * drains what is in flight first.
 *
 * Must never: touch a file outside the baseline and work directories.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "bench.h"

struct job_spec {
	const char	*name;
	enum bench_job_kind kind;
	uint32_t	bs;
	unsigned	qd;
	bool		direct;
};

static const struct job_spec specs[] = {
	{ "seq-write-qd1-direct", JOB_SEQ_WRITE, 1u << 20, 1, true },
	{ "seq-write-qd8-direct", JOB_SEQ_WRITE, 1u << 20, 8, true },
	{ "seq-read-qd1-direct", JOB_SEQ_READ, 1u << 20, 1, true },
	{ "seq-read-qd8-direct", JOB_SEQ_READ, 1u << 20, 8, true },
	{ "rand-write-qd1-direct", JOB_RAND_WRITE, 4096, 1, true },
	{ "rand-write-qd32-direct", JOB_RAND_WRITE, 4096, 32, true },
	{ "rand-read-qd1-direct", JOB_RAND_READ, 4096, 1, true },
	{ "rand-read-qd32-direct", JOB_RAND_READ, 4096, 32, true },
	{ "seq-write-qd1-buffered", JOB_SEQ_WRITE, 1u << 20, 1, false },
	{ "seq-write-qd8-buffered", JOB_SEQ_WRITE, 1u << 20, 8, false },
	{ "seq-read-qd1-buffered", JOB_SEQ_READ, 1u << 20, 1, false },
	{ "seq-read-qd8-buffered", JOB_SEQ_READ, 1u << 20, 8, false },
	{ "rand-write-qd1-buffered", JOB_RAND_WRITE, 4096, 1, false },
	{ "rand-write-qd32-buffered", JOB_RAND_WRITE, 4096, 32, false },
	{ "rand-read-qd1-buffered", JOB_RAND_READ, 4096, 1, false },
	{ "rand-read-qd32-buffered", JOB_RAND_READ, 4096, 32, false },
	{ "metadata", JOB_META, 0, 1, false },
};
#define NR_SPECS	(sizeof(specs) / sizeof(specs[0]))

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

void bench_jobs_list(FILE *f, const char *indent)
{
	for (size_t i = 0; i < NR_SPECS; i++)
		fprintf(f, "%s%s%s", i ? (i % 3 ? ", " : ",\n") : "", i && !(i % 3) ? indent : "",
			specs[i].name);
	fputc('\n', f);
}

static bool selected(const char *patterns, const char *name, bool *matched, unsigned n)
{
	char buf[512], *save = NULL, *tok;
	bool hit = false;
	unsigned k = 0;

	snprintf(buf, sizeof(buf), "%s", patterns);
	for (tok = strtok_r(buf, ",", &save); tok && k < n; tok = strtok_r(NULL, ",", &save), k++)
		if (!fnmatch(tok, name, 0)) {
			hit = true;
			matched[k] = true;
		}
	return hit;
}

int bench_jobs_build(const struct bench_opts *o, struct bench_result *r)
{
	bool matched[64] = { false };
	unsigned n = 0;

	if (o->jobs && !strcmp(o->jobs, "none"))
		return 0;
	r->jobs = calloc(NR_SPECS, sizeof(*r->jobs));
	if (!r->jobs)
		return -ENOMEM;
	for (size_t i = 0; i < NR_SPECS; i++) {
		struct bench_job *j;

		if (o->jobs && !selected(o->jobs, specs[i].name, matched, 64))
			continue;
		j = &r->jobs[n++];
		snprintf(j->name, sizeof(j->name), "%s", specs[i].name);
		j->kind = specs[i].kind;
		j->bs = specs[i].bs;
		j->qd = specs[i].qd;
		j->direct = specs[i].direct;
		if (j->kind == JOB_META) {
			j->nr_figs = 3;
			j->fig[0] = "create";
			j->fig[1] = "stat";
			j->fig[2] = "unlink";
			j->unit = "ops/s";
		} else {
			j->nr_figs = 1;
			j->fig[0] = j->kind == JOB_SEQ_WRITE || j->kind == JOB_RAND_WRITE ?
				"write" : "read";
			j->unit = "MiB/s";
		}
		j->runs = calloc(2 * o->repeat, sizeof(*j->runs));
		if (!j->runs)
			return -ENOMEM;
	}
	r->nr_jobs = n;
	if (o->jobs) {
		char buf[512], *save = NULL, *tok;
		unsigned k = 0;

		snprintf(buf, sizeof(buf), "%s", o->jobs);
		for (tok = strtok_r(buf, ",", &save); tok && k < 64;
		     tok = strtok_r(NULL, ",", &save), k++)
			if (!matched[k]) {
				fprintf(stderr, "refdio bench: --jobs: '%s' names no job; the jobs "
					"are:\n  ", tok);
				bench_jobs_list(stderr, "  ");
				return -EINVAL;
			}
	}
	return 0;
}

/* ---- latencies ----------------------------------------------------------------------- */

struct lat {
	double	*v;	/* microseconds */
	size_t	n, cap;
};

static void lat_add(struct lat *l, double us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		double *p = cap < (64u << 20) ? realloc(l->v, cap * sizeof(*p)) : NULL;

		if (!p)
			return;		/* keep what we have: percentiles of a prefix */
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void lat_done(struct lat *l, double out[LAT_PCTS])
{
	qsort(l->v, l->n, sizeof(*l->v), cmp_double);
	for (unsigned p = 0; p < LAT_PCTS; p++)
		out[p] = bench_pct_sorted(l->v, l->n, bench_lat_pcts[p]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ---- files --------------------------------------------------------------------------- */

static void fill_random(uint8_t *b, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w = xorshift(&s);

		memcpy(b + i, &w, 8);
	}
}

/* Writes the job's file (size bytes of random data) and syncs it. */
static int lay_out(const char *path, uint64_t size)
{
	void *buf = NULL;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (posix_memalign(&buf, 4096, 1u << 20)) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint64_t off = 0; off < size && !bench_stop; off += 1u << 20) {
		fill_random(buf, 1u << 20, off + 1);
		if (pwrite(fd, buf, 1u << 20, (off_t)off) != 1 << 20) {
			ret = errno ? -errno : -EIO;
			goto out;
		}
	}
	if (fsync(fd))
		ret = -errno;
	if (bench_stop)
		ret = -EINTR;
out:
	free(buf);
	close(fd);
	return ret;
}

/* ---- one data run -------------------------------------------------------------------- */

struct slot {
	void	*buf;
	double	t;
};

static void prep(struct io_uring *ring, const struct bench_job *j, int fd, struct slot *s,
		 uint64_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);	/* never NULL: ring >= qd */

	if (j->kind == JOB_SEQ_WRITE || j->kind == JOB_RAND_WRITE)
		io_uring_prep_write(sqe, fd, s->buf, j->bs, off);
	else
		io_uring_prep_read(sqe, fd, s->buf, j->bs, off);
	io_uring_sqe_set_data(sqe, s);
}

static int data_run(const struct bench_opts *o, const struct bench_job *j, const char *path,
		    struct bench_job_run *run)
{
	bool write = j->kind == JOB_SEQ_WRITE || j->kind == JOB_RAND_WRITE;
	bool seq = j->kind == JOB_SEQ_WRITE || j->kind == JOB_SEQ_READ;
	uint64_t blocks = o->file_size / j->bs, next = 0, rng = 0x9e3779b97f4a7c15ull, done = 0;
	struct slot *slots = NULL;
	struct io_uring ring;
	struct lat lat = { 0 };
	unsigned inflight = 0;
	bool leak = false;
	double t0, t_end;
	int fd, ret = 0;

	fd = open(path, (write ? O_WRONLY : O_RDONLY) | (j->direct ? O_DIRECT : 0) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (!write && !j->direct) {	/* cold: nothing of the file in the page cache */
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	ret = io_uring_queue_init(j->qd < 8 ? 8 : j->qd, &ring, 0);
	if (ret)
		goto out_fd;
	slots = calloc(j->qd, sizeof(*slots));
	if (!slots) {
		ret = -ENOMEM;
		goto out_ring;
	}
	for (unsigned i = 0; i < j->qd; i++) {
		if (posix_memalign(&slots[i].buf, 4096, j->bs)) {
			ret = -ENOMEM;
			goto out_slots;
		}
		fill_random(slots[i].buf, j->bs, i + 7);
	}

	t0 = now_s();
	t_end = t0 + o->runtime;
	for (unsigned i = 0; i < j->qd; i++) {
		uint64_t blk = seq ? next++ % blocks : xorshift(&rng) % blocks;

		slots[i].t = now_s();
		prep(&ring, j, fd, &slots[i], blk * j->bs);
		inflight++;
	}
	io_uring_submit(&ring);
	while (inflight) {
		struct io_uring_cqe *cqe;
		struct slot *s;
		double t;
		int r = io_uring_wait_cqe(&ring, &cqe);

		if (r == -EINTR)
			continue;	/* bench_stop: no new submissions, drain */
		if (r) {
			/* The ring is unusable: its I/O in flight may still land in the
			 * buffers until the kernel cancels it, so they are leaked. */
			ret = r;
			leak = true;
			break;
		}
		s = io_uring_cqe_get_data(cqe);
		t = now_s();
		if (cqe->res != (int)j->bs && !ret)
			ret = cqe->res < 0 ? cqe->res : -EIO;
		io_uring_cqe_seen(&ring, cqe);
		inflight--;
		lat_add(&lat, (t - s->t) * 1e6);
		done++;
		if (!ret && !bench_stop && t < t_end) {
			uint64_t blk = seq ? next++ % blocks : xorshift(&rng) % blocks;

			s->t = now_s();
			prep(&ring, j, fd, s, blk * j->bs);
			inflight++;
			io_uring_submit(&ring);
		}
	}
	if (!ret && write && !j->direct && fsync(fd))
		ret = -errno;
	run->seconds[0] = now_s() - t0;
	run->ops[0] = done;
	run->value[0] = (double)done * j->bs / 1048576.0 / run->seconds[0];
	lat_done(&lat, run->lat_us[0]);
	if (!ret && bench_stop)
		ret = -EINTR;
out_slots:
	for (unsigned i = 0; i < j->qd && !leak; i++)
		free(slots[i].buf);
	if (!leak)
		free(slots);
out_ring:
	io_uring_queue_exit(&ring);
out_fd:
	close(fd);
	return ret;
}

/* ---- one metadata run ---------------------------------------------------------------- */

static int meta_run(const struct bench_opts *o, const char *dir, struct bench_job_run *run)
{
	unsigned made = 0;
	int dfd, ret = 0;

	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (unsigned phase = 0; phase < 3 && !ret; phase++) {
		struct lat lat = { 0 };
		double t0 = now_s();
		unsigned n = phase ? made : o->files;

		for (unsigned i = 0; i < n; i++) {
			char name[32];
			double t = now_s();
			struct stat st;
			int fd;

			if (bench_stop && phase < 2) {
				ret = -EINTR;
				break;
			}
			snprintf(name, sizeof(name), "f%07u", i);
			if (phase == 0) {
				fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
					    0644);
				if (fd < 0 || close(fd)) {
					ret = -errno;
					break;
				}
				made++;
			} else if (phase == 1) {
				if (fstatat(dfd, name, &st, 0)) {
					ret = -errno;
					break;
				}
			} else if (unlinkat(dfd, name, 0) && !ret) {
				ret = -errno;
			}
			lat_add(&lat, (now_s() - t) * 1e6);
		}
		run->seconds[phase] = now_s() - t0;
		run->ops[phase] = lat.n;
		run->value[phase] = run->seconds[phase] > 0 ?
			(double)lat.n / run->seconds[phase] : 0;
		lat_done(&lat, run->lat_us[phase]);
	}
	if (ret) {	/* whatever stopped it, leave no file behind */
		char name[32];

		for (unsigned i = 0; i < made; i++) {
			snprintf(name, sizeof(name), "f%07u", i);
			unlinkat(dfd, name, 0);
		}
	}
	close(dfd);
	rmdir(dir);
	return ret;
}

/* ---- the loop ------------------------------------------------------------------------ */

static void job_fail(struct bench_job *j, struct bench_job_run *run, int err, bool refdio,
		     const char *what)
{
	run->err = -err;
	if (err == -EINTR && bench_stop) {
		run->status = BST_INTERRUPTED;
		return;
	}
	run->status = BST_FAILED;
	if (j->status != BST_FAILED) {
		j->status = BST_FAILED;
		j->err = -err;
		snprintf(j->reason, sizeof(j->reason), "%s on %s: %s (errno %d)", what,
			 refdio ? "refdio" : "the baseline", strerror(-err), -err);
		bench_progress_clear();
		fprintf(stderr, "refdio bench: %s: %s\n", j->name, j->reason);
	}
}

static double job_cost(const struct bench_opts *o, const struct bench_job *j)
{
	return j->kind == JOB_META ? o->files * 3 / 4000.0 + 0.1 : o->runtime + 0.3;
}

void bench_jobs_run(const struct bench_opts *o, struct bench_env *e, struct bench_result *r)
{
	for (unsigned k = 0; k < r->nr_jobs && !bench_stop; k++) {
		struct bench_job *j = &r->jobs[k];
		char path[2][PATH_MAX + 32];
		bool laid = true;

		for (int t = 0; t < 2; t++)
			snprintf(path[t], sizeof(path[t]), "%s/%s%s", t ? e->work : e->base,
				 j->kind == JOB_META ? "meta" : "job", j->kind == JOB_META ? "" :
				 ".dat");
		if (j->kind != JOB_META) {
			char what[96];

			snprintf(what, sizeof(what), "job %s: laying out the files", j->name);
			bench_progress_begin(what, 2.0 * (double)o->file_size /
					     bench_progress_rate_get());
			for (int t = 0; t < 2 && laid; t++) {
				int ret = lay_out(path[t], o->file_size);

				if (ret) {
					struct bench_job_run *run = &j->runs[j->nr_runs++];

					run->refdio = t;
					job_fail(j, run, ret, t, "laying out the file");
					laid = false;
				}
			}
			bench_progress_end();
		}
		for (unsigned rep = 0; rep < o->repeat && laid && !bench_stop; rep++) {
			for (int n = 0; n < 2 && !bench_stop; n++) {
				bool refdio = (rep % 2) ? n == 0 : n == 1;
				struct bench_job_run *run = &j->runs[j->nr_runs++];
				double cpu0 = refdio ? bench_proc_cpu(e->daemon) : -1;
				char what[128];
				int ret;

				snprintf(what, sizeof(what), "job %s on %s (run %u/%u)", j->name,
					 refdio ? "refdio" : "baseline", rep + 1, o->repeat);
				bench_progress_begin(what, job_cost(o, j));
				run->refdio = refdio;
				run->repeat = rep;
				ret = j->kind == JOB_META ? meta_run(o, path[refdio], run) :
					data_run(o, j, path[refdio], run);
				run->cpu_s = cpu0 >= 0 ? bench_proc_cpu(e->daemon) - cpu0 : -1;
				if (ret)
					job_fail(j, run, ret, refdio, "the run");
				else
					run->status = BST_OK;
				bench_progress_end();
			}
		}
		if (j->kind != JOB_META) {
			unlink(path[0]);
			unlink(path[1]);
			syncfs(e->work_fd);
		}
		if (j->status == BST_NOTRUN)
			j->status = bench_stop ? BST_INTERRUPTED : BST_OK;
		if (j->status == BST_FAILED)
			r->failures++;
	}
	for (unsigned k = 0; k < r->nr_jobs; k++)
		if (r->jobs[k].status == BST_NOTRUN && bench_stop)
			r->jobs[k].status = BST_INTERRUPTED;
}
