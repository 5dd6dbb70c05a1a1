/*
 * fsck.c - consistency checks of an open store (see fsck.h).
 *
 * Owns: the superblock-copy check, the walk of every node of every tree, and the
 * allocator checks (alloc keys well formed and in range, b-tree space per bucket equal to
 * what the walk found, no node in a bucket of the wrong kind, pointer generations).
 *
 * Must never: trust a count it is checking to compute the count it checks it against:
 * expected values come from the trees, never from the allocator's memory. The filesystem
 * checks on top live in fsck_fs*.c.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "bkey_text.h"
#include "btree.h"
#include "refdio/errors.h"
#include "refdio/fsck.h"
#include "fsck_int.h"
#include "store.h"

struct fsck_ctx {
	struct rd_store *s;
	const struct rd_fsck_opts *o;
	struct rd_fsck_result *res;
	uint32_t *btree_sectors;	/* per bucket, as found by walking the trees */
	uint64_t progress_done, progress_total;
	const char *phase;
	bool node_damage;		/* a node could not be read or validated */
};

const char *fsck_key_text(enum rd_btree_id id, const struct rd_bkey *k, char *buf, size_t len)
{
	rd_bkey_val_to_text(id, k, buf, len);
	return buf;
}

void rd_fsck_report(const struct rd_fsck_opts *o, struct rd_fsck_result *res,
		    const struct rd_fsck_problem *p)
{
	if (p->severity == RD_FSCK_PENDING) {
		res->pending++;
	} else {
		res->problems++;
		if (p->fixed)
			res->fixed++;
	}
	if (o->problem)
		o->problem(o->priv, p);
}

