/*
 * cmd_mount.c - `refdio mount`, and the mount-helper form `refdio IMAGE MOUNTPOINT -o ...`.
 * Owns: nothing but the hand-over to the daemon (fuse/daemon.c).
 */
#include "cmd.h"
#include "daemon.h"

int cmd_mount(int argc, char **argv)
{
	struct rd_mount_opts o;
	int ret = rd_mount_parse(argc, argv, &o);

	if (ret > 0)
		return 0;	/* --help */
	if (ret < 0)
		return 2;
	return rd_mount_run(&o);
}
