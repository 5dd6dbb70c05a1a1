/*
 * ns_util.h - helpers for the namespace tests: images, opening, listing, and a checker
 * that walks the whole tree and compares link counts and parent pointers with the entries.
 */
#ifndef RD_NS_UTIL_H
#define RD_NS_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "refdio/errors.h"
#include "refdio/fs.h"
#include "fs_priv.h"

/* A fresh image at $RD_TEST_DIR (or /tmp)/ns-<tag>-<pid>.img of size bytes with
 * node_size-byte nodes. */
static inline void ns_image(char *path, size_t len, const char *tag, uint64_t size,
			    uint32_t node_size)
{
	struct rd_format_opts fo = { .size = size, .btree_node_size = node_size,
				     .data_csum = -1, .meta_csum = -1, .force = true };
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";
	char why[256] = "";
	int ret;

	snprintf(path, len, "%s/ns-%s-%d.img", dir, tag, (int)getpid());
	unlink(path);
	ret = rd_store_format(path, &fo, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "format %s: %s %s\n", path, rd_strerror(ret), why);
		exit(1);
	}
}

static inline struct rd_fs *ns_open(const char *path, uint64_t hash_mask)
{
	struct rd_fs_opts o = { .test_hash_mask = hash_mask };
	struct rd_fs *fs;
	char why[256] = "";
	int ret = rd_fs_open(path, &o, &fs, why, sizeof(why));

	if (ret) {
		fprintf(stderr, "open %s: %s %s\n", path, rd_strerror(ret), why);
		exit(1);
	}
	return fs;
}

static const struct rd_fs_cred ns_cred = { 1000, 1000 };

/* ---- listing ------------------------------------------------------------------------- */

struct ns_ent {
	char name[RD_NAME_MAX + 1];
	uint64_t ino;
	unsigned type;
	uint64_t cookie;
};

struct ns_list {
	struct ns_ent *e;
	size_t n, cap;
	size_t limit;		/* stop after this many (0: no limit) */
};

static inline int ns_fill(void *priv, const char *name, size_t len, uint64_t ino,
			  unsigned type, uint64_t cookie)
{
	struct ns_list *l = priv;

	if (l->limit && l->n >= l->limit)
		return 1;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->e = realloc(l->e, l->cap * sizeof(*l->e));
		CHECK(l->e);
	}
	CHECK(len >= 1 && len <= RD_NAME_MAX);
	memcpy(l->e[l->n].name, name, len);
	l->e[l->n].name[len] = '\0';
	l->e[l->n].ino = ino;
	l->e[l->n].type = type;
	l->e[l->n].cookie = cookie;
	l->n++;
	return 0;
}

/* The whole listing of dir ("." and ".." included). */
static inline void ns_list_all(struct rd_fs *fs, uint64_t dir, struct ns_list *l)
{
	memset(l, 0, sizeof(*l));
	CHECK_OK(rd_fs_readdir(fs, dir, 0, ns_fill, l));
}

static inline uint64_t ns_ino(struct rd_fs *fs, uint64_t dir, const char *name)
{
	struct rd_stat st;

	CHECK_OK(rd_fs_lookup(fs, dir, name, &st));
	return st.ino;
}

static inline struct rd_stat ns_stat(struct rd_fs *fs, uint64_t ino)
{
	struct rd_stat st;

	CHECK_OK(rd_fs_getattr(fs, ino, &st));
	return st;
}

/* ---- the checker --------------------------------------------------------------------- */

struct ns_seen {
	uint64_t ino;
	uint32_t links;		/* entries naming it, plus subdirectories' ".." for dirs */
};

struct ns_check {
	struct ns_seen *s;
	size_t n, cap;
	uint64_t entries;
};

static inline struct ns_seen *ns_seen_of(struct ns_check *c, uint64_t ino)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->s[i].ino == ino)
			return &c->s[i];
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->s = realloc(c->s, c->cap * sizeof(*c->s));
		CHECK(c->s);
	}
	c->s[c->n] = (struct ns_seen){ ino, 0 };
	return &c->s[c->n++];
}

static inline void ns_walk(struct rd_fs *fs, struct ns_check *c, uint64_t dir, uint64_t parent)
{
	struct ns_list l;
	struct rd_stat st = ns_stat(fs, dir);

	CHECK(S_ISDIR(st.mode));
	ns_list_all(fs, dir, &l);
	CHECK(l.n >= 2);
	CHECK(!strcmp(l.e[0].name, ".") && l.e[0].ino == dir);
	CHECK(!strcmp(l.e[1].name, "..") && l.e[1].ino == parent);
	ns_seen_of(c, dir)->links += 2;		/* its name (or the root's own) and "." */
	for (size_t i = 2; i < l.n; i++) {
		struct rd_stat cst = ns_stat(fs, l.e[i].ino);

		c->entries++;
		CHECK(strcmp(l.e[i].name, ".") && strcmp(l.e[i].name, ".."));
		CHECK_EQ(l.e[i].type, (cst.mode >> 12) & 15);
		CHECK_EQ(ns_ino(fs, dir, l.e[i].name), l.e[i].ino);
		if (i > 2)
			CHECK(l.e[i].cookie > l.e[i - 1].cookie);
		if (S_ISDIR(cst.mode)) {
			ns_seen_of(c, dir)->links++;		/* the child's ".." */
			ns_walk(fs, c, l.e[i].ino, dir);
		} else {
			ns_seen_of(c, l.e[i].ino)->links++;
		}
	}
	free(l.e);
}

