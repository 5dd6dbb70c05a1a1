/*
 * test_namei.c - the namespace calls one by one: creation of every file type, lookup,
 * links, unlink/rmdir, rename with its flags and rules, readdir with cookies while the
 * directory changes, setattr, symlinks, orphans (referenced, crash), persistence across
 * close and across a crash after an fsync-style flush. Every section ends with a walk of
 * the whole tree comparing link counts and ".." with the entries.
 */
#include <fcntl.h>
#include <sys/sysmacros.h>

#include "alloc.h"
#include "ns_util.h"

static char img[256];
static uint64_t mask;	/* the test hash mask of the current image */

/* ---- creation and lookup ------------------------------------------------------------- */

static void test_create(struct rd_fs *fs)
{
	struct rd_stat st, dst, d0;
	char name[300];
	uint64_t d;

	d0 = ns_stat(fs, RD_ROOT_INO);
	CHECK_EQ(d0.nlink, 3);	/* ".", "..", lost+found's ".." */
	CHECK(S_ISDIR(ns_stat(fs, ns_ino(fs, RD_ROOT_INO, RD_LOST_FOUND_NAME)).mode));

	CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, "c", 0750, &ns_cred, &dst));
	d = dst.ino;
	CHECK(S_ISDIR(dst.mode) && (dst.mode & 07777) == 0750);
	CHECK_EQ(dst.nlink, 2);
	CHECK_EQ(dst.uid, 1000);
	CHECK_EQ(ns_stat(fs, RD_ROOT_INO).nlink, 4);
	CHECK(ns_stat(fs, RD_ROOT_INO).mtime.tv_sec >= d0.mtime.tv_sec);

	CHECK_OK(rd_fs_mknod(fs, d, "reg", S_IFREG | 0644, 0, &ns_cred, &st));
	CHECK(S_ISREG(st.mode) && (st.mode & 07777) == 0644 && st.nlink == 1 && st.size == 0);
	CHECK_OK(rd_fs_mknod(fs, d, "notype", 0600, 0, &ns_cred, &st));
	CHECK(S_ISREG(st.mode));
	CHECK_OK(rd_fs_mknod(fs, d, "fifo", S_IFIFO | 0600, 0, &ns_cred, &st));
	CHECK(S_ISFIFO(st.mode) && st.rdev == 0);
	CHECK_OK(rd_fs_mknod(fs, d, "sock", S_IFSOCK | 0600, 7, &ns_cred, &st));
	CHECK(S_ISSOCK(st.mode) && st.rdev == 0);
	CHECK_OK(rd_fs_mknod(fs, d, "chr", S_IFCHR | 0600, makedev(1, 3), &ns_cred, &st));
	CHECK(S_ISCHR(st.mode) && st.rdev == makedev(1, 3));
	CHECK_OK(rd_fs_mknod(fs, d, "blk", S_IFBLK | 0600, makedev(8, 1), &ns_cred, &st));
	CHECK(S_ISBLK(st.mode) && st.rdev == makedev(8, 1));
	CHECK_EQ(rd_fs_mknod(fs, d, "dir", S_IFDIR | 0755, 0, &ns_cred, &st), -EINVAL);
	CHECK_EQ(rd_fs_mknod(fs, d, "lnk", S_IFLNK | 0755, 0, &ns_cred, &st), -EINVAL);
	CHECK_EQ(ns_stat(fs, d).nlink, 2);	/* no subdirectory yet */

	/* lookup */
	CHECK_OK(rd_fs_lookup(fs, d, "chr", &st));
	CHECK(S_ISCHR(st.mode));
	CHECK_EQ(rd_fs_lookup(fs, d, "nope", &st), -ENOENT);
	CHECK_OK(rd_fs_lookup(fs, d, ".", &st));
	CHECK_EQ(st.ino, d);
	CHECK_OK(rd_fs_lookup(fs, d, "..", &st));
	CHECK_EQ(st.ino, RD_ROOT_INO);
	CHECK_OK(rd_fs_lookup(fs, RD_ROOT_INO, "..", &st));
	CHECK_EQ(st.ino, RD_ROOT_INO);
	CHECK_EQ(rd_fs_lookup(fs, ns_ino(fs, d, "reg"), "x", &st), -ENOTDIR);
	CHECK_EQ(rd_fs_lookup(fs, 999999, "x", &st), -ENOENT);

	/* names */
	memset(name, 'n', sizeof(name));
	name[255] = '\0';
	CHECK_OK(rd_fs_mknod(fs, d, name, S_IFREG | 0644, 0, &ns_cred, &st));
	CHECK_OK(rd_fs_lookup(fs, d, name, &st));
	name[255] = 'n';
	name[256] = '\0';
	CHECK_EQ(rd_fs_mknod(fs, d, name, S_IFREG | 0644, 0, &ns_cred, &st), -ENAMETOOLONG);
	CHECK_EQ(rd_fs_lookup(fs, d, name, &st), -ENAMETOOLONG);
	CHECK_EQ(rd_fs_mkdir(fs, d, name, 0755, &ns_cred, &st), -ENAMETOOLONG);
	CHECK_EQ(rd_fs_mknod(fs, d, "a/b", S_IFREG | 0644, 0, &ns_cred, &st), -EINVAL);
	CHECK_EQ(rd_fs_lookup(fs, d, "a/b", &st), -EINVAL);
	CHECK_EQ(rd_fs_mknod(fs, d, "", S_IFREG | 0644, 0, &ns_cred, &st), -EINVAL);
	CHECK_EQ(rd_fs_mknod(fs, d, ".", S_IFREG | 0644, 0, &ns_cred, &st), -EEXIST);
	CHECK_EQ(rd_fs_mkdir(fs, d, "..", 0755, &ns_cred, &st), -EEXIST);
	/* binary bytes are fine */
	CHECK_OK(rd_fs_mknod(fs, d, "\x01\xff\x80 sp", S_IFREG | 0644, 0, &ns_cred, &st));

	/* EEXIST, whatever the type */
	CHECK_EQ(rd_fs_mknod(fs, d, "reg", S_IFREG | 0644, 0, &ns_cred, &st), -EEXIST);
	CHECK_EQ(rd_fs_mkdir(fs, d, "reg", 0755, &ns_cred, &st), -EEXIST);
	CHECK_EQ(rd_fs_symlink(fs, d, "reg", "t", &ns_cred, &st), -EEXIST);
	CHECK_OK(rd_fs_mkdir(fs, d, "sub", 0755, &ns_cred, &st));
	CHECK_EQ(rd_fs_mkdir(fs, d, "sub", 0755, &ns_cred, &st), -EEXIST);
	CHECK_EQ(ns_stat(fs, d).nlink, 3);
	/* in something that is not a directory */
	CHECK_EQ(rd_fs_mknod(fs, ns_ino(fs, d, "reg"), "x", S_IFREG, 0, &ns_cred, &st),
		 -ENOTDIR);
	CHECK_EQ(rd_fs_mkdir(fs, ns_ino(fs, d, "reg"), "x", 0755, &ns_cred, &st), -ENOTDIR);
	CHECK_EQ(rd_fs_mknod(fs, 999999, "x", S_IFREG, 0, &ns_cred, &st), -ENOENT);
	ns_check_tree(fs);
}

