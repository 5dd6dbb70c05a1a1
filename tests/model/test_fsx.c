/*
 * test_fsx.c - model-based random test of file data (after fsx): random operations on
 * several files, every result compared byte for byte with an in-memory model.
 *
 * Operations: writes of 1 byte to 8 MiB at random (mostly unaligned) offsets, some
 * appending, some O_DSYNC, some through the asynchronous calls; reads; truncates up and
 * down; every fallocate mode; SEEK_DATA/SEEK_HOLE; fsync; renames (to a new name, over
 * another file, exchanges); unlinks (the file is replaced by a new empty one); xattrs
 * (set with every flag, get, list, remove); clean close and reopen; and simulated crashes
 * (rd_fs_crash).
 *
 * Namespace and xattr operations are made durable right away (the test flushes the
 * journal before and after each): their own crash behaviour is test_ns_crash's subject;
 * here they move files and their data around under the data checks.
 *
 * The model keeps, per file, its current contents, its contents at the last fsync (the
 * base) and the log of changes since. After a clean reopen every file must match exactly.
 * After a crash, a file with no change since its last fsync must match exactly; any other
 * file must hold its base or the state after one of the logged changes, or be part-way
 * through one of them (each byte from the state before or after that change: operations
 * such as multi-transaction truncates and 8 MiB writes commit in steps). The model then
 * takes what is on disk. Before every reopen the filesystem check (rd_fsck_fs, data
 * checksums included) must find no error. A full device is legal: a write reports the bytes it wrote
 * (applied to the model as reported), and the test frees space by truncating.
 *
 * Environment: RD_FSX_OPS (default 100000), RD_FSX_IMAGE_MB (default 40: small enough
 * that the device fills now and then), RD_FSX_NODE_KB (default 64), RD_TEST_SEED,
 * RD_TEST_DIR (default /tmp),
 * RD_FSX_VERBOSE=1 prints every operation, RD_FSX_DEBUG=1 the part-way states found,
 * RD_FSX_CHECK_EVERY=1 verifies every file and the accounting after every operation (slow).
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/data_util.h"
#include "../unit/fsck_util.h"

/* No mover thread: it holds a file's inode while it moves its extents, which would delay
 * the deletion of an unlinked file past the unlink this test checks it at. (GC under
 * random workloads: test_powercut's cw_gc, test_gc.) */
static const struct rd_fs_opts fsx_opts = { .no_gc = true };

#define NF		4
#define MAXSZ		(12ull << 20)
#define LOG_MAX_OPS	64
#define LOG_MAX_DATA	(32ull << 20)
#define BS		4096ull

enum lop { L_WRITE, L_TRUNC, L_ZERO, L_GROW };

/* One logged change, in the terms the model applies it. */
struct lentry {
	enum lop op;
	uint64_t off, len;	/* WRITE: bytes at off; ZERO: [off, off + len) */
	uint64_t size;		/* TRUNC: new size; GROW: at least this size */
	bool extend;		/* ZERO: may grow the file */
	uint8_t *data;		/* WRITE */
};

struct state {
	uint8_t *b;		/* MAXSZ bytes, zero past size */
	uint64_t size;
};

#define NXA		6	/* xattr names per file */
#define XV_MAX		3000	/* largest xattr value used */

struct xattr_model {
	bool present;
	uint32_t len;
	uint8_t val[XV_MAX];
};

struct file {
	char name[32];
	uint64_t ino;
	struct xattr_model xa[NXA];
	struct state cur, base;
	struct lentry log[LOG_MAX_OPS];
	unsigned nlog;
	uint64_t logdata;
	bool unlogged;		/* cur changed outside the log (taken from the disk) */
};

static struct file F[NF];
static struct rd_fs *fs;
static char path[128];
static uint64_t rs;
static bool verbose;
static struct state work, prev, disk;	/* scratch for crash checks */
static uint8_t *rbuf, *wbuf;

static struct rd_fs_stats total;	/* engine counters summed over every open */

static struct {
	uint64_t ops, writes, reads, truncs, fallocs, fsyncs, seeks, crashes, reopens;
	uint64_t enospc, short_writes, bytes_written, partial_states, async;
	uint64_t renames, exchanges, replaces, unlinks, xattrs;
} cnt;
static unsigned name_gen;

