/*
 * dio_caller.c - who a direct write reads from: the caller's identity, taken once while
 * the thread is known to be the caller, and checked again after every read.
 *
 * Owns: struct rd_dio_caller: a pidfd on the caller's process; the caller thread's /proc
 * mem file, held open because it pins the address space the caller has at open (the
 * kernel's mmgrab) and tells, without touching a page, whether that address space still
 * has users; the process's credentials at open; the pid reads address (the thread for a
 * synchronous write, which is blocked in it; the process for an asynchronous one).
 *
 * Why each check (rd_dio_caller_check, after every read):
 *   - the pidfd is alive: the pid was not freed since open, so the pid that was read is
 *     still the caller's (a pid is only reused after its process was reaped);
 *   - the mem file's address space still has users: the caller did not exec (its old
 *     address space is then dropped) nor exit;
 *   - the credentials are the same: no setuid exec even if something else kept the old
 *     address space alive (a CLONE_VM child).
 * What is left: an exec of a program with the same credentials while a CLONE_VM process
 * keeps the old address space alive would let an asynchronous write read the new program's
 * memory, which belongs to the same user.
 *
 * Must never: read the caller's memory (dio_source_procmem.c does, with process_vm_readv),
 * fault a page of it (the probe reads an address no process can map: it never blocks on
 * the caller), or take a pid for granted without a pidfd check after the fact.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dio.h"

/* linux/pidfd.h (6.13+); Debian 12's headers predate it. */
struct dio_pidfd_info {
	uint64_t	mask;
	uint64_t	cgroupid;
	uint32_t	pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	uint32_t	spare0[1];
};
_Static_assert(sizeof(struct dio_pidfd_info) == 64, "PIDFD_INFO_SIZE_VER0");
#define DIO_PIDFD_GET_INFO	_IOWR(0xFF, 11, struct dio_pidfd_info)
#define DIO_PIDFD_INFO_PID	(1ull << 0)
#define DIO_PIDFD_INFO_CREDS	(1ull << 1)

/* An address no process can map (non-canonical on x86-64, beyond every user VA size):
 * a read of the mem file there is -EIO while the address space has users, 0 after. */
#define DIO_PROBE_ADDR		(1ull << 62)

struct creds {
	uint32_t	uid[4], gid[4];	/* real, effective, saved, fs */
};

struct rd_dio_caller {
	_Atomic unsigned refs;
	pid_t		tid, tgid, read_pid;
	bool		whole_process;
	int		pidfd;		/* the process */
	int		memfd;		/* /proc/TGID/task/TID/mem: the grab */
	char		task_path[48];	/* /proc/TGID/task/TID */
	struct creds	cr;
};

/* 1: PIDFD_GET_INFO works; -1: it does not (an older kernel); 0: not known yet. */
static _Atomic int pidfd_info_works;

static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return errno == ESRCH ? -ESRCH : -EIO;
	buf[n] = '\0';
	return 0;
}

/* "Name:\tv0\tv1..." of a /proc status file: up to n numbers. */
static int status_field(const char *status, const char *name, uint32_t *v, unsigned n)
{
	const char *p = strstr(status, name);

	if (!p)
		return -EIO;
	p += strlen(name);
	for (unsigned i = 0; i < n; i++) {
		char *end;

		v[i] = (uint32_t)strtoul(p, &end, 10);
		if (end == p)
			return -EIO;
		p = end;
	}
	return 0;
}

/* The process's credentials (and whether it is still there) through the pidfd, or its
 * /proc status file on kernels without PIDFD_GET_INFO. */
static int read_creds(const struct rd_dio_caller *c, struct creds *cr)
{
	char path[48], status[4096];
	int ret;

	if (atomic_load_explicit(&pidfd_info_works, memory_order_relaxed) >= 0) {
		struct dio_pidfd_info in = { .mask = DIO_PIDFD_INFO_PID | DIO_PIDFD_INFO_CREDS };

		if (!ioctl(c->pidfd, DIO_PIDFD_GET_INFO, &in)) {
			atomic_store_explicit(&pidfd_info_works, 1, memory_order_relaxed);
			*cr = (struct creds){ { in.ruid, in.euid, in.suid, in.fsuid },
					      { in.rgid, in.egid, in.sgid, in.fsgid } };
			return 0;
		}
		if (errno == ESRCH)
			return -ESRCH;
		if (errno != ENOTTY && errno != EINVAL)
			return -errno;
		atomic_store_explicit(&pidfd_info_works, -1, memory_order_relaxed);
	}
	if (syscall(SYS_pidfd_send_signal, c->pidfd, 0, NULL, 0))
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)c->tgid);
	ret = read_small(path, status, sizeof(status));
	if (!ret)
		ret = status_field(status, "\nUid:", cr->uid, 4);
	if (!ret)
		ret = status_field(status, "\nGid:", cr->gid, 4);
	return ret;
}

