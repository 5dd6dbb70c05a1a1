/*
 * cmd_gc.c - `refdio gc`: run copying GC now, on an image (offline) or a mount.
 * Owns: choosing the way (an image is opened and collected in this process; a directory
 * is taken to be a mount and asked through REFDIO_IOC_GC) and printing what was done.
 * Must never: open an image that is mounted (the image's own lock refuses it) or print a
 * figure the engine did not report.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "refdio.h"
#include "refdio_ioctl.h"

static void gc_usage(FILE *f)
{
	fprintf(f,
"usage: refdio gc IMAGE|MOUNTPOINT\n"
"\n"
"Runs copying garbage collection now: the buckets with the least live data are emptied\n"
"by moving their live extents to new space, round after round, while each round leaves\n"
"more empty buckets than before. IMAGE is opened (it must not be mounted); for a\n"
"MOUNTPOINT the mounted daemon does it (REFDIO_IOC_GC). Prints what was moved.\n"
"\n"
"options:\n"
"  -h, --help  this text\n");
}

static void print_run(const char *what, uint64_t rounds, uint64_t freed, uint64_t extents,
		      uint64_t moved, uint64_t read, uint64_t skipped, uint64_t before,
		      uint64_t after)
{
	printf("%s: %" PRIu64 " rounds, %" PRIu64 " buckets freed, %" PRIu64 " extents moved "
	       "(%" PRIu64 " bytes written, %" PRIu64 " read), %" PRIu64 " left for later; "
	       "empty buckets %" PRIu64 " -> %" PRIu64 "\n", what, rounds, freed, extents,
	       moved, read, skipped, before, after);
}

static int gc_mount(const char *mnt)
{
	struct refdio_gc g;
	int fd, ret = 0;

	fd = open(mnt, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rd_fail("gc", "%s: %s", mnt, strerror(errno));
	memset(&g, 0, sizeof(g));
	g.flags = REFDIO_GC_RUN;
	if (ioctl(fd, REFDIO_IOC_GC, &g)) {
		ret = rd_fail("gc", "%s: %s%s", mnt, strerror(errno),
			      errno == ENOTTY ? " (not a refdio mount?)" : "");
	} else {
		print_run(mnt, g.run_rounds, g.run_buckets_freed, g.run_extents_moved,
			  g.run_bytes_moved, g.run_bytes_read, g.run_skipped, g.run_empty_before,
			  g.run_empty_after);
	}
	close(fd);
	return ret;
}

static int gc_image(const char *path)
{
	struct rd_gc_report r;
	struct rd_fs *fs;
	char why[256] = "";
	int ret;

	ret = rd_fs_open(path, NULL, &fs, why, sizeof(why));
	if (ret)
		return rd_fail("gc", "%s: %s%s%s", path, rd_strerror(ret), why[0] ? ": " : "",
			       why);
	ret = rd_fs_gc(fs, &r);
	if (ret) {
		rd_fail("gc", "%s: %s", path, rd_strerror(ret));
		rd_fs_close(fs);
		return 1;
	}
	ret = rd_fs_close(fs);
	if (ret)
		return rd_fail("gc", "%s: closing: %s", path, rd_strerror(ret));
	print_run(path, r.rounds, r.buckets_freed, r.extents_moved, r.bytes_moved,
		  r.bytes_read, r.skipped, r.empty_before, r.empty_after);
	return 0;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stat st;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h': gc_usage(stdout); return 0;
		default: gc_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		gc_usage(stderr);
		return 2;
	}
	if (stat(argv[optind], &st))
		return rd_fail("gc", "%s: %s", argv[optind], strerror(errno));
	if (S_ISDIR(st.st_mode))
		return gc_mount(argv[optind]);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return rd_fail("gc", "%s: not an image (regular file or block device) nor a "
			       "mount point", argv[optind]);
	return gc_image(argv[optind]);
}
