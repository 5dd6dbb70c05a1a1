/*
 * fuzz_journal.c - libFuzzer harness: journal entry decoding and replay (engine/core/journal.c)
 * into the trees (store.c's replay_apply, btree.c), the allocator's set-up behind it, and
 * what a mount does first with the result.
 *
 * Input: an image (fuzz.h's codec). The seeds are small images whose process crashed with
 * the journal holding entries after the last checkpoint, so the open replays them. Flags
 * beyond FZ_FIX_CSUMS:
 *   JR_WRITE  open read-write instead (replay, the superblock copies rewritten, the flusher
 *             started), close it (a checkpoint of the replayed trees, the superblock marked
 *             clean), and require that what the engine wrote opens again
 *   JR_FS     open the filesystem on top (rd_fs_open: root, lost+found, orphans), walk the
 *             namespace (readdir, lookup, getattr, readlink, xattrs, the first bytes of
 *             every file), and with JR_WRITE make a few changes (create, write, rename,
 *             xattr, unlink) before the close
 *
 * Each input: rd_store_open (read-only: the replay happens in memory only), then every key
 * of every tree in order through the iterators (which reads every leaf the replay did not),
 * checking that positions strictly increase, then close.
 *
 * Must never: leave a file behind (the image is a memfd).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "btree.h"
#include "refdio/errors.h"
#include "refdio/fs.h"
#include "fuzz.h"
#include "store.h"

#define WALK_MAX	128	/* names visited per input: keeps a run short */

bool fz_accepted;

static struct fz_image im;

/* Every key of every tree, in order; 0 or the first error a read met. */
static int read_trees(struct rd_store *s)
{
	for (unsigned id = 0; id < RD_BTREE_NR; id++) {
		struct rd_btree_iter it;
		const struct rd_bkey *k;
		struct rd_bpos prev = RD_POS_MIN;
		bool first = true;
		int ret;

		rd_btree_iter_init(&it, s, id, RD_POS_MIN, RD_POS_MAX);
		while (!(ret = rd_btree_iter_next(&it, &k))) {
			fz_assert(k->type);
			fz_assert(first || rd_bpos_cmp(prev, k->pos) < 0);
			prev = k->pos;
			first = false;
		}
		rd_btree_iter_exit(&it);
		if (ret != -ENOENT)
			return ret;
	}
	return 0;
}

/* ---- the filesystem on top (JR_FS) --------------------------------------------------- */

struct walk {
	char names[WALK_MAX][256];
	uint64_t dirs[WALK_MAX];	/* directory of names[i] */
	unsigned n, next;
};

struct fill_ctx {
	struct walk *w;
	uint64_t dir;
};

/* Collects names only: the filesystem is not called back from inside readdir. */
static int fill(void *priv, const char *name, size_t len, uint64_t ino, unsigned d_type,
		uint64_t next_cookie)
{
	struct fill_ctx *c = priv;
	struct walk *w = c->w;

	(void)ino, (void)d_type, (void)next_cookie;
	fz_assert(len >= 1 && len <= 255);
	if ((len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2)))
		return 0;
	if (w->n == WALK_MAX)
		return 1;
	memcpy(w->names[w->n], name, len);
	w->names[w->n][len] = 0;
	w->dirs[w->n++] = c->dir;
	return 0;
}

