/*
 * test_fsck_fs.c - the filesystem check against images damaged on purpose.
 *
 * Each scenario builds a small filesystem through the engine API (files with data in
 * several extents, a split region, directories, a hard link, a symlink, small and
 * multi-key xattrs), closes it, damages it by editing keys directly through a bare store
 * (or by a crash), and then requires:
 *  - fsck -n reports exactly the kinds of damage injected (nothing else), naming the
 *    inode, and changes nothing;
 *  - fsck -y repairs what it may (every finding fixed), and a second -y finds nothing
 *    (exit 1 then 0); what it may not repair is reported again by the second run;
 *  - after the repair, every file reads back exactly as written, link counts and ".."
 *    agree with the entries, and no key is left without an owner.
 * Last, rounds of random damage (keys deleted or changed at random; RD_FSCK_ROUNDS, default
 * 24): the check must not crash and -y must converge (a second -y repairs nothing).
 * With the refdio binary as argv[1], the exit codes of the CLI are checked on a few.
 * RD_FSCK_VERBOSE=1 prints every finding of the first check of each scenario.
 */
#include <linux/falloc.h>
#include <spawn.h>
#include <sys/wait.h>

#include "data_util.h"
#include "fsck_util.h"
#include "ns_util.h"
#include "probe.h"

extern char **environ;

static char path[128];
static const char *refdio;
static uint64_t mask;		/* the hash mask of the scenario's image */
static unsigned scenarios;

/* ---- the image -------------------------------------------------------------------------- */

struct base {
	uint64_t f1, f2, f3, big, dir, sub, inner, link, lost_found;
};

static const struct rd_fs_cred cred = { 1000, 1000 };

static struct rd_fs *fs_open(void)
{
	struct rd_fs_opts o = { .test_hash_mask = mask };
	struct rd_fs *fs;
	char why[256] = "";

	if (rd_fs_open(path, &o, &fs, why, sizeof(why))) {
		fprintf(stderr, "open: %s\n", why);
		exit(1);
	}
	return fs;
}

/* Writes len bytes of file ino's pattern (seeded by its number) at off. */
static void put_data(struct rd_fs *fs, uint64_t ino, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);

	CHECK(buf);
	du_fill(buf, ino, off, len);
	du_write(fs, ino, buf, len, off);
	free(buf);
}

static uint64_t mk(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode)
{
	struct rd_stat st;

	if (S_ISDIR(mode))
		CHECK_OK(rd_fs_mkdir(fs, dir, name, mode & 07777, &cred, &st));
	else
		CHECK_OK(rd_fs_mknod(fs, dir, name, mode, 0, &cred, &st));
	return st.ino;
}

static void build(struct base *b, uint64_t hash_mask)
{
	struct du_geo g = { .size = 64 << 20, .bucket_size = 64 << 10, .node_size = 4096 };
	char target[301], big[3000];
	struct rd_stat st;
	struct rd_fs *fs;

	mask = hash_mask;
	if (path[0])
		unlink(path);
	du_format(path, "fsckfs", &g);
	fs = fs_open();
	b->f1 = mk(fs, RD_ROOT_INO, "f1", S_IFREG | 0644);
	b->f2 = mk(fs, RD_ROOT_INO, "f2", S_IFREG | 0644);
	b->f3 = mk(fs, RD_ROOT_INO, "f3", S_IFREG | 0600);
	b->big = mk(fs, RD_ROOT_INO, "big", S_IFREG | 0644);
	b->dir = mk(fs, RD_ROOT_INO, "dir", S_IFDIR | 0755);
	b->sub = mk(fs, b->dir, "sub", S_IFDIR | 0755);
	b->inner = mk(fs, b->sub, "inner", S_IFREG | 0644);
	put_data(fs, b->f1, 0, 20000);
	put_data(fs, b->f2, 0, 8192);
	put_data(fs, b->f3, 0, 5000);
	put_data(fs, b->inner, 0, 4096);
	for (uint64_t off = 0; off < 300 << 10; off += 100 << 10)
		put_data(fs, b->big, off, 100 << 10);
	put_data(fs, b->big, 150000, 3000);	/* splits an extent: two keys, one region */
	CHECK_OK(rd_fs_link(fs, b->f3, b->dir, "f3b", NULL));
	memset(target, 'x', 300);
	target[300] = '\0';
	CHECK_OK(rd_fs_symlink(fs, b->dir, "link", target, &cred, &st));
	b->link = st.ino;
	memset(big, 'v', sizeof(big));
	CHECK_OK(rd_fs_setxattr(fs, b->f1, "user.small", "hi", 2, 0));
	CHECK_OK(rd_fs_setxattr(fs, b->f1, "user.big", big, sizeof(big), 0));
	CHECK_OK(rd_fs_lookup(fs, RD_ROOT_INO, RD_LOST_FOUND_NAME, &st));
	b->lost_found = st.ino;
	CHECK_OK(rd_fs_close(fs));
	scenarios++;
}