/* Whether the mem file's address space still has users (no page is touched). */
static bool mm_alive(const struct rd_dio_caller *c)
{
	char b;

	return pread(c->memfd, &b, 1, (off_t)DIO_PROBE_ADDR) < 0 && errno == EIO;
}

/* Whether the thread sits in the system call expected, with those arguments. */
static int check_syscall(const struct rd_dio_caller *c, const struct rd_dio_caller_expect *e)
{
	char path[64], buf[512];
	unsigned long long a[3];
	long nr;
	int ret;

	snprintf(path, sizeof(path), "%s/syscall", c->task_path);
	ret = read_small(path, buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%ld %llx %llx %llx", &nr, &a[0], &a[1], &a[2]) != 4)
		return -ESRCH;	/* "running", or not in a system call */
#if defined(__x86_64__)
	if (nr == 54)	/* a 32-bit caller's ioctl */
		nr = SYS_ioctl;
#endif
	if (nr != e->nr || (uint32_t)a[1] != (uint32_t)e->arg1 || a[2] != e->arg2)
		return -ESRCH;
	return 0;
}

int rd_dio_caller_open(pid_t tid, bool whole_process, const struct rd_dio_caller_expect *expect,
		       struct rd_dio_caller **out)
{
	struct rd_dio_caller *c;
	char path[64], status[4096];
	uint32_t tgid;
	struct stat st;
	int ret;

	*out = NULL;
	if (tid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	ret = read_small(path, status, sizeof(status));
	if (!ret)
		ret = status_field(status, "\nTgid:", &tgid, 1);
	if (ret)
		return ret;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	c->tid = tid;
	c->tgid = (pid_t)tgid;
	c->whole_process = whole_process;
	c->read_pid = whole_process ? c->tgid : tid;
	c->memfd = -1;
	snprintf(c->task_path, sizeof(c->task_path), "/proc/%d/task/%d", (int)c->tgid, (int)tid);

	c->pidfd = (int)syscall(SYS_pidfd_open, c->tgid, 0);
	if (c->pidfd < 0) {
		ret = errno == ESRCH ? -ESRCH : -errno;
		goto err;
	}
	snprintf(path, sizeof(path), "%s/mem", c->task_path);
	c->memfd = open(path, O_RDONLY | O_CLOEXEC);	/* the grab */
	if (c->memfd < 0) {
		ret = errno == ENOENT || errno == ESRCH ? -ESRCH : -errno;
		goto err;
	}
	ret = read_creds(c, &c->cr);
	if (!ret && expect)
		ret = check_syscall(c, expect);
	if (ret)
		goto err;
	/* Only now: everything above belongs to the process the pidfd names, and the thread
	 * is one of its threads, unless either went away meanwhile. */
	if (stat(c->task_path, &st) || !rd_dio_caller_check(c)) {
		ret = -ESRCH;
		goto err;
	}
	*out = c;
	return 0;

err:
	rd_dio_caller_put(c);
	return ret;
}

bool rd_dio_caller_check(struct rd_dio_caller *c)
{
	struct creds now;
	struct stat st;

	if (read_creds(c, &now) || memcmp(&now, &c->cr, sizeof(now)))
		return false;
	/* A thread's id is freed when the thread exits: it must still be one of ours. */
	if (!c->whole_process && stat(c->task_path, &st))
		return false;
	return mm_alive(c);
}

pid_t rd_dio_caller_pid(const struct rd_dio_caller *c)
{
	return c->read_pid;
}

void rd_dio_caller_get(struct rd_dio_caller *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void rd_dio_caller_put(struct rd_dio_caller *c)
{
	if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (c->memfd >= 0)
		close(c->memfd);	/* mmdrop */
	if (c->pidfd >= 0)
		close(c->pidfd);
	free(c);
}
