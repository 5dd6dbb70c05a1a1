/*
 * cmd_bench.c - `refdio bench`: the options, their checks, and the order of a run:
 * prepare (scratch directory, baseline check), start (format, mount), the matrix, the
 * everyday jobs, finish (unmount, fsck, remove), then the table, JSON, CSV and charts.
 *
 * Owns: struct bench_opts and the exit status. Exit 0: everything ran (refused and
 * skipped cells included); 1: a cell or job failed, the image is not fsck-clean, the
 * daemon did not exit 0, or an output could not be written; 2: bad usage or input;
 * 130: interrupted (after cleaning up).
 *
 * Must never: leave the bench's mount, daemon, image or files behind, whatever happens
 * after bench_env_prepare() succeeded: every path from there goes through
 * bench_env_finish().
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cmd.h"

#define GIB	(1ull << 30)

static void bench_usage(FILE *f)
{
	fprintf(f,
"usage: refdio bench [OPTIONS] [--out DIR]\n"
"\n"
"Benchmarks refdio's direct-write strategies side by side, and everyday jobs against the\n"
"same jobs on a directory of the host filesystem, in one run. Formats a scratch image (in\n"
"a new directory under --dir), mounts it with this program's `mount` subcommand, runs the\n"
"strategy matrix and the jobs, unmounts, checks the image with `refdio fsck -n` and\n"
"removes it. Ctrl-C stops at the next chunk boundary and cleans up the same way. Prints a\n"
"table (medians of the repeats, their spread, ratios to the baseline) and a progress line\n"
"on stderr. docs/benchmarks.md explains every figure.\n"
"\n"
"The strategy matrix (one direct-write ioctl per run, from this process's memory: a\n"
"periodic pattern mapped at the cost of 4 MiB, whatever the size; samples read back):\n"
"  --strategies LIST   refctx,pin,chunk,bounce64 (default: all four)\n"
"  --windows LIST      refctx's chunks in flight, 1..65536 (default 1,2,4,8,16,32);\n"
"                      other strategies have no window (pin: all, chunk and bounce64: 1)\n"
"  --chunks LIST       chunk sizes, 4K..64M in 4K steps (default 1M); bounce64 always\n"
"                      steps through 256K, its definition\n"
"  --issue LIST        inline,punt (default inline)\n"
"  --sizes LIST        bytes per write, multiples of 4K (default 64M,1G,8G); each size\n"
"                      also gets a host row: O_DIRECT writes of 64M blocks to the baseline\n"
"  --async             submit each write asynchronously and wait for its result\n"
"  --dsync             each write durable before it completes (the host row: fdatasync)\n"
"  --no-verify         do not read back and compare samples of each write\n"
"  --no-matrix         run only the everyday jobs\n"
"\n"
"Everyday jobs (io_uring, one file per job; each job on the baseline and on refdio,\n"
"interleaved):\n"
"  --jobs LIST         job names or shell patterns, e.g. 'seq-*-direct' (default: all;\n"
"                      'none': no job). The jobs:\n"
"                      ");
	bench_jobs_list(f, "                      ");
	fprintf(f,
"  --runtime SECONDS   time per run of a data job (default 3)\n"
"  --file-size SIZE    each data job's file (default 256M)\n"
"  --files N           files the metadata job creates, stats and unlinks (default 5000)\n"
"\n"
"Both:\n"
"  --repeat N          runs of every cell and job (default 3): medians and spread\n"
"\n"
"Where:\n"
"  --dir DIR           where the scratch directory goes (default /var/tmp)\n"
"  --image-size SIZE   the scratch image's size (default: the largest write and a job\n"
"                      file, times 1.5, plus 1G; sparse)\n"
"  --image IMG         mount this refdio image instead of a scratch one (kept; fsck -n\n"
"                      at the end)\n"
"  --mount MNT         use this mounted refdio filesystem (no mount, unmount or fsck)\n"
"  --daemon-pid PID    with --mount: the daemon's pid, for its CPU time and peak RSS\n"
"                      (found from the command lines of processes when omitted)\n"
"  --mount-opts OPTS   -o options for the bench's mount (see refdio mount --help)\n"
"  --max-held SIZE     mount with -o max_held=SIZE, the daemon's memory budget (only if\n"
"                      this refdio's mount has the option; a cell that can never fit is\n"
"                      then reported refused)\n"
"  --baseline DIR      the host directory for the baseline (default: beside the scratch\n"
"                      image); must reach a device with O_DIRECT (not tmpfs or ramfs)\n"
"\n"
"Output:\n"
"  --out DIR           all of: DIR/bench.txt (the table), DIR/bench.json, DIR/bench.csv,\n"
"                      and the charts in DIR\n"
"  --json FILE         every run, the medians, the machine and options (schema\n"
"                      bench/bench-schema.json, version %d)\n"
"  --csv FILE          one row per matrix cell and per job figure (medians)\n"
"  --plot DIR          PNG charts drawn by gnuplot, and their scripts (DIR/*.gp)\n"
"  -h, --help          this text\n"
"\n"
"Exit status: 0 all ran (refused and skipped cells included), 1 a cell or job failed,\n"
"the image is not clean or an output could not be written, 2 bad usage, 130 interrupted.\n",
		BENCH_SCHEMA_VERSION);
}

/* ---- option values ------------------------------------------------------------------- */

