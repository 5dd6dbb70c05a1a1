/*
 * trans.c - transactions: queued updates, committed atomically through the journal.
 *
 * Owns: struct rd_trans (copies of the queued keys, deletes and allocator deltas) and the
 * commit sequence: checkpoint if the cache or the journal asks for one, let the space hooks
 * (the allocator's: rd_btree_space_ops) turn deltas into alloc keys, read every leaf the
 * updates touch, journal the whole run (RD_JREC_TXN then the records) into one entry, apply
 * it to the trees in order, and tell the hooks the seq.
 *
 * Must never: change a tree before the records are in the journal's open entry, or fail
 * half way through applying (every read that could fail happens before journaling; what
 * remains is out of memory, which makes the store refuse further commits).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree_internal.h"
#include "refdio/errors.h"
#include "journal.h"
#include "store.h"

struct trans_upd {
	uint8_t		id;
	struct rd_bpos	pos;
	struct rd_bkey	*k;	/* NULL: delete */
};

struct rd_trans {
	struct rd_store		*s;
	struct trans_upd	*upd;
	size_t			nr, cap;
	struct rd_alloc_delta	*deltas;
	size_t			nr_deltas, cap_deltas;
};

struct rd_trans *rd_trans_new(struct rd_store *s)
{
	struct rd_trans *t = calloc(1, sizeof(*t));

	if (t)
		t->s = s;
	return t;
}

void rd_trans_free(struct rd_trans *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nr; i++)
		free(t->upd[i].k);
	free(t->upd);
	free(t->deltas);
	free(t);
}

static int add_upd(struct rd_trans *t, enum rd_btree_id id, struct rd_bpos pos,
		   struct rd_bkey *k)
{
	assert((unsigned)id < RD_BTREE_NR);	/* checked by rd_trans_put/del */

	if (t->nr == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct trans_upd *u = realloc(t->upd, cap * sizeof(*u));

		if (!u)
			return -ENOMEM;
		t->upd = u;
		t->cap = cap;
	}
	t->upd[t->nr++] = (struct trans_upd){ .id = (uint8_t)id, .pos = pos, .k = k };
	return 0;
}

int rd_trans_put(struct rd_trans *t, enum rd_btree_id id, struct rd_bpos pos, uint8_t type,
		 const void *val, size_t val_len)
{
	struct rd_bkey *k;
	int ret;

	if ((unsigned)id >= RD_BTREE_NR || !type || val_len > rd_btree_max_val(t->s) ||
	    (val_len && !val))
		return -EINVAL;
	k = rd_bkey_new(pos, type, val, val_len);
	if (!k)
		return -ENOMEM;
	ret = add_upd(t, id, pos, k);
	if (ret)
		free(k);
	return ret;
}

int rd_trans_del(struct rd_trans *t, enum rd_btree_id id, struct rd_bpos pos)
{
	if ((unsigned)id >= RD_BTREE_NR)
		return -EINVAL;
	return add_upd(t, id, pos, NULL);
}

