/*
 * refdio/image.h - a refdio image as a whole: format, probe, open, flush, close, inspect.
 *
 * Part of the engine's public face (refdio.h). struct rd_store is opaque here: everything
 * a tool may learn about an open image comes through rd_store_info, rd_store_space and the
 * listing calls below, never through the store's fields.
 */
#ifndef REFDIO_IMAGE_H
#define REFDIO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rd_store;
struct rd_io_hooks;

/* ---- memory for I/O ------------------------------------------------------------------ */

/* Memory aligned for O_DIRECT (4096), zero-filled. NULL on failure. */
void *rd_io_buf_alloc(size_t len);
void rd_io_buf_free(void *buf);

/* ---- checksum types ------------------------------------------------------------------ */

/* "crc32c", "xxhash", "none"; NULL for an unknown type. */
const char *rd_csum_name(unsigned type);
/* Inverse of rd_csum_name: the type, or -EINVAL. */
int rd_csum_parse(const char *name);

/* ---- format, probe, open, close ------------------------------------------------------ */

struct rd_format_opts {
	uint64_t	size;			/* bytes; 0 = the existing file's size */
	uint32_t	block_size;		/* 0 = 4096 */
	uint32_t	bucket_size;		/* 0 = 1 MiB */
	uint32_t	btree_node_size;	/* 0 = 256 KiB */
	uint32_t	encoded_extent_max;	/* 0 = 256 KiB */
	uint64_t	journal_size;		/* 0 = size/32 within [4 buckets, 1 GiB] */
	int		data_csum;		/* rd_csum_parse's value; -1 = crc32c */
	int		meta_csum;		/* rd_csum_parse's value; -1 = crc32c */
	const char	*label;
	bool		force;			/* overwrite an existing refdio image */
	bool		no_direct;		/* open without O_DIRECT (tmpfs, tools) */
};

/* Creates (sparse) or reuses path and writes an empty filesystem: superblocks, an empty
 * journal checkpoint, empty trees. -RD_ERR_IMAGE_EXISTS without force if path already
 * holds a refdio image. why gets a message on bad options. */
int rd_store_format(const char *path, const struct rd_format_opts *o, char *why,
		    size_t why_len);

/* What reading the two superblock copies found (fsck reports all of it). */
struct rd_sb_report {
	int primary;		/* 0 valid, else the error that copy had */
	int backup;
	uint64_t primary_seq;
	uint64_t backup_seq;
	bool used_backup;	/* the backup was newer or the primary was bad */
};

/* Reads both superblock copies of the image at path, writing nothing: 0 when one is
 * usable (rep says what each was), else the error (-RD_ERR_NOT_REFDIO, ...), why says it. */
int rd_image_probe(const char *path, struct rd_sb_report *rep, char *why, size_t why_len);

struct rd_open_opts {
	bool		read_only;	/* no writes at all: replay is done in memory only */
	bool		no_direct;
	uint64_t	cache_bytes;	/* node cache bound; 0 = 64 MiB */
	/* Tests only. io_hooks: see rd_io_hooks (the power-cut model, write-order checks);
	 * test_no_preflush: the journal writes entries without flushing the data they name
	 * first, the bug the write-order and power-cut tests must catch (negative controls). */
	const struct rd_io_hooks *io_hooks;
	bool		test_no_preflush;
};

/* Opens an image: reads the superblock, replays the journal unless it was closed cleanly,
 * builds the allocator. why gets a message naming the problem on failure. */
int rd_store_open(const char *path, const struct rd_open_opts *o, struct rd_store **out,
		  char *why, size_t why_len);

/* Checkpoints, writes the superblock with the roots and RD_SB_CLEAN, frees everything.
 * Returns the first error met; the store is freed in all cases. */
int rd_store_close(struct rd_store *s);

/* Test hook: a crash of the process: everything in memory is dropped and nothing more is
 * written after this call starts, but every write already issued reaches the image. A
 * power cut, where the device also loses what it had not flushed, is rd_io_model's job
 * (engine/core/io_model.h) on top of this. */
void rd_store_crash(struct rd_store *s);

/* Makes every transaction committed up to seq durable (0 = everything so far): the journal
 * is written and the device flushed. */
int rd_store_flush(struct rd_store *s, uint64_t seq);

/* Like rd_store_flush, but returns at once; done(priv, err) runs on another thread once
 * seq is durable. */
void rd_store_flush_async(struct rd_store *s, uint64_t seq,
			  void (*done)(void *priv, int err), void *priv);

/* The seq a transaction committed now would get, and the highest durable seq. */
uint64_t rd_store_journal_seq(struct rd_store *s);
uint64_t rd_store_durable_seq(struct rd_store *s);

/* ---- what an open image holds --------------------------------------------------------- */

#define RD_TREES	5	/* b-trees: inodes, dirents, xattrs, extents, alloc */
#define RD_LABEL_LEN	32	/* label bytes in the superblock (not NUL-terminated there) */

/* The superblock and geometry, in host form. */
struct rd_store_info {
	uint8_t		uuid[16];
	char		label[RD_LABEL_LEN + 1];	/* NUL-terminated */
	unsigned	version;		/* format version that wrote the superblock */
	uint64_t	sb_seq;
	uint64_t	created_ns;		/* since the epoch */
	bool		was_clean;		/* opened from a clean close (no replay) */
	uint64_t	replayed_entries;	/* journal entries replayed at open */
	uint64_t	dev_size;
	uint32_t	block_size, bucket_size, btree_node_size, encoded_extent_max;
	uint64_t	nbuckets, journal_start, journal_buckets;
	unsigned	data_csum, meta_csum;	/* rd_csum_name() */
	uint64_t	journal_seq;		/* the next transaction's seq */
	unsigned	tree_depth[RD_TREES];	/* 0: empty tree */
};
void rd_store_info(struct rd_store *s, struct rd_store_info *out);

