/*
 * cmd_stats.c - `refdio stats`: the live direct-write statistics of a mounted refdio
 * filesystem (REFDIO_IOC_STATS on the mount point), once or every --interval seconds.
 *
 * Owns: presenting the daemon's snapshot as a table or JSON, and with --watch a live view:
 * on a terminal the table redrawn in place under a headline (throughput since the last
 * snapshot, chunks in flight, bytes held against the budget, callers gone); on a pipe or
 * file one plain line per snapshot with the same figures. Changes nothing unless --reset
 * is given. Ctrl-C (or SIGTERM) ends a watch with exit status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cmd.h"
#include "refdio_ioctl.h"

static const char *const strategy_names[REFDIO_NR_STRATEGIES + 1] = {
	"default", "refctx", "pin", "chunk", "bounce64",
};
static const char *const issue_names[] = { "default", "inline", "punt" };

static volatile sig_atomic_t stop_watch;

static void on_signal(int sig)
{
	(void)sig;
	stop_watch = 1;
}

static void stats_usage(FILE *f)
{
	fprintf(f,
"usage: refdio stats MOUNTPOINT [--json] [--watch] [--interval SECONDS] [--reset]\n"
"\n"
"Prints the direct-write statistics of the refdio daemon serving MOUNTPOINT (any file or\n"
"directory of the mount will do): per strategy, writes and bytes, chunks in flight (now\n"
"and max), bytes of chunk memory held by writes (now, peak, and the most one write held),\n"
"inline vs punted submissions, writes cut short because the caller went away or was\n"
"interrupted, write-latency percentiles; then the memory budget (-o max_held: its size,\n"
"what writes hold now and at peak, how many writes waited for it), the caps on window\n"
"and chunk, reads of callers' memory that timed out or are stuck, the daemon's pid and\n"
"resident memory, and the asynchronous writes it still knows (running, or finished with\n"
"the result not collected). The JSON keys are listed in docs/dio.md.\n"
"\n"
"options:\n"
"  --json             JSON (with --watch, one object per line)\n"
"  --watch            a live view until Ctrl-C: on a terminal the table redrawn in\n"
"                     place under a headline (throughput, chunks in flight, bytes held\n"
"                     against the budget, callers gone); otherwise one plain line per\n"
"                     snapshot with those figures\n"
"  --interval SECONDS time between snapshots with --watch (default 1; 0.1 to 3600)\n"
"  --reset            zero the counters and peaks after this snapshot\n"
"  -h, --help         this text\n");
}

static const char *human(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "K", "M", "G", "T", "P" };
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f%s" : "%.0f%s", d, units[u]);
	return buf;
}

static const char *sname(uint32_t s)
{
	return s <= REFDIO_NR_STRATEGIES ? strategy_names[s] : "?";
}

static void print_text(const char *mnt, const struct refdio_stats *st)
{
	char a[16], b[16], c[16], e[16];

	printf("refdio stats %s: up %.1f s, daemon RSS %s, defaults %s window %u chunk %s %s\n",
	       mnt, (double)st->uptime_ns / 1e9, human(st->rss_bytes, a, sizeof(a)),
	       sname(st->default_strategy), st->default_window,
	       human(st->default_chunk, b, sizeof(b)),
	       st->default_issue < 3 ? issue_names[st->default_issue] : "?");
	printf("%-8s %8s %8s %9s %9s %8s %8s %8s %8s %6s %6s %6s %6s %26s\n", "strategy",
	       "writes", "bytes", "chunks", "infl/max", "held", "peak", "1-write", "short",
	       "inline", "punted", "gone", "intr", "latency us p50/p90/p99/max");
	for (uint32_t s = 0; s < st->nr_strategies && s < REFDIO_STATS_MAX_STRATEGIES; s++) {
		const struct refdio_strategy_stats *x = &st->strategy[s];
		char infl[24], lat[64];

		snprintf(infl, sizeof(infl), "%" PRIu64 "/%" PRIu64, x->inflight_now,
			 x->inflight_max);
		snprintf(lat, sizeof(lat), "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
			 x->lat_p50_us, x->lat_p90_us, x->lat_p99_us, x->lat_max_us);
		printf("%-8s %8" PRIu64 " %8s %9" PRIu64 " %9s %8s %8s %8s %8" PRIu64
		       " %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %26s\n",
		       sname(s + 1), x->writes, human(x->bytes, a, sizeof(a)), x->chunks, infl,
		       human(x->held_now, b, sizeof(b)), human(x->held_peak, c, sizeof(c)),
		       human(x->write_held_peak, e, sizeof(e)), x->short_writes,
		       x->inline_submits, x->punted_submits, x->callers_gone, x->interrupts, lat);
	}
	if (st->version >= 2) {
		char m[16], h[16], p[16];

		char u[16];

		printf("budget (max_held) %s, a user's %s: held %s, peak %s, writes that waited %"
		       PRIu64 "; caps: window %u, chunk %s; caller reads stuck %" PRIu64
		       ", timed out %u; daemon pid %" PRIu64 "\n",
		       st->budget_max == UINT64_MAX ? "unlimited" :
		       human(st->budget_max, m, sizeof(m)),
		       human(st->budget_max_user, u, sizeof(u)),
		       human(st->budget_held, h, sizeof(h)),
		       human(st->budget_peak, p, sizeof(p)), st->budget_waits, st->max_window,
		       human(st->max_chunk, a, sizeof(a)), st->reads_stalled, st->reads_timed_out,
		       st->daemon_pid);
	}
	printf("requests in flight %" PRIu64 ", receive buffers %" PRIu64 " (peak %" PRIu64
	       "); async writes: %" PRIu64 " running, %" PRIu64 " done and uncollected, %"
	       PRIu64 " expired\n", st->requests_inflight, st->rbufs_in_use, st->rbufs_peak,
	       st->async_running, st->async_done, st->async_expired);
	for (uint32_t i = 0; i < st->nr_async && i < REFDIO_STATS_MAX_ASYNC; i++) {
		const struct refdio_async_info *ai = &st->async[i];

		if (ai->state == REFDIO_ASYNC_DONE)
			printf("  id %-6" PRIu64 " pid %-7u %-8s %10s  done in %.3f s: %s%" PRId64
			       "\n", ai->id, ai->pid, sname(ai->strategy),
			       human(ai->len, a, sizeof(a)), (double)ai->elapsed_ns / 1e9,
			       ai->result < 0 ? "error " : "", ai->result < 0 ? -ai->result :
			       ai->result);
		else
			printf("  id %-6" PRIu64 " pid %-7u %-8s %10s  running for %.3f s\n",
			       ai->id, ai->pid, sname(ai->strategy), human(ai->len, a, sizeof(a)),
			       (double)ai->elapsed_ns / 1e9);
	}
}

/* The figures of a live view: sums over the strategies, the rate since the last one. */
struct watch_figs {
	uint64_t	bytes, inflight, held, gone, intr;
	double		mib_s;		/* -1: no earlier snapshot yet */
};

