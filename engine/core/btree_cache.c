/*
 * btree_cache.c - the node cache: reading nodes, linking them into the in-memory trees,
 * dirty tracking and LRU eviction.
 *
 * Owns: struct rd_btree_state's roots, LRU list and counters; the rule that a node is read
 * from disk only through a parent (or root) pointer and validated against what that parent
 * expects; which nodes may be evicted.
 *
 * Cache bound: every in-memory node is charged btree_node_size bytes (what its on-disk
 * image occupies; the in-memory key array is of the same order). Clean nodes with no loaded
 * children are evicted least recently used first; dirty nodes are pinned until the next
 * checkpoint (which a commit runs when dirty nodes pass half the bound); roots stay.
 *
 * Known limit: node reads are synchronous (rd_io_read) under the index lock, so a cold read
 * stalls every other index user for one device round trip.
 *
 * Must never: evict a node that a caller may still hold (eviction runs only between
 * operations, via rd_btree_cache_shrink), or evict a dirty node or one with loaded children.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree_internal.h"
#include "refdio/errors.h"
#include "io.h"
#include "store.h"

/* ---- LRU ----------------------------------------------------------------------------- */

static void lru_del(struct rd_btree_state *b, struct rd_bnode *n)
{
	(void)b;
	if (!n->in_lru)
		return;
	n->lru_prev->lru_next = n->lru_next;
	n->lru_next->lru_prev = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
	n->in_lru = false;
}

static void lru_add(struct rd_btree_state *b, struct rd_bnode *n)
{
	n->lru_next = b->lru.lru_next;
	n->lru_prev = &b->lru;
	b->lru.lru_next->lru_prev = n;
	b->lru.lru_next = n;
	n->in_lru = true;
}

void rd_btree_lru_touch(struct rd_store *s, struct rd_bnode *n)
{
	if (!n->in_lru)
		return;
	lru_del(s->btree, n);
	lru_add(s->btree, n);
}

/* ---- state --------------------------------------------------------------------------- */

void rd_btree_set_space(struct rd_store *s, const struct rd_btree_space_ops *ops)
{
	s->btree->space = ops;
}

/* A pointer read from a node or the journal whose bucket moved on: only the allocator can
 * tell, once it is up; a replay applies raw and checks nothing. */
static bool node_ptr_stale(struct rd_store *s, struct rd_bptr ptr)
{
	const struct rd_btree_state *b = s->btree;

	return b->space && !b->replaying && b->space->ptr_stale(s, ptr.offset, ptr.gen);
}

int rd_btree_state_init(struct rd_store *s, uint64_t cache_bytes)
{
	struct rd_btree_state *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->read_buf = rd_io_buf_alloc(s->geo.btree_node_size);
	if (!b->read_buf) {
		free(b);
		return -ENOMEM;
	}
	b->lru.lru_next = b->lru.lru_prev = &b->lru;
	b->cache_limit = cache_bytes ? cache_bytes : 64ull << 20;
	for (unsigned i = 0; i < RD_BTREE_NR; i++)
		b->roots[i].ptr = (struct rd_bptr){ 0 };
	s->btree = b;
	return 0;
}

static void free_subtree(struct rd_bnode *n)
{
	if (n->level)
		for (uint32_t i = 0; i < n->nr; i++)
			if (n->children[i])
				free_subtree(n->children[i]);
	rd_bnode_free(n);
}

void rd_btree_drop_all(struct rd_store *s)
{
	struct rd_btree_state *b = s->btree;

	if (!b)
		return;
	for (unsigned i = 0; i < RD_BTREE_NR; i++) {
		if (b->roots[i].node)
			free_subtree(b->roots[i].node);
		b->roots[i].node = NULL;
	}
	b->lru.lru_next = b->lru.lru_prev = &b->lru;
	b->nodes_cached = b->nodes_dirty = 0;
	b->nr_pending_free = 0;
}

void rd_btree_state_free(struct rd_store *s)
{
	struct rd_btree_state *b = s->btree;

	if (!b)
		return;
	rd_btree_drop_all(s);
	rd_io_buf_free(b->read_buf);
	for (unsigned i = 0; i < b->nr_write_bufs; i++)
		free(b->write_bufs[i]);
	free(b->write_bufs);
	free(b->pending_free);
	free(b);
	s->btree = NULL;
}

