/*
 * daemon.c - `refdio mount`: options, start-up, detaching, teardown.
 *
 * Owns: turning a command line into a mounted, served filesystem and back. Every start-up
 * error (bad options, bad image, missing or busy mountpoint, no /dev/fuse) is reported
 * with a message and a non-zero exit before the daemon detaches: the parent waits for the
 * child's verdict on a pipe.
 *
 * Must never: leave the filesystem unflushed on a clean stop, or destroy the session while
 * a reply is outstanding (see daemon.h for the teardown order).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "refdio.h"
#include "loop.h"
#include "notify.h"

void rd_mount_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "refdio mount: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- start-up checks ------------------------------------------------------------------- */

/* Is path already a mount point (of anything)? */
static bool is_mountpoint(const char *path)
{
	char real[PATH_MAX], line[8192];
	bool found = false;
	FILE *f;

	if (!realpath(path, real))
		return false;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX];

		/* id parent major:minor root mountpoint ... ; octal escapes for spaces are
		 * rare enough in mount points that a plain compare serves here */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && !strcmp(mnt, real))
			found = true;
	}
	fclose(f);
	return found;
}

/*
 * The daemon identifies callers by the thread id each request carries, which the kernel
 * gives in the pid namespace of the FUSE connection: the namespace of whoever mounted,
 * which is this process (or fusermount3, its child, in the same namespace), since refdio
 * always mounts itself. It then finds them through /proc and pidfd_open, so /proc must be
 * of that same namespace: then /proc/self/status shows exactly one NSpid, this pid.
 */
static int check_proc_ns(void)
{
	char line[256];
	bool ok = false;
	FILE *f = fopen("/proc/self/status", "r");

	if (f) {
		while (fgets(line, sizeof(line), f)) {
			long a, b;

			if (strncmp(line, "NSpid:", 6))
				continue;
			ok = sscanf(line + 6, "%ld %ld", &a, &b) == 1 && a == (long)getpid();
			break;
		}
		fclose(f);
	}
	if (!ok) {
		rd_mount_err("/proc is not of this process's pid namespace (its NSpid is not this "
			  "pid): callers could not be identified; mount a /proc of this namespace "
			  "(e.g. unshare --pid --fork --mount-proc)");
		return -EINVAL;
	}
	return 0;
}

