/*
 * btree_node.c - one b-tree node in memory and on disk: keys, encode, decode, validate.
 *
 * Owns: the in-memory key array of a node (insert/remove/replace by index), the packed
 * on-disk encoding (struct rd_btree_node then rd_bkey_disk + value padded to 8), and the
 * validation of a node read from disk.
 *
 * Must never: do I/O, touch the cache or the tree shape, or trust a byte of a node read
 * from disk before it was bounded: a node is attacker-controlled data, and a bad one gives
 * -RD_ERR_NODE_CSUM / -RD_ERR_NODE_INVALID, never a crash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "btree_internal.h"
#include "csum.h"
#include "refdio/errors.h"

struct rd_bkey *rd_bkey_new(struct rd_bpos pos, uint8_t type, const void *val, size_t val_len)
{
	struct rd_bkey *k = malloc(rd_bkey_bytes(val_len));

	if (!k)
		return NULL;
	k->pos = pos;
	k->type = type;
	k->val_len = (uint16_t)val_len;
	if (val_len)
		memcpy(k->val, val, val_len);
	return k;
}

struct rd_bkey *rd_bkey_dup(const struct rd_bkey *k)
{
	return rd_bkey_new(k->pos, k->type, k->val, k->val_len);
}

struct rd_bnode *rd_bnode_alloc(uint8_t id, uint8_t level)
{
	struct rd_bnode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->id = id;
	n->level = level;
	n->bytes = sizeof(struct rd_btree_node);
	n->min_key = RD_POS_MIN;
	n->max_key = RD_POS_MAX;
	return n;
}

void rd_bnode_free(struct rd_bnode *n)
{
	if (!n)
		return;
	for (uint32_t i = 0; i < n->nr; i++)
		free(n->keys[i]);
	free(n->keys);
	free(n->children);
	free(n);
}

uint32_t rd_bnode_lower_bound(const struct rd_bnode *n, struct rd_bpos pos)
{
	uint32_t lo = 0, hi = n->nr;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (rd_bpos_cmp(n->keys[mid]->pos, pos) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int bnode_grow(struct rd_bnode *n, uint32_t want)
{
	struct rd_bkey **keys;
	uint32_t cap;

	if (want <= n->cap)
		return 0;
	cap = n->cap ? n->cap * 2 : 16;
	while (cap < want)
		cap *= 2;
	keys = realloc(n->keys, cap * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	n->keys = keys;
	if (n->level) {
		struct rd_bnode **ch = realloc(n->children, cap * sizeof(*ch));

		if (!ch)
			return -ENOMEM;	/* keys grew: harmless, cap stays */
		n->children = ch;
	}
	n->cap = cap;
	return 0;
}

int rd_bnode_insert_at(struct rd_bnode *n, uint32_t idx, struct rd_bkey *k,
		       struct rd_bnode *child)
{
	int ret = bnode_grow(n, n->nr + 1);

	if (ret)
		return ret;
	memmove(&n->keys[idx + 1], &n->keys[idx], (n->nr - idx) * sizeof(*n->keys));
	n->keys[idx] = k;
	if (n->level) {
		memmove(&n->children[idx + 1], &n->children[idx],
			(n->nr - idx) * sizeof(*n->children));
		n->children[idx] = child;
		if (child)
			n->nr_loaded++;
	}
	n->nr++;
	n->bytes += (uint32_t)rd_bkey_packed(k->val_len);
	return 0;
}

struct rd_bkey *rd_bnode_remove_at(struct rd_bnode *n, uint32_t idx)
{
	struct rd_bkey *k = n->keys[idx];

	memmove(&n->keys[idx], &n->keys[idx + 1], (n->nr - idx - 1) * sizeof(*n->keys));
	if (n->level) {
		if (n->children[idx])
			n->nr_loaded--;
		memmove(&n->children[idx], &n->children[idx + 1],
			(n->nr - idx - 1) * sizeof(*n->children));
	}
	n->nr--;
	n->bytes -= (uint32_t)rd_bkey_packed(k->val_len);
	return k;
}

struct rd_bkey *rd_bnode_replace_at(struct rd_bnode *n, uint32_t idx, struct rd_bkey *k)
{
	struct rd_bkey *old = n->keys[idx];

	n->bytes -= (uint32_t)rd_bkey_packed(old->val_len);
	n->bytes += (uint32_t)rd_bkey_packed(k->val_len);
	n->keys[idx] = k;
	return old;
}

static uint32_t node_csum(const struct rd_geometry *g, const void *buf, uint32_t bytes)
{
	return (uint32_t)rd_csum(g->meta_csum, (const uint8_t *)buf + 8, bytes - 8);
}

