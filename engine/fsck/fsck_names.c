/*
 * fsck_names.c - the passes over the dirents and xattrs trees: every key well formed, in
 * its hash chain (no empty slot between a name's hash slot and the slot holding it, the
 * invariant of probe.h), no name twice in one table, owners that exist and are of the
 * right kind; entries pointing at existing inodes of the type they say, counted into the
 * inode table (names per inode, subdirectories per directory); xattr values complete.
 *
 * Chains are checked while streaming: keys of one table come in slot order, so the check
 * keeps only the current run of consecutive used slots (its first slot, and the names in
 * it for the duplicate check). A name whose hash slot lies after its own slot wrapped
 * around the table's end: it is judged when the table ends (the last run must reach the
 * table's last slot and start at or before its hash slot).
 *
 * Must never: repair anything but an entry pointing at no inode (made a whiteout, which
 * keeps every chain intact) and keys of owners that do not exist (deleted, fsck_fs.c).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dirents.h"
#include "fsck_int.h"
#include "probe.h"
#include "store.h"

/* ---- runs of used slots ---------------------------------------------------------------- */

struct run_name {
	uint64_t hash;
	uint64_t slot;
	uint8_t len;
	uint8_t name[RD_NAME_MAX];
};

struct run {
	uint64_t slot_max;
	uint64_t start, last;		/* the current run: [start, last] all used */
	bool any;
	bool first_at_min;		/* the table's first run starts at RD_HASH_SLOT_MIN */
	struct run_name *names;		/* live names of the current run */
	size_t n, cap;
	uint64_t *wrapped;		/* hash slots of names whose chain wraps */
	size_t nw, wcap;
};

static void run_reset(struct run *r, uint64_t slot_max)
{
	r->slot_max = slot_max;
	r->any = false;
	r->first_at_min = false;
	r->n = 0;
	r->nw = 0;
}

static void run_free(struct run *r)
{
	free(r->names);
	free(r->wrapped);
}

/* A used slot (keys arrive in slot order). */
static void run_use(struct run *r, uint64_t slot)
{
	/* Out-of-range keys were reported and skipped; the iterator returns them in order. */
	assert(slot >= RD_HASH_SLOT_MIN && slot <= r->slot_max && (!r->any || slot > r->last));
	if (!r->any || slot != r->last + 1) {
		if (!r->any)
			r->first_at_min = slot == RD_HASH_SLOT_MIN;
		r->start = slot;
		r->n = 0;
	}
	r->any = true;
	r->last = slot;
}

/*
 * Whether a name hashed to h and found at slot (the last one used) is reachable from h:
 * 1 yes, 0 no, -ENOMEM. Wrapped chains are recorded and judged by run_end.
 */
static int run_reachable(struct run *r, uint64_t h, uint64_t slot)
{
	assert(r->any && slot == r->last);
	if (h <= slot)
		return h >= r->start;
	/* Wrapped: [h, slot_max] and [MIN, slot] must all be used. The second part holds if
	 * this run is the table's first and starts at MIN. */
	if (r->start != RD_HASH_SLOT_MIN)
		return 0;
	if (r->nw == r->wcap) {
		size_t cap = r->wcap ? r->wcap * 2 : 8;
		uint64_t *n = realloc(r->wrapped, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->wrapped = n;
		r->wcap = cap;
	}
	r->wrapped[r->nw++] = h;
	return 1;
}

/* The wrapped names whose chain is broken at the table's end: their number. */
static unsigned run_end(struct run *r)
{
	unsigned bad = 0;

	for (size_t i = 0; i < r->nw; i++)
		bad += !(r->any && r->last == r->slot_max && r->start <= r->wrapped[i]);
	return bad;
}

/* Whether name is already in the current run (the only place a duplicate with the same
 * hash can be, unless its chain is broken anyway); then records it. -ENOMEM. */
static int run_dup(struct run *r, uint64_t h, uint64_t slot, const uint8_t *name, size_t len,
		   uint64_t *dup_slot)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->names[i].hash == h && r->names[i].len == len &&
		    !memcmp(r->names[i].name, name, len)) {
			*dup_slot = r->names[i].slot;
			return 1;
		}
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct run_name *n = realloc(r->names, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->names = n;
		r->cap = cap;
	}
	r->names[r->n] = (struct run_name){ .hash = h, .slot = slot, .len = (uint8_t)len };
	memcpy(r->names[r->n].name, name, len);
	r->n++;
	return 0;
}

