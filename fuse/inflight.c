/*
 * inflight.c - the count of requests whose reply is still to be sent (d->inflight), and
 * the wait for it to reach zero at teardown (daemon.h gives the order).
 *
 * Every handler that answers later (a completion on an I/O or dio thread, the notifier)
 * counts its request with rd_daemon_begin before it starts anything and drops it with
 * rd_daemon_end after its reply. Must never: block in rd_daemon_end (completions call it).
 */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

#include "daemon.h"

void rd_daemon_begin(struct rd_daemon *d)
{
	atomic_fetch_add(&d->inflight, 1);
}

void rd_daemon_end(struct rd_daemon *d)
{
	long was = atomic_fetch_sub(&d->inflight, 1);

	assert(was > 0);	/* one end per begin */
	if (was == 1) {
		pthread_mutex_lock(&d->drain_lock);
		pthread_cond_broadcast(&d->drained);
		pthread_mutex_unlock(&d->drain_lock);
	}
}

void rd_daemon_drain(struct rd_daemon *d)
{
	pthread_mutex_lock(&d->drain_lock);
	while (atomic_load(&d->inflight) > 0)
		pthread_cond_wait(&d->drained, &d->drain_lock);
	pthread_mutex_unlock(&d->drain_lock);
}
