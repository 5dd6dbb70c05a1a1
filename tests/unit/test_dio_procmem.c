/*
 * test_dio_procmem.c - the caller's own memory, read with process_vm_readv on the reader
 * threads, its identity checked after every read.
 *
 * A forked child fills a buffer with a known pattern and sends its address through a pipe.
 * Then: every strategy copies it exactly; an unmapped range gives -EFAULT (at the first
 * chunk) or a short write (later); a PROT_NONE range in the middle ends every strategy's
 * write with the prefix before it, as a kernel direct write would (negative control: the
 * same range made readable again is written whole); a child rewriting its buffer leaves
 * only extents whose stored bytes match their checksums; and, 20 times with random
 * strategy, sink latency and moment, the child is SIGKILLed while the write runs: the
 * write ends with an exact prefix of the pattern on a chunk boundary (or all of it, or
 * -ESRCH), with no read of a dead address space. Needs ptrace access to the child (root or
 * the same user).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "test_dio_sink.h"
#include "test_dio_util.h"
#include "csum.h"
#include "refdio/errors.h"

#define MIB ((uint64_t)1024 * 1024)

enum child_mode { C_PAUSE, C_MUTATE, C_UNMAP_TAIL, C_PROTNONE };

struct child {
	pid_t		pid;
	uint64_t	addr;
	int		pipe;	/* C_PROTNONE: the child says when it changed protections */
};

/* Only async-signal-safe work in the child: the parent has threads. */
static struct child spawn(uint64_t len, uint64_t seed, enum child_mode mode)
{
	pid_t parent = getpid();
	struct child c = { 0 };
	int p[2];

	CHECK(!pipe(p));
	c.pid = fork();
	CHECK(c.pid >= 0);
	if (!c.pid) {
		uint8_t *b;
		uint64_t a;

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		b = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (b == MAP_FAILED)
			_exit(1);
		pat_fill(b, len, seed, 0);
		if (mode == C_UNMAP_TAIL)
			munmap(b + len / 2, len / 2);
		if (mode == C_PROTNONE)	/* the third quarter; SIGUSR1 makes it readable */
			mprotect(b + len / 2, len / 4, PROT_NONE);
		a = (uint64_t)(uintptr_t)b;
		if (write(p[1], &a, sizeof(a)) != sizeof(a))
			_exit(1);
		if (mode == C_PROTNONE) {
			sigset_t set;
			int sig;

			sigemptyset(&set);
			sigaddset(&set, SIGUSR1);
			sigprocmask(SIG_BLOCK, &set, NULL);
			if (write(p[1], &a, sizeof(a)) != sizeof(a))	/* "blocked" */
				_exit(1);
			sigwait(&set, &sig);
			mprotect(b + len / 2, len / 4, PROT_READ);
			if (write(p[1], &a, sizeof(a)) != sizeof(a))	/* "readable" */
				_exit(1);
		}
		if (mode == C_MUTATE) {
			volatile uint64_t *w = (volatile uint64_t *)b;

			for (uint64_t n = 0;; n++)
				w[(n * 7919) % (len / 8)] = n;
		}
		for (;;)
			pause();
	}
	close(p[1]);
	CHECK_EQ(read(p[0], &c.addr, sizeof(c.addr)), sizeof(c.addr));
	if (mode == C_PROTNONE)
		c.pipe = p[0];
	else
		close(p[0]);
	return c;
}

/* A source over the child's [addr, addr + len), as the daemon makes one. */
static struct rd_dio_source *csrc(struct rd_dio_readers *r, pid_t pid, uint64_t addr,
				  uint64_t len)
{
	struct rd_dio_source *src;
	struct rd_dio_caller *c;

	CHECK_OK(rd_dio_caller_open(pid, true, NULL, &c));
	CHECK_OK(rd_dio_source_procmem(r, c, 0, addr, len, &src));
	rd_dio_caller_put(c);
	return src;
}

static void reap(struct child *c)
{
	kill(c->pid, SIGKILL);
	CHECK_EQ(waitpid(c->pid, NULL, 0), c->pid);
}

static void copies(struct rd_dio *d, struct rd_dio_readers *io, uint64_t seed)
{
	const uint64_t len = 12 * MIB + 12345;
	struct tsink_opts so = tsink_opts_default();
	struct child c = spawn(len, seed, C_PAUSE);
	struct tsink ts;

	so.file_size = len + 777;
	so.max_delay_us = 300;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		for (unsigned is = 0; is < RD_DIO_NR_ISSUE; is++) {
			struct rd_dio_args a = { .off = 777, .strategy = s, .issue = is };
			struct rd_dio_source *src;

			memset(ts.file, 0, len + 777);
			tsink_reset(&ts);
			CHECK_OK((src = csrc(io, c.pid, c.addr, len), 0));
			CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), len);
			CHECK_OK(pat_check(ts.file + 777, len, seed, 0));
			CHECK_OK(tsink_check_prefix(&ts, 777, len));
		}
	}
	reap(&c);
	tsink_exit(&ts);
}

