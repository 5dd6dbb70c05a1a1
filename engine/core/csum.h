/*
 * csum.h - checksums used on disk: crc32c and xxhash (XXH3-64).
 *
 * Owns: computing a checksum of a given rd_csum_type over a buffer, and naming the types.
 * Stored checksums are 64 bits wide; crc32c fills the low 32. Metadata headers store only
 * the low 32 bits of whichever type the superblock selects.
 */
#ifndef RD_CSUM_H
#define RD_CSUM_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "refdio/image.h"

/* crc32c (Castagnoli) continuing from crc; start with 0 for a fresh checksum. */
uint32_t rd_crc32c(uint32_t crc, const void *buf, size_t len);

/* Checksum of buf under type; RD_CSUM_NONE gives 0. */
uint64_t rd_csum(enum rd_csum_type type, const void *buf, size_t len);

/* (rd_csum_name and rd_csum_parse: refdio/image.h) */

#endif
