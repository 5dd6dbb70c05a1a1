/*
 * format.h - the one and only description of refdio's on-disk layout.
 *
 * Owns: every on-disk struct, magic number and format constant. Nothing else in the tree
 * defines an on-disk layout; code that reads or writes the image converts through the
 * rd_le* helpers below, so every field is little-endian with an explicit size whatever the
 * host. Each struct carries a static assert on its size: changing one is a format change and
 * must bump RD_FORMAT_VERSION (and docs/format.md).
 *
 * Must never: contain in-memory-only state, pointers, or host-endian fields.
 */
#ifndef RD_FORMAT_H
#define RD_FORMAT_H

#include <assert.h>
#include <endian.h>
#include <stddef.h>
#include <stdint.h>

/* ---- explicit little-endian fields --------------------------------------------------- */

/* Distinct struct types so that a host-endian integer cannot be stored by mistake. */
typedef struct { uint16_t v; } rd_le16;
typedef struct { uint32_t v; } rd_le32;
typedef struct { uint64_t v; } rd_le64;

static inline uint16_t rd_le16_get(rd_le16 x) { return le16toh(x.v); }
static inline uint32_t rd_le32_get(rd_le32 x) { return le32toh(x.v); }
static inline uint64_t rd_le64_get(rd_le64 x) { return le64toh(x.v); }
static inline rd_le16 rd_le16_of(uint16_t x) { return (rd_le16){ htole16(x) }; }
static inline rd_le32 rd_le32_of(uint32_t x) { return (rd_le32){ htole32(x) }; }
static inline rd_le64 rd_le64_of(uint64_t x) { return (rd_le64){ htole64(x) }; }

#define RD_FORMAT_VERSION	1	/* bumped on every incompatible layout change */
#define RD_FORMAT_VERSION_MIN	1	/* oldest version this code still reads */

#define RD_SECTOR_SHIFT		9	/* alloc counts are kept in 512-byte sectors */
#define RD_SECTOR_SIZE		(1u << RD_SECTOR_SHIFT)

/* ---- checksum and hash types --------------------------------------------------------- */

enum rd_csum_type {
	RD_CSUM_NONE	= 0,	/* data only: metadata is always checksummed */
	RD_CSUM_CRC32C	= 1,	/* Castagnoli, seed ~0, final xor ~0 (as iSCSI/ext4) */
	RD_CSUM_XXHASH	= 2,	/* XXH3-64 with seed 0 */
	RD_CSUM_NR
};

enum rd_str_hash_type {
	RD_STR_HASH_SIPHASH24 = 1,	/* SipHash-2-4 keyed by rd_sb.hash_secret */
};

/* ---- positions (keys) ---------------------------------------------------------------- */

/*
 * A key position. Compared as one wide integer: inode, then offset, then snapshot.
 * Extents are keyed by their END offset (start = end - size), so a lookup for the extent
 * covering byte x searches for the first key > x.
 */
struct rd_bpos_disk {
	rd_le64 inode;
	rd_le64 offset;
	rd_le32 snapshot;
} __attribute__((packed));
static_assert(sizeof(struct rd_bpos_disk) == 20, "bpos is 20 bytes");

/* ---- superblock ----------------------------------------------------------------------- */

/*
 * Device layout (all offsets in bytes, every region block aligned):
 *
 *   bucket 0                : [0, 4096) unused, [RD_SB_OFFSET, +RD_SB_SIZE) primary sb;
 *                             the rest of bucket 0 is never allocated.
 *   buckets [journal_start, journal_start + journal_buckets)
 *                           : the journal ring.
 *   buckets [first_bucket, nbuckets - 1)
 *                           : b-tree nodes and data, handed out by the allocator.
 *   bucket nbuckets - 1     : never allocated; its last RD_SB_SIZE bytes, ending at
 *                             dev_size, hold the backup superblock.
 *
 * Both copies are written with the same contents; on open the copy with a valid checksum
 * and the highest seq wins.
 */
#define RD_SB_OFFSET		4096u
#define RD_SB_SIZE		4096u
#define RD_SB_MAGIC		"RDIO\xd1\x05SB"	/* 8 bytes */
#define RD_LABEL_MAX		32
#define RD_BTREE_ID_MAX		8	/* room in the sb for this many b-tree roots */

