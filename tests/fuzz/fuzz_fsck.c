/*
 * fuzz_fsck.c - libFuzzer harness: the filesystem check (engine/fsck*.c) over a small
 * corrupted image: superblock copies, nodes, journal and keys as the fuzzer changed them.
 *
 * Input: an image (fuzz.h's codec); the seeds are small populated images, closed cleanly
 * or crashed. Flags beyond FZ_FIX_CSUMS:
 *   FK_REPAIR  open read-write and repair (fsck -y), close, then check again read-only: if
 *              the repair fixed everything it found, the second check must find nothing
 *   FK_DATA    verify every data region's checksum too (fsck without --no-data)
 *
 * Each input: the superblock report (rd_sb_read), rd_store_open, rd_fsck_fs, close; the
 * same calls `refdio fsck` makes.
 *
 * Must never: leave a file behind (the image is a memfd).
 */
#include <errno.h>
#include <string.h>

#include "errors.h"
#include "fsck.h"
#include "fuzz.h"
#include "io.h"
#include "sb.h"
#include "store.h"


bool fz_accepted;

static struct fz_image im;

/* One `refdio fsck` run: 0 and *res, or the error that kept the check from running. */
static int fsck_once(bool repair, bool data, struct rd_fsck_result *res)
{
	struct rd_io_opts io_opts = { .read_only = true, .no_direct = true };
	struct rd_open_opts oo = { .read_only = !repair, .no_direct = true };
	struct rd_fsck_opts fo = { .repair = repair, .data = data };
	struct rd_sb_report rep;
	struct rd_store *s;
	struct rd_io *io;
	struct rd_sb sb;
	char why[256];
	int ret;

	memset(res, 0, sizeof(*res));
	ret = rd_io_open(im.path, &io_opts, &io);
	if (ret)
		return ret;
	ret = rd_sb_read(io, &sb, &rep, why, sizeof(why));
	rd_io_close(io);
	if (ret)
		return ret;
	ret = rd_store_open(im.path, &oo, &s, why, sizeof(why));
	if (ret)
		return ret;
	ret = rd_fsck_fs(s, &rep, &fo, res);
	if (rd_store_close(s) && !ret && repair)
		ret = -EIO;	/* the repairs may not all have reached the image */
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rd_fsck_result res, again;
	bool data_csums;

	fz_accepted = false;
	if (fz_image_load(&im, data, len))
		return 0;
	data_csums = im.flags & FK_DATA;
	if (fsck_once(im.flags & FK_REPAIR, data_csums, &res))
		return 0;
	fz_assert(res.fixed <= res.problems);
	fz_accepted = res.fs_checked && !res.problems;
	if (!(im.flags & FK_REPAIR) || !res.fs_checked || res.fixed != res.problems)
		return 0;
	/* Everything found was repaired: a check now finds nothing. */
	if (fsck_once(false, data_csums, &again)) {
		fprintf(stderr, "the image fsck -y repaired no longer opens\n");
		abort();
	}
	if (again.problems || !again.fs_checked)
		fprintf(stderr, "fsck -y fixed %u of %u problems, then fsck -n found %u (checked: "
			"%d)\n", res.fixed, res.problems, again.problems, again.fs_checked);
	fz_assert(again.fs_checked && !again.problems);
	return 0;
}

/* Every node header is damaged: the check finds problems or the image cannot open. */
bool fz_damage(uint8_t *buf, size_t n)
{
	return fz_damage_magics(buf, n, FZ_DAMAGE_NODES) > 0;
}
