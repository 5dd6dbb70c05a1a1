/*
 * test_write_order.c - the durability ordering rule, checked on every write the store
 * issues: a journal entry (or superblock) that names data or a b-tree node is submitted
 * only once that data or node is stable, i.e. a device flush submitted after the data's
 * write completed has itself completed.
 *
 * The store runs over the write-cache model (engine/core/io_model.c), which knows for every
 * device range whether a volatile (unflushed) write covers it. Every image write is
 * decoded as it is submitted: journal entries record by record (extent keys name their
 * checksummed region, checkpoint entries their roots), superblocks by their roots; each
 * named range must be stable at that moment. The workload is crash_workload.h's: data
 * through the dio engine (every strategy, unaligned edges, O_DSYNC), truncates, fallocate,
 * xattrs, renames, unlinks, fsyncs, over a journal small enough to checkpoint often.
 *
 * Negative control: the same workload with the journal's pre-flush switched off
 * (rd_open_opts.test_no_preflush) must show violations; if it does not, this test could
 * not see the bug it exists for, and fails.
 *
 * Environment: RD_TEST_SEED, RD_WO_OPS (operations per run, default 3000).
 */
#include "crash_workload.h"
#include "io_model.h"

struct order_check {
	struct rd_io_model *m;
	const struct rd_geometry *g;
	uint64_t ring_off, ring_len;
	uint64_t entries, keys_checked, roots_checked, sbs;
	uint64_t violations;
};

static void violation(struct order_check *c, const char *what, uint64_t off, uint64_t len)
{
	if (c->violations++ < 3)
		fprintf(stderr, "  ordering: %s [%#llx, +%llu) is not stable yet\n", what,
			(unsigned long long)off, (unsigned long long)len);
}

static void check_root(struct order_check *c, const struct rd_btree_root_disk *r,
		       const char *what)
{
	uint64_t off = rd_le64_get(r->ptr.offset);

	if (!off)
		return;		/* an empty tree */
	c->roots_checked++;
	if (!rd_io_model_range_stable(c->m, off, c->g->btree_node_size))
		violation(c, what, off, c->g->btree_node_size);
}

/* One journal entry at p (bytes long, as written). */
static void check_entry(struct order_check *c, const uint8_t *p, size_t len)
{
	const struct rd_jset *h = (const void *)p;
	uint32_t bytes = rd_le32_get(h->bytes);
	size_t off = sizeof(*h);

	CHECK(len >= sizeof(*h) && bytes <= len);
	c->entries++;
	for (uint32_t i = 0; i < rd_le32_get(h->nr_records); i++) {
		struct rd_jrec r;
		uint32_t rb;

		CHECK(off + sizeof(r) <= bytes);
		memcpy(&r, p + off, sizeof(r));
		rb = rd_le32_get(r.bytes);
		if (r.type == RD_JREC_KEY && r.btree_id == RD_BTREE_EXTENTS) {
			struct rd_bkey_disk k;
			struct rd_extent_v v;

			memcpy(&k, p + off + sizeof(r), sizeof(k));
			if (k.type == RD_KEY_EXTENT && rd_le16_get(k.val_len) >= sizeof(v)) {
				memcpy(&v, p + off + sizeof(r) + sizeof(k), sizeof(v));
				if (!(rd_le16_get(v.flags) & RD_EXTENT_UNWRITTEN)) {
					uint64_t doff = rd_le64_get(v.dev_offset);
					uint64_t dlen = (uint64_t)rd_le32_get(v.region_sectors) << 9;

					c->keys_checked++;
					if (!rd_io_model_range_stable(c->m, doff, dlen))
						violation(c, "extent data", doff, dlen);
				}
			}
		} else if (r.type == RD_JREC_ROOT) {
			struct rd_btree_root_disk root;

			memcpy(&root, p + off + sizeof(r), sizeof(root));
			check_root(c, &root, "checkpoint root node");
		}
		off += (rb + 7) & ~7u;
	}
}

static void observe(void *priv, const struct rd_io_req *req)
{
	struct order_check *c = priv;

	if (req->op != RD_IO_WRITE || !c->g)
		return;
	if (req->off >= c->ring_off && req->off < c->ring_off + c->ring_len) {
		check_entry(c, req->buf, req->len);
	} else if (req->off == RD_SB_OFFSET || req->off == rd_sb_backup_offset(c->g->dev_size)) {
		const struct rd_sb *sb = req->buf;

		c->sbs++;
		for (unsigned i = 0; i < RD_BTREE_NR; i++)
			check_root(c, &sb->roots[i], "superblock root node");
	}
}

/* Runs the workload over the model; returns the violations seen. */
static uint64_t run(const char *image, uint64_t seed, unsigned ops, bool no_preflush,
		    struct order_check *c)
{
	struct rd_io_model_opts mo = { .image = image, .observe = observe, .observe_priv = c };
	struct rd_fs_opts fo = { .no_gc = true };	/* deterministic: no mover thread */
	struct rd_io_model_stats ms;
	struct rd_fs *fs;
	struct cw w;
	char why[256] = "";

	memset(c, 0, sizeof(*c));
	CHECK_OK(rd_io_model_new(&mo, &c->m));
	fo.store.io_hooks = rd_io_model_hooks(c->m);
	fo.store.test_no_preflush = no_preflush;
	if (rd_fs_open(image, &fo, &fs, why, sizeof(why))) {
		fprintf(stderr, "open: %s\n", why);
		exit(1);
	}
	/* The writes of the open itself (a clean image: its first checkpoint) went by
	 * unchecked: the geometry is known only now. */
	c->g = &rd_fs_store(fs)->geo;
	c->ring_off = c->g->journal_start * c->g->bucket_size;
	c->ring_len = c->g->journal_buckets * c->g->bucket_size;

	cw_init(&w, seed);
	cw_start(&w, fs);
	cw_run(&w, ops);
	cw_stop_dio(&w);
	CHECK_OK(rd_fs_close(fs));
	cw_free(&w);

	rd_io_model_stats(c->m, &ms);
	fprintf(stderr, "%s: %llu writes, %llu flushes; %llu entries, %llu extent keys, %llu "
		"roots, %llu superblocks checked: %llu violations\n",
		no_preflush ? "without the pre-flush" : "as built",
		(unsigned long long)ms.writes, (unsigned long long)ms.flushes,
		(unsigned long long)c->entries, (unsigned long long)c->keys_checked,
		(unsigned long long)c->roots_checked, (unsigned long long)c->sbs,
		(unsigned long long)c->violations);
	CHECK_EQ(ms.overlaps, 0);	/* never two writes over one range at once */
	rd_io_model_free(c->m);
	return c->violations;
}

int main(void)
{
	struct du_geo g = { .size = 48ull << 20, .block_size = 4096, .bucket_size = 128 << 10,
			    .eem = 64 << 10, .node_size = 16 << 10 };
	const char *e = getenv("RD_WO_OPS");
	unsigned ops = e ? (unsigned)atoi(e) : 3000;
	uint64_t seed = test_seed();
	struct order_check c;
	char image[128];

	du_format(image, "order", &g);
	CHECK_EQ(run(image, seed, ops, false, &c), 0);
	CHECK(c.keys_checked > 100 && c.roots_checked > 0 && c.sbs > 0);

	/* Negative control: the same rule, broken on purpose, must be seen. */
	du_format(image, "order", &g);
	CHECK(run(image, seed, ops, true, &c) > 0);

	unlink(image);
	return 0;
}