/* ---- symlinks ------------------------------------------------------------------------ */

static void test_symlink(struct rd_fs *fs)
{
	static char target[4097], buf[5000];
	struct rd_stat st;
	uint64_t d, l1, l2;

	CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, "s", 0755, &ns_cred, &st));
	d = st.ino;
	CHECK_OK(rd_fs_symlink(fs, d, "one", "x", &ns_cred, &st));
	l1 = st.ino;
	CHECK(S_ISLNK(st.mode) && st.size == 1 && st.nlink == 1);
	for (int i = 0; i < 4095; i++)
		target[i] = (char)('a' + i % 26);
	target[4095] = '\0';
	CHECK_OK(rd_fs_symlink(fs, d, "long", target, &ns_cred, &st));
	l2 = st.ino;
	CHECK_EQ(st.size, 4095);

	memset(buf, 0x55, sizeof(buf));
	CHECK_EQ(rd_fs_readlink(fs, l1, buf, sizeof(buf)), 1);
	CHECK(buf[0] == 'x' && buf[1] == '\0');
	memset(buf, 0x55, sizeof(buf));
	CHECK_EQ(rd_fs_readlink(fs, l2, buf, sizeof(buf)), 4095);
	CHECK(!memcmp(buf, target, 4095) && buf[4095] == '\0');
	memset(buf, 0x55, sizeof(buf));
	CHECK_EQ(rd_fs_readlink(fs, l2, buf, 4095), 4095);	/* fills buf: no NUL */
	CHECK(!memcmp(buf, target, 4095) && buf[4095] == 0x55);
	memset(buf, 0x55, sizeof(buf));
	CHECK_EQ(rd_fs_readlink(fs, l2, buf, 10), 10);		/* truncated */
	CHECK(!memcmp(buf, target, 10) && buf[10] == 0x55);
	CHECK_EQ(rd_fs_readlink(fs, d, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(rd_fs_readlink(fs, 999999, buf, sizeof(buf)), -ENOENT);

	target[4095] = 'z';
	target[4096] = '\0';
	CHECK_EQ(rd_fs_symlink(fs, d, "toolong", target, &ns_cred, &st), -ENAMETOOLONG);
	CHECK_EQ(rd_fs_symlink(fs, d, "empty", "", &ns_cred, &st), -ENOENT);
	CHECK_EQ(rd_fs_lookup(fs, d, "toolong", &st), -ENOENT);

	/* deleting a symlink removes its target chunks */
	CHECK(ns_key_exists(fs, RD_BTREE_INODES, l2, 1));
	CHECK_OK(rd_fs_unlink(fs, d, "long"));
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, l2, 0));
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, l2, 1));
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, l2, 5));
	CHECK_EQ(rd_fs_readlink(fs, l2, buf, sizeof(buf)), -ENOENT);
	ns_check_tree(fs);
}

/* ---- link, unlink, rmdir ------------------------------------------------------------- */

