/*
 * sb.h - the superblock: reading both copies, validating, writing.
 *
 * Owns: the primary copy at RD_SB_OFFSET and the backup in the last RD_SB_SIZE bytes of the
 * image, and the rule that the valid copy with the highest seq wins. A write bumps seq and
 * writes both copies, then flushes the device.
 *
 * Must never: trust a field before the checksum and range checks of rd_sb_validate passed.
 */
#ifndef RD_SB_H
#define RD_SB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "refdio/image.h"

struct rd_io;

/* The superblock's options and geometry in host byte order (decoded once at open). */
struct rd_geometry {
	uint64_t dev_size;
	uint32_t block_size;
	uint32_t bucket_size;
	uint32_t btree_node_size;
	uint32_t encoded_extent_max;
	uint8_t  data_csum;
	uint8_t  meta_csum;
	uint64_t nbuckets;
	uint64_t journal_start;		/* bucket index */
	uint64_t journal_buckets;
	uint64_t first_bucket;		/* first allocatable bucket */
	uint64_t last_bucket;		/* one past the last allocatable bucket */
	uint64_t magic_xor;		/* first 8 bytes of uuid, as little-endian u64 */
};

/* Checks magic, checksum, version, features and that every field is in range and
 * consistent with an image of image_size bytes. 0 or -RD_ERR_*; why gets a message. */
int rd_sb_validate(const struct rd_sb *sb, uint64_t image_size, char *why, size_t why_len);

/* Reads both copies and returns the newest valid one in *out. rep may be NULL. The error,
 * if neither copy is valid, is that of the primary (or -RD_ERR_NOT_REFDIO if neither has
 * the magic). */
int rd_sb_read(struct rd_io *io, struct rd_sb *out, struct rd_sb_report *rep,
	       char *why, size_t why_len);

/* Bumps sb->seq, recomputes the checksum and writes both copies, then flushes. */
int rd_sb_write(struct rd_io *io, struct rd_sb *sb);

/* Checksum of a superblock as stored in sb->csum. */
uint32_t rd_sb_csum(const struct rd_sb *sb);

/* Decodes geometry from a validated superblock. */
void rd_sb_geometry(const struct rd_sb *sb, struct rd_geometry *g);

/* Byte offset of the backup copy in an image of image_size bytes. */
static inline uint64_t rd_sb_backup_offset(uint64_t image_size)
{
	return image_size - RD_SB_SIZE;
}

#endif
