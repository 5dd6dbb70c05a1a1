/*
 * btree_iter.c - ordered iteration over a range of keys.
 *
 * Owns: struct rd_btree_iter's private batch. Each refill copies up to ITER_BATCH keys of
 * one leaf under the index lock, together with the tree's version; keys are then handed
 * out from the copy while the tree's version is unchanged. A commit in between bumps the
 * version and the next call refills from the iterator's position, so every call returns
 * the next key as the tree is at that moment.
 *
 * Must never: hold the index lock between calls, or return a pointer into a node.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree_internal.h"
#include "store.h"

#define ITER_BATCH	64

void rd_btree_iter_init(struct rd_btree_iter *it, struct rd_store *s, enum rd_btree_id id,
			struct rd_bpos from, struct rd_bpos to)
{
	memset(it, 0, sizeof(*it));
	it->s = s;
	it->id = id;
	it->pos = from;
	it->to = to;
	it->done = rd_bpos_cmp(from, to) > 0 || (unsigned)id >= RD_BTREE_NR;
}

static int refill(struct rd_btree_iter *it)
{
	struct rd_store *s = it->s;
	int ret;

	free(it->batch);
	it->batch = NULL;
	it->batch_len = it->batch_pos = 0;
	pthread_mutex_lock(&s->index_lock);
	ret = s->btree->err;
	if (!ret) {
		it->version = s->btree->version[it->id];
		ret = rd_btree_peek_batch_locked(s, it->id, it->pos, it->to, ITER_BATCH, true,
						 &it->batch, &it->batch_len);
	}
	rd_btree_cache_shrink(s);
	pthread_mutex_unlock(&s->index_lock);
	return ret;
}

int rd_btree_iter_next(struct rd_btree_iter *it, const struct rd_bkey **out)
{
	const struct rd_bkey *k;
	size_t kb;
	int ret;

	*out = NULL;
	if (it->done)
		return -ENOENT;
	if (it->batch_pos >= it->batch_len ||
	    it->version != __atomic_load_n(&it->s->btree->version[it->id], __ATOMIC_ACQUIRE)) {
		ret = refill(it);
		if (ret) {
			if (ret == -ENOENT)
				it->done = true;
			return ret;
		}
	}
	k = (const struct rd_bkey *)((const uint8_t *)it->batch + it->batch_pos);
	assert(rd_bpos_cmp(k->pos, it->pos) >= 0 && rd_bpos_cmp(k->pos, it->to) <= 0);
	kb = rd_bkey_bytes(k->val_len);
	it->batch_pos += kb;
	assert(it->batch_pos <= it->batch_len);
	if (kb > it->key_cap) {
		struct rd_bkey *nk = realloc(it->key, kb);

		if (!nk)
			return -ENOMEM;
		it->key = nk;
		it->key_cap = kb;
	}
	memcpy(it->key, k, sizeof(*k) + k->val_len);
	if (!rd_bpos_cmp(k->pos, it->to) || !rd_bpos_cmp(k->pos, RD_POS_MAX))
		it->done = true;
	else
		it->pos = rd_bpos_successor(k->pos);
	*out = it->key;
	return 0;
}

void rd_btree_iter_exit(struct rd_btree_iter *it)
{
	free(it->batch);
	free(it->key);
	it->batch = NULL;
	it->key = NULL;
	it->batch_len = it->batch_pos = it->key_cap = 0;
	it->done = true;
}
