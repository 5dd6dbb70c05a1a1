/*
 * journal.c - the journal ring: the open entry, the flusher thread, durability, space,
 * the ring scan and replay at open, and the first entry of a new image.
 *
 * Owns: everything inside struct rd_journal. See journal.h for when entries are written
 * and how space and seqs work.
 *
 * Invariants:
 *  - entries are closed in seq order, positioned in that order at the head, and written in
 *    that order by the one flusher thread; an entry never wraps the ring's end;
 *  - durable_seq <= closed_seq: every seq <= durable_seq was written and flushed;
 *  - used == bytes of the ring from tail (the start of the last durable checkpoint entry)
 *    to head, counting the skipped end of the ring on a wrap; an entry is positioned only
 *    if used stays below the ring size, so the head never runs into the tail;
 *  - every entry's last_seq names a checkpoint entry that is durable and inside the live
 *    region (the checkpoint entry names itself).
 *
 * Must never: write anything after rd_journal_stop(crash) started, trust a field of an
 * entry read from disk before bounding it, or call into the b-trees.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "btree_internal.h"
#include "csum.h"
#include "errors.h"
#include "io.h"
#include "journal.h"
#include "sb.h"
#include "store.h"

#define RD_JOURNAL_BUFS		4
#define SCAN_WINDOW		(2u * RD_JOURNAL_ENTRY_MAX)

enum jbuf_state { JB_FREE, JB_OPEN, JB_QUEUED, JB_WRITING };

struct jbuf {
	uint8_t		*data;		/* max_entry bytes, aligned for O_DIRECT */
	enum jbuf_state	state;
	uint64_t	seq;
	uint64_t	pos;		/* ring offset, set when closed */
	uint32_t	bytes;		/* header + records */
	uint32_t	nr_records;
	uint16_t	flags;
	uint64_t	opened_ns;	/* when its first record arrived */
};

struct flush_cb {
	uint64_t	seq;
	void		(*done)(void *priv, int err);
	void		*priv;
	struct flush_cb	*next;
};

struct rd_journal {
	struct rd_store		*s;
	struct rd_io		*io;
	const struct rd_geometry *g;
	uint64_t		ring_off, ring_size;
	uint32_t		block, max_entry;

	pthread_mutex_t		lock;
	pthread_cond_t		cond;	/* buffer freed, seq durable, error */
	pthread_cond_t		wake;	/* work for the flusher (monotonic clock) */
	pthread_t		thread;
	bool			running, stop, crash;

	struct jbuf		buf[RD_JOURNAL_BUFS];
	struct jbuf		*open;
	uint64_t		next_seq;	/* seq of the next entry opened */
	uint64_t		closed_seq;	/* last entry closed (queued or written) */
	uint64_t		durable_seq;
	uint64_t		flush_seq;	/* highest seq someone waits for */
	uint64_t		last_ckpt_seq;	/* durable checkpoint entry: every last_seq */
	bool			need_checkpoint; /* resumed: no checkpoint entry since */
	uint64_t		head, tail, used;
	uint64_t		preflushes;	/* pre-flushes that had something to flush */
	int			err;
	struct flush_cb		*cbs;

