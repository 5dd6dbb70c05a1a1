/*
 * cmd_show.c - `refdio show`: the superblock and space usage of an image.
 * Owns: presenting them as text or JSON. Opens the image read-only: nothing is written,
 * a dirty image's journal is replayed in memory only.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cmd.h"
#include "refdio.h"

static void show_usage(FILE *f)
{
	fprintf(f,
"usage: refdio show IMAGE [--json]\n"
"\n"
"Prints the superblock (geometry, options, state) and how the space is used. The image is\n"
"opened read-only; if it was not closed cleanly its journal is replayed in memory only.\n"
"\n"
"options:\n"
"  --json      one JSON object instead of text\n"
"  -h, --help  this text\n");
}

static void uuid_text(const uint8_t *u, char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

/* "1.50 GiB" style, for text output next to the exact byte count. */
static const char *human(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", d, units[u]);
	return buf;
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rd_store_info inf, *g = &inf;
	struct rd_space sp;
	struct rd_store *s;
	char uuid[37], a[32], b[32];
	bool json = false;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': show_usage(stdout); return 0;
		default: show_usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		show_usage(stderr);
		return 2;
	}
	ret = rd_cli_open("show", argv[optind], true, &s);
	if (ret)
		return 1;

	rd_store_info(s, &inf);
	uuid_text(inf.uuid, uuid);
	rd_alloc_space(s, &sp);

	if (json) {
		json_object *o = json_object_new_object(), *sj = json_object_new_object();
		json_object *tj = json_object_new_object();

		json_object_object_add(o, "image", json_object_new_string(argv[optind]));
		json_object_object_add(o, "uuid", json_object_new_string(uuid));
		json_object_object_add(o, "label", json_object_new_string(inf.label));
		add_u64(o, "version", inf.version);
		add_u64(o, "seq", inf.sb_seq);
		json_object_object_add(o, "clean", json_object_new_boolean(inf.was_clean));
		add_u64(o, "replayed_entries", inf.replayed_entries);
		add_u64(o, "size", g->dev_size);
		add_u64(o, "block_size", g->block_size);
		add_u64(o, "bucket_size", g->bucket_size);
		add_u64(o, "buckets", g->nbuckets);
		add_u64(o, "btree_node_size", g->btree_node_size);
		add_u64(o, "extent_max", g->encoded_extent_max);
		json_object_object_add(o, "data_csum",
				       json_object_new_string(rd_csum_name(g->data_csum)));
		json_object_object_add(o, "metadata_csum",
				       json_object_new_string(rd_csum_name(g->meta_csum)));
		add_u64(o, "journal_start_bucket", g->journal_start);
		add_u64(o, "journal_buckets", g->journal_buckets);
		add_u64(o, "journal_seq", inf.journal_seq);
		add_u64(sj, "usable", sp.usable_bytes);
		add_u64(sj, "user", sp.user_bytes);
		add_u64(sj, "btree", sp.btree_bytes);
		add_u64(sj, "journal", sp.journal_bytes);
		add_u64(sj, "free", sp.free_bytes);
		add_u64(sj, "available", sp.available_bytes);
		add_u64(sj, "buckets_free", sp.buckets_free);
		add_u64(sj, "buckets_user", sp.buckets_user);
		add_u64(sj, "buckets_btree", sp.buckets_btree);
		add_u64(sj, "dead", sp.dead_bytes);
		add_u64(sj, "buckets_partly_dead", sp.buckets_partly_dead);
		json_object_object_add(o, "space", sj);
		for (unsigned id = 0; id < RD_TREES; id++)
			add_u64(tj, rd_btree_name(id), inf.tree_depth[id]);
		json_object_object_add(o, "btree_depth", tj);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		time_t created = (time_t)(inf.created_ns / 1000000000ull);
		char tbuf[64];

		strftime(tbuf, sizeof(tbuf), "%Y-%m-%d %H:%M:%S UTC", gmtime(&created));
		printf("image:             %s\n", argv[optind]);
		printf("uuid:              %s\n", uuid);
		printf("label:             %s\n", inf.label);
		printf("created:           %s\n", tbuf);
		printf("format version:    %u\n", inf.version);
		printf("superblock seq:    %" PRIu64 "\n", inf.sb_seq);
		printf("state:             %s\n", inf.was_clean ? "clean"
			: "not closed cleanly (journal replayed in memory)");
		printf("size:              %s (%" PRIu64 " bytes)\n",
		       human(g->dev_size, a, sizeof(a)), g->dev_size);
		printf("block size:        %u\n", g->block_size);
		printf("bucket size:       %s (%" PRIu64 " buckets)\n",
		       human(g->bucket_size, a, sizeof(a)), g->nbuckets);
		printf("b-tree node size:  %s\n", human(g->btree_node_size, a, sizeof(a)));
		printf("extent max:        %s\n", human(g->encoded_extent_max, a, sizeof(a)));
		printf("checksums:         data %s, metadata %s\n", rd_csum_name(g->data_csum),
		       rd_csum_name(g->meta_csum));
		printf("journal:           buckets %" PRIu64 "..%" PRIu64 " (%s), seq %" PRIu64 "\n",
		       g->journal_start, g->journal_start + g->journal_buckets - 1,
		       human(g->journal_buckets * g->bucket_size, a, sizeof(a)),
		       inf.journal_seq);
		printf("space:\n");
		printf("  usable:          %s\n", human(sp.usable_bytes, a, sizeof(a)));
		printf("  user data:       %s in %" PRIu64 " buckets\n",
		       human(sp.user_bytes, a, sizeof(a)), sp.buckets_user);
		printf("  b-tree nodes:    %s in %" PRIu64 " buckets\n",
		       human(sp.btree_bytes, a, sizeof(a)), sp.buckets_btree);
		printf("  free:            %s (%" PRIu64 " buckets), available %s\n",
		       human(sp.free_bytes, a, sizeof(a)), sp.buckets_free,
		       human(sp.available_bytes, b, sizeof(b)));
		printf("  partly dead:     %s not live in %" PRIu64 " buckets (what copying GC "
		       "can win back: refdio gc)\n", human(sp.dead_bytes, a, sizeof(a)),
		       sp.buckets_partly_dead);
		printf("b-tree depth:     ");
		for (unsigned id = 0; id < RD_TREES; id++)
			printf(" %s %u", rd_btree_name(id), inf.tree_depth[id]);
		printf("\n");
	}
	rd_store_close(s);	/* read-only: writes nothing */
	return 0;
}
