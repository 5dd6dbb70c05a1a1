/*
 * btree.c - b-tree shape and lookups: descent, insert, delete, split, merge, peek.
 *
 * Owns: keeping every tree balanced and within its node size: a node over btree_node_size
 * splits at its byte midpoint (a new root when the root splits); a node under a third of
 * its payload merges with a sibling when both fit in two thirds of one, an empty node
 * always merges away, and a root left with one child is replaced by that child, so depth
 * stays bounded under deletes. Lookups copy keys out, so nothing returned points into a
 * node.
 *
 * Must never: journal anything (trans.c journals before calling in here), or change a tree
 * outside the index lock. During replay (b->replaying) nothing merges: a merge would drop a
 * node that the last durable checkpoint still references before the allocator knows it.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree_internal.h"
#include "refdio/errors.h"
#include "store.h"

static const char *const btree_names[RD_BTREE_NR] = {
	[RD_BTREE_EXTENTS]	= "extents",
	[RD_BTREE_INODES]	= "inodes",
	[RD_BTREE_DIRENTS]	= "dirents",
	[RD_BTREE_XATTRS]	= "xattrs",
	[RD_BTREE_ALLOC]	= "alloc",
};

const char *rd_btree_name(unsigned id)
{
	return id < RD_BTREE_NR ? btree_names[id] : NULL;
}

int rd_btree_parse(const char *name)
{
	for (unsigned i = 0; i < RD_BTREE_NR; i++)
		if (!strcmp(name, btree_names[i]))
			return (int)i;
	return -EINVAL;
}

size_t rd_btree_max_val(const struct rd_store *s)
{
	return rd_btree_max_val_for(s->geo.btree_node_size);
}

static struct rd_bpos bpos_predecessor(struct rd_bpos p)
{
	if (p.snapshot--)
		return p;
	if (p.offset--)
		return p;
	p.inode--;
	return p;
}

static bool bpos_eq(struct rd_bpos a, struct rd_bpos b)
{
	return !rd_bpos_cmp(a, b);
}

/* The leaf whose range holds pos, reading nodes on the way as needed. */
static int leaf_for_ra(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos,
		       bool readahead, struct rd_bnode **out)
{
	struct rd_bnode *n;
	int ret = rd_btree_root_node(s, id, &n);

	while (!ret && n->level) {
		uint32_t idx = rd_bnode_lower_bound(n, pos);

		/* The last key is the node's max_key >= pos, so idx < nr. */
		if (idx >= n->nr)
			idx = n->nr - 1;
		if (readahead && n->level == 1 && !n->children[idx])
			rd_btree_readahead(s, n, idx);
		ret = rd_btree_child(s, n, idx, &n);
	}
	*out = ret ? NULL : n;
	return ret;
}

static int leaf_for(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos,
		    struct rd_bnode **out)
{
	return leaf_for_ra(s, id, pos, false, out);
}

int rd_btree_prefetch_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos)
{
	struct rd_bnode *leaf;

	return leaf_for(s, id, pos, &leaf);
}

/* ---- split --------------------------------------------------------------------------- */

/* Moves keys [from, nr) of src to the end of dst (children too, reparented). */
static int move_keys(struct rd_bnode *dst, struct rd_bnode *src, uint32_t from)
{
	uint32_t cnt = src->nr - from;

	assert(from <= src->nr);

	for (uint32_t i = 0; i < cnt; i++) {
		struct rd_bkey *k = src->keys[from + i];
		struct rd_bnode *c = src->level ? src->children[from + i] : NULL;
		int ret = rd_bnode_insert_at(dst, dst->nr, k, c);

		if (ret) {
			/* Undo what moved so far: both nodes stay whole. */
			while (i--)
				(void)rd_bnode_remove_at(dst, dst->nr - 1);
			return ret;
		}
		if (c)
			c->parent = dst;
	}
	for (uint32_t i = 0; i < cnt; i++) {
		src->bytes -= (uint32_t)rd_bkey_packed(src->keys[from + i]->val_len);
		if (src->level && src->children[from + i])
			src->nr_loaded--;
	}
	src->nr = from;
	return 0;
}

