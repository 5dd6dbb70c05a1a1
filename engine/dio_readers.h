/*
 * dio_readers.h - the job interface of the reader threads (dio_readers.c), for the sources
 * whose reads block (dio_source_procmem.c). Internal to engine/dio*.c; the public side
 * (create, destroy, statistics) is in dio.h.
 *
 * A job is one blocking read into a buffer the pool may take. From dio_readers_submit()
 * the pool calls done() exactly once: with run()'s result, or at once with -ETIMEDOUT
 * (deadline passed) or -ECANCELED (dio_readers_cancel) and buf_taken = true when run() was
 * already under way: the pool then makes [buf, buf + buf_cap) inaccessible (a fresh
 * PROT_NONE mapping over it, so a late copy fails instead of landing anywhere) and unmaps
 * it once run() returns. release() comes last, when the pool will not touch the job again
 * (after done() and after run() returned): run() may use the job until then.
 */
#ifndef RD_DIO_READERS_H
#define RD_DIO_READERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dio.h"

struct reader_thread;

struct rd_dio_rjob {
	/* Set by the submitter. */
	long	(*run)(struct rd_dio_rjob *j);		/* on a reader thread; may block */
	void	(*done)(struct rd_dio_rjob *j, long res, bool buf_taken);	/* never blocks */
	void	(*release)(struct rd_dio_rjob *j);
	void	*buf;
	size_t	buf_cap;		/* buf is a private mapping of buf_cap bytes */
	uint64_t owner;			/* whose stuck reads it counts in */
	/* The pool's (under its lock). */
	struct rd_dio_rjob *next, *prev;	/* in the queue or the running list */
	int	state;
	uint64_t deadline;		/* CLOCK_MONOTONIC ns */
	struct reader_thread *thread;	/* while running */
};

/* Queues j (done() will be called, also for a refused job: -ETIMEDOUT at once when its
 * owner has too many reads stuck). */
void dio_readers_submit(struct rd_dio_readers *r, struct rd_dio_rjob *j);
/* Ends j now if it is queued or running (done(-ECANCELED)); nothing if it ended. The
 * caller guarantees j is not released meanwhile (it holds its own reference). */
void dio_readers_cancel(struct rd_dio_readers *r, struct rd_dio_rjob *j);

#endif
