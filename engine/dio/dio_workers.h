/*
 * dio_workers.h - the dio engine's worker threads: a queue of jobs and the threads that run
 * them. Nothing outside engine/dio*.c includes it.
 *
 * Owns: the threads (started at dio_workers_start, joined at dio_workers_stop), the job
 * queue, and the rule that keeps sync steps from starving everyone else: a job marked sync
 * keeps its thread until the write ends and may wait for other writes' commits, which need
 * a free worker, so while sync jobs run the pool grows to keep `workers` threads outside
 * them (up to DIO_WORKERS_MAX in all; threads are kept until stop).
 *
 * A job is embedded in its owner (container_of) and queued at most once at a time; the
 * owner keeps it alive until run() returns (run may free it). Jobs run in FIFO order, each
 * on one worker, never under the queue's lock.
 *
 * Must never: run a job on the thread that pushed it, or be stopped while jobs can still be
 * pushed (the engine stops it once every write is gone).
 */
#ifndef RD_DIO_WORKERS_H
#define RD_DIO_WORKERS_H

#include <pthread.h>
#include <stdbool.h>

#define DIO_WORKERS_MAX		512	/* threads, those of sync steps included */

struct dio_job {
	struct dio_job	*next;		/* under the queue's lock */
	void		(*run)(struct dio_job *j);
	bool		sync;		/* keeps its thread long: grow the pool meanwhile */
};

struct dio_workers {
	pthread_mutex_t	lock;
	pthread_cond_t	cond;		/* a job was queued, or stopping */
	struct dio_job	*head, *tail;
	bool		stopping;
	unsigned	workers;	/* threads kept outside sync jobs */
	pthread_t	*threads;	/* DIO_WORKERS_MAX slots */
	unsigned	nthreads;	/* started (under lock once running) */
	unsigned	in_sync;	/* threads inside a sync job (lock) */
};

/* Starts `workers` threads. 0 or -errno (nothing left running). */
int dio_workers_start(struct dio_workers *p, unsigned workers);
/* Queues j; a worker runs it soon. */
void dio_workers_push(struct dio_workers *p, struct dio_job *j);
/* Runs what is queued, then joins every thread. Nothing may be pushed from now on. */
void dio_workers_stop(struct dio_workers *p);
/* Whether the calling thread is a dio worker (completions may only block there). */
bool dio_workers_self(void);

#endif
