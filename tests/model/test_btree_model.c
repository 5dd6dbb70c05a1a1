/*
 * test_btree_model.c - the b-trees and the journal against an in-memory reference model.
 *
 * Random multi-key transactions (1-8 puts/deletes, sometimes across trees) of random-sized
 * values over all five trees, with flushes at random points and, every few thousand
 * operations, either a clean close + reopen or a simulated crash + reopen. After a crash
 * the image must hold everything flushed, plus some prefix of the transactions committed
 * after the last flush, each one whole or not at all; the model is then resynced to what
 * survived. Full ordered iteration, lookups, peek and peek_prev are checked against the
 * model; 4 KiB nodes make the trees at least three levels deep; a 1 MiB cache at times
 * makes the node cache evict and re-read.
 *
 * Environment: RD_TEST_SEED, RD_MODEL_OPS (default 200000), RD_TEST_DIR (default /tmp),
 * RD_TEST_NO_DIRECT=1 to open without O_DIRECT.
 */
#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "../test.h"
#include "btree.h"
#include "refdio/errors.h"
#include "store.h"

/* The alloc tree belongs to the allocator (its keys are checked by the allocator tests and
 * fsck); the model drives the other four, whose ids come first. */
#define NT		RD_BTREE_ALLOC
#define SLOTS		4096u		/* key positions per tree: ~600 leaves of 4 KiB */
#define MAX_UPD		8

struct mval {
	uint32_t ver;		/* 0: absent */
	uint16_t len;
};

struct upd {
	uint8_t id;
	uint32_t slot;
	struct mval v;
};

struct txn {
	unsigned nr;
	struct upd u[MAX_UPD];
};

static struct mval cur[NT][SLOTS];	/* everything committed */
static struct mval base[NT][SLOTS];	/* as of the last flush (or reopen) */
static struct txn *plog;		/* committed since the last flush */
static size_t plog_nr, plog_cap;
static uint64_t rng;
static size_t max_val;
static uint32_t next_ver = 1;

static const char *image;
static bool no_direct;
static bool small_cache;	/* this open runs with a 1 MiB cache */
static struct rd_store *s;

static struct {
	uint64_t ops, txns, puts, dels, flushes, async_flushes, crashes, reopens, lost_txns;
	uint64_t checkpoints, node_reads, node_writes, lookups, peeks, small_cache_opens;
	unsigned max_depth;
} st;

/* ---- positions and values ------------------------------------------------------------ */

static struct rd_bpos slot_pos(uint32_t slot)
{
	/* inode >= 1 everywhere: the alloc tree's own keys live at inode 0 */
	return (struct rd_bpos){ .inode = 1 + (slot >> 10),
				 .offset = (uint64_t)((slot & 1023) >> 1) * 4096 + 17,
				 .snapshot = (slot & 1) ? 7 : 0 };
}

/* The slot of pos, or -1 if pos is no slot's position. */
static int64_t pos_slot(struct rd_bpos p)
{
	uint64_t hi, lo;

	if (p.inode < 1 || p.inode > SLOTS / 1024 || p.offset < 17 || (p.offset - 17) % 4096 ||
	    (p.snapshot != 0 && p.snapshot != 7))
		return -1;
	hi = p.inode - 1;
	lo = (p.offset - 17) / 4096;
	if (lo >= 512)
		return -1;
	return (int64_t)(hi * 1024 + lo * 2 + (p.snapshot ? 1 : 0));
}

static uint8_t key_type(uint32_t ver)
{
	return (uint8_t)(100 + ver % 50);
}

