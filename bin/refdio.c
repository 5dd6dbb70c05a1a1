/*
 * refdio.c - the refdio tool: subcommand dispatch, --help and --version.
 *
 * Owns: the table of subcommands and the shared helpers declared in cmd.h. Nothing here
 * touches an image; each subcommand does that in its own file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "rd_config.h"

static const struct rd_cmd commands[] = {
	{ "format", "create a refdio filesystem in an image file", cmd_format },
	{ "show",   "print the superblock and space usage of an image", cmd_show },
	{ "list",   "print the keys of one b-tree of an image", cmd_list },
	{ "fsck",   "check an image (and repair what it safely can)", cmd_fsck },
	{ "mount",  "serve an image at a mount point through FUSE", cmd_mount },
	{ "dio-write", "write to a file of a mount with one direct-write ioctl", cmd_dio_write },
	{ "stats",  "show the direct-write statistics of a mounted filesystem", cmd_stats },
	{ "gc",     "run copying garbage collection on an image or a mount", cmd_gc },
	{ "bench",  "benchmark direct-write strategies and everyday jobs against a baseline",
	  cmd_bench },
	{ "demo",   "show live what the direct-write design is for (scenarios, verdicts)",
	  cmd_demo },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: refdio COMMAND [ARGS...]\n"
		   "       refdio --help | --version\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'refdio COMMAND --help' describes one command.\n");
}

int rd_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "refdio %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int rd_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned shift = 0;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' || *end == 'B')	/* accept "1MiB", "1MB" as the same */
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("refdio %s\n", RD_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	/* mount.fuse3 runs "refdio IMAGE MOUNTPOINT -o OPTIONS": an image, not a command. */
	if (argc >= 3 && argv[1][0] != '-' && access(argv[1], F_OK) == 0)
		return cmd_mount(argc, argv);
	fprintf(stderr, "refdio: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
