/*
 * bench.h - what the parts of `refdio bench` share: the options, the environment (image,
 * mount, daemon, baseline), the matrix cells and everyday jobs with their runs, and the
 * verbs each part offers.
 *
 * Owns: the types only. The parts: cmd_bench.c (options, driver), bench_env.c (scratch
 * directory, format/mount/unmount/fsck children, signals, cleanup), bench_proc.c (the
 * daemon's /proc figures, the machine), bench_pattern.c (the bytes written and their
 * check), bench_matrix.c (the direct-write ioctl cells), bench_jobs.c (io_uring jobs and
 * metadata), bench_calc.c (medians, percentiles), bench_progress.c (the progress line),
 * bench_report.c (table, CSV), bench_json.c (JSON), bench_plot.c (gnuplot charts).
 *
 * Must never: include an engine-private header. The bench talks to the daemon only
 * through include/refdio_ioctl.h, the mount's files and /proc, like any other client.
 */
#ifndef RD_BENCH_H
#define RD_BENCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "refdio_ioctl.h"

#define BENCH_SCHEMA_VERSION	1
#define BENCH_LIST_MAX		32
#define BENCH_PAT_PERIOD	((4u << 20) + 4096u)	/* not a multiple of any chunk */
#define BENCH_BOUNCE64_CHUNK	(256u << 10)		/* bounce64's definition */
#define BENCH_HOST_BLOCK	(64u << 20)		/* the host write's block (dd bs=64M) */

/* Set by the signal handler (SIGINT, SIGTERM, SIGHUP); every loop checks it. */
extern volatile sig_atomic_t bench_stop;

struct bench_list {
	uint64_t	v[BENCH_LIST_MAX];
	unsigned	n;
};

struct bench_opts {
	struct bench_list strategies;	/* REFDIO_STRATEGY_* */
	struct bench_list windows;
	struct bench_list chunks;
	struct bench_list issues;	/* REFDIO_ISSUE_* */
	struct bench_list sizes;
	bool		async;
	bool		dsync;
	bool		no_verify;
	bool		no_matrix;
	unsigned	repeat;
	double		runtime;	/* seconds per everyday job run */
	uint64_t	file_size;	/* everyday jobs' file */
	uint64_t	image_size;	/* 0 = computed */
	uint64_t	max_held;	/* 0 = not given */
	unsigned	files;		/* metadata job */
	const char	*jobs;		/* comma-separated patterns; NULL = all; "none" */
	const char	*dir;		/* where the scratch directory goes */
	const char	*image;		/* --image */
	const char	*mount;		/* --mount */
	pid_t		daemon_pid;	/* --daemon-pid (with --mount) */
	const char	*baseline;	/* --baseline */
	const char	*mount_opts;	/* --mount-opts */
	const char	*out, *json, *csv, *plot;
	int		argc;
	char		**argv;
};

struct bench_env {
	char		self[PATH_MAX];		/* this binary */
	char		scratch[PATH_MAX];	/* our temporary directory, "" if none */
	char		image[PATH_MAX];
	bool		own_image;		/* formatted by us: removed at the end */
	bool		image_removed;
	char		mnt[PATH_MAX];
	bool		own_mount;		/* mounted by us: unmounted at the end */
	bool		served;			/* our daemon served the image: fsck it */
	char		work[PATH_MAX];		/* our directory on the mount */
	char		base[PATH_MAX];		/* our directory in the baseline */
	bool		base_made;		/* created by us: removed at the end */
	char		base_fs[32];		/* the baseline's filesystem type */
	char		log[PATH_MAX];		/* the daemon's output */
	char		mount_opts[512];
	uint64_t	image_size;
	pid_t		daemon;			/* 0 = unknown */
	bool		daemon_child;		/* our child: we wait for it */
	int		daemon_status;		/* exit status, -1 = not known */
	int		work_fd;		/* the work directory (ioctls, syncfs) */
	int		fsck_status;		/* -1 = not run */
	char		fsck_note[128];
	bool		clear_refs_ok;		/* VmHWM can be reset */
	bool		max_held_supported;
	bool		keep;			/* finish leaves image, files, scratch (demo --keep) */
};

enum bench_status {
	BST_NOTRUN = 0,
	BST_OK,
	BST_REFUSED,	/* ENOBUFS from the daemon: can never fit the memory budget */
	BST_FAILED,	/* any other error, a short write, or wrong bytes read back */
	BST_SKIPPED,	/* the bench chose not to run it (reason says why) */
	BST_INTERRUPTED,
};

