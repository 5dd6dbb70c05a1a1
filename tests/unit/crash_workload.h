/*
 * crash_workload.h - a random filesystem workload with a model of what must survive a
 * power cut, shared by the write-order and power-cut tests.
 *
 * The workload runs through the engine's production paths: file data goes through the dio
 * engine into the filesystem's sink (rd_fs_dio_pwrite, as every FUSE write and ioctl
 * does), with every strategy, chunk sizes that cut files unaligned, and O_DSYNC now and
 * then; then truncates, fallocate (preallocate, punch, zero), xattrs, creates, unlinks,
 * renames, fsync, fdatasync, directory fsync and sync.
 *
 * The model keeps per file: its current bytes; its durable point (the bytes and size at
 * its last fsync, fdatasync or sync, plus ranges made durable by O_DSYNC writes); which
 * bytes changed since; and the changes since (writes and zeroings). After a cut and replay:
 *  - a byte that did not change since the durable point must hold its durable value
 *    (an acknowledged byte lost is a failure);
 *  - a byte that changed may hold its durable value, a value one of the changes since
 *    wrote, or zero where a change zeroed it or the file grew over it; anything else is
 *    data that was never written there (a failure: stale or torn data exposed);
 *  - a file whose size did not change since its durable point has that size;
 *  - a name made durable (fsync of the file or the directory, sync) and not changed since
 *    names the same inode; durable xattrs unchanged since hold their values;
 *  - every file reads back whole without an error (a checksum failure is a failure).
 * Checks count failures instead of stopping, so a test can run its negative control.
 */
#ifndef RD_TEST_CRASH_WORKLOAD_H
#define RD_TEST_CRASH_WORKLOAD_H

#include <linux/falloc.h>

#include "data_util.h"
#include "refdio/dio.h"
#include "refdio/dio_fs.h"

#define CW_NF		5		/* file slots */
#define CW_MAXSZ	(320u * 1024)	/* largest file */
#define CW_NX		3		/* xattr names per file */
#define CW_HIST		128		/* changes remembered since a file's durable point */

struct cw_change {
	uint64_t off, len;
	uint64_t seed;			/* the pattern written; 0: zeroes */
};

struct cw_xattr {
	bool present, dur_present, dirty;
	uint32_t len, dur_len;
	uint64_t seed, dur_seed;
};

struct cw_file {
	bool exists;
	char name[16];
	uint64_t ino;
	bool ino_durable;		/* the inode exists after any cut */
	bool name_durable;		/* name -> ino survives any cut */
	bool renamed;			/* since created: fsync of the file alone does not
					 * make the new name durable */
	uint8_t *cur;			/* CW_MAXSZ bytes, zero past size */
	uint64_t size;
	uint8_t *dur;			/* at the durable point */
	uint64_t dur_size;
	uint8_t *dirty;			/* per byte: changed since the durable point */
	bool size_dirty;
	struct cw_change hist[CW_HIST];
	unsigned nhist;
	bool hist_lost;			/* more changes than remembered: skip dirty bytes */
	struct cw_xattr xa[CW_NX];
};

struct cw {
	struct rd_fs *fs;
	struct rd_dio *dio;
	uint64_t rng;
	uint64_t next_seed;		/* pattern seeds, never 0 */
	unsigned next_name;
	struct cw_file f[CW_NF];
	/* Set by the caller: stop at the first failed operation (a cut) instead of failing. */
	bool (*cut)(void *priv);
	void *cut_priv;
	bool stopped;			/* an operation failed after the cut */
	uint64_t ops;
	uint64_t gc_runs, gc_bytes;	/* cw_gc calls that succeeded, bytes they moved */
	bool verbose;
};

static inline uint64_t cw_rand(struct cw *w, uint64_t n)
{
	return n ? test_rand(&w->rng) % n : 0;
}

