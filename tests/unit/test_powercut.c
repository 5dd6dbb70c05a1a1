/*
 * test_powercut.c - power cuts at random points of a random workload, with the device's
 * volatile write cache modelled: whatever was written since the last completed flush may
 * be lost, kept, or torn at 512-byte sectors, in any order (engine/core/io_model.c).
 *
 * Workloads come from crash_workload.h (data through the dio engine, truncates, fallocate,
 * xattrs, renames, unlinks, fsync, fdatasync, O_DSYNC, sync). Bounded ones (one to four
 * operations between an open and a clean close, after CrashMonkey/B3) are cut at every
 * device operation, the open's and the close's superblock and checkpoint writes included;
 * long ones (150 operations) at random ones. A dry run counts a workload's device
 * operations; then it is run again from the same image and seed and cut. After each cut the store is dropped, and several of the images a
 * device could have left are made from it. Each must: pass the filesystem check with data
 * checksums (rd_fsck_fs), open (journal replay), and hold every acknowledged byte, name and
 * xattr, with nothing in changed ranges that was never written there, and no read error.
 *
 * Copying GC: long workloads run GC passes among their operations (cw_gc, 2 %), and
 * bounded ones end with a GC pass before their close, so cuts fall inside GC too; the
 * bytes GC moved before the cuts are printed and must not be 0.
 *
 * Negative control: a few cuts with the journal's pre-flush switched off
 * (rd_open_opts.test_no_preflush) must be caught; if none is, the test fails.
 *
 * Environment: RD_TEST_SEED; RD_PC_BOUNDED (bounded workloads, default 12);
 * RD_PC_GC_BOUNDED (bounded workloads ending with a GC pass, default 1);
 * RD_PC_WORKLOADS (long workloads, default 30), RD_PC_CUTS (cuts per long workload, default
 * 6), RD_PC_OUTCOMES (images per cut, default 2), RD_PC_OPS (operations per long workload,
 * default 150).
 */
#include "crash_workload.h"
#include "fsck_util.h"
#include "io_model.h"

static unsigned env_or(const char *name, unsigned def)
{
	const char *e = getenv(name);

	return e && *e ? (unsigned)strtoul(e, NULL, 0) : def;
}

/* Copies src to dst, holes kept (the images are sparse). */
static void copy_image(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY), out = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0600);
	off_t size, pos = 0;

	CHECK(in >= 0 && out >= 0);
	size = lseek(in, 0, SEEK_END);
	CHECK(size > 0 && ftruncate(out, size) == 0);
	for (;;) {
		off_t data = lseek(in, pos, SEEK_DATA), hole;

		if (data < 0)
			break;
		hole = lseek(in, data, SEEK_HOLE);
		CHECK(hole > data);
		for (off_t o = data; o < hole; ) {
			loff_t io = o, oo = o;
			ssize_t n = copy_file_range(in, &io, out, &oo, (size_t)(hole - o), 0);

			CHECK(n > 0);
			o += n;
		}
		pos = hole;
	}
	close(in);
	close(out);
}

struct totals {
	uint64_t cuts, outcomes, reached, kept, lost, torn, volatile_writes, failures;
	uint64_t gc_runs, gc_bytes;	/* GC passes completed before the cut, bytes moved */
};

/* Checks one outcome image: it opens (replay), holds what the model says, and then (as
 * replayed and repaired by that open, before anything else is written) passes fsck with
 * data checksums. Returns its failures (prints them when expect_clean). */
static unsigned check_outcome(const char *path, const struct cw *w, const char *tag,
			      bool expect_clean)
{
	/* No mover thread: cut points must come in the same order run after run. GC runs
	 * where the workload says (cw_gc: rd_fs_gc in the workload's thread). */
	struct rd_fs_opts fo = { .no_gc = true };
	struct fu_run r;
	struct rd_fs *fs;
	char why[256] = "";
	unsigned fails;
	int ret;

	ret = rd_fs_open(path, &fo, &fs, why, sizeof(why));
	if (ret) {
		if (expect_clean)
			fprintf(stderr, "%s: open after the cut: %s: %s\n", tag, rd_strerror(ret),
				why);
		return 1;
	}
	fails = cw_check(w, fs, expect_clean ? tag : "(negative control)");
	rd_fs_crash(fs);
	fu_fsck(path, false, true, 0, &r);
	if (!r.res.fs_checked || r.res.problems) {
		if (expect_clean) {
			fprintf(stderr, "%s: fsck: %u problems (checked %d)\n", tag,
				r.res.problems, r.res.fs_checked);
			fu_print(&r);
		}
		fails++;
	}
	return fails;
}

