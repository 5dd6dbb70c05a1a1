/*
 * fuzz_journal.c - libFuzzer harness: journal entry decoding and replay (engine/journal.c)
 * into the trees (store.c's replay_apply, btree.c), and the allocator's set-up behind it.
 *
 * Input: an image (fuzz.h's codec). The seeds are small images whose process crashed with
 * the journal holding entries after the last checkpoint, so the open replays them. Flags
 * beyond FZ_FIX_CSUMS:
 *   JR_WRITE  open read-write instead (replay, the superblock copies rewritten, the flusher
 *             started), close it (a checkpoint of the replayed trees, the superblock marked
 *             clean), and require that what the engine wrote opens again.
 *
 * Each input: rd_store_open (read-only: the replay happens in memory only), then every key
 * of every tree in order through the iterators (which reads every leaf the replay did not),
 * checking that positions strictly increase, then close.
 *
 * Must never: leave a file behind (the image is a memfd).
 */
#include <errno.h>
#include <string.h>

#include "btree.h"
#include "errors.h"
#include "fuzz.h"
#include "store.h"


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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rd_open_opts oo = { .read_only = true, .no_direct = true };
	struct rd_store *s;
	char why[256];
	int ret;

	fz_accepted = false;
	if (fz_image_load(&im, data, len))
		return 0;
	if (im.flags & JR_WRITE) {
		oo.read_only = false;
		if (rd_store_open(im.path, &oo, &s, why, sizeof(why)))
			return 0;
		if (rd_store_close(s))
			return 0;
		/* The engine wrote this image itself, from an open that succeeded. */
		oo.read_only = true;
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