static inline void cw_init(struct cw *w, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->rng = seed * 0x9e3779b97f4a7c15ull | 1;
	w->next_seed = 1;
	w->verbose = getenv("RD_CW_VERBOSE") != NULL;
	for (unsigned i = 0; i < CW_NF; i++) {
		w->f[i].cur = calloc(1, CW_MAXSZ);
		w->f[i].dur = calloc(1, CW_MAXSZ);
		w->f[i].dirty = calloc(1, CW_MAXSZ);
		CHECK(w->f[i].cur && w->f[i].dur && w->f[i].dirty);
	}
}

static inline void cw_free(struct cw *w)
{
	for (unsigned i = 0; i < CW_NF; i++) {
		free(w->f[i].cur);
		free(w->f[i].dur);
		free(w->f[i].dirty);
	}
}

/* An operation's result: true to go on. A failure after the cut stops the workload; any
 * other failure is a bug. */
static inline bool cw_ok(struct cw *w, long res, const char *what)
{
	if (res >= 0)
		return true;
	if (w->cut && w->cut(w->cut_priv)) {
		w->stopped = true;
		return false;
	}
	fprintf(stderr, "crash workload: %s failed: %ld (%s)\n", what, res, rd_strerror((int)res));
	exit(1);
}

/* ---- the model ---------------------------------------------------------------------- */

/*
 * Before an operation that may change [off, off + len) (to pattern seed, or to zeroes):
 * from now on, after a cut, those bytes may hold either. Recorded before the operation
 * runs, since a cut part-way may leave any part of it.
 */
static inline void cw_change(struct cw_file *f, uint64_t off, uint64_t len, uint64_t seed)
{
	memset(f->dirty + off, 1, len);
	if (f->nhist == CW_HIST) {
		f->hist_lost = true;
		return;
	}
	f->hist[f->nhist++] = (struct cw_change){ off, len, seed };
}

/* Everything about f as it is now is durable. */
static inline void cw_durable(struct cw_file *f, bool name)
{
	memcpy(f->dur, f->cur, CW_MAXSZ);
	f->dur_size = f->size;
	memset(f->dirty, 0, CW_MAXSZ);
	f->size_dirty = false;
	f->nhist = 0;
	f->hist_lost = false;
	f->ino_durable = true;
	if (name)
		f->name_durable = true;
	for (unsigned x = 0; x < CW_NX; x++) {
		f->xa[x].dur_present = f->xa[x].present;
		f->xa[x].dur_len = f->xa[x].len;
		f->xa[x].dur_seed = f->xa[x].seed;
		f->xa[x].dirty = false;
	}
}

static inline void cw_set_bytes(struct cw_file *f, uint64_t off, uint64_t len, uint64_t seed)
{
	for (uint64_t i = 0; i < len; i++) {
		f->cur[off + i] = seed ? du_byte(seed, off + i) : 0;
		f->dirty[off + i] = 1;
	}
}

/* The size changed (the bytes concerned were marked as changes before the operation). */
static inline void cw_resize(struct cw_file *f, uint64_t size)
{
	if (size < f->size)
		memset(f->cur + size, 0, f->size - size);
	f->size = size;
}

/* ---- operations --------------------------------------------------------------------- */

static inline struct cw_file *cw_pick(struct cw *w, bool existing)
{
	unsigned start = (unsigned)cw_rand(w, CW_NF);

	for (unsigned k = 0; k < CW_NF; k++) {
		struct cw_file *f = &w->f[(start + k) % CW_NF];

		if (f->exists == existing)
			return f;
	}
	return NULL;
}

static inline void cw_create(struct cw *w, struct cw_file *f)
{
	struct rd_fs_cred cr = { 0, 0 };
	struct rd_stat st;

	snprintf(f->name, sizeof(f->name), "n%u", w->next_name++);
	if (w->verbose)
		fprintf(stderr, "  create %s\n", f->name);
	if (!cw_ok(w, rd_fs_mknod(w->fs, RD_ROOT_INO, f->name, S_IFREG | 0644, 0, &cr, &st),
		   "create"))
		return;
	f->exists = true;
	f->ino = st.ino;
	f->ino_durable = f->name_durable = f->renamed = false;
	memset(f->cur, 0, CW_MAXSZ);
	f->size = 0;
	/* The durable point of a new file: empty, everything yet to come is a change. */
	cw_durable(f, false);
	f->ino_durable = false;
	f->size_dirty = true;
	memset(f->xa, 0, sizeof(f->xa));
}

