/*
 * cmd_demo_huge_write.c - `refdio demo huge-write`: one 16 GiB direct write from this
 * process's memory (a pattern of 4 MiB mapped again and again: it costs no more RAM than
 * that), the daemon's memory watched live while it runs, the throughput beside the raw
 * disk's (O_DIRECT writes of the same bytes to a file beside the image); then the same
 * write with `pin`, which would hold all of it at once and is refused by the mount's memory
 * budget (-o max_held), and a pin that fits, holding its whole size.
 *
 * Measured: the write's result and time, the daemon's RSS and chunk memory (stats) every
 * tenth of a second, the most one write held, the raw disk's MiB/s, pin's errno and time.
 *
 * Must never: take a figure from anywhere but a measurement in this run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_demo.h"

#define SEED		31
#define MAX_HELD	(256ull << 20)
#define MOUNT_OPTS	"max_held=256M"

struct one_write {
	const char	*path;
	const struct bench_pattern *p;
	uint64_t	len;
	uint32_t	strategy;
	int		err;		/* errno of the ioctl, 0 */
	int64_t		result;
	double		seconds;
	volatile int	done;
};

static void *write_main(void *arg)
{
	struct one_write *w = arg;
	struct refdio_dio_write io = {
		.buf = (uint64_t)(uintptr_t)w->p->addr, .len = w->len, .strategy = w->strategy,
	};
	int fd = open(w->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	double t0 = demo_now();

	if (fd < 0) {
		w->err = errno;
	} else {
		if (ioctl(fd, REFDIO_IOC_DIO_WRITE, &io))
			w->err = errno;
		else
			w->result = io.result;
		close(fd);
	}
	w->seconds = demo_now() - t0;
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The raw disk: O_DIRECT writes of the pattern, 4 MiB each, to a file beside the image,
 * then fdatasync. MiB/s, or a negative errno. */
static double raw_disk(const struct bench_env *e, const struct bench_pattern *p, uint64_t len)
{
	char path[PATH_MAX + 16];
	uint64_t done = 0, blk = 4 * MIB;
	double t0;
	int fd;

	snprintf(path, sizeof(path), "%s/raw-disk.bin", e->base);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	t0 = demo_now();
	while (done < len && !bench_stop) {
		ssize_t n = pwrite(fd, p->addr + done, blk, (off_t)done);

		if (n != (ssize_t)blk) {
			done = 0;
			break;
		}
		done += blk;
	}
	if (done && fdatasync(fd))
		done = 0;
	t0 = demo_now() - t0;
	close(fd);
	unlink(path);
	return done && t0 > 0 ? (double)done / (double)MIB / t0 : -EIO;
}

void demo_huge_write(const struct demo_opts *o, struct bench_env *e, struct demo_result *r,
		     char *why, size_t wl)
{
	uint64_t len = o->fast ? 512 * MIB : 16 * GIB, small = o->fast ? 64 * MIB : 128 * MIB;
	uint64_t raw_len = o->fast ? 256 * MIB : 2 * GIB, rss0, rss_max, held_max = 0, infl_max = 0;
	uint64_t checked = 0, bad = 0, window, chunk, whp, bytes0;
	char path[PATH_MAX + 16], pin_path[PATH_MAX + 16], a[24], b[24], c[24], d[24];
	struct one_write w = { 0 }, pw = { 0 }, ps = { 0 };
	struct bench_pattern p = { 0 };
	struct refdio_stats st;
	pthread_t th;
	double raw, t0;
	struct stat sb;
	int ret, fd;

	snprintf(path, sizeof(path), "%s/huge.bin", e->work);
	snprintf(pin_path, sizeof(pin_path), "%s/pin.bin", e->work);
	if ((ret = demo_stats(e->work_fd, &st)) || (ret = bench_pattern_map(SEED, len, &p))) {
		snprintf(why, wl, "stats or pattern: %s", strerror(-ret));
		return;
	}
	window = st.default_window;
	chunk = st.default_chunk;
	rss0 = rss_max = st.rss_bytes;
	bytes0 = st.strategy[0].bytes;	/* committed chunks count as they land */

	demo_step("one %s write with refctx", demo_size(len, a, sizeof(a)));
	demo_say("This process hands the daemon %s of its memory in one REFDIO_IOC_DIO_WRITE "
		 "(a 4 MiB pattern mapped over and over, so it costs this process 4 MiB). The "
		 "daemon reads it %s at a time with at most %" PRIu64 " chunks in flight.",
		 demo_size(len, a, sizeof(a)), demo_size(chunk, b, sizeof(b)), window);
	demo_say("The daemon's RSS before: %s; the memory budget (-o max_held): %s.",
		 demo_size(rss0, a, sizeof(a)), demo_size(st.budget_max, b, sizeof(b)));
	w = (struct one_write){ .path = path, .p = &p, .len = len,
				.strategy = REFDIO_STRATEGY_REFCTX };
	if ((ret = pthread_create(&th, NULL, write_main, &w))) {
		snprintf(why, wl, "thread: %s", strerror(ret));
		goto out;
	}
	t0 = demo_now();
	while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) {
		/* Ctrl-C reached this thread: pass it to the writer, whose ioctl then ends at
		 * the next chunk boundary (a FUSE interrupt; our handler only sets bench_stop).
		 * Again every round: one that came before the ioctl started interrupts nothing. */
		if (bench_stop)
			pthread_kill(th, SIGINT);
		if (!demo_stats(e->work_fd, &st)) {
			if (st.rss_bytes > rss_max)
				rss_max = st.rss_bytes;
			if (st.budget_held > held_max)
				held_max = st.budget_held;
			if (st.strategy[0].inflight_now > infl_max)
				infl_max = st.strategy[0].inflight_now;
			demo_live(false, "t=%5.1f s  written %8s  chunks in flight %2" PRIu64
				  "  chunk memory held %7s  daemon RSS %7s", demo_now() - t0,
				  demo_size(st.strategy[0].bytes - bytes0, a, sizeof(a)),
				  st.strategy[0].inflight_now, demo_size(st.budget_held, b, sizeof(b)),
				  demo_size(st.rss_bytes, c, sizeof(c)));
		}
		demo_sleep(0.1);	/* a Ctrl-C reaches the write as an interrupt */
	}
	pthread_join(th, NULL);
	demo_live_end();
	if (bench_stop) {
		demo_say("Interrupted: the write ended after %" PRId64 " bytes%s%s.", w.result,
			 w.err ? ": " : "", w.err ? strerror(w.err) : "");
		snprintf(why, wl, "interrupted");
		goto out;
	}
	if (w.err) {
		snprintf(why, wl, "the refctx write failed: %s", strerror(w.err));
		goto out;
	}
	if ((ret = demo_stats(e->work_fd, &st))) {
		snprintf(why, wl, "stats: %s", strerror(-ret));
		goto out;
	}
	whp = st.strategy[0].write_held_peak;
	demo_say("Written: %" PRId64 " bytes in %.2f s, %.0f MiB/s. The most this write held at "
		 "once: %s (%" PRIu64 " chunks); the daemon's RSS peaked at %s (+%s) while it "
		 "moved %s.", w.result, w.seconds, (double)w.result / (double)MIB / w.seconds,
		 demo_size(whp, a, sizeof(a)), infl_max, demo_size(rss_max, b, sizeof(b)),
		 demo_size(rss_max - rss0, c, sizeof(c)), demo_size(len, d, sizeof(d)));

	demo_step("the raw disk, for comparison");
	raw = raw_disk(e, &p, raw_len < len ? raw_len : len);
	if (raw > 0)
		demo_say("O_DIRECT writes of the same bytes, 4 MiB each, to a file beside the image "
			 "(%s, then fdatasync): %.0f MiB/s. refdio: %.0f MiB/s, %.2f of it.",
			 demo_size(raw_len < len ? raw_len : len, a, sizeof(a)), raw,
			 (double)w.result / (double)MIB / w.seconds,
			 (double)w.result / (double)MIB / w.seconds / raw);
	else
		demo_say("The raw-disk comparison could not run here (%s).", strerror((int)-raw));

	demo_step("check the file");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ret = fd < 0 ? -errno : bench_pattern_verify(&p, fd, len, &checked, &bad);
	if (fd >= 0)
		close(fd);
	demo_say("%s read back from 34 places (the first and last bytes among them) and "
		 "compared with the pattern: %" PRIu64 " bytes differ.",
		 demo_size(checked, a, sizeof(a)), bad);

	demo_step("the same %s with pin", demo_size(len, a, sizeof(a)));
	demo_say("pin reads the whole range into the daemon before writing (as Linux iomap "
		 "pins every page): it would hold %s at once. The budget says no.",
		 demo_size(len, a, sizeof(a)));
	pw = (struct one_write){ .path = pin_path, .p = &p, .len = len,
				 .strategy = REFDIO_STRATEGY_PIN };
	write_main(&pw);
	sb.st_size = -1;
	stat(pin_path, &sb);
	demo_say("REFDIO_IOC_DIO_WRITE with pin: %s after %.3f s; the file holds %" PRId64
		 " bytes. (`refdio dio-write --strategy pin` says the same in words.)",
		 pw.err ? strerror(pw.err) : "it was written", pw.seconds, (int64_t)sb.st_size);
	ps = (struct one_write){ .path = pin_path, .p = &p, .len = small,
				 .strategy = REFDIO_STRATEGY_PIN };
	write_main(&ps);
	demo_stats(e->work_fd, &st);
	demo_say("A pin of %s fits the budget and is written (%s), and holds all of it at "
		 "once: the most it held was %s, against refctx's %s for %s.",
		 demo_size(small, a, sizeof(a)), ps.err ? strerror(ps.err) : "ok",
		 demo_size(st.strategy[1].write_held_peak, b, sizeof(b)),
		 demo_size(whp, c, sizeof(c)), demo_size(len, d, sizeof(d)));

	/* fsck reads every data region to check its checksum: 16 GiB would take minutes. */
	if (len > GIB && !o->keep && !unlink(path))
		demo_say("The %s file is removed before the unmount (its bytes were checked above; "
			 "fsck would spend minutes reading it back).", demo_size(len, a, sizeof(a)));

	if ((uint64_t)w.result != len)
		snprintf(why, wl, "refctx wrote %" PRId64 " of %" PRIu64 " bytes", w.result, len);
	else if (bad || !checked)
		snprintf(why, wl, "%" PRIu64 " of %" PRIu64 " bytes read back differ", bad, checked);
	else if (whp > window * (chunk + 64 * 1024))
		snprintf(why, wl, "one refctx write held %" PRIu64 " bytes, more than %" PRIu64
			 " chunks", whp, window);
	else if (rss_max - rss0 > MAX_HELD)
		snprintf(why, wl, "the daemon's RSS grew by %" PRIu64 " bytes during the write",
			 rss_max - rss0);
	else if (pw.err != ENOBUFS || sb.st_size != 0)
		snprintf(why, wl, "pin of %" PRIu64 " bytes was not refused with ENOBUFS (%s)", len,
			 pw.err ? strerror(pw.err) : "written");
	else if (ps.err || (uint64_t)ps.result != small ||
		 st.strategy[1].write_held_peak < small)
		snprintf(why, wl, "the small pin: %s, held %" PRIu64, ps.err ? strerror(ps.err) :
			 "short", st.strategy[1].write_held_peak);
	else
		snprintf(r->detail, sizeof(r->detail), "%s refctx at %.0f MiB/s (raw disk %.0f), "
			 "held at most %s, daemon RSS +%s; pin of it refused (ENOBUFS) in %.3f s",
			 demo_size(len, a, sizeof(a)), (double)w.result / (double)MIB / w.seconds,
			 raw > 0 ? raw : 0.0, demo_size(whp, b, sizeof(b)),
			 demo_size(rss_max - rss0, c, sizeof(c)), pw.seconds);
out:
	bench_pattern_unmap(&p);
}