void rd_btree_set_root(struct rd_store *s, enum rd_btree_id id,
		       const struct rd_btree_root_disk *r)
{
	struct rd_btree_root *root = &s->btree->roots[id];

	if (root->node)
		free_subtree(root->node);	/* only before any use: nothing else links it */
	root->node = NULL;
	root->ptr = rd_bptr_from_disk(&r->ptr);
	root->level = root->ptr.offset ? r->level : 0;
}

void rd_btree_get_root(struct rd_store *s, enum rd_btree_id id, struct rd_btree_root_disk *r)
{
	struct rd_btree_root *root = &s->btree->roots[id];
	struct rd_bptr ptr = root->node ? root->node->ptr : root->ptr;
	uint8_t level = root->node ? root->node->level : root->level;

	memset(r, 0, sizeof(*r));
	/* An empty tree is recorded as offset 0 (checkpoints keep ptr in step with that). */
	r->ptr = rd_bptr_to_disk(ptr);
	r->level = ptr.offset ? level : 0;
	r->btree_id = (uint8_t)id;
}

/* ---- reading ------------------------------------------------------------------------- */

int rd_btree_node_read(struct rd_store *s, struct rd_bptr ptr, const struct rd_bnode_expect *e,
		       struct rd_bnode **out)
{
	const struct rd_geometry *g = &s->geo;
	struct rd_btree_state *b = s->btree;
	uint64_t lo = g->first_bucket * g->bucket_size, hi = g->last_bucket * g->bucket_size;
	int ret;

	*out = NULL;
	/* The pointer came from disk too: bound it before it addresses anything. A node lies
	 * block aligned inside one allocatable bucket. */
	if (!ptr.offset || ptr.offset % g->block_size || ptr.offset < lo ||
	    ptr.offset > hi - g->btree_node_size ||
	    ptr.offset / g->bucket_size != (ptr.offset + g->btree_node_size - 1) / g->bucket_size)
		return -RD_ERR_NODE_INVALID;
	if (node_ptr_stale(s, ptr))
		return -RD_ERR_STALE_PTR;
	ret = rd_io_read(s->io, b->read_buf, g->btree_node_size, ptr.offset);
	if (ret)
		return ret;
	b->node_reads++;
	ret = rd_bnode_decode(b->read_buf, g->btree_node_size, g, e, out);
	if (ret)
		return ret;
	(*out)->ptr = ptr;
	return 0;
}

int rd_btree_root_node(struct rd_store *s, enum rd_btree_id id, struct rd_bnode **out)
{
	struct rd_btree_state *b = s->btree;
	struct rd_btree_root *root = &b->roots[id];
	struct rd_bnode *n;
	int ret;

	if (root->node) {
		*out = root->node;
		return 0;
	}
	if (!root->ptr.offset) {
		n = rd_btree_node_new(s, (uint8_t)id, 0);
		if (!n)
			return -ENOMEM;
	} else {
		struct rd_bnode_expect e = {
			.id = (uint8_t)id, .level = root->level, .seq = root->ptr.seq,
			.min_key = RD_POS_MIN, .max_key = RD_POS_MAX,
		};

		if (root->level >= RD_BTREE_MAX_DEPTH)
			return -RD_ERR_NODE_INVALID;
		ret = rd_btree_node_read(s, root->ptr, &e, &n);
		if (ret)
			return ret;
		n->cached = true;
		b->nodes_cached++;
	}
	root->node = n;
	*out = n;
	return 0;
}

