/*
 * bench_env.c - where `refdio bench` runs: the scratch directory, the image (formatted by
 * a child `refdio format`), the mount (a child `refdio mount -f`, whose pid is the
 * daemon's), the baseline directory on the host filesystem, and their removal.
 *
 * Owns: every path and process the bench creates. Lifetime rules:
 *  - The daemon is our child in a session of its own (a Ctrl-C at the terminal reaches the
 *    bench, not the daemon), with PR_SET_PDEATHSIG = SIGTERM: if the bench is killed
 *    outright the daemon still unmounts and marks the image clean.
 *  - bench_env_finish() is the one exit path: it removes our directory on the mount,
 *    unmounts what we mounted (fusermount3 -u, then SIGTERM to our daemon's pid, then
 *    SIGKILL and a lazy unmount), waits for the daemon, checks the image with a child
 *    `refdio fsck -n`, and removes the image and directories we made (unless e->keep, which
 *    `refdio demo --keep` sets; the demo also calls it once with keep set to look at the
 *    image between the fsck and the removal). It never removes a path below a mount point
 *    that is still mounted (nftw with FTW_MOUNT).
 *  - Signals only set bench_stop; the waits here go on regardless (cleanup must finish).
 *
 * Must never: signal or unmount anything it did not start or mount; delete anything it
 * did not create.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <dirent.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cmd.h"

volatile sig_atomic_t bench_stop;

static void on_signal(int sig)
{
	(void)sig;
	bench_stop = 1;
}

void bench_signals_install(void)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no SA_RESTART: calls end */

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- children ------------------------------------------------------------------------ */

static void child_exec(char *const argv[], int out_fd, int err_fd)
{
	int null = open("/dev/null", O_RDWR);

	if (null >= 0)
		dup2(null, 0);
	dup2(out_fd >= 0 ? out_fd : null, 1);
	dup2(err_fd >= 0 ? err_fd : null, 2);
	if (strchr(argv[0], '/'))
		execv(argv[0], argv);
	else
		execvp(argv[0], argv);
	_exit(127);
}

static int wait_status(pid_t pid)
{
	int ws;

	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	return 128 + WTERMSIG(ws);
}

int bench_run_child(char *const argv[], const char *log)
{
	int fd = -1;
	pid_t pid;

	if (log) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			return -1;
	}
	pid = fork();
	if (pid < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!pid)
		child_exec(argv, fd, fd);
	if (fd >= 0)
		close(fd);
	return wait_status(pid);
}

int bench_run_capture(char *const argv[], char *buf, size_t len)
{
	int pfd[2];
	size_t got = 0;
	pid_t pid;

	if (!len || pipe2(pfd, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (!pid)
		child_exec(argv, pfd[1], pfd[1]);
	close(pfd[1]);
	for (;;) {
		char tmp[4096];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && got + 1 < len; i++)
			buf[got++] = tmp[i];
	}
	buf[got] = 0;
	close(pfd[0]);
	return wait_status(pid);
}

static void print_tail(const char *path)
{
	char buf[2048];
	FILE *f = fopen(path, "r");
	long size;
	size_t n;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	if (n)
		fprintf(stderr, "--- %s ---\n%s%s", path, buf, buf[n - 1] == '\n' ? "" : "\n");
}

/* ---- paths --------------------------------------------------------------------------- */

static bool is_mounted(const char *path)
{
	char line[4096], mp[PATH_MAX];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, path))
			found = true;
	fclose(f);
	return found;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Removes path and what is below it, never crossing into another filesystem. */