static void gen_val(unsigned id, uint32_t slot, uint32_t ver, uint16_t len, uint8_t *buf)
{
	uint64_t x = ((uint64_t)id << 56) ^ ((uint64_t)slot << 32) ^ ver ^ 0x9e3779b97f4a7c15ull;

	for (uint16_t i = 0; i < len; i += 8) {
		uint64_t r = test_rand(&x);

		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

/* Whether the key k (NULL: absent) is what v says. */
static bool key_is(unsigned id, uint32_t slot, const struct rd_bkey *k, struct mval v)
{
	uint8_t buf[65536];

	if (!v.ver || !k)
		return !v.ver && !k;
	if (k->type != key_type(v.ver) || k->val_len != v.len)
		return false;
	gen_val(id, slot, v.ver, v.len, buf);
	return !memcmp(buf, k->val, v.len);
}

/* ---- store --------------------------------------------------------------------------- */

static void open_store(void)
{
	struct rd_open_opts o = { .no_direct = no_direct };
	char why[256] = "";
	int ret;

	small_cache = test_rand(&rng) % 4 == 0;
	if (small_cache) {
		o.cache_bytes = 1 << 20;	/* 256 nodes of 4 KiB: eviction all the time */
		st.small_cache_opens++;
	}
	ret = rd_store_open(image, &o, &s, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "open: %s: %s\n", rd_strerror(ret), why);
		exit(1);
	}
}

static void account_stats(void)
{
	struct rd_btree_stats bs;

	rd_btree_stats(s, &bs);
	st.checkpoints += bs.checkpoints;
	st.node_reads += bs.node_reads;
	st.node_writes += bs.node_writes;
	for (unsigned id = 0; id < NT; id++)
		if (bs.depth[id] > st.max_depth)
			st.max_depth = bs.depth[id];
}

/* ---- checks -------------------------------------------------------------------------- */

static struct rd_bpos tree_min(unsigned id)
{
	return id == RD_BTREE_ALLOC ? RD_POS(1, 0) : RD_POS_MIN;
}

/* Every key of every tree, in order, against cur. */
static void verify_all(void)
{
	for (unsigned id = 0; id < NT; id++) {
		struct rd_btree_iter it;
		const struct rd_bkey *k;
		uint64_t seen = 0, want = 0;
		int64_t last = -1;
		int ret;

		rd_btree_iter_init(&it, s, id, tree_min(id), RD_POS_MAX);
		while (!(ret = rd_btree_iter_next(&it, &k))) {
			int64_t slot = pos_slot(k->pos);

			CHECK(slot >= 0);
			CHECK(slot > last);
			/* every slot skipped must be absent in the model */
			for (int64_t x = last + 1; x < slot; x++)
				CHECK(!cur[id][x].ver);
			if (!key_is(id, (uint32_t)slot, k, cur[id][slot])) {
				fprintf(stderr, "tree %u slot %" PRId64 ": model ver %u len %u, image type %u "
					"len %u\n", id, slot, cur[id][slot].ver, cur[id][slot].len,
					k->type, k->val_len);
				exit(1);
			}
			last = slot;
			seen++;
		}
		CHECK_EQ(ret, -ENOENT);
		rd_btree_iter_exit(&it);
		for (uint32_t x = 0; x < SLOTS; x++)
			want += cur[id][x].ver != 0;
		CHECK_EQ(seen, want);
	}
}

/* The first (or last) present slot of tree id in [a, b], or -1. */
static int64_t model_first(unsigned id, uint32_t a, uint32_t b, bool last)
{
	if (last) {
		for (int64_t x = b; x >= (int64_t)a; x--)
			if (cur[id][x].ver)
				return x;
	} else {
		for (uint32_t x = a; x <= b; x++)
			if (cur[id][x].ver)
				return x;
	}
	return -1;
}

static void check_peeks(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned id = (unsigned)(test_rand(&rng) % NT);
		uint32_t a = (uint32_t)(test_rand(&rng) % SLOTS);
		uint32_t b = a + (uint32_t)(test_rand(&rng) % 64);
		bool prev = test_rand(&rng) & 1;
		struct rd_bpos from = slot_pos(a), to;
		struct rd_bkey *k = NULL;
		int64_t want;
		int ret;

		if (b >= SLOTS)
			b = SLOTS - 1;
		to = slot_pos(b);
		/* Sometimes bounds between slots: the result must not change. */
		if (test_rand(&rng) & 1) {
			if (from.snapshot)
				from.snapshot = 1;	/* between slot a - 1 and a */
			else
				from = (struct rd_bpos){ from.inode, from.offset - 1, 8 };
		}
		if (test_rand(&rng) & 1) {
			if (!to.snapshot)
				to.snapshot = 1;	/* between slot b and b + 1 */
			else
				to.offset += 1;
		}
		want = model_first(id, a, b, prev);
		ret = prev ? rd_btree_peek_prev(s, id, from, to, &k)
			   : rd_btree_peek(s, id, from, to, &k);
		if (want < 0) {
			CHECK_EQ(ret, -ENOENT);
		} else {
			CHECK_OK(ret);
			CHECK_EQ(pos_slot(k->pos), want);
			CHECK(key_is(id, (uint32_t)want, k, cur[id][want]));
		}
		free(k);
		st.peeks++;
	}
}

static void check_lookup(void)
{
	unsigned id = (unsigned)(test_rand(&rng) % NT);
	uint32_t slot = (uint32_t)(test_rand(&rng) % SLOTS);
	struct rd_bkey *k = NULL;
	int ret = rd_btree_lookup(s, id, slot_pos(slot), &k);

	if (cur[id][slot].ver) {
		CHECK_OK(ret);
		CHECK(key_is(id, slot, k, cur[id][slot]));
	} else {
		CHECK_EQ(ret, -ENOENT);
	}
	free(k);
	st.lookups++;
}

