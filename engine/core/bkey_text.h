/*
 * bkey_text.h - human-readable descriptions of keys, for `refdio list` and fsck messages.
 *
 * Owns: one decoder per key type. A value that does not decode (wrong size) is described
 * as such, never read past its length.
 */
#ifndef RD_BKEY_TEXT_H
#define RD_BKEY_TEXT_H

#include <stddef.h>

#include "btree.h"

/* Writes a one-line description of k's value (not its position) into buf. */
void rd_bkey_val_to_text(enum rd_btree_id id, const struct rd_bkey *k, char *buf, size_t len);

/* Name of a data type ("free", "sb", "journal", "btree", "user"), "?" if unknown. */
const char *rd_data_type_name(unsigned type);

#endif