/* rd_sb.flags */
#define RD_SB_CLEAN		(1u << 0)	/* closed cleanly: roots[] valid, skip replay */

/* rd_sb.features: a bit this code does not know makes open refuse the image. */
#define RD_FEATURES_KNOWN	0ull

/* A pointer to a b-tree node. */
struct rd_btree_ptr {
	rd_le64 offset;		/* byte offset of the node on the device */
	rd_le64 seq;		/* must equal the node header's seq: catches stale reads */
	rd_le32 gen;		/* bucket generation when written: stale pointer if different */
	rd_le32 reserved;
} __attribute__((packed));
static_assert(sizeof(struct rd_btree_ptr) == 24, "btree ptr is 24 bytes");

struct rd_btree_root_disk {
	struct rd_btree_ptr ptr;	/* offset 0 = empty tree (no node yet) */
	uint8_t level;			/* 0 = the root is a leaf */
	uint8_t btree_id;
	uint8_t reserved[6];
} __attribute__((packed));
static_assert(sizeof(struct rd_btree_root_disk) == 32, "btree root is 32 bytes");

struct rd_sb {
	rd_le32 csum;			/* crc32c of bytes [4, RD_SB_SIZE) */
	rd_le32 reserved0;
	uint8_t magic[8];		/* RD_SB_MAGIC */
	rd_le16 version;		/* RD_FORMAT_VERSION that wrote it */
	rd_le16 version_min;		/* oldest reader that may open it */
	rd_le32 flags;			/* RD_SB_* */
	uint8_t uuid[16];
	uint8_t label[RD_LABEL_MAX];	/* NUL padded, not necessarily terminated */
	rd_le64 seq;			/* bumped on every superblock write */
	rd_le64 features;
	rd_le64 dev_size;		/* bytes, a multiple of bucket_size */
	rd_le64 time_created;		/* ns since the epoch */
	rd_le32 block_size;		/* bytes, power of two, 512..65536 */
	rd_le32 bucket_size;		/* bytes, power of two, >= 16 blocks */
	rd_le32 btree_node_size;	/* bytes, power of two, block_size..bucket_size */
	rd_le32 encoded_extent_max;	/* bytes: largest checksummed extent */
	uint8_t data_csum;		/* enum rd_csum_type for user data */
	uint8_t meta_csum;		/* enum rd_csum_type for nodes and journal, never NONE */
	uint8_t str_hash;		/* enum rd_str_hash_type */
	uint8_t encryption;		/* 0: none (no other value defined yet) */
	rd_le32 reserved1;
	rd_le64 nbuckets;
	rd_le64 journal_start;		/* first journal bucket */
	rd_le64 journal_buckets;
	rd_le64 first_bucket;		/* first bucket the allocator may hand out */
	uint8_t hash_secret[16];	/* SipHash key for directory entries */
	/* Valid only while RD_SB_CLEAN is set: */
	rd_le64 journal_seq;		/* seq of the last journal entry written */
	rd_le64 journal_head;		/* byte offset in the journal ring of the next entry */
	rd_le64 inode_seq;		/* (issue 3) next inode number hint */
	struct rd_btree_root_disk roots[RD_BTREE_ID_MAX];
	uint8_t reserved2[RD_SB_SIZE - 456];
} __attribute__((packed));
static_assert(sizeof(struct rd_sb) == RD_SB_SIZE, "superblock is exactly RD_SB_SIZE");

/* ---- b-trees -------------------------------------------------------------------------- */

enum rd_btree_id {
	RD_BTREE_EXTENTS	= 0,
	RD_BTREE_INODES		= 1,
	RD_BTREE_DIRENTS	= 2,
	RD_BTREE_XATTRS		= 3,
	RD_BTREE_ALLOC		= 4,
	RD_BTREE_NR
};
static_assert(RD_BTREE_NR <= RD_BTREE_ID_MAX, "roots fit in the superblock");

#define RD_BTREE_NODE_MAGIC	0x31454e4f44445252ull	/* "RRDDONE1", xor'd with uuid */

