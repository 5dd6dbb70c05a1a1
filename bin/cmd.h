/*
 * cmd.h - what the subcommands of the refdio tool share.
 *
 * Owns: the subcommand table's entry type and a few helpers for argument parsing and
 * messages. Each subcommand lives in its own cmd_NAME.c and returns its exit status.
 */
#ifndef RD_CMD_H
#define RD_CMD_H

#include <stdbool.h>
#include <stdint.h>

struct rd_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);	/* argv[0] is the subcommand name */
};

/* "4096", "64k", "1M", "2G", "1T" (powers of 1024); -EINVAL on garbage or overflow. */
int rd_parse_size(const char *s, uint64_t *out);

/* Prints "refdio NAME: message" to stderr; returns 1 for `return rd_fail(...)` chains. */
int rd_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct rd_store;
struct rd_sb_report;

/* Opens an image for command cmd, printing why it failed; returns 0 or the error. */
int rd_cli_open(const char *cmd, const char *path, bool read_only, struct rd_store **out);
/* Reads just the superblock copies (writing nothing), printing why it failed. */
int rd_cli_probe(const char *cmd, const char *path, struct rd_sb_report *rep);

/* The commands, defined in their own files. */
int cmd_format(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_dio_write(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_gc(int argc, char **argv);

#endif
