/*
 * cmd_format.c - `refdio format`: create a refdio filesystem in an image file.
 * Owns: option parsing and messages; the work is rd_store_format's.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "refdio.h"

static void format_usage(FILE *f)
{
	fprintf(f,
"usage: refdio format IMAGE [options]\n"
"\n"
"Creates a refdio filesystem in IMAGE. A missing IMAGE is created as a sparse file of\n"
"--size bytes; an existing one keeps its size unless --size is given. An image that\n"
"already holds a refdio filesystem is left alone unless --force is given.\n"
"\n"
"options:\n"
"  --size SIZE             image size (k, M, G, T suffixes; powers of 1024)\n"
"  --bucket-size SIZE      allocation bucket size (default 1M)\n"
"  --block-size SIZE       block size (default 4k)\n"
"  --btree-node-size SIZE  b-tree node size (default 256k; at least 4k)\n"
"  --journal-size SIZE     journal size (default size/32, 4 buckets .. 1G)\n"
"  --extent-max SIZE       largest checksummed extent (default 256k)\n"
"  --csum TYPE             data checksum: crc32c (default), xxhash or none\n"
"  --metadata-csum TYPE    node and journal checksum: crc32c (default) or xxhash\n"
"  --label TEXT            a label of up to %d bytes\n"
"  --force                 overwrite an existing refdio filesystem\n"
"  --buffered              do not use O_DIRECT on the image (filesystems without it)\n"
"  -h, --help              this text\n", RD_LABEL_LEN);
}

enum { O_SIZE = 256, O_BUCKET, O_BLOCK, O_NODE, O_JOURNAL, O_EXTMAX, O_CSUM, O_MCSUM, O_LABEL,
       O_FORCE, O_BUFFERED };

static const struct option format_opts[] = {
	{ "size",		required_argument, NULL, O_SIZE },
	{ "bucket-size",	required_argument, NULL, O_BUCKET },
	{ "block-size",		required_argument, NULL, O_BLOCK },
	{ "btree-node-size",	required_argument, NULL, O_NODE },
	{ "journal-size",	required_argument, NULL, O_JOURNAL },
	{ "extent-max",		required_argument, NULL, O_EXTMAX },
	{ "csum",		required_argument, NULL, O_CSUM },
	{ "metadata-csum",	required_argument, NULL, O_MCSUM },
	{ "label",		required_argument, NULL, O_LABEL },
	{ "force",		no_argument,	   NULL, O_FORCE },
	{ "buffered",		no_argument,	   NULL, O_BUFFERED },
	{ "help",		no_argument,	   NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Parses a size option that must fit in 32 bits. */
static int parse_size32(const char *opt, const char *arg, uint32_t *out)
{
	uint64_t v;

	if (rd_parse_size(arg, &v) || !v || v > UINT32_MAX)
		return rd_fail("format", "--%s: '%s' is not a valid size", opt, arg);
	*out = (uint32_t)v;
	return 0;
}

int cmd_format(int argc, char **argv)
{
	struct rd_format_opts o = { .data_csum = -1, .meta_csum = -1 };
	char why[256] = "";
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", format_opts, NULL)) != -1) {
		switch (c) {
		case O_SIZE:
			if (rd_parse_size(optarg, &o.size) || !o.size)
				return rd_fail("format", "--size: '%s' is not a valid size", optarg);
			break;
		case O_JOURNAL:
			if (rd_parse_size(optarg, &o.journal_size) || !o.journal_size)
				return rd_fail("format", "--journal-size: '%s' is not a valid size",
					       optarg);
			break;
		case O_BUCKET:
			if (parse_size32("bucket-size", optarg, &o.bucket_size))
				return 2;
			break;
		case O_BLOCK:
			if (parse_size32("block-size", optarg, &o.block_size))
				return 2;
			break;
		case O_NODE:
			if (parse_size32("btree-node-size", optarg, &o.btree_node_size))
				return 2;
			break;
		case O_EXTMAX:
			if (parse_size32("extent-max", optarg, &o.encoded_extent_max))
				return 2;
			break;
		case O_CSUM:
			o.data_csum = rd_csum_parse(optarg);
			if (o.data_csum < 0)
				return rd_fail("format", "--csum: unknown type '%s' (crc32c, xxhash, "
					       "none)", optarg), 2;
			break;
		case O_MCSUM:
			o.meta_csum = rd_csum_parse(optarg);
			if (o.meta_csum <= 0)
				return rd_fail("format", "--metadata-csum: '%s' is not crc32c or "
					       "xxhash", optarg), 2;
			break;
		case O_LABEL:
			if (strlen(optarg) > RD_LABEL_LEN)
				return rd_fail("format", "--label: longer than %d bytes",
					       RD_LABEL_LEN), 2;
			o.label = optarg;
			break;
		case O_FORCE:
			o.force = true;
			break;
		case O_BUFFERED:
			o.no_direct = true;
			break;
		case 'h':
			format_usage(stdout);
			return 0;
		default:
			format_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		format_usage(stderr);
		return 2;
	}

	ret = rd_store_format(argv[optind], &o, why, sizeof(why));
	if (ret == -RD_ERR_IMAGE_EXISTS)
		return rd_fail("format", "%s already holds a refdio filesystem; use --force to "
			       "overwrite it", argv[optind]);
	if (ret)
		return rd_fail("format", "%s: %s", argv[optind], why[0] ? why : rd_strerror(ret));
	printf("formatted %s\n", argv[optind]);
	return 0;
}
