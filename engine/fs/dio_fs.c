/*
 * dio_fs.c - the filesystem's dio sink: direct writes into a file through the data path's
 * chunk-level write (see dio_fs.h for the contract).
 *
 * Owns: struct fs_sink (one per direct write, with its inode reference) and struct
 * fs_chunk (one per chunk handed to the sink, from write() until its commit, its abort, or
 * a failed end_io).
 *
 * Where each step runs:
 *   write    on the thread dio calls it from (the write's pumper: a dio worker, or the
 *            submitting thread for inline issue), one call at a time per write, chunks in
 *            file order. Fast path: a chunk of whole blocks begins with RD_DATA_WR_NOWAIT
 *            (no edge block to read, no waiting for a busy range) and is submitted there.
 *            Slow path: a chunk with a partial block, or whose range is busy, is queued to
 *            a data worker (rd_data_queue), which may wait; every later chunk of the same
 *            write follows it through that queue until it is empty again. So the chunks of
 *            a write always begin in file order.
 *   end_io   from the data path's submit callback (an I/O thread, never blocking). A failed
 *            chunk is aborted right there: abort only drops short-held locks and memory,
 *            and the inode put inside it is never the last one (the sink holds its own).
 *   commit, abort, flush   from a dio worker (may block).
 *
 * Why chunks begin in file order: a chunk holding its range lock waits, to commit, only for
 * the earlier chunks of its write. When those have all begun, they need nothing but I/O and
 * a dio worker to finish; so a data worker waiting for a range lock always waits for
 * something that ends without any data worker, and the data workers' bounded pool cannot
 * deadlock (data_work.c). dio hands chunks over in file order (dio.h), and the slow queue
 * keeps that order.
 *
 * Must never: begin a chunk while an earlier chunk of its write is still queued, block on a
 * range lock or an edge read inside write(), or touch the inode after the write's done.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "data_int.h"
#include "refdio/dio_fs.h"
#include "refdio/errors.h"
#include "util.h"

struct fs_sink;

struct fs_chunk {
	struct fs_sink		*fsk;
	struct rd_dio_sink_req	*req;
	struct rd_data_wr	*wr;		/* once begun */
	struct fs_chunk		*next;		/* in the slow queue */
};

struct fs_sink {
	struct rd_dio_sink	sink;
	struct rd_fs		*fs;
	struct rd_inode		*ip;		/* referenced from submit to the write's done */
	void			(*done)(void *priv, long res);
	void			*priv;
	uint64_t		len;		/* bytes asked for (statistics) */
	/* The sink's memory: one reference for the write (dropped at its done), one more
	 * while a slow job runs (it may still look at the queue after the write is done). */
	_Atomic unsigned	refs;
	/* The last journal seq a commit of this write made. Commits come one at a time from
	 * the write's pumper and the flush after all of them: dio's locks order them. */
	uint64_t		last_seq;
	pthread_mutex_t		lock;
	struct fs_chunk		*slow_head, *slow_tail;	/* lock */
	bool			slow_busy;	/* a slow job owns the queue (lock) */
	struct rd_data_work	work;
};

static void fs_sink_put(struct fs_sink *fsk)
{
	unsigned old = atomic_fetch_sub_explicit(&fsk->refs, 1, memory_order_acq_rel);

	assert(old > 0);
	if (old != 1)
		return;
	pthread_mutex_destroy(&fsk->lock);
	free(fsk);
}

/* The chunk failed before anything needing undo was written: report and forget it. */
static void fs_chunk_fail(struct fs_chunk *fc, int err)
{
	struct rd_dio_sink_req *req = fc->req;

	req->sink_priv = NULL;
	free(fc);
	req->end_io(req, rd_errno(err));	/* engine codes stop at this layer (fs.h) */
}

/* The data path's submit callback (an I/O thread, or the submitter if submit failed). */
static void fs_chunk_written(void *priv, int err)
{
	struct fs_chunk *fc = priv;
	struct rd_dio_sink_req *req = fc->req;

	if (err) {
		/* Nothing of it will ever be indexed: its space, range and reservation go now. */
		rd_data_wr_abort(fc->fsk->fs, fc->wr);
		fs_chunk_fail(fc, err);
		return;
	}
	/* From here on the chunk is dio's to commit or abort, on another thread. */
	req->end_io(req, (long)req->len);
}

/* Begins fc's data write (flags: RD_DATA_WR_NOWAIT or 0) and submits it. Returns -EAGAIN
 * (nothing done) when NOWAIT found the range busy; otherwise the chunk is on its way and
 * end_io will be called. */