	uint64_t		entries_written, bytes_written, flushes;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint64_t jset_magic(const struct rd_geometry *g)
{
	return RD_JSET_MAGIC ^ g->magic_xor;
}

static uint32_t jset_csum(const struct rd_geometry *g, const void *buf, uint32_t bytes)
{
	return (uint32_t)rd_csum(g->meta_csum, (const uint8_t *)buf + 8, bytes - 8);
}

/* Fills the header of an entry whose records are in place, and zeroes its padding. */
static void jset_seal(const struct rd_geometry *g, void *buf, uint32_t block, uint64_t seq,
		      uint64_t last_seq, uint16_t flags, uint32_t bytes, uint32_t nr_records)
{
	struct rd_jset *h = buf;

	memset(h, 0, sizeof(*h));
	memset((uint8_t *)buf + bytes, 0, round_up(bytes, block) - bytes);
	h->csum_type = g->meta_csum;
	h->magic = rd_le64_of(jset_magic(g));
	h->version = rd_le16_of(RD_FORMAT_VERSION);
	h->flags = rd_le16_of(flags);
	h->bytes = rd_le32_of(bytes);
	h->seq = rd_le64_of(seq);
	h->last_seq = rd_le64_of(last_seq);
	h->nr_records = rd_le32_of(nr_records);
	h->csum = rd_le32_of(jset_csum(g, buf, bytes));
}

static size_t jrec_padded(size_t bytes)
{
	return (bytes + 7) & ~(size_t)7;
}

/* Appends a ROOT record for each root at p; returns the bytes written. */
static size_t put_roots(uint8_t *p, const struct rd_btree_root_disk *roots, unsigned nr)
{
	size_t off = 0;

	for (unsigned i = 0; i < nr; i++) {
		struct rd_jrec r = {
			.type = RD_JREC_ROOT,
			.btree_id = roots[i].btree_id,
			.bytes = rd_le32_of(sizeof(r) + sizeof(roots[i])),
		};

		memcpy(p + off, &r, sizeof(r));
		memcpy(p + off + sizeof(r), &roots[i], sizeof(roots[i]));
		off += jrec_padded(sizeof(r) + sizeof(roots[i]));
	}
	return off;
}

/* ---- setup --------------------------------------------------------------------------- */

static void ring_geometry(const struct rd_geometry *g, uint64_t *off, uint64_t *size,
			  uint32_t *max_entry)
{
	uint64_t m;

	*off = g->journal_start * g->bucket_size;
	*size = g->journal_buckets * g->bucket_size;
	m = *size / 8;
	if (m > RD_JOURNAL_ENTRY_MAX)
		m = RD_JOURNAL_ENTRY_MAX;
	m &= ~(uint64_t)(g->block_size - 1);
	if (m < g->block_size)
		m = g->block_size;
	*max_entry = (uint32_t)m;
}

int rd_journal_init(struct rd_store *s)
{
	struct rd_journal *j = calloc(1, sizeof(*j));
	pthread_condattr_t ca;
	int ret = -ENOMEM;

	if (!j)
		return -ENOMEM;
	j->s = s;
	j->io = s->io;
	j->g = &s->geo;
	j->block = s->geo.block_size;
	ring_geometry(&s->geo, &j->ring_off, &j->ring_size, &j->max_entry);
	for (unsigned i = 0; i < RD_JOURNAL_BUFS; i++) {
		j->buf[i].data = rd_buf_alloc_uninit(j->max_entry);
		if (!j->buf[i].data)
			goto err;
	}
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->wake, &ca);
	pthread_condattr_destroy(&ca);
	s->journal = j;
	return 0;
err:
	for (unsigned i = 0; i < RD_JOURNAL_BUFS; i++)
		free(j->buf[i].data);
	free(j);
	return ret;
}

void rd_journal_free(struct rd_store *s)
{
	struct rd_journal *j = s->journal;

	if (!j)
		return;
	rd_journal_stop(s, true);
	for (unsigned i = 0; i < RD_JOURNAL_BUFS; i++)
		free(j->buf[i].data);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	pthread_cond_destroy(&j->wake);
	free(j);
	s->journal = NULL;
}

static void set_position(struct rd_journal *j, uint64_t last_seq, uint64_t head, uint64_t tail,
			 uint64_t last_ckpt)
{
	j->next_seq = last_seq + 2;	/* last_seq + 1 may exist torn: never reuse it */
	j->closed_seq = j->durable_seq = j->flush_seq = last_seq + 1;
	j->head = head;
	j->tail = tail;
	j->used = head >= tail ? head - tail : j->ring_size - tail + head;
	j->last_ckpt_seq = last_ckpt;
	/* Seq last_seq + 1 is skipped (and a replay may have stopped at a gap): entries
	 * written now would sit behind a hole that the next replay stops at, unless a
	 * checkpoint entry comes first. The checkpoint's own reservation entry may precede
	 * it: if the checkpoint entry does not make it, that entry is lost with nothing else. */
	j->need_checkpoint = true;
}

void rd_journal_resume(struct rd_store *s, uint64_t seq, uint64_t head)
{
	struct rd_journal *j = s->journal;

	if (head > j->ring_size || head % j->block)
		head = 0;	/* sb validation bounds it; be safe anyway */
	/* Nothing is live: the sb holds the roots. The first entry must be a checkpoint. */
	set_position(j, seq, head, head, 0);
}

/* ---- the flusher --------------------------------------------------------------------- */

/* Where an entry of size bytes (rounded) would go, and the ring end it skips. */
static uint64_t place(const struct rd_journal *j, uint64_t size, uint64_t *waste)
{
	if (j->head + size <= j->ring_size) {
		*waste = 0;
		return j->head;
	}
	*waste = j->ring_size - j->head;
	return 0;
}

