/*
 * test_csum_flip.c - a flipped bit in file data on the device is caught, never returned.
 *
 * Writes two files (one of several extents), closes, flips one bit inside one extent's
 * region directly in the image file (found through the extent key), reopens: reading any
 * byte whose extent points into that region gives -EIO and counts a checksum error; every
 * other range reads back intact. A trimmed extent sharing the damaged region fails too
 * (the checksum covers the whole region), while its untouched neighbours do not. The
 * filesystem check reports the damage for each extent naming the region, with its inode
 * and file range, cannot repair it, and is clean once the range was rewritten.
 */
#include <stdlib.h>
#include <string.h>

#include "data_util.h"
#include "fsck_util.h"

static void flip_bit(const char *path, uint64_t off, unsigned bit)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	CHECK(fd >= 0);
	CHECK(pread(fd, &b, 1, (off_t)off) == 1);
	b ^= (uint8_t)(1u << bit);
	CHECK(pwrite(fd, &b, 1, (off_t)off) == 1);
	CHECK(fsync(fd) == 0);
	CHECK(close(fd) == 0);
}

/* The extent covering file byte pos of ino. */
static struct rd_extent extent_at(struct rd_fs *fs, uint64_t ino, uint64_t pos)
{
	struct rd_extent_list l = { 0 };
	struct rd_extent e;
	bool more;

	CHECK_OK(rd_extents_collect(rd_fs_store(fs), ino, pos >> 9, (pos >> 9) + 1, 0, &l,
				    &more));
	CHECK_EQ(l.nr, 1);
	e = l.e[0];
	rd_extent_list_free(&l);
	return e;
}

int main(void)
{
	struct du_geo g = { .size = 64 << 20 };
	static uint8_t a[200000], b[65536], rb[200000];
	struct rd_fs_stats st;
	struct rd_extent victim, other;
	uint64_t fa, fb, seed = test_seed();
	char path[128];
	struct rd_fs *fs;

	du_format(path, "flip", &g);
	fs = du_open(path);
	fa = du_create(fs, "a");
	fb = du_create(fs, "b");
	du_fill(a, seed, 0, sizeof(a));
	du_fill(b, seed + 1, 0, sizeof(b));
	/* a: written in pieces so it has several extents; then a middle overwrite splits
	 * one of them, so two keys share the region we damage. */
	for (uint64_t off = 0; off < sizeof(a); off += 40000)
		du_write(fs, fa, a + off, sizeof(a) - off < 40000 ? sizeof(a) - off : 40000, off);
	du_write(fs, fb, b, sizeof(b), 0);
	du_fill(a + 45056, seed + 2, 0, 4096);
	du_write(fs, fa, a + 45056, 4096, 45056);
	victim = extent_at(fs, fa, 50000);
	other = extent_at(fs, fa, 150000);
	CHECK(victim.dev_offset != other.dev_offset);
	CHECK(victim.region_offset > 0);	/* the back piece of the split */
	CHECK_OK(rd_fs_close(fs));

	/* Damage one bit in the part of the region the front piece (before the split)
	 * still uses: both pieces name the region, so both must fail. */
	fu_check_clean(path, true, 0);
	flip_bit(path, victim.dev_offset + 1000, (unsigned)(seed % 8));

	/* fsck: one finding per extent naming the region (the front and back pieces of the
	 * split), each with inode and byte range; nothing else; -y cannot repair it. */
	{
		struct fu_run r;

		for (int repair = 0; repair < 2; repair++) {
			fu_fsck(path, repair, true, 0, &r);
			if (r.res.problems != 2)
				fu_print(&r);
			CHECK_EQ(r.res.problems, 2);
			CHECK_EQ(r.res.fixed, 0);
			CHECK_EQ(fu_count(&r, "data-csum", fa), 2);
			CHECK(strstr(r.f[0].msg, "checksum mismatch"));
			CHECK(strstr(r.f[0].msg, "file bytes [36864, 45056)") ||
			      strstr(r.f[1].msg, "file bytes [36864, 45056)"));
			CHECK(strstr(r.f[0].msg, "file bytes [49152, ") ||
			      strstr(r.f[1].msg, "file bytes [49152, "));
		}
		/* Without the data pass it goes unseen. */
		fu_fsck(path, false, false, 0, &r);
		CHECK_EQ(r.res.problems, 0);
	}

	fs = du_open(path);
	CHECK_EQ(rd_fs_read(fs, fa, rb, 100, 50000), -EIO);
	CHECK_EQ(rd_fs_read(fs, fa, rb, 10, 41000), -EIO);	/* the front piece */
	CHECK_EQ(rd_fs_read(fs, fa, rb, sizeof(a), 0), -EIO);	/* a range including it */
	rd_fs_stats(fs, &st);
	CHECK_EQ(st.csum_errors, 3);
	/* The overwritten block in the middle, the other extents and the other file: fine. */
	CHECK_EQ(rd_fs_read(fs, fa, rb, 4096, 45056), 4096);
	CHECK(memcmp(rb, a + 45056, 4096) == 0);
	CHECK_EQ(rd_fs_read(fs, fa, rb, 50000, 120000), 50000);
	CHECK(memcmp(rb, a + 120000, 50000) == 0);
	CHECK_EQ(rd_fs_read(fs, fa, rb, 30000, 0), 30000);
	CHECK(memcmp(rb, a, 30000) == 0);
	CHECK_EQ(rd_fs_read(fs, fb, rb, sizeof(b), 0), sizeof(b));
	CHECK(memcmp(rb, b, sizeof(b)) == 0);
	rd_fs_stats(fs, &st);
	CHECK_EQ(st.csum_errors, 3);

	/* An unaligned write onto the damaged region must read it back: it fails too. */
	CHECK_EQ(rd_fs_write(fs, fa, a + 40000, 100, 40000, 0), -EIO);
	/* Rewriting whole blocks over it heals it: the new data goes to new space. */
	du_write(fs, fa, a + 36864, 81920 - 36864, 36864);
	CHECK_EQ(rd_fs_read(fs, fa, rb, sizeof(a), 0), sizeof(a));
	CHECK(memcmp(rb, a, sizeof(a)) == 0);
	CHECK_OK(rd_fs_close(fs));
	fu_check_clean(path, true, 0);
	unlink(path);
	printf("test_csum_flip: ok\n");
	return 0;
}
