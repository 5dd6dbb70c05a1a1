/*
 * bkey_text.c - describing keys in words (see bkey_text.h and refdio/image.h).
 *
 * Owns: one decoder per key type, each filling a struct rd_key_desc field by field from
 * the on-disk value (engine/format.h), and the one-line text made from it. `refdio list`
 * (text and JSON), fsck's messages about a key and the fuzzers all use these.
 *
 * Must never: read past a value's length, or trust a field it prints (a value of the wrong
 * size is described as such, with its bytes); nothing here is on a hot path.
 */
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bkey_text.h"

const char *rd_data_type_name(unsigned type)
{
	static const char *const names[] = {
		[RD_DATA_FREE] = "free", [RD_DATA_SB] = "sb", [RD_DATA_JOURNAL] = "journal",
		[RD_DATA_BTREE] = "btree", [RD_DATA_USER] = "user",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

/* ---- building a description ----------------------------------------------------------- */

static struct rd_key_field *add(struct rd_key_desc *d, const char *name,
				enum rd_key_field_kind kind)
{
	struct rd_key_field *f;

	assert(d->nr_fields < RD_KEY_FIELDS_MAX);	/* each decoder adds a fixed few */
	f = &d->f[d->nr_fields++];
	f->name = name;
	f->kind = kind;
	return f;
}

static void add_u64(struct rd_key_desc *d, const char *name, uint64_t v)
{
	add(d, name, RD_FIELD_U64)->u = v;
}

static void add_hex(struct rd_key_desc *d, const char *name, uint64_t v)
{
	add(d, name, RD_FIELD_HEX)->u = v;
}

/* A word or a name: n bytes of s copied into the description (printable bytes as they are,
 * others as '?'; cut when the storage is full). */
static void add_str(struct rd_key_desc *d, const char *name, enum rd_key_field_kind kind,
		    const void *s, size_t n)
{
	struct rd_key_field *f = add(d, name, kind);
	size_t room = sizeof(d->strs) - d->strs_used;
	const uint8_t *b = s;
	char *out = d->strs + d->strs_used;
	size_t i;

	if (!room) {
		f->s = "";
		return;
	}
	for (i = 0; i < n && i + 1 < room; i++)
		out[i] = b[i] >= 0x20 && b[i] < 0x7f ? (char)b[i] : '?';
	out[i] = '\0';
	d->strs_used += i + 1;
	f->s = out;
}

static void add_word(struct rd_key_desc *d, const char *name, const char *w)
{
	add_str(d, name, RD_FIELD_WORD, w, strlen(w));
}

/* A value that does not decode: why, its length, and its first bytes in hex. */
static void undecoded(struct rd_key_desc *d, const char *why, const uint8_t *val, size_t len)
{
	char hex[3 * 32 + 4];
	size_t n = 0;

	d->problem = why;
	add_u64(d, "len", len);
	for (size_t i = 0; i < len && i < 32; i++)
		n += (size_t)snprintf(hex + n, sizeof(hex) - n, "%s%02x", i ? " " : "", val[i]);
	if (len > 32)
		snprintf(hex + n, sizeof(hex) - n, " ...");
	add_word(d, "bytes", len ? hex : "");
}

/* ---- the decoders, one per tree -------------------------------------------------------- */

static void alloc_describe(unsigned type, uint64_t bucket, const uint8_t *val, size_t len,
			   struct rd_key_desc *d)
{
	const struct rd_alloc_v *v = (const void *)val;

	d->type_name = "alloc";
	if (type != RD_KEY_ALLOC || len != sizeof(*v)) {
		undecoded(d, type != RD_KEY_ALLOC ? "unknown key type" :
			 "wrong value size", val, len);
		return;
	}
	add_u64(d, "bucket", bucket);
	add_u64(d, "gen", rd_le32_get(v->gen));
	add_word(d, "data_type", rd_data_type_name(v->data_type));
	add_u64(d, "dirty_sectors", rd_le32_get(v->dirty_sectors));
	add_u64(d, "dirty_bytes", (uint64_t)rd_le32_get(v->dirty_sectors) << RD_SECTOR_SHIFT);
}

static const char *mode_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFCHR: return "chardev";
	case S_IFBLK: return "blockdev";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	default: return "?";
	}
}

static const char *dtype_name(unsigned t)
{
	static const char *const names[] = {
		[0] = "unknown", [1] = "fifo", [2] = "chardev", [4] = "dir", [6] = "blockdev",
		[8] = "file", [10] = "symlink", [12] = "socket",
	};

	return t < sizeof(names) / sizeof(names[0]) && names[t] ? names[t] : "?";
}

