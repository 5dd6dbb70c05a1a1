/*
 * cmd_demo_env.c - where a `refdio demo` scenario runs and how it speaks: the scratch
 * image, mount and daemon (bench_env: a child `refdio mount -f` in a session of its own,
 * unmounted, waited for and fsck'ed by bench_env_finish), the narration and the live line,
 * the daemon's statistics, the writer children and the check of a file's bytes.
 *
 * Lifetime rules: a scenario calls demo_env_start once and demo_env_finish once, on every
 * path (signals only set bench_stop; every wait here ends on it or on a deadline). A writer
 * child is ours: the scenario that forked it kills it (by its pid) and reaps it before
 * demo_env_finish; PR_SET_PDEATHSIG kills it if the demo dies first.
 *
 * Must never: signal, unmount or remove anything it did not start, mount or create.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_demo.h"
#include "refdio.h"

/* ---- narration ------------------------------------------------------------------------ */

static bool live_open;		/* a live line is on the terminal, not ended */
static double live_last;	/* when the last plain live line was printed */

void demo_step(const char *fmt, ...)
{
	va_list ap;

	demo_live_end();
	fputs("\n-- ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

#define SAY_WIDTH	92	/* columns of narration, its indent included */

/* Prints text indented by three spaces, broken at spaces to SAY_WIDTH columns (a word
 * longer than a line, such as a path, stays whole). */
static void say_wrapped(const char *text)
{
	const char *p = text;

	while (*p) {
		const char *end = p, *brk = NULL;

		while (*end && end - p < SAY_WIDTH - 3) {
			if (*end == ' ')
				brk = end;
			end++;
		}
		if (*end && brk)
			end = brk;
		else if (*end)	/* no space: up to the next one */
			while (*end && *end != ' ')
				end++;
		printf("   %.*s\n", (int)(end - p), p);
		p = *end == ' ' ? end + 1 : end;
	}
}

void demo_say(const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	demo_live_end();
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	say_wrapped(buf);
	fflush(stdout);
}

void demo_live(bool force, const char *fmt, ...)
{
	bool tty = isatty(STDOUT_FILENO);
	va_list ap;

	if (!tty && !force && demo_now() - live_last < 0.5)
		return;
	live_last = demo_now();
	fputs(tty ? "\r\033[K   " : "   ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (tty)
		live_open = true;
	else
		fputc('\n', stdout);
	fflush(stdout);
}

void demo_live_end(void)
{
	if (live_open)
		fputc('\n', stdout);
	live_open = false;
}

double demo_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void demo_sleep(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);	/* a signal cuts it short: the caller checks bench_stop */
}

const char *demo_size(uint64_t v, char *buf, size_t len)
{
	return bench_size_str(v, buf, len);
}

/* ---- the environment ------------------------------------------------------------------ */

int demo_env_start(const struct demo_opts *o, uint64_t image_size, const char *mount_opts,
		   struct bench_env *e)
{
	struct bench_opts bo = { .dir = o->dir };
	char sz[24];

	memset(e, 0, sizeof(*e));
	if (bench_env_prepare(e, &bo))
		return -1;
	e->keep = o->keep;
	e->image_size = image_size;
	snprintf(e->mount_opts, sizeof(e->mount_opts), "%s", mount_opts ? mount_opts : "");
	demo_say("A scratch image of %s (sparse) in %s, mounted at %s by a child `refdio "
		 "mount -f%s%s`.", demo_size(image_size, sz, sizeof(sz)), e->scratch, e->mnt,
		 e->mount_opts[0] ? " -o " : "", e->mount_opts);
	if (bench_env_start(e, &bo)) {
		bench_env_finish(e, true);
		return -1;
	}
	demo_say("The daemon is pid %d.", (int)e->daemon);
	return 0;
}

struct ext_walk {
	uint64_t	ino, end, keys;
	char		first[600], last[600];
};

static int ext_cb(void *priv, const struct rd_list_key *k)
{
	struct ext_walk *w = priv;
	const struct rd_key_desc *d = k->desc;
	uint64_t off = 0, len = 0;

	if (k->inode != w->ino)
		return 0;
	for (unsigned i = 0; i < d->nr_fields; i++) {
		if (!strcmp(d->f[i].name, "file_offset"))
			off = d->f[i].u;
		if (!strcmp(d->f[i].name, "length"))
			len = d->f[i].u;
	}
	if (off + len > w->end)
		w->end = off + len;
	snprintf(w->keys ? w->last : w->first, sizeof(w->first), "%" PRIu64 ":%" PRIu64
		 ":%u %s", k->inode, k->offset, k->snapshot, k->text);
	w->keys++;
	return 0;
}

/* The extents of inode ino in the image, read with the decoder `refdio list` uses. */
static int show_extents(const char *image, uint64_t ino, uint64_t want_end, char *why,
			size_t len)
{
	struct ext_walk w = { .ino = ino };
	struct rd_store *s;
	int ret;

	if (rd_cli_open("demo", image, true, &s)) {
		snprintf(why, len, "could not open the image to list its extents");
		return -1;
	}
	ret = rd_store_list_keys(s, (unsigned)rd_btree_parse("extents"), ext_cb, &w);
	rd_store_close(s);
	if (ret) {
		snprintf(why, len, "listing the extents: %s", rd_strerror(ret));
		return -1;
	}
	demo_say("On the image (refdio list --btree extents, inode %" PRIu64 "): %" PRIu64
		 " extent keys, the file's data ends at byte %" PRIu64 ". The first and the "
		 "last:", ino, w.keys, w.end);
	printf("   | %s\n", w.first);
	if (w.keys > 1)
		printf("   | %s\n", w.last);
	if (w.end != want_end) {
		snprintf(why, len, "the image's extents end at %" PRIu64 ", the write at %" PRIu64,
			 w.end, want_end);
		return -1;
	}
	return 0;
}

bool demo_env_finish(const struct demo_opts *o, struct bench_env *e, const struct demo_result *r,
		     char *why, size_t len)
{
	bool ok, shown = true;

	demo_step("unmount and check the image");
	e->keep = true;		/* first unmount and fsck, the image stays for a look */
	bench_env_finish(e, false);
	ok = e->daemon_status == 0 && e->fsck_status == 0;
	demo_say("The daemon exited with status %d after the unmount; `refdio fsck -n` says: %s.",
		 e->daemon_status, e->fsck_note[0] ? e->fsck_note : "not run");
	if (!ok)
		snprintf(why, len, "daemon exit %d, fsck %s", e->daemon_status,
			 e->fsck_note[0] ? e->fsck_note : "not run");
	else if (r->inspect_ino)
		shown = !show_extents(e->image, r->inspect_ino, r->inspect_end, why, len);
	e->keep = o->keep;
	bench_env_finish(e, false);	/* now removes what it made, unless --keep */
	if (o->keep)
		demo_say("Kept (--keep): the image %s and the directory %s.", e->image, e->scratch);
	return ok && shown;
}

/* ---- the daemon's figures ------------------------------------------------------------- */

int demo_stats(int fd, struct refdio_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return ioctl(fd, REFDIO_IOC_STATS, st) ? -errno : 0;
}

uint64_t demo_gone(const struct refdio_stats *st)
{
	uint64_t n = 0;

	for (uint32_t s = 0; s < st->nr_strategies && s < REFDIO_STATS_MAX_STRATEGIES; s++)
		n += st->strategy[s].callers_gone;
	return n;
}

uint64_t demo_interrupts(const struct refdio_stats *st)
{
	uint64_t n = 0;

	for (uint32_t s = 0; s < st->nr_strategies && s < REFDIO_STATS_MAX_STRATEGIES; s++)
		n += st->strategy[s].interrupts;
	return n;
}

const struct refdio_async_info *demo_async(const struct refdio_stats *st, uint64_t id)
{
	for (uint32_t i = 0; i < st->nr_async && i < REFDIO_STATS_MAX_ASYNC; i++)
		if (st->async[i].id == id)
			return &st->async[i];
	return NULL;
}

/* ---- writer children ------------------------------------------------------------------- */

static void writer_main(const struct bench_pattern *p, uint64_t len, const char *path,
			bool async, int out)
{
	struct refdio_dio_write io = {
		.buf = (uint64_t)(uintptr_t)p->addr, .len = len,
		.strategy = REFDIO_STRATEGY_REFCTX,
	};
	uint64_t zero = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		_exit(1);
	if (!async) {
		if (write(out, &zero, 8) != 8)
			_exit(1);
		_exit(ioctl(fd, REFDIO_IOC_DIO_WRITE, &io) ? 1 : 0);
	}
	if (ioctl(fd, REFDIO_IOC_DIO_SUBMIT, &io))
		io.id = 0;
	if (write(out, &io.id, 8) != 8 || !io.id)
		_exit(1);
	for (;;)
		pause();	/* until killed: the write goes on in the daemon */
}

pid_t demo_writer(const struct bench_pattern *p, uint64_t len, const char *path, bool async,
		  int *ready_fd)
{
	pid_t parent = getpid(), pid;
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		int err = -errno;

		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (!pid) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(pfd[0]);
		writer_main(p, len, path, async, pfd[1]);
	}
	close(pfd[1]);
	*ready_fd = pfd[0];
	return pid;
}

int demo_read_u64(int fd, double secs, uint64_t *v)
{
	double end = demo_now() + secs;
	size_t got = 0;

	while (got < 8) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		double left = end - demo_now();
		ssize_t n;

		if (left <= 0 || bench_stop)
			return bench_stop ? -EINTR : -ETIMEDOUT;
		if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		n = read(fd, (char *)v + got, 8 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

int demo_reap(pid_t pid)
{
	int ws;

	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return -1;
	return ws;
}

/* ---- the check of a file's bytes -------------------------------------------------------- */

int demo_verify_all(const struct bench_pattern *p, const char *path, uint64_t len,
		    uint64_t *bad)
{
	const char *fault = getenv("REFDIO_DEMO_FAULT");
	uint64_t shift = fault && !strcmp(fault, "verify") ? 4096 : 0;
	size_t blen = 4u << 20;
	uint8_t *buf;
	int fd, ret = 0;

	*bad = 0;
	if (len > p->len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(blen);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (uint64_t off = 0; off < len && !bench_stop; off += blen) {
		size_t n = len - off < blen ? (size_t)(len - off) : blen;
		ssize_t got = pread(fd, buf, n, (off_t)off);

		if (got < 0) {
			ret = -errno;
			break;
		}
		uint64_t at = (off + shift) % BENCH_PAT_PERIOD;	/* the same bytes */

		if ((size_t)got == n && at + n <= p->map_len && !memcmp(buf, p->addr + at, n))
			continue;
		for (size_t i = 0; i < n; i++)
			if ((ssize_t)i >= got ||
			    buf[i] != p->addr[(off + i + shift) % BENCH_PAT_PERIOD])
				(*bad)++;
	}
	if (bench_stop && !ret)
		ret = -EINTR;
	free(buf);
	close(fd);
	return ret;
}
