/*
 * fsck.h - consistency checks of an open store.
 *
 * Owns: the checks that need no file-system knowledge: superblock copies, every node of
 * every tree (checksum, header, key order, pointer generations), and the allocator's
 * counts against what the trees say. The filesystem layer adds its own checks on top.
 *
 * Must never: change anything unless opts->repair is set, and then only what it can fix
 * without losing data (counts recomputed from the trees, never the other way round).
 */
#ifndef RD_FSCK_H
#define RD_FSCK_H

#include <stdbool.h>
#include <stdint.h>

#include "sb.h"

struct rd_store;

struct rd_fsck_opts {
	bool repair;
	/* Each problem found, with whether it was fixed. */
	void (*problem)(void *priv, const char *msg, bool fixed);
	/* Progress: phase name, done and total units (may be called often; throttle). */
	void (*progress)(void *priv, const char *phase, uint64_t done, uint64_t total);
	void *priv;
};

struct rd_fsck_result {
	uint64_t nodes;		/* nodes read and checked */
	uint64_t keys;		/* keys checked in leaves */
	uint64_t buckets;	/* buckets whose counts were checked */
	unsigned problems;	/* found */
	unsigned fixed;		/* of those, repaired */
};

/* Runs every check. Returns 0 when the checks could run (look at res for what they
 * found), or an error that stopped them. */
int rd_fsck(struct rd_store *s, const struct rd_sb_report *sbrep, const struct rd_fsck_opts *o,
	    struct rd_fsck_result *res);

#endif
