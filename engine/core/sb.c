/*
 * sb.c - the superblock: both copies, validation, writing.
 *
 * Owns: reading the primary (RD_SB_OFFSET) and backup (last RD_SB_SIZE bytes of the image)
 * copies, deciding which one is in force, range-checking every field, and writing both.
 *
 * Must never: hand out a superblock whose checksum or ranges were not checked, or write
 * one copy without the other.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "csum.h"
#include "refdio/errors.h"
#include "io.h"
#include "sb.h"

uint32_t rd_sb_csum(const struct rd_sb *sb)
{
	/* The superblock is always checksummed with crc32c: its own checksum type cannot be
	 * read before the checksum is trusted. */
	return rd_crc32c(0, (const uint8_t *)sb + sizeof(sb->csum),
			 sizeof(*sb) - sizeof(sb->csum));
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

#define FAIL(code, ...) do {						\
	if (why)							\
		snprintf(why, why_len, __VA_ARGS__);			\
	return -(code);							\
} while (0)

int rd_sb_validate(const struct rd_sb *sb, uint64_t image_size, char *why, size_t why_len)
{
	uint64_t dev_size, nbuckets, jstart, jbuckets, first;
	uint32_t block, bucket, node, eem;

	if (memcmp(sb->magic, RD_SB_MAGIC, sizeof(sb->magic)))
		FAIL(RD_ERR_NOT_REFDIO, "no refdio magic");
	if (rd_le32_get(sb->csum) != rd_sb_csum(sb))
		FAIL(RD_ERR_SB_CSUM, "checksum mismatch (stored %08x, computed %08x)",
		     rd_le32_get(sb->csum), rd_sb_csum(sb));
	if (rd_le16_get(sb->version_min) > RD_FORMAT_VERSION)
		FAIL(RD_ERR_VERSION, "format version %u needs refdio format %u or newer",
		     rd_le16_get(sb->version), rd_le16_get(sb->version_min));
	if (rd_le16_get(sb->version) < RD_FORMAT_VERSION_MIN)
		FAIL(RD_ERR_VERSION, "format version %u is too old", rd_le16_get(sb->version));
	if (rd_le64_get(sb->features) & ~RD_FEATURES_KNOWN)
		FAIL(RD_ERR_FEATURES, "unknown feature bits %#llx",
		     (unsigned long long)(rd_le64_get(sb->features) & ~RD_FEATURES_KNOWN));

	dev_size = rd_le64_get(sb->dev_size);
	block = rd_le32_get(sb->block_size);
	bucket = rd_le32_get(sb->bucket_size);
	node = rd_le32_get(sb->btree_node_size);
	eem = rd_le32_get(sb->encoded_extent_max);
	nbuckets = rd_le64_get(sb->nbuckets);
	jstart = rd_le64_get(sb->journal_start);
	jbuckets = rd_le64_get(sb->journal_buckets);
	first = rd_le64_get(sb->first_bucket);

	if (!is_pow2(block) || block < 512 || block > 65536)
		FAIL(RD_ERR_SB_INVALID, "block size %u out of range", block);
	if (!is_pow2(bucket) || bucket < 16 * block || bucket > (1u << 30))
		FAIL(RD_ERR_SB_INVALID, "bucket size %u out of range", bucket);
	if (!is_pow2(node) || node < 4096 || node < block || node > bucket)
		FAIL(RD_ERR_SB_INVALID, "b-tree node size %u out of range", node);
	if (!is_pow2(eem) || eem < block || eem > bucket)
		FAIL(RD_ERR_SB_INVALID, "encoded extent max %u out of range", eem);
	if (sb->data_csum >= RD_CSUM_NR)
		FAIL(RD_ERR_SB_INVALID, "unknown data checksum type %u", sb->data_csum);
	if (sb->meta_csum == RD_CSUM_NONE || sb->meta_csum >= RD_CSUM_NR)
		FAIL(RD_ERR_SB_INVALID, "bad metadata checksum type %u", sb->meta_csum);
	if (sb->str_hash != RD_STR_HASH_SIPHASH24)
		FAIL(RD_ERR_SB_INVALID, "unknown string hash type %u", sb->str_hash);
	if (sb->encryption != 0)
		FAIL(RD_ERR_FEATURES, "encryption type %u is not supported", sb->encryption);
	if (dev_size % bucket || dev_size / bucket != nbuckets)
		FAIL(RD_ERR_SB_INVALID, "device size %llu is not %llu buckets of %u",
		     (unsigned long long)dev_size, (unsigned long long)nbuckets, bucket);
	if (jstart < 1 || jbuckets < 1 || jstart > nbuckets || jbuckets > nbuckets ||
	    first != jstart + jbuckets || first + 8 > nbuckets - 1)
		FAIL(RD_ERR_SB_INVALID, "bucket layout inconsistent (journal %llu+%llu, first "
		     "data bucket %llu of %llu)", (unsigned long long)jstart,
		     (unsigned long long)jbuckets, (unsigned long long)first,
		     (unsigned long long)nbuckets);
	for (unsigned i = 0; i < RD_BTREE_ID_MAX; i++) {
		const struct rd_btree_root_disk *r = &sb->roots[i];
		uint64_t off = rd_le64_get(r->ptr.offset);

		/* off + node could wrap around: compare without adding. */
		if (off && (off % block || off > dev_size || dev_size - off < node ||
			    r->level > 32))
			FAIL(RD_ERR_SB_INVALID, "b-tree root %u out of range", i);
	}
	if (image_size < dev_size)
		FAIL(RD_ERR_TRUNCATED, "image is %llu bytes, superblock says %llu",
		     (unsigned long long)image_size, (unsigned long long)dev_size);
	return 0;
}