struct bench_cell_run {
	enum bench_status status;
	int		err;		/* errno when failed/refused */
	uint64_t	bytes;
	double		seconds;	/* the call, as the bench saw it */
	double		daemon_s;	/* the daemon's elapsed_ns (0 for host) */
	double		cpu_s;		/* daemon user+system CPU during the cell */
	uint64_t	held_peak;	/* stats: bytes of chunk memory held, peak */
	uint64_t	write_held_peak;
	uint64_t	inflight_max;
	uint64_t	rss_peak;	/* VmHWM after the cell (reset before it) */
	uint64_t	rss_stats;	/* the daemon's own RSS figure after the cell */
	uint64_t	verify_bytes;
	uint64_t	verify_bad;	/* sample bytes that differed */
};

struct bench_cell {
	bool		host;		/* the baseline: O_DIRECT writes on the host fs */
	unsigned	strategy;	/* REFDIO_STRATEGY_* (0 for host) */
	unsigned	window;		/* 0 = not applicable */
	uint64_t	chunk;		/* 0 = not applicable */
	unsigned	issue;		/* REFDIO_ISSUE_* (0 for host) */
	uint64_t	size;
	struct bench_cell_run *runs;	/* [repeat] */
	unsigned	nr_runs;
	enum bench_status status;	/* the cell's: ok if every run was */
	int		err;
	char		reason[200];
};

enum bench_job_kind { JOB_SEQ_WRITE, JOB_SEQ_READ, JOB_RAND_WRITE, JOB_RAND_READ, JOB_META };

#define JOB_FIGS	3	/* metadata: create, stat, unlink */
#define LAT_PCTS	5	/* p50 p90 p99 p99.9 max */

extern const double bench_lat_pcts[LAT_PCTS];	/* 50 90 99 99.9 100 */
extern const char *const bench_lat_names[LAT_PCTS];

struct bench_job_run {
	bool		refdio;		/* target: refdio mount, else the baseline */
	unsigned	repeat;
	enum bench_status status;
	int		err;
	double		value[JOB_FIGS];	/* MiB/s or operations/s */
	double		lat_us[JOB_FIGS][LAT_PCTS];
	uint64_t	ops[JOB_FIGS];
	double		seconds[JOB_FIGS];
	double		cpu_s;		/* daemon CPU (refdio runs), -1 unknown */
};

struct bench_job {
	char		name[48];
	enum bench_job_kind kind;
	uint32_t	bs;
	unsigned	qd;
	bool		direct;
	unsigned	nr_figs;
	const char	*fig[JOB_FIGS];	/* figure names */
	const char	*unit;		/* "MiB/s" or "ops/s" */
	struct bench_job_run *runs;
	unsigned	nr_runs;
	enum bench_status status;
	int		err;
	char		reason[200];
};

struct bench_result {
	struct bench_cell *cells;
	unsigned	nr_cells;
	struct bench_job *jobs;
	unsigned	nr_jobs;
	char		started[40];	/* ISO 8601, UTC */
	double		duration_s;
	double		load_start[3], load_end[3];
	bool		interrupted;
	unsigned	failures;	/* failed cells and jobs */
};

/* ---- names ------------------------------------------------------------------------- */
const char *bench_strategy_name(unsigned s);	/* REFDIO_STRATEGY_* */
const char *bench_issue_name(unsigned i);
const char *bench_status_name(enum bench_status s);
/* "64M", "1G", "256K", "12345" (exact powers of 1024 only get a suffix). */
const char *bench_size_str(uint64_t v, char *buf, size_t len);
/* 1.5M, 812.3K, ... for byte figures (not exact). */
const char *bench_human(double v, char *buf, size_t len);

/* ---- bench_env.c ---------------------------------------------------------------------- */
void bench_signals_install(void);
/* Chooses/creates the scratch directory, the image, the baseline; checks the baseline.
 * Prints why and returns -1 on failure (nothing left behind). */
int bench_env_prepare(struct bench_env *e, const struct bench_opts *o);
/* Formats (when ours), mounts (when ours), finds the daemon, makes the work directories. */
int bench_env_start(struct bench_env *e, const struct bench_opts *o);
/* Free bytes the filesystem of the mount has for our writes. */
int bench_env_free_bytes(const struct bench_env *e, uint64_t *out);
/* Whatever happened: our files go, our mount is unmounted, our daemon waited for, the
 * image checked (unless skip_fsck), our scratch directory removed. Safe to call twice. */
void bench_env_finish(struct bench_env *e, bool skip_fsck);
/* Runs argv (argv[0] a path) with output to log (or /dev/null); returns the exit status
 * (0..255), 128+signal, or -1 if it could not run. */
int bench_run_child(char *const argv[], const char *log);
/* Same, stdout captured into buf (NUL-terminated, truncated). */
int bench_run_capture(char *const argv[], char *buf, size_t len);

