/*
 * test_io.c - the I/O layer on a temporary image: open modes, round trips with and without
 * O_DIRECT, end of file, errors, statistics, the O_DIRECT fallback, and the refusal of the
 * synchronous helpers on an I/O thread.
 */
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "refdio/errors.h"
#include "io.h"
#include "io_util.h"

#define MiB (1024 * 1024)

struct one {
	struct rd_io_req	req;
	struct latch		done;
	long			res;
	atomic_uint		calls;
	pthread_t		thread;	/* where end_io ran */
};

static void one_end_io(struct rd_io_req *req, long res)
{
	struct one *o = (struct one *)req;

	o->res = res;
	o->thread = pthread_self();
	atomic_fetch_add(&o->calls, 1);
	latch_add(&o->done);
}

/* One asynchronous request, waited for; checks end_io ran once, on another thread. */
static long one_io(struct rd_io *io, enum rd_io_op op, int fd, void *buf, size_t len,
		   uint64_t off)
{
	struct one o = { .done = LATCH_INIT };

	o.req.op = op;
	o.req.fd = fd;
	o.req.buf = buf;
	o.req.len = len;
	o.req.off = off;
	o.req.end_io = one_end_io;
	rd_io_submit(io, &o.req);
	latch_wait(&o.done, 1);
	CHECK_EQ(atomic_load(&o.calls), 1);
	CHECK(!pthread_equal(o.thread, pthread_self()));
	return o.res;
}

static void test_open_errors(void)
{
	struct rd_io_opts ro = { .read_only = true };
	struct rd_io *io = (struct rd_io *)1;

	CHECK_EQ(rd_io_open("/tmp/io-test-does-not-exist", NULL, &io), -ENOENT);
	CHECK(io == NULL);
	/* A directory opens read-only but is not an image. */
	CHECK_EQ(rd_io_open("/tmp", &ro, &io), -EINVAL);
	CHECK(io == NULL);
	rd_io_close(NULL);
}

/* Aligned round trip through O_DIRECT, checked also through an independent fd. */
static void test_round_trip(bool no_direct, unsigned threads, uint64_t seed)
{
	struct rd_io_opts opts = { .no_direct = no_direct, .threads = threads };
	char path[32];
	struct rd_io *io;
	struct rd_io_stats st;
	size_t len = 256 * 1024;
	uint8_t *w = rd_io_buf_alloc(len), *r = rd_io_buf_alloc(len);
	int fd;

	CHECK(w && r);
	CHECK(((uintptr_t)w & 4095) == 0);
	for (size_t i = 0; i < len; i++)
		CHECK(w[i] == 0);
	tmp_image(path, 4 * MiB);
	CHECK_OK(rd_io_open(path, &opts, &io));
	CHECK_EQ(rd_io_size(io), 4 * MiB);
	CHECK_EQ(rd_io_is_direct(io), !no_direct);	/* /tmp is ext4 here: O_DIRECT works */
	CHECK(rd_io_fd(io) >= 0);
	CHECK(fcntl(rd_io_fd(io), F_GETFD) & FD_CLOEXEC);
	CHECK_EQ(!!(fcntl(rd_io_fd(io), F_GETFL) & O_DIRECT), !no_direct);

	/* Synchronous helpers, at several offsets. */
	for (uint64_t off = 0; off < 4 * MiB; off += 1 * MiB + 64 * 1024) {
		pattern_fill(w, seed, off, len);
		CHECK_OK(rd_io_write(io, w, len, off));
	}
	CHECK_OK(rd_io_flush(io));
	for (uint64_t off = 0; off < 4 * MiB; off += 1 * MiB + 64 * 1024) {
		memset(r, 0, len);
		CHECK_OK(rd_io_read(io, r, len, off));
		CHECK_EQ(pattern_check(r, seed, off, len), len);
	}
	/* Asynchronous requests, image and explicit fd. */
	pattern_fill(w, seed ^ 1, 3 * MiB, len);
	CHECK_EQ(one_io(io, RD_IO_WRITE, -1, w, len, 3 * MiB), (long)len);
	CHECK_EQ(one_io(io, RD_IO_FLUSH, -1, NULL, 0, 0), 0);
	memset(r, 0, len);
	CHECK_EQ(one_io(io, RD_IO_READ, rd_io_fd(io), r, len, 3 * MiB), (long)len);
	CHECK_EQ(pattern_check(r, seed ^ 1, 3 * MiB, len), len);
	/* A zero-length read is a complete transfer of nothing. */
	CHECK_EQ(one_io(io, RD_IO_READ, -1, r, 0, 0), 0);
	CHECK_OK(rd_io_read(io, r, 0, 0));

	/* The bytes are really in the file. */
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, r, len, 3 * MiB), (long)len);
	CHECK_EQ(pattern_check(r, seed ^ 1, 3 * MiB, len), len);
	CHECK_EQ(pread(fd, r, len, 0), (long)len);
	CHECK_EQ(pattern_check(r, seed, 0, len), len);
	close(fd);

	if (no_direct) {
		/* Buffered: any offset, any length, any buffer. */
		char *u = malloc(10007);

		CHECK(u);
		pattern_fill(u, seed ^ 2, 12345, 10007);
		CHECK_OK(rd_io_write(io, u, 10007, 12345));
		memset(u, 0, 10007);
		CHECK_OK(rd_io_read(io, u, 10007, 12345));
		CHECK_EQ(pattern_check(u, seed ^ 2, 12345, 10007), 10007);
		free(u);
	} else {
		/* O_DIRECT rejects a misaligned offset: an error value, not a crash. */
		CHECK_EQ(rd_io_read(io, r, 4096, 100), -EINVAL);
	}

	rd_io_stats(io, &st);
	CHECK_EQ(st.submitted, st.completed);
	CHECK_EQ(st.in_flight, 0);
	CHECK(st.sqes >= st.submitted);
	CHECK(st.bytes_written >= 4 * len);
	CHECK(st.bytes_read >= 4 * len);
	CHECK_EQ(st.cq_overflows, 0);
	CHECK_EQ(st.errors, no_direct ? 0 : 1);
	rd_io_close(io);
	unlink(path);
	rd_io_buf_free(w);
	rd_io_buf_free(r);
}

