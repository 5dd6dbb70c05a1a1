/*
 * cmd_demo_interrupt.c - `refdio demo interrupt`: a synchronous direct write killed with
 * SIGKILL. The caller sits in the kernel until the daemon answers its request; the daemon
 * answers the FUSE interrupt at the next chunk boundary, so the caller is gone within a
 * second, whatever the write's size.
 *
 * Measured: the time from the kill to the child being reaped, the daemon's interrupt (or
 * caller-gone) count, the file's length on a chunk boundary and its bytes.
 *
 * Must never: kill anything but the writer child it forked (by its pid).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_demo.h"

#define SEED	23
#define GONE_WITHIN	1.0	/* seconds: the promise */

void demo_interrupt(const struct demo_opts *o, struct bench_env *e, struct demo_result *r,
			  char *why, size_t wl)
{
	uint64_t len = o->fast ? GIB : 8 * GIB, zero, chunk, n0, n1, bad = 0;
	double kill_after = o->fast ? 0.3 : 1.0, t0, gone_s;
	struct refdio_stats st, at_kill;
	struct bench_pattern p = { 0 };
	char path[PATH_MAX + 16], a[24];
	int rfd = -1, ret, ws;
	struct stat sb;
	pid_t child;

	snprintf(path, sizeof(path), "%s/interrupt.bin", e->work);
	if ((ret = demo_stats(e->work_fd, &st))) {
		snprintf(why, wl, "stats: %s", strerror(-ret));
		return;
	}
	n0 = demo_interrupts(&st) + demo_gone(&st);
	chunk = st.default_chunk;
	if ((ret = bench_pattern_map(SEED, len, &p))) {
		snprintf(why, wl, "pattern: %s", strerror(-ret));
		return;
	}
	demo_step("a synchronous %s write", demo_size(len, a, sizeof(a)));
	demo_say("A child process calls REFDIO_IOC_DIO_WRITE for %s of its memory and waits in "
		 "the kernel for the answer: once the daemon has the request, the kernel cannot "
		 "let the child die before the daemon replies.", demo_size(len, a, sizeof(a)));
	child = demo_writer(&p, len, path, false, &rfd);
	if (child < 0) {
		snprintf(why, wl, "fork: %s", strerror((int)-child));
		goto out;
	}
	if ((ret = demo_read_u64(rfd, 30, &zero))) {
		snprintf(why, wl, "the child did not start (%s)", strerror(-ret));
		kill(child, SIGKILL);
		demo_reap(child);
		goto out;
	}
	t0 = demo_now();
	memset(&at_kill, 0, sizeof(at_kill));
	for (;;) {
		if ((ret = demo_stats(e->work_fd, &st)) || bench_stop)
			break;
		if (waitpid(child, &ws, WNOHANG) == child) {
			child = 0;
			break;
		}
		demo_live(false, "t=%.2f s  chunks in flight %" PRIu64 ", chunk memory held %s",
			  demo_now() - t0, st.strategy[0].inflight_now,
			  demo_size(st.strategy[0].held_now, a, sizeof(a)));
		if (demo_now() - t0 >= kill_after && st.strategy[0].inflight_now) {
			at_kill = st;
			break;
		}
		demo_sleep(0.02);
	}
	if (!at_kill.size) {
		if (child) {
			kill(child, SIGKILL);
			demo_reap(child);
		}
		snprintf(why, wl, bench_stop ? "interrupted" : !child ? "the write ended before "
			 "the kill (a machine too fast for this size)" : "stats failed");
		goto out;
	}
	demo_live(true, "t=%.2f s  chunks in flight %" PRIu64 ": now SIGKILL to the child",
		  demo_now() - t0, at_kill.strategy[0].inflight_now);
	demo_live_end();

	demo_step("SIGKILL");
	t0 = demo_now();
	kill(child, SIGKILL);
	ws = demo_reap(child);
	gone_s = demo_now() - t0;
	demo_say("The kernel sent the daemon a FUSE interrupt for the request; the daemon ended "
		 "the write at its next chunk boundary and answered, and only then could the "
		 "child die: it was gone %.3f s after the kill (%s).", gone_s,
		 ws >= 0 && WIFSIGNALED(ws) ? strsignal(WTERMSIG(ws)) : "exited");
	if ((ret = demo_stats(e->work_fd, &st))) {
		snprintf(why, wl, "stats: %s", strerror(-ret));
		goto out;
	}
	n1 = demo_interrupts(&st) + demo_gone(&st);
	demo_say("Writes cut short by an interrupt or a vanished caller: %" PRIu64 " before, %"
		 PRIu64 " now.", n0, n1);

	demo_step("check the file");
	if (stat(path, &sb)) {
		snprintf(why, wl, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = demo_verify_all(&p, path, (uint64_t)sb.st_size, &bad);
	demo_say("The file holds %" PRIu64 " bytes (%" PRIu64 " chunks, %s a chunk boundary); "
		 "compared byte for byte with the child's pattern: %" PRIu64 " differ.",
		 (uint64_t)sb.st_size, (uint64_t)sb.st_size / chunk,
		 (uint64_t)sb.st_size % chunk ? "NOT on" : "on", bad);
	if (ret)
		snprintf(why, wl, "reading the file back: %s", strerror(-ret));
	else if (gone_s >= GONE_WITHIN)
		snprintf(why, wl, "the caller took %.3f s to go (more than %.0f s)", gone_s,
			 GONE_WITHIN);
	else if (n1 <= n0)
		snprintf(why, wl, "the daemon did not count the write as interrupted");
	else if ((uint64_t)sb.st_size % chunk || (uint64_t)sb.st_size >= len)
		snprintf(why, wl, "file length %" PRIu64 " is not a prefix on a chunk boundary",
			 (uint64_t)sb.st_size);
	else if (bad)
		snprintf(why, wl, "%" PRIu64 " bytes differ from the caller's", bad);
	else
		r->inspect_ino = sb.st_ino, r->inspect_end = (uint64_t)sb.st_size;
	if (!why[0])
		snprintf(r->detail, sizeof(r->detail), "caller gone %.3f s after SIGKILL "
			 "(%" PRIu64 " chunks in flight), prefix of %" PRIu64 " bytes verified",
			 gone_s, at_kill.strategy[0].inflight_now, (uint64_t)sb.st_size);
out:
	if (rfd >= 0)
		close(rfd);
	bench_pattern_unmap(&p);
}