static int new_root(struct rd_store *s, struct rd_bnode *n)
{
	struct rd_btree_ptr nptr = rd_bptr_to_disk(n->ptr);
	struct rd_bnode *r;
	struct rd_bkey *k;

	assert(!n->parent);

	if (n->level + 1 >= RD_BTREE_MAX_DEPTH)
		return -RD_ERR_NO_SPACE_META;
	r = rd_btree_node_new(s, n->id, (uint8_t)(n->level + 1));
	if (!r)
		return -ENOMEM;
	/* The root's one key covers everything and carries n's current disk pointer. */
	k = rd_bkey_new(n->max_key, RD_KEY_BTREE_PTR, &nptr, sizeof(nptr));
	if (!k || rd_bnode_insert_at(r, 0, k, n)) {
		free(k);
		rd_btree_node_drop(s, r);
		return -ENOMEM;
	}
	n->parent = r;
	s->btree->roots[n->id].node = r;
	rd_btree_node_dirty(s, r);
	return 0;
}

/*
 * Splits n, and its ancestors as needed, until every node fits in btree_node_size.
 * Normally at the byte midpoint. tail: n overflowed by a key appended after all its others
 * (and, going up, by the split of the last child): then only that last key moves out, so
 * that sequential inserts leave full nodes behind instead of half-empty ones. The left part
 * is then what fitted before the append.
 */
static int split(struct rd_store *s, struct rd_bnode *n, bool tail)
{
	uint32_t node_size = s->geo.btree_node_size;
	int ret = 0;

	while (n && n->bytes > node_size) {
		struct rd_bnode *p, *right;
		struct rd_btree_ptr zero = { 0 };
		struct rd_bkey *k;
		uint32_t half = (n->bytes - (uint32_t)sizeof(struct rd_btree_node)) / 2, acc = 0;
		uint32_t at = 0, idx;

		if (!n->parent && (ret = new_root(s, n)))
			return ret;
		p = n->parent;
		if (tail) {
			at = n->nr - 1;
		} else {
			/* The byte midpoint, keeping at least one key on each side. */
			while (at < n->nr && acc < half)
				acc += (uint32_t)rd_bkey_packed(n->keys[at++]->val_len);
			if (at >= n->nr)
				at = n->nr - 1;
		}
		if (!at)
			at = 1;
		assert(at < n->nr);	/* one key always fits (rd_btree_max_val) */

		right = rd_btree_node_new(s, n->id, n->level);
		if (!right)
			return -ENOMEM;
		ret = move_keys(right, n, at);
		if (ret) {
			rd_btree_node_drop(s, right);
			return ret;
		}
		idx = rd_btree_parent_idx(n);	/* by n's old max_key == right's */
		right->min_key = rd_bpos_successor(n->keys[at - 1]->pos);
		right->max_key = n->max_key;
		n->max_key = n->keys[at - 1]->pos;

		/* The parent's key at idx (right's max) now leads to right, which has no disk
		 * version yet; n's old pointer moves to the new key for n's new max. */
		k = rd_bkey_new(n->max_key, RD_KEY_BTREE_PTR, p->keys[idx]->val,
				sizeof(struct rd_btree_ptr));
		if (!k || rd_bnode_insert_at(p, idx, k, n)) {
			/* Out of memory with the tree half split: the in-memory tree no longer
			 * matches the journal. Fatal for this store. */
			free(k);
			return -ENOMEM;
		}
		/* insert_at counted n again; children[idx + 1] still points at n until now. */
		p->children[idx + 1] = right;
		right->parent = p;
		memcpy(p->keys[idx + 1]->val, &zero, sizeof(zero));
		rd_btree_node_dirty(s, right);
		rd_btree_node_dirty(s, n);
		/* p overflows at its end only if right is its last child. */
		tail = tail && idx + 2 == p->nr;
		n = p;
	}
	return ret;
}

/* ---- merge --------------------------------------------------------------------------- */

/* A root left with a single child hands over to that child. Best effort. */
static void collapse_root(struct rd_store *s, struct rd_bnode *r)
{
	struct rd_btree_state *b = s->btree;

	assert(!r->parent);

	while (r->level && r->nr == 1) {
		struct rd_bnode *c;

		if (rd_btree_child(s, r, 0, &c))
			return;
		/* Drop the old root first: it may fail (ENOMEM) with nothing changed. */
		r->children[0] = NULL;
		r->nr_loaded--;
		if (rd_btree_node_drop(s, r)) {
			r->children[0] = c;
			r->nr_loaded++;
			return;
		}
		c->parent = NULL;
		/* Roots stay in memory, off the LRU. */
		if (c->in_lru) {
			c->lru_prev->lru_next = c->lru_next;
			c->lru_next->lru_prev = c->lru_prev;
			c->in_lru = false;
		}
		b->roots[c->id].node = c;
		__atomic_add_fetch(&b->version[c->id], 1, __ATOMIC_RELEASE);
		r = c;
	}
}

