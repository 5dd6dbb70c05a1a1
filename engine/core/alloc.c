/*
 * alloc.c - the bucket array: loading it at open, accounting through transactions,
 * reservations and space reports.
 *
 * Owns: struct rd_alloc (see alloc_priv.h), the alloc-tree keys' contents (built here, in
 * rd_alloc_trans_prepare and rd_alloc_btree_prepare, and nowhere else), the free-bucket
 * heaps' membership, and the space counters. Write points live in alloc_wp.c.
 *
 * Must never: take the index lock (callers that need it already hold it), call out of the
 * allocator (journal, trees, rd_trans_put) with the alloc lock held, or hand out a bucket
 * that breaks the reuse rule in alloc_free.h.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_priv.h"
#include "btree.h"
#include "refdio/errors.h"
#include "journal.h"
#include "store.h"

void alloc_log(const char *fmt, ...)
{
	va_list ap;

	fputs("refdio: alloc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- bucket state helpers (alloc lock held) ------------------------------------------ */

void alloc_settle(struct rd_alloc *a, uint64_t idx, enum alloc_class old)
{
	struct rd_bucket *b = &a->b[idx];
	enum alloc_class now = alloc_class_of(b);
	bool ok;

	assert(idx < a->nbuckets);
	assert(now == old || a->nr_class[old] > 0);

	if (now != old) {
		a->nr_class[old]--;
		a->nr_class[now]++;
	}
	if (now != ALLOC_CLASS_NONE || !alloc_allocatable(a, idx) ||
	    a->where[idx] != ALLOC_IN_NONE)
		return;
	/* Empty and nobody holds it: reusable now, or once the entry that emptied it is
	 * durable. A bucket sits in at most one heap, so the heaps (sized nbuckets) have room. */
	if (b->freed_seq <= a->durable_seen) {
		ok = rd_bheap_push(&a->ready, idx, idx);
		a->where[idx] = ALLOC_IN_READY;
	} else {
		ok = rd_bheap_push(&a->pending, b->freed_seq, idx);
		a->where[idx] = ALLOC_IN_PENDING;
		if (b->freed_seq > a->pending_max)
			a->pending_max = b->freed_seq;
	}
	if (!ok) {
		a->where[idx] = ALLOC_IN_NONE;
		alloc_log("free-bucket heap full at bucket %" PRIu64 " (bug)", idx);
	}
}

void alloc_migrate(struct rd_alloc *a, uint64_t durable)
{
	struct rd_bheap_ent e;

	if (durable > a->durable_seen)
		a->durable_seen = durable;
	while (rd_bheap_peek(&a->pending, &e) && e.key <= a->durable_seen) {
		rd_bheap_pop(&a->pending, &e);
		assert(a->where[e.bucket] == ALLOC_IN_PENDING);
		a->where[e.bucket] = ALLOC_IN_READY;
		rd_bheap_push(&a->ready, e.bucket, e.bucket);
	}
	if (!a->pending.nr)
		a->pending_max = 0;
}