static inline void cw_write(struct cw *w, struct cw_file *f)
{
	static const size_t chunks[] = { 64 * 1024, 256 * 1024, 1024 * 1024, 12 * 1024 };
	uint64_t off = cw_rand(w, CW_MAXSZ - 1), len = 1 + cw_rand(w, 96 * 1024);
	struct rd_dio_args a = { 0 };
	struct rd_dio_source *src;
	struct rd_dio_mem *m;
	uint64_t seed = w->next_seed++;
	long res;

	if (cw_rand(w, 3) == 0) {	/* block-aligned */
		off &= ~4095ull;
		len = (len + 4095) & ~4095ull;
	}
	if (off + len > CW_MAXSZ)
		len = CW_MAXSZ - off;
	a.off = off;
	a.strategy = (enum rd_dio_strategy)cw_rand(w, RD_DIO_NR_STRATEGIES);
	a.issue = (enum rd_dio_issue)cw_rand(w, RD_DIO_NR_ISSUE);
	a.window = 1 + (unsigned)cw_rand(w, 4);
	a.chunk = chunks[cw_rand(w, 4)];
	a.dsync = cw_rand(w, 6) == 0;
	CHECK_OK(rd_dio_mem_alloc(len, &m));
	du_fill(rd_dio_mem_base(m), seed, off, len);
	CHECK_OK(rd_dio_source_mem(m, 0, len, &src));
	/* Remembered before it runs: after a cut, any part of it may be there. */
	cw_change(f, off, len, seed);
	if (off + len > f->size) {
		f->size_dirty = true;
		cw_change(f, f->size, off + len - f->size, 0);
	}
	res = rd_fs_dio_pwrite(w->fs, w->dio, f->ino, src, &a);
	rd_dio_mem_exit(m);
	if (w->verbose)
		fprintf(stderr, "  write %s [%llu, +%llu) %s%s: %ld\n", f->name,
			(unsigned long long)off, (unsigned long long)len,
			rd_dio_strategy_name(a.strategy), a.dsync ? " dsync" : "", res);
	if (!cw_ok(w, res, "write"))
		return;
	if ((uint64_t)res != len) {
		/* Short only after the cut (no ENOSPC here: the image is large enough). */
		CHECK(w->cut && w->cut(w->cut_priv));
		w->stopped = true;
		return;
	}
	if (off + len > f->size)
		cw_resize(f, off + len);
	cw_set_bytes(f, off, len, seed);
	if (a.dsync) {
		/* O_DSYNC: these bytes, and the size that holds them, are durable. */
		for (uint64_t i = off; i < off + len; i++) {
			f->dur[i] = f->cur[i];
			f->dirty[i] = 0;
		}
		if (f->dur_size < off) {
			/* Between the old durable size and off: a hole unless a change since. */
			memset(f->dur + f->dur_size, 0, off - f->dur_size);
			memset(f->dirty + f->dur_size, 1, off - f->dur_size);
		}
		if (f->dur_size < off + len)
			f->dur_size = off + len;
		f->ino_durable = true;
	}
}

static inline void cw_truncate(struct cw *w, struct cw_file *f)
{
	uint64_t size = cw_rand(w, 4) ? cw_rand(w, CW_MAXSZ) : cw_rand(w, 8192);
	struct rd_setattr sa = { .valid = RD_SET_SIZE, .size = size };

	if (size != f->size) {
		f->size_dirty = true;
		if (size < f->size)
			cw_change(f, size, f->size - size, 0);
		else
			cw_change(f, f->size, size - f->size, 0);
	}
	if (w->verbose)
		fprintf(stderr, "  truncate %s %llu -> %llu\n", f->name,
			(unsigned long long)f->size, (unsigned long long)size);
	if (!cw_ok(w, rd_fs_setattr(w->fs, f->ino, &sa, NULL), "truncate"))
		return;
	cw_resize(f, size);
}