/* ---- raw edits through a bare store --------------------------------------------------- */

static struct rd_store *st_open(void)
{
	struct rd_open_opts o = { 0 };
	struct rd_store *s;
	char why[256] = "";

	if (rd_store_open(path, &o, &s, why, sizeof(why))) {
		fprintf(stderr, "store open: %s\n", why);
		exit(1);
	}
	return s;
}

static void key_put(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos, uint8_t type,
		    const void *val, size_t len)
{
	struct rd_trans *t = rd_trans_new(s);

	CHECK(t);
	CHECK_OK(rd_trans_put(t, id, pos, type, val, len));
	CHECK_OK(rd_trans_commit(t, NULL));
}

static void key_del(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos)
{
	struct rd_trans *t = rd_trans_new(s);

	CHECK(t);
	CHECK_OK(rd_trans_del(t, id, pos));
	CHECK_OK(rd_trans_commit(t, NULL));
}

static struct rd_bkey *key_get(struct rd_store *s, enum rd_btree_id id, struct rd_bpos pos)
{
	struct rd_bkey *k;

	CHECK_OK(rd_btree_lookup(s, id, pos, &k));
	return k;
}

static struct rd_inode_mem ino_get(struct rd_store *s, uint64_t ino)
{
	struct rd_bkey *k = key_get(s, RD_BTREE_INODES, RD_POS(ino, 0));
	struct rd_inode_mem m;

	rd_inode_unpack((const struct rd_inode_v *)k->val, &m);
	free(k);
	return m;
}

static void ino_put(struct rd_store *s, uint64_t ino, const struct rd_inode_mem *m)
{
	struct rd_inode_v v;

	rd_inode_pack(m, &v);
	key_put(s, RD_BTREE_INODES, RD_POS(ino, 0), RD_KEY_INODE, &v, sizeof(v));
}

/* The dirent key of name in dir (found by a scan: no rd_fs here). */
static struct rd_bkey *dirent_find(struct rd_store *s, uint64_t dir, const char *name)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_bkey *out = NULL;
	int ret;

	rd_btree_iter_init(&it, s, RD_BTREE_DIRENTS, RD_POS(dir, 0), RD_POS(dir, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		const struct rd_dirent_v *v = (const void *)k->val;

		if (k->type == RD_KEY_DIRENT && v->name_len == strlen(name) &&
		    !memcmp(v->name, name, v->name_len)) {
			out = malloc(sizeof(*k) + k->val_len);
			CHECK(out);
			memcpy(out, k, sizeof(*k) + k->val_len);
			break;
		}
	}
	rd_btree_iter_exit(&it);
	CHECK(out);
	return out;
}

/* The i-th extent key of ino. */
static struct rd_bkey *extent_nth(struct rd_store *s, uint64_t ino, unsigned n)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_bkey *out = NULL;
	unsigned i = 0;
	int ret;

	rd_btree_iter_init(&it, s, RD_BTREE_EXTENTS, RD_POS(ino, 0), RD_POS(ino, UINT64_MAX));
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		if (i++ == n) {
			out = malloc(sizeof(*k) + k->val_len);
			CHECK(out);
			memcpy(out, k, sizeof(*k) + k->val_len);
			break;
		}
	}
	rd_btree_iter_exit(&it);
	CHECK(out);
	return out;
}

static uint64_t extent_bucket(struct rd_store *s, const struct rd_bkey *k)
{
	return rd_le64_get(((const struct rd_extent_v *)k->val)->dev_offset) / s->geo.bucket_size;
}

static void bucket_add(struct rd_store *s, uint64_t b, int64_t sectors)
{
	struct rd_trans *t = rd_trans_new(s);

	CHECK(t);
	CHECK_OK(rd_trans_add_delta(t, b, sectors));
	CHECK_OK(rd_trans_commit(t, NULL));
}

/* ---- verdicts ----------------------------------------------------------------------------- */

/* Runs `refdio fsck ARG path` and returns its exit status (-1 without the binary). */
static int cli(const char *arg)
{
	char *argv[] = { (char *)refdio, "fsck", (char *)arg, path, NULL };
	posix_spawn_file_actions_t fa;
	int status;
	pid_t pid;

	if (!refdio || mask)	/* the CLI does not know the test hash mask */
		return -1;
	CHECK(!posix_spawn_file_actions_init(&fa));
	CHECK(!posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0));
	CHECK(!posix_spawn(&pid, refdio, &fa, NULL, argv, environ));
	posix_spawn_file_actions_destroy(&fa);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The CLI's exit status, when the test has the binary and the image no hash mask. */
#define CLI_EXPECT(arg, status) do {						\
	if (refdio && !mask)							\
		CHECK_EQ(cli(arg), status);					\
} while (0)