/*
 * A b-tree node as written: this header, then nr_keys packed keys in strictly increasing
 * position order, each an rd_bkey_disk followed by its value padded to 8 bytes. Nodes are
 * copy-on-write: a node is written once to fresh space and never modified in place.
 * Interior nodes (level > 0) hold one key per child: position = the child's max_key,
 * value = struct rd_btree_ptr. The last child of a node has max_key = the node's max_key.
 */
struct rd_btree_node {
	rd_le32 csum;			/* meta_csum of bytes [8, bytes) */
	uint8_t csum_type;
	uint8_t btree_id;
	uint8_t level;
	uint8_t reserved0;
	rd_le64 magic;			/* RD_BTREE_NODE_MAGIC ^ first 8 bytes of uuid */
	rd_le16 version;
	rd_le16 reserved1;
	rd_le32 nr_keys;
	rd_le32 bytes;			/* header + keys, <= btree_node_size */
	rd_le32 reserved2;
	rd_le64 seq;			/* unique per node write; matches rd_btree_ptr.seq */
	rd_le64 journal_seq;		/* journal seq of the checkpoint that wrote it */
	struct rd_bpos_disk min_key;
	struct rd_bpos_disk max_key;
	uint8_t reserved3[40];
} __attribute__((packed));
static_assert(sizeof(struct rd_btree_node) == 128, "node header is 128 bytes");

struct rd_bkey_disk {
	struct rd_bpos_disk pos;
	uint8_t type;			/* per-tree key type; 0 is never stored */
	uint8_t reserved;
	rd_le16 val_len;		/* bytes of value that follow (then padding to 8) */
} __attribute__((packed));
static_assert(sizeof(struct rd_bkey_disk) == 24, "bkey header is 24 bytes");

/* Largest value in a node of node_size bytes: a key then takes at most a quarter of the
 * node's payload, so splitting at the byte midpoint always leaves both halves in bounds. */
static inline size_t rd_btree_max_val_for(uint32_t node_size)
{
	size_t v = (((size_t)node_size - sizeof(struct rd_btree_node)) / 4 -
		    sizeof(struct rd_bkey_disk)) & ~(size_t)7;

	return v < (UINT16_MAX & ~7u) ? v : (UINT16_MAX & ~7u);	/* val_len is 16 bits */
}

/* Deepest tree accepted from disk: far beyond what any image reaches (a 4 KiB node holds at
 * least 82 children), small enough to bound recursion. */
#define RD_BTREE_MAX_DEPTH	32

/* Key type of interior-node keys. */
#define RD_KEY_BTREE_PTR	1

/* ---- journal -------------------------------------------------------------------------- */

#define RD_JSET_MAGIC		0x3154455344445252ull	/* "RRDDSET1", xor'd with uuid */

/* rd_jset.flags */
#define RD_JSET_CHECKPOINT	(1u << 0)	/* holds roots for every tree; replay starts here */

/*
 * A journal entry. Entries are written one at a time, in seq order, each starting on a
 * block boundary of the journal ring and never wrapping around its end. Every entry names
 * last_seq, the oldest entry still needed for replay: always a checkpoint entry.
 */
struct rd_jset {
	rd_le32 csum;			/* meta_csum of bytes [8, bytes) */
	uint8_t csum_type;
	uint8_t reserved0[3];
	rd_le64 magic;			/* RD_JSET_MAGIC ^ first 8 bytes of uuid */
	rd_le16 version;
	rd_le16 flags;			/* RD_JSET_* */
	rd_le32 bytes;			/* header + records; the entry occupies it rounded to a block */
	rd_le64 seq;
	rd_le64 last_seq;		/* oldest entry replay needs (a checkpoint) */
	rd_le32 nr_records;
	rd_le32 reserved1;
	uint8_t reserved2[16];
} __attribute__((packed));
static_assert(sizeof(struct rd_jset) == 64, "jset header is 64 bytes");

enum rd_jrec_type {
	RD_JREC_KEY	= 1,	/* payload: rd_bkey_disk + value: insert or overwrite */
	RD_JREC_DELETE	= 2,	/* payload: rd_bpos_disk: remove the key if present */
	RD_JREC_ROOT	= 3,	/* payload: rd_btree_root_disk (in checkpoint entries) */
	RD_JREC_TXN	= 4,	/* payload: none; starts the records of one transaction */
};

