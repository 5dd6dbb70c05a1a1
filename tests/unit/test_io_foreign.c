/*
 * test_io_foreign.c - requests on fds other than the image: a process's memory through
 * /proc/PID/mem (ours and a child's, alive, exited and reaped), and pipes, whose reads come
 * back partial or empty and so exercise resubmission and end of stream.
 *
 * The child test is the fact the project rests on: an fd on /proc/<pid>/mem opened while
 * the process lives reads its memory by reference (later changes are seen), and the same
 * read after the process has exited returns 0, not stale bytes and not a crash.
 */
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "refdio/errors.h"
#include "io.h"
#include "io_util.h"

struct one {
	struct rd_io_req	req;
	struct latch		done;
	long			res;
	atomic_uint		calls;
};

static void one_end_io(struct rd_io_req *req, long res)
{
	struct one *o = (struct one *)req;

	o->res = res;
	atomic_fetch_add(&o->calls, 1);
	latch_add(&o->done);
}

static void one_submit(struct rd_io *io, struct one *o, enum rd_io_op op, int fd, void *buf,
		       size_t len, uint64_t off)
{
	memset(o, 0, sizeof(*o));
	o->done = (struct latch)LATCH_INIT;
	o->req.op = op;
	o->req.fd = fd;
	o->req.buf = buf;
	o->req.len = len;
	o->req.off = off;
	o->req.end_io = one_end_io;
	rd_io_submit(io, &o->req);
}

static long one_wait(struct one *o)
{
	latch_wait(&o->done, 1);
	CHECK_EQ(atomic_load(&o->calls), 1);
	return o->res;
}

static long one_io(struct rd_io *io, enum rd_io_op op, int fd, void *buf, size_t len,
		   uint64_t off)
{
	struct one o;

	one_submit(io, &o, op, fd, buf, len, off);
	return one_wait(&o);
}

static uint64_t addr(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

/* Waits (up to 10 s) until a stats counter reaches n. */
static void wait_stat(struct rd_io *io, size_t field, uint64_t n)
{
	struct rd_io_stats st;
	double t0 = now_sec();

	for (;;) {
		rd_io_stats(io, &st);
		if (*(uint64_t *)((char *)&st + field) >= n)
			return;
		CHECK(now_sec() - t0 < 10);
		sleep_ms(2);
	}
}

/* ---- our own memory ---------------------------------------------------------------------- */

static void test_self_mem(struct rd_io *io, uint64_t seed)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = 3 * 4096 + 123;
	uint8_t *src = malloc(len), *dst = malloc(len);
	uint8_t *map;
	struct rd_io_stats st0, st1;
	int fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0 && src && dst);
	pattern_fill(src, seed, 0, len);

	/* Any address, any length: no alignment rules on /proc/PID/mem. */
	memset(dst, 0, len);
	CHECK_EQ(one_io(io, RD_IO_READ, fd, dst, len, addr(src)), (long)len);
	CHECK(!memcmp(dst, src, len));
	memset(dst, 0, len);
	CHECK_EQ(one_io(io, RD_IO_READ, fd, dst, 777, addr(src + 5)), 777);
	CHECK(!memcmp(dst, src + 5, 777));

	/* Unmapped: nothing transferred, -EIO. */
	CHECK_EQ(one_io(io, RD_IO_READ, fd, dst, 64, 0), -EIO);

	/* Mapped then unmapped: the mapped part, short; the rest was tried and failed. */
	map = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(map != MAP_FAILED);
	CHECK(munmap(map + 2 * pg, pg) == 0);
	pattern_fill(map, seed, 0, 2 * pg);
	rd_io_stats(io, &st0);
	{
		uint8_t *big = malloc(3 * pg);

		CHECK(big);
		CHECK_EQ(one_io(io, RD_IO_READ, fd, big, 3 * pg, addr(map)), (long)(2 * pg));
		CHECK(!memcmp(big, map, 2 * pg));
		free(big);
	}
	rd_io_stats(io, &st1);
	CHECK(st1.resubmits > st0.resubmits);
	CHECK_EQ(st1.errors, st0.errors);	/* short, not an error */
	CHECK(munmap(map, 2 * pg) == 0);

	close(fd);
	free(src);
	free(dst);
}