static bool fits(const struct rd_journal *j, uint64_t size)
{
	uint64_t waste;

	(void)place(j, size, &waste);
	/* Strict: the head never catches up with the tail. */
	return j->used + waste + size < j->ring_size;
}

/* Closes the open entry: seals it, gives it its ring position, queues it for writing. */
static void close_open_locked(struct rd_journal *j)
{
	struct jbuf *b = j->open;
	uint64_t size = round_up(b->bytes, j->block), waste;
	bool ckpt = b->flags & RD_JSET_CHECKPOINT;

	/* fits() was checked when the records went in; the tail only moves forward since. */
	b->pos = place(j, size, &waste);
	j->used += waste + size;
	j->head = b->pos + size;
	jset_seal(j->g, b->data, j->block, b->seq, ckpt ? b->seq : j->last_ckpt_seq, b->flags,
		  b->bytes, b->nr_records);
	b->state = JB_QUEUED;
	j->closed_seq = b->seq;
	j->open = NULL;
	pthread_cond_signal(&j->wake);
}

static struct jbuf *lowest_queued(struct rd_journal *j)
{
	struct jbuf *best = NULL;

	for (unsigned i = 0; i < RD_JOURNAL_BUFS; i++) {
		struct jbuf *b = &j->buf[i];

		if (b->state == JB_QUEUED && (!best || b->seq < best->seq))
			best = b;
	}
	return best;
}

static void set_error_locked(struct rd_journal *j, int err)
{
	if (!j->err)
		j->err = err;
	pthread_cond_broadcast(&j->cond);
}

/* Writes every queued entry in seq order, one write each, then one device flush. Called
 * and returns with j->lock held; drops it around the I/O. */
static void write_queued_locked(struct rd_journal *j)
{
	struct jbuf *batch[RD_JOURNAL_BUFS];
	uint64_t written = 0, wbytes = 0;
	bool flushed = false, preflushed = false;
	unsigned n = 0;
	int ret = 0;

	for (struct jbuf *b; (b = lowest_queued(j)); ) {
		b->state = JB_WRITING;
		batch[n++] = b;
	}
	pthread_mutex_unlock(&j->lock);
	/*
	 * Pre-flush: every image write that completed before now (user data, whatever path
	 * wrote it) becomes stable before any of these entries can, so no key in them can name
	 * data the device may still lose (the user-space form of REQ_PREFLUSH on a journal
	 * write). A key is committed only after its data write completed, and the entries were
	 * closed before this point, so every write they name is counted by now. rd_io_flush
	 * skips the device flush when nothing was written since the last one.
	 */
	if (!__atomic_load_n(&j->crash, __ATOMIC_ACQUIRE) && !j->s->test_no_preflush) {
		preflushed = rd_io_has_unflushed(j->io);
		ret = rd_io_flush(j->io);
	}
	for (unsigned i = 0; i < n && !ret; i++) {
		struct jbuf *b = batch[i];

		if (__atomic_load_n(&j->crash, __ATOMIC_ACQUIRE)) {
			ret = -ECANCELED;	/* a power cut: nothing more reaches the disk */
			break;
		}
		ret = rd_io_write(j->io, b->data, round_up(b->bytes, j->block),
				  j->ring_off + b->pos);
		if (!ret) {
			written++;
			wbytes += round_up(b->bytes, j->block);
		}
	}
	if (!ret && !__atomic_load_n(&j->crash, __ATOMIC_ACQUIRE)) {
		ret = rd_io_flush(j->io);
		flushed = true;
	} else if (!ret) {
		ret = -ECANCELED;
	}
	pthread_mutex_lock(&j->lock);
	j->entries_written += written;
	j->bytes_written += wbytes;
	j->flushes += flushed + preflushed;
	j->preflushes += preflushed;
	for (unsigned i = 0; i < n; i++) {
		struct jbuf *b = batch[i];

		if (!ret) {
			j->durable_seq = b->seq;
			if (b->flags & RD_JSET_CHECKPOINT) {
				/* Everything before it is reclaimable now. */
				j->last_ckpt_seq = b->seq;
				j->need_checkpoint = false;
				j->tail = b->pos;
				j->used = j->head >= j->tail ? j->head - j->tail
							     : j->ring_size - j->tail + j->head;
			}
		}
		b->state = JB_FREE;
	}
	if (ret)
		set_error_locked(j, ret);
	pthread_cond_broadcast(&j->cond);
}