static int name_value(const char *what, const char *tok)
{
	if (!strcmp(what, "strategies")) {
		for (unsigned s = 1; s <= REFDIO_NR_STRATEGIES; s++)
			if (!strcmp(tok, bench_strategy_name(s)))
				return (int)s;
		rd_fail("bench", "--strategies: unknown strategy '%s' (refctx, pin, chunk, "
			"bounce64)", tok);
		return -1;
	}
	if (!strcmp(tok, "inline"))
		return REFDIO_ISSUE_INLINE;
	if (!strcmp(tok, "punt"))
		return REFDIO_ISSUE_PUNT;
	rd_fail("bench", "--issue: unknown issue mode '%s' (inline, punt)", tok);
	return -1;
}

/* Parses a comma-separated list of names (names=true) or sizes; checks each value. */
static int parse_list(const char *what, const char *arg, bool names, uint64_t min, uint64_t max,
		      uint64_t align, struct bench_list *l)
{
	char buf[1024], *save = NULL, *tok;

	l->n = 0;
	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return rd_fail("bench", "--%s: list too long", what), -1;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (names) {
			int r = name_value(what, tok);

			if (r < 0)
				return -1;
			v = (uint64_t)r;
		} else if (rd_parse_size(tok, &v)) {
			return rd_fail("bench", "--%s: '%s' is not a number or size", what, tok), -1;
		} else if (v < min || v > max || (align && v % align)) {
			char a[24], b[24];

			if (!align)	/* a count, not a size */
				return rd_fail("bench", "--%s: %s is out of range (%" PRIu64 "..%"
					       PRIu64 ")", what, tok, min, max), -1;
			return rd_fail("bench", "--%s: %s is out of range (%s..%s, in 4K steps)",
				       what, tok, bench_size_str(min, a, sizeof(a)),
				       bench_size_str(max, b, sizeof(b))), -1;
		}
		for (unsigned i = 0; i < l->n; i++)
			if (l->v[i] == v)
				return rd_fail("bench", "--%s: '%s' is given twice", what, tok), -1;
		if (l->n == BENCH_LIST_MAX)
			return rd_fail("bench", "--%s: at most %d values", what, BENCH_LIST_MAX), -1;
		l->v[l->n++] = v;
	}
	if (!l->n)
		return rd_fail("bench", "--%s: empty list", what), -1;
	return 0;
}

static int parse_uint(const char *what, const char *arg, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		return rd_fail("bench", "--%s: '%s' is not a whole number in %lu..%lu", what, arg,
			       min, max), -1;
	*out = v;
	return 0;
}