static void watch_figs(const struct refdio_stats *st, const struct refdio_stats *prev,
		       double dt, struct watch_figs *f)
{
	uint64_t before = 0;

	memset(f, 0, sizeof(*f));
	for (uint32_t s = 0; s < st->nr_strategies && s < REFDIO_STATS_MAX_STRATEGIES; s++) {
		f->bytes += st->strategy[s].bytes;
		f->inflight += st->strategy[s].inflight_now;
		f->held += st->strategy[s].held_now;
		f->gone += st->strategy[s].callers_gone;
		f->intr += st->strategy[s].interrupts;
		if (prev && s < prev->nr_strategies)
			before += prev->strategy[s].bytes;
	}
	/* A reset (or another --reset) makes the sum go down: no rate for that step. */
	f->mib_s = prev && dt > 0 && f->bytes >= before ?
		(double)(f->bytes - before) / 1048576.0 / dt : -1;
}

static void print_watch_line(const struct refdio_stats *st, const struct watch_figs *f,
			     bool headline)
{
	char a[16], b[16], c[16], d[16], rate[32];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	if (f->mib_s < 0)
		snprintf(rate, sizeof(rate), "-");
	else
		snprintf(rate, sizeof(rate), "%.1f MiB/s", f->mib_s);
	printf("%s%02d:%02d:%02d  %s  in flight %" PRIu64 " chunks  held %s of budget %s  "
	       "written %s  callers gone %" PRIu64 "  interrupts %" PRIu64 "  RSS %s\n",
	       headline ? "live " : "", tm.tm_hour, tm.tm_min, tm.tm_sec, rate, f->inflight,
	       human(st->version >= 2 ? st->budget_held : f->held, a, sizeof(a)),
	       st->version < 2 ? "?" : st->budget_max == UINT64_MAX ? "unlimited" :
	       human(st->budget_max, b, sizeof(b)), human(f->bytes, c, sizeof(c)), f->gone,
	       f->intr, human(st->rss_bytes, d, sizeof(d)));
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

/* Copying GC's counters (REFDIO_IOC_GC without RUN); NULL from a daemon without it. */
static const struct refdio_gc *query_gc(int fd, struct refdio_gc *g)
{
	memset(g, 0, sizeof(*g));
	return ioctl(fd, REFDIO_IOC_GC, g) ? NULL : g;
}

static void print_gc_text(const struct refdio_gc *g)
{
	if (!g)
		return;
	printf("copying gc: %" PRIu64 " rounds, %" PRIu64 " buckets freed, %" PRIu64
	       " extents moved (%" PRIu64 " bytes written, %" PRIu64 " read), %" PRIu64
	       " left for later, %" PRIu64 " writes waited for it\n", g->rounds,
	       g->buckets_freed, g->extents_moved, g->bytes_moved, g->bytes_read, g->skipped,
	       g->waits);
}

static void print_json(const char *mnt, const struct refdio_stats *st, bool pretty,
		       const struct refdio_gc *g)
{
	json_object *o = json_object_new_object(), *ss = json_object_new_object();
	json_object *as = json_object_new_array();

	json_object_object_add(o, "mountpoint", json_object_new_string(mnt));
	add_u64(o, "version", st->version);
	add_u64(o, "uptime_ns", st->uptime_ns);
	add_u64(o, "rss_bytes", st->rss_bytes);
	json_object_object_add(o, "default_strategy",
			       json_object_new_string(sname(st->default_strategy)));
	json_object_object_add(o, "default_issue", json_object_new_string(
		st->default_issue < 3 ? issue_names[st->default_issue] : "?"));
	add_u64(o, "default_window", st->default_window);
	add_u64(o, "default_chunk", st->default_chunk);
	add_u64(o, "requests_inflight", st->requests_inflight);
	add_u64(o, "rbufs_in_use", st->rbufs_in_use);
	add_u64(o, "rbufs_peak", st->rbufs_peak);
	add_u64(o, "async_running", st->async_running);
	add_u64(o, "async_done", st->async_done);
	add_u64(o, "async_expired", st->async_expired);
	if (st->version >= 2) {
		add_u64(o, "pid", st->daemon_pid);
		add_u64(o, "budget_max", st->budget_max);
		add_u64(o, "budget_max_user", st->budget_max_user);
		add_u64(o, "budget_held", st->budget_held);
		add_u64(o, "budget_peak", st->budget_peak);
		add_u64(o, "budget_waits", st->budget_waits);
		add_u64(o, "max_window", st->max_window);
		add_u64(o, "max_chunk", st->max_chunk);
		add_u64(o, "reads_stalled", st->reads_stalled);
		add_u64(o, "reads_timed_out", st->reads_timed_out);
	}
	for (uint32_t s = 0; s < st->nr_strategies && s < REFDIO_STATS_MAX_STRATEGIES; s++) {
		const struct refdio_strategy_stats *x = &st->strategy[s];
		json_object *j = json_object_new_object();

		add_u64(j, "writes", x->writes);
		add_u64(j, "bytes", x->bytes);
		add_u64(j, "chunks", x->chunks);
		add_u64(j, "short_writes", x->short_writes);
		add_u64(j, "failed", x->failed);
		add_u64(j, "inflight_now", x->inflight_now);
		add_u64(j, "inflight_max", x->inflight_max);
		add_u64(j, "held_now", x->held_now);
		add_u64(j, "held_peak", x->held_peak);
		add_u64(j, "write_held_peak", x->write_held_peak);
		add_u64(j, "inline_submits", x->inline_submits);
		add_u64(j, "punted_submits", x->punted_submits);
		add_u64(j, "callers_gone", x->callers_gone);
		add_u64(j, "interrupts", x->interrupts);
		add_u64(j, "lat_p50_us", x->lat_p50_us);
		add_u64(j, "lat_p90_us", x->lat_p90_us);
		add_u64(j, "lat_p99_us", x->lat_p99_us);
		add_u64(j, "lat_max_us", x->lat_max_us);
		json_object_object_add(ss, sname(s + 1), j);
	}
	json_object_object_add(o, "strategies", ss);
	for (uint32_t i = 0; i < st->nr_async && i < REFDIO_STATS_MAX_ASYNC; i++) {
		const struct refdio_async_info *ai = &st->async[i];
		json_object *j = json_object_new_object();

		add_u64(j, "id", ai->id);
		add_u64(j, "pid", ai->pid);
		add_u64(j, "len", ai->len);
		json_object_object_add(j, "strategy", json_object_new_string(sname(ai->strategy)));
		json_object_object_add(j, "state", json_object_new_string(
			ai->state == REFDIO_ASYNC_DONE ? "done" : "running"));
		if (ai->state == REFDIO_ASYNC_DONE)
			json_object_object_add(j, "result", json_object_new_int64(ai->result));
		add_u64(j, "elapsed_ns", ai->elapsed_ns);
		json_object_array_add(as, j);
	}
	json_object_object_add(o, "async", as);
	if (g) {
		json_object *gj = json_object_new_object();

		add_u64(gj, "rounds", g->rounds);
		add_u64(gj, "buckets_freed", g->buckets_freed);
		add_u64(gj, "extents_moved", g->extents_moved);
		add_u64(gj, "bytes_moved", g->bytes_moved);
		add_u64(gj, "bytes_read", g->bytes_read);
		add_u64(gj, "skipped", g->skipped);
		add_u64(gj, "waits", g->waits);
		json_object_object_add(o, "gc", gj);
	}
	puts(json_object_to_json_string_ext(o, pretty ? JSON_C_TO_STRING_PRETTY :
					    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* Seconds between two snapshots: "0.5", "2", within [0.1, 3600]; -1 on garbage. */
static double parse_interval(const char *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < 0.1 || d > 3600)
		return -1;
	return d;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "watch", no_argument, NULL, 'w' },
		{ "interval", required_argument, NULL, 'i' },
		{ "reset", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool json = false, watch = false, reset = false, tty = isatty(STDOUT_FILENO);
	bool have_prev = false, have_interval = false;
	struct sigaction sa = { .sa_handler = on_signal };
	struct refdio_stats *st = NULL, *prev = NULL;
	double interval = 1, t_prev = 0;
	const char *mnt;
	int opt, fd, status = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'i':
			interval = parse_interval(optarg);
			if (interval < 0)
				return rd_fail("stats", "bad --interval '%s' (seconds, 0.1 to 3600)",
					       optarg) + 1;
			have_interval = true;
			break;
		case 'r':
			reset = true;
			break;
		case 'h':
			stats_usage(stdout);
			return 0;
		default:
			stats_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		stats_usage(stderr);
		return 2;
	}
	if (have_interval && !watch)
		return rd_fail("stats", "--interval needs --watch") + 1;
	mnt = argv[optind];
	fd = open(mnt, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rd_fail("stats", "%s: %s", mnt, strerror(errno));
	st = calloc(1, sizeof(*st));
	prev = calloc(1, sizeof(*prev));
	if (!st || !prev) {
		status = rd_fail("stats", "out of memory");
		goto out;
	}
	if (watch) {
		sigemptyset(&sa.sa_mask);	/* no SA_RESTART: the sleep ends at once */
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	do {
		struct timespec ts = { (time_t)interval,
				       (long)((interval - (double)(time_t)interval) * 1e9) };
		struct watch_figs f;
		double t;
		struct refdio_gc gcs;

		memset(st, 0, sizeof(*st));
		st->size = sizeof(*st);
		st->flags = reset ? REFDIO_STATS_RESET : 0;
		if (ioctl(fd, REFDIO_IOC_STATS, st)) {
			if (errno == EINTR && stop_watch)
				break;
			status = rd_fail("stats", "%s: %s%s", mnt, strerror(errno),
					 errno == ENOTTY ? " (not a refdio mount?)" : "");
			break;
		}
		t = mono_s();
		watch_figs(st, have_prev ? prev : NULL, t - t_prev, &f);
		if (json) {
			print_json(mnt, st, !watch, query_gc(fd, &gcs));
		} else if (!watch) {
			print_text(mnt, st);
			print_gc_text(query_gc(fd, &gcs));
		} else if (tty) {
			printf("\033[H\033[J");	/* home, clear: redrawn in place */
			print_watch_line(st, &f, true);
			print_text(mnt, st);
			print_gc_text(query_gc(fd, &gcs));
			printf("(every %g s; Ctrl-C to stop)\n", interval);
		} else {
			print_watch_line(st, &f, false);
		}
		fflush(stdout);
		*prev = *st;
		t_prev = t;
		have_prev = true;
		reset = false;	/* once */
		if (watch && !stop_watch)
			nanosleep(&ts, NULL);	/* a signal cuts it short */
	} while (watch && !stop_watch);
out:
	free(st);
	free(prev);
	close(fd);
	return status;
}