static void full_check(void)
{
	struct rd_btree_stats bs;

	verify_all();
	check_peeks(300);
	rd_btree_stats(s, &bs);
	for (unsigned id = 0; id < NT; id++)
		if (bs.depth[id] > st.max_depth)
			st.max_depth = bs.depth[id];
}

/* ---- crash recovery ------------------------------------------------------------------ */

/*
 * After a crash: the image must equal base plus the first k transactions of plog for some
 * k. Walk k upwards keeping, for every key the log touches, whether the image agrees with
 * the model at k; a k where all agree is a possible survivor. None = lost a flushed update
 * or split a transaction.
 */
static void resync_after_crash(void)
{
	static struct rd_bkey *actual[NT][SLOTS];
	static bool touched[NT][SLOTS];
	static struct mval state[NT][SLOTS];
	struct upd *tl = NULL;
	size_t ntl = 0;
	int64_t mism = 0, best = -1;

	for (size_t i = 0; i < plog_nr; i++)
		for (unsigned j = 0; j < plog[i].nr; j++) {
			struct upd *u = &plog[i].u[j];

			if (touched[u->id][u->slot])
				continue;
			touched[u->id][u->slot] = true;
			tl = realloc(tl, (ntl + 1) * sizeof(*tl));
			CHECK(tl);
			tl[ntl++] = *u;
		}
	for (size_t i = 0; i < ntl; i++) {
		unsigned id = tl[i].id;
		uint32_t slot = tl[i].slot;
		int ret = rd_btree_lookup(s, id, slot_pos(slot), &actual[id][slot]);

		CHECK(ret == 0 || ret == -ENOENT);
		state[id][slot] = base[id][slot];
		mism += !key_is(id, slot, actual[id][slot], state[id][slot]);
	}
	if (!mism)
		best = 0;
	for (size_t i = 0; i < plog_nr; i++) {
		for (unsigned j = 0; j < plog[i].nr; j++) {
			struct upd *u = &plog[i].u[j];
			bool before = key_is(u->id, u->slot, actual[u->id][u->slot],
					     state[u->id][u->slot]);

			state[u->id][u->slot] = u->v;
			mism += (int64_t)before -
				(int64_t)key_is(u->id, u->slot, actual[u->id][u->slot], u->v);
		}
		if (!mism)
			best = (int64_t)i + 1;
	}
	if (best < 0) {
		fprintf(stderr, "crash recovery: the image is not base + any prefix of the %zu "
			"transactions committed after the last flush\n", plog_nr);
		exit(1);
	}
	st.lost_txns += plog_nr - (size_t)best;
	/* cur = base + plog[0..best) */
	memcpy(cur, base, sizeof(cur));
	for (size_t i = 0; i < (size_t)best; i++)
		for (unsigned j = 0; j < plog[i].nr; j++)
			cur[plog[i].u[j].id][plog[i].u[j].slot] = plog[i].u[j].v;
	for (size_t i = 0; i < ntl; i++) {
		free(actual[tl[i].id][tl[i].slot]);
		actual[tl[i].id][tl[i].slot] = NULL;
		touched[tl[i].id][tl[i].slot] = false;
	}
	free(tl);
}

static void mark_flushed(void)
{
	memcpy(base, cur, sizeof(cur));
	plog_nr = 0;
}

/* ---- operations ---------------------------------------------------------------------- */

static void do_txn(void)
{
	struct rd_trans *t = rd_trans_new(s);
	struct txn x = { .nr = 1 + (unsigned)(test_rand(&rng) % MAX_UPD) };
	unsigned one_tree = (unsigned)(test_rand(&rng) % NT);
	bool same_tree = test_rand(&rng) % 10 < 3;
	uint8_t buf[65536];
	uint64_t seq;

	CHECK(t);
	for (unsigned i = 0; i < x.nr; i++) {
		struct upd *u = &x.u[i];

		u->id = (uint8_t)(same_tree ? one_tree : test_rand(&rng) % NT);
		u->slot = (uint32_t)(test_rand(&rng) % SLOTS);
		if (test_rand(&rng) % 100 < 62) {
			uint64_t r = test_rand(&rng) % 8;

			/* mostly uniform sizes, some empty and some maximal */
			u->v.len = (uint16_t)(r == 0 ? 0 : r == 1 ? max_val :
					      test_rand(&rng) % (max_val + 1));
			u->v.ver = next_ver++;
			gen_val(u->id, u->slot, u->v.ver, u->v.len, buf);
			CHECK_OK(rd_trans_put(t, u->id, slot_pos(u->slot), key_type(u->v.ver), buf,
					      u->v.len));
			st.puts++;
		} else {
			u->v = (struct mval){ 0 };
			CHECK_OK(rd_trans_del(t, u->id, slot_pos(u->slot)));
			st.dels++;
		}
	}
	CHECK_OK(rd_trans_commit(t, &seq));
	CHECK(seq >= rd_store_durable_seq(s));
	for (unsigned i = 0; i < x.nr; i++)
		cur[x.u[i].id][x.u[i].slot] = x.u[i].v;
	if (plog_nr == plog_cap) {
		plog_cap = plog_cap ? plog_cap * 2 : 1024;
		plog = realloc(plog, plog_cap * sizeof(*plog));
		CHECK(plog);
	}
	plog[plog_nr++] = x;
	st.ops += x.nr;
	st.txns++;
}