static bool is_small(const struct rd_bnode *n, uint32_t cap)
{
	return !n->nr || n->bytes - (uint32_t)sizeof(struct rd_btree_node) <= cap / 3;
}

/*
 * n (one key or none) cannot merge with its full sibling: take the sibling's adjacent key
 * (and child) instead, moving the boundary between the two in the parent. Gives an only
 * child a sibling to merge with. 0 or -ENOMEM (nothing changed).
 */
static int borrow(struct rd_store *s, struct rd_bnode *n, uint32_t idx, struct rd_bnode *sib,
		  uint32_t sidx)
{
	struct rd_bnode *p = n->parent;
	uint32_t from = sidx > idx ? 0 : sib->nr - 1;
	struct rd_bkey *k = sib->keys[from];
	struct rd_bnode *c = sib->level ? sib->children[from] : NULL;
	int ret;

	ret = rd_bnode_insert_at(n, sidx > idx ? n->nr : 0, k, c);
	if (ret)
		return ret;
	(void)rd_bnode_remove_at(sib, from);	/* k lives on in n */
	if (c)
		c->parent = n;
	if (sidx > idx) {
		/* n's range now ends at k; the sibling starts after it */
		n->max_key = k->pos;
		p->keys[idx]->pos = k->pos;
		sib->min_key = rd_bpos_successor(k->pos);
	} else {
		sib->max_key = sib->keys[sib->nr - 1]->pos;
		p->keys[sidx]->pos = sib->max_key;
		n->min_key = rd_bpos_successor(sib->max_key);
	}
	rd_btree_node_dirty(s, n);
	rd_btree_node_dirty(s, sib);
	return 0;
}

/*
 * Merges n (which has a sibling) with its next sibling, or its previous one if it is the
 * last child, when both fit in two thirds of a node (or one of them is empty and they fit
 * at all); a node of at most one key next to a full one borrows a key instead. Returns
 * the parent, or NULL if nothing changed (including a sibling that could not be read:
 * merging is best effort).
 */
static struct rd_bnode *merge_pair(struct rd_store *s, struct rd_bnode *n)
{
	uint32_t cap = s->geo.btree_node_size - (uint32_t)sizeof(struct rd_btree_node);
	struct rd_bnode *p = n->parent, *sib, *l, *r;
	uint32_t idx = rd_btree_parent_idx(n), sidx, li, combined;
	struct rd_btree_ptr lptr;

	assert(p->nr >= 2);	/* n has a sibling */

	sidx = idx + 1 < p->nr ? idx + 1 : idx - 1;
	if (rd_btree_child(s, p, sidx, &sib))
		return NULL;
	combined = n->bytes + sib->bytes - 2 * (uint32_t)sizeof(struct rd_btree_node);
	if (combined > cap && n->nr <= 1 && sib->nr >= 2)
		return borrow(s, n, idx, sib, sidx) ? NULL : p;
	if ((n->nr > 1 && sib->nr > 1 && combined > 2 * cap / 3) || combined > cap)
		return NULL;

	li = idx < sidx ? idx : sidx;
	l = p->children[li];
	r = p->children[li + 1];
	if (move_keys(l, r, 0))
		return NULL;
	l->max_key = r->max_key;
	/* The parent's key for r (r's max) now leads to l; l's own key goes. l keeps its
	 * on-disk version until the checkpoint rewrites it; r's is freed then. */
	lptr = rd_bptr_to_disk(l->ptr);
	memcpy(p->keys[li + 1]->val, &lptr, sizeof(lptr));
	p->children[li + 1] = l;
	free(rd_bnode_remove_at(p, li));	/* drops the count for l at li */
	r->parent = NULL;
	if (rd_btree_node_drop(s, r)) {
		/* Could not queue r's disk space for freeing: leak it (fsck reclaims). */
		r->ptr.offset = 0;
		rd_btree_node_drop(s, r);
	}
	rd_btree_node_dirty(s, l);
	rd_btree_node_dirty(s, p);
	return p;
}

/*
 * After n shrank: merges it with a sibling while it is small, then walks up (the parent
 * lost a key). An only child first makes its tiny parent merge, then is retried, so no
 * empty node is left behind where the merges went up a level. A root left with a single
 * child hands over to it.
 */