/* Calls back every async flush whose seq is durable (or all, with an error, when the
 * journal failed or stops for good). Called with the lock held; drops it for callbacks. */
static bool run_callbacks_locked(struct rd_journal *j, bool final)
{
	struct flush_cb **pp = &j->cbs, *ready = NULL;

	while (*pp) {
		struct flush_cb *c = *pp;

		if (c->seq <= j->durable_seq || j->err || final) {
			*pp = c->next;
			c->next = ready;
			ready = c;
		} else {
			pp = &c->next;
		}
	}
	if (!ready)
		return false;
	pthread_mutex_unlock(&j->lock);
	while (ready) {
		struct flush_cb *c = ready;
		int err;

		ready = c->next;
		pthread_mutex_lock(&j->lock);
		err = c->seq <= j->durable_seq ? 0 : (j->err ? j->err : -ECANCELED);
		pthread_mutex_unlock(&j->lock);
		c->done(c->priv, err);
		free(c);
	}
	pthread_mutex_lock(&j->lock);
	return true;
}

static void *flusher(void *arg)
{
	struct rd_journal *j = arg;

	pthread_mutex_lock(&j->lock);
	for (;;) {
		struct jbuf *o = j->open;

		if (run_callbacks_locked(j, false))
			continue;
		if (j->crash)
			break;
		if (o && o->nr_records && !j->err &&
		    (j->flush_seq >= o->seq || j->stop ||
		     now_ns() - o->opened_ns >= RD_JOURNAL_DELAY_MS * 1000000ull))
			close_open_locked(j);
		if (lowest_queued(j) && !j->err) {
			write_queued_locked(j);
			continue;
		}
		if (j->stop)
			break;
		o = j->open;
		if (o && o->nr_records && !j->err) {
			uint64_t due = o->opened_ns + RD_JOURNAL_DELAY_MS * 1000000ull;
			struct timespec ts = {
				.tv_sec = (time_t)(due / 1000000000ull),
				.tv_nsec = (long)(due % 1000000000ull),
			};

			pthread_cond_timedwait(&j->wake, &j->lock, &ts);
		} else {
			pthread_cond_wait(&j->wake, &j->lock);
		}
	}
	run_callbacks_locked(j, true);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int rd_journal_start(struct rd_store *s)
{
	struct rd_journal *j = s->journal;
	int ret;

	j->stop = j->crash = false;
	ret = pthread_create(&j->thread, NULL, flusher, j);
	if (ret)
		return -ret;
	j->running = true;
	return 0;
}

void rd_journal_stop(struct rd_store *s, bool crash)
{
	struct rd_journal *j = s->journal;

	if (!j || !j->running)
		return;
	pthread_mutex_lock(&j->lock);
	j->stop = true;
	if (crash)
		__atomic_store_n(&j->crash, true, __ATOMIC_RELEASE);
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->thread, NULL);
	j->running = false;
}

/* ---- appending ----------------------------------------------------------------------- */

size_t rd_journal_max_records(const struct rd_journal *j)
{
	return j->max_entry - sizeof(struct rd_jset);
}

bool rd_journal_want_checkpoint(struct rd_journal *j, size_t more)
{
	bool want;

	pthread_mutex_lock(&j->lock);
	want = j->need_checkpoint ||
	       j->used + (j->open ? j->open->bytes : 0) + more > j->ring_size / 2;
	pthread_mutex_unlock(&j->lock);
	return want;
}

/* Opens a new entry in a free buffer, waiting for one if all are being written. */
static int open_entry_locked(struct rd_journal *j)
{
	for (;;) {
		if (j->err)
			return j->err;
		for (unsigned i = 0; i < RD_JOURNAL_BUFS; i++) {
			struct jbuf *b = &j->buf[i];

			if (b->state != JB_FREE)
				continue;
			b->state = JB_OPEN;
			b->seq = j->next_seq++;
			b->bytes = sizeof(struct rd_jset);
			b->nr_records = 0;
			b->flags = 0;
			j->open = b;
			return 0;
		}
		if (!j->running)
			return -EIO;	/* nobody would ever free a buffer */
		pthread_cond_wait(&j->cond, &j->lock);
	}
}

