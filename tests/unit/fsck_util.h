/*
 * fsck_util.h - running the filesystem check from tests: open the image's store on its
 * own (read-only for a check, so a crashed image's journal is replayed in memory only),
 * run rd_fsck_fs, collect what it found. fu_check_clean is what the crash and model
 * tests call after every crash and reopen.
 */
#ifndef RD_FSCK_UTIL_H
#define RD_FSCK_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "refdio/errors.h"
#include "refdio/fsck.h"
#include "io.h"
#include "sb.h"
#include "store.h"

#define FU_MAX	256

struct fu_found {
	char kind[32];
	char msg[512];
	uint64_t ino;
	bool fixed, pending;
};

struct fu_run {
	struct rd_fsck_result res;
	struct fu_found f[FU_MAX];
	unsigned n;
};

static inline void fu_problem(void *priv, const struct rd_fsck_problem *p)
{
	struct fu_run *r = priv;

	if (r->n == FU_MAX)
		return;
	snprintf(r->f[r->n].kind, sizeof(r->f[0].kind), "%s", p->kind);
	snprintf(r->f[r->n].msg, sizeof(r->f[0].msg), "%s", p->msg);
	r->f[r->n].ino = p->ino;
	r->f[r->n].fixed = p->fixed;
	r->f[r->n].pending = p->severity == RD_FSCK_PENDING;
	r->n++;
}

/* Checks (repair: and repairs) the image at path, which nothing else has open for
 * writing. data: verify data checksums; mask: the hash mask the image is used with. */
static inline void fu_fsck(const char *path, bool repair, bool data, uint64_t mask,
			   struct fu_run *r)
{
	struct rd_io_opts io_opts = { .read_only = true, .no_direct = true };
	struct rd_open_opts oo = { .read_only = !repair };
	struct rd_fsck_opts fo = { .repair = repair, .data = data, .hash_mask = mask,
				   .problem = fu_problem, .priv = r };
	struct rd_sb_report rep;
	struct rd_store *s;
	struct rd_io *io;
	struct rd_sb sb;
	char why[256] = "";

	memset(r, 0, sizeof(*r));
	CHECK_OK(rd_io_open(path, &io_opts, &io));
	CHECK_OK(rd_sb_read(io, &sb, &rep, why, sizeof(why)));
	rd_io_close(io);
	if (rd_store_open(path, &oo, &s, why, sizeof(why))) {
		fprintf(stderr, "fsck: open %s: %s\n", path, why);
		exit(1);
	}
	CHECK_OK(rd_fsck_fs(s, &rep, &fo, &r->res));
	CHECK_OK(rd_store_close(s));
}

static inline void fu_print(const struct fu_run *r)
{
	for (unsigned i = 0; i < r->n; i++)
		fprintf(stderr, "  fsck: [%s%s%s] %s\n", r->f[i].kind,
			r->f[i].pending ? ", pending" : "", r->f[i].fixed ? ", fixed" : "",
			r->f[i].msg);
}

/* How many findings of kind (about ino, unless 0) the run made. */
static inline unsigned fu_count(const struct fu_run *r, const char *kind, uint64_t ino)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->n; i++)
		n += !strcmp(r->f[i].kind, kind) && (!ino || r->f[i].ino == ino);
	return n;
}

/* After a crash or a reopen: no error (crash leftovers such as orphans are allowed). */
static inline void fu_check_clean(const char *path, bool data, uint64_t mask)
{
	struct fu_run r;

	fu_fsck(path, false, data, mask, &r);
	if (r.res.problems || !r.res.fs_checked) {
		fprintf(stderr, "fsck of %s: %u problems (checked: %d)\n", path, r.res.problems,
			r.res.fs_checked);
		fu_print(&r);
	}
	CHECK(r.res.fs_checked);
	CHECK_EQ(r.res.problems, 0);
}

#endif