static bool in_list(const char *kind, const char *const *kinds)
{
	for (unsigned i = 0; kinds && kinds[i]; i++)
		if (!strcmp(kinds[i], kind))
			return true;
	return false;
}

/* Every finding of r is of a kind in fixed or left (those in left unfixed), and every
 * kind listed was found. */
static void expect_kinds(const char *what, const struct fu_run *r, const char *const *fixed,
			 const char *const *left, bool repaired)
{
	bool ok = true;

	for (unsigned i = 0; i < r->n; i++) {
		bool f = in_list(r->f[i].kind, fixed), l = in_list(r->f[i].kind, left);

		if (r->f[i].pending)
			continue;
		if ((!f && !l) || (repaired && f && !r->f[i].fixed) || (l && r->f[i].fixed) ||
		    (!repaired && r->f[i].fixed))
			ok = false;
	}
	for (unsigned i = 0; fixed && fixed[i]; i++)
		ok = ok && fu_count(r, fixed[i], 0);
	for (unsigned i = 0; left && left[i]; i++)
		ok = ok && fu_count(r, left[i], 0);
	if (!ok) {
		fprintf(stderr, "%s: unexpected findings (%s):\n", what,
			repaired ? "repair" : "check");
		fu_print(r);
		exit(1);
	}
}

/*
 * The standard verdict: -n finds the kinds in fixed and left and changes nothing; -y
 * repairs the former and leaves the latter; a second -y repairs nothing. With the CLI:
 * exit 4, then 1 (4 if something is left), then 0 (4).
 */
static void expect(const char *what, const char *const *fixed, const char *const *left)
{
	struct fu_run r1, r2, r3;
	int want_left = left && left[0] ? 4 : 0;

	fu_fsck(path, false, true, mask, &r1);
	if (getenv("RD_FSCK_VERBOSE"))
		fu_print(&r1);
	expect_kinds(what, &r1, fixed, left, false);
	CHECK(r1.res.problems > 0);
	CHECK_EQ(r1.res.fixed, 0);
	CLI_EXPECT("-n", 4);
	CLI_EXPECT("-n", 4);		/* -n changed nothing */
	fu_fsck(path, true, true, mask, &r2);
	if (getenv("RD_FSCK_VERBOSE"))
		fu_print(&r2);
	expect_kinds(what, &r2, fixed, left, true);
	fu_fsck(path, true, true, mask, &r3);
	if (r3.n && !want_left)
		fu_print(&r3);
	expect_kinds(what, &r3, NULL, left, true);
	if (!want_left)
		CHECK_EQ(r3.res.problems, 0);
	if (refdio && !mask)
		CHECK_EQ(cli("-y"), want_left);
	fprintf(stderr, "%s: %u found, %u fixed; then %u\n", what, r1.res.problems,
		r2.res.fixed, r3.res.problems);
}

/* Every regular file reachable from dir reads back its pattern; returns how many. */
static unsigned verify_files(struct rd_fs *fs, uint64_t dir, uint64_t except)
{
	struct ns_list l;
	unsigned n = 0;

	ns_list_all(fs, dir, &l);
	for (size_t i = 2; i < l.n; i++) {
		struct rd_stat st = ns_stat(fs, l.e[i].ino);

		if (S_ISDIR(st.mode)) {
			n += verify_files(fs, l.e[i].ino, except);
		} else if (S_ISREG(st.mode) && st.ino != except) {
			uint8_t *want = malloc(st.size + 1), *got = malloc(st.size + 1);

			CHECK(want && got);
			du_fill(want, st.ino, 0, st.size);
			CHECK_EQ(rd_fs_read(fs, st.ino, got, st.size + 1, 0), st.size);
			CHECK(!memcmp(want, got, st.size));
			free(want);
			free(got);
			n++;
		}
	}
	free(l.e);
	return n;
}

/* After a repair: files intact, links and ".." right, every inode reachable, no strays;
 * a check after that use is clean too. Returns the files verified. */
static unsigned verify_all(uint64_t except)
{
	struct rd_fs *fs = fs_open();
	uint64_t reached;
	unsigned n;

	n = verify_files(fs, RD_ROOT_INO, except);
	ns_check_tree_n(fs, &reached);
	CHECK_EQ(ns_count_inodes(fs), reached);
	ns_check_no_strays(fs);
	CHECK_OK(rd_fs_close(fs));
	return n;
}

#define KINDS(...)	((const char *const[]){ __VA_ARGS__, NULL })

/* ---- scenarios --------------------------------------------------------------------------- */

