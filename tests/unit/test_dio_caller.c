/*
 * test_dio_caller.c - the caller boundary of the engine: who is read (dio_caller.c) and
 * what a caller whose memory never answers can do to the reader threads (dio_readers.c).
 *
 * Identity: a child opened as a caller and checked: fine while it waits (the negative
 * control), not the caller any more after it exec()s (its address space is dropped), after
 * its credentials change (setresuid), or, opened as one thread, once that thread exits; a
 * thread that is not in the system call expected is refused; a reaped one is -ESRCH.
 *
 * Stalls: the child registers part of its buffer with userfaultfd and never resolves it
 * (unless told to, the negative control). A write reading it through the procmem source
 * ends with the prefix before the stalled chunk once the deadline passes (and not before;
 * with the page resolved instead, the write completes whole); rd_dio_cancel ends a stalled
 * write at once; the stuck read is written off (its thread a ghost, counted as stalled)
 * and its buffer is inaccessible; one owner's stalled reads neither take the threads
 * another owner needs nor exceed the owner's quota (further reads refused at once); and
 * destroying the readers with a ghost still stuck returns at once. Needs root (ptrace
 * access and a userfaultfd that handles the kernel's faults).
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "refdio/errors.h"

#define MIB ((uint64_t)1024 * 1024)

enum child_mode {
	C_WAIT,		/* pattern, then wait for SIGUSR1: exec (sleep) */
	C_SETUID,	/* pattern, then wait for SIGUSR1: setresuid(65534) */
	C_UFFD,		/* pattern; [stall_off, len) registered missing; SIGUSR1 resolves it */
};

struct child {
	pid_t		pid;
	uint64_t	addr;
	int		pipe;	/* the child writes a word after each step */
};

static struct child spawn(uint64_t len, uint64_t stall_off, uint64_t seed, enum child_mode mode)
{
	pid_t parent = getpid();
	struct child c = { 0 };
	int p[2];

	CHECK(!pipe(p));
	c.pid = fork();
	CHECK(c.pid >= 0);
	if (!c.pid) {
		sigset_t set;
		uint8_t *b;
		uint64_t a;
		int sig, u = -1;

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		b = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b == MAP_FAILED)
			_exit(1);
		pat_fill(b, mode == C_UFFD ? stall_off : len, seed, 0);
		if (mode == C_UFFD) {
			struct uffdio_api api = { .api = UFFD_API };
			struct uffdio_register reg = {
				.range = { (uint64_t)(uintptr_t)b + stall_off, len - stall_off },
				.mode = UFFDIO_REGISTER_MODE_MISSING };

			madvise(b + stall_off, len - stall_off, MADV_DONTNEED);
			u = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
			if (u < 0 || ioctl(u, UFFDIO_API, &api) || ioctl(u, UFFDIO_REGISTER, &reg))
				_exit(2);
		}
		a = (uint64_t)(uintptr_t)b;
		if (write(p[1], &a, sizeof(a)) != sizeof(a))
			_exit(1);
		sigwait(&set, &sig);
		if (mode == C_WAIT)
			execlp("sleep", "sleep", "600", (char *)NULL);
		if (mode == C_SETUID && setresuid(65534, 65534, 65534))
			_exit(3);
		if (mode == C_UFFD) {
			struct uffdio_zeropage z = {
				.range = { (uint64_t)(uintptr_t)b + stall_off, len - stall_off } };

			if (ioctl(u, UFFDIO_ZEROPAGE, &z))
				_exit(4);
		}
		if (write(p[1], &a, sizeof(a)) != sizeof(a))
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	CHECK_EQ(read(p[0], &c.addr, sizeof(c.addr)), sizeof(c.addr));
	c.pipe = p[0];
	return c;
}

/* Tells the child to take its step; waits until it did (exec: until it is another image). */
static void step(struct child *c, bool exec)
{
	uint64_t x;

	kill(c->pid, SIGUSR1);
	if (!exec) {
		CHECK_EQ(read(c->pipe, &x, sizeof(x)), sizeof(x));
		return;
	}
	for (int i = 0; i < 500; i++) {
		char path[64], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)c->pid);
		f = fopen(path, "r");
		if (f && fgets(comm, sizeof(comm), f) && !strncmp(comm, "sleep", 5)) {
			fclose(f);
			return;
		}
		if (f)
			fclose(f);
		sleep_us(10000);
	}
	CHECK(!"the child did not exec");
}

