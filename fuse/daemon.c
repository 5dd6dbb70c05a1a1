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
#include "errors.h"
#include "loop.h"
#include "notify.h"

static void mount_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void mount_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "refdio mount: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- options ----------------------------------------------------------------------------- */

static uint64_t dio_buf_bytes(uint64_t n);

/* Options libfuse (and the kernel) take as they are. */
static const char *const passthrough[] = {
	"allow_root", "auto_unmount", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
	"atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
	"nostrictatime", "lazytime", "nolazytime", "dirsync", "async", NULL,
};
/* Options mount(8) and fstab add that mean nothing to a FUSE daemon. */
static const char *const ignored[] = {
	"defaults", "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "rw",
	NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static int add_fuse_opt(struct rd_mount_opts *o, const char *opt)
{
	size_t used = strlen(o->fuse_opts), n = strlen(opt);

	if (used + n + 2 > sizeof(o->fuse_opts)) {
		mount_err("too many options");
		return -EINVAL;
	}
	if (used)
		o->fuse_opts[used++] = ',';
	memcpy(o->fuse_opts + used, opt, n + 1);
	return 0;
}

static int parse_uint(const char *name, const char *v, unsigned min, unsigned max,
		      unsigned *out)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max) {
		mount_err("-o %s=%s: expected a number from %u to %u", name, v, min, max);
		return -EINVAL;
	}
	*out = (unsigned)x;
	return 0;
}