int alloc_gd_reserve(struct rd_alloc *a, size_t more)
{
	size_t cap;
	uint64_t *n;

	if (a->gd_nr + more <= a->gd_cap)
		return 0;
	cap = a->gd_cap ? a->gd_cap * 2 : 16;
	while (cap < a->gd_nr + more)
		cap *= 2;
	n = realloc(a->gd, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	a->gd = n;
	a->gd_cap = cap;
	return 0;
}

void alloc_gd_add(struct rd_alloc *a, uint64_t idx)
{
	if (a->b[idx].gen_dirty)
		return;
	assert(a->gd_nr < a->gd_cap);	/* the caller reserved room (alloc_gd_reserve) */
	a->b[idx].gen_dirty = true;
	a->gd[a->gd_nr++] = idx;
}

static void alloc_gd_clear(struct rd_alloc *a, uint64_t idx)
{
	size_t i;

	if (!a->b[idx].gen_dirty)
		return;
	a->b[idx].gen_dirty = false;
	for (i = 0; i < a->gd_nr; i++) {
		if (a->gd[i] == idx) {
			a->gd[i] = a->gd[--a->gd_nr];
			return;
		}
	}
}

void alloc_put_ref(struct rd_alloc *a, uint64_t idx)
{
	struct rd_bucket *b = &a->b[idx];
	enum alloc_class old = alloc_class_of(b);

	if (!b->open_refs) {
		alloc_log("bucket %" PRIu64 ": open reference dropped twice (bug)", idx);
		return;
	}
	b->open_refs--;
	alloc_settle(a, idx, old);
}

/* ---- init / exit ---------------------------------------------------------------------- */

static int alloc_load_keys(struct rd_store *s, struct rd_alloc *a)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_alloc_v v;
	int ret;

	rd_btree_iter_init(&it, s, RD_BTREE_ALLOC, RD_POS_MIN, RD_POS_MAX);
	while ((ret = rd_btree_iter_next(&it, &k)) == 0) {
		uint64_t idx = k->pos.offset;
		uint32_t gen, dirty;
		uint8_t type;

		if (k->type != RD_KEY_ALLOC || k->pos.inode || k->pos.snapshot ||
		    idx >= a->nbuckets || k->val_len < sizeof(v)) {
			alloc_log("alloc key %" PRIu64 ":%" PRIu64 ":%u (type %u, %u bytes) invalid "
				  "for %" PRIu64 " buckets", k->pos.inode, k->pos.offset,
				  k->pos.snapshot, k->type, k->val_len, a->nbuckets);
			ret = -EUCLEAN;
			break;
		}
		memcpy(&v, k->val, sizeof(v));
		gen = rd_le32_get(v.gen);
		type = v.data_type;
		dirty = rd_le32_get(v.dirty_sectors);
		if (type > RD_DATA_USER || dirty > a->bucket_sectors ||
		    (dirty && (type != RD_DATA_USER || !alloc_allocatable(a, idx)))) {
			alloc_log("bucket %" PRIu64 ": alloc key says type %u with %u dirty sectors "
				  "(bucket holds %u, allocatable %d)", idx, type, dirty,
				  a->bucket_sectors, alloc_allocatable(a, idx));
			ret = -EUCLEAN;
			break;
		}
		a->b[idx].gen = gen;
		a->b[idx].dirty_sectors = dirty;
		if (alloc_allocatable(a, idx))
			a->b[idx].data_type = type;
	}
	if (ret == -ENOENT)
		ret = 0;
	rd_btree_iter_exit(&it);
	return ret;
}

struct init_walk {
	struct rd_alloc	*a;
	bool		read_only;
	int		err;		/* first unreadable node (read-write opens fail on it) */
};

/* One node of a tree walk at open: its space is live b-tree space. */
static int init_node_cb(void *priv, const struct rd_node_info *ni)
{
	struct init_walk *w = priv;
	struct rd_alloc *a = w->a;
	const char *tree = rd_btree_name(ni->id);
	struct rd_bucket *b;
	uint64_t idx, in;

	if (!tree)
		tree = "?";
	if (ni->error) {
		alloc_log("%s node at %" PRIu64 " (level %u) unreadable: %s; the space of the "
			  "nodes below it cannot be counted", tree, ni->offset, ni->level,
			  rd_strerror(ni->error));
		if (!w->read_only && !w->err)
			w->err = ni->error;
	}
	if (!ni->offset)
		return 0;
	idx = ni->offset / a->bucket_size;
	in = ni->offset % a->bucket_size;
	if (idx >= a->nbuckets || !alloc_allocatable(a, idx) ||
	    in % ((uint64_t)a->block_sectors << RD_SECTOR_SHIFT) ||
	    in + ((uint64_t)a->node_sectors << RD_SECTOR_SHIFT) > a->bucket_size) {
		alloc_log("%s node at %" PRIu64 " (level %u) lies outside allocatable space",
			  tree, ni->offset, ni->level);
		return -EUCLEAN;
	}
	b = &a->b[idx];
	if (ni->gen != b->gen) {
		alloc_log("stale pointer: %s node at %" PRIu64 " (level %u) carries gen %u but "
			  "bucket %" PRIu64 " is at gen %u", tree, ni->offset, ni->level, ni->gen,
			  idx, b->gen);
		return -RD_ERR_STALE_PTR;
	}
	if (b->dirty_sectors ||
	    b->btree_sectors + a->node_sectors > a->bucket_sectors) {
		alloc_log("bucket %" PRIu64 ": %s node at %" PRIu64 " overlaps %u user sectors "
			  "and %u node sectors", idx, tree, ni->offset, b->dirty_sectors,
			  b->btree_sectors);
		return -EUCLEAN;
	}
	b->data_type = RD_DATA_BTREE;
	b->btree_sectors += a->node_sectors;
	return 0;
}

