/*
 * cmd_fsck.c - `refdio fsck`: check an image, and repair what can be repaired safely.
 * Owns: options, output (text, JSON, a progress line on a terminal) and the fsck(8) exit
 * codes: 0 clean, 1 errors corrected, 4 errors left uncorrected, 8 operational error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cmd.h"
#include "refdio.h"

enum {
	FSCK_CLEAN	= 0,
	FSCK_CORRECTED	= 1,
	FSCK_UNCORRECTED = 4,
	FSCK_OPERATIONAL = 8,
	FSCK_USAGE	= 16,
};

static void fsck_usage(FILE *f)
{
	fprintf(f,
"usage: refdio fsck [-n | -y] [--no-data] [--json] IMAGE\n"
"\n"
"Checks the superblock copies, every b-tree node (checksum, header, key order), pointer\n"
"generations and the allocator's counts, then the filesystem: inodes, directory entries\n"
"and their hash chains, xattrs, extents against buckets and generations, link counts,\n"
"reachability from the root, orphans, i_size and sectors against the extents, and the\n"
"checksum of every data region. Exit status as fsck(8): 0 clean, 1 errors corrected,\n"
"4 errors left uncorrected, 8 operational error, 16 usage error. Orphans left by a crash\n"
"are noted but are no error (the next mount deletes them; -y does it now).\n"
"\n"
"options:\n"
"  -n          check only, open the image read-only (the default)\n"
"  -y          repair what can be repaired without losing data (docs/fsck.md)\n"
"  --no-data   do not read the data regions to verify their checksums\n"
"  --json      one JSON object with every problem found\n"
"  -h, --help  this text\n");
}

struct fsck_out {
	bool json, tty;
	json_object *problems;
	struct timespec last;
	const char *phase;		/* the phase shown, to count phases */
	unsigned phases;
	bool progress_shown;
};

static void clear_progress(struct fsck_out *out)
{
	if (out->progress_shown) {
		fputs("\r\033[K", stdout);
		out->progress_shown = false;
	}
}

static void on_problem(void *priv, const struct rd_fsck_problem *p)
{
	struct fsck_out *out = priv;
	bool pending = p->severity == RD_FSCK_PENDING;

	if (out->json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "kind", json_object_new_string(p->kind));
		json_object_object_add(o, "severity",
				       json_object_new_string(pending ? "pending" : "error"));
		json_object_object_add(o, "fixed", json_object_new_boolean(p->fixed));
		json_object_object_add(o, "message", json_object_new_string(p->msg));
		if (p->tree)
			json_object_object_add(o, "tree", json_object_new_string(p->tree));
		if (p->ino)
			json_object_object_add(o, "inode", json_object_new_uint64(p->ino));
		if (p->bucket >= 0)
			json_object_object_add(o, "bucket", json_object_new_int64(p->bucket));
		if (p->name)
			json_object_object_add(o, "name", json_object_new_string(p->name));
		if (p->end) {
			json_object_object_add(o, "start", json_object_new_uint64(p->start));
			json_object_object_add(o, "end", json_object_new_uint64(p->end));
		}
		json_object_array_add(out->problems, o);
		return;
	}
	clear_progress(out);
	/* Messages of repaired problems say what the repair did. */
	printf("%s%s\n", pending ? "note: " : "", p->msg);
	fflush(stdout);
}

static void on_progress(void *priv, const char *phase, uint64_t done, uint64_t total)
{
	struct fsck_out *out = priv;
	struct timespec now;

	if (out->phase != phase) {
		out->phase = phase;
		out->phases++;
	}
	if (!out->tty)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - out->last.tv_sec) * 1000000000l + now.tv_nsec - out->last.tv_nsec <
	    100000000l)
		return;		/* at most ten updates a second */
	out->last = now;
	if (total)
		printf("\r\033[K[%u] checking %s: %" PRIu64 "/%" PRIu64 " (%u%%)", out->phases,
		       phase, done, total, (unsigned)((done > total ? total : done) * 100 / total));
	else
		printf("\r\033[K[%u] checking %s: %" PRIu64, out->phases, phase, done);
	fflush(stdout);
	out->progress_shown = true;
}

/* Engine errors that mean "the filesystem is damaged" rather than "could not check". */
static bool is_damage(int err)
{
	int e = -err;

	return e >= RD_ERR_FIRST && e < RD_ERR_LAST && e != RD_ERR_NOT_REFDIO &&
	       e != RD_ERR_IMAGE_EXISTS;
}

