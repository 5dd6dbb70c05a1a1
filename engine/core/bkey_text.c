/*
 * bkey_text.c - describing keys in words (see bkey_text.h).
 * Owns: the per-type value decoders used by tools; nothing here is on a hot path.
 */
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>

#include "bkey_text.h"

const char *rd_data_type_name(unsigned type)
{
	static const char *const names[] = {
		[RD_DATA_FREE] = "free", [RD_DATA_SB] = "sb", [RD_DATA_JOURNAL] = "journal",
		[RD_DATA_BTREE] = "btree", [RD_DATA_USER] = "user",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

/* Unknown values: as a quoted string when every byte is printable, else in hex. */
static void hex_to_text(const struct rd_bkey *k, char *buf, size_t len)
{
	int r = snprintf(buf, len, "type %u, %u bytes:", k->type, k->val_len);
	size_t n = r < 0 ? 0 : (size_t)r;
	bool text = k->val_len > 0;

	if (n >= len)
		return;		/* cut short: buf holds what fitted */

	for (unsigned i = 0; i < k->val_len; i++)
		text = text && k->val[i] >= 0x20 && k->val[i] < 0x7f && k->val[i] != '"';
	if (text) {
		snprintf(buf + n, len - n, " \"%.*s\"%s", k->val_len > 64 ? 64 : k->val_len,
			 (const char *)k->val, k->val_len > 64 ? "..." : "");
		return;
	}
	for (unsigned i = 0; i < k->val_len && i < 32 && n + 4 < len; i++)
		n += (size_t)snprintf(buf + n, len - n, " %02x", k->val[i]);
	if (k->val_len > 32 && n + 4 < len)
		snprintf(buf + n, len - n, " ...");
}

static void alloc_to_text(const struct rd_bkey *k, char *buf, size_t len)
{
	const struct rd_alloc_v *v = (const void *)k->val;

	if (k->type != RD_KEY_ALLOC || k->val_len != sizeof(*v)) {
		hex_to_text(k, buf, len);
		return;
	}
	snprintf(buf, len, "gen %u, %s, %u dirty sectors", rd_le32_get(v->gen),
		 rd_data_type_name(v->data_type), rd_le32_get(v->dirty_sectors));
}

/* A name from a key, printable bytes as they are, others as '?'. */
static void name_to_text(const uint8_t *name, size_t n, char *out, size_t len)
{
	size_t i;

	assert(len > 0);

	for (i = 0; i < n && i + 1 < len; i++)
		out[i] = name[i] >= 0x20 && name[i] < 0x7f ? (char)name[i] : '?';
	out[i] = '\0';
}

static void inode_to_text(const struct rd_bkey *k, char *buf, size_t len)
{
	const struct rd_inode_v *v = (const void *)k->val;
	const struct rd_inode_alloc_v *a = (const void *)k->val;

	if (k->type == RD_KEY_INODE && k->val_len == sizeof(*v))
		snprintf(buf, len, "mode 0%o, nlink %u, uid %u, gid %u, size %llu, parent %llu%s",
			 rd_le32_get(v->mode), rd_le32_get(v->nlink), rd_le32_get(v->uid),
			 rd_le32_get(v->gid), (unsigned long long)rd_le64_get(v->size),
			 (unsigned long long)rd_le64_get(v->parent),
			 rd_le32_get(v->flags) & RD_INODE_ORPHAN ? ", orphan" : "");
	else if (k->type == RD_KEY_INODE_ALLOC && k->val_len == sizeof(*a))
		snprintf(buf, len, "next inode number %llu",
			 (unsigned long long)rd_le64_get(a->next_ino));
	else if (k->type == RD_KEY_ORPHAN && !k->val_len)
		snprintf(buf, len, "orphan marker");
	else	/* symlink chunks: the target's bytes, as text when printable */
		hex_to_text(k, buf, len);
}

static void dirent_to_text(const struct rd_bkey *k, char *buf, size_t len)
{
	const struct rd_dirent_v *v = (const void *)k->val;
	char name[RD_NAME_MAX + 1];

	if (k->type == RD_KEY_WHITEOUT && !k->val_len) {
		snprintf(buf, len, "whiteout");
	} else if (k->type == RD_KEY_DIRENT && k->val_len >= sizeof(*v) &&
		   k->val_len >= sizeof(*v) + v->name_len && v->name_len) {
		name_to_text(v->name, v->name_len, name, sizeof(name));
		snprintf(buf, len, "\"%s\" -> %llu, d_type %u", name,
			 (unsigned long long)rd_le64_get(v->inum), v->d_type);
	} else {
		hex_to_text(k, buf, len);
	}
}

static void xattr_to_text(const struct rd_bkey *k, char *buf, size_t len)
{
	const struct rd_xattr_v *v = (const void *)k->val;
	char name[RD_NAME_MAX + 1];

	if (k->type == RD_KEY_XATTR_WHITEOUT && !k->val_len) {
		snprintf(buf, len, "whiteout");
	} else if (k->type == RD_KEY_XATTR && k->val_len >= sizeof(*v) &&
		   k->val_len >= sizeof(*v) + v->name_len && v->name_len) {
		name_to_text(v->data, v->name_len, name, sizeof(name));
		snprintf(buf, len, "\"%s\", %u bytes of value (%u here)", name,
			 rd_le32_get(v->value_len), k->val_len - (unsigned)sizeof(*v) - v->name_len);
	} else if (k->type == RD_KEY_XATTR_MORE) {
		snprintf(buf, len, "value continued, %u bytes", k->val_len);
	} else {
		hex_to_text(k, buf, len);
	}
}

void rd_bkey_val_to_text(enum rd_btree_id id, const struct rd_bkey *k, char *buf, size_t len)
{
	switch (id) {
	case RD_BTREE_ALLOC:
		alloc_to_text(k, buf, len);
		return;
	case RD_BTREE_INODES:
		inode_to_text(k, buf, len);
		return;
	case RD_BTREE_DIRENTS:
		dirent_to_text(k, buf, len);
		return;
	case RD_BTREE_XATTRS:
		xattr_to_text(k, buf, len);
		return;
	default:
		hex_to_text(k, buf, len);
		return;
	}
}