static void maybe_merge(struct rd_store *s, struct rd_bnode *n)
{
	uint32_t cap = s->geo.btree_node_size - (uint32_t)sizeof(struct rd_btree_node);

	for (unsigned guard = 0; n && guard < 8 * RD_BTREE_MAX_DEPTH; guard++) {
		struct rd_bnode *p = n->parent, *a;

		if (!p) {
			collapse_root(s, n);
			return;
		}
		if (!is_small(n, cap))
			return;
		if (p->nr == 1) {
			/* The lowest ancestor of a chain of only children that has a sibling
			 * (every node of the chain holds one key: tiny) merges with it or
			 * borrows from it; then n is retried, one level of the chain nearer to
			 * having siblings. A chain up to the root collapses instead. */
			for (a = p; a->parent && a->parent->nr == 1; a = a->parent)
				;
			if (!a->parent) {
				collapse_root(s, a);
				return;
			}
			if (!merge_pair(s, a))
				return;
			continue;
		}
		n = merge_pair(s, n);
	}
}

/* ---- updates ------------------------------------------------------------------------- */

int rd_btree_insert_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bkey *k)
{
	struct rd_bnode *leaf;
	bool shrank = false, appended;
	uint32_t idx;
	int ret;

	ret = leaf_for(s, id, k->pos, &leaf);
	if (ret) {
		free(k);
		return ret;
	}
	idx = rd_bnode_lower_bound(leaf, k->pos);
	appended = idx == leaf->nr;
	if (idx < leaf->nr && bpos_eq(leaf->keys[idx]->pos, k->pos)) {
		struct rd_bkey *old = rd_bnode_replace_at(leaf, idx, k);

		shrank = old->val_len > k->val_len;
		free(old);
	} else {
		ret = rd_bnode_insert_at(leaf, idx, k, NULL);
		if (ret) {
			free(k);
			return ret;
		}
	}
	rd_btree_node_dirty(s, leaf);
	__atomic_add_fetch(&s->btree->version[id], 1, __ATOMIC_RELEASE);
	if (leaf->bytes > s->geo.btree_node_size)
		ret = split(s, leaf, appended);
	else if (shrank && !s->btree->replaying)
		maybe_merge(s, leaf);
	return ret;
}

int rd_btree_delete_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos)
{
	struct rd_bnode *leaf;
	uint32_t idx;
	int ret;

	ret = leaf_for(s, id, pos, &leaf);
	if (ret)
		return ret;
	idx = rd_bnode_lower_bound(leaf, pos);
	if (idx >= leaf->nr || !bpos_eq(leaf->keys[idx]->pos, pos))
		return 0;
	free(rd_bnode_remove_at(leaf, idx));
	rd_btree_node_dirty(s, leaf);
	__atomic_add_fetch(&s->btree->version[id], 1, __ATOMIC_RELEASE);
	if (!s->btree->replaying)
		maybe_merge(s, leaf);
	return 0;
}

/* ---- lookups ------------------------------------------------------------------------- */

static int check_id(struct rd_store *s, unsigned id)
{
	if (id >= RD_BTREE_NR)
		return -EINVAL;
	return s->btree->err;
}

int rd_btree_lookup(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos,
		    struct rd_bkey **out)
{
	struct rd_bnode *leaf;
	uint32_t idx;
	int ret;

	*out = NULL;
	pthread_mutex_lock(&s->index_lock);
	ret = check_id(s, id);
	if (!ret)
		ret = leaf_for(s, id, pos, &leaf);
	if (!ret) {
		idx = rd_bnode_lower_bound(leaf, pos);
		if (idx < leaf->nr && bpos_eq(leaf->keys[idx]->pos, pos)) {
			*out = rd_bkey_dup(leaf->keys[idx]);
			ret = *out ? 0 : -ENOMEM;
		} else {
			ret = -ENOENT;
		}
	}
	rd_btree_cache_shrink(s);
	pthread_mutex_unlock(&s->index_lock);
	return ret;
}

