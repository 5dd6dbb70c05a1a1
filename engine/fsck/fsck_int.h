/*
 * fsck_int.h - what the files of fsck share: reporting, and the state of a filesystem
 * check (fsck_fs.c: the driver, the inode table, the inodes tree, links and reachability;
 * fsck_names.c: directory entries and xattrs; fsck_extents.c: extents, buckets, data
 * checksums; fsck_repair.c: the repairs).
 *
 * Memory: one struct fsck_inode per inode (and per orphan marker), one counter per bucket,
 * plus bounded per-pass state (one directory's current probe run, one batch of data
 * regions). Everything else streams: each tree is read once, in key order.
 *
 * Must never: be included outside fsck*.c.
 */
#ifndef RD_FSCK_INT_H
#define RD_FSCK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "btree.h"
#include "refdio/fsck.h"

struct rd_store;

/* Room for a name escaped by fsck_escape. */
#define FSCK_NAME_BUF	(4 * RD_NAME_MAX + 1)

/* Reports one finding: counts it in res and hands it to o->problem. */
void rd_fsck_report(const struct rd_fsck_opts *o, struct rd_fsck_result *res,
		    const struct rd_fsck_problem *p);

/* The store-level checks (fsck.c); *node_damage: some node could not be read whole. */
int rd_fsck_store(struct rd_store *s, const struct rd_sb_report *sbrep,
		  const struct rd_fsck_opts *o, struct rd_fsck_result *res, bool *node_damage);

/* ---- the inode table ------------------------------------------------------------------ */

/* fsck_inode.state */
#define FI_EXISTS	(1u << 0)	/* a well-formed inode key was found */
#define FI_MARKER	(1u << 1)	/* an orphan marker names it */
#define FI_ORPHAN	(1u << 2)	/* a crash leftover to delete (see fsck_classify) */
#define FI_DETACHED	(1u << 3)	/* exists, named by no entry: goes to lost+found */
#define FI_REACHED	(1u << 4)	/* directories: the walk up reaches the root */
#define FI_WALKING	(1u << 5)	/* directories: on the current walk up (cycle check) */
#define FI_CYCLE	(1u << 6)	/* directories: in a cycle cut off from the root */
#define FI_GONE		(1u << 7)	/* deleted by the repairs */

/* What the check knows of one inode: its on-disk attributes and what the trees say. */
struct fsck_inode {
	uint64_t ino;		/* 0: a free slot of the table */
	uint32_t mode, nlink, flags;	/* on disk */
	uint64_t size, sectors, parent;	/* on disk */
	uint64_t ext_sectors;	/* sum of the sizes of its extents */
	uint64_t named_in;	/* directory of the first entry naming it */
	uint32_t names;		/* entries naming it */
	uint32_t subdirs;	/* directories: entries naming directories */
	uint32_t entries;	/* directories: live entries */
	uint32_t state;		/* FI_* */
};

struct fsck_itab {
	struct fsck_inode *v;
	size_t cap;		/* power of two */
	size_t nr;
};

/* A key range of the trees that belongs to no inode: deleted by the repairs. */
struct fsck_stray {
	enum rd_btree_id tree;
	uint64_t ino;		/* the owner that does not exist */
	uint64_t from, to;	/* key offsets [from, to] (inodes tree: symlink chunks) */
	uint64_t keys;
};

/* A bucket whose count the allocator has wrong, or that the repairs' deletions change. */
struct fsck_bucket_fix {
	uint64_t b;
	uint32_t have;		/* the allocator's count */
	uint64_t live, going;	/* what the extents hold: staying, being deleted */
	bool held;		/* rd_alloc_fsck_hold taken */
	bool can;		/* the repair can set it (fits, no b-tree nodes there) */
};

/* An entry naming an inode that does not exist: made a whiteout by the repairs. */
struct fsck_dangling {
	uint64_t dir, slot, inum;
	char name[FSCK_NAME_BUF];
};

/* The object of a finding (see struct rd_fsck_problem). */
struct fsck_obj {
	enum rd_btree_id tree;
	bool has_tree;
	uint64_t ino;
	bool has_bucket;
	uint64_t bucket;
	uint64_t start, end;
	const char *name;
};

struct fsck_fs {
	struct rd_store *s;
	const struct rd_fsck_opts *o;
	struct rd_fsck_result *res;
	bool repair;			/* opts.repair on a writable store */
	uint8_t hash_key[16];
	uint64_t hash_mask;

	struct fsck_itab itab;
	/* Per bucket, sectors of extents with current pointers: of those that stay, and of
	 * those the repairs delete (keys of missing owners, orphans). */
	uint64_t *live, *going;
	struct fsck_bucket_fix *bfix;	/* buckets whose count is wrong (fsck_check_buckets) */
	size_t nbfix;

	/* The inodes tree. */
	bool have_ino_key;		/* the inode-number key {0, 0} is present */
	uint64_t next_ino;		/* its value */
	uint64_t max_ino;		/* highest inode number present */
	uint64_t lost_found;		/* "lost+found" in the root, a directory; 0: none */

	struct fsck_stray *strays;
	size_t nstrays, strays_cap;
	struct fsck_dangling *dangling;
	size_t ndangling, dangling_cap;

