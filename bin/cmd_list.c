/*
 * cmd_list.c - `refdio list`: the keys of one b-tree, in order.
 * Owns: presenting keys as text or JSON lines. Opens the image read-only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "bkey_text.h"
#include "btree.h"
#include "cmd.h"
#include "errors.h"
#include "store.h"

static void list_usage(FILE *f)
{
	fprintf(f,
"usage: refdio list IMAGE --btree NAME [--json]\n"
"\n"
"Prints the keys of one b-tree in key order: position (inode:offset:snapshot), then the\n"
"value. NAME is one of extents, inodes, dirents, xattrs, alloc.\n"
"\n"
"options:\n"
"  --btree NAME  the tree to list\n"
"  --json        a JSON array of {inode, offset, snapshot, type, len, value}\n"
"  -h, --help    this text\n");
}

int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "btree", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rd_btree_iter it;
	const struct rd_bkey *k;
	struct rd_store *s;
	json_object *arr = NULL;
	const char *tree = NULL;
	char val[512];
	bool json = false;
	uint64_t n = 0;
	int c, id, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b': tree = optarg; break;
		case 'j': json = true; break;
		case 'h': list_usage(stdout); return 0;
		default: list_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || !tree) {
		list_usage(stderr);
		return 2;
	}
	id = rd_btree_parse(tree);
	if (id < 0)
		return rd_fail("list", "unknown b-tree '%s' (extents, inodes, dirents, xattrs, "
			       "alloc)", tree), 2;
	if (rd_cli_open("list", argv[optind], true, &s))
		return 1;

	if (json)
		arr = json_object_new_array();
	rd_btree_iter_init(&it, s, (enum rd_btree_id)id, RD_POS_MIN, RD_POS_MAX);
	while (!(ret = rd_btree_iter_next(&it, &k))) {
		rd_bkey_val_to_text((enum rd_btree_id)id, k, val, sizeof(val));
		n++;
		if (json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "inode", json_object_new_uint64(k->pos.inode));
			json_object_object_add(o, "offset", json_object_new_uint64(k->pos.offset));
			json_object_object_add(o, "snapshot",
					       json_object_new_uint64(k->pos.snapshot));
			json_object_object_add(o, "type", json_object_new_int(k->type));
			json_object_object_add(o, "len", json_object_new_int(k->val_len));
			json_object_object_add(o, "value", json_object_new_string(val));
			json_object_array_add(arr, o);
		} else {
			printf("%" PRIu64 ":%" PRIu64 ":%u %s\n", k->pos.inode, k->pos.offset,
			       k->pos.snapshot, val);
		}
	}
	rd_btree_iter_exit(&it);
	if (ret != -ENOENT) {
		json_object_put(arr);
		rd_store_close(s);
		return rd_fail("list", "%s: reading the %s tree after %" PRIu64 " keys: %s",
			       argv[optind], tree, n, rd_strerror(ret));
	}
	if (json) {
		puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(arr);
	}
	rd_store_close(s);
	return 0;
}
