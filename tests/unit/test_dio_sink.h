/*
 * test_dio_sink.h - a TEST DOUBLE for the dio sink: an in-memory file (or a discarding,
 * hashing one) with delayed, out-of-order completions and injected failures.
 *
 * Owns: only what the dio unit tests need to drive and observe rd_dio. It is never the real
 * path: the filesystem layer provides the real sink (space allocation, extent insertion).
 *
 * Behaviour: write() checksums the chunk at once (as a real sink must: it checksums the
 * bytes it writes) and completes after a random delay on one of its own threads; only
 * then does it copy the bytes ("the device reads the buffer") and compare them with that
 * checksum, so a buffer that changes in flight is caught. commit() makes the copy visible
 * in the file and logs it; abort() drops it.
 */
#ifndef TEST_DIO_SINK_H
#define TEST_DIO_SINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "refdio/dio.h"

#define TSINK_NONE UINT64_MAX

struct tsink_opts {
	uint64_t	file_size;	/* in-memory file bytes; 0 = discard mode (hashes only) */
	unsigned	max_delay_us;	/* completion delay, uniform in [0, max_delay_us] */
	unsigned	threads;	/* completion threads; 0 = 2 */
	bool		complete_inline;/* call end_io from inside write() */
	size_t		max_chunk;	/* sink.max_chunk */
	uint64_t	fail_off;	/* the chunk written at this offset fails with fail_err */
	int		fail_err;
	uint64_t	enospc_off;	/* writes reaching past this offset get -ENOSPC */
	uint64_t	commit_fail_off;/* commit of the chunk at this offset fails */
	int		commit_fail_err;
	int		flush_err;	/* flush() returns this */
	uint64_t	seed;
	bool		no_hash;	/* discard mode: do not even hash (huge writes) */
};

/* Options with every injection off. */
static inline struct tsink_opts tsink_opts_default(void)
{
	return (struct tsink_opts){ .fail_off = TSINK_NONE, .enospc_off = TSINK_NONE,
				    .commit_fail_off = TSINK_NONE };
}

struct tsink_commit {
	uint64_t	off;
	uint64_t	len;
	uint64_t	hash;		/* xxhash of the bytes committed */
};

struct tsink_job;

struct tsink {
	struct rd_dio_sink	sink;
	struct tsink_opts	o;
	uint8_t			*file;

	pthread_mutex_t		lock;
	pthread_cond_t		cond;
	struct tsink_job	*queue;		/* pending completions, by due time */
	bool			stop;
	pthread_t		threads[8];
	unsigned		nthreads;
	uint64_t		rng;
	uint64_t		seq;		/* write submissions */
	uint64_t		max_done_seq;

	struct tsink_commit	*log;		/* commits in the order they came */
	size_t			log_n, log_cap;

	/* counters (under lock) */
	uint64_t		writes, writes_failed, commits, commit_fails, aborts, flushes;
	uint64_t		csum_mismatch;	/* bytes changed between checksum and copy */
	uint64_t		inversions;	/* completions overtaking an earlier write */
	uint64_t		bad_calls;	/* commit/abort of an unknown or failed request */
	uint64_t		outstanding;	/* written, neither committed nor aborted */
	uint64_t		in_write;	/* writes submitted, not yet completed */
	/* Calls made on the thread `watched` (set watch to count them). */
	bool			watch;
	pthread_t		watched;
	uint64_t		watched_writes, watched_commits, watched_aborts, watched_flushes;
	uint64_t		max_in_write;
};

int tsink_init(struct tsink *ts, const struct tsink_opts *o);
/* Stops the threads; everything must be completed. */
void tsink_exit(struct tsink *ts);
/* Clears the log and counters (the file stays). */
void tsink_reset(struct tsink *ts);
/* The commits logged for [off, off + ...) must be contiguous chunks in file order starting
 * at off and sum to bytes; 0 if so, else -1 (and a message). */
int tsink_check_prefix(struct tsink *ts, uint64_t off, uint64_t bytes);

#endif