static void defaults(struct bench_opts *o)
{
	static const uint64_t win[] = { 1, 2, 4, 8, 16, 32 };

	memset(o, 0, sizeof(*o));
	for (unsigned s = 1; s <= REFDIO_NR_STRATEGIES; s++)
		o->strategies.v[o->strategies.n++] = s;
	for (unsigned i = 0; i < sizeof(win) / sizeof(win[0]); i++)
		o->windows.v[o->windows.n++] = win[i];
	o->chunks.v[o->chunks.n++] = 1u << 20;
	o->issues.v[o->issues.n++] = REFDIO_ISSUE_INLINE;
	o->sizes.v[o->sizes.n++] = 64ull << 20;
	o->sizes.v[o->sizes.n++] = 1ull << 30;
	o->sizes.v[o->sizes.n++] = 8ull << 30;
	o->repeat = 3;
	o->runtime = 3;
	o->file_size = 256ull << 20;
	o->files = 5000;
	o->dir = "/var/tmp";
}

enum {
	O_STRAT = 256, O_WIN, O_CHUNKS, O_ISSUE, O_SIZES, O_ASYNC, O_DSYNC, O_NOVERIFY,
	O_NOMATRIX, O_JOBS, O_RUNTIME, O_FILESIZE, O_FILES, O_REPEAT, O_DIR, O_IMGSIZE, O_IMAGE,
	O_MOUNT, O_DPID, O_MOPTS, O_MAXHELD, O_BASE, O_OUT, O_JSON, O_CSV, O_PLOT,
};