static int alloc_geometry(const struct rd_geometry *g, struct rd_alloc *a)
{
	if (!g->bucket_size || !g->block_size || !g->btree_node_size ||
	    g->bucket_size % g->block_size || g->block_size % RD_SECTOR_SIZE ||
	    g->btree_node_size % g->block_size || g->btree_node_size > g->bucket_size ||
	    g->first_bucket > g->last_bucket || g->last_bucket > g->nbuckets)
		return -EINVAL;
	a->nbuckets = g->nbuckets;
	a->first = g->first_bucket;
	a->last = g->last_bucket;
	a->bucket_size = g->bucket_size;
	a->bucket_sectors = g->bucket_size >> RD_SECTOR_SHIFT;
	a->block_sectors = g->block_size >> RD_SECTOR_SHIFT;
	a->node_sectors = g->btree_node_size >> RD_SECTOR_SHIFT;
	return 0;
}

static void alloc_free_all(struct rd_alloc *a)
{
	unsigned i;

	if (!a)
		return;
	for (i = 0; i < RD_WP_NR; i++)
		free(a->wp[i].bkts);
	rd_bheap_free(&a->ready);
	rd_bheap_free(&a->pending);
	free(a->b);
	free(a->where);
	free(a->gd);
	free(a->prep);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/*
 * Buckets user data may not take, kept for b-tree nodes: a checkpoint writes every dirty
 * node to fresh space before the old copies free up, so a device filled to the last
 * bucket by user data could never checkpoint (or close cleanly) again.
 */
/* Buckets user data may never take: 1/32 of the space, and never less than what a
 * checkpoint of RD_ALLOC_MIN_CKPT_NODES nodes needs (the b-trees checkpoint before their
 * dirty nodes outgrow the room left, see rd_alloc_btree_room), within a quarter. */
#define RD_ALLOC_MIN_CKPT_NODES	48

static uint64_t alloc_meta_reserve(uint64_t usable, uint64_t nodes_per_bucket)
{
	uint64_t r = usable / 32;
	uint64_t ckpt = (RD_ALLOC_MIN_CKPT_NODES + nodes_per_bucket - 1) / nodes_per_bucket;

	if (r < ckpt)
		r = ckpt;
	if (r < 2)
		r = 2;
	if (r > usable / 4)
		r = usable / 4;
	return r;
}

/* What the b-trees call instead of the allocator (btree.h). A commit's journal room: at
 * most two alloc keys per delta (the key and a generation change). */
static const struct rd_btree_space_ops alloc_space_ops = {
	.trans_prepare	= rd_alloc_trans_prepare,
	.trans_done	= rd_alloc_trans_done,
	.delta_journal_bytes = 2 * ((sizeof(struct rd_jrec) + sizeof(struct rd_bkey_disk) +
				     sizeof(struct rd_alloc_v) + 7) & ~(size_t)7),
	.node_prepare	= rd_alloc_btree_prepare,
	.node_alloc	= rd_alloc_btree_node,
	.node_free	= rd_alloc_btree_node_free,
	.node_room	= rd_alloc_btree_room,
	.ptr_stale	= rd_alloc_ptr_stale,
};

int rd_alloc_init(struct rd_store *s)
{
	const struct rd_geometry *g = &s->geo;
	struct init_walk w = { .read_only = s->read_only };
	struct rd_alloc *a;
	uint64_t i;
	unsigned id;
	int ret;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	ret = pthread_mutex_init(&a->lock, NULL);
	if (ret) {
		free(a);
		return -ret;
	}
	ret = alloc_geometry(g, a);
	if (ret) {
		alloc_log("geometry unusable (bucket %u, block %u, node %u, buckets %" PRIu64 ")",
			  g->bucket_size, g->block_size, g->btree_node_size, g->nbuckets);
		goto err;
	}
	ret = -ENOMEM;
	a->b = calloc(a->nbuckets ? a->nbuckets : 1, sizeof(*a->b));
	a->where = calloc(a->nbuckets ? a->nbuckets : 1, 1);
	if (!a->b || !a->where || rd_bheap_init(&a->ready, a->nbuckets) ||
	    rd_bheap_init(&a->pending, a->nbuckets))
		goto err;

	/* Regions the allocator never hands out. */
	for (i = 0; i < a->nbuckets; i++) {
		if (alloc_allocatable(a, i))
			continue;
		a->b[i].data_type = i >= g->journal_start &&
				    i - g->journal_start < g->journal_buckets ?
				    RD_DATA_JOURNAL : RD_DATA_SB;
	}

	ret = alloc_load_keys(s, a);
	if (ret) {
		alloc_log("loading the alloc tree failed: %s", rd_strerror(ret));
		goto err;
	}

	/* Published before the walk so that node reads can check generations. */
	s->alloc = a;
	w.a = a;
	for (id = 0; id < RD_BTREE_NR; id++) {
		ret = rd_btree_walk(s, id, false, init_node_cb, &w);
		if (!ret)
			ret = w.err;
		if (ret) {
			alloc_log("walking the %s tree failed: %s", rd_btree_name(id),
				  rd_strerror(ret));
			s->alloc = NULL;
			goto err;
		}
	}

	a->meta_reserve = alloc_meta_reserve(a->last - a->first,
					     a->bucket_sectors / a->node_sectors);
	a->nr_class[ALLOC_CLASS_NONE] = a->nbuckets;
	for (i = 0; i < a->nbuckets; i++) {
		a->user_sectors += a->b[i].dirty_sectors;
		a->btree_sectors += a->b[i].btree_sectors;
		/* Empty buckets are free at once: freed_seq 0 is durable. */
		alloc_settle(a, i, ALLOC_CLASS_NONE);
	}
	rd_btree_set_space(s, &alloc_space_ops);
	return 0;
err:
	alloc_free_all(a);
	return ret;
}

void rd_alloc_exit(struct rd_store *s)
{
	if (s->alloc)
		rd_btree_set_space(s, NULL);
	alloc_free_all(s->alloc);
	s->alloc = NULL;
}

/* ---- lookups -------------------------------------------------------------------------- */

uint64_t rd_alloc_bucket_of(const struct rd_store *s, uint64_t off)
{
	return off / s->geo.bucket_size;
}

bool rd_alloc_ptr_stale(const struct rd_store *s, uint64_t offset, uint32_t gen)
{
	const struct rd_alloc *a = s->alloc;
	uint64_t idx;

	/* Before the bucket array exists (journal replay) nothing can be judged stale. */
	if (!a)
		return false;
	idx = offset / a->bucket_size;
	if (idx >= a->nbuckets)
		return true;
	/* gen only changes under the alloc lock, by an atomic store (alloc_wp.c). */
	return __atomic_load_n(&a->b[idx].gen, __ATOMIC_ACQUIRE) != gen;
}

int rd_alloc_bucket(struct rd_store *s, uint64_t b, struct rd_bucket *out)
{
	struct rd_alloc *a = s->alloc;

	if (!a)
		return -EINVAL;
	if (b >= a->nbuckets)
		return -ERANGE;
	pthread_mutex_lock(&a->lock);
	*out = a->b[b];
	pthread_mutex_unlock(&a->lock);
	return 0;
}

int rd_alloc_fsck_hold(struct rd_store *s, uint64_t idx)
{
	struct rd_alloc *a = s->alloc;
	struct rd_bucket *b;
	enum alloc_class old;
	int ret = 0;

	if (!a)
		return -EINVAL;
	if (idx >= a->nbuckets)
		return -ERANGE;
	pthread_mutex_lock(&a->lock);
	b = &a->b[idx];
	if (!alloc_allocatable(a, idx) || b->btree_sectors ||
	    (b->open_refs && b->data_type != RD_DATA_USER)) {
		ret = -EBUSY;
		goto unlock;
	}
	old = alloc_class_of(b);
	/* Out of the free structure first: a held bucket must never be opened for reuse
	 * (that would bump its generation under the extents just found in it). */
	if (a->where[idx] == ALLOC_IN_READY)
		rd_bheap_remove(&a->ready, idx);
	else if (a->where[idx] == ALLOC_IN_PENDING)
		rd_bheap_remove(&a->pending, idx);
	a->where[idx] = ALLOC_IN_NONE;
	b->data_type = RD_DATA_USER;
	b->open_refs++;
	alloc_settle(a, idx, old);
unlock:
	pthread_mutex_unlock(&a->lock);
	return ret;
}

void rd_alloc_fsck_release(struct rd_store *s, uint64_t idx)
{
	struct rd_alloc *a = s->alloc;

	if (!a || idx >= a->nbuckets)
		return;
	pthread_mutex_lock(&a->lock);
	alloc_put_ref(a, idx);
	pthread_mutex_unlock(&a->lock);
}

/* ---- accounting through transactions -------------------------------------------------- */

int rd_alloc_account(struct rd_trans *t, const struct rd_store *s, uint64_t off,
		     int64_t sectors)
{
	uint64_t bs = s->geo.bucket_size;
	uint64_t mag = sectors < 0 ? -(uint64_t)sectors : (uint64_t)sectors;
	uint64_t idx = off / bs;

	if (!sectors)
		return 0;
	/* An extent never crosses a bucket boundary: spans come from one bucket. */
	if (idx >= s->geo.nbuckets || off % RD_SECTOR_SIZE ||
	    mag > (bs - off % bs) >> RD_SECTOR_SHIFT)
		return -EINVAL;
	return rd_trans_add_delta(t, idx, sectors);
}

static int delta_cmp(const void *x, const void *y)
{
	const struct rd_alloc_delta *a = x, *b = y;

	return a->bucket < b->bucket ? -1 : a->bucket > b->bucket;
}

/* t's deltas summed per bucket, sorted by bucket. *out is malloc'd (NULL if none). */
static int collect_deltas(const struct rd_trans *t, struct rd_alloc_delta **out, size_t *nr)
{
	size_t n = rd_trans_nr_deltas(t), i, j = 0;
	struct rd_alloc_delta *d;

	*out = NULL;
	*nr = 0;
	if (!n)
		return 0;
	d = malloc(n * sizeof(*d));
	if (!d)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		d[i] = *rd_trans_delta(t, i);
	qsort(d, n, sizeof(*d), delta_cmp);
	for (i = 0; i < n; i++) {
		if (j && d[j - 1].bucket == d[i].bucket)
			d[j - 1].sectors += d[i].sectors;
		else
			d[j++] = d[i];
	}
	*out = d;
	*nr = j;
	return 0;
}

static int prep_reserve(struct rd_alloc *a, size_t more)
{
	struct alloc_prep *n;
	size_t cap;

	if (a->prep_nr + more <= a->prep_cap)
		return 0;
	cap = a->prep_cap ? a->prep_cap * 2 : 16;
	while (cap < a->prep_nr + more)
		cap *= 2;
	n = realloc(a->prep, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	a->prep = n;
	a->prep_cap = cap;
	return 0;
}

/* Starts (or continues) the list of alloc keys queued into t. Alloc lock held. */
int alloc_prep_begin(struct rd_alloc *a, const struct rd_trans *t, size_t more)
{
	if (a->prep_t != t) {
		a->prep_t = t;
		a->prep_nr = 0;
	}
	return prep_reserve(a, more);
}

bool alloc_prep_has(const struct rd_alloc *a, size_t upto, uint64_t bucket, uint32_t gen)
{
	size_t i;

	for (i = 0; i < upto; i++)
		if (a->prep[i].bucket == bucket && a->prep[i].gen == gen)
			return true;
	return false;
}

/* Queues the alloc keys prep[from, prep_nr) into t (alloc lock NOT held; index lock is). */
int alloc_prep_put(struct rd_alloc *a, struct rd_trans *t, size_t from)
{
	size_t i;
	int ret;

	for (i = from; i < a->prep_nr; i++) {
		const struct alloc_prep *p = &a->prep[i];
		struct rd_alloc_v v;

		memset(&v, 0, sizeof(v));
		v.gen = rd_le32_of(p->gen);
		v.data_type = p->type;
		v.dirty_sectors = rd_le32_of(p->dirty);
		ret = rd_trans_put(t, RD_BTREE_ALLOC, RD_POS(0, p->bucket), RD_KEY_ALLOC,
				   &v, sizeof(v));
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Queues up to budget gen_dirty buckets not yet in prep[0, upto) nor among the deltas
 * (alloc lock held, room made). Not needed for safety (a bucket's new gen always travels
 * with the first delta or node that uses it); it only gets new generations on disk sooner.
 */
static void prep_add_gen_dirty(struct rd_alloc *a, size_t upto, size_t budget,
			       const struct rd_alloc_delta *d, size_t nd)
{
	size_t i;

	for (i = 0; i < a->gd_nr && budget; i++) {
		uint64_t idx = a->gd[i];
		const struct rd_bucket *b = &a->b[idx];
		struct rd_alloc_delta key = { .bucket = idx };

		if (nd && bsearch(&key, d, nd, sizeof(*d), delta_cmp))
			continue;	/* queued with its deltas */
		if (alloc_prep_has(a, upto, idx, b->gen))
			continue;	/* queued by rd_alloc_btree_prepare */
		a->prep[a->prep_nr++] = (struct alloc_prep){
			.bucket = idx, .gen = b->gen, .dirty = b->dirty_sectors,
			.type = b->data_type, .delta = false,
		};
		budget--;
	}
}

int rd_alloc_trans_prepare(struct rd_store *s, struct rd_trans *t)
{
	struct rd_alloc *a = s->alloc;
	struct rd_alloc_delta *d = NULL;
	size_t nd = 0, i, start = 0;
	int ret;

	if (!a)
		return rd_trans_nr_deltas(t) ? -EINVAL : 0;
	ret = collect_deltas(t, &d, &nd);
	if (ret)
		return ret;

	pthread_mutex_lock(&a->lock);
	ret = alloc_prep_begin(a, t, nd + a->gd_nr);
	if (ret)
		goto unlock;
	start = a->prep_nr;
	for (i = 0; i < nd; i++) {
		struct rd_bucket *b;
		int64_t now;

		if (d[i].bucket >= a->nbuckets) {
			alloc_log("accounting for bucket %" PRIu64 " beyond the device", d[i].bucket);
			ret = -EUCLEAN;
			goto unlock;
		}
		b = &a->b[d[i].bucket];
		if (!d[i].sectors && !b->gen_dirty)
			continue;
		now = (int64_t)b->dirty_sectors + d[i].sectors;
		/*
		 * Accounting must stay within [0, bucket size], land on user-data buckets only,
		 * and never add to a bucket that is empty and unheld (it could be reused under
		 * the extent: the caller dropped its span before committing).
		 */
		if (now < 0 || now > a->bucket_sectors ||
		    (d[i].sectors && b->data_type != RD_DATA_USER) ||
		    (d[i].sectors > 0 && !b->dirty_sectors && !b->open_refs)) {
			alloc_log("bucket %" PRIu64 " (type %u, %u dirty, %u open): accounting "
				  "%+" PRId64 " sectors is inconsistent", d[i].bucket, b->data_type,
				  b->dirty_sectors, b->open_refs, d[i].sectors);
			ret = -EUCLEAN;
			goto unlock;
		}
		a->prep[a->prep_nr++] = (struct alloc_prep){
			.bucket = d[i].bucket, .gen = b->gen, .dirty = (uint32_t)now,
			.type = RD_DATA_USER, .delta = true,
		};
	}
	/* Commits size their journal room for at most two alloc keys per delta. */
	prep_add_gen_dirty(a, start, 2 * rd_trans_nr_deltas(t) - (a->prep_nr - start), d, nd);
unlock:
	if (ret)
		a->prep_nr = start;
	pthread_mutex_unlock(&a->lock);
	free(d);
	if (!ret)
		ret = alloc_prep_put(a, t, start);
	return ret;
}

void rd_alloc_trans_done(struct rd_store *s, struct rd_trans *t, uint64_t seq)
{
	struct rd_alloc *a = s->alloc;
	size_t i;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->prep_t != t) {
		if (rd_trans_nr_deltas(t))
			alloc_log("seq %" PRIu64 ": transaction with %zu accounting deltas committed "
				  "without rd_alloc_trans_prepare; deltas dropped (bug)", seq,
				  rd_trans_nr_deltas(t));
		goto unlock;
	}
	for (i = 0; i < a->prep_nr; i++) {
		const struct alloc_prep *p = &a->prep[i];
		struct rd_bucket *b = &a->b[p->bucket];
		enum alloc_class old = alloc_class_of(b);

		if (p->delta) {
			uint32_t was = b->dirty_sectors;

			b->dirty_sectors = p->dirty;
			a->user_sectors += (int64_t)p->dirty - (int64_t)was;
			/* Emptied by this entry: reusable once seq is durable. */
			if (was && !p->dirty && seq > b->freed_seq)
				b->freed_seq = seq;
		}
		if (b->gen == p->gen)
			alloc_gd_clear(a, p->bucket);
		alloc_settle(a, p->bucket, old);
	}
	a->prep_nr = 0;
	a->prep_t = NULL;
unlock:
	pthread_mutex_unlock(&a->lock);
}

/* ---- reservations and space ------------------------------------------------------------ */

/*
 * Sectors new user data may still reserve (alloc lock held): every empty bucket, waiting
 * ones included (allocation flushes the journal for them), less the b-tree reserve and
 * the mover's, plus what is left in the user write point's open bucket, less what is
 * reserved already.
 */
uint64_t alloc_available(const struct rd_alloc *a)
{
	uint64_t empty = alloc_empty(a), keep = a->meta_reserve + a->gc_reserve;
	uint64_t total = alloc_user_remaining(a);

	if (empty > keep)
		total += (empty - keep) * a->bucket_sectors;
	return total > a->reserved ? total - a->reserved : 0;
}

/* Rounds of the mover a reservation that does not fit waits for, while they free space. */
#define ALLOC_RECLAIM_TRIES	64

int rd_alloc_reserve(struct rd_store *s, uint64_t sectors)
{
	struct rd_alloc *a = s->alloc;
	rd_alloc_reclaim_fn fn;
	bool low, gave_up = false;
	uint64_t seen[3] = { 0 };	/* for RD_GC_DEBUG: available, reserved, empty */
	unsigned tries;
	void *priv;
	int ret;

	if (!a)
		return -EINVAL;
	for (tries = 0;; tries++) {
		uint64_t avail;

		pthread_mutex_lock(&a->lock);
		avail = alloc_available(a);
		seen[0] = avail;
		seen[1] = a->reserved;
		seen[2] = alloc_empty(a);
		ret = sectors > avail ? -ENOSPC : 0;
		if (!ret)
			a->reserved += sectors;
		/* Few empty buckets left: wake the mover (no waiting). */
		low = !ret && alloc_empty(a) < a->gc_low;
		fn = a->reclaim;
		priv = a->reclaim_priv;
		pthread_mutex_unlock(&a->lock);
		if (!ret) {
			if (low && fn)
				fn(priv, false);
			return 0;
		}
		/* Full: the mover may win space back from partly dead buckets. No lock is
		 * held here (the caller may hold a range lock: the mover skips those). A pass
		 * that won nothing ends it, after one more look (another pass, or a forced
		 * one, may have freed space meanwhile). */
		if (!fn || gave_up || tries == ALLOC_RECLAIM_TRIES) {
			if (getenv("RD_GC_DEBUG"))
				alloc_log("reserve %" PRIu64 ": ENOSPC after %u tries (gave up %d), "
					  "avail %" PRIu64 " reserved %" PRIu64 " empty %" PRIu64,
					  sectors, tries, gave_up, seen[0], seen[1], seen[2]);
			return -ENOSPC;
		}
		gave_up = fn(priv, true) <= 0;
	}
}

void rd_alloc_unreserve(struct rd_store *s, uint64_t sectors)
{
	struct rd_alloc *a = s->alloc;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	if (sectors > a->reserved) {
		alloc_log("unreserving %" PRIu64 " sectors, only %" PRIu64 " reserved (bug)",
			  sectors, a->reserved);
		sectors = a->reserved;
	}
	a->reserved -= sectors;
	pthread_mutex_unlock(&a->lock);
}

void rd_alloc_space(struct rd_store *s, struct rd_space *sp)
{
	struct rd_alloc *a = s->alloc;
	const struct rd_geometry *g = &s->geo;
	struct rd_alloc_gc_state gs;
	uint64_t durable;

	memset(sp, 0, sizeof(*sp));
	sp->total_bytes = g->dev_size;
	sp->journal_bytes = g->journal_buckets * g->bucket_size;
	if (!a)
		return;
	sp->usable_bytes = (a->last - a->first) * a->bucket_size;
	durable = rd_journal_durable_seq(s->journal);

	pthread_mutex_lock(&a->lock);
	alloc_migrate(a, durable);
	sp->user_bytes = a->user_sectors << RD_SECTOR_SHIFT;
	sp->btree_bytes = a->btree_sectors << RD_SECTOR_SHIFT;
	sp->free_bytes = (a->ready.nr + a->pending.nr) * a->bucket_size;
	sp->available_bytes = alloc_available(a) << RD_SECTOR_SHIFT;
	sp->reserved_bytes = a->reserved << RD_SECTOR_SHIFT;
	sp->buckets_free = a->ready.nr;
	sp->buckets_pending = a->pending.nr;
	sp->buckets_user = a->nr_class[ALLOC_CLASS_USER];
	sp->buckets_btree = a->nr_class[ALLOC_CLASS_BTREE];
	sp->buckets_gc_reserve = a->gc_reserve;
	pthread_mutex_unlock(&a->lock);
	rd_alloc_gc_state(s, &gs);
	sp->dead_bytes = gs.dead_sectors << RD_SECTOR_SHIFT;
	sp->buckets_partly_dead = gs.candidates;
}