static void rm_tree(const char *path)
{
	if (path[0])
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static int pathcat(char *out, const char *dir, const char *name)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static const char *fs_name(long type)
{
	switch (type) {
	case EXT4_SUPER_MAGIC: return "ext4";	/* also ext2, ext3 */
	case XFS_SUPER_MAGIC: return "xfs";
	case BTRFS_SUPER_MAGIC: return "btrfs";
	case TMPFS_MAGIC: return "tmpfs";
	case RAMFS_MAGIC: return "ramfs";
	case 0x65735546: return "fuse";
	case 0xca451a4e: return "bcachefs";
	case 0x2fc12fc1: return "zfs";
	case NFS_SUPER_MAGIC: return "nfs";
	case OVERLAYFS_SUPER_MAGIC: return "overlay";
	default: return "other";
	}
}

/*
 * A baseline must reach a device: a memory filesystem (tmpfs, ramfs) would compare refdio
 * on a disk with RAM, and one without O_DIRECT cannot run the direct jobs.
 */
static int check_baseline(struct bench_env *e, const char *shown)
{
	char probe[PATH_MAX];
	struct statfs sf;
	void *buf = NULL;
	int fd, ret = -1;

	if (statfs(e->base, &sf))
		return rd_fail("bench", "baseline %s: %s", shown, strerror(errno)), -1;
	snprintf(e->base_fs, sizeof(e->base_fs), "%s", fs_name((long)sf.f_type));
	if (pathcat(probe, e->base, "odirect-probe"))
		return -1;
	fd = open(probe, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rd_fail("bench", "baseline %s (%s) does not support O_DIRECT (%s): the everyday "
			"jobs and the host writes need it; choose --baseline DIR on a disk "
			"filesystem (ext4, xfs, btrfs)", shown, e->base_fs, strerror(errno));
		unlink(probe);
		return -1;
	}
	if (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC) {
		rd_fail("bench", "baseline %s is on %s, which keeps files in memory: its O_DIRECT "
			"never reaches a device, so it is no baseline for a filesystem on a disk; "
			"choose --baseline DIR on a disk filesystem (ext4, xfs, btrfs)",
			shown, e->base_fs);
		goto out;
	}
	if (posix_memalign(&buf, 4096, 4096))
		goto out;
	memset(buf, 0x5a, 4096);
	if (pwrite(fd, buf, 4096, 0) != 4096) {
		rd_fail("bench", "baseline %s (%s): an O_DIRECT write failed (%s); choose "
			"--baseline DIR on a disk filesystem", shown, e->base_fs,
			strerror(errno));
		goto out;
	}
	ret = 0;
out:
	free(buf);
	close(fd);
	unlink(probe);
	return ret;
}

int bench_env_prepare(struct bench_env *e, const struct bench_opts *o)
{
	char tmpl[PATH_MAX];
	ssize_t n;

	e->work_fd = -1;
	e->daemon_status = -1;
	e->fsck_status = -1;
	n = readlink("/proc/self/exe", e->self, sizeof(e->self) - 1);
	if (n <= 0)
		return rd_fail("bench", "cannot find this program: %s", strerror(errno)), -1;
	e->self[n] = 0;

	if (snprintf(tmpl, sizeof(tmpl), "%s/refdio-bench.XXXXXX", o->dir) >= (int)sizeof(tmpl))
		return rd_fail("bench", "--dir %s: path too long", o->dir), -1;
	if (!mkdtemp(tmpl))
		return rd_fail("bench", "--dir %s: %s", o->dir, strerror(errno)), -1;
	snprintf(e->scratch, sizeof(e->scratch), "%s", tmpl);
	if (pathcat(e->log, e->scratch, "daemon.log"))
		goto fail;

	if (o->image) {
		if (!realpath(o->image, e->image)) {
			rd_fail("bench", "--image %s: %s", o->image, strerror(errno));
			goto fail;
		}
	} else if (!o->mount) {
		if (pathcat(e->image, e->scratch, "image"))
			goto fail;
		e->own_image = true;
	}
	if (o->mount) {
		if (!realpath(o->mount, e->mnt)) {
			rd_fail("bench", "--mount %s: %s", o->mount, strerror(errno));
			goto fail;
		}
	} else {
		if (pathcat(e->mnt, e->scratch, "mnt") || mkdir(e->mnt, 0755)) {
			rd_fail("bench", "%s/mnt: %s", e->scratch, strerror(errno));
			goto fail;
		}
		e->own_mount = true;
	}

	if (o->baseline) {
		if (snprintf(tmpl, sizeof(tmpl), "%s/refdio-bench-base.XXXXXX", o->baseline) >=
		    (int)sizeof(tmpl) || !mkdtemp(tmpl)) {
			rd_fail("bench", "--baseline %s: %s", o->baseline, strerror(errno));
			goto fail;
		}
		snprintf(e->base, sizeof(e->base), "%s", tmpl);
	} else if (pathcat(e->base, e->scratch, "baseline") || mkdir(e->base, 0755)) {
		rd_fail("bench", "%s/baseline: %s", e->scratch, strerror(errno));
		goto fail;
	}
	e->base_made = true;
	if (check_baseline(e, o->baseline ? o->baseline : e->base))
		goto fail;
	return 0;
fail:
	if (o->baseline)
		rm_tree(e->base);
	rm_tree(e->scratch);
	e->scratch[0] = 0;
	e->base_made = e->own_image = false;
	return -1;
}

/* ---- start --------------------------------------------------------------------------- */

static int stats_probe(const char *path)
{
	struct refdio_stats st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	ret = ioctl(fd, REFDIO_IOC_STATS, &st) ? -errno : 0;
	close(fd);
	return ret;
}

static int start_daemon(struct bench_env *e)
{
	char *argv[8];
	int argc = 0, fd;
	pid_t pid, parent = getpid();

	argv[argc++] = e->self;
	argv[argc++] = "mount";
	argv[argc++] = "-f";
	if (e->mount_opts[0]) {
		argv[argc++] = "-o";
		argv[argc++] = e->mount_opts;
	}
	argv[argc++] = e->image;
	argv[argc++] = e->mnt;
	argv[argc] = NULL;

	fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return rd_fail("bench", "%s: %s", e->log, strerror(errno)), -1;
	pid = fork();
	if (pid < 0) {
		close(fd);
		return rd_fail("bench", "fork: %s", strerror(errno)), -1;
	}
	if (!pid) {
		setsid();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		child_exec(argv, fd, fd);
	}
	close(fd);
	e->daemon = pid;
	e->daemon_child = true;

	for (int i = 0; i < 600; i++) {	/* 30 s */
		int ws;

		if (!stats_probe(e->mnt) && is_mounted(e->mnt)) {
			e->served = true;
			return 0;
		}
		if (waitpid(pid, &ws, WNOHANG) == pid) {
			e->daemon = 0;
			e->daemon_child = false;
			rd_fail("bench", "the daemon (refdio mount) exited at start-up");
			print_tail(e->log);
			return -1;
		}
		if (bench_stop)
			return -1;
		sleep_s(0.05);
	}
	rd_fail("bench", "%s did not appear as a refdio mount within 30 s", e->mnt);
	print_tail(e->log);
	return -1;
}

/* The daemon of a mount we did not start: the one refdio process (not a bench) whose
 * command line names the mount point; 0 when there is none or more than one. */
static pid_t find_daemon(const char *mnt)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;
	unsigned hits = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], cmd[4096], real[PATH_MAX];
		bool refdio = false, names_mnt = false;
		size_t n;
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9' || atoi(de->d_name) == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fread(cmd, 1, sizeof(cmd) - 1, f);
		fclose(f);
		cmd[n] = 0;
		for (size_t i = 0; i < n; i += strlen(cmd + i) + 1) {
			const char *arg = cmd + i, *base = strrchr(arg, '/');

			if (!i && strstr(base ? base + 1 : arg, "refdio"))
				refdio = true;
			if (i && i == strlen(cmd) + 1 && !strcmp(arg, "bench"))
				refdio = false;	/* another bench on the same mount */
			if (i && realpath(arg, real) && !strcmp(real, mnt))
				names_mnt = true;
		}
		if (refdio && names_mnt) {
			found = (pid_t)atoi(de->d_name);
			hits++;
		}
	}
	closedir(d);
	return hits == 1 ? found : 0;
}