/* 0, or the exit status for a usage error. */
static int parse(int argc, char **argv, struct bench_opts *o, bool *help)
{
	static const struct option lo[] = {
		{ "strategies", required_argument, NULL, O_STRAT },
		{ "windows", required_argument, NULL, O_WIN },
		{ "chunks", required_argument, NULL, O_CHUNKS },
		{ "issue", required_argument, NULL, O_ISSUE },
		{ "sizes", required_argument, NULL, O_SIZES },
		{ "async", no_argument, NULL, O_ASYNC },
		{ "dsync", no_argument, NULL, O_DSYNC },
		{ "no-verify", no_argument, NULL, O_NOVERIFY },
		{ "no-matrix", no_argument, NULL, O_NOMATRIX },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "runtime", required_argument, NULL, O_RUNTIME },
		{ "file-size", required_argument, NULL, O_FILESIZE },
		{ "files", required_argument, NULL, O_FILES },
		{ "repeat", required_argument, NULL, O_REPEAT },
		{ "dir", required_argument, NULL, O_DIR },
		{ "image-size", required_argument, NULL, O_IMGSIZE },
		{ "image", required_argument, NULL, O_IMAGE },
		{ "mount", required_argument, NULL, O_MOUNT },
		{ "daemon-pid", required_argument, NULL, O_DPID },
		{ "mount-opts", required_argument, NULL, O_MOPTS },
		{ "max-held", required_argument, NULL, O_MAXHELD },
		{ "baseline", required_argument, NULL, O_BASE },
		{ "out", required_argument, NULL, O_OUT },
		{ "json", required_argument, NULL, O_JSON },
		{ "csv", required_argument, NULL, O_CSV },
		{ "plot", required_argument, NULL, O_PLOT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned long u;
	char *end;
	int opt;

	defaults(o);
	o->argc = argc;
	o->argv = argv;
	*help = false;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		int bad = 0;

		switch (opt) {
		case O_STRAT:
			bad = parse_list("strategies", optarg, true, 0, 0, 0, &o->strategies);
			break;
		case O_WIN:
			bad = parse_list("windows", optarg, false, 1, 65536, 0, &o->windows);
			break;
		case O_CHUNKS:
			bad = parse_list("chunks", optarg, false, 4096, REFDIO_CHUNK_MAX, 4096, &o->chunks);
			break;
		case O_ISSUE:
			bad = parse_list("issue", optarg, true, 0, 0, 0, &o->issues);
			break;
		case O_SIZES:
			bad = parse_list("sizes", optarg, false, 4096, 1ull << 48, 4096, &o->sizes);
			break;
		case O_ASYNC: o->async = true; break;
		case O_DSYNC: o->dsync = true; break;
		case O_NOVERIFY: o->no_verify = true; break;
		case O_NOMATRIX: o->no_matrix = true; break;
		case O_JOBS: o->jobs = optarg; break;
		case O_RUNTIME:
			errno = 0;
			o->runtime = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->runtime >= 0.05) ||
			    o->runtime > 86400)
				bad = rd_fail("bench", "--runtime: '%s' is not a number of seconds "
					      "in 0.05..86400", optarg);
			break;
		case O_FILESIZE:
			if (rd_parse_size(optarg, &o->file_size) || o->file_size < (1u << 20) ||
			    o->file_size % (1u << 20))
				bad = rd_fail("bench", "--file-size: '%s' is not a size of at least "
					      "1M in 1M steps", optarg);
			break;
		case O_FILES:
			bad = parse_uint("files", optarg, 1, 10000000, &u);
			o->files = (unsigned)u;
			break;
		case O_REPEAT:
			bad = parse_uint("repeat", optarg, 1, 100, &u);
			o->repeat = (unsigned)u;
			break;
		case O_DIR: o->dir = optarg; break;
		case O_IMGSIZE:
			if (rd_parse_size(optarg, &o->image_size) || o->image_size < (64u << 20))
				bad = rd_fail("bench", "--image-size: '%s' is not a size of at least "
					      "64M", optarg);
			break;
		case O_IMAGE: o->image = optarg; break;
		case O_MOUNT: o->mount = optarg; break;
		case O_DPID:
			bad = parse_uint("daemon-pid", optarg, 1, 1u << 22, &u);
			o->daemon_pid = (pid_t)u;
			break;
		case O_MOPTS: o->mount_opts = optarg; break;
		case O_MAXHELD:
			if (rd_parse_size(optarg, &o->max_held) || !o->max_held)
				bad = rd_fail("bench", "--max-held: '%s' is not a size", optarg);
			break;
		case O_BASE: o->baseline = optarg; break;
		case O_OUT: o->out = optarg; break;
		case O_JSON: o->json = optarg; break;
		case O_CSV: o->csv = optarg; break;
		case O_PLOT: o->plot = optarg; break;
		case 'h':
			*help = true;
			return 0;
		default:
			fprintf(stderr, "(see refdio bench --help)\n");
			return 2;
		}
		if (bad)
			return 2;
	}
	if (optind != argc)
		return rd_fail("bench", "unexpected argument '%s' (see refdio bench --help)",
			       argv[optind]) + 1;
	if (o->image && o->mount)
		return rd_fail("bench", "--image and --mount exclude each other") + 1;
	if (o->mount && (o->mount_opts || o->max_held))
		return rd_fail("bench", "--mount-opts and --max-held need the bench's own mount "
			       "(not --mount)") + 1;
	if (o->daemon_pid && !o->mount)
		return rd_fail("bench", "--daemon-pid goes with --mount") + 1;
	if (o->image_size && (o->image || o->mount))
		return rd_fail("bench", "--image-size is for the scratch image only") + 1;
	return 0;
}

/* ---- checks before anything is created ----------------------------------------------- */

static uint64_t space_needed(const struct bench_opts *o, const struct bench_result *r)
{
	uint64_t need = 0;

	for (unsigned i = 0; i < r->nr_cells; i++)
		if (r->cells[i].size > need)
			need = r->cells[i].size;
	if (r->nr_jobs)
		need += o->file_size;
	return need;
}