/* Hash chain and duplicate checks of a live name at slot. */
static int check_chain(struct fsck_fs *c, struct run *r, enum rd_btree_id tree, uint64_t owner,
		       uint64_t slot, const uint8_t *name, size_t len)
{
	struct fsck_obj obj = fsck_obj_tree(tree, owner);
	char esc[FSCK_NAME_BUF];
	uint64_t h = rd_probe_hash_key(c->hash_key, c->hash_mask, name, len, r->slot_max);
	uint64_t other;
	int ret;

	obj.name = fsck_escape(name, len, esc, sizeof(esc));
	ret = run_reachable(r, h, slot);
	if (ret < 0)
		return ret;
	if (!ret)
		fsck_say(c, tree == RD_BTREE_DIRENTS ? "dirent-chain" : "xattr-chain",
			 RD_FSCK_ERROR, false, &obj, "%s %" PRIu64 ": \"%s\" at slot %" PRIu64 " is "
			 "cut off from its hash slot %" PRIu64 " by an empty slot (lookups miss it)",
			 tree == RD_BTREE_DIRENTS ? "directory" : "xattrs of inode", owner, esc, slot,
			 h);
	ret = run_dup(r, h, slot, name, len, &other);
	if (ret < 0)
		return ret;
	if (ret)
		fsck_say(c, tree == RD_BTREE_DIRENTS ? "dirent-dup" : "xattr-dup", RD_FSCK_ERROR,
			 false, &obj, "%s %" PRIu64 ": \"%s\" is present twice (slots %" PRIu64
			 " and %" PRIu64 ")", tree == RD_BTREE_DIRENTS ? "directory" :
			 "xattrs of inode", owner, esc, other, slot);
	return 0;
}

static void chain_end(struct fsck_fs *c, struct run *r, enum rd_btree_id tree, uint64_t owner)
{
	struct fsck_obj obj = fsck_obj_tree(tree, owner);
	unsigned bad = run_end(r);

	if (bad)
		fsck_say(c, tree == RD_BTREE_DIRENTS ? "dirent-chain" : "xattr-chain",
			 RD_FSCK_ERROR, false, &obj, "%s %" PRIu64 ": %u name%s whose chain wraps "
			 "around the table's end %s cut off", tree == RD_BTREE_DIRENTS ?
			 "directory" : "xattrs of inode", owner, bad, bad == 1 ? "" : "s",
			 bad == 1 ? "is" : "are");
}

/* ---- owners ----------------------------------------------------------------------------- */

enum owner_kind { OWNER_OK, OWNER_MISSING, OWNER_WRONG };

struct owner {
	uint64_t ino;
	enum owner_kind kind;
	uint64_t wrong_keys;		/* keys of an owner of the wrong kind */
	struct fsck_inode *fi;		/* OWNER_OK: valid during the pass (no table growth) */
};

/* An inode that has lost its last link and is only waiting to be deleted: what hangs off
 * it may be half deleted (the deletion goes in batches). */
static bool orphan(const struct fsck_inode *fi)
{
	return fi->state & FI_ORPHAN;
}

/* ---- the dirents tree ------------------------------------------------------------------ */

struct dpass {
	struct owner own;
	struct run run;
};

static void dir_end(struct fsck_fs *c, struct dpass *d)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_DIRENTS, d->own.ino);

	if (d->own.kind == OWNER_OK)
		chain_end(c, &d->run, RD_BTREE_DIRENTS, d->own.ino);
	if (d->own.kind == OWNER_WRONG)
		fsck_say(c, "dirent-owner", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 " (mode "
			 "0%o) is no directory but has %" PRIu64 " directory entry keys",
			 d->own.ino, d->own.fi ? d->own.fi->mode : 0, d->own.wrong_keys);
}

static void dir_begin(struct fsck_fs *c, struct dpass *d, uint64_t dir)
{
	struct fsck_inode *fi = fsck_inode_find(c, dir);

	d->own = (struct owner){ .ino = dir, .fi = fi };
	if (!fi || !(fi->state & FI_EXISTS))
		d->own.kind = OWNER_MISSING;
	else if (!S_ISDIR(fi->mode))
		d->own.kind = OWNER_WRONG;
	run_reset(&d->run, RD_HASH_SLOT_MAX);
}