static uint64_t mk(struct rd_fs *fs, uint64_t dir, const char *name, bool isdir)
{
	struct rd_stat st;

	if (isdir)
		CHECK_OK(rd_fs_mkdir(fs, dir, name, 0755, &ns_cred, &st));
	else
		CHECK_OK(rd_fs_mknod(fs, dir, name, S_IFREG | 0644, 0, &ns_cred, &st));
	return st.ino;
}

static void test_link_unlink(struct rd_fs *fs)
{
	struct rd_stat st;
	uint64_t d, e, f, sub;

	CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, "l", 0755, &ns_cred, &st));
	d = st.ino;
	CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, "l2", 0755, &ns_cred, &st));
	e = st.ino;
	CHECK_OK(rd_fs_mknod(fs, d, "f", S_IFREG | 0644, 0, &ns_cred, &st));
	f = st.ino;
	CHECK_OK(rd_fs_link(fs, f, d, "g", &st));
	CHECK_EQ(st.nlink, 2);
	CHECK_OK(rd_fs_link(fs, f, e, "h", &st));
	CHECK_EQ(st.nlink, 3);
	CHECK_EQ(ns_ino(fs, e, "h"), f);
	CHECK_EQ(rd_fs_link(fs, f, d, "g", &st), -EEXIST);
	CHECK_EQ(rd_fs_link(fs, f, d, ".", &st), -EEXIST);
	CHECK_EQ(rd_fs_link(fs, f, f, "x", &st), -ENOTDIR);
	CHECK_EQ(rd_fs_link(fs, d, e, "dirlink", &st), -EPERM);
	CHECK_EQ(rd_fs_link(fs, 999999, e, "x", &st), -ENOENT);
	CHECK_EQ(rd_fs_link(fs, f, e, "a/b", &st), -EINVAL);
	CHECK_EQ(ns_stat(fs, d).nlink, 2);	/* files do not count */

	CHECK_OK(rd_fs_unlink(fs, d, "f"));
	CHECK_EQ(ns_stat(fs, f).nlink, 2);
	CHECK_EQ(rd_fs_lookup(fs, d, "f", &st), -ENOENT);
	CHECK_EQ(ns_ino(fs, d, "g"), f);
	CHECK_EQ(rd_fs_unlink(fs, d, "f"), -ENOENT);
	CHECK_EQ(rd_fs_unlink(fs, f, "g"), -ENOTDIR);

	CHECK_OK(rd_fs_mkdir(fs, d, "sub", 0755, &ns_cred, &st));
	sub = st.ino;
	CHECK_EQ(ns_stat(fs, d).nlink, 3);
	CHECK_EQ(rd_fs_unlink(fs, d, "sub"), -EISDIR);
	CHECK_EQ(rd_fs_unlink(fs, d, "."), -EISDIR);
	CHECK_EQ(rd_fs_rmdir(fs, d, "g"), -ENOTDIR);
	CHECK_EQ(rd_fs_rmdir(fs, d, "."), -EINVAL);
	CHECK_EQ(rd_fs_rmdir(fs, d, ".."), -ENOTEMPTY);
	CHECK_EQ(rd_fs_rmdir(fs, d, "nope"), -ENOENT);
	CHECK_OK(rd_fs_mknod(fs, sub, "x", S_IFREG | 0644, 0, &ns_cred, &st));
	CHECK_EQ(rd_fs_rmdir(fs, d, "sub"), -ENOTEMPTY);
	CHECK_OK(rd_fs_unlink(fs, sub, "x"));
	/* only whiteouts left, if any: empty */
	CHECK_OK(rd_fs_rmdir(fs, d, "sub"));
	CHECK_EQ(ns_stat(fs, d).nlink, 2);
	CHECK_EQ(rd_fs_getattr(fs, sub, &st), -ENOENT);	/* unreferenced: gone at once */
	CHECK_EQ(rd_fs_lookup(fs, d, "sub", &st), -ENOENT);

	/* Whiteouts at the end of a chain go: names removed in the order they were made
	 * leave whiteouts until the last one, whose removal takes them all. */
	sub = mk(fs, d, "trim", true);
	for (int i = 0; i < 40; i++) {
		char name[16];

		snprintf(name, sizeof(name), "t%d", i);
		mk(fs, sub, name, false);
	}
	CHECK(!ns_range_empty(fs, RD_BTREE_DIRENTS, sub));
	for (int i = 0; i < 40; i++) {
		char name[16];

		snprintf(name, sizeof(name), "t%d", i);
		CHECK_OK(rd_fs_unlink(fs, sub, name));
	}
	CHECK(ns_range_empty(fs, RD_BTREE_DIRENTS, sub));
	CHECK_OK(rd_fs_rmdir(fs, d, "trim"));
	ns_check_tree(fs);
}

/* ---- rename -------------------------------------------------------------------------- */