static uint64_t rnd(uint64_t n)
{
	return n ? test_rand(&rs) % n : 0;
}

/* ---- the model ------------------------------------------------------------------- */

static void st_alloc(struct state *s)
{
	s->b = calloc(1, MAXSZ);
	CHECK(s->b);
	s->size = 0;
}

static void st_copy(struct state *d, const struct state *s)
{
	uint64_t n = d->size > s->size ? d->size : s->size;

	memcpy(d->b, s->b, n);
	d->size = s->size;
}

static void st_set_size(struct state *s, uint64_t size)
{
	if (size < s->size)
		memset(s->b + size, 0, s->size - size);
	s->size = size;
}

static void st_apply(struct state *s, const struct lentry *e)
{
	uint64_t end;

	switch (e->op) {
	case L_WRITE:
		memcpy(s->b + e->off, e->data, e->len);
		if (e->off + e->len > s->size)
			s->size = e->off + e->len;
		break;
	case L_TRUNC:
		st_set_size(s, e->size);
		break;
	case L_ZERO:
		end = e->off + e->len;
		if (!e->extend && end > s->size)
			end = s->size;
		if (end > e->off)
			memset(s->b + e->off, 0, end - e->off);
		if (e->extend && e->off + e->len > s->size)
			s->size = e->off + e->len;
		break;
	case L_GROW:
		if (e->size > s->size)
			s->size = e->size;
		break;
	}
}

static void log_clear(struct file *f)
{
	for (unsigned i = 0; i < f->nlog; i++)
		free(f->log[i].data);
	f->nlog = 0;
	f->logdata = 0;
}

/* The file's changes up to now are durable: the base moves up. (With an empty log and
 * nothing taken from the disk, base and cur are equal already.) */
static void mark_synced(struct file *f)
{
	if (f->nlog || f->unlogged)
		st_copy(&f->base, &f->cur);
	f->unlogged = false;
	log_clear(f);
}

static void fsync_file(struct file *f)
{
	CHECK_OK(rd_fs_fsync(fs, f->ino, rnd(2)));
	mark_synced(f);
	cnt.fsyncs++;
}

/* Applies e to the current state and logs it (taking e->data). */
static void record(struct file *f, struct lentry *e)
{
	st_apply(&f->cur, e);
	f->log[f->nlog++] = *e;
	f->logdata += e->op == L_WRITE ? e->len : 0;
	if (f->nlog == LOG_MAX_OPS || f->logdata > LOG_MAX_DATA)
		fsync_file(f);		/* keeps the log (and the crash check) bounded */
}

/* ---- checks against the disk ----------------------------------------------------- */

static void read_disk(struct file *f, struct state *s)
{
	ssize_t n;

	s->size = du_stat(fs, f->ino).size;
	CHECK(s->size <= MAXSZ);
	n = rd_fs_read(fs, f->ino, s->b, MAXSZ, 0);
	CHECK_EQ(n, s->size);
	memset(s->b + s->size, 0, MAXSZ - s->size);
}

static bool st_equal(const struct state *a, const struct state *b)
{
	uint64_t n = a->size > b->size ? a->size : b->size;

	return a->size == b->size && !memcmp(a->b, b->b, n);
}

static void die_diff(const struct file *f, const struct state *want, const struct state *got,
		     const char *what)
{
	uint64_t n = want->size > got->size ? want->size : got->size, i;

	for (i = 0; i < n && want->b[i] == got->b[i]; i++)
		;
	fprintf(stderr, "fsx: %s: file %s (ino %llu): size %llu want %llu; first difference "
		"at byte %llu (%02x want %02x) after %llu ops\n", what, f->name,
		(unsigned long long)f->ino, (unsigned long long)got->size,
		(unsigned long long)want->size, (unsigned long long)i,
		i < MAXSZ ? got->b[i] : 0, i < MAXSZ ? want->b[i] : 0,
		(unsigned long long)cnt.ops);
	exit(1);
}