static void faults(struct rd_dio *d, struct rd_dio_readers *io, uint64_t seed)
{
	const uint64_t len = 8 * MIB;
	struct tsink_opts so = tsink_opts_default();
	struct child c = spawn(len, seed, C_UNMAP_TAIL);
	struct rd_dio_args a = { .off = 0 };
	struct rd_dio_source *src;
	struct tsink ts;

	so.file_size = len;
	CHECK_OK(tsink_init(&ts, &so));
	/* Mapped for 4 MiB, then not: the chunks before the hole are the result. */
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		a.strategy = s;
		tsink_reset(&ts);
		CHECK_OK((src = csrc(io, c.pid, c.addr, len), 0));
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), len / 2);
		CHECK_OK(pat_check(ts.file, len / 2, seed, 0));
		/* Entirely unmapped: nothing written, -EFAULT. */
		tsink_reset(&ts);
		CHECK_OK((src = csrc(io, c.pid, c.addr + len / 2, MIB), 0));
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), -EFAULT);
		CHECK_OK((src = csrc(io, c.pid, 4096, MIB), 0));
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), -EFAULT);
		CHECK_EQ(ts.log_n, 0);
	}
	/* Killed but not reaped: the zombie keeps its pid, so no other process can have it,
	 * and its address space is gone: the caller is gone, -ESRCH with nothing written
	 * (from the grab or from the first read). */
	siginfo_t si;
	struct rd_dio_caller *dc = NULL;

	CHECK(!kill(c.pid, SIGKILL));
	CHECK(!waitid(P_PID, (id_t)c.pid, &si, WEXITED | WNOWAIT));
	tsink_reset(&ts);
	long ret = rd_dio_caller_open(c.pid, true, NULL, &dc);

	if (!ret) {
		ret = rd_dio_source_procmem(io, dc, 0, c.addr, MIB, &src);
		rd_dio_caller_put(dc);
		if (!ret)
			ret = rd_dio_pwrite(d, &ts.sink, src, &a);
	}
	CHECK_EQ(ret, -ESRCH);
	CHECK_EQ(ts.log_n, 0);
	CHECK_EQ(waitpid(c.pid, NULL, 0), c.pid);
	/* No process has the pid: the grab itself fails. pid_max is one past the largest pid
	 * the kernel hands out, so this holds whatever else runs on the machine (a reaped
	 * child's pid could already be someone else's). */
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
	int pid_max = 0;

	CHECK(f && fscanf(f, "%d", &pid_max) == 1 && pid_max > 1);
	fclose(f);
	CHECK_EQ(rd_dio_caller_open(pid_max, true, NULL, &dc), -ESRCH);
	tsink_exit(&ts);
}

/*
 * PROT_NONE in the middle (the third quarter of 8 MiB): every strategy stops before it,
 * with -EFAULT for the chunk that reaches it; then (the negative control: the same child,
 * the same range) made readable, the whole range is written.
 */
static void protnone(struct rd_dio *d, struct rd_dio_readers *io, uint64_t seed)
{
	const uint64_t len = 8 * MIB;
	struct tsink_opts so = tsink_opts_default();
	struct child c = spawn(len, seed, C_PROTNONE);
	struct rd_dio_source *src;
	uint64_t x;
	struct tsink ts;

	so.file_size = len;
	CHECK_OK(tsink_init(&ts, &so));
	CHECK_EQ(read(c.pipe, &x, sizeof(x)), sizeof(x));	/* its signal is blocked */
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct rd_dio_args a = { .strategy = s };

		tsink_reset(&ts);
		memset(ts.file, 0, len);
		src = csrc(io, c.pid, c.addr, len);
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), len / 2);
		CHECK_OK(pat_check(ts.file, len / 2, seed, 0));
		for (uint64_t i = len / 2; i < len; i += 4096)
			CHECK(ts.file[i] == 0);
		/* Starting inside it: nothing at all. */
		src = csrc(io, c.pid, c.addr + len / 2 + 4096, MIB);
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), -EFAULT);
	}
	kill(c.pid, SIGUSR1);
	CHECK_EQ(read(c.pipe, &x, sizeof(x)), sizeof(x));
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct rd_dio_args a = { .strategy = s };

		tsink_reset(&ts);
		src = csrc(io, c.pid, c.addr, len);
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), len);
		CHECK_OK(pat_check(ts.file, len, seed, 0));
	}
	close(c.pipe);
	reap(&c);
	tsink_exit(&ts);
}