static int fs_chunk_start(struct fs_chunk *fc, unsigned flags)
{
	struct fs_sink *fsk = fc->fsk;
	struct rd_dio_sink_req *req = fc->req;
	int ret;

	ret = rd_data_wr_begin(fsk->fs, fsk->ip, req->off, req->len, flags, &fc->wr);
	if (ret == -EAGAIN && (flags & RD_DATA_WR_NOWAIT))
		return ret;
	if (ret) {
		fs_chunk_fail(fc, ret);
		return 0;
	}
	rd_data_wr_submit(fsk->fs, fc->wr, req->data, fs_chunk_written, fc);
	return 0;
}

/* A data worker: begins the queued chunks in order, waiting as long as needed. */
static void fs_sink_slow_run(struct rd_data_work *work)
{
	struct fs_sink *fsk = container_of(work, struct fs_sink, work);

	for (;;) {
		struct fs_chunk *fc;

		pthread_mutex_lock(&fsk->lock);
		fc = fsk->slow_head;
		if (fc) {
			fsk->slow_head = fc->next;
			if (!fsk->slow_head)
				fsk->slow_tail = NULL;
		} else {
			fsk->slow_busy = false;	/* the next chunk may take the fast path */
		}
		pthread_mutex_unlock(&fsk->lock);
		if (!fc)
			break;
		fs_chunk_start(fc, 0);
	}
	fs_sink_put(fsk);	/* the job's reference */
}

static void fs_sink_enqueue_locked(struct fs_sink *fsk, struct fs_chunk *fc)
{
	fc->next = NULL;
	if (fsk->slow_tail)
		fsk->slow_tail->next = fc;
	else
		fsk->slow_head = fc;
	fsk->slow_tail = fc;
}

static void fs_sink_write(struct rd_dio_sink *sink, struct rd_dio_sink_req *req)
{
	struct fs_sink *fsk = container_of(sink, struct fs_sink, sink);
	uint64_t bs = rd_data_bs(fsk->fs);
	struct fs_chunk *fc = calloc(1, sizeof(*fc));
	bool queued, start_job;

	if (!fc) {
		req->end_io(req, -ENOMEM);
		return;
	}
	fc->fsk = fsk;
	fc->req = req;
	req->sink_priv = fc;

	/* Behind a queued chunk: follow it (file order). */
	pthread_mutex_lock(&fsk->lock);
	queued = fsk->slow_busy;
	if (queued)
		fs_sink_enqueue_locked(fsk, fc);
	pthread_mutex_unlock(&fsk->lock);
	if (queued)
		return;

	/* Whole blocks: nothing to read back, so only a busy range could make begin wait. */
	if (req->off % bs == 0 && (req->off + req->len) % bs == 0 &&
	    fs_chunk_start(fc, RD_DATA_WR_NOWAIT) != -EAGAIN)
		return;

	pthread_mutex_lock(&fsk->lock);
	fs_sink_enqueue_locked(fsk, fc);
	start_job = !fsk->slow_busy;
	fsk->slow_busy = true;
	assert(atomic_load_explicit(&fsk->refs, memory_order_relaxed) > 0);	/* the write's */
	if (start_job)
		atomic_fetch_add_explicit(&fsk->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&fsk->lock);
	/* Without any data worker (none could be started), the queue is run here: blocking,
	 * but still in order. */
	if (start_job && rd_data_queue(fsk->fs, &fsk->work))
		fs_sink_slow_run(&fsk->work);
}

static int fs_sink_commit(struct rd_dio_sink *sink, struct rd_dio_sink_req *req)
{
	struct fs_sink *fsk = container_of(sink, struct fs_sink, sink);
	struct fs_chunk *fc = req->sink_priv;
	uint64_t seq = 0;
	ssize_t n;

	assert(fc && fc->req == req && fc->wr);	/* begun, not yet ended */
	n = rd_data_wr_commit(fsk->fs, fc->wr, &seq);
	req->sink_priv = NULL;
	free(fc);
	if (seq > fsk->last_seq)
		fsk->last_seq = seq;
	if (n == (ssize_t)req->len)
		return 0;
	/*
	 * A chunk commits in one transaction unless it overwrites very many old extents; if a
	 * later transaction of it failed, the part already committed stays in the file
	 * (consistent), and dio counts the whole chunk as failed: the write reports less than
	 * the file holds, never more.
	 */
	return n < 0 ? rd_errno((int)n) : -EIO;
}