int rd_btree_child(struct rd_store *s, struct rd_bnode *p, uint32_t idx, struct rd_bnode **out)
{
	struct rd_btree_state *b = s->btree;
	struct rd_bnode_expect e;
	struct rd_bnode *n;
	int ret;

	if (p->children[idx]) {
		*out = p->children[idx];
		rd_btree_lru_touch(s, *out);
		return 0;
	}
	e = (struct rd_bnode_expect){
		.id = p->id, .level = (uint8_t)(p->level - 1),
		.seq = rd_bptr_from_disk(p->keys[idx]->val).seq,
		.min_key = idx ? rd_bpos_successor(p->keys[idx - 1]->pos) : p->min_key,
		.max_key = p->keys[idx]->pos,
	};
	ret = rd_btree_node_read(s, rd_bptr_from_disk(p->keys[idx]->val), &e, &n);
	if (ret)
		return ret;
	n->cached = true;
	n->parent = p;
	p->children[idx] = n;
	p->nr_loaded++;
	b->nodes_cached++;
	lru_add(b, n);	/* freshly read: clean */
	*out = n;
	return 0;
}

/* ---- readahead ---------------------------------------------------------------------- */

struct ra_read {
	struct rd_io_req	req;
	struct ra		*ra;
	uint32_t		idx;
	void			*buf;
	long			res;
};

struct ra {
	pthread_mutex_t		lock;
	pthread_cond_t		cond;
	unsigned		pending;
};

static void ra_done(struct rd_io_req *req, long res)
{
	struct ra_read *r = req->priv;
	struct ra *ra = r->ra;

	pthread_mutex_lock(&ra->lock);
	r->res = res;
	if (!--ra->pending)
		pthread_cond_signal(&ra->cond);
	pthread_mutex_unlock(&ra->lock);
}

void rd_btree_readahead(struct rd_store *s, struct rd_bnode *p, uint32_t idx)
{
	const struct rd_geometry *g = &s->geo;
	struct rd_btree_state *b = s->btree;
	unsigned want = (1u << 20) / g->btree_node_size, n = 0;
	struct ra_read r[RD_BTREE_READAHEAD];
	struct ra ra = { .pending = 0 };

	if (want > RD_BTREE_READAHEAD)
		want = RD_BTREE_READAHEAD;
	if (want < 2 || !p->level)
		return;
	/* Only into free room: readahead must not push out what is in use. */
	if ((b->nodes_cached + want) * g->btree_node_size > b->cache_limit)
		return;
	pthread_mutex_init(&ra.lock, NULL);
	pthread_cond_init(&ra.cond, NULL);
	for (uint32_t i = idx; i < p->nr && i < idx + want; i++) {
		struct rd_bptr ptr = rd_bptr_from_disk(p->keys[i]->val);
		struct ra_read *x = &r[n];

		if (p->children[i] || !ptr.offset || ptr.offset % g->block_size ||
		    ptr.offset + g->btree_node_size > g->last_bucket * g->bucket_size)
			continue;	/* loaded, or left to the checked synchronous read */
		x->buf = rd_buf_alloc_uninit(g->btree_node_size);
		if (!x->buf)
			break;
		x->ra = &ra;
		x->idx = i;
		x->req = (struct rd_io_req){ .op = RD_IO_READ, .fd = -1, .buf = x->buf,
					     .off = ptr.offset, .len = g->btree_node_size,
					     .end_io = ra_done, .priv = x };
		n++;
	}
	ra.pending = n;
	for (unsigned i = 0; i < n; i++)
		rd_io_submit(s->io, &r[i].req);
	pthread_mutex_lock(&ra.lock);
	while (ra.pending)
		pthread_cond_wait(&ra.cond, &ra.lock);
	pthread_mutex_unlock(&ra.lock);

	for (unsigned i = 0; i < n; i++) {
		struct ra_read *x = &r[i];
		struct rd_bptr ptr = rd_bptr_from_disk(p->keys[x->idx]->val);
		struct rd_bnode_expect e = {
			.id = p->id, .level = (uint8_t)(p->level - 1), .seq = ptr.seq,
			.min_key = x->idx ? rd_bpos_successor(p->keys[x->idx - 1]->pos) : p->min_key,
			.max_key = p->keys[x->idx]->pos,
		};
		struct rd_bnode *c;

		/* Anything wrong (short read, stale, invalid) is left for the synchronous read
		 * to find and report when the node is really needed. */
		if (x->res == (long)g->btree_node_size &&
		    !node_ptr_stale(s, ptr) &&
		    !rd_bnode_decode(x->buf, g->btree_node_size, g, &e, &c)) {
			c->ptr = ptr;
			c->cached = true;
			c->parent = p;
			p->children[x->idx] = c;
			p->nr_loaded++;
			b->nodes_cached++;
			b->node_reads++;
			lru_add(b, c);
		}
		free(x->buf);
	}
	pthread_mutex_destroy(&ra.lock);
	pthread_cond_destroy(&ra.cond);
}

