/*
 * fsck_fs.c - the filesystem checks: the driver (rd_fsck_fs), the inode table, the pass
 * over the inodes tree, and what is judged once every tree was read: link counts, parent
 * pointers, reachability from the root, orphans, sectors and i_size against the extents,
 * the inode-number key.
 *
 * Order (each tree read once, in key order): the store-level checks (fsck.c); inodes
 * (the table is built); dirents (names counted, chains checked); xattrs; extents (sectors
 * per inode and per bucket, data checksums); buckets against the allocator; then the
 * per-inode verdicts. The passes only read; repairs (fsck_repair.c) start with the
 * buckets' counts (see fsck_int.h for why nothing may be committed before), then keys
 * without an owner, entries naming no inode, and the per-inode verdicts.
 *
 * Must never: trust a count it checks to compute what it checks it against (link counts
 * come from the entries, sectors from the extents, never the other way round), or repair
 * anything that is not derived from other keys (see docs/fsck.md).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "refdio/errors.h"
#include "fsck_int.h"
#include "store.h"

/* ---- reporting ------------------------------------------------------------------------ */

char *fsck_escape(const void *name, size_t len, char *out, size_t out_len)
{
	const uint8_t *p = name;
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < out_len; i++) {
		if (p[i] == '"' || p[i] == '\\') {
			out[o++] = '\\';
			out[o++] = (char)p[i];
		} else if (p[i] < 0x20 || p[i] > 0x7e) {
			o += (size_t)snprintf(out + o, out_len - o, "\\x%02x", p[i]);
		} else {
			out[o++] = (char)p[i];
		}
	}
	out[o < out_len ? o : out_len - 1] = '\0';
	return out;
}

void fsck_say(struct fsck_fs *c, const char *kind, enum rd_fsck_severity sev, bool fixed,
	      const struct fsck_obj *obj, const char *fmt, ...)
{
	struct rd_fsck_problem p = {
		.kind = kind, .severity = sev, .fixed = fixed,
		.tree = obj->has_tree ? rd_btree_name(obj->tree) : NULL,
		.ino = obj->ino, .bucket = obj->has_bucket ? (int64_t)obj->bucket : -1,
		.start = obj->start, .end = obj->end, .name = obj->name,
	};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p.msg = msg;
	rd_fsck_report(c->o, c->res, &p);
}

void fsck_phase(struct fsck_fs *c, const char *phase, uint64_t total)
{
	c->phase = phase;
	c->done = 0;
	c->total = total;
	if (c->o->progress)
		c->o->progress(c->o->priv, phase, 0, total);
}

void fsck_tick(struct fsck_fs *c, uint64_t n)
{
	uint64_t before = c->done;

	c->done += n;
	/* Every 1024 units (the callback throttles by time on top). */
	if (c->o->progress && (before >> 10 != c->done >> 10 || c->done == c->total))
		c->o->progress(c->o->priv, c->phase, c->done, c->total);
}

/* ---- the inode table: open addressing, linear probing, at most half full ------------ */

static size_t ino_hash(uint64_t ino, size_t cap)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static struct fsck_inode *itab_slot(struct fsck_itab *t, uint64_t ino)
{
	size_t i = ino_hash(ino, t->cap);

	/* a power of two, with a free slot to end the probe */
	assert(ino && t->cap && !(t->cap & (t->cap - 1)) && t->nr < t->cap);
	while (t->v[i].ino && t->v[i].ino != ino)
		i = (i + 1) & (t->cap - 1);
	return &t->v[i];
}

struct fsck_inode *fsck_inode_find(struct fsck_fs *c, uint64_t ino)
{
	struct fsck_inode *fi;

	if (!ino || !c->itab.cap)
		return NULL;
	fi = itab_slot(&c->itab, ino);
	return fi->ino ? fi : NULL;
}

static int itab_grow(struct fsck_itab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	struct fsck_itab n = { .v = calloc(cap, sizeof(*n.v)), .cap = cap, .nr = t->nr };

	if (!n.v)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].ino)
			*itab_slot(&n, t->v[i].ino) = t->v[i];
	free(t->v);
	*t = n;
	return 0;
}

struct fsck_inode *fsck_inode_add(struct fsck_fs *c, uint64_t ino)
{
	struct fsck_inode *fi;