static void clean_image(void)
{
	struct base b;
	struct fu_run r;

	build(&b, 0);
	fu_fsck(path, false, true, 0, &r);
	fu_print(&r);
	CHECK_EQ(r.n, 0);
	CHECK(r.res.fs_checked);
	CHECK_EQ(r.res.inodes, 10);	/* root, lost+found, 8 made */
	CHECK(r.res.data_bytes >= 20000 + 8192 + 5000 + 4096 + (300 << 10));
	CHECK_EQ(r.res.xattrs, 2);
	CLI_EXPECT("-n", 0);
	CLI_EXPECT("-y", 0);
	CHECK_EQ(verify_all(0), 6);
	/* A freshly formatted image holds no filesystem yet: nothing to check, clean. */
	{
		struct du_geo g = { .size = 32 << 20 };

		unlink(path);
		du_format(path, "fsckfs", &g);
		fu_fsck(path, false, true, 0, &r);
		CHECK(!r.res.fs_checked && !r.res.fs_skipped);
		CHECK_EQ(r.n, 0);
	}
}

static void wrong_link_counts(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_inode_mem m;

	build(&b, 0);
	s = st_open();
	m = ino_get(s, b.f3);		/* two names */
	m.nlink = 5;
	ino_put(s, b.f3, &m);
	m = ino_get(s, b.dir);		/* ".", its name, sub's ".." */
	m.nlink = 2;
	ino_put(s, b.dir, &m);
	m = ino_get(s, b.dir);
	CHECK_OK(rd_store_close(s));
	expect("link counts", KINDS("nlink"), NULL);
	verify_all(0);
}

static void wrong_bucket_counts(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_bkey *k1, *k2;
	struct rd_bucket bk;
	uint64_t b1, b2, empty = 0;

	build(&b, 0);
	s = st_open();
	k2 = extent_nth(s, b.f2, 0);
	b2 = extent_bucket(s, k2);
	for (unsigned i = 0;; i++) {	/* big spans several buckets */
		k1 = extent_nth(s, b.big, i);
		b1 = extent_bucket(s, k1);
		if (b1 != b2)
			break;
		free(k1);
	}
	/* Too low, too low down to zero (the allocator then thinks it free: the repair must
	 * take it back before anything reuses it), and counted while empty. */
	bucket_add(s, b1, -8);
	CHECK_OK(rd_alloc_bucket(s, b2, &bk));
	bucket_add(s, b2, -(int64_t)bk.dirty_sectors);
	for (uint64_t i = s->geo.last_bucket - 1; i > s->geo.first_bucket && !empty; i--) {
		CHECK_OK(rd_alloc_bucket(s, i, &bk));
		if (!bk.dirty_sectors && !bk.btree_sectors && !bk.open_refs)
			empty = i;
	}
	CHECK(empty);
	CHECK_OK(rd_alloc_fsck_hold(s, empty));
	bucket_add(s, empty, 16);
	rd_alloc_fsck_release(s, empty);
	/* Not closed: a close checkpoints, and its nodes would go into the bucket just
	 * counted empty (which is the point of the damage). A crash after the flush keeps
	 * the damage as the journal has it. */
	CHECK_OK(rd_store_flush(s, 0));
	rd_store_crash(s);
	expect("bucket counts", KINDS("bucket-sectors"), NULL);
	/* The bucket given back must stay f2's: fill the device a little and look again. */
	{
		struct rd_fs *fs = fs_open();
		uint64_t n = mk(fs, RD_ROOT_INO, "filler", S_IFREG | 0644);

		for (uint64_t off = 0; off < 24 << 20; off += 1 << 20)
			put_data(fs, n, off, 1 << 20);
		CHECK_OK(rd_fs_close(fs));
	}
	fu_check_clean(path, true, 0);
	CHECK_EQ(verify_all(0), 7);
	free(k1);
	free(k2);
}

static void stale_extent(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_bkey *k;
	struct rd_extent_v *v;
	struct fu_run r;

	build(&b, 0);
	s = st_open();
	k = extent_nth(s, b.big, 1);
	v = (struct rd_extent_v *)k->val;
	CHECK(rd_le32_get(v->gen) > 0);	/* a bucket's first life is gen 1 */
	v->gen = rd_le32_of(rd_le32_get(v->gen) - 1);
	key_put(s, RD_BTREE_EXTENTS, k->pos, k->type, k->val, k->val_len);
	free(k);
	CHECK_OK(rd_store_close(s));
	/* The stale pointer is left (its data is gone: dropping it would hide that); the
	 * bucket stops counting it. */
	expect("stale extent", KINDS("bucket-sectors"), KINDS("extent-stale"));
	fu_fsck(path, false, true, 0, &r);
	CHECK_EQ(fu_count(&r, "extent-stale", b.big), 1);
	CHECK_EQ(r.res.problems, 1);
	CLI_EXPECT("-n", 4);
	CHECK_EQ(verify_all(b.big), 5);
}

/* A malformed key is named in fsck's message by the decoder `refdio list` uses: its
 * fields in words (rd_key_describe), not its type and size alone. */
