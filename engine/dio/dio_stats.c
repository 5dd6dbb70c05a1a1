/*
 * dio_stats.c - per-strategy counters of the dio engine and their snapshot.
 *
 * Owns: the arithmetic of the counters (now/peak pairs, the log2 latency histogram and the
 * percentiles read from it). Lock-free: every update is one atomic operation, so a snapshot
 * taken while writes run is a set of individually exact values, not a consistent cut.
 *
 * Must never: block or allocate (it runs in completion paths).
 */
#include <assert.h>
#include <string.h>

#include "dio_int.h"

void dio_stat_max(_Atomic uint64_t *m, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);

	while (cur < v && !atomic_compare_exchange_weak_explicit(m, &cur, v,
			memory_order_relaxed, memory_order_relaxed))
		;
}

void dio_stat_chunk(struct dio_stats *st, int dchunks, int64_t dbytes)
{
	uint64_t n;

	/* Adding the two's complement of a negative delta subtracts it. */
	n = atomic_fetch_add_explicit(&st->inflight_now, (uint64_t)(int64_t)dchunks,
				      memory_order_relaxed) + (uint64_t)(int64_t)dchunks;
	if (dchunks > 0)
		dio_stat_max(&st->inflight_max, n);
	assert((int64_t)n >= 0);	/* a chunk leaves after it entered */
	n = atomic_fetch_add_explicit(&st->held_now, (uint64_t)dbytes, memory_order_relaxed) +
	    (uint64_t)dbytes;
	if (dbytes > 0)
		dio_stat_max(&st->held_peak, n);
	assert((int64_t)n >= 0);
}

static unsigned lat_bucket(uint64_t us)
{
	unsigned b = 63 - (unsigned)__builtin_clzll(us | 1);

	return b < RD_DIO_LAT_BUCKETS ? b : RD_DIO_LAT_BUCKETS - 1;
}

void dio_stat_commit(struct dio_stats *st, uint64_t len)
{
	atomic_fetch_add_explicit(&st->chunks, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->bytes, len, memory_order_relaxed);
}

void dio_stat_done(struct dio_stats *st, uint64_t len, long res, uint64_t lat_ns)
{
	uint64_t us = lat_ns / 1000;

	atomic_fetch_add_explicit(&st->writes, 1, memory_order_relaxed);
	if (res < 0)
		atomic_fetch_add_explicit(&st->failed, 1, memory_order_relaxed);
	if (res >= 0 && (uint64_t)res < len)
		atomic_fetch_add_explicit(&st->short_writes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->lat_hist[lat_bucket(us)], 1, memory_order_relaxed);
	dio_stat_max(&st->lat_max_us, us);
}

/* Upper bound (us) of the bucket holding the p-th permille of the histogram; 0 if empty. */
static uint64_t lat_permille(const uint64_t *h, uint64_t total, unsigned p)
{
	uint64_t want = (total * p + 999) / 1000, seen = 0;

	if (!total)
		return 0;
	for (unsigned i = 0; i < RD_DIO_LAT_BUCKETS; i++) {
		seen += h[i];
		if (seen >= want)
			return 2ull << i;
	}
	return 2ull << (RD_DIO_LAT_BUCKETS - 1);
}

#define LD(x) atomic_load_explicit(&st->x, memory_order_relaxed)

void dio_stat_read(struct dio_stats *st, struct rd_dio_stats *out)
{
	uint64_t total = 0;

	memset(out, 0, sizeof(*out));
	out->writes = LD(writes);
	out->bytes = LD(bytes);
	out->chunks = LD(chunks);
	out->short_writes = LD(short_writes);
	out->failed = LD(failed);
	out->inflight_now = LD(inflight_now);
	out->inflight_max = LD(inflight_max);
	out->held_now = LD(held_now);
	out->held_peak = LD(held_peak);
	out->write_held_peak = LD(write_held_peak);
	out->inline_submits = LD(inline_submits);
	out->punted_submits = LD(punted_submits);
	out->callers_gone = LD(callers_gone);
	out->interrupts = LD(interrupts);
	for (unsigned i = 0; i < RD_DIO_LAT_BUCKETS; i++) {
		out->lat_hist[i] = LD(lat_hist[i]);
		total += out->lat_hist[i];
	}
	out->lat_p50_us = lat_permille(out->lat_hist, total, 500);
	out->lat_p90_us = lat_permille(out->lat_hist, total, 900);
	out->lat_p99_us = lat_permille(out->lat_hist, total, 990);
	out->lat_max_us = LD(lat_max_us);
}

#define ZERO(x) atomic_store_explicit(&st->x, 0, memory_order_relaxed)

void dio_stat_reset(struct dio_stats *st)
{
	ZERO(writes);
	ZERO(bytes);
	ZERO(chunks);
	ZERO(short_writes);
	ZERO(failed);
	ZERO(write_held_peak);
	ZERO(inline_submits);
	ZERO(punted_submits);
	ZERO(callers_gone);
	ZERO(interrupts);
	for (unsigned i = 0; i < RD_DIO_LAT_BUCKETS; i++)
		ZERO(lat_hist[i]);
	ZERO(lat_max_us);
	/* Peaks restart from the current level, not from 0. */
	atomic_store_explicit(&st->inflight_max, LD(inflight_now), memory_order_relaxed);
	atomic_store_explicit(&st->held_peak, LD(held_now), memory_order_relaxed);
}