int bench_env_start(struct bench_env *e, const struct bench_opts *o)
{
	char size[32], name[64];
	int ret;

	if (e->own_image) {
		char *argv[] = { e->self, "format", e->image, "--size", size, "--force", NULL };
		char flog[PATH_MAX];

		snprintf(size, sizeof(size), "%" PRIu64, e->image_size);
		if (pathcat(flog, e->scratch, "format.log"))
			return -1;
		ret = bench_run_child(argv, flog);
		if (ret) {
			rd_fail("bench", "refdio format %s failed (exit %d)", e->image, ret);
			print_tail(flog);
			return -1;
		}
	}
	if (e->own_mount) {
		if (start_daemon(e))
			return -1;
	} else {
		ret = stats_probe(e->mnt);
		if (ret)
			return rd_fail("bench", "--mount %s: not a refdio mount (%s)", e->mnt,
				       strerror(-ret)), -1;
		e->daemon = o->daemon_pid ? o->daemon_pid : find_daemon(e->mnt);
		if (!e->daemon)
			fprintf(stderr, "refdio bench: the daemon of %s was not found (give "
				"--daemon-pid): daemon CPU and peak RSS will not be measured\n",
				e->mnt);
	}
	snprintf(name, sizeof(name), "refdio-bench.%d", (int)getpid());
	if (pathcat(e->work, e->mnt, name) || mkdir(e->work, 0755)) {
		rd_fail("bench", "%s/%s: %s", e->mnt, name, strerror(errno));
		e->work[0] = 0;
		return -1;
	}
	e->work_fd = open(e->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (e->work_fd < 0)
		return rd_fail("bench", "%s: %s", e->work, strerror(errno)), -1;
	if (e->daemon)
		e->clear_refs_ok = !bench_proc_reset_hwm(e->daemon);
	return 0;
}

int bench_env_free_bytes(const struct bench_env *e, uint64_t *out)
{
	struct statvfs sv;

	if (fstatvfs(e->work_fd, &sv))
		return -errno;
	*out = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

/* ---- finish -------------------------------------------------------------------------- */

/* Waits up to secs for our daemon; true when it exited (status recorded). */
static bool wait_daemon(struct bench_env *e, double secs)
{
	for (double t = 0; t < secs; t += 0.05) {
		int ws;
		pid_t r = waitpid(e->daemon, &ws, WNOHANG);

		if (r == e->daemon) {
			e->daemon_status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
			e->daemon = 0;
			e->daemon_child = false;
			return true;
		}
		if (r < 0 && errno != EINTR)
			return false;
		sleep_s(0.05);
	}
	return false;
}

static void unmount_ours(struct bench_env *e)
{
	char *um[] = { "fusermount3", "-u", e->mnt, NULL };
	char *lazy[] = { "fusermount3", "-u", "-z", e->mnt, NULL };

	bool unmounted = false;

	for (int i = 0; i < 10 && is_mounted(e->mnt); i++) {
		if (!bench_run_child(um, NULL)) {
			unmounted = true;
			break;
		}
		sleep_s(0.5);	/* busy: a child of ours may still hold a file */
	}
	if (!e->daemon_child)
		return;
	/* Unmounted: the daemon flushes, marks the image clean and exits by itself. Not
	 * mounted (a stop during start-up) or not unmountable: SIGTERM asks the same. */
	if (unmounted && wait_daemon(e, 120))
		return;
	if (unmounted)
		fprintf(stderr, "refdio bench: the daemon (pid %d) did not stop: SIGTERM\n",
			(int)e->daemon);
	kill(e->daemon, SIGTERM);
	if (wait_daemon(e, 120))
		return;
	fprintf(stderr, "refdio bench: the daemon (pid %d) did not stop: SIGKILL\n",
		(int)e->daemon);
	kill(e->daemon, SIGKILL);
	wait_daemon(e, 30);
	if (is_mounted(e->mnt))
		bench_run_child(lazy, NULL);
}

void bench_env_finish(struct bench_env *e, bool skip_fsck)
{
	if (e->work_fd >= 0) {
		close(e->work_fd);
		e->work_fd = -1;
	}
	if (e->work[0] && !e->keep) {
		rm_tree(e->work);
		e->work[0] = 0;
	}
	if (e->own_mount) {
		unmount_ours(e);
		e->own_mount = false;
		if (e->daemon_status > 0) {
			fprintf(stderr, "refdio bench: the daemon exited with status %d\n",
				e->daemon_status);
			print_tail(e->log);
		}
	}
	if (e->served && !e->daemon_child && !is_mounted(e->mnt)) {
		char *argv[] = { e->self, "fsck", "-n", e->image, NULL };
		char flog[PATH_MAX];

		e->served = false;
		if (skip_fsck) {
			snprintf(e->fsck_note, sizeof(e->fsck_note), "skipped (interrupted)");
		} else if (!pathcat(flog, e->scratch, "fsck.log")) {
			e->fsck_status = bench_run_child(argv, flog);
			snprintf(e->fsck_note, sizeof(e->fsck_note), "%s",
				 e->fsck_status == 0 ? "clean" : "NOT CLEAN");
			if (e->fsck_status)
				print_tail(flog);
		}
	}
	if (e->own_image && !e->daemon_child && !e->keep) {
		e->image_removed = !unlink(e->image);
		e->own_image = false;
	}
	if (e->base_made && strncmp(e->base, e->scratch, strlen(e->scratch)))
		rm_tree(e->base);
	e->base_made = false;
	if (e->scratch[0] && !e->keep && !(e->mnt[0] && is_mounted(e->mnt) &&
			       !strncmp(e->mnt, e->scratch, strlen(e->scratch)))) {
		rm_tree(e->scratch);
		e->scratch[0] = 0;
	}
}
