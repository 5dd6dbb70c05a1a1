/*
 * fuzz_sb.c - libFuzzer harness: superblock parsing and validation (engine/core/sb.c).
 *
 * Input:
 *   byte 0      flags: SB_FIX_P / SB_FIX_B recompute the primary's / backup's checksum,
 *               SB_OWN_BACKUP: the backup is its own bytes (else a copy of the primary),
 *               SB_OPEN: when a copy is accepted, open the store on the image as well
 *   bytes 1-2   image size in KiB (le16, at most 16 MiB; the memfd is sparse)
 *   bytes 3-4   length P of the primary's bytes (le16, at most 4096)
 *   P bytes     the primary superblock (zero-padded to 4096), then the backup's bytes
 *
 * Each input: rd_sb_validate on the primary's buffer, then rd_sb_read on an image holding
 * both copies (the primary at RD_SB_OFFSET, the backup at the end of the device the primary
 * names, or of the image); a copy accepted must give a geometry the rest of the engine can
 * rely on (checked below without trusting the arithmetic rd_sb_validate did). With
 * SB_OPEN, a read-only rd_store_open follows: the journal, tree and allocator set-up sized
 * by that geometry (the image holds nothing else, so the open fails further on).
 *
 * Must never: leave a file behind (memfd only).
 */
#include <string.h>
#include <unistd.h>

#include "refdio/errors.h"
#include "fuzz.h"
#include "io.h"
#include "sb.h"
#include "store.h"

#define SB_HDR		5
#define SB_IMAGE_MAX	(16ull << 20)

bool fz_accepted;

static struct fz_image im;	/* only its memfd is used here */

/* What a superblock that rd_sb_validate accepted promises the rest of the engine. */
static void check_geometry(const struct rd_sb *sb, uint64_t image_size)
{
	struct rd_geometry g;

	rd_sb_geometry(sb, &g);
	fz_assert(g.block_size >= 512 && g.block_size <= 65536 &&
		  !(g.block_size & (g.block_size - 1)));
	fz_assert(!(g.bucket_size & (g.bucket_size - 1)) && g.bucket_size / 16 >= g.block_size);
	fz_assert(!(g.btree_node_size & (g.btree_node_size - 1)) && g.btree_node_size >= 4096 &&
		  g.btree_node_size <= g.bucket_size && g.btree_node_size >= g.block_size);
	fz_assert(g.encoded_extent_max >= g.block_size &&
		  g.encoded_extent_max <= g.bucket_size);
	fz_assert(g.meta_csum > RD_CSUM_NONE && g.meta_csum < RD_CSUM_NR &&
		  g.data_csum < RD_CSUM_NR);
	fz_assert(g.dev_size <= image_size && g.dev_size / g.bucket_size == g.nbuckets &&
		  g.dev_size % g.bucket_size == 0);
	/* bucket 0 | journal | at least 8 allocatable | the backup's bucket */
	fz_assert(g.journal_start >= 1 && g.journal_buckets >= 1 &&
		  g.journal_start < g.nbuckets && g.journal_buckets < g.nbuckets - g.journal_start);
	fz_assert(g.first_bucket == g.journal_start + g.journal_buckets);
	fz_assert(g.last_bucket == g.nbuckets - 1 && g.first_bucket < g.last_bucket &&
		  g.last_bucket - g.first_bucket >= 8);
	for (unsigned i = 0; i < RD_BTREE_ID_MAX; i++) {
		uint64_t off = rd_le64_get(sb->roots[i].ptr.offset);

		/* A root node lies inside the device (no wrap-around in the check). */
		fz_assert(!off || (off % g.block_size == 0 && off <= g.dev_size &&
				   g.dev_size - off >= g.btree_node_size));
	}
}