int rd_journal_append(struct rd_journal *j, size_t bytes, uint32_t nr_records,
		      void (*fill)(void *dst, void *priv), void *priv, uint64_t *seq)
{
	struct jbuf *b;
	int ret = 0;

	if (bytes > rd_journal_max_records(j))
		return -E2BIG;
	pthread_mutex_lock(&j->lock);
	if (j->err) {
		ret = j->err;
		goto out;
	}
	/* Every entry names a durable checkpoint; the first entry of a session is one. */
	if (!j->last_ckpt_seq) {
		ret = -EINVAL;
		goto out;
	}
	if (j->open && j->open->bytes + bytes > j->max_entry)
		close_open_locked(j);
	if (!j->open && (ret = open_entry_locked(j)))
		goto out;
	b = j->open;
	if (!fits(j, round_up(b->bytes + bytes, j->block))) {
		ret = -RD_ERR_NO_SPACE_META;
		goto out;
	}
	fill(b->data + b->bytes, priv);
	if (!b->nr_records) {
		b->opened_ns = now_ns();
		pthread_cond_signal(&j->wake);	/* start the flusher's timer */
	}
	b->bytes += (uint32_t)bytes;
	b->nr_records += nr_records;
	*seq = b->seq;
out:
	pthread_mutex_unlock(&j->lock);
	return ret;
}

/* ---- checkpoints and flushes --------------------------------------------------------- */

static uint64_t committed_seq_locked(struct rd_journal *j)
{
	if (j->open && j->open->nr_records)
		return j->open->seq;
	return j->closed_seq;
}

static int wait_durable_locked(struct rd_journal *j, uint64_t seq)
{
	if (j->durable_seq >= seq)
		return 0;
	if (!j->running)
		return j->err ? j->err : -EROFS;
	if (seq > j->flush_seq)
		j->flush_seq = seq;
	pthread_cond_signal(&j->wake);
	while (j->durable_seq < seq && !j->err)
		pthread_cond_wait(&j->cond, &j->lock);
	return j->durable_seq >= seq ? 0 : j->err;
}