/*
 * The negative control cuts where a missing pre-flush shows: at the device flush that
 * follows a journal entry's write (the entry may then be on the medium while the data it
 * names is not). It counts such flushes and cuts at the target-th (0: only counts).
 */
struct entry_flush {
	const struct rd_geometry *g;	/* set once the store is open */
	bool after_entry;
	uint64_t seen, target;
};

static bool cut_at_entry_flush(void *priv, const struct rd_io_req *req, uint64_t op)
{
	struct entry_flush *e = priv;
	uint64_t ring;

	(void)op;
	if (!e->g)
		return false;
	ring = e->g->journal_start * e->g->bucket_size;
	if (req->op == RD_IO_WRITE) {
		e->after_entry = req->off >= ring &&
				 req->off < ring + e->g->journal_buckets * e->g->bucket_size;
		return false;
	}
	if (!e->after_entry)
		return false;
	e->after_entry = false;
	return ++e->seen == e->target;
}

static bool is_cut(void *priv)
{
	return rd_io_model_is_cut(priv);
}

/* One run of a workload, cut somewhere. */
struct cut_run {
	uint64_t wseed;
	unsigned ops;
	uint64_t cut_at;	/* the cut_at-th device operation; 0: the dry run, no cut */
	unsigned outcomes;	/* images made from the cut */
	bool close_at_end;	/* a clean close ends the run: its writes are cut points too */
	bool gc_at_end;		/* a GC pass (rd_fs_gc) after the operations: cut inside it */
	uint64_t gc_start;	/* out (dry run): device operations before that pass */
	struct entry_flush *ef;	/* the negative control: no pre-flush, ef picks the cut */
};

static char tmpl[128], image[160], out[160];

/* Makes and checks the images of one cut; exits on a failure unless negative control. */
static void check_outcomes(const struct cut_run *r, struct rd_io_model *m, const struct cw *w,
			   uint64_t ops, struct totals *t)
{
	for (unsigned k = 0; k < r->outcomes; k++) {
		struct rd_io_model_outcome oc;
		char tag[200];
		unsigned fails;
		int fd;

		copy_image(image, out);
		fd = open(out, O_RDWR);
		CHECK(fd >= 0);
		CHECK_OK(rd_io_model_apply(m, fd, r->wseed * 1000003 + r->cut_at * 31 + k, &oc));
		CHECK(close(fd) == 0);
		snprintf(tag, sizeof(tag), "workload %llu (%u ops%s), cut at %llu/%llu, outcome %u "
			 "(%s: %llu kept, %llu lost, %llu torn)", (unsigned long long)r->wseed,
			 r->ops, r->close_at_end ? ", close" : "", (unsigned long long)r->cut_at,
			 (unsigned long long)ops, k, oc.how, (unsigned long long)oc.kept,
			 (unsigned long long)oc.lost, (unsigned long long)oc.torn);
		fails = check_outcome(out, w, tag, !r->ef);
		t->outcomes++;
		t->kept += oc.kept;
		t->lost += oc.lost;
		t->torn += oc.torn;
		t->failures += fails != 0;
		if (fails && !r->ef) {
			fprintf(stderr, "FAILED: %s (RD_TEST_SEED and the counts above replay it)\n",
				tag);
			exit(1);
		}
	}
}

/* Runs the workload on a fresh copy of the template with power cut as r says, then checks
 * r->outcomes images. Returns the device operations seen before the cut (all of them for
 * the dry run). */
