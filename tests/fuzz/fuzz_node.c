/*
 * fuzz_node.c - libFuzzer harness: b-tree node decoding (engine/core/btree_node.c).
 *
 * Input:
 *   byte 0      flags: NODE_FIX recomputes the node's checksum, NODE_XXHASH makes xxhash the
 *               metadata checksum (else crc32c), NODE_EXPECT takes the expected tree and
 *               level from bytes 10-11 (else from the node's own header, so that decoding
 *               goes past those checks)
 *   byte 1      node size: 4 KiB << (byte % 5)
 *   bytes 2-9   the uuid's first 8 bytes (le64: the magic's xor)
 *   bytes 10-11 expected tree id and level (NODE_EXPECT)
 *   bytes 12-15 unused
 *   then        the node as read from disk (zero-padded to the node size)
 *
 * Each input: rd_bnode_decode with the expectations a parent pointer would give (seq and
 * key range from the header). A node accepted must keep the in-memory invariants of
 * btree_internal.h and encode back to exactly the bytes it was decoded from (everything in
 * [0, bytes) is checked or checksummed, so there is one encoding); every key's value goes
 * through the text decoders of `refdio list` (bkey_text.c).
 *
 * Must never: do I/O.
 */
#include <string.h>

#include "bkey_text.h"
#include "btree_internal.h"
#include "csum.h"
#include "fuzz.h"

#define NODE_HDR	16
#define NODE_MAX	(64u << 10)

bool fz_accepted;

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void check_node(const struct rd_bnode *n, const struct rd_btree_node *h,
		       const struct rd_bnode_expect *e, const struct rd_geometry *g,
		       const uint8_t *raw)
{
	static uint8_t again[NODE_MAX] __attribute__((aligned(8)));
	uint32_t bytes = sizeof(struct rd_btree_node);
	char text[512];

	fz_assert(n->nr == rd_le32_get(h->nr_keys) && n->bytes == rd_le32_get(h->bytes));
	fz_assert(n->id == e->id && n->level == e->level && !n->nr_loaded && !n->dirty);
	fz_assert(!n->level || n->nr);
	for (uint32_t i = 0; i < n->nr; i++) {
		const struct rd_bkey *k = n->keys[i];

		fz_assert(k->type && k->val_len <= rd_btree_max_val_for(g->btree_node_size));
		fz_assert(rd_bpos_cmp(k->pos, n->min_key) >= 0 &&
			  rd_bpos_cmp(k->pos, n->max_key) <= 0);
		fz_assert(!i || rd_bpos_cmp(n->keys[i - 1]->pos, k->pos) < 0);
		fz_assert(rd_bnode_lower_bound(n, k->pos) == i);
		if (n->level)
			fz_assert(!n->children[i] && k->val_len == sizeof(struct rd_btree_ptr));
		bytes += (uint32_t)rd_bkey_packed(k->val_len);
		rd_bkey_val_to_text(n->id, k, text, sizeof(text));
	}
	fz_assert(bytes == n->bytes);
	fz_assert(!n->level || !rd_bpos_cmp(n->keys[n->nr - 1]->pos, n->max_key));
	fz_assert(rd_bnode_encode(n, g, e->seq, rd_le64_get(h->journal_seq), again) == n->bytes);
	fz_assert(!memcmp(again, raw, n->bytes));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static uint8_t buf[NODE_MAX] __attribute__((aligned(4096)));
	const struct rd_btree_node *h = (const void *)buf;
	struct rd_geometry g = { 0 };
	struct rd_bnode_expect e;
	struct rd_bnode *n;
	size_t n_len;

	fz_accepted = false;
	if (len < NODE_HDR)
		return 0;
	g.btree_node_size = 4096u << (data[1] % 5);
	g.block_size = 4096;
	g.bucket_size = NODE_MAX;
	g.meta_csum = data[0] & NODE_XXHASH ? RD_CSUM_XXHASH : RD_CSUM_CRC32C;
	g.magic_xor = get64(data + 2);
	n_len = len - NODE_HDR < g.btree_node_size ? len - NODE_HDR : g.btree_node_size;
	memset(buf, 0, g.btree_node_size);
	memcpy(buf, data + NODE_HDR, n_len);
	if (data[0] & NODE_FIX) {
		uint32_t bytes = rd_le32_get(h->bytes);

		if (bytes >= sizeof(*h) && bytes <= g.btree_node_size)
			((struct rd_btree_node *)buf)->csum =
				rd_le32_of((uint32_t)rd_csum(g.meta_csum, buf + 8, bytes - 8));
	}
	e.id = data[0] & NODE_EXPECT ? data[10] : h->btree_id;
	e.level = data[0] & NODE_EXPECT ? data[11] : h->level;
	e.seq = rd_le64_get(h->seq);
	e.min_key = rd_bpos_from_disk(h->min_key);
	e.max_key = rd_bpos_from_disk(h->max_key);

	if (rd_bnode_decode(buf, g.btree_node_size, &g, &e, &n))
		return 0;
	check_node(n, h, &e, &g, buf);
	rd_bnode_free(n);
	fz_accepted = true;
	return 0;
}

/* A byte under the checksum changes and the checksum is not recomputed. */
bool fz_damage(uint8_t *buf, size_t n)
{
	if (n < NODE_HDR + 48)
		return false;
	buf[0] &= (uint8_t)~NODE_FIX;
	buf[NODE_HDR + 40] ^= 0x01;	/* the journal_seq field */
	return true;
}