int rd_btree_peek_batch_locked(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos,
			       struct rd_bpos to, unsigned max, bool readahead, void **buf,
			       size_t *len)
{
	*buf = NULL;
	*len = 0;
	for (;;) {
		struct rd_bnode *leaf;
		uint32_t idx, end;
		size_t bytes = 0;
		uint8_t *p;
		int ret;

		if (rd_bpos_cmp(pos, to) > 0)
			return -ENOENT;
		ret = leaf_for_ra(s, id, pos, readahead, &leaf);
		if (ret)
			return ret;
		idx = rd_bnode_lower_bound(leaf, pos);
		for (end = idx; end < leaf->nr && end - idx < max &&
		     rd_bpos_cmp(leaf->keys[end]->pos, to) <= 0; end++)
			bytes += rd_bkey_bytes(leaf->keys[end]->val_len);
		if (end > idx) {
			p = malloc(bytes);
			if (!p)
				return -ENOMEM;
			*buf = p;
			*len = bytes;
			for (uint32_t i = idx; i < end; i++) {
				size_t kb = rd_bkey_bytes(leaf->keys[i]->val_len);

				memcpy(p, leaf->keys[i], sizeof(struct rd_bkey) +
				       leaf->keys[i]->val_len);
				p += kb;
			}
			return 0;
		}
		/* Nothing left in this leaf (or it is empty): on to the next one. */
		if (idx < leaf->nr || bpos_eq(leaf->max_key, RD_POS_MAX))
			return -ENOENT;
		pos = rd_bpos_successor(leaf->max_key);
	}
}

int rd_btree_peek(struct rd_store *s, enum rd_btree_id id, struct rd_bpos from,
		  struct rd_bpos to, struct rd_bkey **out)
{
	void *buf = NULL;
	size_t len;
	int ret;

	*out = NULL;
	pthread_mutex_lock(&s->index_lock);
	ret = check_id(s, id);
	if (!ret)
		ret = rd_btree_peek_batch_locked(s, id, from, to, 1, false, &buf, &len);
	rd_btree_cache_shrink(s);
	pthread_mutex_unlock(&s->index_lock);
	if (!ret)
		*out = buf;	/* one packed key is a plain rd_bkey allocation */
	return ret;
}

int rd_btree_peek_prev(struct rd_store *s, enum rd_btree_id id, struct rd_bpos from,
		       struct rd_bpos to, struct rd_bkey **out)
{
	struct rd_bpos pos = to;
	int ret;

	*out = NULL;
	pthread_mutex_lock(&s->index_lock);
	ret = check_id(s, id);
	while (!ret) {
		struct rd_bnode *leaf;
		uint32_t idx;

		if (rd_bpos_cmp(pos, from) < 0) {
			ret = -ENOENT;
			break;
		}
		ret = leaf_for(s, id, pos, &leaf);
		if (ret)
			break;
		/* The first key > pos, then one back. */
		idx = bpos_eq(pos, RD_POS_MAX) ? leaf->nr :
		      rd_bnode_lower_bound(leaf, rd_bpos_successor(pos));
		if (idx) {
			const struct rd_bkey *k = leaf->keys[idx - 1];

			if (rd_bpos_cmp(k->pos, from) < 0) {
				ret = -ENOENT;
			} else {
				*out = rd_bkey_dup(k);
				ret = *out ? 0 : -ENOMEM;
			}
			break;
		}
		if (bpos_eq(leaf->min_key, RD_POS_MIN)) {
			ret = -ENOENT;
			break;
		}
		pos = bpos_predecessor(leaf->min_key);
	}
	rd_btree_cache_shrink(s);
	pthread_mutex_unlock(&s->index_lock);
	return ret;
}

/* ---- statistics ---------------------------------------------------------------------- */

static void count_keys(const struct rd_bnode *n, uint64_t *keys)
{
	if (!n->level) {
		*keys += n->nr;
		return;
	}
	for (uint32_t i = 0; i < n->nr; i++)
		if (n->children[i])
			count_keys(n->children[i], keys);
}

void rd_btree_stats(struct rd_store *s, struct rd_btree_stats *st)
{
	struct rd_btree_state *b = s->btree;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->index_lock);
	for (unsigned id = 0; id < RD_BTREE_NR; id++) {
		const struct rd_btree_root *r = &b->roots[id];

		if (r->node) {
			if (r->node->level || r->node->nr)
				st->depth[id] = r->node->level + 1u;
			count_keys(r->node, &st->keys[id]);	/* cached leaves only */
		} else if (r->ptr.offset) {
			st->depth[id] = r->level + 1u;
		}
	}
	st->nodes_cached = b->nodes_cached;
	st->nodes_dirty = b->nodes_dirty;
	st->cache_bytes = b->nodes_cached * s->geo.btree_node_size;
	st->cache_limit = b->cache_limit;
	st->checkpoints = b->checkpoints;
	st->node_reads = b->node_reads;
	st->node_writes = b->node_writes;
	pthread_mutex_unlock(&s->index_lock);
}