/* One record of a journal entry; records are padded to 8 bytes. */
struct rd_jrec {
	uint8_t type;		/* enum rd_jrec_type */
	uint8_t btree_id;
	uint8_t reserved[2];
	rd_le32 bytes;		/* header + payload, before padding */
} __attribute__((packed));
static_assert(sizeof(struct rd_jrec) == 8, "jrec header is 8 bytes");

/* ---- alloc b-tree --------------------------------------------------------------------- */

enum rd_data_type {
	RD_DATA_FREE	= 0,
	RD_DATA_SB	= 1,
	RD_DATA_JOURNAL	= 2,
	RD_DATA_BTREE	= 3,
	RD_DATA_USER	= 4,
};

#define RD_KEY_ALLOC		1

/*
 * Value of an alloc key at position {inode 0, offset = bucket index, snapshot 0}.
 * dirty_sectors counts live user-data sectors only; b-tree node space is derived at open
 * by walking the trees' interior nodes (it changes on every checkpoint, and persisting it
 * would make each checkpoint dirty the alloc tree again).
 */
struct rd_alloc_v {
	rd_le32 gen;		/* bumped each time the bucket is reused */
	uint8_t data_type;	/* enum rd_data_type of what it last held */
	uint8_t reserved[3];
	rd_le32 dirty_sectors;
	rd_le32 reserved1;
} __attribute__((packed));
static_assert(sizeof(struct rd_alloc_v) == 16, "alloc value is 16 bytes");

/* ---- inodes b-tree -------------------------------------------------------------------- */

#define RD_ROOT_INO		1	/* the root directory (FUSE_ROOT_ID) */
#define RD_LOST_FOUND_NAME	"lost+found"
#define RD_FIRST_FREE_INO	16	/* numbers below are reserved */

#define RD_KEY_INODE		1	/* at {inum, 0, 0}: struct rd_inode_v */
#define RD_KEY_INODE_ALLOC	2	/* at {0, 0, 0}: struct rd_inode_alloc_v */
#define RD_KEY_ORPHAN		3	/* at {0, inum, 0}, no value: inode with nlink 0 */
#define RD_KEY_SYMLINK		4	/* at {inum, 1 + i, 0}: chunk i of a symlink target */

/* rd_inode_v.flags */
#define RD_INODE_ORPHAN		(1u << 0)	/* nlink 0 but still open: delete at last close */

/*
 * An inode, keyed by {inode number, 0, 0}. Inode numbers are never reused, so
 * (number, generation) names one file for the life of the filesystem.
 */
struct rd_inode_v {
	rd_le32 mode;		/* S_IFMT bits and permissions */
	rd_le32 uid;
	rd_le32 gid;
	rd_le32 nlink;
	rd_le64 size;		/* i_size in bytes */
	rd_le64 sectors;	/* 512-byte sectors of live extents (st_blocks) */
	rd_le64 atime_ns;	/* signed ns since the epoch, stored two's complement */
	rd_le64 mtime_ns;
	rd_le64 ctime_ns;
	rd_le64 btime_ns;	/* creation */
	rd_le64 rdev;		/* devices: makedev() value */
	rd_le32 generation;
	rd_le32 flags;		/* RD_INODE_* */
	rd_le64 parent;		/* directories: the parent's number (".."; the root's is
				 * itself); 0 for other types, which may have many links */
	rd_le64 reserved;
} __attribute__((packed));
static_assert(sizeof(struct rd_inode_v) == 96, "inode value is 96 bytes");

/* The next inode number to hand out, persisted in batches: after a crash numbering resumes
 * at next_ino, skipping numbers that were reserved in memory but never used. */
struct rd_inode_alloc_v {
	rd_le64 next_ino;
	rd_le64 reserved;
} __attribute__((packed));
static_assert(sizeof(struct rd_inode_alloc_v) == 16, "inode alloc value is 16 bytes");

/* ---- dirents b-tree ------------------------------------------------------------------- */

#define RD_KEY_DIRENT		1	/* struct rd_dirent_v + name */
#define RD_KEY_WHITEOUT		2	/* a deleted entry: keeps linear probing chains intact */

#define RD_NAME_MAX		255
/* Dirent and xattr hash slots: offsets below this are not used by names (readdir uses
 * cookies 1 and 2 for "." and ".."). */