static void fs_sink_abort(struct rd_dio_sink *sink, struct rd_dio_sink_req *req)
{
	struct fs_sink *fsk = container_of(sink, struct fs_sink, sink);
	struct fs_chunk *fc = req->sink_priv;

	assert(fc && fc->req == req && fc->wr);
	rd_data_wr_abort(fsk->fs, fc->wr);
	req->sink_priv = NULL;
	free(fc);
}

static int fs_sink_flush(struct rd_dio_sink *sink)
{
	struct fs_sink *fsk = container_of(sink, struct fs_sink, sink);
	int ret = rd_store_flush(fsk->fs->s, fsk->last_seq);

	return ret ? rd_errno(ret) : 0;
}

static const struct rd_dio_sink_ops fs_sink_ops = {
	.write	= fs_sink_write,
	.commit	= fs_sink_commit,
	.abort	= fs_sink_abort,
	.flush	= fs_sink_flush,
};

/* The write's done (a dio worker): the inode goes first, so that whoever learns of the
 * completion may close the filesystem. */
static void fs_sink_done(void *priv, long res)
{
	struct fs_sink *fsk = priv;
	void (*done)(void *priv, long res) = fsk->done;
	void *done_priv = fsk->priv;
	struct rd_fs *fs = fsk->fs;

	if (res > 0) {
		atomic_fetch_add(&fs->st.writes, 1);
		if ((uint64_t)res < fsk->len)
			atomic_fetch_add(&fs->st.short_writes, 1);
	}
	rd_inode_put(fs, fsk->ip);
	fsk->ip = NULL;
	fs_sink_put(fsk);	/* the write's reference */
	done(done_priv, res);
}

int rd_fs_dio_submit(struct rd_fs *fs, struct rd_dio *d, uint64_t ino,
		     struct rd_dio_source *src, const struct rd_dio_args *a,
		     struct rd_dio_write **handle)
{
	struct rd_dio_args args;
	struct fs_sink *fsk;
	struct rd_inode *ip;
	int ret;

	if (handle)
		*handle = NULL;
	ret = -EINVAL;
	if (!fs || !d || !src || !a || !a->done)
		goto err_src;
	ret = rd_inode_get(fs, ino, &ip);
	if (ret)
		goto err_src;
	if (!S_ISREG(ip->ftype)) {	/* the file type never changes: no lock needed */
		ret = S_ISDIR(ip->ftype) ? -EISDIR : -EINVAL;
		goto err_ip;
	}
	ret = -ENOMEM;
	fsk = calloc(1, sizeof(*fsk));
	if (!fsk)
		goto err_ip;
	fsk->sink.ops = &fs_sink_ops;
	fsk->sink.max_chunk = RD_DATA_WR_MAX;
	fsk->sink.flags = RD_DIO_SINK_ALIGN_CHUNKS;
	fsk->fs = fs;
	fsk->ip = ip;
	fsk->done = a->done;
	fsk->priv = a->priv;
	fsk->len = src->len;
	atomic_init(&fsk->refs, 1);
	pthread_mutex_init(&fsk->lock, NULL);
	fsk->work.fn = fs_sink_slow_run;

	args = *a;
	args.done = fs_sink_done;
	args.priv = fsk;
	ret = rd_dio_submit(d, &fsk->sink, src, &args, handle);
	if (ret) {
		/* dio consumed src and will never call done. */
		fs_sink_put(fsk);
		rd_inode_put(fs, ip);
	}
	return ret;

err_ip:
	rd_inode_put(fs, ip);
err_src:
	rd_dio_source_put(src);
	return ret;
}

static void fs_dio_waiter_done(void *priv, long res)
{
	rd_completion_done(priv, res);
}

long rd_fs_dio_pwrite(struct rd_fs *fs, struct rd_dio *d, uint64_t ino,
		      struct rd_dio_source *src, const struct rd_dio_args *a)
{
	struct rd_completion c;
	struct rd_dio_args args;
	int ret;

	if (!a) {
		rd_dio_source_put(src);
		return -EINVAL;
	}
	args = *a;
	args.done = fs_dio_waiter_done;
	args.priv = &c;
	rd_completion_init(&c);
	ret = rd_fs_dio_submit(fs, d, ino, src, &args, NULL);
	if (ret < 0)
		rd_completion_done(&c, ret);	/* done is never called then */
	return rd_completion_wait(&c);
}
