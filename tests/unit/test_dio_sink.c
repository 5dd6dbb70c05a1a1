/*
 * test_dio_sink.c - the test double sink of test_dio_sink.h. Tests only; never shipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../test.h"
#include "csum.h"
#include "test_dio_sink.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct tsink_job {
	struct tsink_job	*next;
	struct rd_dio_sink_req	*req;
	uint64_t		due;		/* CLOCK_MONOTONIC ns */
	uint64_t		seq;
	uint64_t		hash;		/* taken at write() */
	long			res;		/* to complete with */
	void			*staged;	/* the copy, made at completion (file mode) */
	size_t			staged_cap;
	bool			ok;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t hash(const void *p, size_t len)
{
	return rd_csum(RD_CSUM_XXHASH, p, len);
}

/*
 * Staging buffers are recycled across all sinks of the process: fresh memory costs a page
 * fault per 4 KiB, which on this kind of VM is slower than everything else the tests do.
 * They are their own mappings, not inherited by forked children (no copy-on-write faults
 * in the parent afterwards).
 */
#define STAGE_KEEP 64

static pthread_mutex_t stage_lock = PTHREAD_MUTEX_INITIALIZER;
static void *stage_free[STAGE_KEEP];
static size_t stage_n, stage_cap;

static void *big_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(p != MAP_FAILED);
	CHECK(!madvise(p, len, MADV_DONTFORK));
	return p;
}

static void *stage_get(size_t len, size_t *cap)
{
	void *p = NULL;

	pthread_mutex_lock(&stage_lock);
	if (len > stage_cap) {
		while (stage_n)
			munmap(stage_free[--stage_n], stage_cap);
		stage_cap = len;
	}
	if (stage_n)
		p = stage_free[--stage_n];
	*cap = len = stage_cap;
	pthread_mutex_unlock(&stage_lock);
	return p ? p : big_alloc(len);
}