static void mutating(struct rd_dio *d, struct rd_dio_readers *io, uint64_t seed)
{
	const uint64_t len = 8 * MIB;
	struct tsink_opts so = tsink_opts_default();
	struct child c = spawn(len, seed, C_MUTATE);
	struct tsink ts;

	so.file_size = len;
	so.max_delay_us = 500;
	CHECK_OK(tsink_init(&ts, &so));
	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct rd_dio_args a = { .strategy = s };
		struct rd_dio_source *src;

		tsink_reset(&ts);
		CHECK_OK((src = csrc(io, c.pid, c.addr, len), 0));
		CHECK_EQ(rd_dio_pwrite(d, &ts.sink, src, &a), len);
		CHECK_EQ(ts.csum_mismatch, 0);
		for (size_t i = 0; i < ts.log_n; i++)
			CHECK(ts.log[i].hash == rd_csum(RD_CSUM_XXHASH, ts.file + ts.log[i].off,
							ts.log[i].len));
	}
	reap(&c);
	tsink_exit(&ts);
}

struct waiter {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;
	bool		done;
	long		res;
};

static void on_done(void *priv, long res)
{
	struct waiter *wt = priv;

	pthread_mutex_lock(&wt->lock);
	wt->res = res;
	wt->done = true;
	pthread_cond_signal(&wt->cond);
	pthread_mutex_unlock(&wt->lock);
}

static void killed(struct rd_dio *d, struct rd_dio_readers *io, uint64_t seed, uint64_t *rng)
{
	const uint64_t len = 16 * MIB;
	struct tsink_opts so = tsink_opts_default();
	unsigned shorts = 0, none = 0, full = 0;
	struct tsink ts;

	so.file_size = len;
	so.seed = seed;
	CHECK_OK(tsink_init(&ts, &so));
	for (unsigned rep = 0; rep < 20 / TEST_DIO_SCALE + 3; rep++) {
		struct waiter wt = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
		unsigned s = (unsigned)(test_rand(rng) % RD_DIO_NR_STRATEGIES);
		size_t chunk = s == RD_DIO_BOUNCE64 ? 256 * 1024 : MIB;
		struct rd_dio_args a = { .strategy = s, .issue = test_rand(rng) % 2,
					 .done = on_done, .priv = &wt };
		struct child c = spawn(len, seed + rep, C_PAUSE);
		struct rd_dio_stats st0, st1;
		struct rd_dio_source *src;
		uint64_t got;

		memset(ts.file, 0, len);
		tsink_reset(&ts);
		ts.o.max_delay_us = (unsigned)(test_rand(rng) % 2000);
		CHECK_OK(rd_dio_stats(d, s, &st0));
		CHECK_OK((src = csrc(io, c.pid, c.addr, len), 0));
		CHECK_OK(rd_dio_submit(d, &ts.sink, src, &a, NULL));
		sleep_us((unsigned)(test_rand(rng) % 15000));
		kill(c.pid, SIGKILL);
		pthread_mutex_lock(&wt.lock);
		while (!wt.done)
			pthread_cond_wait(&wt.cond, &wt.lock);
		pthread_mutex_unlock(&wt.lock);
		CHECK_EQ(waitpid(c.pid, NULL, 0), c.pid);
		CHECK_OK(rd_dio_stats(d, s, &st1));

		if (wt.res == (long)len) {
			full++;
		} else if (wt.res == -ESRCH) {
			none++;
		} else {
			CHECK(wt.res > 0 && wt.res < (long)len);
			CHECK_EQ(wt.res % (long)chunk, 0);
			shorts++;
		}
		if (wt.res != (long)len)
			CHECK_EQ(st1.callers_gone, st0.callers_gone + 1);
		got = wt.res > 0 ? (uint64_t)wt.res : 0;
		CHECK_OK(tsink_check_prefix(&ts, 0, got));
		CHECK_OK(pat_check(ts.file, got, seed + rep, 0));
		for (uint64_t i = got; i < len; i += 4096)
			CHECK(ts.file[i] == 0);
	}
	fprintf(stderr, "child killed mid-write: %u short on a chunk boundary, %u before the "
		"first chunk, %u finished first\n", shorts, none, full);
	CHECK(shorts > 0);
	tsink_exit(&ts);
}

int main(void)
{
	uint64_t seed = test_seed(), rng = seed | 1;
	struct rd_dio_readers *io;
	struct rd_dio *d;

	CHECK_OK(rd_dio_readers_create(NULL, &io));
	CHECK_OK(rd_dio_create(NULL, &d));

	copies(d, io, seed);
	faults(d, io, seed);
	protnone(d, io, seed);
	mutating(d, io, seed);
	killed(d, io, seed, &rng);

	rd_dio_destroy(d);
	rd_dio_readers_destroy(io);
	return 0;
}