static void test_rename(struct rd_fs *fs)
{
	struct rd_stat st;
	uint64_t r, a, b, f, g, da, db, dc, ab, abc;

	r = mk(fs, RD_ROOT_INO, "r", true);
	a = mk(fs, r, "a", true);
	b = mk(fs, r, "b", true);
	f = mk(fs, a, "f", false);

	/* same directory */
	CHECK_OK(rd_fs_rename(fs, a, "f", a, "f2", 0));
	CHECK_EQ(rd_fs_lookup(fs, a, "f", &st), -ENOENT);
	CHECK_EQ(ns_ino(fs, a, "f2"), f);
	/* across directories */
	CHECK_OK(rd_fs_rename(fs, a, "f2", b, "f", 0));
	CHECK_EQ(ns_ino(fs, b, "f"), f);
	CHECK_EQ(rd_fs_lookup(fs, a, "f2", &st), -ENOENT);
	CHECK_EQ(ns_stat(fs, f).nlink, 1);

	/* a directory across directories: link counts and ".." follow */
	da = mk(fs, a, "d", true);
	CHECK_EQ(ns_stat(fs, a).nlink, 3);
	CHECK_OK(rd_fs_rename(fs, a, "d", b, "d", 0));
	CHECK_EQ(ns_stat(fs, a).nlink, 2);
	CHECK_EQ(ns_stat(fs, b).nlink, 3);
	CHECK_EQ(ns_ino(fs, da, ".."), b);
	ns_check_tree(fs);

	/* replacing a file: the old target goes */
	g = mk(fs, b, "g", false);
	CHECK_OK(rd_fs_rename(fs, b, "f", b, "g", 0));
	CHECK_EQ(ns_ino(fs, b, "g"), f);
	CHECK_EQ(rd_fs_getattr(fs, g, &st), -ENOENT);
	CHECK_EQ(rd_fs_lookup(fs, b, "f", &st), -ENOENT);

	/* replacing an empty directory with a directory, across directories */
	db = mk(fs, a, "e", true);
	CHECK_EQ(ns_stat(fs, a).nlink, 3);
	CHECK_OK(rd_fs_rename(fs, b, "d", a, "e", 0));
	CHECK_EQ(ns_ino(fs, a, "e"), da);
	CHECK_EQ(rd_fs_getattr(fs, db, &st), -ENOENT);
	CHECK_EQ(ns_stat(fs, a).nlink, 3);
	CHECK_EQ(ns_stat(fs, b).nlink, 2);
	CHECK_EQ(ns_ino(fs, da, ".."), a);
	ns_check_tree(fs);

	/* the type rules */
	dc = mk(fs, b, "full", true);
	mk(fs, dc, "x", false);
	CHECK_EQ(rd_fs_rename(fs, a, "e", b, "full", 0), -ENOTEMPTY);
	CHECK_EQ(rd_fs_rename(fs, a, "e", b, "g", 0), -ENOTDIR);
	CHECK_EQ(rd_fs_rename(fs, b, "g", a, "e", 0), -EISDIR);
	CHECK_EQ(rd_fs_rename(fs, b, "nope", a, "x", 0), -ENOENT);
	CHECK_EQ(rd_fs_rename(fs, b, "g", 999999, "x", 0), -ENOENT);
	CHECK_EQ(rd_fs_rename(fs, b, "g", f, "x", 0), -ENOTDIR);
	CHECK_EQ(rd_fs_rename(fs, b, "g", b, "a/b", 0), -EINVAL);
	CHECK_EQ(rd_fs_rename(fs, b, ".", a, "x", 0), -EINVAL);
	CHECK_EQ(rd_fs_rename(fs, b, "g", a, "..", 0), -EINVAL);
	CHECK_EQ(rd_fs_rename(fs, b, "g", a, "x", 4), -EINVAL);
	CHECK_EQ(rd_fs_rename(fs, b, "g", a, "x", RD_RENAME_NOREPLACE | RD_RENAME_EXCHANGE),
		 -EINVAL);

	/* NOREPLACE */
	mk(fs, a, "n", false);
	CHECK_EQ(rd_fs_rename(fs, b, "g", a, "n", RD_RENAME_NOREPLACE), -EEXIST);
	CHECK_OK(rd_fs_rename(fs, b, "g", a, "n2", RD_RENAME_NOREPLACE));
	CHECK_OK(rd_fs_rename(fs, a, "n2", b, "g", RD_RENAME_NOREPLACE));

	/* EXCHANGE: a file and a directory across directories */
	CHECK_EQ(rd_fs_rename(fs, b, "g", a, "missing", RD_RENAME_EXCHANGE), -ENOENT);
	CHECK_OK(rd_fs_rename(fs, b, "g", a, "e", RD_RENAME_EXCHANGE));
	CHECK_EQ(ns_ino(fs, b, "g"), da);
	CHECK_EQ(ns_ino(fs, a, "e"), f);
	CHECK_EQ(ns_ino(fs, da, ".."), b);
	CHECK_EQ(ns_stat(fs, a).nlink, 2);
	CHECK_EQ(ns_stat(fs, b).nlink, 4);	/* full, g */
	ns_check_tree(fs);
	/* and back, in the same directory too */
	CHECK_OK(rd_fs_rename(fs, b, "g", b, "full", RD_RENAME_EXCHANGE));
	CHECK_EQ(ns_ino(fs, b, "full"), da);
	CHECK_EQ(ns_ino(fs, b, "g"), dc);
	CHECK_EQ(ns_stat(fs, b).nlink, 4);
	ns_check_tree(fs);

	/* no directory into its own subtree */
	ab = mk(fs, a, "sub", true);
	abc = mk(fs, ab, "subsub", true);
	CHECK_EQ(rd_fs_rename(fs, r, "a", abc, "a", 0), -EINVAL);
	CHECK_EQ(rd_fs_rename(fs, r, "a", ab, "x", 0), -EINVAL);
	CHECK_EQ(rd_fs_rename(fs, r, "a", a, "x", 0), -EINVAL);
	CHECK_EQ(rd_fs_rename(fs, r, "a", abc, "x", RD_RENAME_NOREPLACE), -EINVAL);
	mk(fs, abc, "t", false);
	CHECK_EQ(rd_fs_rename(fs, abc, "t", r, "a", RD_RENAME_EXCHANGE), -EINVAL);
	/* but a directory may move up, or sideways */
	CHECK_OK(rd_fs_rename(fs, ab, "subsub", r, "up", 0));
	CHECK_EQ(ns_ino(fs, abc, ".."), r);
	CHECK_OK(rd_fs_rename(fs, r, "up", b, "side", 0));
	CHECK_EQ(ns_ino(fs, abc, ".."), b);
	ns_check_tree(fs);

	/* onto itself, and between two links of one file: nothing happens */
	CHECK_OK(rd_fs_rename(fs, a, "e", a, "e", 0));
	CHECK_EQ(ns_ino(fs, a, "e"), f);
	CHECK_OK(rd_fs_link(fs, f, b, "f-link", &st));
	CHECK_OK(rd_fs_rename(fs, a, "e", b, "f-link", 0));
	CHECK_EQ(ns_ino(fs, a, "e"), f);
	CHECK_EQ(ns_ino(fs, b, "f-link"), f);
	CHECK_EQ(ns_stat(fs, f).nlink, 2);
	CHECK_EQ(rd_fs_rename(fs, a, "e", a, "e", RD_RENAME_NOREPLACE), -EEXIST);
	CHECK_OK(rd_fs_rename(fs, a, "e", a, "e", RD_RENAME_EXCHANGE));
	/* replacing one hard link of a file by another file drops one link */
	CHECK_OK(rd_fs_rename(fs, b, "side", a, "side", 0));
	g = mk(fs, a, "other", false);
	CHECK_OK(rd_fs_rename(fs, a, "other", b, "f-link", 0));
	CHECK_EQ(ns_stat(fs, f).nlink, 1);
	CHECK_EQ(ns_ino(fs, b, "f-link"), g);
	ns_check_tree(fs);
	/* directory times move */
	st = ns_stat(fs, a);
	CHECK(st.mtime.tv_sec > 0 && st.ctime.tv_sec >= st.mtime.tv_sec);
}