#define RD_HASH_SLOT_MIN	16ull
#define RD_HASH_SLOT_MAX	((1ull << 62) - 1)

/*
 * A directory entry at {dir inode, slot, 0}. slot = SipHash-2-4(name) under the
 * filesystem's hash_secret, folded into [RD_HASH_SLOT_MIN, RD_HASH_SLOT_MAX]; on collision
 * the next free slot (linear probing). Lookups walk from the hash slot until the first
 * empty position, skipping whiteouts. Entries never move, so a slot is a stable readdir
 * cookie.
 */
struct rd_dirent_v {
	rd_le64 inum;
	uint8_t d_type;		/* DT_* */
	uint8_t name_len;	/* 1..RD_NAME_MAX */
	uint8_t reserved[6];
	uint8_t name[];		/* name_len bytes, no NUL */
} __attribute__((packed));
static_assert(sizeof(struct rd_dirent_v) == 16, "dirent header is 16 bytes");

/* ---- xattrs b-tree -------------------------------------------------------------------- */

#define RD_KEY_XATTR		1	/* struct rd_xattr_v + name + first bytes of value */
#define RD_KEY_XATTR_MORE	2	/* continuation: more bytes of the value */
#define RD_KEY_XATTR_WHITEOUT	3	/* a deleted attribute, at chunk 0: keeps chains intact */
#define RD_XATTR_VALUE_MAX	65536
#define RD_XATTR_CHUNK_BITS	8	/* offset = slot << 8 | chunk index */
/* Xattr slots lie in [RD_HASH_SLOT_MIN, RD_XATTR_SLOT_MAX] so that slot << 8 fits. */
#define RD_XATTR_SLOT_MAX	((1ull << (64 - RD_XATTR_CHUNK_BITS)) - 1)

/*
 * An extended attribute at {inode, slot << RD_XATTR_CHUNK_BITS, 0}, hashed and probed like
 * directory entries (whiteouts included, as RD_KEY_XATTR_WHITEOUT keys at chunk 0; only the
 * chunk-0 keys take part in probing). A value too large for one key continues in keys at
 * {inode, slot << 8 | 1}, {.. | 2}, ... each carrying raw value bytes, every key but the
 * last one filled to the store's largest value.
 */
struct rd_xattr_v {
	uint8_t name_len;	/* 1..255 */
	uint8_t reserved;
	rd_le16 reserved1;
	rd_le32 value_len;	/* total value bytes, 0..RD_XATTR_VALUE_MAX */
	uint8_t data[];		/* name, then as much of the value as fits */
} __attribute__((packed));
static_assert(sizeof(struct rd_xattr_v) == 8, "xattr header is 8 bytes");

/* ---- extents b-tree ------------------------------------------------------------------- */

#define RD_KEY_EXTENT		1	/* struct rd_extent_v: data on the device */

/* rd_extent_v.flags */
#define RD_EXTENT_UNWRITTEN	(1u << 0)	/* space allocated (fallocate), reads as zeros */

/*
 * A file extent at {inode, end, 0}: end and size in 512-byte sectors of the file, so the
 * extent covers file sectors [end - size, end). It points into a checksummed region
 * written in one piece: region_sectors at dev_offset, checksum csum over all of it. After a
 * partial overwrite trims the extent, the key still names the whole region (to verify it,
 * a read reads the whole region) and region_offset says where in it this key's data
 * starts. A region lies inside one bucket and is at most encoded_extent_max bytes.
 */
struct rd_extent_v {
	rd_le64 dev_offset;	/* byte offset of the region on the device */
	rd_le32 gen;		/* bucket generation when written */
	rd_le32 size;		/* sectors of file data this key covers */
	rd_le32 region_sectors;
	rd_le32 region_offset;	/* sectors into the region where this key's data starts */
	uint8_t csum_type;	/* enum rd_csum_type */
	uint8_t compression;	/* 0: none (no other value defined yet) */
	rd_le16 flags;		/* RD_EXTENT_* */
	rd_le32 reserved;
	rd_le64 csum;		/* of the whole region (low 32 bits for crc32c) */
} __attribute__((packed));
static_assert(sizeof(struct rd_extent_v) == 40, "extent value is 40 bytes");

#endif /* RD_FORMAT_H */
