/*
 * image.c - the public calls that look at an image without being part of any one layer:
 * probing the superblock copies, an open store's superblock and geometry in host form, and
 * listing the b-trees' keys and nodes (refdio/image.h).
 *
 * Owns: the translation from the store's internal structures (struct rd_store, rd_sb,
 * rd_bkey, rd_node_info) to the public ones, so that tools never see the former.
 *
 * Must never: write anything, or hand out a pointer into the store that outlives the call.
 */
#include <errno.h>
#include <string.h>

#include "bkey_text.h"
#include "btree.h"
#include "io.h"
#include "refdio/errors.h"
#include "sb.h"
#include "store.h"

static_assert(RD_TREES == RD_BTREE_NR, "refdio/image.h counts the trees");
static_assert(RD_LABEL_LEN == RD_LABEL_MAX, "refdio/image.h sizes the label");

int rd_image_probe(const char *path, struct rd_sb_report *rep, char *why, size_t why_len)
{
	struct rd_io_opts io_opts = { .read_only = true, .no_direct = true };
	struct rd_io *io;
	struct rd_sb sb;
	int ret;

	if (why && why_len)
		why[0] = 0;
	ret = rd_io_open(path, &io_opts, &io);
	if (ret)
		return ret;
	ret = rd_sb_read(io, &sb, rep, why, why_len);
	rd_io_close(io);
	return ret;
}

void rd_store_info(struct rd_store *s, struct rd_store_info *out)
{
	const struct rd_geometry *g = &s->geo;
	struct rd_btree_stats bst;

	memset(out, 0, sizeof(*out));
	memcpy(out->uuid, s->sb.uuid, sizeof(out->uuid));
	memcpy(out->label, s->sb.label, RD_LABEL_LEN);	/* out->label[RD_LABEL_LEN] is 0 */
	out->version = rd_le16_get(s->sb.version);
	out->sb_seq = rd_le64_get(s->sb.seq);
	out->created_ns = rd_le64_get(s->sb.time_created);
	out->was_clean = s->was_clean;
	out->replayed_entries = s->replayed_entries;
	out->dev_size = g->dev_size;
	out->block_size = g->block_size;
	out->bucket_size = g->bucket_size;
	out->btree_node_size = g->btree_node_size;
	out->encoded_extent_max = g->encoded_extent_max;
	out->nbuckets = g->nbuckets;
	out->journal_start = g->journal_start;
	out->journal_buckets = g->journal_buckets;
	out->data_csum = g->data_csum;
	out->meta_csum = g->meta_csum;
	out->journal_seq = rd_store_journal_seq(s);
	rd_btree_stats(s, &bst);
	for (unsigned id = 0; id < RD_TREES; id++)
		out->tree_depth[id] = bst.depth[id];
}

int rd_store_list_keys(struct rd_store *s, unsigned id,
		       int (*fn)(void *priv, const struct rd_list_key *k), void *priv)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_key_desc desc;
	char text[1024];
	int ret;

	if (id >= RD_BTREE_NR)
		return -EINVAL;
	rd_btree_iter_init(&it, s, (enum rd_btree_id)id, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		struct rd_list_key lk = {
			.inode = k->pos.inode, .offset = k->pos.offset,
			.snapshot = k->pos.snapshot, .type = k->type, .val = k->val,
			.val_len = k->val_len, .text = text, .desc = &desc,
		};

		rd_key_describe(id, k->pos.inode, k->pos.offset, k->pos.snapshot, k->type,
				k->val, k->val_len, &desc);
		rd_key_desc_to_text(&desc, text, sizeof(text));
		ret = fn(priv, &lk);
		if (ret)
			break;
	}
	rd_btree_iter_exit(&it);
	return ret == -ENOENT ? 0 : ret;
}

struct node_walk {
	int	(*fn)(void *priv, const struct rd_list_node *n);
	void	*priv;
};

static int node_cb(void *priv, const struct rd_node_info *ni)
{
	const struct node_walk *nw = priv;
	struct rd_list_node n = {
		.level = ni->level, .offset = ni->offset, .gen = ni->gen, .seq = ni->seq,
		.nr_keys = ni->nr_keys, .bytes = ni->bytes,
		.min_inode = ni->min_key.inode, .min_offset = ni->min_key.offset,
		.min_snapshot = ni->min_key.snapshot,
		.max_inode = ni->max_key.inode, .max_offset = ni->max_key.offset,
		.max_snapshot = ni->max_key.snapshot, .error = ni->error,
	};

	return nw->fn(nw->priv, &n);
}

int rd_store_list_nodes(struct rd_store *s, unsigned id,
			int (*fn)(void *priv, const struct rd_list_node *n), void *priv)
{
	struct node_walk nw = { fn, priv };

	if (id >= RD_BTREE_NR)
		return -EINVAL;
	return rd_btree_walk(s, (enum rd_btree_id)id, true, node_cb, &nw);
}