static void problem(struct fsck_ctx *c, const char *kind, const char *tree, int64_t bucket,
		    bool fixed, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* A store-level finding: always an error; the object is a tree or a bucket. */
static void problem(struct fsck_ctx *c, const char *kind, const char *tree, int64_t bucket,
		    bool fixed, const char *fmt, ...)
{
	struct rd_fsck_problem p = { .kind = kind, .severity = RD_FSCK_ERROR, .fixed = fixed,
				     .tree = tree, .bucket = bucket };
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p.msg = msg;
	if (!fixed)
		c->node_damage |= !strcmp(kind, "node");
	rd_fsck_report(c->o, c->res, &p);
}

static void progress(struct fsck_ctx *c)
{
	if (c->o->progress && (c->progress_done % 64 == 0 ||
			       c->progress_done == c->progress_total))
		c->o->progress(c->o->priv, c->phase, c->progress_done, c->progress_total);
}

/* ---- superblock copies ------------------------------------------------------------- */

static int check_sb(struct fsck_ctx *c, const struct rd_sb_report *r)
{
	char msgs[3][160];
	unsigned n = 0;
	bool fixed = false;
	int ret;

	if (r->primary)
		snprintf(msgs[n++], sizeof(msgs[0]), "primary superblock: %s",
			 rd_strerror(r->primary));
	if (r->backup)
		snprintf(msgs[n++], sizeof(msgs[0]), "backup superblock: %s",
			 rd_strerror(r->backup));
	if (!r->primary && !r->backup && r->primary_seq != r->backup_seq)
		snprintf(msgs[n++], sizeof(msgs[0]), "superblock copies differ: primary seq %"
			 PRIu64 ", backup seq %" PRIu64, r->primary_seq, r->backup_seq);
	if (n && c->o->repair && !c->s->read_only) {
		/* Both copies are rewritten from the one in force. */
		ret = rd_sb_write(c->s->io, &c->s->sb);
		if (ret)
			return ret;
		fixed = true;
	}
	for (unsigned i = 0; i < n; i++)
		problem(c, "superblock", NULL, -1, fixed, "%s%s", msgs[i],
			fixed ? "; both copies rewritten" : "");
	return 0;
}

/* ---- nodes --------------------------------------------------------------------------- */

static int node_cb(void *priv, const struct rd_node_info *ni)
{
	struct fsck_ctx *c = priv;
	const struct rd_geometry *g = &c->s->geo;

	c->res->nodes++;
	c->progress_done++;
	progress(c);
	if (ni->error) {
		problem(c, "node", rd_btree_name(ni->id), -1, false,
			"%s tree: level %u node at %#" PRIx64 " (keys up to %" PRIu64
			":%" PRIu64 "): %s", rd_btree_name(ni->id), ni->level, ni->offset,
			ni->max_key.inode, ni->max_key.offset, rd_strerror(ni->error));
		return 0;
	}
	if (!ni->level) {
		c->res->keys += ni->nr_keys;
		if (ni->id < RD_BTREE_NR)
			c->res->tree_keys[ni->id] += ni->nr_keys;
	}
	if (!ni->offset)	/* dirty, not yet written: nothing on disk to account */
		return 0;
	if (ni->offset % g->block_size ||
	    ni->offset < g->first_bucket * g->bucket_size ||
	    ni->offset + g->btree_node_size > g->last_bucket * g->bucket_size) {
		problem(c, "node-location", rd_btree_name(ni->id), -1, false,
			"%s tree: node at %#" PRIx64 " lies outside the allocatable "
			"space", rd_btree_name(ni->id), ni->offset);
		return 0;
	}
	assert(rd_alloc_bucket_of(c->s, ni->offset) < g->last_bucket);	/* checked above */
	if (rd_alloc_ptr_stale(c->s, ni->offset, ni->gen))
		problem(c, "node-stale", rd_btree_name(ni->id),
			(int64_t)rd_alloc_bucket_of(c->s, ni->offset), false,
			"%s tree: node at %#" PRIx64 " has a stale pointer (gen %u)",
			rd_btree_name(ni->id), ni->offset, ni->gen);
	c->btree_sectors[rd_alloc_bucket_of(c->s, ni->offset)] +=
		g->btree_node_size >> RD_SECTOR_SHIFT;
	return 0;
}

static int check_trees(struct fsck_ctx *c)
{
	struct rd_btree_stats st;
	int ret;

	rd_btree_stats(c->s, &st);
	c->phase = "b-tree nodes";
	c->progress_done = 0;
	c->progress_total = 0;	/* unknown up front */
	for (unsigned id = 0; id < RD_BTREE_NR; id++) {
		ret = rd_btree_walk(c->s, id, true, node_cb, c);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- allocator ----------------------------------------------------------------------- */

static int check_alloc_keys(struct fsck_ctx *c)
{
	const struct rd_geometry *g = &c->s->geo;
	uint32_t bucket_sectors = g->bucket_size >> RD_SECTOR_SHIFT;
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	int ret;

	rd_btree_iter_init(&it, c->s, RD_BTREE_ALLOC, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		const struct rd_alloc_v *v = (const void *)k->val;
		struct rd_bucket b;

		if (k->pos.inode || k->pos.snapshot || k->pos.offset >= g->nbuckets) {
			problem(c, "alloc-key", "alloc", -1, false,
				"alloc key at %" PRIu64 ":%" PRIu64 ":%u is out of range",
				k->pos.inode, k->pos.offset, k->pos.snapshot);
			continue;
		}
		if (k->type != RD_KEY_ALLOC || k->val_len != sizeof(*v)) {
			char text[FSCK_KEY_TEXT];

			problem(c, "alloc-key", "alloc", (int64_t)k->pos.offset, false,
				"alloc key for bucket %" PRIu64 " is malformed: %s", k->pos.offset,
				fsck_key_text(RD_BTREE_ALLOC, k, text, sizeof(text)));
			continue;
		}
		if (v->data_type > RD_DATA_USER ||
		    rd_le32_get(v->dirty_sectors) > bucket_sectors) {
			problem(c, "alloc-key", "alloc", (int64_t)k->pos.offset, false,
				"alloc key for bucket %" PRIu64 " holds impossible values "
				"(type %u, %u sectors)", k->pos.offset, v->data_type,
				rd_le32_get(v->dirty_sectors));
			continue;
		}
		if (rd_le32_get(v->dirty_sectors) &&
		    (k->pos.offset < g->first_bucket || k->pos.offset >= g->last_bucket))
			problem(c, "alloc-key", "alloc", (int64_t)k->pos.offset, false,
				"bucket %" PRIu64 " is reserved (superblock or journal) but "
				"its alloc key counts %u data sectors", k->pos.offset,
				rd_le32_get(v->dirty_sectors));
		ret = rd_alloc_bucket(c->s, k->pos.offset, &b);
		if (ret)
			break;
		/* In memory the gen may run ahead of the key (a bucket opened since the last
		 * commit), never behind. */
		if (b.gen < rd_le32_get(v->gen))
			problem(c, "alloc-gen", "alloc", (int64_t)k->pos.offset, false,
				"bucket %" PRIu64 ": generation %u in memory is behind its "
				"alloc key's %u", k->pos.offset, b.gen, rd_le32_get(v->gen));
	}
	rd_btree_iter_exit(&it);
	return ret == -ENOENT ? 0 : ret;
}

static int check_buckets(struct fsck_ctx *c)
{
	const struct rd_geometry *g = &c->s->geo;
	uint32_t bucket_sectors = g->bucket_size >> RD_SECTOR_SHIFT;
	int ret;

	c->phase = "buckets";
	c->progress_done = 0;
	c->progress_total = g->nbuckets;
	for (uint64_t i = 0; i < g->nbuckets; i++) {
		struct rd_bucket b;

		ret = rd_alloc_bucket(c->s, i, &b);
		if (ret)
			return ret;
		c->res->buckets++;
		c->progress_done++;
		progress(c);
		if (b.btree_sectors != c->btree_sectors[i])
			problem(c, "bucket-btree", NULL, (int64_t)i, false,
				"bucket %" PRIu64 ": allocator counts %u b-tree sectors, "
				"the trees hold %u", i, b.btree_sectors, c->btree_sectors[i]);
		if (c->btree_sectors[i] && b.data_type != RD_DATA_BTREE)
			problem(c, "bucket-type", NULL, (int64_t)i, false,
				"bucket %" PRIu64 " holds b-tree nodes but is typed %u",
				i, b.data_type);
		if ((uint64_t)b.dirty_sectors + c->btree_sectors[i] > bucket_sectors)
			problem(c, "bucket-overfull", NULL, (int64_t)i, false,
				"bucket %" PRIu64 " is over-full: %u data + %u b-tree "
				"sectors in %u", i, b.dirty_sectors, c->btree_sectors[i],
				bucket_sectors);
	}
	return 0;
}

int rd_fsck_store(struct rd_store *s, const struct rd_sb_report *sbrep,
		  const struct rd_fsck_opts *o, struct rd_fsck_result *res, bool *node_damage)
{
	struct fsck_ctx c = { .s = s, .o = o, .res = res };
	int ret;

	memset(res, 0, sizeof(*res));
	c.btree_sectors = calloc(s->geo.nbuckets, sizeof(*c.btree_sectors));
	if (!c.btree_sectors)
		return -ENOMEM;
	ret = check_sb(&c, sbrep);
	if (!ret)
		ret = check_trees(&c);
	if (!ret)
		ret = check_alloc_keys(&c);
	if (!ret)
		ret = check_buckets(&c);
	free(c.btree_sectors);
	*node_damage = c.node_damage;
	return ret;
}

int rd_fsck(struct rd_store *s, const struct rd_sb_report *sbrep, const struct rd_fsck_opts *o,
	    struct rd_fsck_result *res)
{
	bool damage;

	return rd_fsck_store(s, sbrep, o, res, &damage);
}
