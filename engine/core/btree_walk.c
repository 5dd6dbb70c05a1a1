/*
 * btree_walk.c - visiting every node of a tree (fsck, `refdio list --nodes`, and the
 * allocator at open, which learns from it which buckets hold nodes).
 *
 * Owns: rd_btree_walk. Nodes already in memory are reported as they are (a dirty node with
 * the on-disk location of its previous version, which stays live until the next checkpoint
 * frees it; a node never written with offset 0). Nodes not in memory are read into
 * temporaries that are freed right after, so a walk of a large tree does not flush the
 * cache.
 *
 * Must never: stop at a bad node (report it with error set, skip its subtree, go on), or
 * let the callback see a node after it was freed.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree_internal.h"
#include "refdio/errors.h"
#include "store.h"

struct walk {
	struct rd_store	*s;
	bool		leaves;
	int		(*cb)(void *priv, const struct rd_node_info *ni);
	void		*priv;
};

static int report(struct walk *w, uint8_t id, uint8_t level, struct rd_bptr ptr,
		  const struct rd_bnode *n, struct rd_bpos min, struct rd_bpos max, int error)
{
	struct rd_node_info ni = {
		.id = id, .level = level, .offset = ptr.offset, .gen = ptr.gen, .seq = ptr.seq,
		.nr_keys = n ? n->nr : 0, .bytes = n ? n->bytes : 0,
		.min_key = min, .max_key = max, .error = error,
	};

	return w->cb(w->priv, &ni);
}

static int walk_node(struct walk *w, struct rd_bnode *n)
{
	int ret = report(w, n->id, n->level, n->ptr, n, n->min_key, n->max_key, 0);

	for (uint32_t i = 0; !ret && n->level && i < n->nr; i++) {
		struct rd_bptr ptr = rd_bptr_from_disk(n->keys[i]->val);
		struct rd_bnode_expect e = {
			.id = n->id, .level = (uint8_t)(n->level - 1), .seq = ptr.seq,
			.min_key = i ? rd_bpos_successor(n->keys[i - 1]->pos) : n->min_key,
			.max_key = n->keys[i]->pos,
		};
		struct rd_bnode *c = n->children[i], *tmp = NULL;
		int err;

		assert(!c || (c->level == e.level && c->parent == n));

		if (!c && n->level == 1 && !w->leaves) {
			ret = report(w, e.id, 0, ptr, NULL, e.min_key, e.max_key, 0);
			continue;
		}
		if (!c) {
			err = rd_btree_node_read(w->s, ptr, &e, &tmp);
			if (err) {
				ret = report(w, e.id, e.level, ptr, NULL, e.min_key, e.max_key, err);
				continue;
			}
			c = tmp;
		}
		ret = walk_node(w, c);
		rd_bnode_free(tmp);	/* a temporary's children are temporaries, already freed */
	}
	return ret;
}

int rd_btree_walk(struct rd_store *s, enum rd_btree_id id, bool leaves,
		  int (*cb)(void *priv, const struct rd_node_info *ni), void *priv)
{
	struct walk w = { .s = s, .leaves = leaves, .cb = cb, .priv = priv };
	struct rd_bnode *root;
	int ret;

	if ((unsigned)id >= RD_BTREE_NR)
		return -EINVAL;
	pthread_mutex_lock(&s->index_lock);
	ret = rd_btree_root_node(s, id, &root);
	if (ret) {
		const struct rd_btree_root *r = &s->btree->roots[id];

		ret = report(&w, (uint8_t)id, r->level, r->ptr, NULL, RD_POS_MIN, RD_POS_MAX, ret);
	} else if (root->level || root->nr || root->ptr.offset) {
		ret = walk_node(&w, root);	/* an empty tree has no node to report */
	}
	rd_btree_cache_shrink(s);
	pthread_mutex_unlock(&s->index_lock);
	return ret;
}
