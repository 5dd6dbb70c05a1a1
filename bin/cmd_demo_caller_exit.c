/*
 * cmd_demo_caller_exit.c - `refdio demo caller-exit`: a caller submits a large
 * asynchronous direct write from its own memory and is killed part-way.
 *
 * What it shows, each from a measurement: the chunks in flight when the caller dies (the
 * daemon's stats), the write ending on its own at a chunk boundary (the async result), the
 * file holding exactly that prefix of the caller's bytes (every byte read back), the
 * daemon counting the caller as gone, the image fsck-clean.
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

#define SEED	17

/* Why the scenario failed, or "" (then it passed). */
void demo_caller_exit(const struct demo_opts *o, struct bench_env *e,
			    struct demo_result *r, char *why, size_t wl)
{
	uint64_t len = o->fast ? GIB : 4 * GIB, id = 0, chunk, gone0, bad = 0;
	double kill_after = o->fast ? 0.3 : 1.0, t0, t_kill, t_done = 0;
	const struct refdio_async_info *ai;
	struct bench_pattern p = { 0 };
	struct refdio_stats st, at_kill;
	char path[PATH_MAX + 16], a[24], b[24];
	int rfd = -1, ret, ws;
	int64_t result = 0;
	pid_t child;
	struct stat sb;

	snprintf(path, sizeof(path), "%s/caller-exit.bin", e->work);
	if ((ret = demo_stats(e->work_fd, &st))) {
		snprintf(why, wl, "stats: %s", strerror(-ret));
		return;
	}
	gone0 = demo_gone(&st);
	chunk = st.default_chunk;
	if ((ret = bench_pattern_map(SEED, len, &p))) {
		snprintf(why, wl, "pattern: %s", strerror(-ret));
		return;
	}

	demo_step("a caller submits a %s write from its own memory",
		  demo_size(len, a, sizeof(a)));
	demo_say("A child process maps a %s pattern (4 MiB of RAM, mapped again and again) and "
		 "hands it to the daemon with REFDIO_IOC_DIO_SUBMIT: the call returns at once and "
		 "the daemon reads the child's memory a %s chunk at a time while it goes on.",
		 demo_size(len, a, sizeof(a)), demo_size(chunk, b, sizeof(b)));
	child = demo_writer(&p, len, path, true, &rfd);
	if (child < 0) {
		snprintf(why, wl, "fork: %s", strerror((int)-child));
		goto out;
	}
	ret = demo_read_u64(rfd, 30, &id);
	if (ret || !id) {
		snprintf(why, wl, "the child's submit failed (%s)", ret ? strerror(-ret) :
			 "see the daemon log");
		kill(child, SIGKILL);
		demo_reap(child);
		goto out;
	}
	demo_say("The child (pid %d) submitted write %" PRIu64 ".", (int)child, id);

	/* Watch it run, then kill the child while chunks are in flight. */
	t0 = demo_now();
	memset(&at_kill, 0, sizeof(at_kill));
	for (;;) {
		if ((ret = demo_stats(e->work_fd, &st)))
			break;
		ai = demo_async(&st, id);
		if (!ai || ai->state == REFDIO_ASYNC_DONE || bench_stop)
			break;
		demo_live(false, "t=%.2f s  chunks in flight %" PRIu64 ", chunk memory held %s, "
			  "daemon RSS %s", demo_now() - t0, st.strategy[0].inflight_now,
			  demo_size(st.strategy[0].held_now, a, sizeof(a)),
			  demo_size(st.rss_bytes, b, sizeof(b)));
		if (demo_now() - t0 >= kill_after && st.strategy[0].inflight_now) {
			at_kill = st;
			break;
		}
		demo_sleep(0.02);
	}
	if (!at_kill.size) {
		kill(child, SIGKILL);
		demo_reap(child);
		snprintf(why, wl, bench_stop ? "interrupted" : ret ? "stats failed" :
			 "the write ended before the kill (a machine too fast for this size)");
		goto out;
	}
	demo_live(true, "t=%.2f s  chunks in flight %" PRIu64 ", chunk memory held %s: now "
		  "SIGKILL to the child", demo_now() - t0, at_kill.strategy[0].inflight_now,
		  demo_size(at_kill.strategy[0].held_now, a, sizeof(a)));
	demo_live_end();
	t_kill = demo_now();
	kill(child, SIGKILL);
	ws = demo_reap(child);