static void reap(struct child *c)
{
	kill(c->pid, SIGKILL);
	CHECK_EQ(waitpid(c->pid, NULL, 0), c->pid);
	close(c->pipe);
}

static struct rd_dio_source *csrc(struct rd_dio_readers *r, pid_t pid, uint64_t owner,
				  uint64_t addr, uint64_t len)
{
	struct rd_dio_source *src;
	struct rd_dio_caller *c;

	CHECK_OK(rd_dio_caller_open(pid, true, NULL, &c));
	CHECK_OK(rd_dio_source_procmem(r, c, owner, addr, len, &src));
	rd_dio_caller_put(c);
	return src;
}

/* ---- identity ---------------------------------------------------------------------------- */

struct sleeper {
	int	stop;
	pid_t	tid;
};

static void *thread_sleeper(void *arg)
{
	struct sleeper *sl = arg;

	__atomic_store_n(&sl->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	while (!__atomic_load_n(&sl->stop, __ATOMIC_ACQUIRE))
		sleep_us(1000);
	return NULL;
}

static void identity(struct rd_dio *d, struct rd_dio_readers *r, uint64_t seed)
{
	const uint64_t len = 4 * MIB;
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_caller *c;
	struct rd_dio_args a = { 0 };
	struct child ch;
	struct tsink ts;

	so.file_size = len;
	CHECK_OK(tsink_init(&ts, &so));

	/* exec: the negative control first (the same child before its exec). */
	ch = spawn(len, 0, seed, C_WAIT);
	CHECK_OK(rd_dio_caller_open(ch.pid, true, NULL, &c));
	CHECK(rd_dio_caller_check(c));
	CHECK_EQ(rd_dio_pwrite(d, &ts.sink, csrc(r, ch.pid, 0, ch.addr, len), &a), len);
	CHECK_OK(pat_check(ts.file, len, seed, 0));
	{
		struct rd_dio_source *src = csrc(r, ch.pid, 0, ch.addr, len);

		step(&ch, true);
		CHECK(!rd_dio_caller_check(c));
		/* The same address in the new image (a sleep binary) is not the caller's. */
		tsink_reset(&ts);
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), -ESRCH);
		CHECK_EQ(ts.log_n, 0);
	}
	rd_dio_caller_put(c);
	reap(&ch);
	CHECK_EQ(rd_dio_caller_open(ch.pid, true, NULL, &c), -ESRCH);

	/* Credentials. */
	ch = spawn(len, 0, seed, C_SETUID);
	CHECK_OK(rd_dio_caller_open(ch.pid, true, NULL, &c));
	CHECK(rd_dio_caller_check(c));
	step(&ch, false);
	CHECK(!rd_dio_caller_check(c));
	rd_dio_caller_put(c);
	reap(&ch);

	/* One thread: a thread of ours, gone when it exits. */
	{
		struct sleeper sl = { 0 };
		pthread_t t;
		pid_t tid;

		CHECK(!pthread_create(&t, NULL, thread_sleeper, &sl));
		while (!(tid = __atomic_load_n(&sl.tid, __ATOMIC_ACQUIRE)))
			sleep_us(1000);
		CHECK_OK(rd_dio_caller_open(tid, false, NULL, &c));
		CHECK(rd_dio_caller_check(c));
		CHECK_EQ(rd_dio_caller_pid(c), tid);
		__atomic_store_n(&sl.stop, 1, __ATOMIC_RELEASE);
		pthread_join(t, NULL);
		for (int i = 0; i < 100 && rd_dio_caller_check(c); i++)
			sleep_us(10000);
		CHECK(!rd_dio_caller_check(c));
		rd_dio_caller_put(c);
	}

	/* Not in the system call expected: refused (the daemon's check on the ioctl). */
	{
		struct rd_dio_caller_expect ex = { .nr = SYS_ioctl, .arg1 = 0xc068d101,
						   .arg2 = 0x1000 };

		ch = spawn(len, 0, seed, C_WAIT);
		CHECK_EQ(rd_dio_caller_open(ch.pid, true, &ex, &c), -ESRCH);
		/* It sits in rt_sigtimedwait: expecting that passes (the control). */
		ex.nr = SYS_rt_sigtimedwait;
		for (int i = 0; i < 100; i++) {
			char path[64], buf[256];
			unsigned long long a0, a1, a2;
			long nr = -1;
			FILE *f;

			snprintf(path, sizeof(path), "/proc/%d/syscall", (int)ch.pid);
			f = fopen(path, "r");
			if (f && fgets(buf, sizeof(buf), f))
				(void)sscanf(buf, "%ld %llx %llx %llx", &nr, &a0, &a1, &a2);
			if (f)
				fclose(f);
			if (nr == SYS_rt_sigtimedwait) {
				ex.arg1 = a1;
				ex.arg2 = a2;
				break;
			}
			sleep_us(10000);
		}
		CHECK_OK(rd_dio_caller_open(ch.pid, true, &ex, &c));
		rd_dio_caller_put(c);
		reap(&ch);
	}
	tsink_exit(&ts);
}

