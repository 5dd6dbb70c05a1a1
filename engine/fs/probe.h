/*
 * probe.h - hashed names in key slots with linear probing: the scheme shared by directory
 * entries (dirent.c) and extended attributes (xattr.c).
 *
 * A "table" is the range of keys {owner, slot << shift | chunk} of one b-tree: owner is the
 * directory or inode, shift 0 for dirents (one key per slot) and RD_XATTR_CHUNK_BITS for
 * xattrs (a head key at chunk 0, continuation keys after it). Only head keys take part in
 * probing. A name hashes to a slot; it lives in the first slot of its chain (its slot, the
 * next, ... wrapping from the table's last slot to its first) that was free or a whiteout
 * when it was inserted.
 *
 * Invariant kept by every writer (all hold the owner's inode lock): between a name's hash
 * slot and the slot holding it, no slot is empty. Deleting leaves a whiteout, except at the
 * end of a chain (next slot empty), where the entry and the whiteouts just before it can
 * go: no chain passes beyond an empty slot, so none runs through them.
 *
 * Must never: know what a value holds (callers compare names), or take locks.
 */
#ifndef RD_PROBE_H
#define RD_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "btree.h"

struct rd_fs;
struct rd_trans;

struct rd_probe_table {
	enum rd_btree_id id;
	uint64_t	owner;
	unsigned	shift;		/* slot << shift is a head key's offset */
	uint64_t	slot_max;	/* slots lie in [RD_HASH_SLOT_MIN, slot_max] */
	uint8_t		whiteout;	/* key type of a whiteout */
};

/* The tables of directory dir and of the xattrs of inode ino. */
struct rd_probe_table rd_probe_dirents(uint64_t dir);
struct rd_probe_table rd_probe_xattrs(uint64_t ino);

/* SipHash-2-4 of name under the filesystem's key, masked by the test hook, folded into
 * [RD_HASH_SLOT_MIN, slot_max]. */
uint64_t rd_probe_hash(const struct rd_fs *fs, const void *name, size_t len, uint64_t slot_max);
/* The same from the key (rd_sb.hash_secret) and mask themselves, for code that has a store
 * but no rd_fs (fsck). */
uint64_t rd_probe_hash_key(const uint8_t key[16], uint64_t mask, const void *name, size_t len,
			   uint64_t slot_max);

/*
 * A walk along one chain. rd_probe_next returns 0 and the head key of the next slot (a
 * whiteout included; valid until the next call), or -ENOENT once it reaches an empty slot
 * (then p->slot is that slot: where the chain ends), or an error.
 */
struct rd_probe {
	struct rd_store		*s;
	struct rd_probe_table	tab;
	uint64_t		start;		/* the hash slot */
	uint64_t		slot;		/* slot of the key last returned / the empty one */
	uint64_t		next;		/* slot expected next */
	bool			wrapped;
	bool			first;
	struct rd_btree_iter	it;
};

void rd_probe_init(struct rd_probe *p, struct rd_store *s, const struct rd_probe_table *tab,
		   uint64_t start);
int rd_probe_next(struct rd_probe *p, const struct rd_bkey **k);
void rd_probe_exit(struct rd_probe *p);

/*
 * Queues into t the removal of the head key at slot (continuation keys are the caller's):
 * a whiteout, or, when trim is set and the next slot is empty, the deletion of the key and
 * of the whiteouts right before it. trim must be false when t also inserts into the same
 * table (an insert queued at the chain's end would be cut off from its hash slot).
 */
int rd_probe_remove(struct rd_store *s, struct rd_trans *t, const struct rd_probe_table *tab,
		    uint64_t slot, bool trim);

#endif
