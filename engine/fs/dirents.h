/*
 * dirents.h - directory entries: finding, inserting and removing names in one directory.
 *
 * Owns: the dirent key encoding (struct rd_dirent_v + name at {dir, slot}) and the probing
 * rules of probe.h applied to it. Callers changing a directory hold its inode lock, which
 * serialises every change to its entries; lookups may run without it (see probe.h: a chain
 * never has a hole between a name's hash slot and its entry, so a walk that races with
 * commits still finds every name that is present throughout).
 *
 * Must never: change an inode (link counts and times are namei's), or move an entry to
 * another slot (slots are readdir cookies).
 */
#ifndef RD_DIRENTS_H
#define RD_DIRENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd_fs;
struct rd_trans;
struct rd_bkey;

struct rd_dirent {
	uint64_t slot;
	uint64_t inum;
	unsigned d_type;	/* DT_* */
};

/* Decodes a RD_KEY_DIRENT key; name points into k. -EIO if it is malformed. */
int rd_dirent_decode(const struct rd_bkey *k, struct rd_dirent *d, const uint8_t **name,
		     size_t *len);

/* The entry called name in dir: 0 and *d, -ENOENT, or an error. */
int rd_dirent_lookup(struct rd_fs *fs, uint64_t dir, const char *name, size_t len,
		     struct rd_dirent *d);

/* Where a new entry called name goes: the first whiteout of its chain, else the empty slot
 * ending it. -EEXIST if name is present. Caller holds dir's lock until it committed. */
int rd_dirent_find_slot(struct rd_fs *fs, uint64_t dir, const char *name, size_t len,
			uint64_t *slot);

/* Queues the entry (name -> inum) at slot of dir: a new entry or an overwrite. */
int rd_dirent_put(struct rd_trans *t, uint64_t dir, uint64_t slot, const char *name,
		  size_t len, uint64_t inum, unsigned d_type);

/* Queues the removal of the entry at slot (see rd_probe_remove for trim). */
int rd_dirent_remove(struct rd_fs *fs, struct rd_trans *t, uint64_t dir, uint64_t slot,
		     bool trim);

/* 1 if dir has no entries (whiteouts do not count), 0 if it has some, or an error. */
int rd_dir_is_empty(struct rd_fs *fs, uint64_t dir);

/* DT_* of a mode. */
static inline unsigned rd_mode_dtype(uint32_t mode)
{
	return (mode >> 12) & 15;
}

#endif