static void malformed_key_message(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_bkey *k;
	struct rd_extent_v *v;
	struct fu_run r;
	unsigned found = 0;

	build(&b, 0);
	fu_fsck(path, false, true, 0, &r);
	CHECK_EQ(fu_count(&r, "extent-key", 0), 0);	/* the control: clean before */
	s = st_open();
	k = extent_nth(s, b.big, 1);
	v = (struct rd_extent_v *)k->val;
	v->flags = rd_le16_of(0x80);	/* no such flag */
	key_put(s, RD_BTREE_EXTENTS, k->pos, k->type, k->val, k->val_len);
	free(k);
	CHECK_OK(rd_store_close(s));
	fu_fsck(path, false, true, 0, &r);
	for (unsigned i = 0; i < r.n; i++) {
		if (strcmp(r.f[i].kind, "extent-key"))
			continue;
		found++;
		if (!strstr(r.f[i].msg, "unknown flags (extent: file_offset ") ||
		    !strstr(r.f[i].msg, "dev_offset 0x") || !strstr(r.f[i].msg, "flags unknown")) {
			fprintf(stderr, "extent-key message without the decoded key: %s\n",
				r.f[i].msg);
			exit(1);
		}
	}
	CHECK_EQ(found, 1);
}

static void orphans_after_crash(void)
{
	struct base b;
	struct rd_fs *fs;
	struct rd_stat st;
	struct fu_run r;
	uint64_t o, od;

	build(&b, 0);
	fs = fs_open();
	o = mk(fs, RD_ROOT_INO, "open-file", S_IFREG | 0644);
	put_data(fs, o, 0, 50000);
	CHECK_OK(rd_fs_setxattr(fs, o, "user.x", "y", 1, 0));
	od = mk(fs, b.dir, "open-dir", S_IFDIR | 0755);
	CHECK_OK(rd_fs_iget(fs, o));
	CHECK_OK(rd_fs_iget(fs, od));
	CHECK_OK(rd_fs_unlink(fs, RD_ROOT_INO, "open-file"));
	CHECK_OK(rd_fs_rmdir(fs, b.dir, "open-dir"));
	CHECK_OK(rd_store_flush(rd_fs_store(fs), 0));
	rd_fs_crash(fs);

	/* Crash leftovers, not damage: noted, exit 0, and -y finishes them. */
	fu_fsck(path, false, true, 0, &r);
	CHECK_EQ(r.res.problems, 0);
	CHECK_EQ(r.res.pending, 2);
	CHECK_EQ(fu_count(&r, "orphan", o) + fu_count(&r, "orphan", od), 2);
	CLI_EXPECT("-n", 0);
	fu_fsck(path, true, true, 0, &r);
	CHECK_EQ(r.res.problems, 0);
	CHECK_EQ(r.res.pending, 2);
	CHECK(r.f[0].fixed && r.f[1].fixed);
	fu_fsck(path, false, true, 0, &r);
	CHECK_EQ(r.n, 0);
	fs = fs_open();
	CHECK_EQ(rd_fs_getattr(fs, o, &st), -ENOENT);
	CHECK_EQ(rd_fs_getattr(fs, od, &st), -ENOENT);
	CHECK(ns_range_empty(fs, RD_BTREE_EXTENTS, o));
	CHECK(ns_range_empty(fs, RD_BTREE_XATTRS, o));
	CHECK(!ns_key_exists(fs, RD_BTREE_INODES, 0, o));
	CHECK_OK(rd_fs_close(fs));
	fu_check_clean(path, true, 0);
	CHECK_EQ(verify_all(0), 6);
	fprintf(stderr, "orphans: 2 noted, deleted by -y\n");
}

static void unreachable_inodes(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_bkey *k;
	struct rd_fs *fs;
	struct rd_stat st;
	char name[32];

	build(&b, 0);
	/* lost+found removed by the user: the repair makes a new one. */
	fs = fs_open();
	CHECK_OK(rd_fs_rmdir(fs, RD_ROOT_INO, RD_LOST_FOUND_NAME));
	CHECK_OK(rd_fs_close(fs));
	s = st_open();
	k = dirent_find(s, RD_ROOT_INO, "f1");
	key_del(s, RD_BTREE_DIRENTS, k->pos);
	free(k);
	k = dirent_find(s, b.dir, "sub");
	key_del(s, RD_BTREE_DIRENTS, k->pos);
	free(k);
	CHECK_OK(rd_store_close(s));
	/* f1 and sub are named nowhere; dir's count still includes sub's "..". */
	expect("unreachable", KINDS("unreachable", "nlink"), NULL);
	fs = fs_open();
	CHECK_OK(rd_fs_lookup(fs, RD_ROOT_INO, RD_LOST_FOUND_NAME, &st));
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)b.f1);
	CHECK_EQ(ns_ino(fs, st.ino, name), b.f1);
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)b.sub);
	CHECK_EQ(ns_ino(fs, st.ino, name), b.sub);
	CHECK_EQ(ns_ino(fs, b.sub, "inner"), b.inner);
	CHECK_EQ(ns_stat(fs, b.f1).nlink, 1);
	{
		char v[3000];

		CHECK_EQ(rd_fs_getxattr(fs, b.f1, "user.big", v, sizeof(v)), 3000);
	}
	CHECK_OK(rd_fs_close(fs));
	CHECK_EQ(verify_all(0), 6);
}