/* ---- bench_proc.c --------------------------------------------------------------------- */
/* User + system CPU seconds of pid (all its threads), -1 if unknown. */
double bench_proc_cpu(pid_t pid);
/* VmHWM in bytes, 0 if unknown. */
uint64_t bench_proc_hwm(pid_t pid);
/* Resets VmHWM (writes "5" to clear_refs); 0 or -errno. */
int bench_proc_reset_hwm(pid_t pid);
/* MemAvailable in bytes, 0 if unknown. */
uint64_t bench_proc_mem_available(void);
struct bench_machine {
	char	hostname[128], kernel[160], arch[80], cpu[128];
	long	cpus;
	uint64_t mem_bytes;
};
void bench_proc_machine(struct bench_machine *m);
void bench_proc_loadavg(double la[3]);

/* ---- bench_pattern.c ------------------------------------------------------------------ */
struct bench_pattern {
	uint8_t		*addr;		/* len readable bytes: the pattern from file offset 0 */
	uint64_t	len;
	size_t		map_len;
};
/* Maps len bytes of the pattern (seed) at a cost of one period of memory. */
int bench_pattern_map(uint64_t seed, uint64_t len, struct bench_pattern *p);
void bench_pattern_unmap(struct bench_pattern *p);
/* Reads samples of fd's first len bytes and compares them with the pattern; counts the
 * bytes checked and those that differ. Returns 0 or -errno (a read error). */
int bench_pattern_verify(const struct bench_pattern *p, int fd, uint64_t len,
			 uint64_t *checked, uint64_t *bad);

/* ---- bench_matrix.c ------------------------------------------------------------------- */
/* The cells of the options' matrix (host rows included); 0 or -ENOMEM. */
int bench_matrix_build(const struct bench_opts *o, struct bench_result *r);
/* Runs every repeat of every cell, interleaved; stops early on bench_stop. */
void bench_matrix_run(const struct bench_opts *o, struct bench_env *e, struct bench_result *r);
/* A one-line description of a cell for progress and messages. */
void bench_cell_label(const struct bench_cell *c, char *buf, size_t len);

/* ---- bench_jobs.c --------------------------------------------------------------------- */
/* The everyday jobs selected by o->jobs; -EINVAL (message printed) on a pattern that
 * selects nothing. */
int bench_jobs_build(const struct bench_opts *o, struct bench_result *r);
/* Names of every job, three a line, later lines indented, for --help and messages. */
void bench_jobs_list(FILE *f, const char *indent);
void bench_jobs_run(const struct bench_opts *o, struct bench_env *e, struct bench_result *r);

/* ---- bench_calc.c --------------------------------------------------------------------- */
/* Median of n values (n > 0; v is reordered). */
double bench_median(double *v, unsigned n);
/* Percentile p (0..100) of n sorted values, nearest rank. */
double bench_pct_sorted(const double *v, size_t n, double p);
/* Median and (max - min) / 2 / median of a cell's field over its ok runs; false if none. */
bool bench_cell_median(const struct bench_cell *c, double (*get)(const struct bench_cell_run *),
		       double *median, double *spread);
double bench_run_mibs(const struct bench_cell_run *r);
double bench_run_seconds(const struct bench_cell_run *r);
double bench_run_cpu(const struct bench_cell_run *r);
double bench_run_held(const struct bench_cell_run *r);
double bench_run_inflight(const struct bench_cell_run *r);
double bench_run_rss(const struct bench_cell_run *r);
/* The host cell of the same size, or NULL. */
const struct bench_cell *bench_host_cell(const struct bench_result *r, uint64_t size);
/* Median (and spread) of figure fig of a job for one target; false if no ok run. */
bool bench_job_median(const struct bench_job *j, bool refdio, unsigned fig, double *median,
		      double *spread);
/* Median of a latency percentile of a figure, for one target. */
bool bench_job_lat(const struct bench_job *j, bool refdio, unsigned fig, unsigned pct,
		   double *median);

/* ---- bench_progress.c ----------------------------------------------------------------- */
/* total: estimated cost in seconds of everything planned. */
void bench_progress_init(double total_cost, unsigned total_items);
/* One item begins (what it is, its estimated cost). */
void bench_progress_begin(const char *what, double cost);
/* It ended. */
void bench_progress_end(void);
/* Clears the line (before other output). */
void bench_progress_clear(void);
/* The nominal write rate (bytes/s) costs are estimated with. */
double bench_progress_rate_get(void);

/* ---- bench_report.c / bench_json.c / bench_plot.c ---------------------------------------- */
void bench_report_table(FILE *f, const struct bench_opts *o, const struct bench_env *e,
			const struct bench_result *r);
int bench_report_csv(const char *path, const struct bench_result *r);
int bench_report_json(const char *path, const struct bench_opts *o, const struct bench_env *e,
		      const struct bench_result *r);
/* Writes DIR/NAME.gp and DIR/NAME.png for each chart (gnuplot); 0 or -1 (message printed). */
int bench_plot(const char *dir, const struct bench_opts *o, const struct bench_result *r);

#endif