/* ---- readdir ------------------------------------------------------------------------- */

static bool in_list(const struct ns_list *l, const char *name, size_t *count)
{
	size_t c = 0;

	for (size_t i = 0; i < l->n; i++)
		c += !strcmp(l->e[i].name, name);
	if (count)
		*count = c;
	return c > 0;
}

static void test_readdir(struct rd_fs *fs)
{
	enum { N = 300 };
	struct ns_list l, part;
	struct rd_stat st;
	char name[64];
	uint64_t d, cookie;
	size_t c;

	CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, "rd", 0755, &ns_cred, &st));
	d = st.ino;
	ns_list_all(fs, d, &l);
	CHECK_EQ(l.n, 2);
	CHECK(!strcmp(l.e[0].name, ".") && !strcmp(l.e[1].name, ".."));
	CHECK_EQ(l.e[0].type, 4);
	CHECK_EQ(l.e[1].ino, RD_ROOT_INO);
	free(l.e);

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%d", i);
		if (i % 10 == 0)
			CHECK_OK(rd_fs_mkdir(fs, d, name, 0755, &ns_cred, &st));
		else
			CHECK_OK(rd_fs_mknod(fs, d, name, S_IFREG | 0644, 0, &ns_cred, &st));
	}
	ns_list_all(fs, d, &l);
	CHECK_EQ(l.n, N + 2);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%d", i);
		CHECK(in_list(&l, name, &c) && c == 1);
	}
	for (size_t i = 2; i < l.n; i++)
		CHECK_EQ(l.e[i].type, atoi(l.e[i].name + 5) % 10 == 0 ? 4 : 8);

	/* Every cookie resumes right after its entry. */
	for (size_t i = 0; i < l.n; i += 37) {
		memset(&part, 0, sizeof(part));
		part.limit = 3;
		CHECK_OK(rd_fs_readdir(fs, d, l.e[i].cookie, ns_fill, &part));
		for (size_t j = 0; j < part.n; j++)
			CHECK(!strcmp(part.e[j].name, l.e[i + 1 + j].name));
		free(part.e);
	}

	/* Stop part-way, change the directory, resume from the cookie. */
	memset(&part, 0, sizeof(part));
	part.limit = N / 3;
	CHECK_OK(rd_fs_readdir(fs, d, 0, ns_fill, &part));
	CHECK_EQ(part.n, N / 3);
	cookie = part.e[part.n - 1].cookie;
	part.limit = 0;
	/* remove every 7th (listed or not), add new ones */
	for (int i = 0; i < N; i += 7) {
		snprintf(name, sizeof(name), "file-%d", i);
		if (i % 10 == 0)
			CHECK_OK(rd_fs_rmdir(fs, d, name));
		else
			CHECK_OK(rd_fs_unlink(fs, d, name));
	}
	for (int i = 0; i < N / 2; i++) {
		snprintf(name, sizeof(name), "new-%d", i);
		CHECK_OK(rd_fs_mknod(fs, d, name, S_IFREG | 0644, 0, &ns_cred, &st));
	}
	CHECK_OK(rd_fs_readdir(fs, d, cookie, ns_fill, &part));
	/* Every entry present throughout came exactly once; the removed ones that were not
	 * listed before the change did not come; new ones at most once. */
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file-%d", i);
		in_list(&part, name, &c);
		if (i % 7)
			CHECK_EQ(c, 1);
		else
			CHECK(c <= 1);
	}
	for (size_t i = N / 3; i < part.n; i++)
		CHECK(strncmp(part.e[i].name, "file-", 5) ||
		      atoi(part.e[i].name + 5) % 7 != 0);
	for (int i = 0; i < N / 2; i++) {
		snprintf(name, sizeof(name), "new-%d", i);
		in_list(&part, name, &c);
		CHECK(c <= 1);
	}
	free(part.e);
	free(l.e);

	CHECK_EQ(rd_fs_readdir(fs, ns_ino(fs, d, "file-1"), 0, ns_fill, &part), -ENOTDIR);
	/* past the end */
	memset(&part, 0, sizeof(part));
	CHECK_OK(rd_fs_readdir(fs, d, RD_HASH_SLOT_MAX + 1, ns_fill, &part));
	CHECK_EQ(part.n, 0);
	ns_check_tree(fs);
}