uint32_t rd_bnode_encode(const struct rd_bnode *n, const struct rd_geometry *g, uint64_t seq,
			 uint64_t journal_seq, void *buf)
{
	struct rd_btree_node *h = buf;
	uint8_t *p = (uint8_t *)buf + sizeof(*h);

	memset(buf, 0, g->btree_node_size);
	h->csum_type = g->meta_csum;
	h->btree_id = n->id;
	h->level = n->level;
	h->magic = rd_le64_of(RD_BTREE_NODE_MAGIC ^ g->magic_xor);
	h->version = rd_le16_of(RD_FORMAT_VERSION);
	h->nr_keys = rd_le32_of(n->nr);
	h->bytes = rd_le32_of(n->bytes);
	h->seq = rd_le64_of(seq);
	h->journal_seq = rd_le64_of(journal_seq);
	h->min_key = rd_bpos_to_disk(n->min_key);
	h->max_key = rd_bpos_to_disk(n->max_key);
	for (uint32_t i = 0; i < n->nr; i++) {
		const struct rd_bkey *k = n->keys[i];
		struct rd_bkey_disk d = {
			.pos = rd_bpos_to_disk(k->pos),
			.type = k->type,
			.val_len = rd_le16_of(k->val_len),
		};

		memcpy(p, &d, sizeof(d));
		memcpy(p + sizeof(d), k->val, k->val_len);
		p += rd_bkey_packed(k->val_len);	/* padding stays zero */
	}
	/* Invariant: bytes tracks the packed size exactly (see btree_internal.h). */
	assert((size_t)(p - (uint8_t *)buf) == n->bytes && n->bytes <= g->btree_node_size);
	h->csum = rd_le32_of(node_csum(g, buf, n->bytes));
	return n->bytes;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

int rd_bnode_decode(const void *buf, size_t len, const struct rd_geometry *g,
		    const struct rd_bnode_expect *e, struct rd_bnode **out)
{
	const struct rd_btree_node *h = buf;
	const uint8_t *base = buf, *p, *end;
	size_t max_val = rd_btree_max_val_for(g->btree_node_size);
	struct rd_bnode *n = NULL;
	struct rd_bpos prev = RD_POS_MIN;
	uint32_t bytes, nr;
	uint16_t version;
	int ret = -RD_ERR_NODE_INVALID;

	*out = NULL;
	if (len < sizeof(*h))
		goto out;
	/* Magic first: a block that is not a node at all is "invalid", not "bad checksum". */
	if (rd_le64_get(h->magic) != (RD_BTREE_NODE_MAGIC ^ g->magic_xor))
		goto out;
	bytes = rd_le32_get(h->bytes);
	if (bytes < sizeof(*h) || bytes > len || bytes > g->btree_node_size)
		goto out;
	if (h->csum_type != g->meta_csum)
		goto out;
	if (rd_le32_get(h->csum) != node_csum(g, buf, bytes)) {
		ret = -RD_ERR_NODE_CSUM;
		goto out;
	}
	/* Everything outside [8, bytes) is not covered by the checksum: check it exactly. */
	version = rd_le16_get(h->version);
	if (version < RD_FORMAT_VERSION_MIN || version > RD_FORMAT_VERSION)
		goto out;
	if (h->reserved0 || h->btree_id != e->id || h->level != e->level)
		goto out;
	if (rd_le16_get(h->reserved1) || rd_le32_get(h->reserved2) ||
	    !all_zero(h->reserved3, sizeof(h->reserved3)))
		goto out;
	if (rd_le64_get(h->seq) != e->seq)
		goto out;
	if (rd_bpos_cmp(rd_bpos_from_disk(h->min_key), e->min_key) ||
	    rd_bpos_cmp(rd_bpos_from_disk(h->max_key), e->max_key))
		goto out;
	nr = rd_le32_get(h->nr_keys);
	/* Each key takes at least 24 bytes: bounds nr before anything is allocated. */
	if (nr > (bytes - sizeof(*h)) / sizeof(struct rd_bkey_disk))
		goto out;
	if (e->level && !nr)
		goto out;

	n = rd_bnode_alloc(e->id, e->level);
	if (!n || bnode_grow(n, nr ? nr : 1)) {
		ret = -ENOMEM;
		goto out;
	}
	n->min_key = e->min_key;
	n->max_key = e->max_key;

	p = base + sizeof(*h);
	end = base + bytes;
	for (uint32_t i = 0; i < nr; i++) {
		struct rd_bkey_disk d;
		struct rd_bpos pos;
		struct rd_bkey *k;
		size_t vl;

		if ((size_t)(end - p) < sizeof(d))
			goto out;
		memcpy(&d, p, sizeof(d));
		vl = rd_le16_get(d.val_len);
		if (vl > max_val || (size_t)(end - p) < rd_bkey_packed(vl))
			goto out;
		if (!d.type || d.reserved)
			goto out;
		/* An interior key points at a written child: a clean node never references
		 * one that exists only in memory. */
		if (e->level && (d.type != RD_KEY_BTREE_PTR || vl != sizeof(struct rd_btree_ptr) ||
				 !rd_bptr_from_disk(p + sizeof(d)).offset))
			goto out;
		/* Padding is written as zeroes: anything else is damage. */
		if (!all_zero(p + sizeof(d) + vl, rd_bkey_packed(vl) - sizeof(d) - vl))
			goto out;
		pos = rd_bpos_from_disk(d.pos);
		if (rd_bpos_cmp(pos, e->min_key) < 0 || rd_bpos_cmp(pos, e->max_key) > 0)
			goto out;
		if (i && rd_bpos_cmp(pos, prev) <= 0)
			goto out;
		prev = pos;
		k = rd_bkey_new(pos, d.type, p + sizeof(d), vl);
		if (!k) {
			ret = -ENOMEM;
			goto out;
		}
		n->keys[n->nr] = k;
		if (n->level)
			n->children[n->nr] = NULL;
		n->nr++;
		n->bytes += (uint32_t)rd_bkey_packed(vl);
		p += rd_bkey_packed(vl);
	}
	if (p != end)
		goto out;
	/* The last child of an interior node covers up to the node's max_key. */
	if (n->level && rd_bpos_cmp(n->keys[n->nr - 1]->pos, n->max_key))
		goto out;
	*out = n;
	n = NULL;
	ret = 0;
out:
	rd_bnode_free(n);
	return ret;
}
