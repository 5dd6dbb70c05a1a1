/*
 * alloc_fake.c - the fake store of alloc_fake.h. Single device, one journal lock.
 * Owns: the fake's state. Must never: be linked with the real engine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fake.h"

struct fake_put {
	uint64_t seq;
	uint64_t bucket;
	struct rd_alloc_v v;
};

struct rd_trans {
	struct rd_store		*s;
	struct fake_put		*puts;
	size_t			nputs;
	struct rd_alloc_delta	*d;
	size_t			nd;
	struct fake_release	*rel;
	size_t			nrel;
};

void (*fake_on_release)(const struct fake_release *r);

static struct {
	pthread_mutex_t		jlock;		/* journal: seq, durable, log, tree, releases */
	uint64_t		seq;		/* last seq handed out */
	uint64_t		durable;
	uint64_t		flushes;
	struct fake_put		*log;
	size_t			nlog;
	struct rd_alloc_v	tree[FAKE_NB];
	bool			present[FAKE_NB];
	struct fake_release	*rel;
	size_t			nrel;
	struct rd_node_info	*nodes;
	size_t			nnodes;
} F = { .jlock = PTHREAD_MUTEX_INITIALIZER };

static int grow(void *pp, size_t nr, size_t size)
{
	void **p = pp;
	void *n;

	/* capacity doubles at powers of two */
	if (nr & (nr - 1) || (nr && nr < 8))
		return 0;
	n = realloc(*p, (nr ? nr * 2 : 8) * size);
	if (!n)
		return -ENOMEM;
	*p = n;
	return 0;
}

/* ---- the parts of btree.h and store.h the allocator uses ------------------------------ */

const char *rd_btree_name(unsigned id)
{
	static const char *const n[RD_BTREE_NR] = { "extents", "inodes", "dirents", "xattrs",
						    "alloc" };
	return id < RD_BTREE_NR ? n[id] : NULL;
}

void rd_btree_iter_init(struct rd_btree_iter *it, struct rd_store *s, enum rd_btree_id id,
			struct rd_bpos from, struct rd_bpos to)
{
	memset(it, 0, sizeof(*it));
	it->s = s;
	it->id = id;
	it->pos = from;
	it->to = to;
}

int rd_btree_iter_next(struct rd_btree_iter *it, const struct rd_bkey **out)
{
	uint64_t b;

	if (it->id != RD_BTREE_ALLOC || it->done || it->pos.inode)
		return -ENOENT;
	if (!it->key) {
		it->key = calloc(1, sizeof(*it->key) + sizeof(struct rd_alloc_v));
		if (!it->key)
			return -ENOMEM;
	}
	pthread_mutex_lock(&F.jlock);
	for (b = it->pos.offset; b < FAKE_NB && !F.present[b]; b++)
		;
	if (b < FAKE_NB) {
		it->key->pos = RD_POS(0, b);
		it->key->type = RD_KEY_ALLOC;
		it->key->val_len = sizeof(struct rd_alloc_v);
		memcpy(it->key->val, &F.tree[b], sizeof(struct rd_alloc_v));
	}
	pthread_mutex_unlock(&F.jlock);
	if (b >= FAKE_NB) {
		it->done = true;
		return -ENOENT;
	}
	it->pos.offset = b + 1;
	*out = it->key;
	return 0;
}

void rd_btree_iter_exit(struct rd_btree_iter *it)
{
	free(it->key);
	it->key = NULL;
}

int rd_btree_walk(struct rd_store *s, enum rd_btree_id id, bool leaves,
		  int (*cb)(void *priv, const struct rd_node_info *ni), void *priv)
{
	(void)s;
	(void)leaves;
	for (size_t i = 0; i < F.nnodes; i++) {
		struct rd_node_info ni = F.nodes[i];
		int ret;

		if (ni.id != id)
			continue;
		ret = cb(priv, &ni);
		if (ret)
			return ret;
	}
	return 0;
}

/* The fake commits call the allocator's hooks by name (fake_commit_locked): nothing to keep. */
void rd_btree_set_space(struct rd_store *s, const struct rd_btree_space_ops *ops)
{
	(void)s;
	(void)ops;
}

struct rd_trans *rd_trans_new(struct rd_store *s)
{
	struct rd_trans *t = calloc(1, sizeof(*t));