static inline void cw_fallocate(struct cw *w, struct cw_file *f)
{
	static const int modes[] = {
		0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
	};
	int mode = modes[cw_rand(w, 5)];
	uint64_t off = cw_rand(w, CW_MAXSZ - 1), len = 1 + cw_rand(w, 64 * 1024);
	uint64_t end;

	if (off + len > CW_MAXSZ)
		len = CW_MAXSZ - off;
	end = off + len;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		uint64_t zend = end < f->size || !(mode & FALLOC_FL_KEEP_SIZE) ? end : f->size;

		if (zend > off)
			cw_change(f, off, zend - off, 0);
	}
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f->size) {
		f->size_dirty = true;
		cw_change(f, f->size, end - f->size, 0);
	}
	if (w->verbose)
		fprintf(stderr, "  fallocate %s mode %#x [%llu, +%llu) size %llu\n", f->name, mode,
			(unsigned long long)off, (unsigned long long)len,
			(unsigned long long)f->size);
	if (!cw_ok(w, rd_fs_fallocate(w->fs, f->ino, mode, off, len), "fallocate"))
		return;
	if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f->size)
		cw_resize(f, end);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		uint64_t zend = end < f->size ? end : f->size;

		if (zend > off)
			cw_set_bytes(f, off, zend - off, 0);
	}
}

static inline void cw_xattr(struct cw *w, struct cw_file *f)
{
	unsigned x = (unsigned)cw_rand(w, CW_NX);
	struct cw_xattr *xa = &f->xa[x];
	char name[16];

	snprintf(name, sizeof(name), "user.x%u", x);
	xa->dirty = true;
	if (xa->present && cw_rand(w, 3) == 0) {
		if (!cw_ok(w, rd_fs_removexattr(w->fs, f->ino, name), "removexattr"))
			return;
		xa->present = false;
	} else {
		uint32_t len = 1 + (uint32_t)cw_rand(w, 3000);
		uint64_t seed = w->next_seed++;
		uint8_t buf[3000];

		du_fill(buf, seed, 0, len);
		if (!cw_ok(w, rd_fs_setxattr(w->fs, f->ino, name, buf, len, 0), "setxattr"))
			return;
		xa->present = true;
		xa->len = len;
		xa->seed = seed;
	}
}

static inline void cw_unlink(struct cw *w, struct cw_file *f)
{
	if (w->verbose)
		fprintf(stderr, "  unlink %s\n", f->name);
	/* From now on a cut may leave the file or not. */
	f->name_durable = f->ino_durable = false;
	if (!cw_ok(w, rd_fs_unlink(w->fs, RD_ROOT_INO, f->name), "unlink"))
		return;
	f->exists = false;	/* whether it is still there after a cut is not checked */
}

static inline void cw_rename(struct cw *w, struct cw_file *f)
{
	struct cw_file *g = cw_pick(w, cw_rand(w, 2));
	char name[16];

	if (!g || g == f)
		return;
	if (!g->exists)
		snprintf(name, sizeof(name), "n%u", w->next_name++);
	else
		snprintf(name, sizeof(name), "%s", g->name);
	if (w->verbose)
		fprintf(stderr, "  rename %s -> %s\n", f->name, name);
	/* From now on a cut may leave either name, and g's inode or not. */
	f->name_durable = false;
	f->renamed = true;
	if (g->exists)
		g->name_durable = g->ino_durable = false;
	if (!cw_ok(w, rd_fs_rename(w->fs, RD_ROOT_INO, f->name, RD_ROOT_INO, name, 0), "rename"))
		return;
	/* g's inode (if any) is replaced: forget it. f's inode moves to the new name, which
	 * is not durable until the directory is synced. */
	g->exists = false;
	snprintf(f->name, sizeof(f->name), "%s", name);
}