static void verify_file(struct file *f, const char *what)
{
	read_disk(f, &disk);
	if (!st_equal(&f->cur, &disk))
		die_diff(f, &f->cur, &disk, what);
}

/* Whether got is part-way from a to b: every byte from one of them, size between. */
static bool st_between(const struct state *a, const struct state *b, const struct state *got)
{
	uint64_t lo = a->size < b->size ? a->size : b->size;
	uint64_t hi = a->size > b->size ? a->size : b->size;

	if (got->size < lo || got->size > hi)
		return false;
	for (uint64_t i = 0; i < hi; i++)
		if (got->b[i] != a->b[i] && got->b[i] != b->b[i])
			return false;
	return true;
}

/* After a crash: the disk must hold a state the file had since its last fsync: exactly
 * one of the states after its logged changes, else part-way through one of them. */
static void crash_check(struct file *f)
{
	bool found = false;
	unsigned i;

	read_disk(f, &disk);
	st_copy(&work, &f->base);
	found = st_equal(&work, &disk);
	for (i = 0; i < f->nlog && !found; i++) {
		st_apply(&work, &f->log[i]);
		found = st_equal(&work, &disk);
	}
	st_copy(&work, &f->base);
	for (i = 0; i < f->nlog && !found; i++) {
		st_copy(&prev, &work);
		st_apply(&work, &f->log[i]);
		found = st_between(&prev, &work, &disk);
		if (found) {
			cnt.partial_states++;
			if (verbose || getenv("RD_FSX_DEBUG"))
				printf("part-way through logged change %u of %u: op %d off %llu "
				       "len %llu size %llu\n", i, f->nlog, f->log[i].op,
				       (unsigned long long)f->log[i].off,
				       (unsigned long long)f->log[i].len,
				       (unsigned long long)f->log[i].size);
		}
	}
	if (!found) {
		if (!f->nlog)
			die_diff(f, &f->base, &disk, "fsynced state lost in a crash");
		die_diff(f, &f->cur, &disk, "state after a crash is none the file had");
	}
	st_copy(&f->cur, &disk);
	f->unlogged = true;
	mark_synced(f);
}

/* After an operation that failed part-way (ENOSPC): the disk must be between the state
 * before and the state it would have reached; the model takes the disk's and syncs. */
static void resync(struct file *f, const struct lentry *e)
{
	st_copy(&prev, &f->cur);
	st_copy(&work, &f->cur);
	st_apply(&work, e);
	read_disk(f, &disk);
	if (!st_between(&prev, &work, &disk))
		die_diff(f, &work, &disk, "failed operation left a state between none");
	st_copy(&f->cur, &disk);
	f->unlogged = true;
	fsync_file(f);
}

/* ---- operations ------------------------------------------------------------------ */

static uint64_t pick_len(void)
{
	uint64_t r = rnd(1000);

	if (r < 600)
		return 1 + rnd(512);
	if (r < 850)
		return 1 + rnd(16 << 10);
	if (r < 970)
		return 1 + rnd(256 << 10);
	if (r < 998)
		return 1 + rnd(2 << 20);
	return 1 + rnd(8 << 20);
}

static uint64_t pick_off(struct file *f, uint64_t len)
{
	uint64_t off, r = rnd(10);

	if (r < 2)	/* around the end of the file */
		off = f->cur.size > 5000 ? f->cur.size - 5000 + rnd(10000) : rnd(10000);
	else
		off = rnd(MAXSZ);
	if (r == 9)	/* block aligned */
		off &= ~(BS - 1);
	if (off + len > MAXSZ)
		off = MAXSZ - len;
	return off;
}

static void free_space(void);

struct async_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	ssize_t res;
};