	if (t)
		t->s = s;
	return t;
}

int rd_trans_put(struct rd_trans *t, enum rd_btree_id id, struct rd_bpos pos, uint8_t type,
		 const void *val, size_t val_len)
{
	if (id != RD_BTREE_ALLOC || type != RD_KEY_ALLOC || pos.inode || pos.snapshot ||
	    pos.offset >= FAKE_NB || val_len != sizeof(struct rd_alloc_v))
		return -EINVAL;
	if (grow(&t->puts, t->nputs, sizeof(*t->puts)))
		return -ENOMEM;
	t->puts[t->nputs].bucket = pos.offset;
	memcpy(&t->puts[t->nputs].v, val, val_len);
	t->nputs++;
	return 0;
}

int rd_trans_add_delta(struct rd_trans *t, uint64_t bucket, int64_t sectors)
{
	if (grow(&t->d, t->nd, sizeof(*t->d)))
		return -ENOMEM;
	t->d[t->nd++] = (struct rd_alloc_delta){ bucket, sectors };
	return 0;
}

size_t rd_trans_nr_deltas(const struct rd_trans *t)
{
	return t->nd;
}

const struct rd_alloc_delta *rd_trans_delta(const struct rd_trans *t, size_t i)
{
	return &t->d[i];
}

int fake_trans_release(struct rd_trans *t, uint64_t off, uint32_t sectors)
{
	if (grow(&t->rel, t->nrel, sizeof(*t->rel)))
		return -ENOMEM;
	t->rel[t->nrel++] = (struct fake_release){ off, sectors, 0 };
	return 0;
}

void rd_trans_free(struct rd_trans *t)
{
	if (!t)
		return;
	free(t->puts);
	free(t->d);
	free(t->rel);
	free(t);
}

int fake_commit_locked(struct rd_trans *t, uint64_t *seqp)
{
	uint64_t seq;
	int ret;

	size_t before = t->nputs;

	ret = rd_alloc_trans_prepare(t->s, t);
	if (ret)
		goto out;
	/* The real commit sizes its journal room for two alloc keys per delta. */
	if (t->nputs - before > 2 * t->nd) {
		fprintf(stderr, "alloc_fake: prepare queued %zu keys for %zu deltas\n",
			t->nputs - before, t->nd);
		abort();
	}
	pthread_mutex_lock(&F.jlock);
	seq = ++F.seq;
	for (size_t i = 0; i < t->nputs && !ret; i++) {
		ret = grow(&F.log, F.nlog, sizeof(*F.log));
		if (ret)
			break;
		t->puts[i].seq = seq;
		F.log[F.nlog++] = t->puts[i];
		F.tree[t->puts[i].bucket] = t->puts[i].v;
		F.present[t->puts[i].bucket] = true;
	}
	for (size_t i = 0; i < t->nrel && !ret; i++) {
		ret = grow(&F.rel, F.nrel, sizeof(*F.rel));
		if (ret)
			break;
		t->rel[i].seq = seq;
		F.rel[F.nrel++] = t->rel[i];
	}
	pthread_mutex_unlock(&F.jlock);
	if (ret)
		goto out;
	rd_alloc_trans_done(t->s, t, seq);
	if (seqp)
		*seqp = seq;
out:
	rd_trans_free(t);
	return ret;
}

int rd_trans_commit(struct rd_trans *t, uint64_t *seq)
{
	struct rd_store *s = t->s;
	int ret;

	pthread_mutex_lock(&s->index_lock);
	ret = fake_commit_locked(t, seq);
	pthread_mutex_unlock(&s->index_lock);
	return ret;
}

/* The allocator flushes and asks through the journal; the fake has one journal. */
int rd_journal_flush(struct rd_journal *jn, uint64_t seq)
{
	size_t i, j;

	(void)jn;
	pthread_mutex_lock(&F.jlock);
	if (!seq || seq > F.seq)
		seq = F.seq;
	if (seq > F.durable) {
		/* Releases first, so that nobody sees seq durable before they happened. */
		for (i = j = 0; i < F.nrel; i++) {
			if (F.rel[i].seq <= seq) {
				if (fake_on_release)
					fake_on_release(&F.rel[i]);
			} else {
				F.rel[j++] = F.rel[i];
			}
		}
		F.nrel = j;
		__atomic_store_n(&F.durable, seq, __ATOMIC_RELEASE);
		F.flushes++;
	}
	pthread_mutex_unlock(&F.jlock);
	return 0;
}

