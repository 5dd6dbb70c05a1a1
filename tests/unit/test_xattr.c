/*
 * test_xattr.c - extended attributes: CREATE/REPLACE, size queries and ERANGE, values of
 * 0..64 KiB split over continuation keys (and shrunk again), listing, removal, collisions,
 * deletion with the inode, persistence, and the has_xattrs fast path (no b-tree access
 * for an inode known to have no xattr: counted by xattr.c's tree-read counter).
 */
#include "ns_util.h"

static char img[256];

static uint64_t reads(struct rd_fs *fs)
{
	return atomic_load(&fs->st.xattr_tree_reads);
}

static uint64_t mkfile(struct rd_fs *fs, const char *name)
{
	struct rd_stat st;

	CHECK_OK(rd_fs_mknod(fs, RD_ROOT_INO, name, S_IFREG | 0644, 0, &ns_cred, &st));
	return st.ino;
}

/* Keys of ino in the xattrs tree. */
static unsigned nkeys(struct rd_fs *fs, uint64_t ino)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	unsigned n = 0;
	int ret;

	rd_btree_iter_init(&it, rd_fs_store(fs), RD_BTREE_XATTRS, RD_POS(ino, 0),
			   RD_POS(ino, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k)))
		n += k->type != RD_KEY_XATTR_WHITEOUT;
	rd_btree_iter_exit(&it);
	CHECK_EQ(ret, -ENOENT);
	return n;
}

static void fill_value(uint8_t *v, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
}

static void check_value(struct rd_fs *fs, uint64_t ino, const char *name, size_t n,
			unsigned seed)
{
	static uint8_t want[RD_XATTR_VALUE_MAX + 16], got[RD_XATTR_VALUE_MAX + 16];

	fill_value(want, n, seed);
	CHECK_EQ(rd_fs_getxattr(fs, ino, name, NULL, 0), (ssize_t)n);
	memset(got, 0xee, sizeof(got));
	CHECK_EQ(rd_fs_getxattr(fs, ino, name, got, sizeof(got)), (ssize_t)n);
	CHECK(!memcmp(got, want, n));
	CHECK(got[n] == 0xee);
	if (n)
		CHECK_EQ(rd_fs_getxattr(fs, ino, name, got, n), (ssize_t)n);
	if (n > 1)	/* (size 0 is the size query) */
		CHECK_EQ(rd_fs_getxattr(fs, ino, name, got, n - 1), -ERANGE);
}

