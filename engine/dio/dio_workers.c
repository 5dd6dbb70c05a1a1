/*
 * dio_workers.c - the dio engine's worker threads and their job queue (see dio_workers.h).
 *
 * Owns: struct dio_workers. Lock order: the queue's lock is a leaf; it is never held while
 * a job runs, so a job may push jobs (its own write's included) and take any other lock.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "dio_workers.h"

static _Thread_local bool in_worker;

bool dio_workers_self(void)
{
	return in_worker;
}

static void *worker_main(void *arg);

/* A sync job starts: grow the pool so that `workers` threads stay outside sync jobs. */
static void sync_enter(struct dio_workers *p)
{
	pthread_mutex_lock(&p->lock);
	p->in_sync++;
	if (p->nthreads - p->in_sync < p->workers && p->nthreads < DIO_WORKERS_MAX &&
	    !pthread_create(&p->threads[p->nthreads], NULL, worker_main, p))
		p->nthreads++;
	pthread_mutex_unlock(&p->lock);
}

static void sync_exit(struct dio_workers *p)
{
	pthread_mutex_lock(&p->lock);
	assert(p->in_sync > 0);
	p->in_sync--;
	pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *arg)
{
	struct dio_workers *p = arg;

	in_worker = true;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct dio_job *j;
		bool sync;

		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		j = p->head;
		if (!j)
			break;		/* stopping, and nothing left */
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		sync = j->sync;		/* j may be gone once run returns */
		if (sync)
			sync_enter(p);
		j->run(j);
		if (sync)
			sync_exit(p);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int dio_workers_start(struct dio_workers *p, unsigned workers)
{
	p->head = p->tail = NULL;
	p->stopping = false;
	p->workers = workers;
	p->nthreads = p->in_sync = 0;
	p->threads = calloc(DIO_WORKERS_MAX, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (; p->nthreads < workers; p->nthreads++) {
		int err = pthread_create(&p->threads[p->nthreads], NULL, worker_main, p);

		if (err) {
			dio_workers_stop(p);
			return -err;
		}
	}
	return 0;
}

void dio_workers_push(struct dio_workers *p, struct dio_job *j)
{
	pthread_mutex_lock(&p->lock);
	assert(p->tail != j);	/* queued at most once */
	j->next = NULL;
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void dio_workers_stop(struct dio_workers *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* Only this thread starts threads now: sync jobs are over (their writes are gone). */
	n = p->nthreads;
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	assert(!p->head);	/* the workers ran every job before exiting */
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	p->threads = NULL;
}