uint64_t rd_journal_durable_seq(struct rd_journal *jn)
{
	(void)jn;
	return __atomic_load_n(&F.durable, __ATOMIC_ACQUIRE);
}

uint64_t rd_store_journal_seq(struct rd_store *s)
{
	uint64_t seq;

	(void)s;
	pthread_mutex_lock(&F.jlock);
	seq = F.seq + 1;
	pthread_mutex_unlock(&F.jlock);
	return seq;
}

/* ---- the fake's own controls ---------------------------------------------------------- */

uint64_t fake_flushes(void)
{
	uint64_t n;

	pthread_mutex_lock(&F.jlock);
	n = F.flushes;
	pthread_mutex_unlock(&F.jlock);
	return n;
}

size_t fake_alloc_keys(void)
{
	size_t n = 0;

	pthread_mutex_lock(&F.jlock);
	for (size_t b = 0; b < FAKE_NB; b++)
		n += F.present[b];
	pthread_mutex_unlock(&F.jlock);
	return n;
}

bool fake_alloc_key(uint64_t b, struct rd_alloc_v *out)
{
	bool p;

	pthread_mutex_lock(&F.jlock);
	p = b < FAKE_NB && F.present[b];
	if (p)
		*out = F.tree[b];
	pthread_mutex_unlock(&F.jlock);
	return p;
}

static int set_nodes(const struct rd_node_info *nodes, size_t nr)
{
	free(F.nodes);
	F.nodes = NULL;
	F.nnodes = 0;
	if (!nr)
		return 0;
	F.nodes = malloc(nr * sizeof(*nodes));
	if (!F.nodes)
		return -ENOMEM;
	memcpy(F.nodes, nodes, nr * sizeof(*nodes));
	F.nnodes = nr;
	return 0;
}

struct rd_store *fake_open(void)
{
	struct rd_store *s = calloc(1, sizeof(*s));
	struct rd_geometry *g;

	if (!s)
		return NULL;
	pthread_mutex_lock(&F.jlock);
	free(F.log);
	free(F.rel);
	F.log = NULL;
	F.rel = NULL;
	F.nlog = F.nrel = 0;
	F.seq = F.durable = F.flushes = 0;
	memset(F.present, 0, sizeof(F.present));
	pthread_mutex_unlock(&F.jlock);
	set_nodes(NULL, 0);

	pthread_mutex_init(&s->index_lock, NULL);
	g = &s->geo;
	g->dev_size = (uint64_t)FAKE_NB * FAKE_BUCKET;
	g->block_size = FAKE_BLOCK;
	g->bucket_size = FAKE_BUCKET;
	g->btree_node_size = FAKE_NODE;
	g->encoded_extent_max = FAKE_BUCKET;
	g->nbuckets = FAKE_NB;
	g->journal_start = 1;
	g->journal_buckets = 2;
	g->first_bucket = 3;
	g->last_bucket = FAKE_NB - 1;
	if (rd_alloc_init(s)) {
		free(s);
		return NULL;
	}
	return s;
}

int fake_reopen(struct rd_store *s, const struct rd_node_info *nodes, size_t nr)
{
	size_t i, j;
	int ret;

	rd_alloc_exit(s);
	pthread_mutex_lock(&F.jlock);
	/* Replay: only what is durable survives; seqs of the torn tail are never reused. */
	memset(F.present, 0, sizeof(F.present));
	for (i = j = 0; i < F.nlog; i++) {
		if (F.log[i].seq > F.durable)
			continue;
		F.log[j++] = F.log[i];
		F.tree[F.log[i].bucket] = F.log[i].v;
		F.present[F.log[i].bucket] = true;
	}
	F.nlog = j;
	F.nrel = 0;
	pthread_mutex_unlock(&F.jlock);
	ret = set_nodes(nodes, nr);
	if (!ret)
		ret = rd_alloc_init(s);
	return ret;
}

void fake_close(struct rd_store *s)
{
	rd_alloc_exit(s);
	pthread_mutex_destroy(&s->index_lock);
	free(s);
	set_nodes(NULL, 0);
}