	if (!ino)
		return NULL;
	if ((c->itab.nr + 1) * 2 > c->itab.cap && itab_grow(&c->itab))
		return NULL;
	fi = itab_slot(&c->itab, ino);
	if (!fi->ino) {
		memset(fi, 0, sizeof(*fi));
		fi->ino = ino;
		c->itab.nr++;
	}
	assert(fi->ino == ino && c->itab.nr * 2 <= c->itab.cap);	/* at most half full */
	return fi;
}

int fsck_stray_add(struct fsck_fs *c, enum rd_btree_id tree, uint64_t ino, uint64_t offset)
{
	struct fsck_stray *st = c->nstrays ? &c->strays[c->nstrays - 1] : NULL;

	if (st && st->tree == tree && st->ino == ino) {
		st->to = offset;
		st->keys++;
		return 0;
	}
	if (c->nstrays == c->strays_cap) {
		size_t cap = c->strays_cap ? c->strays_cap * 2 : 16;
		struct fsck_stray *n = realloc(c->strays, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->strays = n;
		c->strays_cap = cap;
	}
	c->strays[c->nstrays++] = (struct fsck_stray){ .tree = tree, .ino = ino, .from = offset,
						       .to = offset, .keys = 1 };
	return 0;
}

int fsck_settle_strays(struct fsck_fs *c)
{
	for (size_t i = 0; i < c->nstrays; i++) {
		const struct fsck_stray *st = &c->strays[i];
		struct fsck_obj obj = fsck_obj_tree(st->tree, st->ino);
		bool fixed = false;
		int ret;

		if (c->repair) {
			ret = fsck_fix_stray(c, st);
			if (ret)
				return ret;
			fixed = true;
		}
		fsck_say(c, "stray", RD_FSCK_ERROR, fixed, &obj, "%s tree: %" PRIu64 " key%s of "
			 "inode %" PRIu64 ", which does not exist%s", rd_btree_name(st->tree),
			 st->keys, st->keys == 1 ? "" : "s", st->ino, fixed ? "; deleted" : "");
	}
	return 0;
}

/* ---- the inodes tree ----------------------------------------------------------------- */

static bool mode_valid(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK: case S_IFIFO:
	case S_IFSOCK:
		return true;
	default:
		return false;
	}
}

/* The symlink chunks of the inode being read: checked when the next inode starts. */
struct sym_state {
	uint64_t ino;		/* 0: none */
	uint64_t next;		/* offset expected next */
	uint64_t bytes;
	bool bad;
};

static void sym_finish(struct fsck_fs *c, struct sym_state *ss)
{
	struct fsck_inode *fi = fsck_inode_find(c, ss->ino);
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_INODES, ss->ino);

	if (fi && (fi->state & FI_EXISTS) && S_ISLNK(fi->mode) && !ss->bad &&
	    (ss->bytes != fi->size || !fi->size))
		fsck_say(c, "symlink", RD_FSCK_ERROR, false, &obj, "symlink %" PRIu64 ": target "
			 "chunks hold %" PRIu64 " bytes, its size says %" PRIu64, ss->ino, ss->bytes,
			 fi->size);
	memset(ss, 0, sizeof(*ss));
}

/* A key {ino, 1 + i}: chunk i of a symlink target. */
static int sym_chunk(struct fsck_fs *c, struct sym_state *ss, const struct rd_bkey *k)
{
	struct fsck_inode *fi = fsck_inode_find(c, k->pos.inode);
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_INODES, k->pos.inode);

	if (!fi || !(fi->state & FI_EXISTS))
		return fsck_stray_add(c, RD_BTREE_INODES, k->pos.inode, k->pos.offset);
	if (ss->bad)
		return 0;
	if (!S_ISLNK(fi->mode)) {
		fsck_say(c, "symlink", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 " (mode 0%o) "
			 "has symlink target keys", k->pos.inode, fi->mode);
		ss->bad = true;
	} else if (k->type != RD_KEY_SYMLINK || !k->val_len || k->pos.offset != ss->next ||
		   ss->bytes + k->val_len > fi->size) {
		fsck_say(c, "symlink", RD_FSCK_ERROR, false, &obj, "symlink %" PRIu64 ": target "
			 "chunk at %" PRIu64 " is malformed or out of place (type %u, %u bytes, "
			 "expected chunk %" PRIu64 ", size %" PRIu64 ")", k->pos.inode, k->pos.offset,
			 k->type, k->val_len, ss->next, fi->size);
		ss->bad = true;
	} else {
		ss->bytes += k->val_len;
		ss->next++;
	}
	return 0;
}