/* Whether a name is one a directory may hold. */
static bool name_ok(const uint8_t *name, size_t len)
{
	if (!len || memchr(name, '/', len) || memchr(name, '\0', len))
		return false;
	return !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

static int dirent_live(struct fsck_fs *c, struct dpass *d, const struct rd_bkey *k)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_DIRENTS, d->own.ino);
	struct fsck_inode *dir = d->own.fi, *t;
	struct rd_dirent de;
	const uint8_t *name;
	char esc[FSCK_NAME_BUF];
	size_t len;
	int ret;

	if (rd_dirent_decode(k, &de, &name, &len) ||
	    k->val_len != sizeof(struct rd_dirent_v) + len || !name_ok(name, len)) {
		char text[FSCK_KEY_TEXT];

		fsck_say(c, "dirent-key", RD_FSCK_ERROR, false, &obj, "directory %" PRIu64 ": "
			 "entry at slot %" PRIu64 " is malformed: %s", d->own.ino, k->pos.offset,
			 fsck_key_text(RD_BTREE_DIRENTS, k, text, sizeof(text)));
		return 0;
	}
	obj.name = fsck_escape(name, len, esc, sizeof(esc));
	c->res->dirents++;
	ret = check_chain(c, &d->run, RD_BTREE_DIRENTS, d->own.ino, k->pos.offset, name, len);
	if (ret)
		return ret;
	dir->entries++;
	t = fsck_inode_find(c, de.inum);
	if (!t || !(t->state & FI_EXISTS)) {
		struct fsck_dangling *dg;

		if (c->ndangling == c->dangling_cap) {
			size_t cap = c->dangling_cap ? c->dangling_cap * 2 : 8;

			dg = realloc(c->dangling, cap * sizeof(*dg));
			if (!dg)
				return -ENOMEM;
			c->dangling = dg;
			c->dangling_cap = cap;
		}
		dg = &c->dangling[c->ndangling++];
		*dg = (struct fsck_dangling){ .dir = d->own.ino, .slot = k->pos.offset,
					      .inum = de.inum };
		memcpy(dg->name, esc, sizeof(esc));
		if (c->repair)
			dir->entries--;		/* it will be a whiteout */
		return 0;
	}
	if (de.d_type != rd_mode_dtype(t->mode))
		fsck_say(c, "dirent-type", RD_FSCK_ERROR, false, &obj, "directory %" PRIu64 ": "
			 "\"%s\" says type %u, inode %" PRIu64 " is of type %u", d->own.ino, esc,
			 de.d_type, de.inum, rd_mode_dtype(t->mode));
	if (!t->names++)
		t->named_in = d->own.ino;
	if (S_ISDIR(t->mode) && t->ino != RD_ROOT_INO)
		dir->subdirs++;
	if (d->own.ino == RD_ROOT_INO && S_ISDIR(t->mode) &&
	    len == strlen(RD_LOST_FOUND_NAME) && !memcmp(name, RD_LOST_FOUND_NAME, len))
		c->lost_found = t->ino;
	return 0;
}

int fsck_pass_dirents(struct fsck_fs *c)
{
	struct dpass d = { .own = { .ino = 0, .kind = OWNER_MISSING } };
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	bool started = false;
	int ret;

	fsck_phase(c, "dirents", c->res->tree_keys[RD_BTREE_DIRENTS]);
	rd_btree_iter_init(&it, c->s, RD_BTREE_DIRENTS, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		struct fsck_obj obj = fsck_obj_tree(RD_BTREE_DIRENTS, k->pos.inode);

		fsck_tick(c, 1);
		if (!started || k->pos.inode != d.own.ino) {
			if (started)
				dir_end(c, &d);
			dir_begin(c, &d, k->pos.inode);
			started = true;
		}
		if (d.own.kind == OWNER_MISSING) {
			ret = fsck_stray_add(c, RD_BTREE_DIRENTS, k->pos.inode, k->pos.offset);
			if (ret)
				break;
			continue;
		}
		if (d.own.kind == OWNER_WRONG) {
			d.own.wrong_keys++;
			continue;
		}
		if (k->pos.snapshot || k->pos.offset < RD_HASH_SLOT_MIN ||
		    k->pos.offset > RD_HASH_SLOT_MAX) {
			fsck_say(c, "dirent-key", RD_FSCK_ERROR, false, &obj, "directory %" PRIu64
				 ": key at slot %" PRIu64 ":%u is outside the slot range",
				 k->pos.inode, k->pos.offset, k->pos.snapshot);
			continue;
		}
		run_use(&d.run, k->pos.offset);
		if (k->type == RD_KEY_WHITEOUT) {
			if (k->val_len)
				fsck_say(c, "dirent-key", RD_FSCK_ERROR, false, &obj, "directory %"
					 PRIu64 ": whiteout at slot %" PRIu64 " carries %u bytes",
					 k->pos.inode, k->pos.offset, k->val_len);
		} else if (k->type == RD_KEY_DIRENT) {
			ret = dirent_live(c, &d, k);
			if (ret)
				break;
		} else {
			fsck_say(c, "dirent-key", RD_FSCK_ERROR, false, &obj, "directory %" PRIu64
				 ": key at slot %" PRIu64 " has unknown type %u", k->pos.inode,
				 k->pos.offset, k->type);
		}
	}
	rd_btree_iter_exit(&it);
	if (ret == -ENOENT && started)
		dir_end(c, &d);
	run_free(&d.run);
	if (ret != -ENOENT)
		return ret;
	return 0;
}