/* Walks the tree from the root: every entry resolves, types match, link counts and ".."
 * agree with the entries. Returns the number of entries. For small trees (quadratic). */
static inline uint64_t ns_check_tree_n(struct rd_fs *fs, uint64_t *inodes)
{
	struct ns_check c = { 0 };

	ns_walk(fs, &c, RD_ROOT_INO, RD_ROOT_INO);	/* the root's ".." counts as its name */
	if (inodes)
		*inodes = c.n;
	for (size_t i = 0; i < c.n; i++) {
		struct rd_stat st = ns_stat(fs, c.s[i].ino);

		if (st.nlink != c.s[i].links)
			fprintf(stderr, "ino %llu: nlink %u, %u links found\n",
				(unsigned long long)c.s[i].ino, st.nlink, c.s[i].links);
		CHECK_EQ(st.nlink, c.s[i].links);
	}
	free(c.s);
	return c.entries;
}

static inline uint64_t ns_check_tree(struct rd_fs *fs)
{
	return ns_check_tree_n(fs, NULL);
}

/* Inodes in the inodes tree (RD_KEY_INODE keys). */
static inline uint64_t ns_count_inodes(struct rd_fs *fs)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	uint64_t n = 0;
	int ret;

	rd_btree_iter_init(&it, rd_fs_store(fs), RD_BTREE_INODES, RD_POS(1, 0), RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k)))
		n += k->type == RD_KEY_INODE;
	rd_btree_iter_exit(&it);
	CHECK_EQ(ret, -ENOENT);
	return n;
}

/* Whether a key exists. */
static inline int ns_key_exists(struct rd_fs *fs, enum rd_btree_id id, uint64_t inode,
				uint64_t offset)
{
	struct rd_bkey *k;
	int ret = rd_btree_lookup(rd_fs_store(fs), id, RD_POS(inode, offset), &k);

	if (ret == -ENOENT)
		return 0;
	CHECK_OK(ret);
	free(k);
	return 1;
}

/* Whether tree id holds no key of inode (any offset). */
static inline int ns_range_empty(struct rd_fs *fs, enum rd_btree_id id, uint64_t inode)
{
	struct rd_bkey *k;
	int ret = rd_btree_peek(rd_fs_store(fs), id, RD_POS(inode, 0), RD_POS(inode, UINT64_MAX),
				&k);

	if (ret == -ENOENT)
		return 1;
	CHECK_OK(ret);
	free(k);
	return 0;
}

/* No key outlives its inode: every dirent key belongs to an existing directory, every
 * xattr key to an existing inode, every symlink chunk to an existing symlink, every extent
 * to an existing regular file; and no orphan marker is left (call after an open, which
 * deletes orphans). */
static inline void ns_check_no_strays(struct rd_fs *fs)
{
	static const enum rd_btree_id ids[] = { RD_BTREE_DIRENTS, RD_BTREE_XATTRS,
						RD_BTREE_INODES, RD_BTREE_EXTENTS };

	for (unsigned t = 0; t < 4; t++) {
		struct rd_btree_iter it;
		const struct rd_bkey *k;
		uint64_t last = 0;
		int ret;

		rd_btree_iter_init(&it, rd_fs_store(fs), ids[t], RD_POS_MIN, RD_POS_MAX);
		while (!(ret = rd_btree_iter_next(&it, &k))) {
			struct rd_stat st;

			if (ids[t] == RD_BTREE_INODES) {
				CHECK(k->pos.inode || k->type == RD_KEY_INODE_ALLOC);
				if (!k->pos.inode || k->pos.offset == 0)
					continue;
			}
			if (k->pos.inode == last)
				continue;
			last = k->pos.inode;
			CHECK_OK(rd_fs_getattr(fs, k->pos.inode, &st));
			if (ids[t] == RD_BTREE_DIRENTS)
				CHECK(S_ISDIR(st.mode));
			if (ids[t] == RD_BTREE_INODES)
				CHECK(S_ISLNK(st.mode) && k->type == RD_KEY_SYMLINK);
			if (ids[t] == RD_BTREE_EXTENTS)
				CHECK(S_ISREG(st.mode));
		}
		rd_btree_iter_exit(&it);
		CHECK_EQ(ret, -ENOENT);
	}
}

#endif