/* An inode key {ino, 0}. */
static int inode_key(struct fsck_fs *c, const struct rd_bkey *k)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_INODES, k->pos.inode);
	const struct rd_inode_v *v = (const void *)k->val;
	uint64_t ino = k->pos.inode;
	struct fsck_inode *fi;
	uint32_t mode;

	if (k->type != RD_KEY_INODE || k->val_len != sizeof(*v)) {
		char text[FSCK_KEY_TEXT];

		fsck_say(c, "inode-key", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": key is "
			 "malformed: %s", ino, fsck_key_text(RD_BTREE_INODES, k, text,
							     sizeof(text)));
		return 0;
	}
	if (ino != RD_ROOT_INO && ino < RD_FIRST_FREE_INO) {
		fsck_say(c, "inode-key", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": the "
			 "number is reserved", ino);
		return 0;
	}
	mode = rd_le32_get(v->mode);
	if (!mode_valid(mode)) {
		fsck_say(c, "inode-mode", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": mode "
			 "0%o is no file type", ino, mode);
		return 0;
	}
	if (ino == RD_ROOT_INO && !S_ISDIR(mode)) {
		fsck_say(c, "inode-mode", RD_FSCK_ERROR, false, &obj, "the root inode is not a "
			 "directory (mode 0%o)", mode);
		return 0;
	}
	fi = fsck_inode_add(c, ino);
	if (!fi)
		return -ENOMEM;
	fi->state |= FI_EXISTS;
	fi->mode = mode;
	fi->nlink = rd_le32_get(v->nlink);
	fi->flags = rd_le32_get(v->flags);
	fi->size = rd_le64_get(v->size);
	fi->sectors = rd_le64_get(v->sectors);
	fi->parent = rd_le64_get(v->parent);
	if (ino > c->max_ino)
		c->max_ino = ino;
	c->res->inodes++;
	if (fi->flags & ~(uint32_t)RD_INODE_ORPHAN)
		fsck_say(c, "inode-flags", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": unknown "
			 "flags %#x", ino, fi->flags);
	if (S_ISLNK(mode) && (!fi->size || fi->size > 4095))
		fsck_say(c, "symlink", RD_FSCK_ERROR, false, &obj, "symlink %" PRIu64 ": target "
			 "size %" PRIu64 " is out of range", ino, fi->size);
	return 0;
}

static int pass_inodes(struct fsck_fs *c)
{
	struct sym_state ss = { 0 };
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	int ret;

	fsck_phase(c, "inodes", c->res->tree_keys[RD_BTREE_INODES]);
	rd_btree_iter_init(&it, c->s, RD_BTREE_INODES, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		struct fsck_obj obj = fsck_obj_tree(RD_BTREE_INODES, k->pos.inode);

		fsck_tick(c, 1);
		if (ss.ino && ss.ino != k->pos.inode)
			sym_finish(c, &ss);
		if (k->pos.snapshot) {
			fsck_say(c, "inode-key", RD_FSCK_ERROR, false, &obj, "inodes tree: key at %"
				 PRIu64 ":%" PRIu64 ":%u has a snapshot", k->pos.inode,
				 k->pos.offset, k->pos.snapshot);
		} else if (!k->pos.inode && !k->pos.offset) {
			if (k->type != RD_KEY_INODE_ALLOC ||
			    k->val_len != sizeof(struct rd_inode_alloc_v)) {
				char text[FSCK_KEY_TEXT];

				fsck_say(c, "inode-alloc-key", RD_FSCK_ERROR, false, &obj, "the "
					 "inode-number key is malformed: %s", fsck_key_text(
					 RD_BTREE_INODES, k, text, sizeof(text)));
			} else {
				c->have_ino_key = true;
				c->next_ino = rd_le64_get(
					((const struct rd_inode_alloc_v *)k->val)->next_ino);
			}
		} else if (!k->pos.inode) {
			if (k->type != RD_KEY_ORPHAN || k->val_len) {
				char text[FSCK_KEY_TEXT];

				fsck_say(c, "inode-key", RD_FSCK_ERROR, false, &obj, "inodes tree: key "
					 "at 0:%" PRIu64 " is no orphan marker: %s", k->pos.offset,
					 fsck_key_text(RD_BTREE_INODES, k, text, sizeof(text)));
			} else {
				struct fsck_inode *fi = fsck_inode_add(c, k->pos.offset);

				if (!fi) {
					ret = -ENOMEM;
					break;
				}
				fi->state |= FI_MARKER;
			}
		} else if (!k->pos.offset) {
			ret = inode_key(c, k);
			if (ret)
				break;
			ss = (struct sym_state){ .ino = k->pos.inode, .next = 1 };
		} else {
			if (ss.ino != k->pos.inode)	/* chunks with no inode key before them */
				ss = (struct sym_state){ .ino = k->pos.inode, .next = 1 };
			ret = sym_chunk(c, &ss, k);
			if (ret)
				break;
		}
	}
	rd_btree_iter_exit(&it);
	if (ret != -ENOENT)
		return ret;
	if (ss.ino)
		sym_finish(c, &ss);
	return 0;
}