static void stray_keys(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_bkey *k;
	struct rd_dirent_v *d;
	uint8_t buf[64];

	build(&b, 0);
	s = st_open();
	/* An extent of no inode (pointing at big's data: current, so the bucket count is
	 * now short of it too), entries of a directory that does not exist, an xattr and a
	 * symlink chunk of missing inodes. */
	k = extent_nth(s, b.big, 0);
	key_put(s, RD_BTREE_EXTENTS, RD_POS(9999, k->pos.offset), k->type, k->val, k->val_len);
	free(k);
	d = (struct rd_dirent_v *)buf;
	memset(buf, 0, sizeof(buf));
	d->inum = rd_le64_of(b.f2);
	d->d_type = 8;
	d->name_len = 3;
	memcpy(d->name, "abc", 3);
	key_put(s, RD_BTREE_DIRENTS, RD_POS(9998, 100), RD_KEY_DIRENT, d, sizeof(*d) + 3);
	key_put(s, RD_BTREE_DIRENTS, RD_POS(9998, 101), RD_KEY_WHITEOUT, NULL, 0);
	CHECK_OK(rd_btree_peek(s, RD_BTREE_XATTRS, RD_POS(b.f1, 0), RD_POS(b.f1, UINT64_MAX),
			       &k));
	key_put(s, RD_BTREE_XATTRS, RD_POS(9997, k->pos.offset), k->type, k->val, k->val_len);
	free(k);
	key_put(s, RD_BTREE_INODES, RD_POS(9996, 1), RD_KEY_SYMLINK, "abc", 3);
	CHECK_OK(rd_store_close(s));
	expect("strays", KINDS("stray", "bucket-sectors"), NULL);
	CHECK_EQ(verify_all(0), 6);
}

static void broken_chains(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_bkey *k;
	struct rd_fs *fs;
	struct fu_run r;
	char name[16];

	/* Collisions forced (4 slots): a directory of long chains with whiteouts is clean. */
	build(&b, 3);
	fs = fs_open();
	for (unsigned i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "c%u", i);
		mk(fs, b.dir, name, S_IFREG | 0644);
	}
	for (unsigned i = 0; i < 40; i += 3) {
		snprintf(name, sizeof(name), "c%u", i);
		CHECK_OK(rd_fs_unlink(fs, b.dir, name));
	}
	CHECK_OK(rd_fs_close(fs));
	fu_fsck(path, false, true, mask, &r);
	fu_print(&r);
	CHECK_EQ(r.n, 0);

	/* Without collisions: f2's entry moved two slots on (a gap before it), and a
	 * second entry for f3 under its own name right after its slot. */
	build(&b, 0);
	s = st_open();
	k = dirent_find(s, RD_ROOT_INO, "f2");
	key_del(s, RD_BTREE_DIRENTS, k->pos);
	key_put(s, RD_BTREE_DIRENTS, RD_POS(RD_ROOT_INO, k->pos.offset + 2), k->type, k->val,
		k->val_len);
	free(k);
	k = dirent_find(s, RD_ROOT_INO, "f3");
	key_put(s, RD_BTREE_DIRENTS, RD_POS(RD_ROOT_INO, k->pos.offset + 1), k->type, k->val,
		k->val_len);
	free(k);
	CHECK_OK(rd_store_close(s));
	/* The extra name makes f3's count wrong as well (three entries now). */
	expect("chains", KINDS("nlink"), KINDS("dirent-chain", "dirent-dup"));
	fu_fsck(path, false, true, 0, &r);
	CHECK_EQ(fu_count(&r, "dirent-chain", RD_ROOT_INO), 1);
	CHECK(strstr(r.f[0].msg, "\"f2\"") || strstr(r.f[1].msg, "\"f2\""));
}

static void wrong_sizes(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_inode_mem m;
	struct fu_run r;

	build(&b, 0);
	s = st_open();
	m = ino_get(s, b.f1);
	m.sectors += 8;
	ino_put(s, b.f1, &m);
	m = ino_get(s, b.f2);
	m.sectors = 0;
	ino_put(s, b.f2, &m);
	CHECK_OK(rd_store_close(s));
	expect("sectors", KINDS("inode-sectors"), NULL);
	CHECK_EQ(verify_all(0), 6);

	/* i_size below written data: the tail invariant is broken; left as it is. */
	s = st_open();
	m = ino_get(s, b.big);
	m.size = 100000;
	ino_put(s, b.big, &m);
	CHECK_OK(rd_store_close(s));
	expect("i_size", NULL, KINDS("extent-past-eof"));
	fu_fsck(path, false, false, 0, &r);
	CHECK(fu_count(&r, "extent-past-eof", b.big) >= 2);
}

