/*
 * cli_image.c - opening an image for a subcommand, with messages that name the problem.
 * Owns: the one place where the tool turns an open failure into words and an exit code.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "cmd.h"
#include "refdio.h"

/* The image must be a regular file or a block device. */
static int check_path(const char *cmd, const char *path)
{
	struct stat st;
	int err;

	if (stat(path, &st)) {
		err = -errno;
		rd_fail(cmd, "%s: %s", path, rd_strerror(err));
		return err;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		rd_fail(cmd, "%s: not a regular file or block device", path);
		return -EINVAL;
	}
	return 0;
}

int rd_cli_open(const char *cmd, const char *path, bool read_only, struct rd_store **out)
{
	struct rd_open_opts o = { .read_only = read_only };
	char why[256] = "";
	int ret;

	ret = check_path(cmd, path);
	if (ret)
		return ret;
	ret = rd_store_open(path, &o, out, why, sizeof(why));
	if (ret)
		rd_fail(cmd, "%s: %s%s%s", path, rd_strerror(ret), why[0] ? ": " : "", why);
	return ret;
}

int rd_cli_probe(const char *cmd, const char *path, struct rd_sb_report *rep)
{
	char why[256] = "";
	int ret;

	ret = check_path(cmd, path);
	if (ret)
		return ret;
	ret = rd_image_probe(path, rep, why, sizeof(why));
	if (ret)
		rd_fail(cmd, "%s: %s%s%s", path, rd_strerror(ret), why[0] ? ": " : "", why);
	return ret;
}