/* ---- verdicts per inode ------------------------------------------------------------- */

int fsck_settle_orphans(struct fsck_fs *c)
{
	for (size_t i = 0; i < c->itab.cap; i++) {
		struct fsck_inode *fi = &c->itab.v[i];
		struct fsck_obj obj = fsck_obj_ino(fi->ino);
		bool fix = false;
		int ret;

		if (!fi->ino || !(fi->state & FI_ORPHAN))
			continue;
		if (c->repair) {
			ret = fsck_fix_orphan(c, fi);
			if (ret)
				return ret;
			fix = true;
		}
		fsck_say(c, "orphan", RD_FSCK_PENDING, fix, &obj, "inode %" PRIu64 " (mode 0%o, %"
			 PRIu64 " bytes) was unlinked while open: %s", fi->ino, fi->mode, fi->size,
			 fix ? "deleted" : "to delete (the next open does it)");
	}
	return 0;
}

/*
 * Marks every inode as a crash leftover to delete (FI_ORPHAN: no links, an orphan marker,
 * no entry naming it, and for a directory no live entry in it) or detached (FI_DETACHED:
 * exists, not the root, named by no entry, and not an orphan). Runs once the dirents pass
 * counted the names.
 */
void fsck_classify(struct fsck_fs *c)
{
	for (size_t i = 0; i < c->itab.cap; i++) {
		struct fsck_inode *fi = &c->itab.v[i];

		if (!fi->ino || !(fi->state & FI_EXISTS) || fi->ino == RD_ROOT_INO)
			continue;
		if (fi->names)
			continue;
		if ((fi->state & FI_MARKER) && !fi->nlink && !fi->entries)
			fi->state |= FI_ORPHAN;
		else
			fi->state |= FI_DETACHED;
	}
}

/* Walks up from directory fi through the entries naming each directory; marks what it
 * passes FI_REACHED if the walk ends at the root or at a detached directory (which the
 * repairs name in lost+found), else FI_CYCLE. Iterative: depth is not bounded. */
static void walk_up(struct fsck_fs *c, struct fsck_inode *start)
{
	struct fsck_inode *fi = start, *end;
	uint32_t verdict;

	/* Up to the first directory already judged, the root, a detached one or a loop. */
	for (;;) {
		if (fi->state & (FI_REACHED | FI_CYCLE))
			break;
		if (fi->ino == RD_ROOT_INO || (fi->state & FI_DETACHED) || !fi->names ||
		    (fi->state & FI_WALKING)) {
			break;
		}
		fi->state |= FI_WALKING;
		end = fsck_inode_find(c, fi->named_in);
		if (!end)
			break;
		fi = end;
	}
	if (fi->state & FI_REACHED)
		verdict = FI_REACHED;
	else if (fi->state & FI_CYCLE)
		verdict = FI_CYCLE;
	else if (fi->state & FI_WALKING)
		verdict = FI_CYCLE;	/* came back to a directory of this walk */
	else
		verdict = FI_REACHED;	/* the root, or a detached directory */
	if (verdict == FI_CYCLE && (fi->state & FI_WALKING)) {
		struct fsck_obj obj = fsck_obj_ino(fi->ino);

		fsck_say(c, "dir-cycle", RD_FSCK_ERROR, false, &obj, "directory %" PRIu64 " is "
			 "in a loop of directories that does not reach the root", fi->ino);
	}
	fi->state |= verdict;
	/* Mark the walk again from the start. */
	for (fi = start; fi && (fi->state & FI_WALKING); fi = fsck_inode_find(c, fi->named_in)) {
		fi->state &= ~(uint32_t)FI_WALKING;
		fi->state |= verdict;
	}
}

