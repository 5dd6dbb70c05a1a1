/*
 * cmd_demo.h - what the parts of `refdio demo` share: the options, one scenario's result,
 * the narration and live-line helpers, and the scenarios themselves.
 *
 * Owns: the types and verbs only. The parts: cmd_demo.c (options, the order of `all`, the
 * summary table, the exit status), cmd_demo_env.c (a scenario's scratch image, mount and
 * daemon through bench_env, the narration, the stats snapshot, the writer children, the
 * check of a file's bytes), one cmd_demo_SCENARIO.c per scenario.
 *
 * Must never: include an engine-private header, or signal a process it did not start. The
 * demo talks to the daemon like any client: include/refdio_ioctl.h, the mount's files,
 * /proc of the daemon it started.
 */
#ifndef RD_CMD_DEMO_H
#define RD_CMD_DEMO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench.h"

struct demo_opts {
	bool		fast;		/* sizes for a run of `all` in under a minute */
	bool		keep;		/* keep each scenario's scratch directory and image */
	const char	*dir;		/* where the scratch directories go */
};

/* One scenario's outcome: the verdict line is "verdict NAME: PASS|FAIL detail". */
struct demo_result {
	const char	*name;
	bool		ran;
	bool		pass;
	double		seconds;
	char		detail[320];	/* the measured figures, or what failed */
	/* Set by a scenario: after the unmount, the extents of this inode are read from the
	 * image (refdio list's decoder) and must end at file byte inspect_end. */
	uint64_t	inspect_ino;
	uint64_t	inspect_end;
};

#define MIB		(1ull << 20)
#define GIB		(1ull << 30)

/* ---- cmd_demo_env.c ------------------------------------------------------------------- */

/* A step heading and its narration (one or two plain sentences). */
void demo_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void demo_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A live figure: rewritten in place on a terminal; on a pipe printed as a plain line at
 * most every `every` seconds (and always when force). demo_live_end ends the line. */
void demo_live(bool force, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void demo_live_end(void);

double demo_now(void);
void demo_sleep(double s);
const char *demo_size(uint64_t v, char *buf, size_t len);	/* "1.5G", "256M" */

/* Formats a scratch image of image_size in a new directory under o->dir, mounts it with a
 * child `refdio mount -f -o mount_opts` and makes a work directory on it (e->work). On
 * failure everything made so far is removed again (-1, message printed). */
int demo_env_start(const struct demo_opts *o, uint64_t image_size, const char *mount_opts,
		   struct bench_env *e);
/* Unmounts, waits for the daemon, runs `refdio fsck -n`, shows r's inspected extents
 * from the image, and removes what start made (unless o->keep: then says where it is).
 * True when the daemon exited 0, fsck found the image clean and the extents end where
 * r says; why says what was not. */
bool demo_env_finish(const struct demo_opts *o, struct bench_env *e, const struct demo_result *r,
		     char *why, size_t len);

/* REFDIO_IOC_STATS on fd; 0 or -errno. */
int demo_stats(int fd, struct refdio_stats *st);
/* Sums over the strategies. */
uint64_t demo_gone(const struct refdio_stats *st);
uint64_t demo_interrupts(const struct refdio_stats *st);
/* The asynchronous write id in a snapshot, or NULL. */
const struct refdio_async_info *demo_async(const struct refdio_stats *st, uint64_t id);

/*
 * A writer child: a fork of this process that writes p's first len bytes to path with one
 * direct-write ioctl (strategy refctx) from its own memory: REFDIO_IOC_DIO_SUBMIT then
 * sleeps until killed (async), or REFDIO_IOC_DIO_WRITE (sync). It reports on *ready_fd:
 * 8 bytes, the write's id (async; 0 if the submit failed) or 0 just before the
 * synchronous call. Dies with the demo (PR_SET_PDEATHSIG). Returns its pid or -errno.
 */
pid_t demo_writer(const struct bench_pattern *p, uint64_t len, const char *path, bool async,
		  int *ready_fd);
/* Reads 8 bytes from fd within secs; 0 or -errno (-ETIMEDOUT). */
int demo_read_u64(int fd, double secs, uint64_t *v);
/* Reaps our child pid; its wait status, or -1. */
int demo_reap(pid_t pid);

/* Compares every byte of path's first len bytes with the pattern; *bad counts those that
 * differ (REFDIO_DEMO_FAULT=verify compares with the pattern one block further on, so the
 * CI test sees the check fail). 0 or -errno. */
int demo_verify_all(const struct bench_pattern *p, const char *path, uint64_t len,
		    uint64_t *bad);

/* ---- the scenarios ---------------------------------------------------------------------- */
/* Each runs on a mounted scratch image e (NULL for strategies, which runs `refdio bench`
 * with its own), narrates, and fills r->detail with the measured figures on success, or
 * why with what failed. */
typedef void demo_run_fn(const struct demo_opts *o, struct bench_env *e, struct demo_result *r,
			 char *why, size_t wl);
demo_run_fn demo_caller_exit, demo_huge_write, demo_strategies, demo_interrupt;

#endif
