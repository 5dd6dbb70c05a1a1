/*
 * probe.c - hashing names to slots and walking linear-probing chains (see probe.h).
 *
 * Owns: the name hash (SipHash-2-4 keyed by the filesystem's secret, so that names chosen
 * by an attacker cannot be made to collide without knowing it), the test mask that forces
 * collisions, chain walks and chain-preserving removal.
 *
 * Must never: interpret values, or remove a key that a chain still runs through.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fs_priv.h"
#include "probe.h"

#define TRIM_MAX	1024	/* whiteouts removed behind one deletion, at most */

struct rd_probe_table rd_probe_dirents(uint64_t dir)
{
	return (struct rd_probe_table){
		.id = RD_BTREE_DIRENTS, .owner = dir, .shift = 0,
		.slot_max = RD_HASH_SLOT_MAX, .whiteout = RD_KEY_WHITEOUT,
	};
}

struct rd_probe_table rd_probe_xattrs(uint64_t ino)
{
	return (struct rd_probe_table){
		.id = RD_BTREE_XATTRS, .owner = ino, .shift = RD_XATTR_CHUNK_BITS,
		.slot_max = RD_XATTR_SLOT_MAX, .whiteout = RD_KEY_XATTR_WHITEOUT,
	};
}

uint64_t rd_probe_hash_key(const uint8_t key[16], uint64_t mask, const void *name, size_t len,
			   uint64_t slot_max)
{
	static_assert(crypto_shorthash_siphash24_BYTES == 8, "SipHash gives 64 bits");
	static_assert(crypto_shorthash_siphash24_KEYBYTES == 16, "the hash key is a SipHash key");
	uint8_t out[8];
	uint64_t h;

	crypto_shorthash_siphash24(out, name, len, key);
	memcpy(&h, out, sizeof(h));
	h = le64toh(h);
	if (mask)
		h &= mask;
	return RD_HASH_SLOT_MIN + h % (slot_max - RD_HASH_SLOT_MIN + 1);
}

uint64_t rd_probe_hash(const struct rd_fs *fs, const void *name, size_t len, uint64_t slot_max)
{
	static_assert(sizeof(fs->hash_key) == 16, "the hash key is a SipHash key");

	return rd_probe_hash_key(fs->hash_key, fs->opts.test_hash_mask, name, len, slot_max);
}

uint64_t rd_name_slot(const struct rd_fs *fs, const void *name, size_t len)
{
	return rd_probe_hash(fs, name, len, RD_HASH_SLOT_MAX);
}

static uint64_t chunk_mask(const struct rd_probe_table *tab)
{
	return tab->shift ? (1ull << tab->shift) - 1 : 0;
}

static void iter_from(struct rd_probe *p, uint64_t slot)
{
	const struct rd_probe_table *tab = &p->tab;

	rd_btree_iter_init(&p->it, p->s, tab->id, RD_POS(tab->owner, slot << tab->shift),
			   RD_POS(tab->owner, (tab->slot_max << tab->shift) | chunk_mask(tab)));
}

void rd_probe_init(struct rd_probe *p, struct rd_store *s, const struct rd_probe_table *tab,
		   uint64_t start)
{
	memset(p, 0, sizeof(*p));
	p->s = s;
	p->tab = *tab;
	p->start = start;
	p->slot = start;
	p->next = start;
	p->first = true;
	iter_from(p, start);
}

void rd_probe_exit(struct rd_probe *p)
{
	rd_btree_iter_exit(&p->it);
}

/* Moves the expected slot on by one, wrapping at the table's end (the iterator is then
 * restarted at the first slot). -ENOSPC if the walk came all the way round. */
static int advance(struct rd_probe *p)
{
	if (p->next < p->tab.slot_max) {
		p->next++;
	} else {
		if (p->wrapped)
			return -ENOSPC;
		p->wrapped = true;
		p->next = RD_HASH_SLOT_MIN;
		rd_btree_iter_exit(&p->it);
		iter_from(p, p->next);
	}
	if (p->wrapped && p->next == p->start)
		return -ENOSPC;	/* every slot is taken: not reachable in practice */
	return 0;
}

int rd_probe_next(struct rd_probe *p, const struct rd_bkey **out)
{
	const struct rd_bkey *k;
	int ret;

	if (!p->first) {
		ret = advance(p);
		if (ret)
			return ret;
	}
	p->first = false;
	for (;;) {
		uint64_t ks, chunk;

		ret = rd_btree_iter_next(&p->it, &k);
		if (ret == -ENOENT) {	/* nothing left up to the table's end */
			p->slot = p->next;
			return -ENOENT;
		}
		if (ret)
			return ret;
		ks = k->pos.offset >> p->tab.shift;
		chunk = k->pos.offset & chunk_mask(&p->tab);
		if (ks < p->next)	/* continuation keys of the slot before */
			continue;
		p->slot = p->next;
		/* A key past the expected slot, or a continuation key without its head (not
		 * written by this code): the expected slot is empty. */
		if (ks > p->next || chunk != 0)
			return -ENOENT;
		*out = k;
		return 0;
	}
}

/*
 * The type of the key at a head slot (chunk 0): > 0 (0 is never stored), 0 if the slot is
 * empty, or a negative error. One return value carries both answers, so no caller can read
 * a type that was not set.
 */
static int slot_type(struct rd_store *s, const struct rd_probe_table *tab, uint64_t slot)
{
	struct rd_bkey *k;
	int ret;

	ret = rd_btree_lookup(s, tab->id, RD_POS(tab->owner, slot << tab->shift), &k);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	assert(ret == 0 && k->type != 0);
	ret = k->type;
	free(k);
	return ret;
}

int rd_probe_remove(struct rd_store *s, struct rd_trans *t, const struct rd_probe_table *tab,
		    uint64_t slot, bool trim)
{
	int ret;

	if (trim && slot < tab->slot_max) {
		ret = slot_type(s, tab, slot + 1);
		if (ret < 0)
			return ret;
		trim = ret == 0;
	} else {
		trim = false;
	}
	if (!trim)
		return rd_trans_put(t, tab->id, RD_POS(tab->owner, slot << tab->shift),
				    tab->whiteout, NULL, 0);

	/* The chain ends here: nothing probes past this slot, so it and the whiteouts right
	 * before it can become empty. Removing fewer than all of them is just as correct. */
	ret = rd_trans_del(t, tab->id, RD_POS(tab->owner, slot << tab->shift));
	for (unsigned n = 0; !ret && n < TRIM_MAX && slot > RD_HASH_SLOT_MIN; n++) {
		slot--;
		ret = slot_type(s, tab, slot);
		if (ret != tab->whiteout)	/* empty, an entry or an error */
			break;
		ret = rd_trans_del(t, tab->id, RD_POS(tab->owner, slot << tab->shift));
	}
	return ret < 0 ? ret : 0;
}