static int check_tools(const struct bench_opts *o, struct bench_env *e)
{
	char out[16384];

	if (o->plot) {
		char *argv[] = { "gnuplot", "--version", NULL };

		if (bench_run_capture(argv, out, sizeof(out)) != 0)
			return rd_fail("bench", "--plot needs gnuplot, which did not run (Debian: "
				       "apt-get install gnuplot-nox; scripts/deps installs it)");
	}
	if (!o->mount) {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		char *argv[] = { self, "mount", "--help", NULL };

		if (n <= 0)
			return rd_fail("bench", "cannot find this program: %s", strerror(errno));
		self[n] = 0;
		e->max_held_supported = bench_run_capture(argv, out, sizeof(out)) == 0 &&
					strstr(out, "max_held");
	}
	if (o->max_held && !e->max_held_supported)
		return rd_fail("bench", "--max-held: this refdio's mount has no max_held option "
			       "(refdio mount --help does not list it): the daemon has no memory "
			       "budget to give");
	return 0;
}

static int mount_options(const struct bench_opts *o, struct bench_env *e)
{
	int n = 0;

	if (o->mount_opts)
		n = snprintf(e->mount_opts, sizeof(e->mount_opts), "%s", o->mount_opts);
	if (o->max_held)
		n = snprintf(e->mount_opts + n, sizeof(e->mount_opts) - (size_t)n,
			     "%smax_held=%" PRIu64, n ? "," : "", o->max_held) + n;
	if (n >= (int)sizeof(e->mount_opts))
		return rd_fail("bench", "--mount-opts: too long");
	return 0;
}

/* ---- outputs ------------------------------------------------------------------------- */

static char out_json[PATH_MAX], out_csv[PATH_MAX], out_txt[PATH_MAX];

static int resolve_out(struct bench_opts *o)
{
	if (!o->out)
		return 0;
	if (mkdir(o->out, 0755) && errno != EEXIST)
		return rd_fail("bench", "--out %s: %s", o->out, strerror(errno));
	if (snprintf(out_json, sizeof(out_json), "%s/bench.json", o->out) >= PATH_MAX ||
	    snprintf(out_csv, sizeof(out_csv), "%s/bench.csv", o->out) >= PATH_MAX ||
	    snprintf(out_txt, sizeof(out_txt), "%s/bench.txt", o->out) >= PATH_MAX)
		return rd_fail("bench", "--out %s: path too long", o->out);
	if (!o->json)
		o->json = out_json;
	if (!o->csv)
		o->csv = out_csv;
	if (!o->plot)
		o->plot = o->out;
	return 0;
}

static int write_outputs(const struct bench_opts *o, const struct bench_env *e,
			 const struct bench_result *r)
{
	int status = 0;

	bench_report_table(stdout, o, e, r);
	fflush(stdout);
	if (o->out) {
		FILE *f = fopen(out_txt, "w");

		if (f) {
			bench_report_table(f, o, e, r);
			status |= fclose(f) ? 1 : 0;
		} else {
			status = rd_fail("bench", "%s: %s", out_txt, strerror(errno));
		}
	}
	if (o->json && bench_report_json(o->json, o, e, r))
		status = rd_fail("bench", "--json %s: could not write it", o->json);
	if (o->csv && bench_report_csv(o->csv, r))
		status = rd_fail("bench", "--csv %s: %s", o->csv, strerror(errno));
	if (o->plot && bench_plot(o->plot, o, r))
		status = 1;
	return status;
}

