/*
 * populate.c - test tool: fill an image with a real filesystem, then close it cleanly.
 * Usage: populate IMAGE NFILES [DATA_KB]
 *
 * Makes 16 directories (one nested in another), NFILES regular files spread over them,
 * a symlink and an xattr on every 8th file, a second name for every 16th, and data:
 * every 4th file gets DATA_KB KiB (default 12) written in two pieces, so the image has
 * extents, split regions and real nodes in every tree for the CLI tests to check and
 * corrupt. Deterministic: the same arguments give the same contents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "refdio/errors.h"
#include "refdio/fs.h"

#define NDIRS	16

static int fail(const char *what, int ret)
{
	fprintf(stderr, "populate: %s: %s\n", what, rd_strerror(ret));
	return 1;
}

int main(int argc, char **argv)
{
	struct rd_fs_cred cr = { 1000, 1000 };
	uint64_t dirs[NDIRS];
	struct rd_stat st;
	struct rd_fs *fs;
	char why[256] = "", name[64];
	unsigned long n, kb;
	char *buf;
	int ret;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: populate IMAGE NFILES [DATA_KB]\n");
		return 2;
	}
	n = strtoul(argv[2], NULL, 0);
	kb = argc == 4 ? strtoul(argv[3], NULL, 0) : 12;
	buf = malloc(kb * 1024 + 1);
	if (!buf)
		return fail("malloc", -12);
	ret = rd_fs_open(argv[1], NULL, &fs, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "populate: open %s: %s %s\n", argv[1], rd_strerror(ret), why);
		free(buf);
		return 1;
	}
	for (unsigned i = 0; i < NDIRS && !ret; i++) {
		snprintf(name, sizeof(name), "dir%u", i);
		ret = rd_fs_mkdir(fs, i == 1 ? dirs[0] : RD_ROOT_INO, name, 0755, &cr, &st);
		dirs[i] = st.ino;
	}
	for (unsigned long i = 0; i < n && !ret; i++) {
		uint64_t dir = dirs[i % NDIRS];

		snprintf(name, sizeof(name), "file-%lu", i);
		ret = rd_fs_mknod(fs, dir, name, S_IFREG | 0644, 0, &cr, &st);
		if (!ret && i % 4 == 0 && kb) {
			size_t half = kb * 512 + 100;
			ssize_t w;

			for (size_t j = 0; j < kb * 1024; j++)
				buf[j] = (char)(i * 31 + j * 7);
			w = rd_fs_write(fs, st.ino, buf, kb * 1024, 0, 0);
			/* an unaligned overwrite in the middle: a split region */
			if (w == (ssize_t)(kb * 1024))
				w = rd_fs_write(fs, st.ino, buf + 1, half, 700, 0);
			ret = w < 0 ? (int)w : 0;
		}
		if (!ret && i % 8 == 0) {
			char target[80];

			snprintf(target, sizeof(target), "../dir%lu/file-%lu", i % NDIRS, i);
			snprintf(name, sizeof(name), "link-%lu", i);
			ret = rd_fs_symlink(fs, dir, name, target, &cr, NULL);
			if (!ret)
				ret = rd_fs_setxattr(fs, st.ino, "user.populate", name,
						     strlen(name), 0);
		}
		if (!ret && i % 16 == 5) {
			snprintf(name, sizeof(name), "hardlink-%lu", i);
			ret = rd_fs_link(fs, st.ino, dirs[(i + 1) % NDIRS], name, NULL);
		}
	}
	free(buf);
	if (ret) {
		rd_fs_close(fs);
		return fail("filling", ret);
	}
	ret = rd_fs_close(fs);
	if (ret)
		return fail("close", ret);
	return 0;
}
