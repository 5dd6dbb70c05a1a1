/*
 * daemon.h - the refdio FUSE daemon: options, state, and the one call that runs it.
 *
 * Owns: struct rd_daemon (the mounted filesystem as the FUSE glue sees it) and the mount
 * options. fuse/ops.c maps FUSE operations onto include/refdio/fs.h; fuse/loop.c receives
 * the requests; fuse/mount_opts.c parses the command line; fuse/daemon.c starts, detaches
 * and tears down; fuse/inflight.c counts the requests still to be answered.
 *
 * Every write goes through the dio engine (d->dio, include/refdio/dio.h) into the
 * filesystem's dio sink (include/refdio/dio_fs.h): FUSE writes straight from their receive
 * buffer, the ioctls (fuse/ioctl*.c) from the caller's own memory.
 *
 * Teardown order (daemon.c keeps it): first, while requests are still received (on
 * SIGTERM/SIGINT/SIGHUP, the receive loop calls it before it stops; on unmount, the
 * connection is already gone) rd_daemon_quiesce: new ioctl writes are refused, every ioctl
 * write, synchronous or asynchronous, is cut at its next chunk boundary (reads of a caller
 * that does not answer are abandoned, never waited for) and answered, and the notifier is
 * closed (fuse/notify.c: no kernel notification after it). Then the loop stops receiving;
 * every request still in flight is answered (rd_daemon_drain); the dio engine waits for its
 * last write and stops (rd_dio_destroy); the reader threads stop (never waiting for a
 * stuck read); the ioctl and notifier state go; the filesystem is closed (flushed, marked
 * clean); then the kernel side is unmounted and the session destroyed.
 */
#ifndef RD_DAEMON_H
#define RD_DAEMON_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <fuse_lowlevel.h>

#include "refdio.h"
#include "rbuf.h"

struct rd_mount_opts {
	const char	*image;
	const char	*mountpoint;
	bool		foreground;
	bool		debug;
	bool		read_only;
	bool		allow_other;
	bool		default_permissions;	/* on unless -o nodefault_permissions */
	bool		direct_io;		/* FOPEN_DIRECT_IO on every open */
	bool		writeback_cache;
	bool		sync;			/* every write O_DSYNC */
	unsigned	threads;		/* receiving threads */
	unsigned	max_background;
	double		attr_timeout;
	double		entry_timeout;
	/* Direct writes (every write of the mount): the defaults an ioctl may override. */
	unsigned	dio_strategy;		/* enum rd_dio_strategy */
	unsigned	dio_issue;		/* enum rd_dio_issue */
	unsigned	dio_window;		/* refctx chunks in flight per write */
	unsigned	dio_chunk;		/* bytes */
	unsigned	dio_workers;		/* dio worker threads */
	/* What one caller may make the daemon hold or wait for. */
	uint64_t	max_held;		/* the budget of chunk-buffer bytes */
	uint64_t	max_held_user;		/* of it, one user's writes (0: 3/4) */
	unsigned	max_window;		/* an ioctl's window is cut to this */
	unsigned	max_chunk;		/* an ioctl's chunk is cut to this (bytes) */
	double		source_timeout;		/* seconds a read of a caller's memory may take */
	char		fuse_opts[1024];	/* options handed to libfuse, comma separated */
};

struct rd_daemon {
	struct rd_fs		*fs;
	struct fuse_session	*se;
	struct rd_mount_opts	opts;
	struct rd_rbuf_pool	pool;
	uint64_t		lost_found_ino;
	struct rd_dio		*dio;
	struct rd_dio_readers	*readers;	/* reads of callers' memory (ioctl writes) */
	struct rd_ioctl		*ioc;		/* ioctl.c's state: asynchronous writes */
	struct rd_notify	*notify;	/* notify.c's: the notifier thread */
	uint64_t		t_start;	/* CLOCK_MONOTONIC ns at mount */
	unsigned		stuck_reads;	/* reads of callers still stuck at teardown */

	/* Requests whose reply is still to be sent (asynchronous completions). */
	atomic_long		inflight;
	pthread_mutex_t		drain_lock;
	pthread_cond_t		drained;
};

/* The operations table (ops.c). */
const struct fuse_lowlevel_ops *rd_fuse_ops(void);

/* Bookkeeping of replies sent from completions (ops.c). */
void rd_daemon_begin(struct rd_daemon *d);
void rd_daemon_end(struct rd_daemon *d);
/* Waits until no reply is outstanding. */
void rd_daemon_drain(struct rd_daemon *d);

/* The first step of teardown (see above); idempotent. */
void rd_daemon_quiesce(struct rd_daemon *d);

/* The ioctls (ioctl.c): REFDIO_IOC_* of refdio_ioctl.h. */
int rd_ioctl_init(struct rd_daemon *d);
/* Refuses new ioctl writes (ESHUTDOWN), cuts every running one, synchronous or
 * asynchronous, at its next chunk boundary, waits until each is answered, and drops the
 * write handles (teardown, before rd_dio_destroy). Idempotent. */
void rd_ioctl_stop(struct rd_daemon *d);
/* After rd_dio_destroy: frees what is left. */
void rd_ioctl_exit(struct rd_daemon *d);
void rd_op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		 struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		 size_t in_bufsz, size_t out_bufsz);
/* REFDIO_IOC_GC (ioctl_gc.c), dispatched by rd_op_ioctl. */
void rd_ioctl_gc(fuse_req_t req, const void *in_buf, size_t in_bufsz, size_t out_bufsz);

/*
 * What an open file remembers (ops.c sets it at open, ioctl.c reads it). It lives in the
 * file handle itself (fi->fh: RD_FH_FILE | the flags), so there is nothing to free: a
 * daemon stopped while files are still open leaks nothing.
 */
struct rd_fh {
	int flags;	/* open(2) flags */
};

#define RD_FH_FILE	(1ull << 32)	/* fi->fh of a regular file (directories: 0) */

static inline uint64_t rd_fh_encode(int flags)
{
	return RD_FH_FILE | (uint32_t)flags;
}

/* false: not a regular file's handle. */
static inline bool rd_fh_decode(const struct fuse_file_info *fi, struct rd_fh *out)
{
	if (!fi || !(fi->fh & RD_FH_FILE))
		return false;
	out->flags = (int)(uint32_t)fi->fh;
	return true;
}

/* Whether writes through this open file (or the whole mount) are O_DSYNC. */
static inline bool rd_fh_dsync(const struct rd_daemon *d, const struct rd_fh *fh,
			       int req_flags)
{
	/* O_SYNC includes the O_DSYNC bit. */
	return ((req_flags | (fh ? fh->flags : 0)) & O_DSYNC) || d->opts.sync;
}

/* Parses `refdio mount` arguments (argv[0] is "mount" or the program name in the
 * mount-helper form). Prints a message and returns -EINVAL on a bad option. */
int rd_mount_parse(int argc, char **argv, struct rd_mount_opts *o);
/* A start-up error on stderr, "refdio mount: " first (daemon.c). */
void rd_mount_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs the daemon: opens, mounts, detaches (unless foreground), serves until unmounted
 * or signalled, tears down. Returns the process exit status. */
int rd_mount_run(const struct rd_mount_opts *o);

#endif