int cmd_fsck(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "no-data", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck_out out = { .tty = isatty(STDOUT_FILENO) };
	struct rd_fsck_opts fo = { .problem = on_problem, .progress = on_progress, .priv = &out,
				   .data = true };
	struct rd_fsck_result res = { 0 };
	struct rd_sb_report rep;
	struct rd_store *s = NULL;
	const char *path, *verdict;
	int c, ret, status;
	bool repair = false, no = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "nyh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': no = true; break;
		case 'y': repair = true; break;
		case 'j': out.json = true; out.tty = false; break;
		case 'D': fo.data = false; break;
		case 'h': fsck_usage(stdout); return 0;
		default: fsck_usage(stderr); return FSCK_USAGE;
		}
	}
	if (optind != argc - 1 || (no && repair)) {
		if (no && repair)
			rd_fail("fsck", "-n and -y contradict each other");
		fsck_usage(stderr);
		return FSCK_USAGE;
	}
	path = argv[optind];
	fo.repair = repair;
	if (out.json)
		out.problems = json_object_new_array();

	ret = rd_cli_probe("fsck", path, &rep);
	if (!ret)
		ret = rd_cli_open("fsck", path, !repair, &s);
	if (ret) {
		status = is_damage(ret) ? FSCK_UNCORRECTED : FSCK_OPERATIONAL;
		if (out.json) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "image", json_object_new_string(path));
			json_object_object_add(o, "error", json_object_new_string(rd_strerror(ret)));
			json_object_object_add(o, "exit", json_object_new_int(status));
			puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
			json_object_put(o);
			json_object_put(out.problems);
		}
		return status;
	}

	ret = rd_fsck_fs(s, &rep, &fo, &res);
	clear_progress(&out);
	if (ret) {
		rd_fail("fsck", "%s: checking stopped: %s", path, rd_strerror(ret));
		status = is_damage(ret) ? FSCK_UNCORRECTED : FSCK_OPERATIONAL;
	} else if (res.problems > res.fixed) {
		status = FSCK_UNCORRECTED;
	} else {
		status = res.fixed ? FSCK_CORRECTED : FSCK_CLEAN;
	}
	{
		int cret = rd_store_close(s);

		if (cret) {
			rd_fail("fsck", "%s: closing: %s", path, rd_strerror(cret));
			status |= FSCK_OPERATIONAL;
		}
	}

	verdict = status == FSCK_CLEAN ? "clean" : status == FSCK_CORRECTED ? "errors corrected"
		: status == FSCK_UNCORRECTED ? "errors left uncorrected" : "check incomplete";
	if (out.json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "image", json_object_new_string(path));
		json_object_object_add(o, "result", json_object_new_string(verdict));
		json_object_object_add(o, "exit", json_object_new_int(status));
		json_object_object_add(o, "nodes", json_object_new_uint64(res.nodes));
		json_object_object_add(o, "keys", json_object_new_uint64(res.keys));
		json_object_object_add(o, "buckets", json_object_new_uint64(res.buckets));
		json_object_object_add(o, "filesystem_checked",
				       json_object_new_boolean(res.fs_checked));
		json_object_object_add(o, "inodes", json_object_new_uint64(res.inodes));
		json_object_object_add(o, "dirents", json_object_new_uint64(res.dirents));
		json_object_object_add(o, "xattrs", json_object_new_uint64(res.xattrs));
		json_object_object_add(o, "extents", json_object_new_uint64(res.extents));
		json_object_object_add(o, "data_bytes_verified",
				       json_object_new_uint64(res.data_bytes));
		json_object_object_add(o, "errors", json_object_new_int((int)res.problems));
		json_object_object_add(o, "fixed", json_object_new_int((int)res.fixed));
		json_object_object_add(o, "pending", json_object_new_int((int)res.pending));
		json_object_object_add(o, "problems", out.problems);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		printf("%s: %s (%" PRIu64 " nodes, %" PRIu64 " keys, %" PRIu64 " buckets", path,
		       verdict, res.nodes, res.keys, res.buckets);
		if (res.fs_checked)
			printf("; %" PRIu64 " inodes, %" PRIu64 " entries, %" PRIu64 " xattrs, %"
			       PRIu64 " extents, %" PRIu64 " MiB of data verified", res.inodes,
			       res.dirents, res.xattrs, res.extents, res.data_bytes >> 20);
		else if (res.fs_skipped)
			printf("; filesystem checks skipped: a b-tree is unreadable");
		else if (!ret)
			printf("; no filesystem created yet");
		printf("; %u problems, %u fixed", res.problems, res.fixed);
		if (res.pending)
			printf("; %u crash leftovers %s", res.pending,
			       repair ? "finished" : "for the next mount");
		printf(")\n");
	}
	return status;
}