static uint64_t one_cut(struct cut_run *r, struct totals *t)
{
	struct rd_io_model_opts mo = { .image = image, .cut_at = r->cut_at };
	struct rd_fs_opts fo = { .no_gc = true };	/* (see check_outcome) */
	struct rd_io_model_stats ms;
	struct rd_io_model *m;
	struct rd_fs *fs;
	struct cw w;
	char why[256] = "";

	copy_image(tmpl, image);
	fo.store.test_no_preflush = r->ef != NULL;
	if (r->ef) {
		mo.cut_when = cut_at_entry_flush;
		mo.cut_priv = r->ef;
		r->ef->g = NULL;
		r->ef->seen = 0;
		r->ef->after_entry = false;
		if (!r->cut_at)
			r->ef->target = 0;
	}
	CHECK_OK(rd_io_model_new(&mo, &m));
	fo.store.io_hooks = rd_io_model_hooks(m);
	cw_init(&w, r->wseed);
	if (rd_fs_open(image, &fo, &fs, why, sizeof(why))) {
		/* Power may fail while the image is being opened (its first checkpoint, the
		 * superblock marked in use): nothing was acknowledged yet. */
		if (!rd_io_model_is_cut(m)) {
			fprintf(stderr, "open: %s\n", why);
			exit(1);
		}
		fs = NULL;
	} else {
		if (r->ef)
			r->ef->g = &rd_fs_store(fs)->geo;
		w.cut = is_cut;
		w.cut_priv = m;
		cw_start(&w, fs);
		if (r->gc_at_end) {
			/* One file written over and over: buckets partly dead, the first ones
			 * closed (not the write point's any more), so GC has victims. */
			struct cw_file *f = cw_pick(&w, false);

			cw_create(&w, f);
			for (unsigned i = 0; i < r->ops && !w.stopped; i++)
				cw_write(&w, f);
			if (!w.stopped)
				cw_fsync(&w, f);
			rd_io_model_stats(m, &ms);
			if (!r->cut_at)
				r->gc_start = ms.ops;
			if (!w.stopped)
				cw_gc(&w);
		} else {
			cw_run(&w, r->ops);
		}
		cw_stop_dio(&w);
	}
	if (fs && (r->close_at_end || !r->cut_at)) {
		int ret = rd_fs_close(fs);	/* frees fs whatever happens */

		fs = NULL;
		if (!ret && !rd_io_model_is_cut(m))
			cw_sync_done(&w);	/* a clean close made everything durable */
		else
			CHECK(rd_io_model_is_cut(m));
	}
	rd_io_model_stats(m, &ms);
	if (!r->cut_at)
		goto out;
	t->reached += rd_io_model_is_cut(m);
	rd_io_model_cut(m);	/* (if the run ended first: power fails right at its end) */
	if (fs)
		rd_fs_crash(fs);
	CHECK_EQ(ms.overlaps, 0);
	t->cuts++;
	t->volatile_writes += ms.volatile_writes;
	t->gc_runs += w.gc_runs;
	t->gc_bytes += w.gc_bytes;
	check_outcomes(r, m, &w, ms.ops, t);
out:
	cw_free(&w);
	rd_io_model_free(m);
	return ms.ops;
}

