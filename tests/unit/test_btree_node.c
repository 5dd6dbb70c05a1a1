/*
 * test_btree_node.c - node encode/decode/validate, without any I/O.
 *
 * A node read from disk is attacker-controlled: every single-byte change of an encoded node
 * must be refused (checksum or validation), forged nodes with a correct checksum but wrong
 * contents must be refused, and nothing may crash (run under ASan/UBSan too).
 */
#include <errno.h>

#include "../test.h"
#include "btree_internal.h"
#include "csum.h"
#include "refdio/errors.h"

static struct rd_geometry geo = {
	.block_size = 4096,
	.btree_node_size = 4096,
	.meta_csum = RD_CSUM_CRC32C,
	.magic_xor = 0x1122334455667788ull,
};

static struct rd_bnode *make_leaf(uint64_t *seed, unsigned nr)
{
	struct rd_bnode *n = rd_bnode_alloc(RD_BTREE_INODES, 0);
	uint8_t val[256];

	CHECK(n);
	n->min_key = RD_POS(10, 0);
	n->max_key = RD_POS(10, 1000);
	for (unsigned i = 0; i < nr; i++) {
		size_t len = test_rand(seed) % 40;
		struct rd_bkey *k;

		for (size_t b = 0; b < len; b++)
			val[b] = (uint8_t)test_rand(seed);
		k = rd_bkey_new((struct rd_bpos){ 10, 10 * i + 5, i & 1 }, (uint8_t)(1 + i % 3),
				val, len);
		CHECK(k);
		CHECK_OK(rd_bnode_insert_at(n, n->nr, k, NULL));
	}
	return n;
}

static struct rd_bnode_expect expect_of(const struct rd_bnode *n, uint64_t seq)
{
	return (struct rd_bnode_expect){ .id = n->id, .level = n->level, .seq = seq,
					 .min_key = n->min_key, .max_key = n->max_key };
}

static void check_same(const struct rd_bnode *a, const struct rd_bnode *b)
{
	CHECK_EQ(a->nr, b->nr);
	CHECK_EQ(a->bytes, b->bytes);
	for (uint32_t i = 0; i < a->nr; i++) {
		CHECK(!rd_bpos_cmp(a->keys[i]->pos, b->keys[i]->pos));
		CHECK_EQ(a->keys[i]->type, b->keys[i]->type);
		CHECK_EQ(a->keys[i]->val_len, b->keys[i]->val_len);
		CHECK(!memcmp(a->keys[i]->val, b->keys[i]->val, a->keys[i]->val_len));
	}
}

/* Re-seals a forged node so that only the semantic checks can catch it. */
static void reseal(uint8_t *buf)
{
	struct rd_btree_node *h = (void *)buf;
	uint32_t bytes = rd_le32_get(h->bytes);

	if (bytes < 8 || bytes > geo.btree_node_size)
		bytes = geo.btree_node_size;
	h->csum = rd_le32_of((uint32_t)rd_csum(geo.meta_csum, buf + 8, bytes - 8));
}

static int decode(const uint8_t *buf, const struct rd_bnode_expect *e)
{
	struct rd_bnode *out = NULL;
	int ret = rd_bnode_decode(buf, geo.btree_node_size, &geo, e, &out);

	CHECK((ret == 0) == (out != NULL));
	rd_bnode_free(out);
	return ret;
}