static inline void cw_fsync(struct cw *w, struct cw_file *f)
{
	bool datasync = cw_rand(w, 2);

	if (w->verbose)
		fprintf(stderr, "  %s %s\n", datasync ? "fdatasync" : "fsync", f->name);
	if (!cw_ok(w, rd_fs_fsync(w->fs, f->ino, datasync), datasync ? "fdatasync" : "fsync"))
		return;
	/* fdatasync too: the data and the size that reaches it (refdio flushes the journal
	 * up to the inode's last change either way; the xattrs go with it). A new file's name
	 * goes with its fsync (its creation was committed with the inode); a rename's does
	 * not (POSIX asks for an fsync of the directory). */
	cw_durable(f, f->name_durable || !f->renamed);
}

static inline void cw_fsync_dir(struct cw *w)
{
	if (!cw_ok(w, rd_fs_fsync(w->fs, RD_ROOT_INO, false), "fsync dir"))
		return;
	for (unsigned i = 0; i < CW_NF; i++) {
		if (w->f[i].exists) {
			w->f[i].name_durable = true;
			w->f[i].ino_durable = true;
		}
	}
}

/* Everything the model holds is durable (after a sync, or a clean close). */
static inline void cw_sync_done(struct cw *w)
{
	for (unsigned i = 0; i < CW_NF; i++) {
		if (w->f[i].exists)
			cw_durable(&w->f[i], true);
	}
}

static inline void cw_sync(struct cw *w)
{
	if (w->verbose)
		fprintf(stderr, "  sync\n");
	if (cw_ok(w, rd_store_flush(rd_fs_store(w->fs), 0), "sync"))
		cw_sync_done(w);
}

/* Copying GC now (rd_fs_gc, in this thread): moves live extents, changes no content. The
 * bytes it moved are counted in w->gc_bytes. */
static inline void cw_gc(struct cw *w)
{
	struct rd_gc_report r;

	if (w->verbose)
		fprintf(stderr, "  gc\n");
	if (cw_ok(w, rd_fs_gc(w->fs, &r), "gc")) {
		w->gc_runs++;
		w->gc_bytes += r.bytes_moved;
	}
}

/* One random operation. */
static inline void cw_step(struct cw *w)
{
	unsigned r = (unsigned)cw_rand(w, 100);
	struct cw_file *f = cw_pick(w, true);

	w->ops++;
	if (!f || r < 6) {
		struct cw_file *g = cw_pick(w, false);

		if (g)
			cw_create(w, g);
		return;
	}
	if (r < 48)
		cw_write(w, f);
	else if (r < 56)
		cw_truncate(w, f);
	else if (r < 64)
		cw_fallocate(w, f);
	else if (r < 72)
		cw_xattr(w, f);
	else if (r < 75)
		cw_unlink(w, f);
	else if (r < 80)
		cw_rename(w, f);
	else if (r < 93)
		cw_fsync(w, f);
	else if (r < 96)
		cw_fsync_dir(w);
	else if (r < 98)
		cw_sync(w);
	else
		cw_gc(w);
}

/* Opens the dio engine the workload writes through. */
static inline void cw_start(struct cw *w, struct rd_fs *fs)
{
	struct rd_dio_opts o = { .workers = 2, .chunk = 256 * 1024, .window = 4 };

	w->fs = fs;
	CHECK_OK(rd_dio_create(&o, &w->dio));
}

static inline void cw_stop_dio(struct cw *w)
{
	rd_dio_destroy(w->dio);
	w->dio = NULL;
}

/* Runs n operations, or until one fails after the cut. */
static inline void cw_run(struct cw *w, unsigned n)
{
	for (unsigned i = 0; i < n && !w->stopped; i++)
		cw_step(w);
}

/* ---- checking after a cut ----------------------------------------------------------- */