/* A read past the end of the image completes short; the helper calls that truncated. */
static void test_eof(bool no_direct, uint64_t seed)
{
	struct rd_io_opts opts = { .no_direct = no_direct };
	char path[32];
	struct rd_io *io;
	uint8_t *buf = rd_io_buf_alloc(64 * 1024);
	const size_t size = 10000;	/* not a block multiple: EOF inside a block */
	int fd;

	CHECK(buf);
	tmp_image(path, 0);
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	pattern_fill(buf, seed, 0, size);
	CHECK_EQ(pwrite(fd, buf, size, 0), (long)size);
	close(fd);
	memset(buf, 0, 64 * 1024);

	CHECK_OK(rd_io_open(path, &opts, &io));
	CHECK_EQ(rd_io_size(io), size);
	CHECK_EQ(one_io(io, RD_IO_READ, -1, buf, 16384, 0), (long)size);
	CHECK_EQ(pattern_check(buf, seed, 0, size), size);
	CHECK_EQ(one_io(io, RD_IO_READ, -1, buf, 8192, 8192), (long)(size - 8192));
	/* Wholly past the end: 0 bytes. */
	CHECK_EQ(one_io(io, RD_IO_READ, -1, buf, 4096, 16384), 0);
	CHECK_EQ(rd_io_read(io, buf, 16384, 0), -RD_ERR_TRUNCATED);
	CHECK_EQ(rd_io_read(io, buf, 4096, 65536), -RD_ERR_TRUNCATED);
	CHECK_OK(rd_io_read(io, buf, 8192, 0));
	rd_io_close(io);
	unlink(path);
	rd_io_buf_free(buf);
}

static void test_read_only(void)
{
	struct rd_io_opts opts = { .read_only = true };
	char path[32];
	struct rd_io *io;
	uint8_t *buf = rd_io_buf_alloc(4096);

	CHECK(buf);
	tmp_image(path, 1 * MiB);
	CHECK_OK(rd_io_open(path, &opts, &io));
	CHECK_OK(rd_io_read(io, buf, 4096, 0));
	CHECK_EQ(rd_io_write(io, buf, 4096, 0), -EBADF);
	CHECK_EQ(one_io(io, RD_IO_WRITE, -1, buf, 4096, 0), -EBADF);
	rd_io_close(io);
	unlink(path);
	rd_io_buf_free(buf);
}

/*
 * On a filesystem without O_DIRECT (ramfs) the open falls back to buffered I/O. Needs a
 * private mount namespace (root): done in a child. Returns false if it could not run here
 * (the child says why and exits 77); the test then exits 77 too: skipped, not passed.
 */