int main(void)
{
	uint64_t seed = test_seed();
	uint8_t *buf = aligned_alloc(4096, 4096), *copy = aligned_alloc(4096, 4096);
	struct rd_bnode *n, *d;
	struct rd_bnode_expect e;
	uint32_t bytes;

	CHECK(buf && copy);
	CHECK_EQ(rd_btree_max_val_for(4096), 968);
	CHECK_EQ(rd_btree_max_val_for(256 << 10), 65480);
	CHECK_EQ(rd_btree_max_val_for(1 << 20), 65528);	/* val_len is 16 bits */

	/* Round trip of a leaf. */
	n = make_leaf(&seed, 12);
	bytes = rd_bnode_encode(n, &geo, 777, 5, buf);
	CHECK_EQ(bytes, n->bytes);
	e = expect_of(n, 777);
	CHECK_OK(rd_bnode_decode(buf, 4096, &geo, &e, &d));
	check_same(n, d);
	rd_bnode_free(d);

	/* Every single-byte change inside the node is refused, whatever the new value. */
	memcpy(copy, buf, 4096);
	for (uint32_t i = 0; i < bytes; i++) {
		for (unsigned v = 0; v < 3; v++) {
			uint8_t x = v == 0 ? 0x01 : v == 1 ? 0x80 : (uint8_t)(1 + test_rand(&seed) % 255);

			buf[i] ^= x;
			CHECK(decode(buf, &e) < 0);
			buf[i] ^= x;
		}
	}
	CHECK_OK(decode(buf, &e));

	/* What the parent expects must match exactly. */
	{
		struct rd_bnode_expect w;

		w = e; w.seq++;			CHECK_EQ(decode(buf, &w), -RD_ERR_NODE_INVALID);
		w = e; w.level = 1;		CHECK_EQ(decode(buf, &w), -RD_ERR_NODE_INVALID);
		w = e; w.id = RD_BTREE_EXTENTS;	CHECK_EQ(decode(buf, &w), -RD_ERR_NODE_INVALID);
		w = e; w.min_key.offset = 1;	CHECK_EQ(decode(buf, &w), -RD_ERR_NODE_INVALID);
		w = e; w.max_key.offset++;	CHECK_EQ(decode(buf, &w), -RD_ERR_NODE_INVALID);
	}
	/* Another image's node (different uuid): not a node here. */
	{
		struct rd_geometry g2 = geo;
		struct rd_bnode *out;

		g2.magic_xor ^= 1;
		CHECK_EQ(rd_bnode_decode(buf, 4096, &g2, &e, &out), -RD_ERR_NODE_INVALID);
	}
	/* Short read. */
	{
		struct rd_bnode *out;

		CHECK(rd_bnode_decode(buf, bytes - 1, &geo, &e, &out) < 0);
		CHECK(rd_bnode_decode(buf, 10, &geo, &e, &out) < 0);
	}

	/* Forged nodes with a valid checksum. */
	{
		struct rd_btree_node *h = (void *)copy;
		struct rd_bkey_disk *k0 = (void *)(copy + sizeof(*h)), k;

		/* keys out of order: the second key gets the first's position */
		memcpy(copy, buf, 4096);
		memcpy(&k, k0, sizeof(k));
		{
			struct rd_bkey_disk *k1 = (void *)((uint8_t *)k0 +
				rd_bkey_packed(rd_le16_get(k0->val_len)));

			k1->pos = k.pos;
		}
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);

		/* a key outside [min, max] */
		memcpy(copy, buf, 4096);
		k0->pos.inode = rd_le64_of(9);
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);

		/* val_len running past the end of the node */
		memcpy(copy, buf, 4096);
		k0->val_len = rd_le16_of(60000);
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);

		/* nr_keys larger than the keys present, and huge */
		memcpy(copy, buf, 4096);
		h->nr_keys = rd_le32_of(13);
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);
		h->nr_keys = rd_le32_of(UINT32_MAX);
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);

		/* bytes larger than the node, smaller than the header */
		memcpy(copy, buf, 4096);
		h->bytes = rd_le32_of(8192);
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);
		h->bytes = rd_le32_of(64);
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);

		/* key type 0 */
		memcpy(copy, buf, 4096);
		k0->type = 0;
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);

		/* a future format version */
		memcpy(copy, buf, 4096);
		h->version = rd_le16_of(RD_FORMAT_VERSION + 1);
		reseal(copy);
		CHECK_EQ(decode(copy, &e), -RD_ERR_NODE_INVALID);
	}
	rd_bnode_free(n);

	/* Interior nodes: pointer keys only, the last one at max_key, no unwritten child. */
	{
		struct rd_bnode *in = rd_bnode_alloc(RD_BTREE_EXTENTS, 2), *out;
		struct rd_btree_ptr p = { rd_le64_of(1 << 20), rd_le64_of(99), rd_le32_of(3), {0} };

		in->min_key = RD_POS(5, 0);
		in->max_key = RD_POS(9, 0);
		for (unsigned i = 0; i < 4; i++) {
			struct rd_bkey *k = rd_bkey_new(i == 3 ? in->max_key : RD_POS(5 + i, 7),
							RD_KEY_BTREE_PTR, &p, sizeof(p));

			CHECK(k);
			CHECK_OK(rd_bnode_insert_at(in, i, k, NULL));
		}
		bytes = rd_bnode_encode(in, &geo, 1234, 9, buf);
		CHECK_EQ(bytes, 128 + 4 * 48);
		e = expect_of(in, 1234);
		CHECK_OK(rd_bnode_decode(buf, 4096, &geo, &e, &out));
		check_same(in, out);
		CHECK(out->children && out->level == 2);
		rd_bnode_free(out);
		for (uint32_t i = 0; i < bytes; i++) {
			buf[i] ^= 0x10;
			CHECK(decode(buf, &e) < 0);
			buf[i] ^= 0x10;
		}
		/* last key below max_key */
		in->max_key = RD_POS(10, 0);
		rd_bnode_encode(in, &geo, 1234, 9, buf);
		e = expect_of(in, 1234);
		CHECK_EQ(decode(buf, &e), -RD_ERR_NODE_INVALID);
		/* a child pointer at offset 0 (a node never written) */
		in->max_key = RD_POS(9, 0);
		memset(in->keys[1]->val, 0, sizeof(p));
		rd_bnode_encode(in, &geo, 1234, 9, buf);
		e = expect_of(in, 1234);
		CHECK_EQ(decode(buf, &e), -RD_ERR_NODE_INVALID);
		rd_bnode_free(in);
	}

	/* In-memory key array: insert/remove/replace keep bytes exact. */
	{
		struct rd_bnode *m = rd_bnode_alloc(RD_BTREE_XATTRS, 0);
		uint32_t want = 128;

		for (unsigned i = 0; i < 500; i++) {
			struct rd_bpos pos = RD_POS(1, test_rand(&seed) % 100000);
			uint32_t idx = rd_bnode_lower_bound(m, pos);
			size_t len = test_rand(&seed) % 30;
			struct rd_bkey *k = rd_bkey_new(pos, 1, "abcdefghijklmnopqrstuvwxyz0123", len);

			if (idx < m->nr && !rd_bpos_cmp(m->keys[idx]->pos, pos)) {
				struct rd_bkey *old = rd_bnode_replace_at(m, idx, k);

				want -= (uint32_t)rd_bkey_packed(old->val_len);
				free(old);
			} else {
				CHECK_OK(rd_bnode_insert_at(m, idx, k, NULL));
			}
			want += (uint32_t)rd_bkey_packed(len);
			CHECK_EQ(m->bytes, want);
			if (i % 3 == 0 && m->nr) {
				struct rd_bkey *old = rd_bnode_remove_at(m, (uint32_t)(test_rand(&seed) % m->nr));

				want -= (uint32_t)rd_bkey_packed(old->val_len);
				free(old);
				CHECK_EQ(m->bytes, want);
			}
		}
		for (uint32_t i = 1; i < m->nr; i++)
			CHECK(rd_bpos_cmp(m->keys[i - 1]->pos, m->keys[i]->pos) < 0);
		rd_bnode_free(m);
	}

	/* Random garbage (with the right magic, sometimes a right checksum) never crashes. */
	for (unsigned round = 0; round < 20000; round++) {
		struct rd_btree_node *h = (void *)buf;

		for (unsigned i = 0; i < 4096; i += 8) {
			uint64_t r = test_rand(&seed);

			memcpy(buf + i, &r, 8);
		}
		h->magic = rd_le64_of(RD_BTREE_NODE_MAGIC ^ geo.magic_xor);
		h->bytes = rd_le32_of(128 + (uint32_t)(test_rand(&seed) % 3968));
		h->nr_keys = rd_le32_of((uint32_t)(test_rand(&seed) % 200));
		if (round & 1)
			reseal(buf);
		e = (struct rd_bnode_expect){ .id = h->btree_id, .level = h->level,
					      .seq = rd_le64_get(h->seq), .min_key = RD_POS_MIN,
					      .max_key = RD_POS_MAX };
		CHECK(decode(buf, &e) < 0);
	}
	free(buf);
	free(copy);
	printf("btree_node: ok\n");
	return 0;
}