static void test_basics(struct rd_fs *fs)
{
	char name[300], list[1024];
	struct rd_stat st, st2;
	uint64_t f, r0;

	f = mkfile(fs, "x1");
	/* The kernel holds a reference to what it created (as the FUSE layer will): the
	 * inode stays cached, with what the cache knows about it. It left the cache between
	 * the two calls, so the first question looks once... */
	CHECK_OK(rd_fs_iget(fs, f));
	r0 = reads(fs);
	CHECK_EQ(rd_fs_getxattr(fs, f, "security.capability", NULL, 0), -ENODATA);
	CHECK_EQ(reads(fs), r0 + 1);

	/* ... and from then on it knows there are none: no look at the tree */
	r0 = reads(fs);
	CHECK_EQ(rd_fs_getxattr(fs, f, "security.capability", NULL, 0), -ENODATA);
	CHECK_EQ(rd_fs_getxattr(fs, f, "security.capability", list, sizeof(list)), -ENODATA);
	CHECK_EQ(rd_fs_listxattr(fs, f, NULL, 0), 0);
	CHECK_EQ(rd_fs_removexattr(fs, f, "user.a"), -ENODATA);
	/* and the first set puts it at its hash slot without a look either */
	st = ns_stat(fs, f);
	CHECK_OK(rd_fs_setxattr(fs, f, "user.a", "1", 1, RD_XATTR_CREATE));
	CHECK_EQ(reads(fs), r0);
	st2 = ns_stat(fs, f);
	CHECK(st2.ctime.tv_sec > st.ctime.tv_sec ||
	      (st2.ctime.tv_sec == st.ctime.tv_sec && st2.ctime.tv_nsec >= st.ctime.tv_nsec));

	/* flags */
	CHECK_EQ(rd_fs_setxattr(fs, f, "user.a", "2", 1, RD_XATTR_CREATE), -EEXIST);
	CHECK_EQ(rd_fs_setxattr(fs, f, "user.b", "2", 1, RD_XATTR_REPLACE), -ENODATA);
	CHECK_OK(rd_fs_setxattr(fs, f, "user.a", "22", 2, RD_XATTR_REPLACE));
	CHECK_OK(rd_fs_setxattr(fs, f, "user.b", "333", 3, 0));
	CHECK_OK(rd_fs_setxattr(fs, f, "user.b", "4444", 4, 0));
	CHECK_EQ(rd_fs_setxattr(fs, f, "user.c", "x", 1, 4), -EINVAL);
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.a", list, sizeof(list)), 2);
	CHECK(!memcmp(list, "22", 2));
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.b", list, 3), -ERANGE);
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.b", NULL, 0), 4);
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.nope", NULL, 0), -ENODATA);

	/* an empty value is a value */
	CHECK_OK(rd_fs_setxattr(fs, f, "user.empty", NULL, 0, 0));
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.empty", NULL, 0), 0);
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.empty", list, sizeof(list)), 0);

	/* names */
	memset(name, 'x', sizeof(name));
	memcpy(name, "user.", 5);
	name[255] = '\0';
	CHECK_OK(rd_fs_setxattr(fs, f, name, "n", 1, 0));
	CHECK_EQ(rd_fs_getxattr(fs, f, name, NULL, 0), 1);
	name[255] = 'x';
	name[256] = '\0';
	CHECK_EQ(rd_fs_setxattr(fs, f, name, "n", 1, 0), -ERANGE);
	CHECK_EQ(rd_fs_getxattr(fs, f, name, NULL, 0), -ERANGE);
	CHECK_EQ(rd_fs_setxattr(fs, f, "", "n", 1, 0), -ERANGE);
	CHECK_EQ(rd_fs_removexattr(fs, f, ""), -ERANGE);
	CHECK_EQ(rd_fs_setxattr(fs, f, "user.big", list, RD_XATTR_VALUE_MAX + 1, 0), -E2BIG);
	CHECK_EQ(rd_fs_getxattr(fs, 999999, "user.a", NULL, 0), -ENOENT);
	CHECK_EQ(rd_fs_setxattr(fs, 999999, "user.a", "1", 1, 0), -ENOENT);

	/* list */
	{
		ssize_t n = rd_fs_listxattr(fs, f, NULL, 0);
		size_t want = strlen("user.a") + strlen("user.b") + strlen("user.empty") + 255 + 4;
		size_t seen = 0;

		CHECK_EQ(n, (ssize_t)want);
		CHECK_EQ(rd_fs_listxattr(fs, f, list, (size_t)n - 1), -ERANGE);
		CHECK_EQ(rd_fs_listxattr(fs, f, list, sizeof(list)), n);
		for (char *p = list; p < list + n; p += strlen(p) + 1) {
			CHECK(!strcmp(p, "user.a") || !strcmp(p, "user.b") ||
			      !strcmp(p, "user.empty") || strlen(p) == 255);
			seen++;
		}
		CHECK_EQ(seen, 4);
	}

	/* remove */
	CHECK_OK(rd_fs_removexattr(fs, f, "user.a"));
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.a", NULL, 0), -ENODATA);
	CHECK_EQ(rd_fs_removexattr(fs, f, "user.a"), -ENODATA);
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.b", NULL, 0), 4);
	CHECK_EQ(rd_fs_listxattr(fs, f, list, sizeof(list)),
		 (ssize_t)(strlen("user.b") + strlen("user.empty") + 255 + 3));
	CHECK_OK(rd_fs_removexattr(fs, f, "user.b"));
	CHECK_OK(rd_fs_removexattr(fs, f, "user.empty"));
	name[255] = '\0';
	CHECK_OK(rd_fs_removexattr(fs, f, name));
	CHECK_EQ(rd_fs_listxattr(fs, f, list, sizeof(list)), 0);
	CHECK_EQ(nkeys(fs, f), 0);
	/* having looked, it knows again there are none */
	r0 = reads(fs);
	CHECK_EQ(rd_fs_getxattr(fs, f, "security.capability", NULL, 0), -ENODATA);
	CHECK_EQ(reads(fs), r0);

	/* directories and symlinks have xattrs too */
	CHECK_OK(rd_fs_setxattr(fs, RD_ROOT_INO, "trusted.d", "dir", 3, 0));
	CHECK_EQ(rd_fs_getxattr(fs, RD_ROOT_INO, "trusted.d", list, sizeof(list)), 3);
	CHECK_OK(rd_fs_symlink(fs, RD_ROOT_INO, "xl", "t", &ns_cred, &st));
	CHECK_OK(rd_fs_setxattr(fs, st.ino, "trusted.l", "lnk", 3, 0));
	CHECK_EQ(rd_fs_getxattr(fs, st.ino, "trusted.l", list, sizeof(list)), 3);
}