static void inode_describe(unsigned type, uint64_t ino, uint64_t offset, const uint8_t *val,
			   size_t len, struct rd_key_desc *d)
{
	const struct rd_inode_v *v = (const void *)val;
	const struct rd_inode_alloc_v *a = (const void *)val;

	if (type == RD_KEY_INODE) {
		uint32_t mode, flags;

		d->type_name = "inode";
		if (len != sizeof(*v)) {
			undecoded(d, "wrong value size", val, len);
			return;
		}
		mode = rd_le32_get(v->mode);
		flags = rd_le32_get(v->flags);
		add_u64(d, "inum", ino);
		add_word(d, "kind", mode_type(mode));
		add(d, "mode", RD_FIELD_OCT)->u = mode;
		add_u64(d, "nlink", rd_le32_get(v->nlink));
		add_u64(d, "uid", rd_le32_get(v->uid));
		add_u64(d, "gid", rd_le32_get(v->gid));
		add_u64(d, "size", rd_le64_get(v->size));
		add_u64(d, "sectors", rd_le64_get(v->sectors));
		add_u64(d, "parent", rd_le64_get(v->parent));
		add_u64(d, "generation", rd_le32_get(v->generation));
		add_hex(d, "rdev", rd_le64_get(v->rdev));
		add_u64(d, "atime_ns", rd_le64_get(v->atime_ns));
		add_u64(d, "mtime_ns", rd_le64_get(v->mtime_ns));
		add_u64(d, "ctime_ns", rd_le64_get(v->ctime_ns));
		add_u64(d, "btime_ns", rd_le64_get(v->btime_ns));
		add_word(d, "flags", flags & ~RD_INODE_ORPHAN ? "unknown" :
			 flags & RD_INODE_ORPHAN ? "orphan" : "none");
	} else if (type == RD_KEY_INODE_ALLOC) {
		d->type_name = "inode_alloc";
		if (len != sizeof(*a)) {
			undecoded(d, "wrong value size", val, len);
			return;
		}
		add_u64(d, "next_ino", rd_le64_get(a->next_ino));
	} else if (type == RD_KEY_ORPHAN) {
		d->type_name = "orphan";
		if (len) {
			undecoded(d, "an orphan marker has no value", val, len);
			return;
		}
		add_u64(d, "inum", offset);
	} else if (type == RD_KEY_SYMLINK) {
		d->type_name = "symlink";
		add_u64(d, "inum", ino);
		add_u64(d, "chunk", offset ? offset - 1 : 0);
		add_u64(d, "len", len);
		add_str(d, "target", RD_FIELD_NAME, val, len < 128 ? len : 128);
	} else {
		d->type_name = "unknown";
		undecoded(d, "unknown key type", val, len);
	}
}

static void dirent_describe(unsigned type, const uint8_t *val, size_t len,
			    struct rd_key_desc *d)
{
	const struct rd_dirent_v *v = (const void *)val;

	if (type == RD_KEY_WHITEOUT) {
		d->type_name = "whiteout";
		if (len)
			undecoded(d, "a whiteout has no value", val, len);
		return;
	}
	d->type_name = type == RD_KEY_DIRENT ? "dirent" : "unknown";
	if (type != RD_KEY_DIRENT) {
		undecoded(d, "unknown key type", val, len);
		return;
	}
	if (len < sizeof(*v) || !v->name_len || len != sizeof(*v) + v->name_len) {
		undecoded(d, "wrong value size for its name", val, len);
		return;
	}
	add_str(d, "name", RD_FIELD_NAME, v->name, v->name_len);
	add_u64(d, "inum", rd_le64_get(v->inum));
	add_word(d, "d_type", dtype_name(v->d_type));
}

static void xattr_describe(unsigned type, uint64_t offset, const uint8_t *val, size_t len,
			   struct rd_key_desc *d)
{
	const struct rd_xattr_v *v = (const void *)val;

	if (type == RD_KEY_XATTR_WHITEOUT) {
		d->type_name = "xattr_whiteout";
		if (len)
			undecoded(d, "a whiteout has no value", val, len);
		return;
	}
	if (type == RD_KEY_XATTR_MORE) {
		d->type_name = "xattr_more";
		add_u64(d, "slot", offset >> RD_XATTR_CHUNK_BITS);
		add_u64(d, "chunk", offset & ((1u << RD_XATTR_CHUNK_BITS) - 1));
		add_u64(d, "bytes", len);
		return;
	}
	d->type_name = type == RD_KEY_XATTR ? "xattr" : "unknown";
	if (type != RD_KEY_XATTR) {
		undecoded(d, "unknown key type", val, len);
		return;
	}
	if (len < sizeof(*v) || !v->name_len || len < sizeof(*v) + v->name_len) {
		undecoded(d, "wrong value size for its name", val, len);
		return;
	}
	add_str(d, "name", RD_FIELD_NAME, v->data, v->name_len);
	add_u64(d, "slot", offset >> RD_XATTR_CHUNK_BITS);
	add_u64(d, "value_len", rd_le32_get(v->value_len));
	add_u64(d, "here", len - sizeof(*v) - v->name_len);
}