static void free_result(struct bench_result *r)
{
	for (unsigned i = 0; i < r->nr_cells; i++)
		free(r->cells[i].runs);
	free(r->cells);
	for (unsigned k = 0; k < r->nr_jobs; k++)
		free(r->jobs[k].runs);
	free(r->jobs);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void plan_progress(const struct bench_opts *o, const struct bench_result *r)
{
	double cost = 0;
	unsigned items = 0;

	for (unsigned i = 0; i < r->nr_cells; i++) {
		cost += o->repeat * ((double)r->cells[i].size / bench_progress_rate_get() + 0.2);
		items += o->repeat;
	}
	for (unsigned k = 0; k < r->nr_jobs; k++) {
		const struct bench_job *j = &r->jobs[k];

		if (j->kind == JOB_META) {
			cost += 2.0 * o->repeat * (o->files * 3 / 4000.0 + 0.1);
		} else {
			cost += 2.0 * (double)o->file_size / bench_progress_rate_get();
			cost += 2.0 * o->repeat * (o->runtime + 0.3);
			items++;
		}
		items += 2 * o->repeat;
	}
	bench_progress_init(cost, items);
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_env e;
	struct bench_result r;
	uint64_t need, free_b;
	time_t wall = time(NULL);
	bool help;
	double t0;
	int status, ret;

	memset(&e, 0, sizeof(e));
	memset(&r, 0, sizeof(r));
	e.work_fd = -1;
	e.daemon_status = e.fsck_status = -1;
	status = parse(argc, argv, &o, &help);
	if (help) {
		bench_usage(stdout);
		return 0;
	}
	if (status)
		return status;
	status = 2;
	if (bench_matrix_build(&o, &r) == -ENOMEM || bench_jobs_build(&o, &r))
		goto out_free;
	if (!r.nr_cells && !r.nr_jobs) {
		rd_fail("bench", "nothing to run (--no-matrix and --jobs none)");
		goto out_free;
	}
	need = space_needed(&o, &r);
	if (o.image_size) {
		if (need > o.image_size) {
			char a[24], b[24];

			rd_fail("bench", "the largest write (--sizes) and a job file (--file-size) "
				"need %s: larger than the image (--image-size %s)",
				bench_human((double)need, a, sizeof(a)),
				bench_size_str(o.image_size, b, sizeof(b)));
			goto out_free;
		}
		e.image_size = o.image_size;
	} else {
		e.image_size = ((need + need / 2 + GIB) + (1u << 20) - 1) & ~((1ull << 20) - 1);
	}
	if (check_tools(&o, &e) || mount_options(&o, &e) || resolve_out(&o))
		goto out_free;
	if (o.image || o.mount)
		e.image_size = 0;

	bench_signals_install();
	if (bench_env_prepare(&e, &o))
		goto out_free;

	t0 = now_s();
	strftime(r.started, sizeof(r.started), "%Y-%m-%dT%H:%M:%SZ", gmtime(&wall));
	bench_proc_loadavg(r.load_start);
	status = 1;
	if (bench_env_start(&e, &o))
		goto finish;
	ret = bench_env_free_bytes(&e, &free_b);
	if (ret || free_b < need) {
		char a[24], b[24];

		if (ret)
			rd_fail("bench", "statvfs %s: %s", e.work, strerror(-ret));
		else
			rd_fail("bench", "the largest write (--sizes) and a job file (--file-size) "
				"need %s: larger than the %s free on %s%s", bench_human((double)need,
				a, sizeof(a)), bench_human((double)free_b, b, sizeof(b)), e.mnt,
				e.own_image ? " (--image-size)" : "");
		status = 2;
		goto finish;
	}

	plan_progress(&o, &r);
	bench_matrix_run(&o, &e, &r);
	bench_jobs_run(&o, &e, &r);
	bench_progress_clear();
	status = 0;
finish:
	r.interrupted = bench_stop;
	if (bench_stop)
		fprintf(stderr, "refdio bench: interrupted: unmounting and removing the scratch "
			"image\n");
	bench_env_finish(&e, bench_stop);
	bench_proc_loadavg(r.load_end);
	r.duration_s = now_s() - t0;
	if (status == 0) {
		if (write_outputs(&o, &e, &r) || r.failures)
			status = 1;
		if (e.fsck_status > 0 || e.daemon_status > 0)
			status = 1;
	}
	if (r.interrupted)
		status = 130;
out_free:
	free_result(&r);
	return status;
}