	/* Progress of the current phase. */
	const char *phase;
	uint64_t done, total;
};

struct fsck_inode *fsck_inode_find(struct fsck_fs *c, uint64_t ino);
/* The entry of ino, added (zeroed but for ino) if absent; NULL if out of memory. */
struct fsck_inode *fsck_inode_add(struct fsck_fs *c, uint64_t ino);

/* An inode that exists and is not a crash leftover being deleted. */
static inline bool fsck_inode_live(const struct fsck_inode *fi)
{
	return fi && (fi->state & FI_EXISTS) && !(fi->state & FI_ORPHAN);
}

/* Records keys of a missing owner (merged with the last record when contiguous). */
int fsck_stray_add(struct fsck_fs *c, enum rd_btree_id tree, uint64_t ino, uint64_t offset);

/* k's value in words (the decoder `refdio list` uses), into buf; returns buf. For the
 * messages about a key that does not decode or does not fit. */
const char *fsck_key_text(enum rd_btree_id id, const struct rd_bkey *k, char *buf, size_t len);
#define FSCK_KEY_TEXT	512

/* ---- reporting and progress ---------------------------------------------------------- */

static inline struct fsck_obj fsck_obj_ino(uint64_t ino)
{
	return (struct fsck_obj){ .ino = ino };
}

static inline struct fsck_obj fsck_obj_tree(enum rd_btree_id tree, uint64_t ino)
{
	return (struct fsck_obj){ .tree = tree, .has_tree = true, .ino = ino };
}

static inline struct fsck_obj fsck_obj_bucket(uint64_t bucket)
{
	return (struct fsck_obj){ .bucket = bucket, .has_bucket = true };
}

void fsck_say(struct fsck_fs *c, const char *kind, enum rd_fsck_severity sev, bool fixed,
	      const struct fsck_obj *obj, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Writes name (len bytes) printable into out: bytes outside 0x21..0x7e but space as \xNN,
 * and '"' and '\' escaped. Returns out. */
char *fsck_escape(const void *name, size_t len, char *out, size_t out_len);

void fsck_phase(struct fsck_fs *c, const char *phase, uint64_t total);
void fsck_tick(struct fsck_fs *c, uint64_t n);

/* ---- the passes ----------------------------------------------------------------------- */

int fsck_pass_dirents(struct fsck_fs *c);	/* fsck_names.c */
/* Marks orphans (FI_ORPHAN) and detached inodes (FI_DETACHED): after the dirents pass. */
void fsck_classify(struct fsck_fs *c);
int fsck_pass_xattrs(struct fsck_fs *c);	/* fsck_names.c */
int fsck_pass_extents(struct fsck_fs *c);	/* fsck_extents.c: and the data checksums */
/* Compares every bucket's count with the extents; with repair, holds the buckets that
 * will gain sectors (fsck_extents.c). fsck_settle_buckets repairs and reports. */
int fsck_check_buckets(struct fsck_fs *c);
/* failed: the check stopped before (the holds are dropped, nothing else is done). */
int fsck_settle_buckets(struct fsck_fs *c, bool failed);

/* ---- repairs (fsck_repair.c); each 0 or an error that stops the check ----------------- */

/* Sets bucket b's dirty sectors to want (from the allocator's have). A bucket that gains
 * sectors must be held (rd_alloc_fsck_hold) by the caller. */
int fsck_fix_bucket(struct fsck_fs *c, uint64_t b, uint32_t have, uint32_t want);
/* Deletes the keys of a stray record. Extents go without accounting: the buckets are set
 * afterwards to what stays (until then they count too much, which is safe). */
int fsck_fix_stray(struct fsck_fs *c, const struct fsck_stray *st);
/* Deletes an orphan with everything hanging off it, marker last (accounting as above). */
int fsck_fix_orphan(struct fsck_fs *c, struct fsck_inode *fi);
/* Names a detached inode "#<ino>" in lost+found (created first if missing). */
int fsck_fix_detached(struct fsck_fs *c, struct fsck_inode *fi);
/* Rewrites inode fi->ino with the given nlink, sectors, parent and flags. */
int fsck_fix_inode(struct fsck_fs *c, struct fsck_inode *fi, uint32_t nlink, uint64_t sectors,
		   uint64_t parent, uint32_t flags);
/* Deletes the orphan marker of ino. */
int fsck_fix_marker(struct fsck_fs *c, uint64_t ino);
/* Writes the inode-number key with next_ino. */
int fsck_fix_ino_key(struct fsck_fs *c, uint64_t next_ino);
/* Turns the entry at {dir, slot} into a whiteout. */
int fsck_fix_dirent(struct fsck_fs *c, uint64_t dir, uint64_t slot);

/*
 * Nothing is committed before every bucket that holds live extents but is counted short
 * is held (fsck_check_buckets): a commit may checkpoint, a checkpoint takes free buckets
 * for its nodes, and a bucket counted empty by mistake is free. So the passes only record
 * what they would change; these settle it afterwards, each repairing (with repair) and
 * reporting: strays, entries naming no inode, orphans, then the buckets' counts.
 */
int fsck_settle_strays(struct fsck_fs *c);
int fsck_settle_dangling(struct fsck_fs *c);
int fsck_settle_orphans(struct fsck_fs *c);

#endif