static inline bool cw_legal(const struct cw_file *f, uint64_t pos, uint8_t got)
{
	if (!f->dirty[pos])
		return pos < f->dur_size ? got == f->dur[pos] : got == 0;
	if (pos < f->dur_size ? got == f->dur[pos] : got == 0)
		return true;
	if (f->hist_lost)
		return true;
	for (unsigned h = 0; h < f->nhist; h++) {
		const struct cw_change *c = &f->hist[h];

		if (pos >= c->off && pos < c->off + c->len &&
		    got == (c->seed ? du_byte(c->seed, pos) : 0))
			return true;
	}
	return false;
}

/* Checks fs (reopened after a cut) against the model; returns the number of failures,
 * printing the first few. */
static inline unsigned cw_check(const struct cw *w, struct rd_fs *fs, const char *tag)
{
	uint8_t *buf = malloc(CW_MAXSZ + 4096);
	unsigned fails = 0;

	CHECK(buf);
#define CW_FAIL(...) do { if (fails++ < 4) { fprintf(stderr, "%s: ", tag);		\
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
	for (unsigned i = 0; i < CW_NF; i++) {
		const struct cw_file *f = &w->f[i];
		struct rd_stat st;
		ssize_t n;
		int ret;

		if (!f->exists)
			continue;
		if (f->name_durable) {
			ret = rd_fs_lookup(fs, RD_ROOT_INO, f->name, &st);
			if (ret || st.ino != f->ino)
				CW_FAIL("durable name %s: %s (ino %llu, want %llu)", f->name,
					ret ? rd_strerror(ret) : "other inode",
					(unsigned long long)(ret ? 0 : st.ino),
					(unsigned long long)f->ino);
		}
		ret = rd_fs_getattr(fs, f->ino, &st);
		if (ret) {
			if (f->ino_durable)
				CW_FAIL("durable inode %llu (%s): %s", (unsigned long long)f->ino,
					f->name, rd_strerror(ret));
			continue;
		}
		if (!f->size_dirty && st.size != f->dur_size)
			CW_FAIL("%s: size %llu, durable size %llu", f->name,
				(unsigned long long)st.size, (unsigned long long)f->dur_size);
		if (st.size > CW_MAXSZ) {
			CW_FAIL("%s: size %llu beyond anything written", f->name,
				(unsigned long long)st.size);
			continue;
		}
		n = rd_fs_read(fs, f->ino, buf, CW_MAXSZ + 4096, 0);
		if (n < 0 || (uint64_t)n != st.size) {
			CW_FAIL("%s: read: %zd (size %llu)%s", f->name, n,
				(unsigned long long)st.size, n < 0 ? " (checksum failure?)" : "");
			continue;
		}
		for (uint64_t p = 0; p < st.size; p++) {
			if (!cw_legal(f, p, buf[p])) {
				CW_FAIL("%s: byte %llu is %#x: durable %#x (dirty %d, durable size "
					"%llu)", f->name, (unsigned long long)p, buf[p],
					p < f->dur_size ? f->dur[p] : 0, f->dirty[p],
					(unsigned long long)f->dur_size);
				break;
			}
		}
		for (unsigned x = 0; x < CW_NX; x++) {
			const struct cw_xattr *xa = &f->xa[x];
			uint8_t v[3000], want[3000];
			char name[16];
			ssize_t len;

			if (xa->dirty)
				continue;
			snprintf(name, sizeof(name), "user.x%u", x);
			len = rd_fs_getxattr(fs, f->ino, name, v, sizeof(v));
			if (!xa->dur_present) {
				if (len != -ENODATA)
					CW_FAIL("%s: xattr %s: %zd, durably removed", f->name, name, len);
				continue;
			}
			du_fill(want, xa->dur_seed, 0, xa->dur_len);
			if (len != (ssize_t)xa->dur_len || memcmp(v, want, xa->dur_len))
				CW_FAIL("%s: xattr %s: %zd bytes, not its durable value", f->name,
					name, len);
		}
	}
#undef CW_FAIL
	free(buf);
	return fails;
}

#endif
