/*
 * populate.c - test tool: fill every b-tree of an image with keys, then close cleanly.
 * Usage: populate IMAGE NKEYS
 * Keys are {inode i % 7 + 1, offset i} with a value derived from i; used by the CLI tests
 * to get an image with real nodes to corrupt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "btree.h"
#include "errors.h"
#include "store.h"

int main(int argc, char **argv)
{
	struct rd_open_opts o = { 0 };
	struct rd_store *s;
	char why[256] = "";
	unsigned long n;
	int ret;

	if (argc != 3) {
		fprintf(stderr, "usage: populate IMAGE NKEYS\n");
		return 2;
	}
	n = strtoul(argv[2], NULL, 0);
	ret = rd_store_open(argv[1], &o, &s, why, sizeof(why));
	if (ret) {
		fprintf(stderr, "populate: open %s: %s %s\n", argv[1], rd_strerror(ret), why);
		return 1;
	}
	for (unsigned long i = 0; i < n && !ret; i += 16) {
		struct rd_trans *t = rd_trans_new(s);

		if (!t) {
			ret = -12;
			break;
		}
		for (unsigned long j = i; j < i + 16 && j < n && !ret; j++) {
			char val[64];

			snprintf(val, sizeof(val), "value-%lu", j);
			for (unsigned id = 0; id < RD_BTREE_ALLOC && !ret; id++)
				ret = rd_trans_put(t, id, RD_POS(j % 7 + 1, j), 1, val, strlen(val));
		}
		if (ret)
			rd_trans_free(t);
		else
			ret = rd_trans_commit(t, NULL);
	}
	if (ret) {
		fprintf(stderr, "populate: %s\n", rd_strerror(ret));
		rd_store_close(s);
		return 1;
	}
	ret = rd_store_close(s);
	if (ret) {
		fprintf(stderr, "populate: close: %s\n", rd_strerror(ret));
		return 1;
	}
	return 0;
}