static int parse_seconds(const char *name, const char *v, double *out)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end || x < 0 || x > 86400) {
		mount_err("-o %s=%s: expected seconds from 0 to 86400", name, v);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/* A size: bytes with an optional K/M/G suffix, a multiple of 4 KiB in [min, max]. */
static int parse_size(const char *name, const char *v, uint64_t min, uint64_t max,
		      const char *range, uint64_t *out)
{
	unsigned long long x;
	unsigned shift = 0;
	char *end;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (!errno && end != v) {
		if (*end == 'k' || *end == 'K')
			shift = 10;
		else if (*end == 'm' || *end == 'M')
			shift = 20;
		else if (*end == 'g' || *end == 'G')
			shift = 30;
		if (shift) {
			end++;
			if (x > (UINT64_MAX >> shift))
				errno = ERANGE;
			x <<= shift;
		}
		if (*end == 'i' && end[1] == 'B')
			end += 2;
	}
	if (errno || end == v || *end || x < min || x > max || x % 4096) {
		mount_err("-o %s=%s: expected a multiple of 4K from %s", name, v, range);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int parse_chunk(const char *name, const char *v, unsigned *out)
{
	uint64_t x;
	int ret = parse_size(name, v, 4096, 64ull << 20, "4K to 64M", &x);

	if (!ret)
		*out = (unsigned)x;
	return ret;
}

static int parse_one(struct rd_mount_opts *o, char *opt)
{
	char *val = strchr(opt, '=');

	if (val)
		*val++ = '\0';
	if (!val) {
		if (!strcmp(opt, "ro")) {
			o->read_only = true;
			return add_fuse_opt(o, "ro");
		}
		if (!strcmp(opt, "allow_other")) {
			o->allow_other = true;
			return add_fuse_opt(o, "allow_other");
		}
		if (!strcmp(opt, "default_permissions")) {
			o->default_permissions = true;
			return 0;
		}
		if (!strcmp(opt, "nodefault_permissions")) {
			o->default_permissions = false;
			return 0;
		}
		if (!strcmp(opt, "direct_io")) {
			o->direct_io = true;
			return 0;
		}
		if (!strcmp(opt, "writeback_cache")) {
			o->writeback_cache = true;
			return 0;
		}
		if (!strcmp(opt, "sync")) {
			o->sync = true;
			return add_fuse_opt(o, "sync");
		}
		if (in_list(passthrough, opt))
			return add_fuse_opt(o, opt);
		if (in_list(ignored, opt) || !strncmp(opt, "x-", 2))
			return 0;
	} else {
		if (!strcmp(opt, "threads"))
			return parse_uint(opt, val, 1, 64, &o->threads);
		if (!strcmp(opt, "max_background"))
			return parse_uint(opt, val, 1, 65535, &o->max_background);
		if (!strcmp(opt, "strategy")) {
			int v = rd_dio_strategy_parse(val);

			if (v < 0) {
				mount_err("-o strategy=%s: expected refctx, pin, chunk or bounce64",
					  val);
				return -EINVAL;
			}
			o->dio_strategy = (unsigned)v;
			return 0;
		}
		if (!strcmp(opt, "issue")) {
			int v = rd_dio_issue_parse(val);

			if (v < 0) {
				mount_err("-o issue=%s: expected inline or punt", val);
				return -EINVAL;
			}
			o->dio_issue = (unsigned)v;
			return 0;
		}
		if (!strcmp(opt, "window"))
			return parse_uint(opt, val, 1, 65536, &o->dio_window);
		if (!strcmp(opt, "chunk"))
			return parse_chunk(opt, val, &o->dio_chunk);
		if (!strcmp(opt, "dio_workers"))
			return parse_uint(opt, val, 1, 64, &o->dio_workers);
		if (!strcmp(opt, "max_held"))
			return parse_size(opt, val, 1ull << 20, 1ull << 40, "1M to 1T",
					  &o->max_held);
		if (!strcmp(opt, "max_held_user"))
			return parse_size(opt, val, 1ull << 20, 1ull << 40, "1M to 1T",
					  &o->max_held_user);
		if (!strcmp(opt, "max_window"))
			return parse_uint(opt, val, 1, 65536, &o->max_window);
		if (!strcmp(opt, "max_chunk"))
			return parse_chunk(opt, val, &o->max_chunk);
		if (!strcmp(opt, "source_timeout")) {
			int ret = parse_seconds(opt, val, &o->source_timeout);

			if (!ret && o->source_timeout < 0.01) {
				mount_err("-o source_timeout=%s: at least 0.01 s", val);
				ret = -EINVAL;
			}
			return ret;
		}
		if (!strcmp(opt, "attr_timeout"))
			return parse_seconds(opt, val, &o->attr_timeout);
		if (!strcmp(opt, "entry_timeout"))
			return parse_seconds(opt, val, &o->entry_timeout);
		if (!strcmp(opt, "fsname") || !strcmp(opt, "subtype")) {
			char buf[300];

			if (strchr(val, ',') || snprintf(buf, sizeof(buf), "%s=%s", opt, val) >=
			    (int)sizeof(buf)) {
				mount_err("-o %s: value too long or has a comma", opt);
				return -EINVAL;
			}
			return add_fuse_opt(o, buf);
		}
		if (!strncmp(opt, "x-", 2) || !strcmp(opt, "comment"))
			return 0;
	}
	mount_err("unknown option '%s%s%s' (see refdio mount --help)", opt, val ? "=" : "",
		  val ? val : "");
	return -EINVAL;
}

static int parse_opts(struct rd_mount_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !ret; tok = strtok_r(NULL, ",", &save))
		if (*tok)
			ret = parse_one(o, tok);
	free(copy);
	return ret;
}

void rd_mount_usage(FILE *f);

void rd_mount_usage(FILE *f)
{
	fprintf(f,
"usage: refdio mount [-f] [-d] [-o OPTIONS] IMAGE MOUNTPOINT\n"
"       refdio IMAGE MOUNTPOINT [-o OPTIONS]       (the form mount.fuse3 uses)\n"
"\n"
"Serves the refdio filesystem in IMAGE at MOUNTPOINT through FUSE. The daemon detaches\n"
"once the filesystem is mounted; every start-up error is reported before that. Stop it\n"
"with fusermount3 -u MOUNTPOINT, umount MOUNTPOINT, or SIGTERM/SIGINT: everything is\n"
"flushed and the image is marked clean.\n"
"\n"
"  -f               stay in the foreground\n"
"  -d               debug: print every FUSE request (implies -f)\n"
"  -o OPTIONS       comma-separated:\n"
"     ro                     read-only\n"
"     allow_other            let other users in (needs user_allow_other for non-root)\n"
"     nodefault_permissions  do not let the kernel check permissions (on by default)\n"
"     direct_io              FOPEN_DIRECT_IO on every open: no page cache\n"
"     writeback_cache        let the kernel cache writes\n"
"     sync                   every write is O_DSYNC\n"
"     threads=N              receiving threads (default 4)\n"
"     max_background=N       asynchronous requests the kernel may queue (default 64)\n"
"     attr_timeout=S         seconds the kernel caches attributes (default 1)\n"
"     entry_timeout=S        seconds the kernel caches names (default 1)\n"
"     strategy=S             how writes reach the disk: refctx (default: a window of\n"
"                            chunks in flight), pin (all read first), chunk (one chunk\n"
"                            at a time), bounce64 (synchronous 256K steps)\n"
"     window=W               refctx chunks in flight per write (default 8)\n"
"     chunk=SIZE             chunk size, 4K..64M in 4K steps (default 1M)\n"
"     issue=inline|punt      inline (default): the request's thread starts the first\n"
"                            chunks; punt: always a dio worker\n"
"     dio_workers=N          dio worker threads (default 4)\n"
"     max_held=SIZE          memory budget: bytes of chunk buffers all writes may hold\n"
"                            at once (default 256M); a write waits for its share, and\n"
"                            one that can never fit (a pin larger than this) fails\n"
"                            with ENOBUFS before anything is written\n"
"     max_held_user=SIZE     of it, what one user's writes may hold (default 3/4 of\n"
"                            max_held: a user whose memory stalls leaves the rest)\n"
"     max_window=W           an ioctl's window is cut to W (default 64)\n"
"     max_chunk=SIZE         an ioctl's chunk is cut to SIZE (default 16M)\n"
"     source_timeout=S       seconds one read of a caller's memory may take before the\n"
"                            write ends with what it has (default 5)\n"
"     fsname=NAME, subtype=NAME, and the generic mount flags (nosuid, nodev, noexec,\n"
"     noatime, ...) are passed on; an unknown option is an error.\n");
}

int rd_mount_parse(int argc, char **argv, struct rd_mount_opts *o)
{
	int pos = 0;

	memset(o, 0, sizeof(*o));
	o->default_permissions = true;
	o->threads = 4;
	o->max_background = 64;
	o->attr_timeout = 1.0;
	o->entry_timeout = 1.0;
	o->dio_strategy = RD_DIO_REFCTX;
	o->dio_issue = RD_DIO_INLINE;
	o->dio_window = 8;
	o->dio_chunk = 1u << 20;
	o->dio_workers = 4;
	o->max_held = 256ull << 20;
	o->max_window = 64;
	o->max_chunk = 16u << 20;
	o->source_timeout = 5.0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-f")) {
			o->foreground = true;
		} else if (!strcmp(a, "-d")) {
			o->debug = o->foreground = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			rd_mount_usage(stdout);
			return 1;
		} else if (!strncmp(a, "-o", 2)) {
			const char *list = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			int ret;

			if (!list) {
				mount_err("-o needs a list of options");
				return -EINVAL;
			}
			ret = parse_opts(o, list);
			if (ret)
				return ret;
		} else if (a[0] == '-' && a[1]) {
			mount_err("unknown argument '%s' (see refdio mount --help)", a);
			return -EINVAL;
		} else if (pos == 0) {
			o->image = a;
			pos++;
		} else if (pos == 1) {
			o->mountpoint = a;
			pos++;
		} else {
			mount_err("unexpected argument '%s'", a);
			return -EINVAL;
		}
	}
	if (pos != 2) {
		mount_err("needs IMAGE and MOUNTPOINT (see refdio mount --help)");
		return -EINVAL;
	}
	if (o->dio_window > o->max_window || o->dio_chunk > o->max_chunk) {
		mount_err("window=%u and chunk=%u must not exceed max_window=%u and max_chunk=%u",
			  o->dio_window, o->dio_chunk, o->max_window, o->max_chunk);
		return -EINVAL;
	}
	if (!o->max_held_user)
		o->max_held_user = o->max_held / 4 * 3;
	if (o->max_held_user > o->max_held) {
		mount_err("max_held_user=%llu exceeds max_held=%llu",
			  (unsigned long long)o->max_held_user, (unsigned long long)o->max_held);
		return -EINVAL;
	}
	/* Every chunk size allowed must fit a user's share at least once (a buffer is the
	 * next power of two), else writes of that size could never start. */
	if (dio_buf_bytes(o->max_chunk) > o->max_held_user) {
		mount_err("max_held_user=%llu is below one buffer of max_chunk=%u (%llu bytes)",
			  (unsigned long long)o->max_held_user, o->max_chunk,
			  (unsigned long long)dio_buf_bytes(o->max_chunk));
		return -EINVAL;
	}
	if (o->default_permissions && add_fuse_opt(o, "default_permissions"))
		return -EINVAL;
	if (!strstr(o->fuse_opts, "fsname=")) {
		char buf[PATH_MAX + 16];

		if (!strchr(o->image, ',') && strlen(o->image) < 256) {
			snprintf(buf, sizeof(buf), "fsname=%s", o->image);
			if (add_fuse_opt(o, buf))
				return -EINVAL;
		}
	}
	if (!strstr(o->fuse_opts, "subtype=") && add_fuse_opt(o, "subtype=refdio"))
		return -EINVAL;
	return 0;
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

/* The buffer a chunk of n bytes takes (the engine's size classes: powers of two). */
static uint64_t dio_buf_bytes(uint64_t n)
{
	uint64_t b = 4096;

	while (b < n)
		b <<= 1;
	return b;
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
		mount_err("/proc is not of this process's pid namespace (its NSpid is not this "
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
		mount_err("%s: %s", o->image, strerror(errno));
		return -errno;
	}
	if (stat(o->mountpoint, &st)) {
		mount_err("mountpoint %s: %s", o->mountpoint, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		mount_err("mountpoint %s: not a directory", o->mountpoint);
		return -ENOTDIR;
	}
	if (is_mountpoint(o->mountpoint)) {
		mount_err("mountpoint %s is busy: something is already mounted there",
			  o->mountpoint);
		return -EBUSY;
	}
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		mount_err("/dev/fuse: %s (is the fuse module loaded, and fuse3 installed?)",
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
		mount_err("%s: %s%s%s", d->opts.image, rd_strerror(ret), why[0] ? ": " : "", why);
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
		mount_err("starting the dio engine: %s", rd_strerror(ret));
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
		mount_err("could not start a FUSE session with options '%s'", d->opts.fuse_opts);
		goto close_fs;
	}
	if (fuse_session_mount(d->se, d->opts.mountpoint)) {
		mount_err("could not mount on %s", d->opts.mountpoint);
		goto destroy;
	}
	/* libfuse 3.14 reads up to 256 pages + 4 KiB per request. */
	ret = rd_rbuf_pool_init(&d->pool, (256u << 12) + 4096, d->opts.threads + 2,
				d->opts.threads + d->opts.max_background + 8);
	if (ret) {
		mount_err("out of memory");
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
		mount_err("receiving requests: %s", strerror(-ret));

	/* Teardown in the order daemon.h documents (on a signal the loop quiesced already). */
	rd_daemon_quiesce(d);
	rd_daemon_drain(d);
	rd_dio_destroy(d->dio);
	d->dio = NULL;
	d->stuck_reads = rd_dio_readers_destroy(d->readers);
	d->readers = NULL;
	rd_ioctl_exit(d);
	rd_notify_exit(d);
	cret = rd_fs_close(d->fs);
	d->fs = NULL;
	if (cret) {
		mount_err("closing %s: %s", d->opts.image, rd_strerror(cret));
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
		mount_err("pipe: %s", strerror(errno));
		status = 1;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		mount_err("fork: %s", strerror(errno));
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
				mount_err("the daemon was killed by signal %d during start-up",
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