static void stage_put(void *p, size_t cap)
{
	pthread_mutex_lock(&stage_lock);
	if (p && cap == stage_cap && stage_n < STAGE_KEEP) {
		stage_free[stage_n++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&stage_lock);
	if (p)
		munmap(p, cap);
}

/* The device: copy the bytes now and check them against the checksum taken at write(). */
static void tsink_do_io(struct tsink *ts, struct tsink_job *j)
{
	struct rd_dio_sink_req *req = j->req;

	if (j->res < 0)
		return;
	if (ts->o.no_hash) {
		j->ok = true;
		return;
	}
	if (ts->file) {
		j->staged = stage_get(req->len, &j->staged_cap);
		CHECK(j->staged);
		memcpy(j->staged, req->data, req->len);
		if (hash(j->staged, req->len) != j->hash) {
			pthread_mutex_lock(&ts->lock);
			ts->csum_mismatch++;
			pthread_mutex_unlock(&ts->lock);
		}
	} else if (hash(req->data, req->len) != j->hash) {
		pthread_mutex_lock(&ts->lock);
		ts->csum_mismatch++;
		pthread_mutex_unlock(&ts->lock);
	}
	j->ok = true;
}

static void tsink_complete(struct tsink *ts, struct tsink_job *j)
{
	struct rd_dio_sink_req *req = j->req;
	long res = j->res;

	tsink_do_io(ts, j);
	pthread_mutex_lock(&ts->lock);
	if (j->seq < ts->max_done_seq)
		ts->inversions++;
	else
		ts->max_done_seq = j->seq;
	ts->in_write--;
	if (res < 0) {
		ts->writes_failed++;
	} else {
		ts->outstanding++;
	}
	pthread_mutex_unlock(&ts->lock);
	if (res < 0) {
		free(j);
		req->sink_priv = NULL;
	} else {
		req->sink_priv = j;
	}
	req->end_io(req, res);
}

static void *tsink_thread(void *arg)
{
	struct tsink *ts = arg;

	pthread_mutex_lock(&ts->lock);
	for (;;) {
		struct tsink_job *j = ts->queue;

		if (!j) {
			if (ts->stop)
				break;
			pthread_cond_wait(&ts->cond, &ts->lock);
			continue;
		}
		uint64_t now = now_ns();

		if (j->due > now) {
			struct timespec ts_due = { (time_t)(j->due / 1000000000ull),
						   (long)(j->due % 1000000000ull) };

			pthread_cond_timedwait(&ts->cond, &ts->lock, &ts_due);
			continue;
		}
		ts->queue = j->next;
		pthread_mutex_unlock(&ts->lock);
		tsink_complete(ts, j);
		pthread_mutex_lock(&ts->lock);
	}
	pthread_mutex_unlock(&ts->lock);
	return NULL;
}

static void ts_write(struct rd_dio_sink *sink, struct rd_dio_sink_req *req)
{
	struct tsink *ts = container_of(sink, struct tsink, sink);
	struct tsink_job *j = calloc(1, sizeof(*j));
	bool inl = ts->o.complete_inline;

	CHECK(j);
	j->req = req;
	j->res = (long)req->len;
	if (req->off == ts->o.fail_off)
		j->res = ts->o.fail_err;
	else if (ts->o.enospc_off != TSINK_NONE && req->off + req->len > ts->o.enospc_off)
		j->res = -ENOSPC;
	else if (ts->file && req->off + req->len > ts->o.file_size)
		j->res = -EFBIG;
	else if (!ts->o.no_hash)
		j->hash = hash(req->data, req->len);	/* the checksum of what we will store */

	pthread_mutex_lock(&ts->lock);
	CHECK(req->len > 0);
	if (ts->watch && pthread_equal(ts->watched, pthread_self()))
		ts->watched_writes++;
	j->seq = ++ts->seq;
	ts->writes++;
	ts->in_write++;
	if (ts->in_write > ts->max_in_write)
		ts->max_in_write = ts->in_write;
	if (!inl) {
		uint64_t d = ts->o.max_delay_us ?
			     test_rand(&ts->rng) % (ts->o.max_delay_us + 1ull) : 0;
		struct tsink_job **pp = &ts->queue;

		j->due = now_ns() + d * 1000;
		while (*pp && (*pp)->due <= j->due)
			pp = &(*pp)->next;
		j->next = *pp;
		*pp = j;
		pthread_cond_broadcast(&ts->cond);
	}
	pthread_mutex_unlock(&ts->lock);
	if (inl)
		tsink_complete(ts, j);
}

static int ts_commit(struct rd_dio_sink *sink, struct rd_dio_sink_req *req)
{
	struct tsink *ts = container_of(sink, struct tsink, sink);
	struct tsink_job *j = req->sink_priv;
	int ret = 0;

	pthread_mutex_lock(&ts->lock);
	if (!j || j->req != req || !j->ok) {
		ts->bad_calls++;
		pthread_mutex_unlock(&ts->lock);
		return -EIO;
	}
	ts->outstanding--;
	if (ts->watch && pthread_equal(ts->watched, pthread_self()))
		ts->watched_commits++;
	if (req->off == ts->o.commit_fail_off) {
		ts->commit_fails++;
		ret = ts->o.commit_fail_err;
		goto out;
	}
	if (ts->file)
		memcpy(ts->file + req->off, j->staged, req->len);
	if (ts->log_n == ts->log_cap) {
		ts->log_cap = ts->log_cap ? 2 * ts->log_cap : 64;
		ts->log = realloc(ts->log, ts->log_cap * sizeof(*ts->log));
		CHECK(ts->log);
	}
	ts->log[ts->log_n++] = (struct tsink_commit){ req->off, req->len, j->hash };
	ts->commits++;
out:
	pthread_mutex_unlock(&ts->lock);
	req->sink_priv = NULL;
	stage_put(j->staged, j->staged_cap);
	free(j);
	return ret;
}

static void ts_abort(struct rd_dio_sink *sink, struct rd_dio_sink_req *req)
{
	struct tsink *ts = container_of(sink, struct tsink, sink);
	struct tsink_job *j = req->sink_priv;

	pthread_mutex_lock(&ts->lock);
	if (!j || j->req != req || !j->ok) {
		ts->bad_calls++;
		pthread_mutex_unlock(&ts->lock);
		return;
	}
	ts->outstanding--;
	ts->aborts++;
	if (ts->watch && pthread_equal(ts->watched, pthread_self()))
		ts->watched_aborts++;
	pthread_mutex_unlock(&ts->lock);
	req->sink_priv = NULL;
	stage_put(j->staged, j->staged_cap);
	free(j);
}

static int ts_flush(struct rd_dio_sink *sink)
{
	struct tsink *ts = container_of(sink, struct tsink, sink);

	pthread_mutex_lock(&ts->lock);
	ts->flushes++;
	if (ts->watch && pthread_equal(ts->watched, pthread_self()))
		ts->watched_flushes++;
	pthread_mutex_unlock(&ts->lock);
	return ts->o.flush_err;
}

static const struct rd_dio_sink_ops tsink_ops = {
	.write	= ts_write,
	.commit	= ts_commit,
	.abort	= ts_abort,
	.flush	= ts_flush,
};

int tsink_init(struct tsink *ts, const struct tsink_opts *o)
{
	pthread_condattr_t ca;

	memset(ts, 0, sizeof(*ts));
	ts->o = *o;
	ts->sink.ops = &tsink_ops;
	ts->sink.max_chunk = o->max_chunk;
	ts->rng = o->seed ? o->seed : 88172645463325252ull;
	if (!ts->o.threads)
		ts->o.threads = 2;
	if (ts->o.threads > 8)
		ts->o.threads = 8;
	if (o->file_size) {
		ts->file = big_alloc(o->file_size);	/* zero-filled */
	}
	pthread_mutex_init(&ts->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ts->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (; ts->nthreads < ts->o.threads; ts->nthreads++)
		CHECK(!pthread_create(&ts->threads[ts->nthreads], NULL, tsink_thread, ts));
	return 0;
}

void tsink_exit(struct tsink *ts)
{
	pthread_mutex_lock(&ts->lock);
	ts->stop = true;
	pthread_cond_broadcast(&ts->cond);
	pthread_mutex_unlock(&ts->lock);
	for (unsigned i = 0; i < ts->nthreads; i++)
		pthread_join(ts->threads[i], NULL);
	CHECK(!ts->queue);
	CHECK_EQ(ts->outstanding, 0);
	CHECK_EQ(ts->bad_calls, 0);
	pthread_cond_destroy(&ts->cond);
	pthread_mutex_destroy(&ts->lock);
	free(ts->log);
	if (ts->file)
		munmap(ts->file, ts->o.file_size);
}

void tsink_reset(struct tsink *ts)
{
	pthread_mutex_lock(&ts->lock);
	ts->log_n = 0;
	ts->writes = ts->writes_failed = ts->commits = ts->commit_fails = 0;
	ts->aborts = ts->flushes = ts->csum_mismatch = ts->inversions = 0;
	ts->max_in_write = ts->in_write;
	pthread_mutex_unlock(&ts->lock);
}

int tsink_check_prefix(struct tsink *ts, uint64_t off, uint64_t bytes)
{
	uint64_t at = off;
	int ret = 0;

	pthread_mutex_lock(&ts->lock);
	for (size_t i = 0; i < ts->log_n; i++) {
		if (ts->log[i].off != at) {
			fprintf(stderr, "commit %zu at %" PRIu64 ", expected %" PRIu64 "\n", i,
				ts->log[i].off, at);
			ret = -1;
			break;
		}
		at += ts->log[i].len;
	}
	if (!ret && at - off != bytes) {
		fprintf(stderr, "commits cover %" PRIu64 " bytes, expected %" PRIu64 "\n",
			at - off, bytes);
		ret = -1;
	}
	pthread_mutex_unlock(&ts->lock);
	return ret;
}