static void test_sizes(struct rd_fs *fs)
{
	static uint8_t v[RD_XATTR_VALUE_MAX];
	size_t max = rd_btree_max_val(rd_fs_store(fs));
	size_t sizes[] = { 0, 1, 7, max - 8 - 6, max - 8 - 6 + 1, max, 2 * max + 3, 4096,
			   10000, 32768, RD_XATTR_VALUE_MAX - 1, RD_XATTR_VALUE_MAX };
	unsigned ns = sizeof(sizes) / sizeof(sizes[0]);
	uint64_t f = mkfile(fs, "sizes");

	for (unsigned i = 0; i < ns; i++) {
		fill_value(v, sizes[i], i);
		CHECK_OK(rd_fs_setxattr(fs, f, "user.v", v, sizes[i], 0));
		check_value(fs, f, "user.v", sizes[i], i);
		/* the head and exactly as many continuation keys as needed */
		{
			size_t first = max - 8 - strlen("user.v");
			size_t rest = sizes[i] > first ? sizes[i] - first : 0;

			CHECK_EQ(nkeys(fs, f), 1 + (rest + max - 1) / max);
		}
	}
	/* shrinking leaves no continuation key behind, growing again works */
	for (int i = (int)ns - 1; i >= 0; i--) {
		fill_value(v, sizes[i], i + 100);
		CHECK_OK(rd_fs_setxattr(fs, f, "user.v", v, sizes[i], RD_XATTR_REPLACE));
		check_value(fs, f, "user.v", sizes[i], i + 100);
	}
	CHECK_EQ(nkeys(fs, f), 1);
	/* several large ones side by side */
	for (unsigned i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), "user.large%u", i);
		fill_value(v, RD_XATTR_VALUE_MAX - i, i);
		CHECK_OK(rd_fs_setxattr(fs, f, name, v, RD_XATTR_VALUE_MAX - i, 0));
	}
	for (unsigned i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), "user.large%u", i);
		check_value(fs, f, name, RD_XATTR_VALUE_MAX - i, i);
	}
	CHECK_OK(rd_fs_removexattr(fs, f, "user.large1"));
	check_value(fs, f, "user.large0", RD_XATTR_VALUE_MAX, 0);
	check_value(fs, f, "user.large2", RD_XATTR_VALUE_MAX - 2, 2);
	CHECK_EQ(rd_fs_getxattr(fs, f, "user.large1", NULL, 0), -ENODATA);
}

/* Many names on one inode: with a small hash mask they all collide. */
static void test_many(struct rd_fs *fs)
{
	enum { N = 120 };
	char name[64], list[N * 32];
	uint64_t f = mkfile(fs, "many");
	ssize_t n;

	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user.attr-%u", i);
		CHECK_OK(rd_fs_setxattr(fs, f, name, name, strlen(name), RD_XATTR_CREATE));
	}
	for (unsigned i = 1; i < N; i += 2) {
		snprintf(name, sizeof(name), "user.attr-%u", i);
		CHECK_OK(rd_fs_removexattr(fs, f, name));
	}
	for (unsigned i = 0; i < N; i++) {
		char got[64];

		snprintf(name, sizeof(name), "user.attr-%u", i);
		if (i & 1) {
			CHECK_EQ(rd_fs_getxattr(fs, f, name, got, sizeof(got)), -ENODATA);
		} else {
			CHECK_EQ(rd_fs_getxattr(fs, f, name, got, sizeof(got)),
				 (ssize_t)strlen(name));
			CHECK(!memcmp(got, name, strlen(name)));
		}
	}
	/* re-create into the whiteouts: no name may appear twice */
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user.attr-%u", i);
		CHECK_EQ(rd_fs_setxattr(fs, f, name, "z", 1, RD_XATTR_CREATE),
			 i & 1 ? 0 : -EEXIST);
	}
	n = rd_fs_listxattr(fs, f, list, sizeof(list));
	CHECK(n > 0);
	for (unsigned i = 0; i < N; i++) {
		unsigned c = 0;

		snprintf(name, sizeof(name), "user.attr-%u", i);
		for (char *p = list; p < list + n; p += strlen(p) + 1)
			c += !strcmp(p, name);
		CHECK_EQ(c, 1);
	}
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "user.attr-%u", i);
		CHECK_OK(rd_fs_removexattr(fs, f, name));
	}
	CHECK_EQ(rd_fs_listxattr(fs, f, NULL, 0), 0);
	CHECK_EQ(nkeys(fs, f), 0);

	/* removed in the order they were set: whiteouts until the last removal, which
	 * ends the chain and takes them all */
	f = mkfile(fs, "many2");
	for (unsigned i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "user.t%u", i);
		CHECK_OK(rd_fs_setxattr(fs, f, name, "v", 1, 0));
	}
	for (unsigned i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "user.t%u", i);
		CHECK_OK(rd_fs_removexattr(fs, f, name));
	}
	CHECK(ns_range_empty(fs, RD_BTREE_XATTRS, f));
}

