/*
 * test_ns_crash.c - crash consistency of the namespace: rounds of random operations
 * (creates of every kind, links, unlinks, rmdirs, renames with all flags, xattrs, file
 * data, kernel references held across unlinks), each ended by a simulated power cut at
 * whatever point the journal happened to reach, sometimes right after a flush. Every
 * namespace operation is one transaction, so after every reopen the tree must be whole:
 * link counts and ".." right, every inode reachable from the root, no key (extents
 * included) left behind by a deleted inode, no orphan marker left, and what was flushed
 * before the cut present.
 * And before each reopen, the filesystem check (rd_fsck_fs) on the image as the cut left it
 * finds no error (orphans of unlinked-but-held inodes are allowed: they are crash leftovers).
 */
#include "fsck_util.h"
#include "ns_util.h"

enum { ROUNDS = 12, OPS = 400, NAMES = 24, DIRS_MAX = 48, HELD_MAX = 16 };

static char img[256];
static unsigned nops, nok;

struct state {
	uint64_t dirs[DIRS_MAX];
	unsigned ndirs;
	uint64_t held[HELD_MAX];	/* inodes we took a kernel reference on */
	unsigned nheld;
};

static bool allowed(int ret)
{
	switch (-ret) {
	case 0: case ENOENT: case EEXIST: case ENOTEMPTY: case EISDIR: case ENOTDIR:
	case EINVAL: case EPERM: case ENODATA:
		return true;
	default:
		return false;
	}
}

static void one_op(struct rd_fs *fs, struct state *s, uint64_t *seed)
{
	static const unsigned rflags[] = { 0, 0, RD_RENAME_NOREPLACE, RD_RENAME_EXCHANGE };
	uint64_t d1 = s->dirs[test_rand(seed) % s->ndirs];
	uint64_t d2 = s->dirs[test_rand(seed) % s->ndirs];
	char a[16], b[16], val[300];
	struct rd_stat st;
	int ret = 0;

	snprintf(a, sizeof(a), "n%u", (unsigned)(test_rand(seed) % NAMES));
	snprintf(b, sizeof(b), "n%u", (unsigned)(test_rand(seed) % NAMES));
	switch (test_rand(seed) % 15) {
	case 0:
	case 1:
		ret = rd_fs_mknod(fs, d1, a, S_IFREG | 0644, 0, &ns_cred, &st);
		break;
	case 2:
		ret = rd_fs_mkdir(fs, d1, a, 0755, &ns_cred, &st);
		if (!ret && s->ndirs < DIRS_MAX)
			s->dirs[s->ndirs++] = st.ino;
		break;
	case 3:
		memset(val, 'a' + (int)(test_rand(seed) % 26), sizeof(val));
		val[1 + test_rand(seed) % (sizeof(val) - 1)] = '\0';
		ret = rd_fs_symlink(fs, d1, a, val, &ns_cred, &st);
		break;
	case 4:
	case 5:
		ret = rd_fs_unlink(fs, d1, a);
		break;
	case 6:
		ret = rd_fs_rmdir(fs, d1, a);
		break;
	case 7:
	case 8:
	case 9:
		ret = rd_fs_rename(fs, d1, a, d2, b, rflags[test_rand(seed) % 4]);
		break;
	case 10:
		ret = rd_fs_lookup(fs, d1, a, &st);
		if (!ret)
			ret = rd_fs_link(fs, st.ino, d2, b, &st);
		break;
	case 11:
		ret = rd_fs_lookup(fs, d1, a, &st);
		if (!ret) {
			size_t n = test_rand(seed) % 3000;

			memset(val, 'x', sizeof(val));
			ret = rd_fs_setxattr(fs, st.ino, b, val, n < sizeof(val) ? n : sizeof(val),
					     0);
		}
		break;
	case 12:
		ret = rd_fs_lookup(fs, d1, a, &st);
		if (!ret)
			ret = rd_fs_removexattr(fs, st.ino, b);
		break;
	case 14:	/* data, so deleted files have extents to lose */
		ret = rd_fs_lookup(fs, d1, a, &st);
		if (!ret && S_ISREG(st.mode)) {
			size_t n = 1 + test_rand(seed) % sizeof(val);
			ssize_t w;

			memset(val, 'w', sizeof(val));
			w = rd_fs_write(fs, st.ino, val, n, test_rand(seed) % 20000, 0);
			ret = w < 0 ? (int)w : 0;
			CHECK(w < 0 || (size_t)w == n);
		}
		break;
	case 13:	/* the kernel looks something up and keeps it */
		ret = rd_fs_lookup(fs, d1, a, &st);
		if (!ret && s->nheld < HELD_MAX) {
			CHECK_OK(rd_fs_iget(fs, st.ino));
			s->held[s->nheld++] = st.ino;
		}
		break;
	}
	if (!allowed(ret)) {
		fprintf(stderr, "op failed: %d (%s)\n", ret, rd_strerror(ret));
		exit(1);
	}
	nops++;
	nok += !ret;
}

static void check_whole(struct rd_fs *fs)
{
	uint64_t reached;

	ns_check_tree_n(fs, &reached);
	CHECK_EQ(ns_count_inodes(fs), reached);
	ns_check_no_strays(fs);
}

int main(void)
{
	uint64_t seed = test_seed();
	struct rd_fs *fs;
	struct state s = { .ndirs = 1, .dirs = { RD_ROOT_INO } };

	ns_image(img, sizeof(img), "crash", 256ull << 20, 4096);
	fs = ns_open(img, 0x1f);
	for (unsigned r = 0; r < ROUNDS; r++) {
		bool flushed = r % 3 == 0;
		char marker[32];
		struct rd_stat st;

		for (unsigned i = 0; i < OPS; i++) {
			one_op(fs, &s, &seed);
			/* let some iputs happen mid-round (deleting held orphans) */
			if (s.nheld && test_rand(&seed) % 16 == 0)
				rd_fs_iput(fs, s.held[--s.nheld], 1);
		}
		snprintf(marker, sizeof(marker), "flushed-%u", r);
		if (flushed) {
			CHECK_OK(rd_fs_mknod(fs, RD_ROOT_INO, marker, S_IFREG, 0, &ns_cred, &st));
			CHECK_OK(rd_store_flush(rd_fs_store(fs), 0));
			one_op(fs, &s, &seed);	/* and one more that may or may not survive */
		}
		rd_fs_crash(fs);
		s.nheld = 0;		/* the kernel's references died with the daemon */
		/* The image as the cut left it, before the open deletes its orphans. */
		fu_check_clean(img, true, 0x1f);
		fs = ns_open(img, 0x1f);
		check_whole(fs);
		if (flushed)
			CHECK_OK(rd_fs_lookup(fs, RD_ROOT_INO, marker, &st));
		/* directories may have gone in the cut: keep those that still exist */
		for (unsigned i = 0; i < s.ndirs; i++) {
			if (rd_fs_getattr(fs, s.dirs[i], &st) || !st.nlink)
				s.dirs[i--] = s.dirs[--s.ndirs];
		}
		CHECK(s.ndirs >= 1);
	}
	CHECK_OK(rd_fs_close(fs));
	fu_check_clean(img, true, 0x1f);
	fs = ns_open(img, 0x1f);
	fprintf(stderr, "%u operations (%u succeeded), %u crashes; %llu entries at the end\n",
		nops, nok, ROUNDS, (unsigned long long)ns_check_tree(fs));
	check_whole(fs);
	CHECK_OK(rd_fs_close(fs));
	unlink(img);
	return 0;
}