static void copy_sb(struct rd_sb *dst, const uint8_t *src, size_t n, bool fix)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, n < sizeof(*dst) ? n : sizeof(*dst));
	if (fix)
		dst->csum = rd_le32_of(rd_sb_csum(dst));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct rd_sb p, b, out;
	struct rd_io_opts io_opts = { .read_only = true, .no_direct = true };
	struct rd_open_opts oo = { .read_only = true, .no_direct = true };
	struct rd_sb_report rep;
	struct rd_store *s;
	struct rd_io *io;
	uint64_t size, dev, boff;
	size_t plen;
	uint8_t flags;
	char why[256];
	int ret;

	fz_accepted = false;
	if (len < SB_HDR)
		return 0;
	flags = data[0];
	size = (uint64_t)(data[1] | data[2] << 8) << 10;
	if (size > SB_IMAGE_MAX)
		size = SB_IMAGE_MAX;
	plen = (size_t)(data[3] | data[4] << 8);
	if (plen > RD_SB_SIZE)
		plen = RD_SB_SIZE;
	if (plen > len - SB_HDR)
		plen = len - SB_HDR;
	copy_sb(&p, data + SB_HDR, plen, flags & SB_FIX_P);
	if (flags & SB_OWN_BACKUP)
		copy_sb(&b, data + SB_HDR + plen, len - SB_HDR - plen, flags & SB_FIX_B);
	else
		b = p;

	/* The buffer alone. */
	if (!rd_sb_validate(&p, size, why, sizeof(why)))
		check_geometry(&p, size);

	/* Both copies in an image: where rd_sb_read looks for the backup. */
	if (!im.buf && fz_image_load(&im, NULL, 0))
		abort();	/* no memfd: nothing can run */
	if (ftruncate(im.fd, 0) || ftruncate(im.fd, (off_t)size))
		return 0;
	dev = rd_le64_get(p.dev_size);
	if (dev < 3 * RD_SB_SIZE || dev > size)
		dev = size;
	boff = dev >= RD_SB_SIZE ? dev - RD_SB_SIZE : 0;
	if (size >= RD_SB_OFFSET + RD_SB_SIZE &&
	    pwrite(im.fd, &p, RD_SB_SIZE, RD_SB_OFFSET) != RD_SB_SIZE)
		return 0;
	if (size >= 3 * RD_SB_SIZE && pwrite(im.fd, &b, RD_SB_SIZE, (off_t)boff) != RD_SB_SIZE)
		return 0;
	if (rd_io_open(im.path, &io_opts, &io))
		return 0;
	ret = rd_sb_read(io, &out, &rep, why, sizeof(why));
	rd_io_close(io);
	if (ret)
		return 0;
	/* The copy in force is one of the two, valid, and the newest valid one. */
	fz_assert(!rd_sb_validate(&out, size, NULL, 0));
	fz_assert(!memcmp(&out, rep.used_backup ? &b : &p, sizeof(out)));
	fz_assert(rep.used_backup ? !rep.backup && (rep.primary || rep.backup_seq > rep.primary_seq)
				  : !rep.primary && (rep.backup || rep.primary_seq >= rep.backup_seq));
	check_geometry(&out, size);
	fz_accepted = true;

	if (flags & SB_OPEN) {
		ret = rd_store_open(im.path, &oo, &s, why, sizeof(why));
		if (!ret)
			rd_store_close(s);
	}
	return 0;
}

/* Both copies' checksums no longer match (and are not fixed): nothing may be accepted. */
bool fz_damage(uint8_t *buf, size_t n)
{
	size_t plen;

	if (n < SB_HDR + 16)
		return false;
	buf[0] &= (uint8_t)~(SB_FIX_P | SB_FIX_B);
	plen = (size_t)(buf[3] | buf[4] << 8);
	if (plen > n - SB_HDR)
		plen = n - SB_HDR;
	if (plen > 16)
		buf[SB_HDR + 16] ^= 0x40;	/* the version field: under the checksum */
	if ((buf[0] & SB_OWN_BACKUP) && n > SB_HDR + plen + 16)
		buf[SB_HDR + plen + 16] ^= 0x40;
	return plen > 16;
}