/* ---- setattr ------------------------------------------------------------------------- */

static void test_setattr(struct rd_fs *fs)
{
	struct rd_setattr sa = { 0 };
	struct rd_stat st, st2;
	uint64_t f, d;

	f = mk(fs, RD_ROOT_INO, "attr", false);
	d = mk(fs, RD_ROOT_INO, "attrdir", true);
	st = ns_stat(fs, f);

	sa.valid = RD_SET_MODE;
	sa.mode = S_IFDIR | 04711;	/* the type bits are ignored */
	CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
	CHECK_EQ(st2.mode, S_IFREG | 04711);
	CHECK(st2.ctime.tv_sec > st.ctime.tv_sec ||
	      (st2.ctime.tv_sec == st.ctime.tv_sec && st2.ctime.tv_nsec >= st.ctime.tv_nsec));

	sa.valid = RD_SET_UID | RD_SET_GID;
	sa.uid = 42;
	sa.gid = 43;
	CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
	CHECK(st2.uid == 42 && st2.gid == 43 && st2.mode == (S_IFREG | 04711));

	sa.valid = RD_SET_ATIME | RD_SET_MTIME | RD_SET_CTIME;
	sa.atime = (struct timespec){ 1000, 1 };
	sa.mtime = (struct timespec){ -5, 999999999 };	/* before the epoch */
	sa.ctime = (struct timespec){ 3000, 3 };
	CHECK_OK(rd_fs_setattr(fs, f, &sa, NULL));
	st2 = ns_stat(fs, f);
	CHECK(st2.atime.tv_sec == 1000 && st2.atime.tv_nsec == 1);
	CHECK(st2.mtime.tv_sec == -5 && st2.mtime.tv_nsec == 999999999);
	CHECK(st2.ctime.tv_sec == 3000 && st2.ctime.tv_nsec == 3);

	sa.valid = RD_SET_ATIME_NOW | RD_SET_MTIME_NOW;
	CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
	CHECK(st2.atime.tv_sec > 1000000000 && st2.mtime.tv_sec > 1000000000);
	CHECK(st2.ctime.tv_sec > 1000000000);

	sa.valid = RD_SET_MTIME;
	sa.mtime = (struct timespec){ 1, 1000000000 };
	CHECK_EQ(rd_fs_setattr(fs, f, &sa, NULL), -EINVAL);

	sa.valid = RD_SET_SIZE;
	sa.size = 12345;
	CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
	CHECK_EQ(st2.size, 12345);
	CHECK_EQ(ns_stat(fs, f).size, 12345);
	/* with data: shrinking drops the blocks past the size, mtime moves */
	{
		static char data[65536], back[65536];
		struct rd_stat before;

		memset(data, 'd', sizeof(data));
		CHECK_EQ(rd_fs_write(fs, f, data, sizeof(data), 0, 0), (ssize_t)sizeof(data));
		before = ns_stat(fs, f);
		CHECK(before.blocks >= sizeof(data) / 512);
		sa.size = 100;
		CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
		CHECK_EQ(st2.size, 100);
		CHECK(st2.blocks < before.blocks);
		CHECK(st2.mtime.tv_sec > before.mtime.tv_sec ||
		      (st2.mtime.tv_sec == before.mtime.tv_sec &&
		       st2.mtime.tv_nsec >= before.mtime.tv_nsec));
		CHECK_EQ(rd_fs_read(fs, f, back, sizeof(back), 0), 100);
		CHECK(!memcmp(back, data, 100));
		sa.size = 5000;		/* growing: a hole reads as zeros */
		CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
		CHECK_EQ(rd_fs_read(fs, f, back, sizeof(back), 0), 5000);
		CHECK(back[99] == 'd' && back[100] == 0 && back[4999] == 0);
	}
	sa.size = 0;
	CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
	CHECK_EQ(st2.size, 0);
	sa.size = 1;
	CHECK_EQ(rd_fs_setattr(fs, d, &sa, NULL), -EISDIR);
	CHECK_EQ(rd_fs_setattr(fs, 999999, &sa, NULL), -ENOENT);

	sa.valid = 0;
	CHECK_OK(rd_fs_setattr(fs, f, &sa, &st2));
	CHECK_EQ(st2.ino, f);
	sa.valid = 1u << 20;
	CHECK_EQ(rd_fs_setattr(fs, f, &sa, NULL), -EINVAL);
}