static atomic_int async_done;
static int async_err;

static void async_cb(void *priv, int err)
{
	(void)priv;
	async_err = err;
	atomic_store(&async_done, 1);
}

static void do_flush(void)
{
	if (test_rand(&rng) % 4 == 0) {
		uint64_t seq = rd_store_journal_seq(s);

		atomic_store(&async_done, 0);
		rd_store_flush_async(s, 0, async_cb, NULL);
		while (!atomic_load(&async_done))
			usleep(100);
		CHECK_OK(async_err);
		CHECK(rd_store_durable_seq(s) + 1 >= seq);
		st.async_flushes++;
	} else {
		CHECK_OK(rd_store_flush(s, 0));
	}
	mark_flushed();
	st.flushes++;
}

int main(void)
{
	char path[512];
	const char *dir = getenv("RD_TEST_DIR") ? getenv("RD_TEST_DIR") : "/tmp";
	uint64_t want_ops = getenv("RD_MODEL_OPS") ? strtoull(getenv("RD_MODEL_OPS"), NULL, 0)
						  : 200000;
	struct rd_format_opts fo = {
		.size = 256ull << 20, .block_size = 4096, .bucket_size = 64 << 10,
		.btree_node_size = 4096, .data_csum = -1, .meta_csum = -1, .force = true,
	};
	uint64_t next_event;
	struct timespec t0, t1;
	char why[256] = "";
	double secs;

	rng = test_seed() | 1;
	no_direct = getenv("RD_TEST_NO_DIRECT") && atoi(getenv("RD_TEST_NO_DIRECT"));
	fo.no_direct = no_direct;
	snprintf(path, sizeof(path), "%s/index-model-%d.img", dir, (int)getpid());
	image = path;
	unlink(image);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (test_rand(&rng) & 1)
		fo.meta_csum = RD_CSUM_XXHASH;
	if (rd_store_format(image, &fo, why, sizeof(why))) {
		fprintf(stderr, "format: %s\n", why);
		return 1;
	}
	open_store();
	max_val = rd_btree_max_val(s);
	CHECK_EQ(max_val, 968);
	next_event = 3000 + test_rand(&rng) % 6000;

	while (st.ops < want_ops) {
		uint64_t r = test_rand(&rng) % 100;

		do_txn();
		if (r < 3)
			do_flush();
		else if (r < 13)
			check_lookup();
		if (st.ops >= next_event) {
			account_stats();
			if (test_rand(&rng) & 1) {
				CHECK_OK(rd_store_close(s));
				open_store();
				mark_flushed();	/* a clean close keeps everything */
				st.reopens++;
			} else {
				rd_store_crash(s);
				open_store();
				resync_after_crash();
				mark_flushed();
				st.crashes++;
			}
			full_check();
			/* A small cache reads a node for nearly every update: keep its runs short. */
			next_event = st.ops + (small_cache ? 1000 + test_rand(&rng) % 2000
							   : 3000 + test_rand(&rng) % 6000);
		}
	}
	full_check();
	account_stats();
	CHECK_OK(rd_store_close(s));
	open_store();
	full_check();
	CHECK_OK(rd_store_close(s));
	unlink(image);
	free(plog);

	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("model: %" PRIu64 " ops (%" PRIu64 " puts, %" PRIu64 " deletes) in %" PRIu64
	       " transactions, %.1f s, %.0f ops/s\n", st.ops, st.puts, st.dels, st.txns, secs,
	       (double)st.ops / secs);
	printf("model: %" PRIu64 " crashes (%" PRIu64 " unflushed transactions lost), %" PRIu64
	       " clean reopens (%" PRIu64 " with a 1 MiB cache), %" PRIu64 " flushes (%" PRIu64
	       " async)\n", st.crashes, st.lost_txns, st.reopens, st.small_cache_opens,
	       st.flushes, st.async_flushes);
	printf("model: max depth %u, %" PRIu64 " checkpoints, %" PRIu64 " node writes, %" PRIu64
	       " node reads, %" PRIu64 " lookups, %" PRIu64 " peeks\n", st.max_depth,
	       st.checkpoints, st.node_writes, st.node_reads, st.lookups, st.peeks);
	CHECK(st.max_depth >= 3);
	CHECK(st.crashes > 0 && st.reopens > 0);
	return 0;
}