/* ---- stalls ------------------------------------------------------------------------------ */

struct waiter {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	bool		done;
	long		res;
	double		t_done;
};

static void on_done(void *priv, long res)
{
	struct waiter *wt = priv;

	pthread_mutex_lock(&wt->lock);
	wt->res = res;
	wt->t_done = secs_now();
	wt->done = true;
	pthread_cond_signal(&wt->cond);
	pthread_mutex_unlock(&wt->lock);
}

static void wait_done(struct waiter *wt)
{
	pthread_mutex_lock(&wt->lock);
	while (!wt->done)
		pthread_cond_wait(&wt->cond, &wt->lock);
	pthread_mutex_unlock(&wt->lock);
}

static void stalls(struct rd_dio *d, uint64_t seed, double timeout)
{
	const uint64_t len = 8 * MIB, stall = 3 * MIB;
	struct rd_dio_readers_opts ro = { .threads = 4, .max_stalled_owner = 2,
					  .timeout_ns = (uint64_t)(timeout * 1e9) };
	struct tsink_opts so = tsink_opts_default();
	struct rd_dio_readers_stats rs;
	struct rd_dio_readers *r;
	struct child ch;
	struct tsink ts;
	double t0;

	so.file_size = len;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_OK(rd_dio_readers_create(&ro, &r));
	ch = spawn(len, stall, seed, C_UFFD);

	/* The deadline ends the write with the prefix before the stalled chunk (each
	 * strategy as its own owner: an owner's stuck reads count against it). */
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
		struct rd_dio_args a = { .strategy = s, .window = 4, .done = on_done,
					 .priv = &wt };
		uint64_t owner = 100 + s, stalled0;

		rd_dio_readers_stats(r, &rs);
		stalled0 = rs.stalled;
		tsink_reset(&ts);
		memset(ts.file, 0, len);
		t0 = secs_now();
		CHECK_OK(rd_dio_submit(d, &ts.sink, csrc(r, ch.pid, owner, ch.addr, len), &a,
				       NULL));
		wait_done(&wt);
		fprintf(stderr, "%s: a stalled caller's write ended after %.3f s (deadline %.3f s) "
			"with %ld\n", rd_dio_strategy_name(s), wt.t_done - t0, timeout, wt.res);
		CHECK(wt.t_done - t0 >= timeout * 0.9);
		CHECK(wt.t_done - t0 < timeout + 2.0);
		CHECK_EQ(wt.res, (long)stall);
		CHECK_OK(pat_check(ts.file, stall, seed, 0));
		for (uint64_t i = stall; i < len; i += 4096)
			CHECK(ts.file[i] == 0);
		/* Written off, not waited for: stuck reads are counted, their threads gone. */
		rd_dio_readers_stats(r, &rs);
		CHECK(rs.stalled > stalled0);
		CHECK_EQ(rs.running, 0);
		/* The quota: once an owner has enough reads stuck, its next reads are refused
		 * at once; another owner is not held up. */
		if (rs.stalled - stalled0 >= ro.max_stalled_owner) {
			struct waiter w2 = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
			struct rd_dio_args a2 = { .strategy = RD_DIO_REFCTX, .done = on_done,
						  .priv = &w2 };

			t0 = secs_now();
			CHECK_OK(rd_dio_submit(d, &ts.sink, csrc(r, ch.pid, owner, ch.addr, MIB),
					       &a2, NULL));
			wait_done(&w2);
			CHECK_EQ(w2.res, -ETIMEDOUT);
			/* Held up, it would have waited out the deadline. */
			CHECK(w2.t_done - t0 < timeout * 0.9);
			/* Another owner is not held up: its write of the readable part runs. */
			tsink_reset(&ts);
			a2.done = NULL;
			t0 = secs_now();
			CHECK_EQ(rd_dio_pwrite(d, &ts.sink, csrc(r, ch.pid, 200, ch.addr, stall),
					       &a2), (long)stall);
			CHECK(secs_now() - t0 < timeout * 0.9);
		}
	}

	/* A cancel ends a stalled write at once, whatever the deadline. */
	{
		struct rd_dio_readers_opts slow = ro;
		struct rd_dio_readers *r2;
		struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
		struct rd_dio_args a = { .strategy = RD_DIO_REFCTX, .window = 2, .done = on_done,
					 .priv = &wt };
		struct rd_dio_write *w;

		slow.timeout_ns = 600ull * 1000000000;
		CHECK_OK(rd_dio_readers_create(&slow, &r2));
		tsink_reset(&ts);
		CHECK_OK(rd_dio_submit(d, &ts.sink, csrc(r2, ch.pid, 9, ch.addr, len), &a, &w));
		sleep_us((unsigned)(timeout * 1e6));
		pthread_mutex_lock(&wt.lock);
		CHECK(!wt.done);	/* still stalled: no deadline for 600 s */
		pthread_mutex_unlock(&wt.lock);
		t0 = secs_now();
		rd_dio_cancel(w);
		wait_done(&wt);
		fprintf(stderr, "cancel of a stalled write: done after %.3f s with %ld\n",
			wt.t_done - t0, wt.res);
		CHECK(wt.t_done - t0 < 0.5);
		CHECK_EQ(wt.res, (long)stall);
		rd_dio_write_put(w);
		/* Its ghost is still stuck in the child's memory: destroy does not wait. */
		rd_dio_readers_stats(r2, &rs);
		CHECK(rs.stalled >= 1);
		t0 = secs_now();
		CHECK(rd_dio_readers_destroy(r2) >= 1);
		CHECK(secs_now() - t0 < 0.5);
	}

	/* The negative control: the same stalled range, resolved while the write waits. */
	{
		struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
		struct rd_dio_args a = { .strategy = RD_DIO_REFCTX, .done = on_done,
					 .priv = &wt };
		struct rd_dio_readers_opts slow = ro;
		struct rd_dio_readers *r3;

		slow.timeout_ns = 600ull * 1000000000;
		CHECK_OK(rd_dio_readers_create(&slow, &r3));
		tsink_reset(&ts);
		CHECK_OK(rd_dio_submit(d, &ts.sink, csrc(r3, ch.pid, 10, ch.addr, len), &a, NULL));
		sleep_us(100000);
		step(&ch, false);	/* zero pages appear */
		wait_done(&wt);
		CHECK_EQ(wt.res, (long)len);
		CHECK_OK(pat_check(ts.file, stall, seed, 0));
		for (uint64_t i = stall; i < len; i += 4096)
			CHECK(ts.file[i] == 0);
		/* The ghosts of the first reader pool return now (their pages exist). */
		for (int i = 0; i < 200; i++) {
			rd_dio_readers_stats(r, &rs);
			if (!rs.stalled)
				break;
			sleep_us(10000);
		}
		CHECK_EQ(rs.stalled, 0);
		rd_dio_readers_destroy(r3);
	}
	reap(&ch);
	rd_dio_readers_destroy(r);
	tsink_exit(&ts);
}

int main(void)
{
	uint64_t seed = test_seed();
	struct rd_dio_readers *r;
	struct rd_dio *d;

	CHECK_OK(rd_dio_readers_create(NULL, &r));
	CHECK_OK(rd_dio_create(NULL, &d));
	identity(d, r, seed);
	/* The deadline: long enough that the writes that must not wait for it (3 MiB) finish
	 * well within it even on a loaded machine under a sanitizer. */
	stalls(d, seed, TEST_DIO_TSAN ? 2.0 : 1.0);
	rd_dio_destroy(d);
	rd_dio_readers_destroy(r);
	return 0;
}
