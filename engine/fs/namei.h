/*
 * namei.h - helpers shared by the namespace operations (namei.c, rename.c, readdir.c).
 *
 * Owns: name validation, and taking the locks of several inodes in the one order the
 * locking rules of fs_priv.h allow (increasing inode number).
 *
 * Must never: lock an inode twice, or in any other order.
 */
#ifndef RD_NAMEI_H
#define RD_NAMEI_H

#include <stddef.h>
#include <stdint.h>

struct rd_inode;

#define RD_NLINK_MAX	0x7fffffffu	/* links to one inode (a dir: subdirectories + 2) */
#define RD_RETRY_MAX	1000		/* a name that keeps changing under us: -EIO */

/* Checks a name: 0 and *len; -EINVAL (empty, or holds '/'), -ENAMETOOLONG (> 255 bytes).
 * "." and ".." pass: each operation decides what they mean to it. */
int rd_name_check(const char *name, size_t *len);
/* 1 for ".", 2 for "..", else 0. */
int rd_name_dots(const char *name, size_t len);

/* Locks up to RD_LOCK_MAX inodes (NULLs and duplicates allowed) in increasing number. */
#define RD_LOCK_MAX	4
struct rd_lockset {
	struct rd_inode *ip[RD_LOCK_MAX];
	unsigned n;
};
void rd_lockset_lock(struct rd_lockset *ls, struct rd_inode *const *ips, unsigned n);
void rd_lockset_unlock(struct rd_lockset *ls);

#endif
