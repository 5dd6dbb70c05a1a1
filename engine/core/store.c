/*
 * store.c - formatting, opening, closing and crashing a store.
 *
 * Owns: the order in which the modules come up and go down:
 *   open:  superblock -> trees' roots (from the sb after a clean close, else from journal
 *          replay) -> journal flusher -> [clean: a checkpoint entry, then the sb without
 *          RD_SB_CLEAN] -> allocator. Nothing else is written at open: after a replay the
 *          first commit checkpoints first (see rd_journal_replay);
 *   close: checkpoints until nothing is dirty -> journal stopped -> sb with RD_SB_CLEAN,
 *          the roots and the journal position;
 *   crash: the flusher stops after the write in progress, nothing else is written.
 *
 * Must never: write to a read-only store, or mark the superblock clean while anything
 * committed is only in the journal.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "alloc.h"
#include "btree_internal.h"
#include "refdio/errors.h"
#include "io.h"
#include "journal.h"
#include "store.h"

#define CLOSE_ROUNDS	8

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

#define WHY(...) do {						\
	if (why)						\
		snprintf(why, why_len, __VA_ARGS__);		\
} while (0)

/* ---- format -------------------------------------------------------------------------- */

static int format_check(struct rd_format_opts *o, uint64_t file_size, char *why,
			size_t why_len)
{
	if (!o->block_size)
		o->block_size = 4096;
	if (!o->bucket_size)
		o->bucket_size = 1u << 20;
	if (!o->btree_node_size)
		o->btree_node_size = 256u << 10;
	if (!o->encoded_extent_max)
		o->encoded_extent_max = o->bucket_size < (256u << 10) ? o->bucket_size : 256u << 10;
	if (o->data_csum < 0)
		o->data_csum = RD_CSUM_CRC32C;
	if (o->meta_csum < 0)
		o->meta_csum = RD_CSUM_CRC32C;
	if (!o->size)
		o->size = file_size;

	if (!is_pow2(o->block_size) || o->block_size < 512 || o->block_size > 65536) {
		WHY("block size %u: must be a power of two from 512 to 65536", o->block_size);
		return -EINVAL;
	}
	if (!is_pow2(o->bucket_size) || o->bucket_size < 16 * o->block_size ||
	    o->bucket_size < RD_SB_OFFSET + RD_SB_SIZE || o->bucket_size > (1u << 30)) {
		WHY("bucket size %u: must be a power of two, at least 16 blocks (%u) and 8 KiB, "
		    "at most 1 GiB", o->bucket_size, 16 * o->block_size);
		return -EINVAL;
	}
	if (!is_pow2(o->btree_node_size) || o->btree_node_size < 4096 ||
	    o->btree_node_size < o->block_size || o->btree_node_size > o->bucket_size) {
		WHY("b-tree node size %u: must be a power of two, at least 4096 and the block "
		    "size, at most the bucket size", o->btree_node_size);
		return -EINVAL;
	}
	if (!is_pow2(o->encoded_extent_max) || o->encoded_extent_max < o->block_size ||
	    o->encoded_extent_max > o->bucket_size) {
		WHY("encoded extent max %u: must be a power of two from the block size to the "
		    "bucket size", o->encoded_extent_max);
		return -EINVAL;
	}
	if (o->data_csum >= RD_CSUM_NR) {
		WHY("unknown data checksum type %d", o->data_csum);
		return -EINVAL;
	}
	if (o->meta_csum <= RD_CSUM_NONE || o->meta_csum >= RD_CSUM_NR) {
		WHY("metadata checksum type %d: metadata is always checksummed", o->meta_csum);
		return -EINVAL;
	}
	if (o->label && strlen(o->label) > RD_LABEL_MAX) {
		WHY("label longer than %d bytes", RD_LABEL_MAX);
		return -EINVAL;
	}
	if (!o->size) {
		WHY("no size given and the file is empty");
		return -EINVAL;
	}
	return 0;
}

/* Whether path already holds a valid refdio superblock. */
static int existing_image(const char *path, bool no_direct)
{
	struct rd_io_opts io_opts = { .read_only = true, .no_direct = no_direct };
	struct rd_io *io;
	struct rd_sb *sb;
	char why[64];
	int ret;

	if (rd_io_open(path, &io_opts, &io))
		return 0;	/* cannot even be read: nothing to protect */
	sb = rd_io_buf_alloc(RD_SB_SIZE);
	ret = sb && !rd_sb_read(io, sb, NULL, why, sizeof(why));
	rd_io_buf_free(sb);
	rd_io_close(io);
	return ret;
}