/* The verdicts on one inode that stays (it exists and is no orphan). */
static int judge(struct fsck_fs *c, struct fsck_inode *fi)
{
	struct fsck_obj obj = fsck_obj_ino(fi->ino);
	bool dir = S_ISDIR(fi->mode), fix = false;
	uint32_t nlink = fi->nlink, flags = fi->flags;
	uint64_t sectors = fi->sectors, parent = fi->parent;
	bool bad_nlink = false, bad_sectors = false, bad_parent = false, bad_flags = false;
	int ret;

	if (dir) {
		uint32_t want = 2 + fi->subdirs;

		bad_nlink = fi->nlink != want;
		nlink = want;
		if (fi->names > 1)
			fsck_say(c, "dir-names", RD_FSCK_ERROR, false, &obj, "directory %" PRIu64
				 " has %u names (a directory has one)", fi->ino, fi->names);
		if (fi->ino == RD_ROOT_INO) {
			bad_parent = fi->parent != RD_ROOT_INO;
			parent = RD_ROOT_INO;
		} else if (fi->names == 1) {
			bad_parent = fi->parent != fi->named_in;
			parent = fi->named_in;
		}
	} else {
		/* A detached inode gets its count where it is named (lost+found). */
		bad_nlink = fi->nlink != fi->names && !(fi->state & FI_DETACHED);
		nlink = bad_nlink ? fi->names : fi->nlink;
		bad_parent = fi->parent != 0;
		parent = 0;
	}
	bad_sectors = fi->sectors != fi->ext_sectors;
	sectors = fi->ext_sectors;
	/* The orphan flag is set when an inode loses its last link, and that inode is never
	 * linked again: a linked inode carrying it is wrong (though harmless). */
	if ((fi->flags & RD_INODE_ORPHAN) && nlink) {
		flags &= ~(uint32_t)RD_INODE_ORPHAN;
		bad_flags = true;
	}
	if (bad_nlink || bad_sectors || bad_parent || bad_flags) {
		if (c->repair) {
			ret = fsck_fix_inode(c, fi, nlink, sectors, parent, flags);
			if (ret)
				return ret;
			fix = true;
		}
	}
	if (bad_nlink)
		fsck_say(c, "nlink", RD_FSCK_ERROR, fix, &obj, "inode %" PRIu64 ": link count %u, "
			 "%s %u%s", fi->ino, fi->nlink, dir ? "2 + subdirectories make" :
			 "entries naming it:", nlink, fix ? "; corrected" : "");
	if (bad_parent)
		fsck_say(c, "parent", RD_FSCK_ERROR, fix, &obj, "inode %" PRIu64 ": parent %"
			 PRIu64 ", should be %" PRIu64 "%s", fi->ino, fi->parent, parent,
			 fix ? "; corrected" : "");
	if (bad_flags)
		fsck_say(c, "inode-flags", RD_FSCK_ERROR, fix, &obj, "inode %" PRIu64 ": linked "
			 "but flagged as an orphan%s", fi->ino, fix ? "; flag cleared" : "");
	if (bad_sectors)
		fsck_say(c, "inode-sectors", RD_FSCK_ERROR, fix, &obj, "inode %" PRIu64 ": %"
			 PRIu64 " sectors recorded, its extents hold %" PRIu64 "%s", fi->ino,
			 fi->sectors, fi->ext_sectors, fix ? "; corrected" : "");
	if (fi->state & FI_MARKER) {
		fix = false;
		if (c->repair) {
			ret = fsck_fix_marker(c, fi->ino);
			if (ret)
				return ret;
			fix = true;
		}
		fsck_say(c, "orphan-marker", RD_FSCK_ERROR, fix, &obj, "inode %" PRIu64 " has an "
			 "orphan marker but %u names%s", fi->ino, fi->names,
			 fix ? "; marker deleted" : "");
	}
	return 0;
}