static int check_startup(const struct rd_mount_opts *o)
{
	struct stat st;
	int fd;

	if (check_proc_ns())
		return -EINVAL;

	if (stat(o->image, &st)) {
		rd_mount_err("%s: %s", o->image, strerror(errno));
		return -errno;
	}
	if (stat(o->mountpoint, &st)) {
		rd_mount_err("mountpoint %s: %s", o->mountpoint, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		rd_mount_err("mountpoint %s: not a directory", o->mountpoint);
		return -ENOTDIR;
	}
	if (is_mountpoint(o->mountpoint)) {
		rd_mount_err("mountpoint %s is busy: something is already mounted there",
			  o->mountpoint);
		return -EBUSY;
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rd_mount_err("/dev/fuse: %s (is the fuse module loaded, and fuse3 installed?)",
			  strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

/* ---- running ------------------------------------------------------------------------------- */

/* The child tells the waiting parent how start-up went: one byte, the exit status. */
static void tell_parent(int fd, unsigned char status)
{
	if (fd >= 0) {
		ssize_t n = write(fd, &status, 1);

		(void)n;
		close(fd);
	}
}

void rd_daemon_quiesce(struct rd_daemon *d)
{
	rd_ioctl_stop(d);
	rd_notify_close(d);
}

static void quiesce_cb(void *priv)
{
	rd_daemon_quiesce(priv);
}

static int serve(struct rd_daemon *d, int notify_fd)
{
	sigset_t term;
	struct rd_fs_opts fso = { .store = { .read_only = d->opts.read_only } };
	char *fargv[5];
	int fargc = 0;
	struct fuse_args args;
	struct rd_loop_opts lo = { .threads = d->opts.threads, .quiesce = quiesce_cb, .priv = d };
	struct rd_loop_result lr;
	char why[256] = "";
	int ret, status = 1, cret;

	struct rd_dio_opts dopts = { .workers = d->opts.dio_workers,
				     .chunk = d->opts.dio_chunk,
				     .window = d->opts.dio_window,
				     .max_held = d->opts.max_held,
				     .max_held_owner = d->opts.max_held_user };
	struct rd_dio_readers_opts ropts = {
		.timeout_ns = (uint64_t)(d->opts.source_timeout * 1e9) };
	struct timespec ts;

	/* Before any thread exists: terminating signals stay blocked in all of them, so they
	 * only ever reach the receive loop's sigtimedwait (and its quiesce), never a worker
	 * where their default action would end the process mid-write. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	sigaddset(&term, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	d->t_start = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	ret = rd_fs_open(d->opts.image, &fso, &d->fs, why, sizeof(why));
	if (ret) {
		rd_mount_err("%s: %s%s%s", d->opts.image, rd_strerror(ret), why[0] ? ": " : "", why);
		tell_parent(notify_fd, 1);
		return 1;
	}
	ret = rd_dio_create(&dopts, &d->dio);
	if (!ret)
		ret = rd_dio_readers_create(&ropts, &d->readers);
	if (!ret)
		ret = rd_notify_init(d);
	if (!ret)
		ret = rd_ioctl_init(d);
	if (ret) {
		rd_mount_err("starting the dio engine: %s", rd_strerror(ret));
		goto close_fs;
	}

	fargv[fargc++] = (char *)"refdio";
	fargv[fargc++] = (char *)"-o";
	fargv[fargc++] = d->opts.fuse_opts;
	if (d->opts.debug)
		fargv[fargc++] = (char *)"-d";
	fargv[fargc] = NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(fargc, fargv);
	d->se = fuse_session_new(&args, rd_fuse_ops(), sizeof(*rd_fuse_ops()), d);
	fuse_opt_free_args(&args);	/* parsing may have copied them */
	if (!d->se) {
		rd_mount_err("could not start a FUSE session with options '%s'", d->opts.fuse_opts);
		goto close_fs;
	}
	if (fuse_session_mount(d->se, d->opts.mountpoint)) {
		rd_mount_err("could not mount on %s", d->opts.mountpoint);
		goto destroy;
	}
	/* libfuse 3.14 reads up to 256 pages + 4 KiB per request. */
	ret = rd_rbuf_pool_init(&d->pool, (256u << 12) + 4096, d->opts.threads + 2,
				d->opts.threads + d->opts.max_background + 8);
	if (ret) {
		rd_mount_err("out of memory");
		goto unmount;
	}

	tell_parent(notify_fd, 0);
	if (!d->opts.foreground) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		if (chdir("/"))
			(void)0;
	}

	ret = rd_loop_run(d->se, &d->pool, &lo, &lr);
	status = ret ? 1 : 0;
	if (ret)
		rd_mount_err("receiving requests: %s", strerror(-ret));

	/* Teardown in the order daemon.h documents (on a signal the loop quiesced already). */
	rd_daemon_quiesce(d);
	rd_daemon_drain(d);
	assert(atomic_load(&d->inflight) == 0);	/* nothing left to answer */
	rd_dio_destroy(d->dio);
	d->dio = NULL;
	d->stuck_reads = rd_dio_readers_destroy(d->readers);
	d->readers = NULL;
	rd_ioctl_exit(d);
	rd_notify_exit(d);
	cret = rd_fs_close(d->fs);
	d->fs = NULL;
	if (cret) {
		rd_mount_err("closing %s: %s", d->opts.image, rd_strerror(cret));
		status = 1;
	}
	fuse_session_unmount(d->se);
	fuse_session_destroy(d->se);
	rd_rbuf_pool_destroy(&d->pool);
	return status;

unmount:
	fuse_session_unmount(d->se);
destroy:
	fuse_session_destroy(d->se);
close_fs:
	rd_dio_destroy(d->dio);
	d->dio = NULL;
	rd_dio_readers_destroy(d->readers);
	d->readers = NULL;
	rd_ioctl_exit(d);
	rd_notify_exit(d);
	rd_fs_close(d->fs);
	tell_parent(notify_fd, 1);
	return 1;
}

int rd_mount_run(const struct rd_mount_opts *o)
{
	struct rd_daemon *d;
	int pipefd[2], status;
	pid_t pid;

	if (check_startup(o))
		return 1;
	d = calloc(1, sizeof(*d));
	if (!d)
		return 1;
	d->opts = *o;
	pthread_mutex_init(&d->drain_lock, NULL);
	pthread_cond_init(&d->drained, NULL);

	if (o->foreground) {
		status = serve(d, -1);
		goto out;
	}
	/* Detach before any thread exists (the engine starts I/O threads at open, and
	 * threads do not survive fork); the parent waits for the child's verdict. */
	if (pipe2(pipefd, O_CLOEXEC)) {
		rd_mount_err("pipe: %s", strerror(errno));
		status = 1;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rd_mount_err("fork: %s", strerror(errno));
		status = 1;
		goto out;
	}
	if (pid > 0) {
		unsigned char st = 1;

		close(pipefd[1]);
		if (read(pipefd[0], &st, 1) != 1) {
			int ws;

			/* The child died without a word: report how. */
			waitpid(pid, &ws, 0);
			if (WIFSIGNALED(ws))
				rd_mount_err("the daemon was killed by signal %d during start-up",
					  WTERMSIG(ws));
			st = 1;
		}
		close(pipefd[0]);
		free(d);
		return st;
	}
	close(pipefd[0]);
	setsid();
	status = serve(d, pipefd[1]);
out:
	/*
	 * A read of a caller's memory that never returned (written off: its thread is stuck
	 * in the kernel, killably) must not hold up the exit: end the process at once, so
	 * that nothing (LeakSanitizer's final stop-the-world included, which would wait for
	 * that thread forever) waits for it. The filesystem is closed and clean by now.
	 */
	if (d->stuck_reads) {
		fprintf(stderr, "refdio mount: %u read%s of a caller's memory still stuck; "
			"exiting without waiting for %s\n", d->stuck_reads,
			d->stuck_reads == 1 ? "" : "s", d->stuck_reads == 1 ? "it" : "them");
		fflush(NULL);
		_exit(status);
	}
	pthread_mutex_destroy(&d->drain_lock);
	pthread_cond_destroy(&d->drained);
	free(d);
	return status;
}