int main(void)
{
	struct du_geo g = { .size = 24ull << 20, .block_size = 4096, .bucket_size = 128 << 10,
			    .eem = 64 << 10, .node_size = 16 << 10 };
	unsigned workloads = env_or("RD_PC_WORKLOADS", 30), cuts = env_or("RD_PC_CUTS", 6);
	unsigned outcomes = env_or("RD_PC_OUTCOMES", 2), ops = env_or("RD_PC_OPS", 150);
	unsigned bounded = env_or("RD_PC_BOUNDED", 12), gc_bounded = env_or("RD_PC_GC_BOUNDED", 1);
	uint64_t seed = test_seed(), rng = seed | 1;
	struct totals t = { 0 }, b = { 0 }, neg = { 0 };
	double t0 = du_now();

	du_format(tmpl, "pcut", &g);
	CHECK_OK(rd_fs_close(du_open(tmpl)));	/* the root and lost+found exist */
	snprintf(image, sizeof(image), "%s.run", tmpl);
	snprintf(out, sizeof(out), "%s.out", tmpl);

	/* Bounded workloads (after CrashMonkey/B3): a few operations between an open and a
	 * clean close, cut at every device operation, several images each. */
	for (unsigned wl = 0; wl < bounded; wl++) {
		struct cut_run r = { .wseed = seed + 100003 * (wl + 1), .ops = 1 + wl % 4,
				     .outcomes = 3, .close_at_end = true };
		uint64_t total = one_cut(&r, &b);

		for (r.cut_at = 1; r.cut_at <= total; r.cut_at++)
			one_cut(&r, &b);
	}
	/* Bounded workloads that end with a GC pass and a close: a file written over a few
	 * times and fsynced, then cut at every device operation of the GC pass (its reads,
	 * its writes to new space, its commits' journal entries and flushes) and of the
	 * close. */
	for (unsigned wl = 0; wl < gc_bounded; wl++) {
		struct cut_run r = { .wseed = seed + 700001 * (wl + 1), .ops = 5 + wl % 3,
				     .outcomes = 3, .close_at_end = true, .gc_at_end = true };
		uint64_t total = one_cut(&r, &b);

		for (r.cut_at = r.gc_start + 1; r.cut_at <= total; r.cut_at++)
			one_cut(&r, &b);
	}
	fprintf(stderr, "bounded: %llu cut points, %llu images checked: %llu volatile writes "
		"kept, %llu lost, %llu torn; GC passes completed before a cut: %llu, %llu bytes "
		"moved; %.1f s\n", (unsigned long long)b.cuts,
		(unsigned long long)b.outcomes, (unsigned long long)b.kept,
		(unsigned long long)b.lost, (unsigned long long)b.torn,
		(unsigned long long)b.gc_runs, (unsigned long long)b.gc_bytes, du_now() - t0);

	/* Long random workloads cut at random points. */
	t0 = du_now();
	for (unsigned wl = 0; wl < workloads; wl++) {
		struct cut_run r = { .wseed = seed + wl, .ops = ops, .outcomes = outcomes,
				     .close_at_end = wl % 2 };
		uint64_t total = one_cut(&r, &t);

		for (unsigned c = 0; c < cuts; c++) {
			r.cut_at = 1 + test_rand(&rng) % (total + 1);
			one_cut(&r, &t);
		}
	}
	fprintf(stderr, "random: %llu cut points (%llu reached mid-run), %llu images checked: "
		"%llu volatile writes kept, %llu lost, %llu torn; GC passes completed before a "
		"cut: %llu, %llu bytes moved; %.1f s\n",
		(unsigned long long)t.cuts, (unsigned long long)t.reached,
		(unsigned long long)t.outcomes, (unsigned long long)t.kept,
		(unsigned long long)t.lost, (unsigned long long)t.torn,
		(unsigned long long)t.gc_runs, (unsigned long long)t.gc_bytes, du_now() - t0);
	fprintf(stderr, "in all: %llu cut points, %llu write-cache outcomes (images) checked\n",
		(unsigned long long)(t.cuts + b.cuts), (unsigned long long)(t.outcomes + b.outcomes));
	CHECK_EQ(t.failures + b.failures, 0);
	/* GC did move data in the runs that were cut (else its cut points prove nothing). */
	CHECK(b.gc_bytes > 0 && t.gc_bytes > 0);
	CHECK(t.lost > 0 && t.torn > 0 && b.lost > 0 && b.torn > 0);

	/* Negative control: without the pre-flush, journal entries can outlive their data.
	 * Cut at flushes that follow an entry (counted by a dry run), several images each. */
	for (unsigned wl = 0; wl < 16 && !neg.failures; wl++) {
		struct entry_flush ef = { 0 };
		struct cut_run r = { .wseed = seed + 7919 * (wl + 1), .ops = ops, .outcomes = 4,
				     .ef = &ef };
		uint64_t nr;

		one_cut(&r, &neg);
		nr = ef.seen;
		r.cut_at = UINT64_MAX;	/* (the cut comes from ef) */
		for (unsigned c = 0; c < 8 && nr && !neg.failures; c++) {
			ef.target = 1 + test_rand(&rng) % nr;
			one_cut(&r, &neg);
		}
	}
	fprintf(stderr, "negative control (no pre-flush): %llu of %llu images caught\n",
		(unsigned long long)neg.failures, (unsigned long long)neg.outcomes);
	CHECK(neg.failures > 0);

	unlink(tmpl);
	unlink(image);
	unlink(out);
	return 0;
}