/* ---- the xattrs tree ------------------------------------------------------------------- */

#define CHUNK_MASK	((1ull << RD_XATTR_CHUNK_BITS) - 1)

struct xpass {
	struct owner own;
	struct run run;
	/* The value being read: head at slot, more chunks expected. */
	bool in_value;
	bool broken;			/* slot's value reported: ignore its other chunks */
	uint64_t slot;
	uint32_t value_len, have;
	uint64_t next_chunk;
	char name[FSCK_NAME_BUF];
};

static void value_end(struct fsck_fs *c, struct xpass *x)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_XATTRS, x->own.ino);

	if (x->in_value && x->have != x->value_len && !orphan(x->own.fi)) {
		obj.name = x->name;
		fsck_say(c, "xattr-value", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": xattr "
			 "\"%s\" holds %u of its %u bytes", x->own.ino, x->name, x->have,
			 x->value_len);
	}
	x->in_value = false;
}

static void xowner_end(struct fsck_fs *c, struct xpass *x)
{
	if (x->own.kind == OWNER_OK) {
		value_end(c, x);
		chain_end(c, &x->run, RD_BTREE_XATTRS, x->own.ino);
	}
}

static void xowner_begin(struct fsck_fs *c, struct xpass *x, uint64_t ino)
{
	struct fsck_inode *fi = fsck_inode_find(c, ino);

	x->own = (struct owner){ .ino = ino, .fi = fi };
	x->own.kind = fi && (fi->state & FI_EXISTS) ? OWNER_OK : OWNER_MISSING;
	x->in_value = false;
	x->broken = false;
	run_reset(&x->run, RD_XATTR_SLOT_MAX);
}

static int xattr_head(struct fsck_fs *c, struct xpass *x, const struct rd_bkey *k,
		      uint64_t slot)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_XATTRS, x->own.ino);
	const struct rd_xattr_v *v = (const void *)k->val;
	size_t hdr;

	if (k->val_len < sizeof(*v) || !v->name_len ||
	    k->val_len < (hdr = sizeof(*v) + v->name_len) ||
	    rd_le32_get(v->value_len) > RD_XATTR_VALUE_MAX ||
	    k->val_len - hdr > rd_le32_get(v->value_len)) {
		fsck_say(c, "xattr-key", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": xattr at "
			 "slot %" PRIu64 " is malformed (%u bytes)", x->own.ino, slot, k->val_len);
		return 0;
	}
	c->res->xattrs++;
	x->in_value = true;
	x->broken = false;
	x->slot = slot;
	x->value_len = rd_le32_get(v->value_len);
	x->have = (uint32_t)(k->val_len - hdr);
	x->next_chunk = 1;
	fsck_escape(v->data, v->name_len, x->name, sizeof(x->name));
	return check_chain(c, &x->run, RD_BTREE_XATTRS, x->own.ino, slot, v->data, v->name_len);
}