/* ---- a child's memory -------------------------------------------------------------------- */

#define CHILD_LEN	(4u * 1024 * 1024 + 100)

/* The child: maps a buffer with known bytes, says where, then obeys one-byte commands. */
static void child_main(int cmd_fd, int ack_fd, uint64_t seed)
{
	uint8_t *buf = mmap(NULL, CHILD_LEN, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t a = addr(buf);
	char c;

	if (buf == MAP_FAILED)
		_exit(2);
	pattern_fill(buf, seed, 0, CHILD_LEN);
	if (write(ack_fd, &a, sizeof(a)) != sizeof(a))
		_exit(2);
	while (read(cmd_fd, &c, 1) == 1) {
		if (c == 'm')		/* modify: the parent must see the new bytes */
			memset(buf, 0xab, 4096);
		else if (c == 'q')
			_exit(0);
		if (write(ack_fd, &c, 1) != 1)
			_exit(2);
	}
	_exit(3);
}

static void child_cmd(int cmd_fd, int ack_fd, char c)
{
	char r;

	CHECK_EQ(write(cmd_fd, &c, 1), 1);
	CHECK_EQ(read(ack_fd, &r, 1), 1);
	CHECK_EQ(r, c);
}

static void test_child_mem(struct rd_io *io, uint64_t seed)
{
	int cmd[2], ack[2], memfd, status;
	uint8_t *buf = malloc(CHILD_LEN);
	char path[128];
	uint64_t a;
	siginfo_t si;
	long res;
	pid_t pid;

	CHECK(buf);
	CHECK(pipe2(cmd, O_CLOEXEC) == 0 && pipe2(ack, O_CLOEXEC) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (!pid) {
		close(cmd[1]);
		close(ack[0]);
		child_main(cmd[0], ack[1], seed);
	}
	close(cmd[0]);
	close(ack[1]);
	CHECK_EQ(read(ack[0], &a, sizeof(a)), (long)sizeof(a));
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	memfd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(memfd >= 0);

	/* Alive: its bytes, all 4 MiB + 100 in one request. */
	memset(buf, 0, CHILD_LEN);
	CHECK_EQ(one_io(io, RD_IO_READ, memfd, buf, CHILD_LEN, a), (long)CHILD_LEN);
	CHECK_EQ(pattern_check(buf, seed, 0, CHILD_LEN), CHILD_LEN);
	/* Read by reference: a change in the child is seen by the next read. */
	child_cmd(cmd[1], ack[0], 'm');
	CHECK_EQ(one_io(io, RD_IO_READ, memfd, buf, 8192, a), 8192);
	for (unsigned i = 0; i < 4096; i++)
		CHECK_EQ(buf[i], 0xab);
	CHECK_EQ(pattern_check(buf + 4096, seed, 4096, 4096), 4096);
	/* An unmapped address in the live child: nothing transferred. */
	CHECK_EQ(one_io(io, RD_IO_READ, memfd, buf, 16, 4096), -EIO);

	/* Exited but not yet reaped (a zombie): the mm is gone, the read returns 0. */
	CHECK_EQ(write(cmd[1], "q", 1), 1);
	CHECK(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) == 0);
	CHECK_EQ(si.si_pid, pid);
	res = one_io(io, RD_IO_READ, memfd, buf, 4096, a);
	fprintf(stderr, "/proc/%d/mem read after exit, before reap: %ld\n", (int)pid, res);
	CHECK_EQ(res, 0);

	/* Reaped: the fd still works and still returns 0; a fresh open fails. */
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	res = one_io(io, RD_IO_READ, memfd, buf, CHILD_LEN, a);
	fprintf(stderr, "/proc/%d/mem read after reap: %ld\n", (int)pid, res);
	CHECK_EQ(res, 0);
	CHECK(open(path, O_RDONLY | O_CLOEXEC) < 0 && errno == ENOENT);

	close(memfd);
	close(cmd[1]);
	close(ack[0]);
	free(buf);
}

/* ---- pipes: partial reads, end of stream, non-blocking --------------------------------- */

static void test_pipe_partial(struct rd_io *io)
{
	char buf[300], msg[100];
	struct rd_io_stats st;
	struct one o;
	int p[2];
	uint64_t r0;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	rd_io_stats(io, &st);
	r0 = st.resubmits;

	memset(msg, 'x', sizeof(msg));
	CHECK_EQ(write(p[1], msg, sizeof(msg)), 100);
	one_submit(io, &o, RD_IO_READ, p[0], buf, sizeof(buf), 0);
	/* 100 of 300 read: the rest is resubmitted and waits for more. */
	wait_stat(io, offsetof(struct rd_io_stats, resubmits), r0 + 1);
	CHECK_EQ(latch_get(&o.done), 0);
	memset(msg, 'y', sizeof(msg));
	CHECK_EQ(write(p[1], msg, sizeof(msg)), 100);
	wait_stat(io, offsetof(struct rd_io_stats, resubmits), r0 + 2);
	CHECK_EQ(latch_get(&o.done), 0);
	/* End of stream: 0 bytes ends the request with what was done. */
	close(p[1]);
	CHECK_EQ(one_wait(&o), 200);
	for (unsigned i = 0; i < 200; i++)
		CHECK_EQ(buf[i], i < 100 ? 'x' : 'y');

	/* At end of stream from the start: 0. */
	CHECK_EQ(one_io(io, RD_IO_READ, p[0], buf, 10, 0), 0);
	close(p[0]);
}

/*
 * A non-blocking pipe with nothing in it: io_uring polls it rather than hand back -EAGAIN
 * (on this kernel), so the read simply completes once data arrives. The -EAGAIN/-EINTR
 * retry path is driven by test_io_retry instead.
 */
static void test_pipe_nonblock(struct rd_io *io)
{
	char buf[10];
	struct one o;
	int p[2];

	CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
	one_submit(io, &o, RD_IO_READ, p[0], buf, sizeof(buf), 0);
	sleep_ms(50);
	CHECK_EQ(latch_get(&o.done), 0);
	CHECK_EQ(write(p[1], "0123456789", 10), 10);
	CHECK_EQ(one_wait(&o), 10);
	CHECK(!memcmp(buf, "0123456789", 10));
	close(p[0]);
	close(p[1]);
}

static void test_foreign_errors(struct rd_io *io)
{
	int p[2];
	char c = 0;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	/* fdatasync of a pipe is refused. */
	CHECK_EQ(one_io(io, RD_IO_FLUSH, p[0], NULL, 0, 0), -EINVAL);
	/* Writing the read end. */
	CHECK_EQ(one_io(io, RD_IO_WRITE, p[0], &c, 1, 0), -EBADF);
	close(p[0]);
	close(p[1]);
	/* A closed fd. */
	CHECK_EQ(one_io(io, RD_IO_READ, p[0], &c, 1, 0), -EBADF);
}

int main(void)
{
	uint64_t seed = test_seed();
	struct rd_io_opts opts = { .threads = 2 };
	struct rd_io_stats st;
	char path[32];
	struct rd_io *io;

	/* The stats-watching tests need every other counter still: one io for all. */
	tmp_image(path, 65536);
	CHECK_OK(rd_io_open(path, &opts, &io));
	unlink(path);

	test_self_mem(io, seed);
	test_child_mem(io, seed);
	test_pipe_partial(io);
	test_pipe_nonblock(io);
	test_foreign_errors(io);

	rd_io_stats(io, &st);
	CHECK_EQ(st.completed, st.submitted);
	CHECK_EQ(st.in_flight, 0);
	rd_io_close(io);
	return 0;
}