/* ---- orphans ------------------------------------------------------------------------- */

static void test_orphans(struct rd_fs **fsp)
{
	struct rd_fs *fs = *fsp;
	struct rd_space sp0, sp1;
	struct rd_stat st;
	uint64_t d, f, g, h;

	d = mk(fs, RD_ROOT_INO, "orph", true);
	f = mk(fs, d, "f", false);
	/* referenced (the kernel looked it up): survives its unlink until the last iput */
	CHECK_OK(rd_fs_iget(fs, f));
	CHECK_OK(rd_fs_iget(fs, f));
	CHECK_OK(rd_fs_unlink(fs, d, "f"));
	CHECK_EQ(rd_fs_lookup(fs, d, "f", &st), -ENOENT);
	st = ns_stat(fs, f);
	CHECK_EQ(st.nlink, 0);
	CHECK(ns_key_exists(fs, RD_BTREE_INODES, 0, f));	/* the orphan marker */
	CHECK(ns_key_exists(fs, RD_BTREE_INODES, f, 0));
	CHECK_EQ(rd_fs_link(fs, f, d, "again", &st), -ENOENT);
	rd_fs_iput(fs, f, 1);
	CHECK_OK(rd_fs_getattr(fs, f, &st));
	rd_fs_iput(fs, f, 1);
	CHECK_EQ(rd_fs_getattr(fs, f, &st), -ENOENT);
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, 0, f));
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, f, 0));

	/* a removed directory that is still referenced */
	g = mk(fs, d, "gone", true);
	CHECK_OK(rd_fs_iget(fs, g));
	CHECK_OK(rd_fs_rmdir(fs, d, "gone"));
	CHECK_EQ(ns_stat(fs, g).nlink, 0);
	CHECK_EQ(rd_fs_mknod(fs, g, "x", S_IFREG | 0644, 0, &ns_cred, &st), -ENOENT);
	CHECK_EQ(rd_fs_readdir(fs, g, 0, ns_fill, &(struct ns_list){ 0 }), -ENOENT);
	rd_fs_iput(fs, g, 1);
	CHECK_EQ(rd_fs_getattr(fs, g, &st), -ENOENT);

	/* replaced by a rename while referenced */
	f = mk(fs, d, "victim", false);
	CHECK_OK(rd_fs_setxattr(fs, f, "user.x", "v", 1, 0));
	mk(fs, d, "winner", false);
	CHECK_OK(rd_fs_iget(fs, f));
	CHECK_OK(rd_fs_rename(fs, d, "winner", d, "victim", 0));
	CHECK_EQ(ns_stat(fs, f).nlink, 0);
	CHECK(ns_key_exists(fs, RD_BTREE_INODES, 0, f));

	/* a crash with the unlink durable: the next open deletes it, xattrs and data
	 * included (its space is free again) */
	rd_alloc_space(rd_fs_store(fs), &sp0);
	h = mk(fs, d, "h", false);
	{
		static char data[1 << 20];

		memset(data, 'h', sizeof(data));
		CHECK_EQ(rd_fs_write(fs, h, data, sizeof(data), 0, 0), (ssize_t)sizeof(data));
	}
	rd_alloc_space(rd_fs_store(fs), &sp1);
	CHECK_EQ(sp1.user_bytes, sp0.user_bytes + (1 << 20));
	CHECK_OK(rd_fs_iget(fs, h));
	CHECK_OK(rd_fs_unlink(fs, d, "h"));
	CHECK_OK(rd_store_flush(rd_fs_store(fs), 0));
	rd_fs_crash(fs);
	fs = ns_open(img, mask);
	CHECK_EQ(rd_fs_getattr(fs, f, &st), -ENOENT);
	CHECK_EQ(rd_fs_getattr(fs, h, &st), -ENOENT);
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, 0, f));
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, 0, h));
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, f, 0));
	CHECK(ns_range_empty(fs, RD_BTREE_XATTRS, f));
	CHECK(ns_range_empty(fs, RD_BTREE_EXTENTS, h));
	rd_alloc_space(rd_fs_store(fs), &sp1);
	CHECK_EQ(sp1.user_bytes, sp0.user_bytes);
	CHECK_EQ(rd_fs_lookup(fs, d, "victim", &st), 0);
	ns_check_tree(fs);
	*fsp = fs;
}

/* ---- persistence --------------------------------------------------------------------- */