static void visit(struct rd_fs *fs, struct walk *w, uint64_t dir, const char *name)
{
	static char buf[65536];
	struct fill_ctx fc = { .w = w, .dir = 0 };
	struct rd_stat st;
	ssize_t n;

	if (rd_fs_lookup(fs, dir, name, &st))
		return;
	rd_fs_getattr(fs, st.ino, &st);
	if (S_ISDIR(st.mode)) {
		fc.dir = st.ino;
		rd_fs_readdir(fs, st.ino, 0, fill, &fc);
	} else if (S_ISLNK(st.mode)) {
		n = rd_fs_readlink(fs, st.ino, buf, sizeof(buf));
		fz_assert(n < 0 || (size_t)n <= sizeof(buf));
	} else if (S_ISREG(st.mode)) {
		uint64_t off;

		n = rd_fs_read(fs, st.ino, buf, sizeof(buf), 0);
		fz_assert(n < 0 || (size_t)n <= sizeof(buf));
		rd_fs_lseek(fs, st.ino, 0, SEEK_DATA, &off);
	}
	n = rd_fs_listxattr(fs, st.ino, buf, sizeof(buf));
	fz_assert(n <= (ssize_t)sizeof(buf));
	for (ssize_t i = 0; i < n; i += (ssize_t)strnlen(buf + i, (size_t)(n - i)) + 1) {
		static char val[65536];
		char xname[256];

		snprintf(xname, sizeof(xname), "%.*s", (int)(n - i), buf + i);
		fz_assert(rd_fs_getxattr(fs, st.ino, xname, val, sizeof(val)) <=
			  (ssize_t)sizeof(val));
	}
}

/* A few changes a mount could make first (JR_WRITE): each may fail, none may crash. */
static void change(struct rd_fs *fs)
{
	static const struct rd_fs_cred cred = { 0, 0 };
	static char data[5000];
	struct rd_stat st;

	if (rd_fs_mknod(fs, RD_ROOT_INO, "fuzz-new", S_IFREG | 0644, 0, &cred, &st))
		return;
	rd_fs_write(fs, st.ino, data, sizeof(data), 100, 0);
	rd_fs_setxattr(fs, st.ino, "user.fuzz", "v", 1, 0);
	rd_fs_mkdir(fs, RD_ROOT_INO, "fuzz-dir", 0755, &cred, NULL);
	rd_fs_rename(fs, RD_ROOT_INO, "fuzz-new", RD_ROOT_INO, "fuzz-moved", 0);
	rd_fs_unlink(fs, RD_ROOT_INO, "fuzz-moved");
	rd_fs_fsync(fs, RD_ROOT_INO, false);
}

/* 0 if the filesystem opened and closed (the close's result). */
static int run_fs(bool writable)
{
	struct rd_fs_opts o = { .store = { .read_only = !writable, .no_direct = true } };
	struct fill_ctx fc;
	static struct walk w;
	struct rd_fs *fs;
	char why[256];

	if (rd_fs_open(im.path, &o, &fs, why, sizeof(why)))
		return -1;
	w.n = w.next = 0;
	fc.w = &w;
	fc.dir = RD_ROOT_INO;
	rd_fs_readdir(fs, RD_ROOT_INO, 0, fill, &fc);
	while (w.next < w.n) {
		unsigned i = w.next++;

		visit(fs, &w, w.dirs[i], w.names[i]);
	}
	if (writable)
		change(fs);
	return rd_fs_close(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rd_open_opts oo = { .read_only = true, .no_direct = true };
	struct rd_store *s;
	char why[256];
	int ret;

	fz_accepted = false;
	if (fz_image_load(&im, data, len))
		return 0;
	if (im.flags & (JR_WRITE | JR_FS)) {
		if (im.flags & JR_FS) {
			if (run_fs(im.flags & JR_WRITE))
				return 0;
		} else {
			oo.read_only = false;
			if (rd_store_open(im.path, &oo, &s, why, sizeof(why)))
				return 0;
			if (rd_store_close(s))
				return 0;
			oo.read_only = true;
		}
		/* What the engine closed without an error opens again. */
		ret = rd_store_open(im.path, &oo, &s, why, sizeof(why));
		if (ret)
			fprintf(stderr, "reopen after a clean close: %s: %s\n", rd_strerror(ret), why);
		fz_assert(!ret);
	} else if (rd_store_open(im.path, &oo, &s, why, sizeof(why))) {
		return 0;
	}
	ret = read_trees(s);
	rd_store_close(s);
	fz_accepted = !ret;
	return 0;
}

/* No journal entry is valid any more: an image that needs replay cannot open. */
bool fz_damage(uint8_t *buf, size_t n)
{
	return fz_damage_magics(buf, n, FZ_DAMAGE_JOURNAL) > 0;
}
