/*
 * extents.h - file extents in the extents b-tree: their host form, lookups of the extents
 * overlapping a range, and the updates that cut a range out of a file.
 *
 * Owns: the encoding of struct rd_extent_v (format.h), the overwrite rules (trim front, trim
 * back, split middle, delete) and the allocator accounting that goes with every change.
 *
 * Must never: change an extent without the matching rd_alloc_account in the same
 * transaction, or let a trimmed extent forget its checksummed region (region_offset moves
 * instead). Callers serialise changes to one inode's extents (the inode lock); this file
 * only queues updates into a transaction.
 *
 * Units: file positions here are 512-byte sectors (key offset = END sector, exclusive).
 */
#ifndef RD_EXTENTS_H
#define RD_EXTENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "btree.h"
#include "format.h"

struct rd_store;
struct rd_trans;

/* An extent key in host form. It covers file sectors [end - size, end) and reads them from
 * sectors [region_offset, region_offset + size) of the region at dev_offset. */
struct rd_extent {
	uint64_t end;
	uint32_t size;
	uint64_t dev_offset;		/* byte offset of the whole region */
	uint32_t gen;
	uint32_t region_sectors;
	uint32_t region_offset;
	uint8_t  csum_type;
	uint16_t flags;			/* RD_EXTENT_* */
	uint64_t csum;			/* of the whole region */
};

static inline uint64_t rd_extent_start(const struct rd_extent *e)
{
	return e->end - e->size;
}

static inline bool rd_extent_unwritten(const struct rd_extent *e)
{
	return e->flags & RD_EXTENT_UNWRITTEN;
}

void rd_extent_pack(const struct rd_extent *e, struct rd_extent_v *v);
/* Decodes and checks a key of the extents tree against the store's geometry, so that
 * nothing using it can read outside its region, the region outside its bucket, or a bucket
 * outside the allocatable part of the device. NULL if well formed, else what is wrong with
 * it (fsck prints that). */
const char *rd_extent_decode(const struct rd_store *s, const struct rd_bkey *k,
			     struct rd_extent *e);
/* The same: 0, or -EIO if the key is malformed. */
int rd_extent_unpack(const struct rd_store *s, const struct rd_bkey *k, struct rd_extent *e);

/* A growable array of extents. */
struct rd_extent_list {
	struct rd_extent *e;
	size_t nr, cap;
};

void rd_extent_list_free(struct rd_extent_list *l);

/*
 * Appends to l the extents of ino overlapping file sectors [start, end), in file order, at
 * most max of them (0: no limit); *more says whether extents were left out by the limit.
 * 0 or a negative error.
 */
int rd_extents_collect(struct rd_store *s, uint64_t ino, uint64_t start, uint64_t end,
		       size_t max, struct rd_extent_list *l, bool *more);

/*
 * Queues into t the removal of file sectors [start, end) of ino, given ext[0..nr): every
 * extent that overlaps the range (as collected under the caller's inode lock). Each
 * overlapping extent is trimmed at the front, trimmed at the back, split in two around the
 * range, or deleted; every removed sector is accounted (-) in its bucket. *removed gets
 * the sectors removed. Queue this before inserting the extents that replace the range.
 */
int rd_extents_punch(struct rd_trans *t, struct rd_store *s, uint64_t ino, uint64_t start,
		     uint64_t end, const struct rd_extent *ext, size_t nr, uint64_t *removed);

/* Queues the insert of a new extent (its range must be free in the file once the queued
 * punches apply) and its accounting (+size sectors in its bucket). */
int rd_extents_insert(struct rd_trans *t, struct rd_store *s, uint64_t ino,
		      const struct rd_extent *e);

/* Rough journal bytes of one queued extent change, for keeping transactions well inside
 * one journal entry. */
#define RD_EXTENT_OP_BYTES	96

#endif