static void test_delete_with_inode(struct rd_fs *fs)
{
	static uint8_t v[RD_XATTR_VALUE_MAX];
	uint64_t f = mkfile(fs, "doomed"), d;
	struct rd_stat st;

	fill_value(v, sizeof(v), 9);
	CHECK_OK(rd_fs_setxattr(fs, f, "user.big", v, sizeof(v), 0));
	CHECK_OK(rd_fs_setxattr(fs, f, "user.small", v, 10, 0));
	CHECK(nkeys(fs, f) > 2);
	CHECK_OK(rd_fs_iget(fs, f));
	CHECK_OK(rd_fs_unlink(fs, RD_ROOT_INO, "doomed"));
	/* still referenced: still readable */
	check_value(fs, f, "user.big", sizeof(v), 9);
	rd_fs_iput(fs, f, 1);
	CHECK(ns_range_empty(fs, RD_BTREE_XATTRS, f));

	CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, "doomed-dir", 0755, &ns_cred, &st));
	d = st.ino;
	CHECK_OK(rd_fs_setxattr(fs, d, "user.d", v, 5000, 0));
	CHECK_OK(rd_fs_rmdir(fs, RD_ROOT_INO, "doomed-dir"));
	CHECK(ns_range_empty(fs, RD_BTREE_XATTRS, d));
}

static void test_persistence(struct rd_fs **fsp, uint64_t mask)
{
	static uint8_t v[RD_XATTR_VALUE_MAX];
	struct rd_fs *fs = *fsp;
	uint64_t f = mkfile(fs, "kept"), none = mkfile(fs, "bare"), r0;

	fill_value(v, 40000, 5);
	CHECK_OK(rd_fs_setxattr(fs, f, "user.kept", v, 40000, 0));
	CHECK_OK(rd_fs_setxattr(fs, f, "security.selinux", "ctx", 3, 0));
	CHECK_OK(rd_fs_close(fs));
	fs = ns_open(img, mask);
	*fsp = fs;
	CHECK_OK(rd_fs_iget(fs, none));		/* keep it cached, as the kernel would */
	check_value(fs, f, "user.kept", 40000, 5);
	CHECK_EQ(rd_fs_getxattr(fs, f, "security.selinux", NULL, 0), 3);

	/* read back from disk, unknown: the first question looks, later ones do not */
	r0 = reads(fs);
	CHECK_EQ(rd_fs_getxattr(fs, none, "security.capability", NULL, 0), -ENODATA);
	CHECK(reads(fs) > r0);
	r0 = reads(fs);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(rd_fs_getxattr(fs, none, "security.capability", NULL, 0), -ENODATA);
	CHECK_EQ(reads(fs), r0);
	/* an inode with xattrs but not this one: a real lookup each time */
	CHECK_EQ(rd_fs_getxattr(fs, f, "security.capability", NULL, 0), -ENODATA);
	CHECK(reads(fs) > r0);

	/* crash after a flush: the set is there */
	CHECK_OK(rd_fs_setxattr(fs, none, "user.late", "L", 1, 0));
	CHECK_OK(rd_store_flush(rd_fs_store(fs), 0));
	rd_fs_crash(fs);
	fs = ns_open(img, mask);
	*fsp = fs;
	CHECK_EQ(rd_fs_getxattr(fs, none, "user.late", NULL, 0), 1);
}

int main(void)
{
	static const uint64_t masks[] = { 0, 0x3 };

	for (unsigned m = 0; m < 2; m++) {
		struct rd_fs *fs;

		ns_image(img, sizeof(img), "xattr", 256ull << 20, 4096);
		fs = ns_open(img, masks[m]);
		test_basics(fs);
		test_sizes(fs);
		test_many(fs);
		test_delete_with_inode(fs);
		test_persistence(&fs, masks[m]);
		CHECK_OK(rd_fs_close(fs));
		unlink(img);
	}
	return 0;
}