static int verdicts(struct fsck_fs *c)
{
	struct fsck_inode *root = fsck_inode_find(c, RD_ROOT_INO);
	int ret;

	fsck_phase(c, "links", c->itab.cap);
	if (!root || !(root->state & FI_EXISTS)) {
		struct fsck_obj obj = fsck_obj_ino(RD_ROOT_INO);

		fsck_say(c, "no-root", RD_FSCK_ERROR, false, &obj, "the root directory (inode 1) "
			 "is missing");
	} else if (root->names) {
		struct fsck_obj obj = fsck_obj_ino(RD_ROOT_INO);

		fsck_say(c, "dirent-target", RD_FSCK_ERROR, false, &obj, "the root directory is "
			 "named by %u entries", root->names);
	}
	for (size_t i = 0; i < c->itab.cap; i++) {
		struct fsck_inode *fi = &c->itab.v[i];

		if (fi->ino && (fi->state & FI_EXISTS) && S_ISDIR(fi->mode) &&
		    !(fi->state & (FI_ORPHAN | FI_DETACHED)))
			walk_up(c, fi);
	}
	/* Markers without an inode. */
	for (size_t i = 0; i < c->itab.cap; i++) {
		struct fsck_inode *fi = &c->itab.v[i];
		struct fsck_obj obj = fsck_obj_ino(fi->ino);
		bool fix = false;

		if (!fi->ino || (fi->state & FI_EXISTS) || !(fi->state & FI_MARKER))
			continue;
		if (c->repair) {
			ret = fsck_fix_marker(c, fi->ino);
			if (ret)
				return ret;
			fix = true;
		}
		fsck_say(c, "orphan-marker", RD_FSCK_ERROR, fix, &obj, "orphan marker for inode %"
			 PRIu64 ", which does not exist%s", fi->ino, fix ? "; deleted" : "");
	}
	/* Detached inodes into lost+found, then the counts of everything that stays. The
	 * table does not grow below this point but for lost+found, created by the first
	 * detached inode's repair (fsck_fix_detached): the loop restarts after it. */
	for (size_t i = 0; i < c->itab.cap; i++) {
		struct fsck_inode *fi = &c->itab.v[i];
		struct fsck_obj obj;
		size_t cap = c->itab.cap;
		uint64_t ino = fi->ino;
		uint32_t mode = fi->mode, nlink = fi->nlink;
		bool fix = false;

		if (!ino || !(fi->state & FI_DETACHED))
			continue;
		if (c->repair) {
			/* -EBUSY: no lost+found can be made (no root, or the name is taken). */
			ret = fsck_fix_detached(c, fi);
			if (ret && ret != -EBUSY)
				return ret;
			fix = !ret;
		}
		obj = fsck_obj_ino(ino);
		fsck_say(c, "unreachable", RD_FSCK_ERROR, fix, &obj, "inode %" PRIu64 " (mode 0%o, "
			 "link count %u) is named by no directory entry%s", ino, mode, nlink,
			 fix ? "; named in lost+found" : "");
		if (c->itab.cap != cap)
			i = (size_t)-1;		/* the table was rebuilt: start over */
	}
	for (size_t i = 0; i < c->itab.cap; i++) {
		struct fsck_inode *fi = &c->itab.v[i];

		fsck_tick(c, 1);
		if (!fsck_inode_live(fi) || (fi->state & FI_GONE))
			continue;
		ret = judge(c, fi);
		if (ret)
			return ret;
	}
	return 0;
}