static void bad_names_and_values(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_bkey *k;
	struct rd_dirent_v *d;
	struct rd_inode_mem m;
	uint8_t buf[64];

	build(&b, 0);
	s = st_open();
	/* An entry naming no inode (at a slot of its own: nothing probes through it). */
	d = (struct rd_dirent_v *)buf;
	memset(buf, 0, sizeof(buf));
	d->inum = rd_le64_of(7777);
	d->d_type = 8;
	d->name_len = 5;
	memcpy(d->name, "ghost", 5);
	key_put(s, RD_BTREE_DIRENTS, RD_POS(b.dir, rd_probe_hash_key(s->sb.hash_secret, 0,
		"ghost", 5, RD_HASH_SLOT_MAX)), RD_KEY_DIRENT, d, sizeof(*d) + 5);
	/* A parent pointer gone wrong, and an orphan marker on a linked file. */
	m = ino_get(s, b.sub);
	m.parent = b.f2;
	ino_put(s, b.sub, &m);
	key_put(s, RD_BTREE_INODES, RD_POS(0, b.f2), RD_KEY_ORPHAN, NULL, 0);
	CHECK_OK(rd_store_close(s));
	expect("names", KINDS("dirent-target", "parent", "orphan-marker"), NULL);
	CHECK_EQ(verify_all(0), 6);

	/* A multi-key xattr missing a piece, a symlink target cut short. */
	s = st_open();
	CHECK_OK(rd_btree_peek(s, RD_BTREE_XATTRS, RD_POS(b.f1, 1), RD_POS(b.f1, UINT64_MAX),
			       &k));
	while (k->type != RD_KEY_XATTR_MORE) {
		struct rd_bpos next = rd_bpos_successor(k->pos);

		free(k);
		CHECK_OK(rd_btree_peek(s, RD_BTREE_XATTRS, next, RD_POS(b.f1, UINT64_MAX), &k));
	}
	key_del(s, RD_BTREE_XATTRS, k->pos);
	free(k);
	key_put(s, RD_BTREE_INODES, RD_POS(b.link, 1), RD_KEY_SYMLINK, "xxxx", 4);
	CHECK_OK(rd_store_close(s));
	expect("values", NULL, KINDS("xattr-value", "symlink"));
}

static void numbering_behind(void)
{
	struct base b;
	struct rd_store *s;
	struct rd_inode_alloc_v av = { .next_ino = rd_le64_of(RD_FIRST_FREE_INO + 1) };
	struct fu_run r;
	struct rd_fs *fs;

	build(&b, 0);
	s = st_open();
	key_put(s, RD_BTREE_INODES, RD_POS(0, 0), RD_KEY_INODE_ALLOC, &av, sizeof(av));
	CHECK_OK(rd_store_close(s));
	/* What a crash can leave (a create that moved the limit lost, a later one kept):
	 * open copes, so it is no error. */
	fu_fsck(path, false, true, 0, &r);
	CHECK_EQ(r.res.problems, 0);
	CHECK_EQ(fu_count(&r, "inode-numbering", 0), 1);
	fu_fsck(path, true, true, 0, &r);
	CHECK(r.f[0].fixed);
	fu_fsck(path, false, true, 0, &r);
	CHECK_EQ(r.n, 0);
	/* The missing key: an error, rewritten. */
	s = st_open();
	key_del(s, RD_BTREE_INODES, RD_POS(0, 0));
	CHECK_OK(rd_store_close(s));
	expect("number key", KINDS("inode-alloc-key"), NULL);
	fs = fs_open();
	CHECK(mk(fs, RD_ROOT_INO, "new", S_IFREG | 0644) > b.link);
	CHECK_OK(rd_fs_close(fs));
	CHECK_EQ(verify_all(0), 7);
}

/* The n-th key of tree id (n taken modulo the number of keys); NULL if it is empty. */
static struct rd_bkey *key_nth(struct rd_store *s, enum rd_btree_id id, uint64_t n)
{
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_bkey *out = NULL;
	uint64_t count = 0, i = 0;
	int ret;

	rd_btree_iter_init(&it, s, id, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k)))
		count++;
	rd_btree_iter_exit(&it);
	if (!count)
		return NULL;
	n %= count;
	rd_btree_iter_init(&it, s, id, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		if (i++ == n) {
			out = malloc(sizeof(*k) + k->val_len);
			CHECK(out);
			memcpy(out, k, sizeof(*k) + k->val_len);
			break;
		}
	}
	rd_btree_iter_exit(&it);
	return out;
}

/*
 * Random damage: keys of the filesystem trees deleted, or with bytes of their value
 * changed. Whatever it is, the check must not crash, and -y must converge: a second -y
 * repairs nothing more, and a check after it finds what the second -y found.
 */
