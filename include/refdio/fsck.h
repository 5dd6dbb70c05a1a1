/*
 * refdio/fsck.h - consistency checks of an open store, and of the filesystem on it.
 *
 * Owns: two entry points.
 *  - rd_fsck: the checks that need no filesystem knowledge: superblock copies, every node
 *    of every tree (checksum, header, key order, pointer generations), and the allocator's
 *    b-tree counts against what the trees say.
 *  - rd_fsck_fs: rd_fsck, then the filesystem on top (fsck_fs*.c): inodes, directory
 *    entries and their hash chains, xattrs, extents against buckets and generations, link
 *    counts, reachability, orphans, i_size and sectors against extents, and (opts.data)
 *    every data region's checksum. This is what `refdio fsck` runs; docs/fsck.md lists
 *    every check and repair.
 *
 * Must never: change anything unless opts->repair is set, and then only what it can fix
 * without losing data (counts recomputed from the trees, never the other way round; user
 * data is never rewritten). With repair set nothing else may use the store meanwhile.
 */
#ifndef RD_FSCK_H
#define RD_FSCK_H

#include <stdbool.h>
#include <stdint.h>

#include "refdio/image.h"

struct rd_store;

enum rd_fsck_severity {
	RD_FSCK_ERROR,		/* damage: exit 4 unless fixed */
	RD_FSCK_PENDING,	/* work a crash legitimately leaves for the next open (an
				 * orphan to delete, inode numbering behind): not damage */
};

/* One finding, as handed to rd_fsck_opts.problem (valid during the call only). */
struct rd_fsck_problem {
	const char	*kind;		/* short stable identifier ("nlink", "extent-stale"...) */
	const char	*msg;		/* one line that names the object */
	enum rd_fsck_severity severity;
	bool		fixed;		/* repaired (pending work: done) */
	/* The object, where there is one: */
	const char	*tree;		/* b-tree name, or NULL */
	uint64_t	ino;		/* 0: none */
	int64_t		bucket;		/* -1: none */
	uint64_t	start, end;	/* file bytes [start, end); end 0: none */
	const char	*name;		/* dirent/xattr name, escaped printable, or NULL */
};

struct rd_fsck_opts {
	bool repair;
	/* rd_fsck_fs: read every written data region and verify its checksum. */
	bool data;
	/* rd_fsck_fs: the rd_fs_opts.test_hash_mask the image was used with (tests; 0). */
	uint64_t hash_mask;
	/* Each finding. */
	void (*problem)(void *priv, const struct rd_fsck_problem *p);
	/* Progress: phase name, done and total units (0: unknown); called often: throttle. */
	void (*progress)(void *priv, const char *phase, uint64_t done, uint64_t total);
	void *priv;
};

struct rd_fsck_result {
	uint64_t nodes;		/* nodes read and checked */
	uint64_t keys;		/* keys checked in leaves */
	uint64_t tree_keys[RD_TREES];	/* of those, per tree */
	uint64_t buckets;	/* buckets whose counts were checked */
	/* rd_fsck_fs: */
	bool fs_checked;	/* the filesystem checks ran */
	bool fs_skipped;	/* they did not: a tree could not be read whole */
	uint64_t inodes, dirents, xattrs, extents;
	uint64_t data_bytes;	/* bytes of data regions read and verified */
	unsigned problems;	/* errors found */
	unsigned fixed;		/* of those, repaired */
	unsigned pending;	/* crash leftovers found (not errors); done with repair */
};

/* Runs the store-level checks. Returns 0 when the checks could run (look at res for what
 * they found), or an error that stopped them. */
int rd_fsck(struct rd_store *s, const struct rd_sb_report *sbrep, const struct rd_fsck_opts *o,
	    struct rd_fsck_result *res);

/* rd_fsck, then the filesystem checks (skipped, fs_checked false, when a tree could not
 * be read whole or the image holds no filesystem yet). Same return convention. */
int rd_fsck_fs(struct rd_store *s, const struct rd_sb_report *sbrep,
	       const struct rd_fsck_opts *o, struct rd_fsck_result *res);

#endif