int rd_sb_read(struct rd_io *io, struct rd_sb *out, struct rd_sb_report *rep, char *why,
	       size_t why_len)
{
	uint64_t size = rd_io_size(io);
	struct rd_sb_report r = { .primary = -RD_ERR_TRUNCATED, .backup = -RD_ERR_TRUNCATED };
	char pwhy[160] = "", bwhy[160] = "";
	struct rd_sb *p = NULL, *b = NULL;
	int ret;

	p = rd_io_buf_alloc(RD_SB_SIZE);
	b = rd_io_buf_alloc(RD_SB_SIZE);
	if (!p || !b) {
		ret = -ENOMEM;
		goto out;
	}
	if (size < RD_SB_OFFSET + RD_SB_SIZE) {
		snprintf(why, why_len, "image is %llu bytes: too small to hold a superblock",
			 (unsigned long long)size);
		ret = size ? -RD_ERR_TRUNCATED : -RD_ERR_NOT_REFDIO;
		goto out;
	}

	ret = rd_io_read(io, p, RD_SB_SIZE, RD_SB_OFFSET);
	r.primary = ret ? ret : rd_sb_validate(p, size, pwhy, sizeof(pwhy));
	if (!r.primary)
		r.primary_seq = rd_le64_get(p->seq);

	/* The backup sits at the end of the device the superblock describes; trust the
	 * primary's dev_size only if the primary is valid, else look at the file's end. */
	{
		uint64_t dev = !r.primary ? rd_le64_get(p->dev_size) : size;

		if (dev >= 2 * RD_SB_SIZE + RD_SB_OFFSET && dev <= size) {
			ret = rd_io_read(io, b, RD_SB_SIZE, rd_sb_backup_offset(dev));
			r.backup = ret ? ret : rd_sb_validate(b, size, bwhy, sizeof(bwhy));
			if (!r.backup)
				r.backup_seq = rd_le64_get(b->seq);
		}
	}

	if (!r.primary && (r.backup || r.primary_seq >= r.backup_seq)) {
		memcpy(out, p, sizeof(*out));
	} else if (!r.backup) {
		memcpy(out, b, sizeof(*out));
		r.used_backup = true;
	} else {
		/* Neither copy is usable: report the more telling of the two errors. */
		if (r.primary == -RD_ERR_NOT_REFDIO && r.backup != -RD_ERR_NOT_REFDIO &&
		    r.backup != -RD_ERR_TRUNCATED) {
			snprintf(why, why_len, "primary superblock: no magic; backup: %s", bwhy);
			ret = r.backup;
		} else {
			snprintf(why, why_len, "primary superblock: %s; backup: %s",
				 pwhy[0] ? pwhy : rd_strerror(r.primary),
				 bwhy[0] ? bwhy : rd_strerror(r.backup));
			ret = r.primary;
		}
		goto out;
	}
	ret = 0;
	if (r.primary || r.backup) {
		snprintf(why, why_len, "%s superblock: %s", r.primary ? "primary" : "backup",
			 r.primary ? (pwhy[0] ? pwhy : rd_strerror(r.primary))
				   : (bwhy[0] ? bwhy : rd_strerror(r.backup)));
	}
out:
	if (rep)
		*rep = r;
	rd_io_buf_free(p);
	rd_io_buf_free(b);
	return ret;
}

int rd_sb_write(struct rd_io *io, struct rd_sb *sb)
{
	uint64_t dev = rd_le64_get(sb->dev_size);
	struct rd_sb *buf;
	int ret;

	assert(dev >= RD_SB_OFFSET + 2 * RD_SB_SIZE);	/* validated: copies apart */

	buf = rd_io_buf_alloc(RD_SB_SIZE);
	if (!buf)
		return -ENOMEM;
	sb->seq = rd_le64_of(rd_le64_get(sb->seq) + 1);
	sb->csum = rd_le32_of(rd_sb_csum(sb));
	memcpy(buf, sb, RD_SB_SIZE);

	/* Backup first, then primary, each made durable before the next: a crash between
	 * the two leaves one copy at the new seq and the other intact at the old one. */
	ret = rd_io_write(io, buf, RD_SB_SIZE, rd_sb_backup_offset(dev));
	if (!ret)
		ret = rd_io_flush(io);
	if (!ret)
		ret = rd_io_write(io, buf, RD_SB_SIZE, RD_SB_OFFSET);
	if (!ret)
		ret = rd_io_flush(io);
	rd_io_buf_free(buf);
	return ret;
}

void rd_sb_geometry(const struct rd_sb *sb, struct rd_geometry *g)
{
	uint64_t x;

	memset(g, 0, sizeof(*g));
	g->dev_size = rd_le64_get(sb->dev_size);
	g->block_size = rd_le32_get(sb->block_size);
	g->bucket_size = rd_le32_get(sb->bucket_size);
	g->btree_node_size = rd_le32_get(sb->btree_node_size);
	g->encoded_extent_max = rd_le32_get(sb->encoded_extent_max);
	g->data_csum = sb->data_csum;
	g->meta_csum = sb->meta_csum;
	g->nbuckets = rd_le64_get(sb->nbuckets);
	g->journal_start = rd_le64_get(sb->journal_start);
	g->journal_buckets = rd_le64_get(sb->journal_buckets);
	g->first_bucket = rd_le64_get(sb->first_bucket);
	g->last_bucket = g->nbuckets - 1;	/* the last bucket holds the backup copy */
	memcpy(&x, sb->uuid, sizeof(x));
	g->magic_xor = le64toh(x);
}