static void random_damage(uint64_t seed)
{
	static const enum rd_btree_id ids[] = { RD_BTREE_INODES, RD_BTREE_DIRENTS,
						RD_BTREE_XATTRS, RD_BTREE_EXTENTS };
	unsigned rounds = getenv("RD_FSCK_ROUNDS") ? (unsigned)atoi(getenv("RD_FSCK_ROUNDS"))
						   : 24;
	unsigned total = 0;

	for (unsigned r = 0; r < rounds; r++) {
		struct base b;
		struct rd_store *s;
		struct fu_run r1, r2, r3, r4;
		unsigned edits = 1 + (unsigned)(test_rand(&seed) % 4);

		build(&b, 0);
		s = st_open();
		for (unsigned e = 0; e < edits; e++) {
			enum rd_btree_id id = ids[test_rand(&seed) % 4];
			struct rd_bkey *k = key_nth(s, id, test_rand(&seed));

			if (!k)
				continue;
			if (test_rand(&seed) % 3 == 0 || !k->val_len) {
				key_del(s, id, k->pos);
			} else {
				/* a few bytes of the value changed: small deltas and wild ones */
				for (unsigned j = 0; j < 1 + test_rand(&seed) % 3; j++) {
					size_t at = test_rand(&seed) % k->val_len;

					if (test_rand(&seed) % 2)
						k->val[at] ^= (uint8_t)(1u << (test_rand(&seed) % 8));
					else
						k->val[at] = (uint8_t)test_rand(&seed);
				}
				key_put(s, id, k->pos, k->type, k->val, k->val_len);
			}
			free(k);
		}
		/* Crash rather than close: damage to the counts must not be acted on by the
		 * allocator before the check sees it (see wrong_bucket_counts). */
		CHECK_OK(rd_store_flush(s, 0));
		rd_store_crash(s);
		fu_fsck(path, false, true, 0, &r1);
		fu_fsck(path, true, true, 0, &r2);
		fu_fsck(path, true, true, 0, &r3);
		fu_fsck(path, false, true, 0, &r4);
		if (r3.res.fixed || r4.res.problems != r3.res.problems) {
			fprintf(stderr, "random damage round %u: -y did not converge\n", r);
			fu_print(&r1);
			fprintf(stderr, " then -y:\n");
			fu_print(&r2);
			fprintf(stderr, " then -y:\n");
			fu_print(&r3);
			exit(1);
		}
		total += r1.res.problems;
	}
	fprintf(stderr, "random damage: %u rounds, %u findings, -y converged each time\n",
		rounds, total);
}

/* Bugs of the engine the check found, kept found. */
static void engine_regressions(void)
{
	struct base b;
	struct rd_fs *fs;
	uint64_t p;

	/* A file whose only extents are preallocated past its end (KEEP_SIZE), unlinked:
	 * its deletion truncates to 0, which must drop them too, not leave stray extents
	 * (and their space) behind. */
	build(&b, 0);
	fs = fs_open();
	p = mk(fs, RD_ROOT_INO, "prealloc", S_IFREG | 0644);
	CHECK_OK(rd_fs_fallocate(fs, p, FALLOC_FL_KEEP_SIZE, 0, 1 << 20));
	CHECK_EQ(ns_stat(fs, p).size, 0);
	CHECK(ns_stat(fs, p).blocks >= 2048);
	CHECK_OK(rd_fs_unlink(fs, RD_ROOT_INO, "prealloc"));
	CHECK(ns_range_empty(fs, RD_BTREE_EXTENTS, p));
	/* The same with data, and a truncate to the current size. */
	p = mk(fs, RD_ROOT_INO, "prealloc2", S_IFREG | 0644);
	put_data(fs, p, 0, 10000);
	CHECK_OK(rd_fs_fallocate(fs, p, FALLOC_FL_KEEP_SIZE, 0, 1 << 20));
	du_truncate(fs, p, 10000);
	CHECK_EQ(ns_stat(fs, p).blocks, 24);	/* 3 blocks of data, the rest gone */
	CHECK_OK(rd_fs_close(fs));
	fu_check_clean(path, true, 0);
	CHECK_EQ(verify_all(0), 7);
}

int main(int argc, char **argv)
{
	uint64_t seed;

	refdio = argc > 1 ? argv[1] : NULL;
	seed = test_seed() | 1;
	clean_image();
	wrong_link_counts();
	wrong_bucket_counts();
	stale_extent();
	malformed_key_message();
	orphans_after_crash();
	unreachable_inodes();
	stray_keys();
	broken_chains();
	wrong_sizes();
	bad_names_and_values();
	numbering_behind();
	engine_regressions();
	random_damage(seed);
	unlink(path);
	printf("test_fsck_fs: %u scenarios ok%s\n", scenarios, refdio ? " (with the CLI)" : "");
	return 0;
}