int rd_store_format(const char *path, const struct rd_format_opts *opts, char *why,
		    size_t why_len)
{
	struct rd_format_opts o = *opts;
	struct rd_io_opts io_opts = { .no_direct = o.no_direct };
	struct rd_io *io = NULL;
	struct rd_geometry g;
	struct rd_sb *sb = NULL;
	struct timespec now;
	uint64_t nbuckets, jbuckets, jbytes, head;
	struct stat st;
	int fd, ret;

	if (sodium_init() < 0) {
		WHY("libsodium failed to initialise");
		return -EIO;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		WHY("cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);

		st.st_size = end < 0 ? 0 : end;
	}
	ret = format_check(&o, (uint64_t)st.st_size, why, why_len);
	if (ret)
		goto out_fd;
	if (st.st_size && !o.force && existing_image(path, o.no_direct)) {
		WHY("%s already holds a refdio image (use force to overwrite)", path);
		ret = -RD_ERR_IMAGE_EXISTS;
		goto out_fd;
	}

	nbuckets = o.size / o.bucket_size;
	jbytes = o.journal_size ? o.journal_size : o.size / 32;
	if (!o.journal_size) {
		if (jbytes < 4ull * o.bucket_size)
			jbytes = 4ull * o.bucket_size;
		if (jbytes > (1ull << 30))
			jbytes = 1ull << 30;
	}
	jbuckets = (jbytes + o.bucket_size - 1) / o.bucket_size;
	if (jbuckets < 4)
		jbuckets = 4;
	/* bucket 0 (sb), the journal, 8 allocatable buckets, the backup sb's bucket */
	if (nbuckets < 1 + jbuckets + 8 + 1) {
		WHY("image of %llu bytes is too small: it needs %llu buckets of %u bytes (superblock, "
		    "%llu journal, 8 allocatable, backup)", (unsigned long long)o.size,
		    (unsigned long long)(jbuckets + 10), o.bucket_size,
		    (unsigned long long)jbuckets);
		ret = -EINVAL;
		goto out_fd;
	}
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != nbuckets * o.bucket_size &&
	    ftruncate(fd, (off_t)(nbuckets * o.bucket_size))) {
		ret = -errno;
		WHY("cannot size %s: %s", path, strerror(errno));
		goto out_fd;
	}
	close(fd);
	fd = -1;

	sb = rd_io_buf_alloc(RD_SB_SIZE);
	if (!sb) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(sb->magic, RD_SB_MAGIC, sizeof(sb->magic));
	sb->version = rd_le16_of(RD_FORMAT_VERSION);
	sb->version_min = rd_le16_of(RD_FORMAT_VERSION_MIN);
	randombytes_buf(sb->uuid, sizeof(sb->uuid));
	randombytes_buf(sb->hash_secret, sizeof(sb->hash_secret));
	if (o.label)
		memcpy(sb->label, o.label, strlen(o.label));
	sb->dev_size = rd_le64_of(nbuckets * o.bucket_size);
	clock_gettime(CLOCK_REALTIME, &now);
	sb->time_created = rd_le64_of((uint64_t)now.tv_sec * 1000000000ull +
				      (uint64_t)now.tv_nsec);
	sb->block_size = rd_le32_of(o.block_size);
	sb->bucket_size = rd_le32_of(o.bucket_size);
	sb->btree_node_size = rd_le32_of(o.btree_node_size);
	sb->encoded_extent_max = rd_le32_of(o.encoded_extent_max);
	sb->data_csum = (uint8_t)o.data_csum;
	sb->meta_csum = (uint8_t)o.meta_csum;
	sb->str_hash = RD_STR_HASH_SIPHASH24;
	sb->nbuckets = rd_le64_of(nbuckets);
	sb->journal_start = rd_le64_of(1);
	sb->journal_buckets = rd_le64_of(jbuckets);
	sb->first_bucket = rd_le64_of(1 + jbuckets);
	for (unsigned i = 0; i < RD_BTREE_ID_MAX; i++)
		sb->roots[i].btree_id = (uint8_t)i;
	rd_sb_geometry(sb, &g);

	ret = rd_io_open(path, &io_opts, &io);
	if (ret) {
		WHY("cannot open %s: %s", path, rd_strerror(ret));
		goto out;
	}
	/* The new uuid changes the journal magic: entries of an older image in the ring can
	 * never validate. The first entry is a checkpoint of empty trees, seq 1. */
	ret = rd_journal_format(io, &g, 1, &head);
	if (ret) {
		WHY("writing the journal: %s", rd_strerror(ret));
		goto out;
	}
	sb->flags = rd_le32_of(RD_SB_CLEAN);
	sb->journal_seq = rd_le64_of(1);
	sb->journal_head = rd_le64_of(head);
	sb->csum = rd_le32_of(rd_sb_csum(sb));
	ret = rd_sb_validate(sb, rd_io_size(io), why, why_len);
	if (!ret)
		ret = rd_sb_write(io, sb);
	if (ret)
		WHY("writing the superblock: %s", rd_strerror(ret));
out:
	if (io)
		rd_io_close(io);
	rd_io_buf_free(sb);
	return ret;
out_fd:
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ---- open ---------------------------------------------------------------------------- */

struct replay_ctx {
	struct rd_store	*s;
	uint64_t	n;
};

static int replay_apply(void *priv, uint64_t seq, const struct rd_jrec *rec,
			const void *payload, size_t len)
{
	struct replay_ctx *rc = priv;
	struct rd_store *s = rc->s;
	int ret = 0;

	(void)seq;
	/* Sizes were checked by the journal scan; the copies below stay within len. */
	switch (rec->type) {
	case RD_JREC_ROOT: {
		struct rd_btree_root_disk r;

		assert(len >= sizeof(r));

		memcpy(&r, payload, sizeof(r));
		rd_btree_set_root(s, rec->btree_id, &r);
		break;
	}
	case RD_JREC_KEY: {
		struct rd_bkey_disk d;
		struct rd_bkey *k;

		assert(len >= sizeof(d) && rec->btree_id < RD_BTREE_NR);

		memcpy(&d, payload, sizeof(d));
		k = rd_bkey_new(rd_bpos_from_disk(d.pos), d.type,
				(const uint8_t *)payload + sizeof(d), len - sizeof(d));
		if (!k)
			return -ENOMEM;
		ret = rd_btree_insert_locked(s, rec->btree_id, k);
		break;
	}
	case RD_JREC_DELETE: {
		struct rd_bpos_disk d;

		assert(len >= sizeof(d) && rec->btree_id < RD_BTREE_NR);

		memcpy(&d, payload, sizeof(d));
		ret = rd_btree_delete_locked(s, rec->btree_id, rd_bpos_from_disk(d));
		break;
	}
	default:
		break;
	}
	/* Keep the cache bounded on long replays: only clean nodes go. */
	if (!(++rc->n % 1024))
		rd_btree_cache_shrink(s);
	return ret;
}

static int roots_from_sb(struct rd_store *s, char *why, size_t why_len)
{
	for (unsigned id = 0; id < RD_BTREE_NR; id++) {
		const struct rd_btree_root_disk *r = &s->sb.roots[id];

		if (r->level >= RD_BTREE_MAX_DEPTH) {
			WHY("superblock root of the %s tree has level %u", rd_btree_name(id),
			    r->level);
			return -RD_ERR_SB_INVALID;
		}
		rd_btree_set_root(s, id, r);
	}
	return 0;
}

static void store_free(struct rd_store *s, bool alloc_up)
{
	if (s->journal)
		rd_journal_stop(s, true);
	if (alloc_up)
		rd_alloc_exit(s);
	rd_journal_free(s);
	rd_btree_state_free(s);
	if (s->io)
		rd_io_close(s->io);
	pthread_mutex_destroy(&s->index_lock);
	free(s);
}

int rd_store_open(const char *path, const struct rd_open_opts *o, struct rd_store **out,
		  char *why, size_t why_len)
{
	struct rd_io_opts io_opts = { .read_only = o->read_only, .no_direct = o->no_direct,
				      .hooks = o->io_hooks };
	struct rd_sb_report sbrep;
	struct rd_store *s;
	bool alloc_up = false;
	int ret;

	*out = NULL;
	if (why && why_len)
		why[0] = 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->index_lock, NULL);
	s->read_only = o->read_only;
	s->test_no_preflush = o->test_no_preflush;

	ret = rd_io_open(path, &io_opts, &s->io);
	if (ret) {
		WHY("cannot open %s: %s", path, rd_strerror(ret));
		goto err;
	}
	ret = rd_sb_read(s->io, &s->sb, &sbrep, why, why_len);
	if (ret)
		goto err;
	rd_sb_geometry(&s->sb, &s->geo);
	ret = rd_btree_state_init(s, o->cache_bytes);
	if (!ret)
		ret = rd_journal_init(s);
	if (ret)
		goto err;

	s->was_clean = rd_le32_get(s->sb.flags) & RD_SB_CLEAN;
	if (s->was_clean) {
		ret = roots_from_sb(s, why, why_len);
		if (ret)
			goto err;
		rd_journal_resume(s, rd_le64_get(s->sb.journal_seq),
				  rd_le64_get(s->sb.journal_head));
	} else {
		struct replay_ctx rc = { .s = s };

		pthread_mutex_lock(&s->index_lock);
		s->btree->replaying = true;
		ret = rd_journal_replay(s, replay_apply, &rc, &s->replayed_entries,
					&s->replayed_records, why, why_len);
		s->btree->replaying = false;
		pthread_mutex_unlock(&s->index_lock);
		if (ret)
			goto err;
		/* A power cut during a superblock update (the backup is written and flushed
		 * before the primary) leaves one copy torn or one seq behind: the copy in force
		 * is whole, so write both again. (A clean image rewrites both below anyway.) */
		if (!s->read_only && (sbrep.primary || sbrep.backup ||
				      sbrep.primary_seq != sbrep.backup_seq)) {
			ret = rd_sb_write(s->io, &s->sb);
			if (ret) {
				WHY("rewriting the superblock copies: %s", rd_strerror(ret));
				goto err;
			}
		}
	}

	if (!s->read_only) {
		ret = rd_journal_start(s);
		if (ret)
			goto err;
	}
	if (!s->read_only && s->was_clean) {
		/* Nothing dirty: this writes only a checkpoint entry naming the sb's roots, so
		 * that the journal has a live checkpoint before the sb stops being clean. */
		pthread_mutex_lock(&s->index_lock);
		ret = rd_btree_checkpoint_locked(s);
		pthread_mutex_unlock(&s->index_lock);
		if (!ret) {
			s->sb.flags = rd_le32_of(rd_le32_get(s->sb.flags) & ~RD_SB_CLEAN);
			ret = rd_sb_write(s->io, &s->sb);
		}
		if (ret) {
			WHY("marking the superblock in use: %s", rd_strerror(ret));
			goto err;
		}
	}

	ret = rd_alloc_init(s);
	if (ret) {
		WHY("building the allocator: %s", rd_strerror(ret));
		goto err;
	}
	alloc_up = true;

	*out = s;
	return 0;
err:
	store_free(s, alloc_up);
	return ret;
}