static bool test_direct_fallback(uint64_t seed)
{
	pid_t pid = fork();
	int status;

	CHECK(pid >= 0);
	if (!pid) {
		char mnt[] = "/tmp/io-test-ramfs.XXXXXX";	/* private: runs may overlap */
		char path[64], buf[5000];
		struct rd_io *io;
		int fd;

		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
			fprintf(stderr, "SKIP direct fallback: no private mount namespace: %s\n",
				strerror(errno));
			_exit(77);
		}
		if (!mkdtemp(mnt)) {
			fprintf(stderr, "SKIP direct fallback: mkdtemp: %s\n", strerror(errno));
			_exit(77);
		}
		if (mount("none", mnt, "ramfs", 0, NULL)) {
			fprintf(stderr, "SKIP direct fallback: mount ramfs: %s\n", strerror(errno));
			rmdir(mnt);
			_exit(77);
		}
		snprintf(path, sizeof(path), "%s/img", mnt);
		fd = open(path, O_CREAT | O_RDWR, 0600);
		CHECK(fd >= 0);
		CHECK(ftruncate(fd, 65536) == 0);
		close(fd);
		/* The premise: ramfs refuses O_DIRECT. */
		CHECK(open(path, O_RDWR | O_DIRECT) < 0 && errno == EINVAL);

		CHECK_OK(rd_io_open(path, NULL, &io));
		CHECK(!rd_io_is_direct(io));
		CHECK(!(fcntl(rd_io_fd(io), F_GETFL) & O_DIRECT));
		CHECK_EQ(rd_io_size(io), 65536);
		pattern_fill(buf, seed, 777, sizeof(buf));
		CHECK_OK(rd_io_write(io, buf, sizeof(buf), 777));
		CHECK_OK(rd_io_flush(io));
		memset(buf, 0, sizeof(buf));
		CHECK_OK(rd_io_read(io, buf, sizeof(buf), 777));
		CHECK_EQ(pattern_check(buf, seed, 777, sizeof(buf)), sizeof(buf));
		rd_io_close(io);
		umount(mnt);
		rmdir(mnt);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		return false;
	CHECK_EQ(WEXITSTATUS(status), 0);
	return true;
}

/*
 * A synchronous helper called from a completion callback would make the I/O thread wait
 * for itself. In a debug build it asserts (the child dies of SIGABRT); with NDEBUG it
 * returns -EDEADLK. Done in a child so the abort does not end this test.
 */
static struct rd_io *nested_io;

static void nested_end_io(struct rd_io_req *req, long res)
{
	char b[512];
	int r;

	(void)req;
	CHECK_EQ(res, 4096);
	r = rd_io_read(nested_io, b, sizeof(b), 0);	/* aborts in debug builds */
	_exit(r == -EDEADLK ? 3 : 4);
}

static void test_sync_on_io_thread(void)
{
	pid_t pid = fork();
	int status;

	CHECK(pid >= 0);
	if (!pid) {
		char path[32];
		struct rd_io_opts opts = { .no_direct = true };
		static char buf[4096];
		static struct rd_io_req req;
		int devnull = open("/dev/null", O_WRONLY);

		/* The assertion message is expected: keep it out of the test log. */
		if (devnull >= 0)
			dup2(devnull, STDERR_FILENO);
		tmp_image(path, 65536);
		CHECK_OK(rd_io_open(path, &opts, &nested_io));
		unlink(path);
		req.op = RD_IO_READ;
		req.fd = -1;
		req.buf = buf;
		req.len = sizeof(buf);
		req.end_io = nested_end_io;
		rd_io_submit(nested_io, &req);
		sleep(30);
		_exit(5);	/* the callback never ran */
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
#ifdef NDEBUG
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
#else
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#endif
}

/* Buffers from rd_io_buf_alloc are aligned and zeroed at any size. */
static void test_buf_alloc(void)
{
	for (size_t len = 0; len < 70000; len = len * 3 + 1) {
		uint8_t *p = rd_io_buf_alloc(len);

		CHECK(p);
		CHECK(((uintptr_t)p & 4095) == 0);
		for (size_t i = 0; i < len; i++)
			CHECK(p[i] == 0);
		rd_io_buf_free(p);
	}
}

int main(void)
{
	uint64_t seed = test_seed();

	/* Forking tests first, while this process has no other threads. */
	bool ran_all = test_direct_fallback(seed);

	test_sync_on_io_thread();

	test_open_errors();
	test_buf_alloc();
	test_round_trip(false, 1, seed);
	test_round_trip(true, 1, seed);
	test_round_trip(false, 3, seed);
	test_eof(false, seed);
	test_eof(true, seed);
	test_read_only();
	return ran_all ? 0 : 77;	/* 77: meson's "skipped" */
}