int rd_journal_flush(struct rd_journal *j, uint64_t seq)
{
	uint64_t committed;
	int ret;

	pthread_mutex_lock(&j->lock);
	committed = committed_seq_locked(j);
	if (!seq || seq > committed)
		seq = committed;
	ret = wait_durable_locked(j, seq);
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int rd_journal_flush_all(struct rd_journal *j)
{
	return rd_journal_flush(j, 0);
}

void rd_journal_flush_async(struct rd_journal *j, uint64_t seq,
			    void (*done)(void *priv, int err), void *priv)
{
	struct flush_cb *c = malloc(sizeof(*c));
	uint64_t committed;

	if (!c) {
		/* No memory to remember the request: answer it now rather than never. */
		done(priv, -ENOMEM);
		return;
	}
	pthread_mutex_lock(&j->lock);
	committed = committed_seq_locked(j);
	if (!seq || seq > committed)
		seq = committed;
	c->seq = seq;
	c->done = done;
	c->priv = priv;
	c->next = j->cbs;
	j->cbs = c;
	if (!j->running) {
		/* No flusher (read-only store): nothing will ever be written. */
		j->cbs = c->next;
		pthread_mutex_unlock(&j->lock);
		done(priv, seq <= j->durable_seq ? 0 : -EROFS);
		free(c);
		return;
	}
	if (seq > j->flush_seq)
		j->flush_seq = seq;
	pthread_cond_signal(&j->wake);
	pthread_mutex_unlock(&j->lock);
}

uint64_t rd_journal_next_seq(struct rd_journal *j)
{
	uint64_t seq;

	pthread_mutex_lock(&j->lock);
	seq = j->open ? j->open->seq : j->next_seq;
	pthread_mutex_unlock(&j->lock);
	return seq;
}

int rd_journal_write_checkpoint(struct rd_journal *j, uint64_t seq,
				const struct rd_btree_root_disk *roots, unsigned nr)
{
	size_t bytes = nr * jrec_padded(sizeof(struct rd_jrec) + sizeof(*roots));
	struct jbuf *b;
	int ret;

	pthread_mutex_lock(&j->lock);
	ret = j->err;
	if (ret)
		goto out;
	if (j->open && j->open->nr_records) {
		ret = -EINVAL;	/* the caller flushes first: a checkpoint entry holds only roots */
		goto out;
	}
	if (!j->open && (ret = open_entry_locked(j)))
		goto out;
	b = j->open;
	if (b->seq != seq || sizeof(struct rd_jset) + bytes > j->max_entry) {
		ret = -EINVAL;
		goto out;
	}
	if (!fits(j, round_up(sizeof(struct rd_jset) + bytes, j->block))) {
		ret = -RD_ERR_NO_SPACE_META;
		goto out;
	}
	put_roots(b->data + b->bytes, roots, nr);
	b->bytes += (uint32_t)bytes;
	b->nr_records = nr;
	b->flags = RD_JSET_CHECKPOINT;
	b->opened_ns = now_ns();
	close_open_locked(j);
	ret = wait_durable_locked(j, seq);
out:
	pthread_mutex_unlock(&j->lock);
	return ret;
}

uint64_t rd_journal_seq(struct rd_journal *j)
{
	uint64_t seq;

	pthread_mutex_lock(&j->lock);
	seq = j->open ? j->open->seq : j->next_seq;
	pthread_mutex_unlock(&j->lock);
	return seq;
}

uint64_t rd_journal_durable_seq(struct rd_journal *j)
{
	uint64_t seq;

	pthread_mutex_lock(&j->lock);
	seq = j->durable_seq;
	pthread_mutex_unlock(&j->lock);
	return seq;
}

int rd_journal_error(struct rd_journal *j)
{
	int err;

	pthread_mutex_lock(&j->lock);
	err = j->err;
	pthread_mutex_unlock(&j->lock);
	return err;
}

void rd_journal_position(struct rd_journal *j, uint64_t *last_seq, uint64_t *head)
{
	pthread_mutex_lock(&j->lock);
	*last_seq = j->durable_seq;
	*head = j->head;
	pthread_mutex_unlock(&j->lock);
}

void rd_journal_stats(struct rd_journal *j, struct rd_journal_stats *st)
{
	pthread_mutex_lock(&j->lock);
	st->entries_written = j->entries_written;
	st->bytes_written = j->bytes_written;
	st->flushes = j->flushes;
	st->preflushes = j->preflushes;
	st->ring_size = j->ring_size;
	st->ring_used = j->used;
	pthread_mutex_unlock(&j->lock);
}

/* ---- formatting ---------------------------------------------------------------------- */

int rd_journal_format(struct rd_io *io, const struct rd_geometry *g, uint64_t seq,
		      uint64_t *head)
{
	struct rd_btree_root_disk roots[RD_BTREE_NR];
	uint64_t off, size;
	uint32_t max_entry, bytes;
	uint8_t *buf;
	int ret;

	ring_geometry(g, &off, &size, &max_entry);
	buf = rd_io_buf_alloc(max_entry);
	if (!buf)
		return -ENOMEM;
	memset(roots, 0, sizeof(roots));
	for (unsigned i = 0; i < RD_BTREE_NR; i++)
		roots[i].btree_id = (uint8_t)i;
	bytes = (uint32_t)(sizeof(struct rd_jset) +
			   put_roots(buf + sizeof(struct rd_jset), roots, RD_BTREE_NR));
	jset_seal(g, buf, g->block_size, seq, seq, RD_JSET_CHECKPOINT, bytes, RD_BTREE_NR);
	ret = rd_io_write(io, buf, round_up(bytes, g->block_size), off);
	*head = round_up(bytes, g->block_size);
	rd_io_buf_free(buf);
	return ret;
}

/* ---- scan and replay ----------------------------------------------------------------- */

struct scan_entry {
	uint64_t seq, last_seq, pos;
	uint32_t bytes;
	uint16_t flags;
};

struct window {
	uint8_t		*buf;
	uint64_t	start, len, cap;
};

/* Makes ring bytes [pos, pos + len) available in w; returns them. */
static int window_get(struct rd_journal *j, struct window *w, uint64_t pos, uint64_t len,
		      const uint8_t **out)
{
	int ret;

	if (pos < w->start || pos + len > w->start + w->len) {
		uint64_t n = j->ring_size - pos < w->cap ? j->ring_size - pos : w->cap;

		if (len > n)
			return -EINVAL;
		ret = rd_io_read(j->io, w->buf, n, j->ring_off + pos);
		if (ret)
			return ret;
		w->start = pos;
		w->len = n;
	}
	*out = w->buf + (pos - w->start);
	return 0;
}

/* Checks the records of an entry whose checksum matched: every length bounded, every
 * type known, sizes exact. */
static bool records_valid(const struct rd_journal *j, const uint8_t *p, uint32_t bytes,
			  uint32_t nr, bool checkpoint)
{
	size_t max_val = rd_btree_max_val_for(j->g->btree_node_size);
	size_t off = sizeof(struct rd_jset);

	for (uint32_t i = 0; i < nr; i++) {
		struct rd_jrec r;
		uint32_t rb;

		if (bytes - off < sizeof(r))
			return false;
		memcpy(&r, p + off, sizeof(r));
		rb = rd_le32_get(r.bytes);
		if (rb < sizeof(r) || jrec_padded(rb) > bytes - off || r.reserved[0] ||
		    r.reserved[1])
			return false;
		switch (r.type) {
		case RD_JREC_KEY: {
			struct rd_bkey_disk k;

			if (r.btree_id >= RD_BTREE_NR || rb < sizeof(r) + sizeof(k))
				return false;
			memcpy(&k, p + off + sizeof(r), sizeof(k));
			if (!k.type || k.reserved ||
			    rd_le16_get(k.val_len) != rb - sizeof(r) - sizeof(k) ||
			    rd_le16_get(k.val_len) > max_val)
				return false;
			break;
		}
		case RD_JREC_DELETE:
			if (r.btree_id >= RD_BTREE_NR ||
			    rb != sizeof(r) + sizeof(struct rd_bpos_disk))
				return false;
			break;
		case RD_JREC_ROOT: {
			struct rd_btree_root_disk root;

			if (!checkpoint || r.btree_id >= RD_BTREE_NR ||
			    rb != sizeof(r) + sizeof(root))
				return false;
			memcpy(&root, p + off + sizeof(r), sizeof(root));
			if (root.btree_id != r.btree_id || root.level >= RD_BTREE_MAX_DEPTH)
				return false;
			break;
		}
		case RD_JREC_TXN:
			if (rb != sizeof(r))
				return false;
			break;
		default:
			return false;
		}
		off += jrec_padded(rb);
	}
	return off == bytes;
}

/* Validates the entry at ring position pos; 0 and e filled if it is a whole valid entry. */
static int entry_at(struct rd_journal *j, struct window *w, uint64_t pos,
		    struct scan_entry *e, const uint8_t **data)
{
	const struct rd_jset *h;
	const uint8_t *p;
	uint64_t limit = j->ring_size - pos;
	uint32_t bytes;
	uint16_t version, flags;
	int ret;

	ret = window_get(j, w, pos, sizeof(*h), &p);
	if (ret)
		return ret;
	h = (const void *)p;
	if (rd_le64_get(h->magic) != jset_magic(j->g))
		return -ENOENT;
	bytes = rd_le32_get(h->bytes);
	if (limit > RD_JOURNAL_ENTRY_MAX)
		limit = RD_JOURNAL_ENTRY_MAX;
	version = rd_le16_get(h->version);
	flags = rd_le16_get(h->flags);
	if (bytes < sizeof(*h) || bytes > limit || h->csum_type != j->g->meta_csum ||
	    version < RD_FORMAT_VERSION_MIN || version > RD_FORMAT_VERSION ||
	    (flags & ~RD_JSET_CHECKPOINT))
		return -ENOENT;
	ret = window_get(j, w, pos, bytes, &p);
	if (ret)
		return ret;
	h = (const void *)p;
	if (rd_le32_get(h->csum) != jset_csum(j->g, p, bytes))
		return -ENOENT;
	e->seq = rd_le64_get(h->seq);
	e->last_seq = rd_le64_get(h->last_seq);
	e->pos = pos;
	e->bytes = bytes;
	e->flags = flags;
	if (!e->seq || !e->last_seq || e->last_seq > e->seq ||
	    ((flags & RD_JSET_CHECKPOINT) && e->last_seq != e->seq))
		return -ENOENT;
	if (!records_valid(j, p, bytes, rd_le32_get(h->nr_records), flags & RD_JSET_CHECKPOINT))
		return -ENOENT;
	*data = p;
	return 0;
}

static int cmp_seq(const void *a, const void *b)
{
	const struct scan_entry *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const struct scan_entry *find_seq(const struct scan_entry *v, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].seq == seq ? &v[lo] : NULL;
}

/* Hands every record of the entry (or only its roots) to apply. */
static int apply_entry(struct rd_journal *j, const uint8_t *p, const struct scan_entry *e,
		       rd_journal_apply_fn apply, void *priv, uint64_t *records)
{
	size_t off = sizeof(struct rd_jset);

	while (off < e->bytes) {
		struct rd_jrec r;
		uint32_t rb;
		int ret;

		memcpy(&r, p + off, sizeof(r));
		rb = rd_le32_get(r.bytes);	/* bounded by records_valid */
		ret = apply(priv, e->seq, (const struct rd_jrec *)(p + off), p + off + sizeof(r),
			    rb - sizeof(r));
		if (ret)
			return ret;
		(*records)++;
		off += jrec_padded(rb);
	}
	(void)j;
	return 0;
}

int rd_journal_replay(struct rd_store *s, rd_journal_apply_fn apply, void *priv,
		      uint64_t *entries, uint64_t *records, char *why, size_t why_len)
{
	struct rd_journal *j = s->journal;
	struct window w = { .cap = SCAN_WINDOW };
	struct scan_entry *v = NULL, e;
	const struct scan_entry *newest, *ckpt;
	size_t n = 0, cap = 0;
	const uint8_t *p;
	uint64_t seq;
	int ret;

	*entries = *records = 0;
	if (w.cap > j->ring_size)
		w.cap = j->ring_size;
	w.buf = rd_buf_alloc_uninit(w.cap);
	if (!w.buf)
		return -ENOMEM;

	/* 1. Every valid entry in the ring, wherever it is. */
	for (uint64_t pos = 0; pos + sizeof(struct rd_jset) <= j->ring_size; ) {
		ret = entry_at(j, &w, pos, &e, &p);
		if (ret == -ENOENT) {
			pos += j->block;
			continue;
		}
		if (ret)
			goto out;
		if (n == cap) {
			struct scan_entry *nv;

			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				ret = -ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[n++] = e;
		pos += round_up(e.bytes, j->block);	/* nothing valid starts inside it */
	}
	ret = -RD_ERR_JOURNAL_CORRUPT;
	if (!n) {
		snprintf(why, why_len, "no valid journal entry in the ring");
		goto out;
	}
	qsort(v, n, sizeof(*v), cmp_seq);
	for (size_t i = 1; i < n; i++) {
		if (v[i].seq == v[i - 1].seq) {
			snprintf(why, why_len, "two journal entries with seq %" PRIu64 " (at %" PRIu64
				 " and %" PRIu64 ")", v[i].seq, v[i - 1].pos, v[i].pos);
			goto out;
		}
	}

	/* 2. The newest entry and the checkpoint it names. */
	newest = &v[n - 1];
	ckpt = find_seq(v, n, newest->last_seq);
	if (!ckpt || !(ckpt->flags & RD_JSET_CHECKPOINT)) {
		snprintf(why, why_len, "newest journal entry %" PRIu64 " needs checkpoint %" PRIu64
			 ", which is not in the ring", newest->seq, newest->last_seq);
		goto out;
	}

	/* 3. Roots from the checkpoint, then the records after it, in seq order. */
	for (seq = ckpt->seq; seq <= newest->seq; seq++) {
		const struct scan_entry *x = find_seq(v, n, seq);

		if (!x) {
			fprintf(stderr, "refdio: journal: entry %" PRIu64 " missing: replay stops "
				"there (newest is %" PRIu64 ")\n", seq, newest->seq);
			break;
		}
		ret = entry_at(j, &w, x->pos, &e, &p);
		if (ret == -ENOENT || (!ret && e.seq != seq))
			ret = -RD_ERR_JOURNAL_CORRUPT;	/* it changed under us */
		if (ret) {
			snprintf(why, why_len, "journal entry %" PRIu64 " unreadable", seq);
			goto out;
		}
		if (seq != ckpt->seq && (e.flags & RD_JSET_CHECKPOINT)) {
			/* A later checkpoint's roots equal L's roots plus the records between:
			 * applying records on top of L's trees gives the same state. */
			(*entries)++;
			continue;
		}
		ret = apply_entry(j, p, &e, apply, priv, records);
		if (ret) {
			snprintf(why, why_len, "replaying journal entry %" PRIu64 ": %s", seq,
				 rd_strerror(ret));
			goto out;
		}
		(*entries)++;
	}

	/* 4. The ring resumes behind the newest entry; the live part starts at L. */
	pthread_mutex_lock(&j->lock);
	set_position(j, newest->seq, newest->pos + round_up(newest->bytes, j->block), ckpt->pos,
		     ckpt->seq);
	pthread_mutex_unlock(&j->lock);
	ret = 0;
out:
	free(w.buf);
	free(v);
	return ret;
}