/* ---- close, crash, flush ------------------------------------------------------------- */

int rd_store_close(struct rd_store *s)
{
	struct rd_btree_state *b = s->btree;
	bool clean = false;
	int ret = 0;

	if (!s->read_only) {
		pthread_mutex_lock(&s->index_lock);
		/* A checkpoint can dirty alloc nodes again (its own reservation): repeat until
		 * nothing is left, within bounds; otherwise replay will do at the next open. */
		for (unsigned round = 0; round < CLOSE_ROUNDS; round++) {
			ret = rd_btree_checkpoint_locked(s);
			if (ret)
				break;
			if (!b->nodes_dirty && !b->nr_pending_free) {
				clean = true;
				break;
			}
		}
		pthread_mutex_unlock(&s->index_lock);
		if (!ret && !clean)
			fprintf(stderr, "refdio: close: checkpoints did not converge; the next open "
				"replays the journal\n");
		if (clean)
			ret = rd_journal_flush_all(s->journal);
		rd_journal_stop(s, false);
		if (clean && !ret)
			ret = rd_journal_error(s->journal);
		if (clean && !ret) {
			uint64_t seq, head;

			rd_journal_position(s->journal, &seq, &head);
			for (unsigned id = 0; id < RD_BTREE_NR; id++)
				rd_btree_get_root(s, id, &s->sb.roots[id]);
			s->sb.journal_seq = rd_le64_of(seq);
			s->sb.journal_head = rd_le64_of(head);
			assert(!s->read_only && !b->nodes_dirty);	/* all checkpointed */
			s->sb.flags = rd_le32_of(rd_le32_get(s->sb.flags) | RD_SB_CLEAN);
			ret = rd_sb_write(s->io, &s->sb);
		}
	}
	store_free(s, true);
	return ret;
}

void rd_store_crash(struct rd_store *s)
{
	/* The flusher finishes the write it is in (if any) and writes nothing more; then
	 * everything in memory goes. rd_io_close waits for in-flight requests. */
	rd_journal_stop(s, true);
	store_free(s, true);
}

int rd_store_flush(struct rd_store *s, uint64_t seq)
{
	return rd_journal_flush(s->journal, seq);
}

void rd_store_flush_async(struct rd_store *s, uint64_t seq,
			  void (*done)(void *priv, int err), void *priv)
{
	rd_journal_flush_async(s->journal, seq, done, priv);
}

uint64_t rd_store_journal_seq(struct rd_store *s)
{
	return rd_journal_seq(s->journal);
}

uint64_t rd_store_durable_seq(struct rd_store *s)
{
	return rd_journal_durable_seq(s->journal);
}
