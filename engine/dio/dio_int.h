/*
 * dio_int.h - what dio.c and dio_stats.c share; nothing outside engine/dio*.c includes it.
 *
 * Owns: the per-strategy counters (atomics, updated without locks from any thread) and the
 * helpers that keep their now/peak pairs.
 */
#ifndef RD_DIO_INT_H
#define RD_DIO_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "refdio/dio.h"

struct dio_stats {
	_Atomic uint64_t writes, bytes, chunks, short_writes, failed;
	_Atomic uint64_t inflight_now, inflight_max;
	_Atomic uint64_t held_now, held_peak, write_held_peak;
	_Atomic uint64_t inline_submits, punted_submits;
	_Atomic uint64_t callers_gone, interrupts;
	_Atomic uint64_t lat_hist[RD_DIO_LAT_BUCKETS];
	_Atomic uint64_t lat_max_us;
};

/* *m = max(*m, v), lock-free. */
void dio_stat_max(_Atomic uint64_t *m, uint64_t v);
/* A chunk came (+1, +bytes) or went (-1, -bytes): now-values and their peaks. */
void dio_stat_chunk(struct dio_stats *st, int dchunks, int64_t dbytes);
/* A chunk of len bytes was committed (bytes and chunks count as they land, so that a
 * long write shows its progress). */
void dio_stat_commit(struct dio_stats *st, uint64_t len);
/* A write completed with res after lat_ns; len is what it asked for. */
void dio_stat_done(struct dio_stats *st, uint64_t len, long res, uint64_t lat_ns);
void dio_stat_read(struct dio_stats *st, struct rd_dio_stats *out);
void dio_stat_reset(struct dio_stats *st);

#endif
