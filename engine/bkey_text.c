/*
 * bkey_text.c - describing keys in words (see bkey_text.h).
 * Owns: the per-type value decoders used by tools; nothing here is on a hot path.
 */
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
	size_t n = (size_t)snprintf(buf, len, "type %u, %u bytes:", k->type, k->val_len);
	bool text = k->val_len > 0;

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

void rd_bkey_val_to_text(enum rd_btree_id id, const struct rd_bkey *k, char *buf, size_t len)
{
	switch (id) {
	case RD_BTREE_ALLOC:
		alloc_to_text(k, buf, len);
		return;
	default:
		hex_to_text(k, buf, len);
		return;
	}
}