/* How the space is used. */
struct rd_space {
	uint64_t total_bytes;		/* the device */
	uint64_t usable_bytes;		/* allocatable buckets */
	uint64_t user_bytes;		/* live user data */
	uint64_t btree_bytes;		/* live b-tree nodes */
	uint64_t journal_bytes;
	uint64_t free_bytes;		/* in buckets that hold nothing (incl. pending reuse) */
	uint64_t available_bytes;	/* what new writes may still reserve */
	uint64_t reserved_bytes;	/* reserved by writes in progress */
	uint64_t buckets_free;
	uint64_t buckets_pending;	/* empty, waiting for a journal flush before reuse */
	uint64_t buckets_user, buckets_btree;
	/* What copying GC can win back: bytes of buckets holding user data that no live
	 * extent uses, in buckets_partly_dead buckets (partly dead, nobody writing them). */
	uint64_t dead_bytes;
	uint64_t buckets_partly_dead;
	uint64_t buckets_gc_reserve;	/* empty buckets kept for the mover (0: GC off) */
};
void rd_alloc_space(struct rd_store *s, struct rd_space *sp);

/* ---- listing the b-trees -------------------------------------------------------------- */

/* "inodes", "dirents", "xattrs", "extents", "alloc" (tree 0..RD_TREES-1); NULL if out of
 * range. parse: the tree, or -EINVAL. */
const char *rd_btree_name(unsigned id);
int rd_btree_parse(const char *name);

/* ---- keys in words ---------------------------------------------------------------------- */

/* How a decoded field reads: a number, a number better read in hex (offsets on the device,
 * checksums), in octal (modes), a word ("crc32c", "user"), or a name from the image
 * (quoted in text; unprintable bytes as '?'). */
enum rd_key_field_kind {
	RD_FIELD_U64,
	RD_FIELD_HEX,
	RD_FIELD_OCT,
	RD_FIELD_WORD,
	RD_FIELD_NAME,
};

struct rd_key_field {
	const char	*name;			/* "dev_offset", "csum", "gen", ... */
	enum rd_key_field_kind kind;
	uint64_t	u;			/* U64, HEX, OCT */
	const char	*s;			/* WORD, NAME: in the description's own storage */
};

#define RD_KEY_FIELDS_MAX	20

/* One key's value decoded by its tree and type (the decoders of engine/core/bkey_text.c,
 * which `refdio list`, fsck's messages and the fuzzers share). */
struct rd_key_desc {
	const char	*type_name;		/* "extent", "alloc", "inode", "dirent", ... */
	const char	*problem;		/* NULL, or why the value does not decode (then
						 * the fields hold its bytes: "bytes", "len") */
	unsigned	nr_fields;
	struct rd_key_field f[RD_KEY_FIELDS_MAX];
	char		strs[384];		/* storage of the WORD and NAME fields */
	size_t		strs_used;
};

/* Decodes the value of a key of tree id (rd_btree_name) at position inode:offset:snapshot
 * with key type type. Never reads past len bytes of val. */
void rd_key_describe(unsigned id, uint64_t inode, uint64_t offset, uint32_t snapshot,
		     unsigned type, const void *val, size_t len, struct rd_key_desc *out);
/* The description as one line: "TYPE: name value, name value ..." (bcachefs list's style). */
void rd_key_desc_to_text(const struct rd_key_desc *d, char *buf, size_t len);

/* One key, as rd_store_list_keys hands it over (valid during the call only). */
struct rd_list_key {
	uint64_t	inode, offset;		/* the key's position */
	uint32_t	snapshot;
	unsigned	type;			/* per-tree key type */
	const void	*val;			/* the value, on-disk bytes */
	size_t		val_len;
	const char	*text;			/* the value decoded, one line (engine's words) */
	const struct rd_key_desc *desc;		/* the same, field by field */
};

/* Every key of tree id in key order. fn returns nonzero to stop (that value is returned). */
int rd_store_list_keys(struct rd_store *s, unsigned id,
		       int (*fn)(void *priv, const struct rd_list_key *k), void *priv);

/* One node, as rd_store_list_nodes hands it over (valid during the call only). */
struct rd_list_node {
	unsigned	level;			/* 0: a leaf */
	uint64_t	offset;			/* on the device; 0: not written yet */
	uint32_t	gen;			/* the generation its pointer carries */
	uint64_t	seq;
	uint32_t	nr_keys;
	uint32_t	bytes;
	uint64_t	min_inode, min_offset;	/* the range of positions it covers */
	uint32_t	min_snapshot;
	uint64_t	max_inode, max_offset;
	uint32_t	max_snapshot;
	int		error;			/* 0, or why reading/validating it failed (its
						 * subtree is skipped, the walk goes on) */
};

/* Every node of tree id, parents before children, in key order. fn as above; else the
 * first error the walk met (a node with error set is reported to fn too). */
int rd_store_list_nodes(struct rd_store *s, unsigned id,
			int (*fn)(void *priv, const struct rd_list_node *n), void *priv);

#endif