int rd_trans_add_delta(struct rd_trans *t, uint64_t bucket, int64_t sectors)
{
	if (t->nr_deltas == t->cap_deltas) {
		size_t cap = t->cap_deltas ? t->cap_deltas * 2 : 8;
		struct rd_alloc_delta *d = realloc(t->deltas, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		t->deltas = d;
		t->cap_deltas = cap;
	}
	t->deltas[t->nr_deltas++] = (struct rd_alloc_delta){ bucket, sectors };
	return 0;
}

size_t rd_trans_nr_deltas(const struct rd_trans *t)
{
	return t->nr_deltas;
}

const struct rd_alloc_delta *rd_trans_delta(const struct rd_trans *t, size_t i)
{
	return i < t->nr_deltas ? &t->deltas[i] : NULL;
}

bool rd_trans_empty(const struct rd_trans *t)
{
	return !t->nr && !t->nr_deltas;
}

/* ---- journal records ----------------------------------------------------------------- */

static size_t pad8(size_t x)
{
	return (x + 7) & ~(size_t)7;
}

static size_t upd_bytes(const struct trans_upd *u)
{
	if (u->k)
		return pad8(sizeof(struct rd_jrec) + sizeof(struct rd_bkey_disk) + u->k->val_len);
	return pad8(sizeof(struct rd_jrec) + sizeof(struct rd_bpos_disk));
}

static size_t trans_bytes(const struct rd_trans *t)
{
	size_t bytes = sizeof(struct rd_jrec);	/* the RD_JREC_TXN marker */

	for (size_t i = 0; i < t->nr; i++)
		bytes += upd_bytes(&t->upd[i]);
	return bytes;
}

/* Writes the marker and one record per update; padding zeroed. */
static void fill_records(void *dst, void *priv)
{
	const struct rd_trans *t = priv;
	uint8_t *p = dst;
	struct rd_jrec r = { .type = RD_JREC_TXN, .bytes = rd_le32_of(sizeof(r)) };

	memcpy(p, &r, sizeof(r));
	p += sizeof(r);
	for (size_t i = 0; i < t->nr; i++) {
		const struct trans_upd *u = &t->upd[i];
		size_t len = upd_bytes(u);

		memset(p, 0, len);
		r = (struct rd_jrec){ .btree_id = u->id };
		if (u->k) {
			struct rd_bkey_disk d = {
				.pos = rd_bpos_to_disk(u->pos),
				.type = u->k->type,
				.val_len = rd_le16_of(u->k->val_len),
			};

			assert(u->k->val_len <= rd_btree_max_val(t->s));	/* fits le16 */
			r.type = RD_JREC_KEY;
			r.bytes = rd_le32_of((uint32_t)(sizeof(r) + sizeof(d) + u->k->val_len));
			memcpy(p + sizeof(r), &d, sizeof(d));
			memcpy(p + sizeof(r) + sizeof(d), u->k->val, u->k->val_len);
		} else {
			struct rd_bpos_disk d = rd_bpos_to_disk(u->pos);

			r.type = RD_JREC_DELETE;
			r.bytes = rd_le32_of((uint32_t)(sizeof(r) + sizeof(d)));
			memcpy(p + sizeof(r), &d, sizeof(d));
		}
		memcpy(p, &r, sizeof(r));
		p += len;
	}
}

/* ---- commit -------------------------------------------------------------------------- */

int rd_trans_commit_locked(struct rd_trans *t, uint64_t *seqp, bool may_checkpoint)
{
	struct rd_store *s = t->s;
	struct rd_journal *j = s->journal;
	const struct rd_btree_space_ops *space = s->btree->space;
	uint64_t seq = 0;
	size_t est;
	int ret;

	if (s->read_only)
		return -EROFS;
	ret = s->btree->err;
	if (!ret)
		ret = rd_journal_error(j);
	if (ret)
		return ret;
	if (rd_trans_empty(t)) {
		seq = rd_journal_seq(j);
		goto done;
	}

	est = trans_bytes(t) + t->nr_deltas * (space ? space->delta_journal_bytes : 0);
	if (est > rd_journal_max_records(j))
		return -E2BIG;
	/* Checkpoint first when the cache is half dirty or the journal half full: after it
	 * the ring is nearly empty, so the append below finds room. */
	if (may_checkpoint &&
	    (rd_btree_want_checkpoint(s) || rd_journal_want_checkpoint(j, est))) {
		ret = rd_btree_checkpoint_locked(s);
		if (ret)
			return ret;
	}

	if (space) {
		ret = space->trans_prepare(s, t);
		if (ret)
			return ret;
	} else if (t->nr_deltas) {
		return -EINVAL;	/* accounting before the allocator is up */
	}
	/* Every leaf the updates land in is read now: applying cannot fail on I/O. */
	for (size_t i = 0; i < t->nr; i++) {
		ret = rd_btree_prefetch_locked(s, t->upd[i].id, t->upd[i].pos);
		if (ret)
			return ret;
	}

	/* No checkpoint from here on: the allocator already turned t's deltas into keys,
	 * and a checkpoint commits allocator keys of its own. The check above left room. */
	ret = rd_journal_append(j, trans_bytes(t), (uint32_t)t->nr + 1, fill_records, t, &seq);
	if (ret)
		return ret;

	/* Journaled: from here on the trees must follow. */
	for (size_t i = 0; i < t->nr; i++) {
		struct trans_upd *u = &t->upd[i];

		if (u->k) {
			ret = rd_btree_insert_locked(s, u->id, u->k);
			u->k = NULL;	/* owned by the tree (or freed) now */
		} else {
			ret = rd_btree_delete_locked(s, u->id, u->pos);
		}
		if (ret) {
			/* The tree no longer matches the journal: refuse everything from now
			 * on; replay at the next open rebuilds the right state. */
			s->btree->err = ret;
			return ret;
		}
	}
	if (space)
		space->trans_done(s, t, seq);
done:
	if (seqp)
		*seqp = seq;
	return 0;
}

int rd_trans_delete_range(struct rd_store *s, enum rd_btree_id id, struct rd_bpos from,
			  struct rd_bpos to, unsigned batch)
{
	for (;;) {
		struct rd_btree_iter it;
		const struct rd_bkey *k;
		struct rd_trans *t = rd_trans_new(s);
		unsigned n = 0;
		int ret;

		if (!t)
			return -ENOMEM;
		rd_btree_iter_init(&it, s, id, from, to);
		while (n < batch && !(ret = rd_btree_iter_next(&it, &k))) {
			ret = rd_trans_del(t, id, k->pos);
			if (ret)
				break;
			n++;
		}
		rd_btree_iter_exit(&it);
		if (ret && ret != -ENOENT) {
			rd_trans_free(t);
			return ret;
		}
		if (!n) {
			rd_trans_free(t);
			return 0;
		}
		ret = rd_trans_commit(t, NULL);
		if (ret)
			return ret;
	}
}

int rd_trans_commit(struct rd_trans *t, uint64_t *seq)
{
	struct rd_store *s = t->s;
	int ret;

	pthread_mutex_lock(&s->index_lock);
	ret = rd_trans_commit_locked(t, seq, true);
	rd_btree_cache_shrink(s);
	pthread_mutex_unlock(&s->index_lock);
	rd_trans_free(t);
	return ret;
}