static void xattr_more(struct fsck_fs *c, struct xpass *x, const struct rd_bkey *k,
		       uint64_t slot, uint64_t chunk)
{
	struct fsck_obj obj = fsck_obj_tree(RD_BTREE_XATTRS, x->own.ino);

	if (x->broken && x->slot == slot)
		return;
	if (k->type == RD_KEY_XATTR_MORE && x->in_value && x->slot == slot &&
	    chunk == x->next_chunk && k->val_len && k->val_len <= x->value_len - x->have) {
		x->have += k->val_len;
		x->next_chunk++;
		return;
	}
	x->broken = true;
	if (orphan(x->own.fi)) {	/* a deletion in batches stopped part-way */
		x->in_value = false;
		x->slot = slot;
		return;
	}
	if (x->in_value && x->slot == slot) {
		obj.name = x->name;
		fsck_say(c, "xattr-value", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": xattr "
			 "\"%s\": chunk %" PRIu64 " (type %u, %u bytes) found where chunk %" PRIu64
			 " belongs (%u of %u bytes so far)", x->own.ino, x->name, chunk, k->type,
			 k->val_len, x->next_chunk, x->have, x->value_len);
	} else {
		fsck_say(c, "xattr-value", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": xattr "
			 "value chunk at slot %" PRIu64 " chunk %" PRIu64 " has no head", x->own.ino,
			 slot, chunk);
	}
	x->in_value = false;
	x->slot = slot;
}

int fsck_pass_xattrs(struct fsck_fs *c)
{
	struct xpass x = { .own = { .kind = OWNER_MISSING } };
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	bool started = false;
	int ret;

	fsck_phase(c, "xattrs", c->res->tree_keys[RD_BTREE_XATTRS]);
	rd_btree_iter_init(&it, c->s, RD_BTREE_XATTRS, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		struct fsck_obj obj = fsck_obj_tree(RD_BTREE_XATTRS, k->pos.inode);
		uint64_t slot = k->pos.offset >> RD_XATTR_CHUNK_BITS;
		uint64_t chunk = k->pos.offset & CHUNK_MASK;

		fsck_tick(c, 1);
		if (!started || k->pos.inode != x.own.ino) {
			if (started)
				xowner_end(c, &x);
			xowner_begin(c, &x, k->pos.inode);
			started = true;
		}
		if (x.own.kind == OWNER_MISSING) {
			ret = fsck_stray_add(c, RD_BTREE_XATTRS, k->pos.inode, k->pos.offset);
			if (ret)
				break;
			continue;
		}
		if (k->pos.snapshot || slot < RD_HASH_SLOT_MIN || slot > RD_XATTR_SLOT_MAX) {
			fsck_say(c, "xattr-key", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": "
				 "xattr key at %" PRIu64 ":%u is outside the slot range",
				 k->pos.inode, k->pos.offset, k->pos.snapshot);
			continue;
		}
		if (chunk) {
			xattr_more(c, &x, k, slot, chunk);
			continue;
		}
		value_end(c, &x);
		run_use(&x.run, slot);
		if (k->type == RD_KEY_XATTR) {
			ret = xattr_head(c, &x, k, slot);
			if (ret)
				break;
		} else if (k->type == RD_KEY_XATTR_WHITEOUT) {
			if (k->val_len)
				fsck_say(c, "xattr-key", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64
					 ": xattr whiteout at slot %" PRIu64 " carries %u bytes",
					 k->pos.inode, slot, k->val_len);
		} else {
			fsck_say(c, "xattr-key", RD_FSCK_ERROR, false, &obj, "inode %" PRIu64 ": "
				 "xattr key at slot %" PRIu64 " has unknown type %u", k->pos.inode,
				 slot, k->type);
		}
	}
	rd_btree_iter_exit(&it);
	if (ret == -ENOENT && started)
		xowner_end(c, &x);
	run_free(&x.run);
	return ret == -ENOENT ? 0 : ret;
}

int fsck_settle_dangling(struct fsck_fs *c)
{
	for (size_t i = 0; i < c->ndangling; i++) {
		const struct fsck_dangling *dg = &c->dangling[i];
		struct fsck_obj obj = fsck_obj_tree(RD_BTREE_DIRENTS, dg->dir);
		bool fix = false;
		int ret;

		if (c->repair) {
			ret = fsck_fix_dirent(c, dg->dir, dg->slot);
			if (ret)
				return ret;
			fix = true;
		}
		obj.name = dg->name;
		fsck_say(c, "dirent-target", RD_FSCK_ERROR, fix, &obj, "directory %" PRIu64 ": \"%s\""
			 " names inode %" PRIu64 ", which does not exist%s", dg->dir, dg->name,
			 dg->inum, fix ? "; entry removed" : "");
	}
	return 0;
}
