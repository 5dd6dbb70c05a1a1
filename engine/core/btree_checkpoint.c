/*
 * btree_checkpoint.c - writing dirty nodes back (copy-on-write) and recording the new roots.
 *
 * Owns: the checkpoint sequence, with the index lock held throughout:
 *   1. close and flush the open journal entry;
 *   2. reserve node space: the space hooks' node_prepare for the dirty nodes (plus slack) queues
 *      the alloc keys of the buckets it opens in a transaction; committing it may dirty more
 *      alloc-tree nodes, so recount and reserve again until covered; flush that entry;
 *   3. write every dirty node bottom-up, each to fresh space from the hooks' node_alloc, with
 *      a seq no node ever had (checkpoint seq << 24 | n: journal seqs are never reused), then
 *      point the parent at it; the old location is freed as of the checkpoint seq, and so
 *      are nodes dropped by merges since the last checkpoint;
 *   4. flush the device;
 *   5. write the checkpoint journal entry (one root per tree) and flush it. From then on the
 *      journal before it is reclaimable.
 *
 * Must never: write a node in place, free an old location before the checkpoint entry that
 * stops referencing it is durable (the allocator holds frees until that seq is durable), or
 * write the checkpoint entry before every node it names is on stable storage.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "btree_internal.h"
#include "refdio/errors.h"
#include "io.h"
#include "journal.h"
#include "store.h"

#define NODE_SEQ_SHIFT		24	/* node seqs per checkpoint: 16 M */
#define RESERVE_SLACK		RD_BTREE_CKPT_SLACK
#define RESERVE_ROUNDS		8

struct wbuf {
	struct rd_io_req	req;
	void			*data;
	struct ckpt		*c;
	bool			busy;
};

struct ckpt {
	struct rd_store		*s;
	uint64_t		seq;		/* the checkpoint entry's seq */
	uint64_t		nodes;		/* written so far */
	pthread_mutex_t		lock;
	pthread_cond_t		cond;
	struct wbuf		*bufs;
	unsigned		nr_bufs, inflight;
	int			err;
};

