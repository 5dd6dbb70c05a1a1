/*
 * daemon.h - the refdio FUSE daemon: options, state, and the one call that runs it.
 *
 * Owns: struct rd_daemon (the mounted filesystem as the FUSE glue sees it) and the mount
 * options. fuse/ops.c maps FUSE operations onto engine/fs.h; fuse/loop.c receives the
 * requests; fuse/daemon.c parses options, starts, detaches and tears down.
 *
 * Teardown order (daemon.c keeps it): the loop stops receiving; every request still in
 * flight is answered (rd_daemon_drain); the filesystem is closed (flushed, marked clean);
 * then the kernel side is unmounted and the session destroyed.
 */
#ifndef RD_DAEMON_H
#define RD_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <fuse_lowlevel.h>

#include "fs.h"
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
	char		fuse_opts[1024];	/* options handed to libfuse, comma separated */
};

struct rd_daemon {
	struct rd_fs		*fs;
	struct fuse_session	*se;
	struct rd_mount_opts	opts;
	struct rd_rbuf_pool	pool;
	uint64_t		lost_found_ino;

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

/* Parses `refdio mount` arguments (argv[0] is "mount" or the program name in the
 * mount-helper form). Prints a message and returns -EINVAL on a bad option. */
int rd_mount_parse(int argc, char **argv, struct rd_mount_opts *o);
/* Runs the daemon: opens, mounts, detaches (unless foreground), serves until unmounted
 * or signalled, tears down. Returns the process exit status. */
int rd_mount_run(const struct rd_mount_opts *o);

#endif