static void build(struct rd_fs *fs, uint64_t *p, uint64_t *q, uint64_t *s)
{
	struct rd_stat st;

	*p = mk(fs, RD_ROOT_INO, "p", true);
	*q = mk(fs, *p, "q", true);
	CHECK_OK(rd_fs_symlink(fs, *q, "sl", "../target", &ns_cred, &st));
	*s = st.ino;
	CHECK_OK(rd_fs_mknod(fs, *q, "dev", S_IFCHR | 0600, makedev(4, 5), &ns_cred, &st));
	CHECK_OK(rd_fs_link(fs, st.ino, *p, "devlink", &st));
}

static void verify(struct rd_fs *fs, uint64_t p, uint64_t q, uint64_t s)
{
	char buf[64];
	struct rd_stat st;

	CHECK_EQ(ns_ino(fs, RD_ROOT_INO, "p"), p);
	CHECK_EQ(ns_ino(fs, p, "q"), q);
	CHECK_EQ(ns_ino(fs, q, ".."), p);
	CHECK_EQ(ns_ino(fs, q, "sl"), s);
	CHECK_EQ(rd_fs_readlink(fs, s, buf, sizeof(buf)), 9);
	CHECK(!strcmp(buf, "../target"));
	CHECK_OK(rd_fs_lookup(fs, q, "dev", &st));
	CHECK(S_ISCHR(st.mode) && st.rdev == makedev(4, 5) && st.nlink == 2);
	CHECK_EQ(ns_ino(fs, p, "devlink"), st.ino);
	ns_check_tree(fs);
}

static void test_persistence(struct rd_fs **fsp)
{
	struct rd_fs *fs = *fsp;
	struct rd_inode *ip;
	uint64_t p, q, s, s2, lost, seq;
	struct rd_stat st;

	build(fs, &p, &q, &s);
	CHECK_OK(rd_fs_close(fs));
	fs = ns_open(img, mask);
	verify(fs, p, q, s);

	/* fsync of the moved directory, then a crash: the rename is there. The rename set
	 * the inode's last_seq to its commit; fsync flushes to it. */
	CHECK_OK(rd_fs_rename(fs, p, "q", RD_ROOT_INO, "q-moved", 0));
	lost = mk(fs, RD_ROOT_INO, "not-flushed-dir", true);
	(void)lost;
	CHECK_OK(rd_inode_get(fs, q, &ip));
	pthread_mutex_lock(&ip->lock);
	seq = ip->last_seq;
	pthread_mutex_unlock(&ip->lock);
	rd_inode_put(fs, ip);
	CHECK(seq > 0);
	CHECK_OK(rd_fs_fsync(fs, q, false));
	CHECK(rd_store_durable_seq(rd_fs_store(fs)) >= seq);
	/* a new file, fsynced: its name comes with it (one transaction) */
	s2 = mk(fs, q, "synced-file", false);
	CHECK_EQ(rd_fs_write(fs, s2, "hello", 5, 0, 0), 5);
	CHECK_OK(rd_fs_fsync(fs, s2, false));
	rd_fs_crash(fs);
	fs = ns_open(img, mask);
	CHECK_EQ(ns_ino(fs, RD_ROOT_INO, "q-moved"), q);
	CHECK_EQ(ns_ino(fs, q, ".."), RD_ROOT_INO);
	CHECK_EQ(rd_fs_lookup(fs, p, "q", &st), -ENOENT);
	CHECK_EQ(ns_ino(fs, q, "synced-file"), s2);
	{
		char buf[8];

		CHECK_EQ(rd_fs_read(fs, s2, buf, sizeof(buf), 0), 5);
		CHECK(!memcmp(buf, "hello", 5));
	}
	CHECK_OK(rd_fs_unlink(fs, q, "synced-file"));
	ns_check_tree(fs);
	/* numbering resumes past everything that exists */
	CHECK(mk(fs, RD_ROOT_INO, "after-crash", false) > s);
	CHECK_OK(rd_fs_rename(fs, RD_ROOT_INO, "q-moved", p, "q", 0));
	CHECK_OK(rd_fs_close(fs));
	fs = ns_open(img, mask);
	verify(fs, p, q, s);
	*fsp = fs;
}

int main(void)
{
	struct rd_fs *fs;

	ns_image(img, sizeof(img), "namei", 256ull << 20, 0);
	fs = ns_open(img, mask);
	test_create(fs);
	test_symlink(fs);
	test_link_unlink(fs);
	test_rename(fs);
	test_readdir(fs);
	test_setattr(fs);
	test_orphans(&fs);
	test_persistence(&fs);
	CHECK_OK(rd_fs_close(fs));

	/* The same with every name colliding into a few slots: long chains, whiteouts. */
	unlink(img);
	ns_image(img, sizeof(img), "namei", 256ull << 20, 4096);
	mask = 0x3;
	fs = ns_open(img, mask);
	test_create(fs);
	test_symlink(fs);
	test_link_unlink(fs);
	test_rename(fs);
	test_readdir(fs);
	test_orphans(&fs);
	test_persistence(&fs);
	CHECK_OK(rd_fs_close(fs));
	unlink(img);
	return 0;
}
