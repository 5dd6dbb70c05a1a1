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

#include "cmd.h"
#include "refdio.h"

static void list_usage(FILE *f)
{
	fprintf(f,
"usage: refdio list IMAGE --btree NAME [--nodes] [--json]\n"
"\n"
"Prints the keys of one b-tree in key order: position (inode:offset:snapshot), then the\n"
"value decoded by its key type: an extent's file range, device offset, length, region,\n"
"checksum type and value, generation and flags; an alloc key's bucket, generation, data\n"
"type and sectors; an inode's kind, mode, links, owner, size and times; a directory\n"
"entry's name, inode and type; an xattr's name and value length. NAME is one of\n"
"extents, inodes, dirents, xattrs, alloc.\n"
"\n"
"options:\n"
"  --btree NAME  the tree to list\n"
"  --nodes       list the tree's nodes (level, device offset, keys, key range) instead\n"
"  --json        a JSON array of {inode, offset, snapshot, type, type_name, len, value,\n"
"                fields} (value: the text line; fields: the decoded fields by name)\n"
"                (with --nodes: {level, offset, gen, seq, keys, bytes, min, max, error})\n"
"  -h, --help    this text\n");
}

struct node_list {
	bool json;
	json_object *arr;
	unsigned bad;
};

static int node_cb(void *priv, const struct rd_list_node *ni)
{
	struct node_list *nl = priv;
	char min[64], max[64];

	snprintf(min, sizeof(min), "%" PRIu64 ":%" PRIu64 ":%u", ni->min_inode,
		 ni->min_offset, ni->min_snapshot);
	snprintf(max, sizeof(max), "%" PRIu64 ":%" PRIu64 ":%u", ni->max_inode,
		 ni->max_offset, ni->max_snapshot);
	nl->bad += ni->error != 0;
	if (nl->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "level", json_object_new_int((int)ni->level));
		json_object_object_add(o, "offset", json_object_new_uint64(ni->offset));
		json_object_object_add(o, "gen", json_object_new_uint64(ni->gen));
		json_object_object_add(o, "seq", json_object_new_uint64(ni->seq));
		json_object_object_add(o, "keys", json_object_new_uint64(ni->nr_keys));
		json_object_object_add(o, "bytes", json_object_new_uint64(ni->bytes));
		json_object_object_add(o, "min", json_object_new_string(min));
		json_object_object_add(o, "max", json_object_new_string(max));
		if (ni->error)
			json_object_object_add(o, "error",
					       json_object_new_string(rd_strerror(ni->error)));
		json_object_array_add(nl->arr, o);
	} else if (ni->error) {
		printf("level %u offset %" PRIu64 " gen %u: %s\n", ni->level, ni->offset, ni->gen,
		       rd_strerror(ni->error));
	} else {
		printf("level %u offset %" PRIu64 " gen %u seq %" PRIu64 " keys %u bytes %u "
		       "range %s .. %s\n", ni->level, ni->offset, ni->gen, ni->seq, ni->nr_keys,
		       ni->bytes, min, max);
	}
	return 0;
}

static int list_nodes(struct rd_store *s, const char *path, unsigned id, bool json)
{
	struct node_list nl = { .json = json };
	int ret;

	if (json)
		nl.arr = json_object_new_array();
	ret = rd_store_list_nodes(s, id, node_cb, &nl);
	if (json) {
		puts(json_object_to_json_string_ext(nl.arr, JSON_C_TO_STRING_PRETTY));
		json_object_put(nl.arr);
	}
	rd_store_close(s);
	if (ret)
		return rd_fail("list", "%s: walking the %s tree: %s", path, rd_btree_name(id),
			       rd_strerror(ret));
	if (nl.bad)
		return rd_fail("list", "%s: %u bad nodes in the %s tree", path, nl.bad,
			       rd_btree_name(id));
	return 0;
}

struct key_list {
	json_object *arr;	/* NULL: text */
	uint64_t n;
};

/* The decoded fields as an object: numbers as numbers, hex and octal as "0x.."/"0..."
 * strings (as the text shows them), words and names as strings. */
static json_object *fields_json(const struct rd_key_desc *d)
{
	json_object *o = json_object_new_object();

	for (unsigned i = 0; i < d->nr_fields; i++) {
		const struct rd_key_field *f = &d->f[i];
		char num[32];
		json_object *v;

		switch (f->kind) {
		case RD_FIELD_U64:
			v = json_object_new_uint64(f->u);
			break;
		case RD_FIELD_HEX:
			snprintf(num, sizeof(num), "%#" PRIx64, f->u);
			v = json_object_new_string(num);
			break;
		case RD_FIELD_OCT:
			snprintf(num, sizeof(num), "0%" PRIo64, f->u);
			v = json_object_new_string(num);
			break;
		default:
			v = json_object_new_string(f->s);
			break;
		}
		json_object_object_add(o, f->name, v);
	}
	return o;
}

static int key_cb(void *priv, const struct rd_list_key *k)
{
	struct key_list *kl = priv;

	kl->n++;
	if (kl->arr) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "inode", json_object_new_uint64(k->inode));
		json_object_object_add(o, "offset", json_object_new_uint64(k->offset));
		json_object_object_add(o, "snapshot", json_object_new_uint64(k->snapshot));
		json_object_object_add(o, "type", json_object_new_int((int)k->type));
		json_object_object_add(o, "type_name",
				       json_object_new_string(k->desc->type_name));
		json_object_object_add(o, "len", json_object_new_int((int)k->val_len));
		json_object_object_add(o, "value", json_object_new_string(k->text));
		if (k->desc->problem)
			json_object_object_add(o, "problem",
					       json_object_new_string(k->desc->problem));
		json_object_object_add(o, "fields", fields_json(k->desc));
		json_object_array_add(kl->arr, o);
	} else {
		printf("%" PRIu64 ":%" PRIu64 ":%u %s\n", k->inode, k->offset, k->snapshot,
		       k->text);
	}
	return 0;
}

int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "btree", required_argument, NULL, 'b' },
		{ "nodes", no_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct key_list kl = { NULL, 0 };
	struct rd_store *s;
	const char *tree = NULL;
	bool json = false, nodes = false;
	int c, id, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'b': tree = optarg; break;
		case 'j': json = true; break;
		case 'N': nodes = true; break;
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
	if (nodes)
		return list_nodes(s, argv[optind], (unsigned)id, json);
	if (json)
		kl.arr = json_object_new_array();
	ret = rd_store_list_keys(s, (unsigned)id, key_cb, &kl);
	if (ret) {
		json_object_put(kl.arr);
		rd_store_close(s);
		return rd_fail("list", "%s: reading the %s tree after %" PRIu64 " keys: %s",
			       argv[optind], tree, kl.n, rd_strerror(ret));
	}
	if (json) {
		puts(json_object_to_json_string_ext(kl.arr, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(kl.arr);
	}
	rd_store_close(s);
	return 0;
}