/* ---- shape changes ------------------------------------------------------------------- */

struct rd_bnode *rd_btree_node_new(struct rd_store *s, uint8_t id, uint8_t level)
{
	struct rd_bnode *n = rd_bnode_alloc(id, level);

	if (!n)
		return NULL;
	n->cached = true;
	s->btree->nodes_cached++;
	return n;
}

int rd_btree_node_drop(struct rd_store *s, struct rd_bnode *n)
{
	struct rd_btree_state *b = s->btree;

	if (n->ptr.offset) {
		if (b->nr_pending_free == b->pending_cap) {
			size_t cap = b->pending_cap ? b->pending_cap * 2 : 64;
			uint64_t *pf = realloc(b->pending_free, cap * sizeof(*pf));

			if (!pf)
				return -ENOMEM;
			b->pending_free = pf;
			b->pending_cap = cap;
		}
		b->pending_free[b->nr_pending_free++] = n->ptr.offset;
	}
	lru_del(b, n);
	if (n->dirty)
		b->nodes_dirty--;
	b->nodes_cached--;
	rd_bnode_free(n);
	return 0;
}

void rd_btree_node_dirty(struct rd_store *s, struct rd_bnode *n)
{
	struct rd_btree_state *b = s->btree;

	/* Invariant: a dirty node's parent is dirty; stop at the first dirty ancestor. */
	for (; n && !n->dirty; n = n->parent) {
		n->dirty = true;
		b->nodes_dirty++;
		lru_del(b, n);
	}
}

void rd_btree_node_clean(struct rd_store *s, struct rd_bnode *n)
{
	struct rd_btree_state *b = s->btree;

	if (!n->dirty)
		return;
	n->dirty = false;
	b->nodes_dirty--;
	if (n->parent)
		lru_add(b, n);
}

uint32_t rd_btree_parent_idx(const struct rd_bnode *c)
{
	uint32_t idx = rd_bnode_lower_bound(c->parent, c->max_key);

	assert(idx < c->parent->nr && c->parent->children[idx] == c);
	return idx;
}

/*
 * A checkpoint is due when dirty nodes take half the cache, or when writing them (plus the
 * checkpoint's own slack, twice over for the nodes the next commits may dirty) would no
 * longer fit in the room the allocator can give the b-trees: on a nearly full device the
 * trees checkpoint early rather than find at close that they cannot.
 */
bool rd_btree_want_checkpoint(struct rd_store *s)
{
	struct rd_btree_state *b = s->btree;

	if (b->nodes_dirty * s->geo.btree_node_size > b->cache_limit / 2)
		return true;
	return b->nodes_dirty && b->space &&
	       b->nodes_dirty + 2 * RD_BTREE_CKPT_SLACK >= b->space->node_room(s);
}

void rd_btree_cache_shrink(struct rd_store *s)
{
	struct rd_btree_state *b = s->btree;
	uint64_t node_size = s->geo.btree_node_size;

	/* Two passes: evicting a leaf can make its parent (older, nearer the tail, already
	 * passed) evictable. */
	for (int pass = 0; pass < 2; pass++) {
		struct rd_bnode *n = b->lru.lru_prev;

		while (n != &b->lru && b->nodes_cached * node_size > b->cache_limit) {
			struct rd_bnode *prev = n->lru_prev;

			if (!n->nr_loaded) {
				struct rd_bnode *p = n->parent;
				uint32_t idx = rd_btree_parent_idx(n);

				p->children[idx] = NULL;
				p->nr_loaded--;
				lru_del(b, n);
				b->nodes_cached--;
				rd_bnode_free(n);
			}
			n = prev;
		}
	}
}
