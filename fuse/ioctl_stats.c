/*
 * ioctl_stats.c - REFDIO_IOC_STATS: a snapshot of the daemon's figures (the dio engine's
 * per strategy, the budget, the caller reads, the receive buffers, the asynchronous
 * writes), reset on request. Reads only; holds no lock while replying.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ioctl.h"


static uint64_t rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

void rd_ioctl_stats(fuse_req_t req, const void *in_buf, size_t size)
{
	struct rd_daemon *d = rd_ioctl_daemon(req);
	struct refdio_stats *st = calloc(1, size > sizeof(*st) ? size : sizeof(*st));
	uint32_t flags;

	if (!st) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	assert(size >= offsetof(struct refdio_stats, strategy));	/* checked by rd_ioctl */
	memcpy(&flags, (const char *)in_buf + offsetof(struct refdio_stats, flags), 4);
	st->size = (uint32_t)(size < sizeof(*st) ? size : sizeof(*st));
	st->version = REFDIO_STATS_VERSION;
	st->flags = flags;
	st->nr_strategies = RD_DIO_NR_STRATEGIES;
	st->rss_bytes = rss_bytes();
	st->uptime_ns = rd_ioctl_now_ns() - d->t_start;
	st->default_strategy = d->opts.dio_strategy + 1;
	st->default_issue = d->opts.dio_issue + 1;
	st->default_window = d->opts.dio_window;
	st->default_chunk = d->opts.dio_chunk;
	st->requests_inflight = (uint64_t)atomic_load(&d->inflight);
	st->daemon_pid = (uint64_t)getpid();
	st->max_window = d->opts.max_window;
	st->max_chunk = d->opts.max_chunk;
	{
		struct rd_dio_budget_stats bs;
		struct rd_dio_readers_stats rs;

		rd_dio_budget_stats(d->dio, &bs);
		st->budget_max = bs.max;
		st->budget_max_user = d->opts.max_held_user;
		st->budget_held = bs.held;
		st->budget_peak = bs.peak;
		st->budget_waits = bs.waited;
		rd_dio_readers_stats(d->readers, &rs);
		st->reads_stalled = rs.stalled;
		st->reads_timed_out = (uint32_t)rs.timeouts;
	}
	pthread_mutex_lock(&d->pool.lock);
	assert(d->pool.nr_free <= d->pool.total);
	st->rbufs_in_use = d->pool.total - d->pool.nr_free;
	st->rbufs_peak = d->pool.peak;
	pthread_mutex_unlock(&d->pool.lock);

	for (unsigned s = 0; s < RD_DIO_NR_STRATEGIES; s++) {
		struct refdio_strategy_stats *o = &st->strategy[s];
		struct rd_dio_stats ds;

		if (rd_dio_stats(d->dio, s, &ds))
			continue;
		o->writes = ds.writes;
		o->bytes = ds.bytes;
		o->chunks = ds.chunks;
		o->short_writes = ds.short_writes;
		o->failed = ds.failed;
		o->inflight_now = ds.inflight_now;
		o->inflight_max = ds.inflight_max;
		o->held_now = ds.held_now;
		o->held_peak = ds.held_peak;
		o->write_held_peak = ds.write_held_peak;
		o->inline_submits = ds.inline_submits;
		o->punted_submits = ds.punted_submits;
		o->callers_gone = ds.callers_gone;
		o->interrupts = ds.interrupts;
		o->lat_p50_us = ds.lat_p50_us;
		o->lat_p90_us = ds.lat_p90_us;
		o->lat_p99_us = ds.lat_p99_us;
		o->lat_max_us = ds.lat_max_us;
	}

	rd_ioctl_async_stats(d->ioc, st);

	if (flags & REFDIO_STATS_RESET)
		rd_dio_stats_reset(d->dio);
	fuse_reply_ioctl(req, 0, st, size);
	free(st);
}

