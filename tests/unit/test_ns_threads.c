/*
 * test_ns_threads.c - namespace calls racing each other: threads create, link, unlink,
 * remove, rename (all flags, across directories, directories into each other), look up,
 * list and set xattrs over a few shared directories and names, with forced hash
 * collisions. Nothing may deadlock, no call may fail with anything but the errors POSIX
 * allows for these races, and afterwards the tree must be a tree: every inode reachable
 * from the root, link counts and ".." right, no directory lost in a cycle.
 * Run under ThreadSanitizer too (suite tsan).
 */
#include <pthread.h>

#include "ns_util.h"

enum { THREADS = 4, NAMES = 12, DIRS_MAX = 64 };

static char img[256];
static struct rd_fs *fs;
static unsigned ops_per_thread = 6000;

/* Directories known to exist at some point (some may be gone: calls then fail). */
static _Atomic uint64_t dirs[DIRS_MAX];
static atomic_uint ndirs;

static uint64_t pick_dir(uint64_t *seed)
{
	unsigned n = atomic_load(&ndirs);

	return atomic_load(&dirs[test_rand(seed) % n]);
}

static void add_dir(uint64_t ino)
{
	unsigned i = atomic_fetch_add(&ndirs, 1);

	if (i < DIRS_MAX) {
		atomic_store(&dirs[i], ino);
	} else {
		atomic_fetch_sub(&ndirs, 1);
	}
}

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

static int ok_fill(void *priv, const char *name, size_t len, uint64_t ino, unsigned type,
		   uint64_t cookie)
{
	(void)name, (void)len, (void)ino, (void)type, (void)cookie;
	++*(unsigned *)priv;
	return 0;
}

static void *worker(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	char a[16], b[16];

	for (unsigned i = 0; i < ops_per_thread; i++) {
		uint64_t d1 = pick_dir(&seed), d2 = pick_dir(&seed);
		static const unsigned rflags[] = { 0, 0, RD_RENAME_NOREPLACE, RD_RENAME_EXCHANGE };
		struct rd_stat st;
		unsigned n = 0;
		int ret = 0;

		snprintf(a, sizeof(a), "n%u", (unsigned)(test_rand(&seed) % NAMES));
		snprintf(b, sizeof(b), "n%u", (unsigned)(test_rand(&seed) % NAMES));
		switch (test_rand(&seed) % 12) {
		case 0:
		case 1:
			ret = rd_fs_mknod(fs, d1, a, S_IFREG | 0644, 0, &ns_cred, &st);
			break;
		case 2:
			ret = rd_fs_mkdir(fs, d1, a, 0755, &ns_cred, &st);
			if (!ret)
				add_dir(st.ino);
			break;
		case 3:
			ret = rd_fs_unlink(fs, d1, a);
			break;
		case 4:
			ret = rd_fs_rmdir(fs, d1, a);
			break;
		case 5:
		case 6:
		case 7:
			ret = rd_fs_rename(fs, d1, a, d2, b, rflags[test_rand(&seed) % 4]);
			break;
		case 8:
			ret = rd_fs_lookup(fs, d1, a, &st);
			if (!ret)
				ret = rd_fs_link(fs, st.ino, d2, b, &st);
			break;
		case 9:
			ret = rd_fs_readdir(fs, d1, 0, ok_fill, &n);
			break;
		case 10:
			ret = rd_fs_lookup(fs, d1, a, &st);
			if (!ret)
				ret = rd_fs_setxattr(fs, st.ino, "user.t", a, strlen(a), 0);
			break;
		case 11:
			ret = rd_fs_lookup(fs, d1, a, &st);
			if (!ret)
				ret = (int)rd_fs_getxattr(fs, st.ino, "user.t", NULL, 0);
			ret = ret > 0 ? 0 : ret;
			break;
		}
		if (!allowed(ret)) {
			fprintf(stderr, "op failed: %d (%s)\n", ret, rd_strerror(ret));
			exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[THREADS];
	struct rd_stat st;
	uint64_t reached;

	if (argc > 1)
		ops_per_thread = (unsigned)strtoul(argv[1], NULL, 0);
	ns_image(img, sizeof(img), "threads", 256ull << 20, 4096);
	fs = ns_open(img, 0x7);
	add_dir(RD_ROOT_INO);
	for (int i = 0; i < 4; i++) {
		char name[16];

		snprintf(name, sizeof(name), "d%d", i);
		CHECK_OK(rd_fs_mkdir(fs, RD_ROOT_INO, name, 0755, &ns_cred, &st));
		add_dir(st.ino);
	}
	for (uintptr_t i = 0; i < THREADS; i++)
		CHECK(!pthread_create(&th[i], NULL, worker, (void *)(i + 1)));
	for (int i = 0; i < THREADS; i++)
		CHECK(!pthread_join(th[i], NULL));

	fprintf(stderr, "%llu entries after the race\n", (unsigned long long)ns_check_tree(fs));
	CHECK_OK(rd_fs_close(fs));
	fs = ns_open(img, 0x7);
	ns_check_tree_n(fs, &reached);
	/* nothing unreachable: no directory cut off in a cycle, no leaked inode */
	CHECK_EQ(ns_count_inodes(fs), reached);
	CHECK_OK(rd_fs_close(fs));
	unlink(img);
	return 0;
}