	demo_step("the caller is gone");
	demo_say("The child died (%s); its address space is gone while %" PRIu64 " chunk reads "
		 "and writes were in flight.", WIFSIGNALED(ws) ? strsignal(WTERMSIG(ws)) :
		 "exited", at_kill.strategy[0].inflight_now);
	for (;;) {
		if ((ret = demo_stats(e->work_fd, &st)) || bench_stop)
			break;
		ai = demo_async(&st, id);
		if (!ai)
			break;
		if (ai->state == REFDIO_ASYNC_DONE) {
			result = ai->result;
			t_done = demo_now() - t_kill;
			break;
		}
		if (demo_now() - t_kill > 30)
			break;
		demo_sleep(0.01);
	}
	if (!t_done) {
		snprintf(why, wl, "the write did not end within 30 s of the kill");
		goto out;
	}
	demo_say("The daemon noticed: its next read of the child's memory found the address "
		 "space gone (the pidfd said so; it never read memory the caller no longer has), "
		 "so it issued no more chunks, let those in flight finish, and ended the write "
		 "%.3f s after the kill with %" PRId64 " bytes written.", t_done, result);
	demo_say("callers gone: %" PRIu64 " before, %" PRIu64 " now.", gone0, demo_gone(&st));

	demo_step("check the file");
	if (result <= 0) {
		snprintf(why, wl, "the write ended with %" PRId64 " (nothing written)", result);
		goto out;
	}
	if (stat(path, &sb)) {
		snprintf(why, wl, "%s: %s", path, strerror(errno));
		goto out;
	}
	ret = demo_verify_all(&p, path, (uint64_t)result, &bad);
	demo_say("The file is %" PRIu64 " bytes long, %" PRIu64 " chunks of %s (%s a chunk "
		 "boundary); every byte read back was compared with the child's pattern: %"
		 PRIu64 " differ.", (uint64_t)sb.st_size, (uint64_t)result / chunk,
		 demo_size(chunk, a, sizeof(a)), (uint64_t)result % chunk ? "NOT on" : "on", bad);
	if (ret)
		snprintf(why, wl, "reading the file back: %s", strerror(-ret));
	else if ((uint64_t)sb.st_size != (uint64_t)result)
		snprintf(why, wl, "file size %" PRIu64 " != the write's result %" PRId64,
			 (uint64_t)sb.st_size, result);
	else if ((uint64_t)result % chunk)
		snprintf(why, wl, "the write ended off a chunk boundary (%" PRId64 ")", result);
	else if ((uint64_t)result >= len)
		snprintf(why, wl, "the whole write finished: the kill came too late");
	else if (bad)
		snprintf(why, wl, "%" PRIu64 " bytes of the prefix differ from the caller's", bad);
	else if (demo_gone(&st) != gone0 + 1)
		snprintf(why, wl, "callers gone went from %" PRIu64 " to %" PRIu64, gone0,
			 demo_gone(&st));
	else
		r->inspect_ino = sb.st_ino, r->inspect_end = (uint64_t)result;
	if (!why[0])
		snprintf(r->detail, sizeof(r->detail), "killed with %" PRIu64 " chunks in flight; "
			 "prefix of %" PRId64 " bytes (%" PRIu64 " chunks) verified, ended %.3f s "
			 "after the kill, callers gone +1", at_kill.strategy[0].inflight_now,
			 result, (uint64_t)result / chunk, t_done);
out:
	if (rfd >= 0)
		close(rfd);
	bench_pattern_unmap(&p);
}