static void extent_describe(unsigned type, uint64_t end, const uint8_t *val, size_t len,
			    struct rd_key_desc *d)
{
	const struct rd_extent_v *v = (const void *)val;
	uint64_t size, flags;
	const char *csum;

	d->type_name = type == RD_KEY_EXTENT ? "extent" : "unknown";
	if (type != RD_KEY_EXTENT || len != sizeof(*v)) {
		undecoded(d, type != RD_KEY_EXTENT ? "unknown key type" :
			 "wrong value size", val, len);
		return;
	}
	size = rd_le32_get(v->size);
	flags = rd_le16_get(v->flags);
	csum = rd_csum_name(v->csum_type);
	/* The file range from the key's position: it ends at sector `end`. */
	add_u64(d, "file_offset", end >= size ? (end - size) << RD_SECTOR_SHIFT : 0);
	add_u64(d, "length", size << RD_SECTOR_SHIFT);
	add_hex(d, "dev_offset", rd_le64_get(v->dev_offset));
	add_u64(d, "region_len", (uint64_t)rd_le32_get(v->region_sectors) << RD_SECTOR_SHIFT);
	add_u64(d, "region_offset", (uint64_t)rd_le32_get(v->region_offset) << RD_SECTOR_SHIFT);
	add_word(d, "csum_type", csum ? csum : "unknown");
	add_hex(d, "csum", v->csum_type == RD_CSUM_CRC32C ? (uint32_t)rd_le64_get(v->csum) :
		rd_le64_get(v->csum));
	add_u64(d, "gen", rd_le32_get(v->gen));
	add_word(d, "flags", flags & ~(uint64_t)RD_EXTENT_UNWRITTEN ? "unknown" :
		 flags & RD_EXTENT_UNWRITTEN ? "unwritten" : "none");
	if (v->compression)
		add_u64(d, "compression", v->compression);
}

void rd_key_describe(unsigned id, uint64_t inode, uint64_t offset, uint32_t snapshot,
		     unsigned type, const void *val, size_t len, struct rd_key_desc *d)
{
	(void)snapshot;
	memset(d, 0, offsetof(struct rd_key_desc, strs));
	d->strs[0] = '\0';
	d->strs_used = 0;
	switch (id) {
	case RD_BTREE_ALLOC:
		alloc_describe(type, offset, val, len, d);
		return;
	case RD_BTREE_INODES:
		inode_describe(type, inode, offset, val, len, d);
		return;
	case RD_BTREE_DIRENTS:
		dirent_describe(type, val, len, d);
		return;
	case RD_BTREE_XATTRS:
		xattr_describe(type, offset, val, len, d);
		return;
	case RD_BTREE_EXTENTS:
		extent_describe(type, offset, val, len, d);
		return;
	default:
		d->type_name = "unknown";
		undecoded(d, "unknown tree", val, len);
		return;
	}
}

/* ---- the one-line text ---------------------------------------------------------------- */

void rd_key_desc_to_text(const struct rd_key_desc *d, char *buf, size_t len)
{
	size_t n;

	if (!len)
		return;
	n = (size_t)snprintf(buf, len, "%s%s%s%s", d->type_name, d->problem ? " (" : "",
			     d->problem ? d->problem : "", d->problem ? ")" : "");
	for (unsigned i = 0; i < d->nr_fields && n < len; i++) {
		const struct rd_key_field *f = &d->f[i];
		const char *sep = i ? ", " : ": ";

		switch (f->kind) {
		case RD_FIELD_U64:
			n += (size_t)snprintf(buf + n, len - n, "%s%s %" PRIu64, sep, f->name, f->u);
			break;
		case RD_FIELD_HEX:
			n += (size_t)snprintf(buf + n, len - n, "%s%s %#" PRIx64, sep, f->name, f->u);
			break;
		case RD_FIELD_OCT:
			n += (size_t)snprintf(buf + n, len - n, "%s%s 0%" PRIo64, sep, f->name, f->u);
			break;
		case RD_FIELD_WORD:
			n += (size_t)snprintf(buf + n, len - n, "%s%s %s", sep, f->name, f->s);
			break;
		case RD_FIELD_NAME:
			n += (size_t)snprintf(buf + n, len - n, "%s%s \"%s\"", sep, f->name, f->s);
			break;
		}
	}
}

void rd_bkey_val_to_text(enum rd_btree_id id, const struct rd_bkey *k, char *buf, size_t len)
{
	struct rd_key_desc d;

	rd_key_describe(id, k->pos.inode, k->pos.offset, k->pos.snapshot, k->type, k->val,
			k->val_len, &d);
	rd_key_desc_to_text(&d, buf, len);
}
