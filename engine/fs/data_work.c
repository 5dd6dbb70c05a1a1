/*
 * data_work.c - the data workers: threads that run the asynchronous file-data calls.
 *
 * Owns: struct rd_data_fs, a FIFO of work items and up to RD_DATA_WORKERS threads, started
 * on demand (a filesystem that never makes an asynchronous call has none) and joined at
 * close. rd_fs_read_async / rd_fs_write_async hand their whole operation to a worker,
 * which runs the synchronous path and then calls the caller's done.
 *
 * Why whole operations: a write holds its range lock from begin to commit and commits
 * from the thread that began it, so a worker blocked on a range lock only ever waits for
 * a thread that needs nothing from the workers (I/O completes on I/O threads, commits in
 * their own thread): no deadlock, whatever the number of workers.
 *
 * The direct-write sink (dio_fs.c) also queues here the begins that may wait (a busy
 * range, an edge block to read). Its chunks commit on dio workers, not here; a chunk that
 * holds a range lock may wait for earlier chunks of its write, but those have all begun
 * already (dio_fs.c begins a write's chunks in file order), so they too need nothing from
 * the workers, and the argument above still holds.
 *
 * Must never: run a work item on an I/O thread, or exit while items are queued.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "data_int.h"

#define RD_DATA_WORKERS	16	/* started on demand; FUSE keeps up to max_background busy */

struct rd_data_fs {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct rd_data_work *head, *tail;
	pthread_t th[RD_DATA_WORKERS];
	unsigned nthreads;
	unsigned idle;		/* workers waiting for an item */
	unsigned queued;	/* items not yet taken */
	bool stop;
};

int rd_data_fs_init(struct rd_fs *fs)
{
	struct rd_data_fs *df = calloc(1, sizeof(*df));

	if (!df)
		return -ENOMEM;
	pthread_mutex_init(&df->lock, NULL);
	pthread_cond_init(&df->cond, NULL);
	fs->data = df;
	return 0;
}

static void *worker(void *arg)
{
	struct rd_data_fs *df = arg;

	pthread_mutex_lock(&df->lock);
	for (;;) {
		struct rd_data_work *w = df->head;

		if (!w) {
			if (df->stop)
				break;
			df->idle++;
			pthread_cond_wait(&df->cond, &df->lock);
			df->idle--;
			continue;
		}
		df->head = w->next;
		if (!df->head)
			df->tail = NULL;
		assert(df->queued > 0);
		df->queued--;
		pthread_mutex_unlock(&df->lock);
		w->fn(w);	/* may free w */
		pthread_mutex_lock(&df->lock);
	}
	pthread_mutex_unlock(&df->lock);
	return NULL;
}

int rd_data_queue(struct rd_fs *fs, struct rd_data_work *w)
{
	struct rd_data_fs *df = fs->data;
	int ret = 0;

	w->next = NULL;
	pthread_mutex_lock(&df->lock);
	/* One more worker when the idle ones cannot take every queued item, up to the
	 * limit. */
	if (df->queued + 1 > df->idle && df->nthreads < RD_DATA_WORKERS) {
		if (!pthread_create(&df->th[df->nthreads], NULL, worker, df))
			df->nthreads++;
		else if (!df->nthreads)
			ret = -ENOMEM;
	}
	if (!ret) {
		if (df->tail)
			df->tail->next = w;
		else
			df->head = w;
		df->tail = w;
		df->queued++;
		pthread_cond_signal(&df->cond);
	}
	pthread_mutex_unlock(&df->lock);
	return ret;
}

void rd_data_fs_exit(struct rd_fs *fs)
{
	struct rd_data_fs *df = fs->data;

	if (!df)
		return;
	pthread_mutex_lock(&df->lock);
	df->stop = true;	/* workers finish what is queued, then leave */
	pthread_cond_broadcast(&df->cond);
	pthread_mutex_unlock(&df->lock);
	for (unsigned i = 0; i < df->nthreads; i++)
		pthread_join(df->th[i], NULL);
	assert(!df->head && !df->queued);	/* the workers drained the queue */
	pthread_mutex_destroy(&df->lock);
	pthread_cond_destroy(&df->cond);
	free(df);
	fs->data = NULL;
}