static void write_done(struct rd_io_req *req, long res)
{
	struct wbuf *w = req->priv;
	struct ckpt *c = w->c;

	pthread_mutex_lock(&c->lock);
	assert(c->inflight > 0 && w->busy);
	if (res < 0 && !c->err)
		c->err = (int)res;
	else if (res >= 0 && (size_t)res != req->len && !c->err)
		c->err = -RD_ERR_TRUNCATED;
	w->busy = false;
	c->inflight--;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* A free write buffer, waiting for one to complete if all are in flight. */
static struct wbuf *get_buf(struct ckpt *c)
{
	struct wbuf *w = NULL;

	pthread_mutex_lock(&c->lock);
	while (!w) {
		for (unsigned i = 0; i < c->nr_bufs; i++)
			if (!c->bufs[i].busy) {
				w = &c->bufs[i];
				break;
			}
		if (!w)
			pthread_cond_wait(&c->cond, &c->lock);
	}
	w->busy = true;
	c->inflight++;
	pthread_mutex_unlock(&c->lock);
	return w;
}

static int wait_all(struct ckpt *c)
{
	int err;

	pthread_mutex_lock(&c->lock);
	while (c->inflight)
		pthread_cond_wait(&c->cond, &c->lock);
	err = c->err;
	pthread_mutex_unlock(&c->lock);
	return err;
}

/* Writes n's dirty descendants, then n. */
/* The node's old location is free once the checkpoint seq is durable. */
static void node_free(struct rd_store *s, uint64_t offset, uint64_t seq)
{
	if (s->btree->space)
		s->btree->space->node_free(s, offset, seq);
}

static int write_node(struct ckpt *c, struct rd_bnode *n)
{
	struct rd_store *s = c->s;
	struct rd_btree_state *b = s->btree;
	const struct rd_geometry *g = &s->geo;
	struct rd_bptr ptr;
	struct wbuf *w;
	uint32_t bytes;
	int ret;

	if (!n->dirty)
		return 0;
	/* Invariant: dirty nodes are never evicted, so every dirty child is linked. */
	for (uint32_t i = 0; n->level && i < n->nr; i++) {
		if (n->children[i] && n->children[i]->dirty) {
			ret = write_node(c, n->children[i]);
			if (ret)
				return ret;
		}
	}
	if (!n->parent && !n->level && !n->nr) {
		/* An empty tree is recorded as root offset 0: nothing to write. */
		if (n->ptr.offset)
			node_free(s, n->ptr.offset, c->seq);
		n->ptr = (struct rd_bptr){ 0 };
		rd_btree_node_clean(s, n);
		return 0;
	}
	if (c->nodes >= (1ull << NODE_SEQ_SHIFT))
		return -RD_ERR_NO_SPACE_META;
	ret = s->btree->space ? s->btree->space->node_alloc(s, &ptr.offset, &ptr.gen)
			      : -RD_ERR_NO_SPACE_META;	/* no allocator yet: nothing may be dirty */
	if (ret)
		return ret;
	ptr.seq = (c->seq << NODE_SEQ_SHIFT) | c->nodes++;

	w = get_buf(c);
	bytes = rd_bnode_encode(n, g, ptr.seq, c->seq, w->data);
	assert(bytes <= g->btree_node_size);	/* every dirty node was split to fit */
	w->req = (struct rd_io_req){
		.op = RD_IO_WRITE, .fd = -1, .buf = w->data, .off = ptr.offset,
		.len = (bytes + g->block_size - 1) / g->block_size * g->block_size,
		.end_io = write_done, .priv = w,
	};
	rd_io_submit(s->io, &w->req);
	b->node_writes++;

	if (n->ptr.offset)
		node_free(s, n->ptr.offset, c->seq);
	n->ptr = ptr;
	if (n->parent) {
		struct rd_btree_ptr d = rd_bptr_to_disk(ptr);

		memcpy(n->parent->keys[rd_btree_parent_idx(n)]->val, &d, sizeof(d));
	}
	rd_btree_node_clean(s, n);
	return 0;
}

/* Step 2: enough btree buckets open for every node the checkpoint will write. */
static int reserve_space(struct rd_store *s)
{
	struct rd_btree_state *b = s->btree;
	uint64_t reserved = 0;

	for (unsigned round = 0; b->nodes_dirty + 1 > reserved; round++) {
		uint64_t want = b->nodes_dirty + RESERVE_SLACK;
		struct rd_trans *t;
		int ret;

		if (round == RESERVE_ROUNDS)
			return -RD_ERR_NO_SPACE_META;
		t = rd_trans_new(s);
		if (!t)
			return -ENOMEM;
		/* (room is absolute; before the allocator is up there is nothing to write) */
		ret = b->space ? b->space->node_prepare(s, want, t) : 0;
		if (!ret)
			ret = rd_trans_commit_locked(t, NULL, false);
		rd_trans_free(t);
		if (ret)
			return ret;
		reserved = want;
	}
	return 0;
}

/* Up to 8 MiB of node buffers (4..64 of them), allocated once per store. */
static int get_write_bufs(struct rd_store *s, struct ckpt *c)
{
	struct rd_btree_state *b = s->btree;
	unsigned n = (8u << 20) / s->geo.btree_node_size;

	n = n < 4 ? 4 : n > 64 ? 64 : n;
	if (!b->write_bufs && !(b->write_bufs = calloc(n, sizeof(*b->write_bufs))))
		return -ENOMEM;
	for (; b->nr_write_bufs < n; b->nr_write_bufs++) {
		b->write_bufs[b->nr_write_bufs] = rd_buf_alloc_uninit(s->geo.btree_node_size);
		if (!b->write_bufs[b->nr_write_bufs])
			return -ENOMEM;
	}
	c->bufs = calloc(n, sizeof(*c->bufs));
	if (!c->bufs)
		return -ENOMEM;
	c->nr_bufs = n;
	for (unsigned i = 0; i < n; i++) {
		c->bufs[i].c = c;
		c->bufs[i].data = b->write_bufs[i];
	}
	return 0;
}

int rd_btree_checkpoint_locked(struct rd_store *s)
{
	struct rd_btree_state *b = s->btree;
	struct rd_journal *j = s->journal;
	struct rd_btree_root_disk roots[RD_BTREE_NR];
	struct ckpt c = { .s = s };
	int ret;

	if (s->read_only)
		return -EROFS;
	if (b->err)
		return b->err;
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);

	ret = rd_journal_flush_all(j);
	if (!ret && b->nodes_dirty)
		ret = reserve_space(s);
	if (!ret)
		ret = rd_journal_flush_all(j);
	if (ret)
		goto out;
	c.seq = rd_journal_next_seq(j);
	if (c.seq >> (64 - NODE_SEQ_SHIFT)) {
		ret = -RD_ERR_NO_SPACE_META;
		goto out;
	}

	ret = get_write_bufs(s, &c);
	if (ret)
		goto out;

	/* 3. Every dirty node, children before parents. */
	for (unsigned id = 0; id < RD_BTREE_NR && !ret; id++)
		if (b->roots[id].node)
			ret = write_node(&c, b->roots[id].node);
	for (size_t i = 0; !ret && i < b->nr_pending_free; i++)
		node_free(s, b->pending_free[i], c.seq);
	if (!ret)
		b->nr_pending_free = 0;
	{
		int wret = wait_all(&c);

		if (!ret)
			ret = wret;
	}
	/* 4. The nodes are stable before anything names them. */
	if (!ret && c.nodes)
		ret = rd_io_flush(s->io);
	if (ret) {
		/* Nodes may be marked clean without being on disk: the trees in memory no
		 * longer describe the disk. Refuse further work; replay repairs at open. */
		b->err = ret;
		goto out;
	}

	/* 5. The checkpoint entry. */
	for (unsigned id = 0; id < RD_BTREE_NR; id++)
		rd_btree_get_root(s, id, &roots[id]);
	ret = rd_journal_write_checkpoint(j, c.seq, roots, RD_BTREE_NR);
	if (ret)
		goto out;
	b->checkpoints++;
out:
	if (c.bufs) {
		(void)wait_all(&c);
		free(c.bufs);
	}
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.cond);
	return ret;
}

int rd_btree_checkpoint(struct rd_store *s)
{
	int ret;

	pthread_mutex_lock(&s->index_lock);
	ret = rd_btree_checkpoint_locked(s);
	rd_btree_cache_shrink(s);
	pthread_mutex_unlock(&s->index_lock);
	return ret;
}