/* The inode-number key: present (when there are inodes) and ahead of every number. */
static int check_ino_key(struct fsck_fs *c)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_INODES, 0);
	uint64_t want = c->max_ino + 1 > RD_FIRST_FREE_INO ? c->max_ino + 1 : RD_FIRST_FREE_INO;
	uint64_t next = c->next_ino;
	bool fix = false, have = c->have_ino_key;
	int ret;

	if (have && next > c->max_ino && next >= RD_FIRST_FREE_INO)
		return 0;
	if (c->repair) {
		ret = fsck_fix_ino_key(c, want);
		if (ret)
			return ret;
		fix = true;
	}
	if (!have)
		fsck_say(c, "inode-alloc-key", RD_FSCK_ERROR, fix, &obj, "the inode-number key is "
			 "missing%s", fix ? "; written" : "");
	else if (next < RD_FIRST_FREE_INO)
		fsck_say(c, "inode-alloc-key", RD_FSCK_ERROR, fix, &obj, "the inode-number key "
			 "says %" PRIu64 ", below the first free number%s", next,
			 fix ? "; rewritten" : "");
	else	/* a create that moved the limit was lost in a crash: open copes */
		fsck_say(c, "inode-numbering", RD_FSCK_PENDING, fix, &obj, "the inode-number key "
			 "says %" PRIu64 " but inode %" PRIu64 " exists: %s", next, c->max_ino,
			 fix ? "rewritten" : "numbering resumes past it at the next open");
	return 0;
}

/* ---- the driver ----------------------------------------------------------------------- */

/* Whether the image holds a filesystem at all: a freshly formatted store has four empty
 * trees until the first rd_fs_open creates the root. */
static int fs_present(struct rd_store *s)
{
	static const enum rd_btree_id ids[] = { RD_BTREE_INODES, RD_BTREE_DIRENTS,
						RD_BTREE_XATTRS, RD_BTREE_EXTENTS };

	for (unsigned i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct rd_bkey *k;
		int ret = rd_btree_peek(s, ids[i], RD_POS_MIN, RD_POS_MAX, &k);

		if (!ret) {
			free(k);
			return 1;
		}
		if (ret != -ENOENT)
			return ret;
	}
	return 0;
}

int rd_fsck_fs(struct rd_store *s, const struct rd_sb_report *sbrep,
	       const struct rd_fsck_opts *o, struct rd_fsck_result *res)
{
	struct fsck_fs c = { .s = s, .o = o, .res = res, .hash_mask = o->hash_mask };
	bool node_damage;
	int ret, ret2;

	ret = rd_fsck_store(s, sbrep, o, res, &node_damage);
	res->fs_skipped = node_damage;
	if (ret || node_damage)
		return ret;
	ret = fs_present(s);
	if (ret <= 0)
		return ret;
	if (sodium_init() < 0)		/* lost+found gets a random generation */
		return -EIO;
	res->fs_checked = true;
	c.repair = o->repair && !s->read_only;
	memcpy(c.hash_key, s->sb.hash_secret, sizeof(c.hash_key));
	c.live = calloc(s->geo.nbuckets ? s->geo.nbuckets : 1, sizeof(*c.live));
	c.going = calloc(s->geo.nbuckets ? s->geo.nbuckets : 1, sizeof(*c.going));
	if (!c.live || !c.going) {
		free(c.live);
		free(c.going);
		return -ENOMEM;
	}

	/* The passes only read; repairs start once the buckets counted short are held
	 * (fsck_int.h). */
	ret = pass_inodes(&c);
	if (!ret)
		ret = fsck_pass_dirents(&c);
	if (!ret) {
		fsck_classify(&c);
		ret = fsck_pass_xattrs(&c);
	}
	if (!ret)
		ret = fsck_pass_extents(&c);
	if (!ret)
		ret = fsck_check_buckets(&c);
	if (!ret)
		ret = fsck_settle_strays(&c);
	if (!ret)
		ret = fsck_settle_dangling(&c);
	if (!ret)
		ret = fsck_settle_orphans(&c);
	/* Always: it also drops the holds. */
	ret2 = fsck_settle_buckets(&c, ret != 0);
	ret = ret ? ret : ret2;
	if (!ret)
		ret = verdicts(&c);
	if (!ret)
		ret = check_ino_key(&c);
	if (!ret && c.repair)
		ret = rd_store_flush(s, 0);

	free(c.live);
	free(c.going);
	free(c.bfix);
	free(c.itab.v);
	free(c.strays);
	free(c.dangling);
	return ret;
}