static void async_done(void *priv, ssize_t res)
{
	struct async_wait *w = priv;

	pthread_mutex_lock(&w->lock);
	w->res = res;
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static ssize_t async_result(struct async_wait *w)
{
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	return w->res;
}

static void op_write(struct file *f)
{
	uint64_t len = pick_len(), off = pick_off(f, len), woff;
	unsigned flags = 0, r = (unsigned)rnd(100);
	struct lentry e = { .op = L_WRITE };
	bool async = false;
	ssize_t n;

	if (r < 5 && f->cur.size + len <= MAXSZ) {
		off = f->cur.size;	/* an append (the kernel gives FUSE its offset) */
	} else if (r < 8) {
		flags = RD_WRITE_DSYNC;
	} else if (r < 14) {
		async = true;
	}
	du_fill(wbuf, rs, off, len);
	woff = off;
	if (async) {
		struct async_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

		rd_fs_write_async(fs, f->ino, wbuf, len, woff, flags, async_done, &w);
		n = async_result(&w);
		cnt.async++;
	} else {
		n = rd_fs_write(fs, f->ino, wbuf, len, woff, flags);
	}
	if (verbose)
		printf("%llu write %s %llu+%llu f%u -> %zd\n", (unsigned long long)cnt.ops,
		       f->name, (unsigned long long)off, (unsigned long long)len, flags, n);
	cnt.writes++;
	if (n == -ENOSPC) {
		cnt.enospc++;
		free_space();
		return;
	}
	CHECK(n > 0 && (uint64_t)n <= len);
	if ((uint64_t)n < len) {
		cnt.short_writes++;
		cnt.enospc++;
	}
	cnt.bytes_written += (uint64_t)n;
	e.off = off;
	e.len = (uint64_t)n;
	e.data = malloc((size_t)n);
	CHECK(e.data);
	memcpy(e.data, wbuf, (size_t)n);
	record(f, &e);
	if (flags & RD_WRITE_DSYNC)
		mark_synced(f);
	if ((uint64_t)n < len)
		free_space();
}

static void op_read(struct file *f)
{
	uint64_t len = pick_len(), off = rnd(10) < 8 ? pick_off(f, len) : rnd(MAXSZ + 10000);
	uint64_t want = off >= f->cur.size ? 0 : f->cur.size - off;
	ssize_t n;

	if (want > len)
		want = len;
	if (rnd(20) == 0) {
		struct async_wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

		rd_fs_read_async(fs, f->ino, rbuf, len, off, async_done, &w);
		n = async_result(&w);
		cnt.async++;
	} else {
		n = rd_fs_read(fs, f->ino, rbuf, len, off);
	}
	cnt.reads++;
	if (n != (ssize_t)want || memcmp(rbuf, f->cur.b + off, want)) {
		fprintf(stderr, "fsx: read %s %llu+%llu: %zd bytes, want %llu%s (op %llu)\n",
			f->name, (unsigned long long)off, (unsigned long long)len, n,
			(unsigned long long)want, n == (ssize_t)want ? ", content differs" : "",
			(unsigned long long)cnt.ops);
		exit(1);
	}
}

static void op_truncate(struct file *f, uint64_t size)
{
	struct rd_setattr sa = { .valid = RD_SET_SIZE, .size = size };
	struct lentry e = { .op = L_TRUNC, .size = size };
	int ret = rd_fs_setattr(fs, f->ino, &sa, NULL);

	if (verbose)
		printf("%llu truncate %s %llu -> %d\n", (unsigned long long)cnt.ops, f->name,
		       (unsigned long long)size, ret);
	cnt.truncs++;
	if (ret == -ENOSPC) {
		/* A shrink onto a partial block with no block free: at most cut at the block
		 * boundary above. */
		cnt.enospc++;
		resync(f, &e);
		return;
	}
	CHECK_OK(ret);
	record(f, &e);
}

static void op_fallocate(struct file *f)
{
	static const int modes[] = {
		0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
	};
	int mode = modes[rnd(5)];
	uint64_t len = 1 + (rnd(4) ? rnd(64 << 10) : rnd(2 << 20)), off = pick_off(f, len);
	struct lentry e = { .off = off, .len = len };
	int ret;

	if (mode & FALLOC_FL_PUNCH_HOLE) {
		e.op = L_ZERO;
	} else if (mode & FALLOC_FL_ZERO_RANGE) {
		e.op = L_ZERO;
		e.extend = !(mode & FALLOC_FL_KEEP_SIZE);
	} else {
		e.op = L_GROW;
		e.size = mode & FALLOC_FL_KEEP_SIZE ? 0 : off + len;
	}
	ret = rd_fs_fallocate(fs, f->ino, mode, off, len);
	if (verbose)
		printf("%llu fallocate %s %d %llu+%llu -> %d\n", (unsigned long long)cnt.ops,
		       f->name, mode, (unsigned long long)off, (unsigned long long)len, ret);
	cnt.fallocs++;
	if (ret == -ENOSPC) {
		cnt.enospc++;
		resync(f, &e);
		free_space();
		return;
	}
	CHECK_OK(ret);
	record(f, &e);
}

static void op_seek(struct file *f)
{
	uint64_t off = rnd(f->cur.size + 1000), out = 0;
	int whence = rnd(2) ? SEEK_DATA : SEEK_HOLE;
	int ret = rd_fs_lseek(fs, f->ino, off, whence, &out);

	cnt.seeks++;
	if (off >= f->cur.size) {
		CHECK_EQ(ret, -ENXIO);
		return;
	}
	if (whence == SEEK_DATA && ret == -ENXIO) {
		out = f->cur.size;	/* no data: everything from off on reads as zeros */
	} else {
		CHECK_OK(ret);
		CHECK(out >= off && out <= f->cur.size);
	}
	if (whence == SEEK_DATA) {
		/* Everything skipped is a hole: zeros. */
		for (uint64_t i = off; i < out; i++)
			CHECK_EQ(f->cur.b[i], 0);
	} else if (out < f->cur.size) {
		/* A hole starts at out: its block reads as zeros. */
		uint64_t end = (out | (BS - 1)) + 1;

		for (uint64_t i = out; i < end && i < f->cur.size; i++)
			CHECK_EQ(f->cur.b[i], 0);
	}
}

/* The device is full: truncate the biggest file well down (everything it dropped is
 * free once its buckets empty). */
static void free_space(void)
{
	struct file *big = &F[0];

	for (unsigned i = 1; i < NF; i++)
		if (F[i].cur.size > big->cur.size)
			big = &F[i];
	op_truncate(big, rnd(big->cur.size / 4 + 1));
}

/* ---- namespace and xattrs ------------------------------------------------------------ */

/* Everything so far is durable: every file's base moves up. */
static void barrier(void)
{
	CHECK_OK(rd_store_flush(rd_fs_store(fs), 0));
	for (unsigned i = 0; i < NF; i++)
		mark_synced(&F[i]);
}

static void fresh_name(char *name)
{
	snprintf(name, 32, "file-%u", name_gen++);
}

static void check_name(const struct file *f)
{
	struct rd_stat st;

	CHECK_OK(rd_fs_lookup(fs, RD_ROOT_INO, f->name, &st));
	CHECK_EQ(st.ino, f->ino);
	CHECK_EQ(st.size, f->cur.size);
}

/* A slot gets a new, empty file under a new name. */
static void new_file(struct file *f)
{
	fresh_name(f->name);
	f->ino = du_create(fs, f->name);
	st_set_size(&f->cur, 0);
	st_set_size(&f->base, 0);
	log_clear(f);
	f->unlogged = false;
	memset(f->xa, 0, sizeof(f->xa));
}

static void swap_files(struct file *a, struct file *b)
{
	struct file t = *a;

	*a = *b;
	*b = t;
}

static void op_rename(struct file *a, struct file *b)
{
	char old[32], gone[32];
	unsigned r = (unsigned)rnd(3);
	struct rd_stat st;

	if (verbose)
		printf("%llu rename %s %s r%u\n", (unsigned long long)cnt.ops, a->name, b->name, r);
	barrier();
	if (r == 0 || a == b) {
		/* To a new name. */
		memcpy(old, a->name, sizeof(old));
		fresh_name(a->name);
		CHECK_OK(rd_fs_rename(fs, RD_ROOT_INO, old, RD_ROOT_INO, a->name,
				      rnd(2) ? RD_RENAME_NOREPLACE : 0));
		CHECK_EQ(rd_fs_lookup(fs, RD_ROOT_INO, old, &st), -ENOENT);
		cnt.renames++;
	} else if (r == 1) {
		/* Exchange: the names swap, the files keep their data. */
		CHECK_OK(rd_fs_rename(fs, RD_ROOT_INO, a->name, RD_ROOT_INO, b->name,
				      RD_RENAME_EXCHANGE));
		memcpy(old, a->name, sizeof(old));
		memcpy(a->name, b->name, sizeof(old));
		memcpy(b->name, old, sizeof(old));
		check_name(b);
		cnt.exchanges++;
	} else {
		/* Over another file: b's file is unlinked (and, unreferenced, deleted with its
		 * data); a's file now has b's name; a's slot gets a new empty file. */
		CHECK_EQ(rd_fs_rename(fs, RD_ROOT_INO, a->name, RD_ROOT_INO, b->name,
				      RD_RENAME_NOREPLACE), -EEXIST);
		memcpy(gone, a->name, sizeof(gone));
		CHECK_OK(rd_fs_rename(fs, RD_ROOT_INO, a->name, RD_ROOT_INO, b->name, 0));
		CHECK_EQ(rd_fs_getattr(fs, b->ino, &st), -ENOENT);
		memcpy(a->name, b->name, sizeof(gone));
		swap_files(a, b);
		new_file(a);
		CHECK_EQ(rd_fs_lookup(fs, RD_ROOT_INO, gone, &st), -ENOENT);
		cnt.replaces++;
	}
	check_name(a);
	barrier();
}

static void op_unlink(struct file *f)
{
	struct rd_stat st;
	uint64_t ino = f->ino;

	if (verbose)
		printf("%llu unlink %s\n", (unsigned long long)cnt.ops, f->name);
	barrier();
	CHECK_OK(rd_fs_unlink(fs, RD_ROOT_INO, f->name));
	CHECK_EQ(rd_fs_lookup(fs, RD_ROOT_INO, f->name, &st), -ENOENT);
	CHECK_EQ(rd_fs_getattr(fs, ino, &st), -ENOENT);	/* gone, data and all */
	new_file(f);
	check_name(f);
	cnt.unlinks++;
	barrier();
}

static void xa_name(char *name, unsigned i)
{
	snprintf(name, 16, "user.fsx%u", i);
}

static void op_xattr(struct file *f)
{
	static uint8_t val[XV_MAX + 16];
	unsigned i = (unsigned)rnd(NXA), r = (unsigned)rnd(10);
	struct xattr_model *x = &f->xa[i];
	char name[16];
	ssize_t n;

	xa_name(name, i);
	cnt.xattrs++;
	if (r < 4) {
		/* Set, with each flag; the flags' errors follow the model. */
		uint32_t len = rnd(4) ? (uint32_t)rnd(200) : (uint32_t)rnd(XV_MAX + 1);
		int flags = (int)rnd(3);	/* 0, CREATE, REPLACE */
		int want = flags == RD_XATTR_CREATE && x->present ? -EEXIST :
			   flags == RD_XATTR_REPLACE && !x->present ? -ENODATA : 0;

		du_fill(val, rs, i, len);
		CHECK_EQ(rd_fs_setxattr(fs, f->ino, name, val, len, flags), want);
		if (!want) {
			x->present = true;
			x->len = len;
			memcpy(x->val, val, len);
		}
		barrier();
	} else if (r < 6) {
		CHECK_EQ(rd_fs_removexattr(fs, f->ino, name), x->present ? 0 : -ENODATA);
		x->present = false;
		barrier();
	} else if (r < 9) {
		n = rd_fs_getxattr(fs, f->ino, name, val, sizeof(val));
		if (!x->present) {
			CHECK_EQ(n, -ENODATA);
		} else {
			CHECK_EQ(n, x->len);
			CHECK(!memcmp(val, x->val, x->len));
			CHECK_EQ(rd_fs_getxattr(fs, f->ino, name, NULL, 0), x->len);
			if (x->len > 1)	/* (size 0 asks for the length) */
				CHECK_EQ(rd_fs_getxattr(fs, f->ino, name, val, x->len - 1),
					 -ERANGE);
		}
	} else {
		char list[NXA * 16 + 64], want_list[NXA * 16 + 64];
		size_t wl = 0;

		for (unsigned k = 0; k < NXA; k++)
			if (f->xa[k].present) {
				xa_name(want_list + wl, k);
				wl += strlen(want_list + wl) + 1;
			}
		n = rd_fs_listxattr(fs, f->ino, list, sizeof(list));
		CHECK_EQ(n, wl);
		/* Same set of names, in any order. */
		for (size_t p = 0; p < wl; p += strlen(want_list + p) + 1) {
			bool found = false;

			for (size_t q = 0; q < (size_t)n && !found; q += strlen(list + q) + 1)
				found = !strcmp(list + q, want_list + p);
			CHECK(found);
		}
	}
}

/* Every file's name, xattrs, and nothing else in the root but lost+found. */
struct dir_seen {
	unsigned files, others;
};

static int dir_fill(void *priv, const char *name, size_t len, uint64_t ino, unsigned d_type,
		    uint64_t next)
{
	struct dir_seen *ds = priv;

	(void)next;
	(void)d_type;
	for (unsigned i = 0; i < NF; i++)
		if (strlen(F[i].name) == len && !memcmp(F[i].name, name, len)) {
			CHECK_EQ(ino, F[i].ino);
			ds->files++;
			return 0;
		}
	ds->others++;
	return 0;
}

static void verify_names(void)
{
	struct dir_seen ds = { 0, 0 };
	static uint8_t val[XV_MAX];

	CHECK_OK(rd_fs_readdir(fs, RD_ROOT_INO, 0, dir_fill, &ds));
	CHECK_EQ(ds.files, NF);
	CHECK_EQ(ds.others, 3);		/* ".", "..", lost+found */
	for (unsigned i = 0; i < NF; i++) {
		check_name(&F[i]);
		for (unsigned k = 0; k < NXA; k++) {
			char name[16];
			ssize_t n;

			xa_name(name, k);
			n = rd_fs_getxattr(fs, F[i].ino, name, val, sizeof(val));
			CHECK_EQ(n, F[i].xa[k].present ? (ssize_t)F[i].xa[k].len : -ENODATA);
			if (n > 0)
				CHECK(!memcmp(val, F[i].xa[k].val, (size_t)n));
		}
	}
}

static void add_stats(void)
{
	struct rd_fs_stats st;

	rd_fs_stats(fs, &st);
	total.rmw_blocks += st.rmw_blocks;
	total.stale_retries += st.stale_retries;
	total.csum_errors += st.csum_errors;
	total.extents_written += st.extents_written;
}

static void reopen(bool crash)
{
	uint64_t inos[NF];

	add_stats();
	if (crash) {
		rd_fs_crash(fs);
		cnt.crashes++;
	} else {
		CHECK_OK(rd_fs_close(fs));
		cnt.reopens++;
	}
	/* The whole filesystem check, data checksums included, finds no error in the image
	 * as the crash or the close left it. */
	fu_check_clean(path, true, 0);
	fs = du_open_with(path, &fsx_opts);
	for (unsigned i = 0; i < NF; i++) {
		if (crash) {
			crash_check(&F[i]);
		} else {
			verify_file(&F[i], "clean reopen");
			mark_synced(&F[i]);
		}
		inos[i] = F[i].ino;
	}
	du_check_accounting(fs, inos, NF);
	verify_names();
}

static void verify_all(void)
{
	uint64_t inos[NF];

	for (unsigned i = 0; i < NF; i++) {
		verify_file(&F[i], "verify");
		inos[i] = F[i].ino;
	}
	du_check_accounting(fs, inos, NF);
	verify_names();
}

int main(void)
{
	/* 64 KiB nodes: a small image's b-tree reserve is two buckets, which must hold a
	 * whole checkpoint's copy-on-write nodes even when user data filled the rest (with
	 * 256 KiB nodes a reopen after a crash on a full 64 MiB image can fail: see the
	 * report on the allocator's reserve). */
	struct du_geo g = { .size = (getenv("RD_FSX_IMAGE_MB") ?
				     strtoull(getenv("RD_FSX_IMAGE_MB"), NULL, 0) : 40) << 20,
			    .node_size = getenv("RD_FSX_NODE_KB") ?
				     (uint32_t)strtoul(getenv("RD_FSX_NODE_KB"), NULL, 0) << 10 :
				     64 << 10 };
	uint64_t nops = getenv("RD_FSX_OPS") ? strtoull(getenv("RD_FSX_OPS"), NULL, 0) : 100000;
	double t0;

	rs = test_seed() * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	verbose = getenv("RD_FSX_VERBOSE") && atoi(getenv("RD_FSX_VERBOSE"));
	rbuf = malloc(MAXSZ + (1 << 20));
	wbuf = malloc(8 << 20);
	CHECK(rbuf && wbuf);
	st_alloc(&work);
	st_alloc(&prev);
	st_alloc(&disk);
	du_format(path, "fsx", &g);
	fs = du_open_with(path, &fsx_opts);
	for (unsigned i = 0; i < NF; i++) {
		st_alloc(&F[i].cur);
		st_alloc(&F[i].base);
		new_file(&F[i]);
	}
	barrier();	/* the files themselves persist */

	t0 = du_now();
	for (cnt.ops = 0; cnt.ops < nops; cnt.ops++) {
		struct file *f = &F[rnd(NF)];
		uint64_t r = rnd(10000);

		if (r < 3000)
			op_write(f);
		else if (r < 5500)
			op_read(f);
		else if (r < 6200)
			op_truncate(f, rnd(2) ? rnd(f->cur.size + 1) : rnd(MAXSZ + 1));
		else if (r < 7200)
			op_fallocate(f);
		else if (r < 7700)
			fsync_file(f);
		else if (r < 8200)
			op_seek(f);
		else if (r < 8205)
			reopen(false);
		else if (r < 8210)
			reopen(true);
		else if (r < 8230)
			verify_file(f, "verify");
		else if (r < 8330)
			op_rename(f, &F[rnd(NF)]);
		else if (r < 8380)
			op_unlink(f);
		else if (r < 8680)
			op_xattr(f);
		else
			op_read(f);
		if (cnt.ops % 20000 == 19999 || getenv("RD_FSX_CHECK_EVERY"))
			verify_all();
	}
	verify_all();
	reopen(true);
	reopen(false);
	add_stats();
	printf("fsx: %llu ops in %.1f s (%.0f ops/s): %llu writes (%llu MiB, %llu short, %llu "
	       "async ops), %llu reads, %llu truncates, %llu fallocates, %llu fsyncs, %llu seeks, "
	       "%llu crashes (%llu part-way states), %llu reopens, %llu ENOSPC, %llu renames, "
	       "%llu exchanges, %llu renames over a file, %llu unlinks, %llu xattr ops; "
	       "%llu rmw blocks, "
	       "%llu extents written, %llu stale retries, %llu checksum errors\n",
	       (unsigned long long)cnt.ops, du_now() - t0, (double)cnt.ops / (du_now() - t0),
	       (unsigned long long)cnt.writes, (unsigned long long)(cnt.bytes_written >> 20),
	       (unsigned long long)cnt.short_writes, (unsigned long long)cnt.async,
	       (unsigned long long)cnt.reads, (unsigned long long)cnt.truncs,
	       (unsigned long long)cnt.fallocs, (unsigned long long)cnt.fsyncs,
	       (unsigned long long)cnt.seeks, (unsigned long long)cnt.crashes,
	       (unsigned long long)cnt.partial_states, (unsigned long long)cnt.reopens,
	       (unsigned long long)cnt.enospc, (unsigned long long)cnt.renames,
	       (unsigned long long)cnt.exchanges, (unsigned long long)cnt.replaces,
	       (unsigned long long)cnt.unlinks, (unsigned long long)cnt.xattrs,
	       (unsigned long long)total.rmw_blocks,
	       (unsigned long long)total.extents_written, (unsigned long long)total.stale_retries,
	       (unsigned long long)total.csum_errors);
	CHECK_EQ(total.csum_errors, 0);
	CHECK_OK(rd_fs_close(fs));
	unlink(path);
	for (unsigned i = 0; i < NF; i++) {
		log_clear(&F[i]);
		free(F[i].cur.b);
		free(F[i].base.b);
	}
	free(work.b);
	free(prev.b);
	free(disk.b);
	free(rbuf);
	free(wbuf);
	return 0;
}
