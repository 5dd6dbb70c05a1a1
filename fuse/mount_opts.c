/*
 * mount_opts.c - `refdio mount`'s command line: its forms (refdio mount, the mount.fuse3
 * helper form), -o options with their ranges and defaults, and --help.
 *
 * Owns: struct rd_mount_opts from argv, every value checked (a bad option is a message and
 * a non-zero exit before anything starts). Must never: start anything, or accept a value
 * the daemon would have to cut or reject later.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "refdio.h"

/* The buffer a chunk of n bytes takes (the engine's size classes: powers of two). */
static uint64_t dio_buf_bytes(uint64_t n)
{
	uint64_t b = 4096;

	while (b < n)
		b <<= 1;
	return b;
}

/* Options libfuse (and the kernel) take as they are. */
static const char *const passthrough[] = {
	"allow_root", "auto_unmount", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
	"atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime", "strictatime",
	"nostrictatime", "lazytime", "nolazytime", "dirsync", "async", NULL,
};
/* Options mount(8) and fstab add that mean nothing to a FUSE daemon. */
static const char *const ignored[] = {
	"defaults", "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "rw",
	NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static int add_fuse_opt(struct rd_mount_opts *o, const char *opt)
{
	size_t used = strlen(o->fuse_opts), n = strlen(opt);

	if (used + n + 2 > sizeof(o->fuse_opts)) {
		rd_mount_err("too many options");
		return -EINVAL;
	}
	if (used)
		o->fuse_opts[used++] = ',';
	memcpy(o->fuse_opts + used, opt, n + 1);
	return 0;
}

static int parse_uint(const char *name, const char *v, unsigned min, unsigned max,
		      unsigned *out)
{
	char *end;
	unsigned long x;

	assert(min <= max);
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max) {
		rd_mount_err("-o %s=%s: expected a number from %u to %u", name, v, min, max);
		return -EINVAL;
	}
	*out = (unsigned)x;
	return 0;
}

static int parse_seconds(const char *name, const char *v, double *out)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end || x < 0 || x > 86400) {
		rd_mount_err("-o %s=%s: expected seconds from 0 to 86400", name, v);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/* A size: bytes with an optional K/M/G suffix, a multiple of 4 KiB in [min, max]. */
static int parse_size(const char *name, const char *v, uint64_t min, uint64_t max,
		      const char *range, uint64_t *out)
{
	unsigned long long x;
	unsigned shift = 0;
	char *end;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (!errno && end != v) {
		if (*end == 'k' || *end == 'K')
			shift = 10;
		else if (*end == 'm' || *end == 'M')
			shift = 20;
		else if (*end == 'g' || *end == 'G')
			shift = 30;
		if (shift) {
			end++;
			if (x > (UINT64_MAX >> shift))
				errno = ERANGE;
			x <<= shift;
		}
		if (*end == 'i' && end[1] == 'B')
			end += 2;
	}
	if (errno || end == v || *end || x < min || x > max || x % 4096) {
		rd_mount_err("-o %s=%s: expected a multiple of 4K from %s", name, v, range);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

static int parse_chunk(const char *name, const char *v, unsigned *out)
{
	uint64_t x;
	int ret = parse_size(name, v, 4096, RD_DIO_CHUNK_MAX, "4K to 64M", &x);

	if (!ret)
		*out = (unsigned)x;
	return ret;
}

static int parse_one(struct rd_mount_opts *o, char *opt)
{
	char *val = strchr(opt, '=');

	if (val)
		*val++ = '\0';
	if (!val) {
		if (!strcmp(opt, "ro")) {
			o->read_only = true;
			return add_fuse_opt(o, "ro");
		}
		if (!strcmp(opt, "allow_other")) {
			o->allow_other = true;
			return add_fuse_opt(o, "allow_other");
		}
		if (!strcmp(opt, "default_permissions")) {
			o->default_permissions = true;
			return 0;
		}
		if (!strcmp(opt, "nodefault_permissions")) {
			o->default_permissions = false;
			return 0;
		}
		if (!strcmp(opt, "direct_io")) {
			o->direct_io = true;
			return 0;
		}
		if (!strcmp(opt, "writeback_cache")) {
			o->writeback_cache = true;
			return 0;
		}
		if (!strcmp(opt, "sync")) {
			o->sync = true;
			return add_fuse_opt(o, "sync");
		}
		if (in_list(passthrough, opt))
			return add_fuse_opt(o, opt);
		if (in_list(ignored, opt) || !strncmp(opt, "x-", 2))
			return 0;
	} else {
		if (!strcmp(opt, "threads"))
			return parse_uint(opt, val, 1, 64, &o->threads);
		if (!strcmp(opt, "max_background"))
			return parse_uint(opt, val, 1, 65535, &o->max_background);
		if (!strcmp(opt, "strategy")) {
			int v = rd_dio_strategy_parse(val);

			if (v < 0) {
				rd_mount_err("-o strategy=%s: expected refctx, pin, chunk or bounce64",
					  val);
				return -EINVAL;
			}
			o->dio_strategy = (unsigned)v;
			return 0;
		}
		if (!strcmp(opt, "issue")) {
			int v = rd_dio_issue_parse(val);

			if (v < 0) {
				rd_mount_err("-o issue=%s: expected inline or punt", val);
				return -EINVAL;
			}
			o->dio_issue = (unsigned)v;
			return 0;
		}
		if (!strcmp(opt, "window"))
			return parse_uint(opt, val, 1, 65536, &o->dio_window);
		if (!strcmp(opt, "chunk"))
			return parse_chunk(opt, val, &o->dio_chunk);
		if (!strcmp(opt, "dio_workers"))
			return parse_uint(opt, val, 1, 64, &o->dio_workers);
		if (!strcmp(opt, "max_held"))
			return parse_size(opt, val, 1ull << 20, 1ull << 40, "1M to 1T",
					  &o->max_held);
		if (!strcmp(opt, "max_held_user"))
			return parse_size(opt, val, 1ull << 20, 1ull << 40, "1M to 1T",
					  &o->max_held_user);
		if (!strcmp(opt, "max_window"))
			return parse_uint(opt, val, 1, 65536, &o->max_window);
		if (!strcmp(opt, "max_chunk"))
			return parse_chunk(opt, val, &o->max_chunk);
		if (!strcmp(opt, "source_timeout")) {
			int ret = parse_seconds(opt, val, &o->source_timeout);

			if (!ret && o->source_timeout < 0.01) {
				rd_mount_err("-o source_timeout=%s: at least 0.01 s", val);
				ret = -EINVAL;
			}
			return ret;
		}
		if (!strcmp(opt, "attr_timeout"))
			return parse_seconds(opt, val, &o->attr_timeout);
		if (!strcmp(opt, "entry_timeout"))
			return parse_seconds(opt, val, &o->entry_timeout);
		if (!strcmp(opt, "fsname") || !strcmp(opt, "subtype")) {
			char buf[300];

			if (strchr(val, ',') || snprintf(buf, sizeof(buf), "%s=%s", opt, val) >=
			    (int)sizeof(buf)) {
				rd_mount_err("-o %s: value too long or has a comma", opt);
				return -EINVAL;
			}
			return add_fuse_opt(o, buf);
		}
		if (!strncmp(opt, "x-", 2) || !strcmp(opt, "comment"))
			return 0;
	}
	rd_mount_err("unknown option '%s%s%s' (see refdio mount --help)", opt, val ? "=" : "",
		  val ? val : "");
	return -EINVAL;
}

static int parse_opts(struct rd_mount_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && !ret; tok = strtok_r(NULL, ",", &save))
		if (*tok)
			ret = parse_one(o, tok);
	free(copy);
	return ret;
}

static void rd_mount_usage(FILE *f)
{
	fprintf(f,
"usage: refdio mount [-f] [-d] [-o OPTIONS] IMAGE MOUNTPOINT\n"
"       refdio IMAGE MOUNTPOINT [-o OPTIONS]       (the form mount.fuse3 uses)\n"
"\n"
"Serves the refdio filesystem in IMAGE at MOUNTPOINT through FUSE. The daemon detaches\n"
"once the filesystem is mounted; every start-up error is reported before that. Stop it\n"
"with fusermount3 -u MOUNTPOINT, umount MOUNTPOINT, or SIGTERM/SIGINT: everything is\n"
"flushed and the image is marked clean.\n"
"\n"
"  -f               stay in the foreground\n"
"  -d               debug: print every FUSE request (implies -f)\n"
"  -o OPTIONS       comma-separated:\n"
"     ro                     read-only\n"
"     allow_other            let other users in (needs user_allow_other for non-root)\n"
"     nodefault_permissions  do not let the kernel check permissions (on by default)\n"
"     direct_io              FOPEN_DIRECT_IO on every open: no page cache\n"
"     writeback_cache        let the kernel cache writes\n"
"     sync                   every write is O_DSYNC\n"
"     threads=N              receiving threads (default 4)\n"
"     max_background=N       asynchronous requests the kernel may queue (default 64)\n"
"     attr_timeout=S         seconds the kernel caches attributes (default 1)\n"
"     entry_timeout=S        seconds the kernel caches names (default 1)\n"
"     strategy=S             how writes reach the disk: refctx (default: a window of\n"
"                            chunks in flight), pin (all read first), chunk (one chunk\n"
"                            at a time), bounce64 (synchronous 256K steps)\n"
"     window=W               refctx chunks in flight per write (default 8)\n"
"     chunk=SIZE             chunk size, 4K..64M in 4K steps (default 1M)\n"
"     issue=inline|punt      inline (default): the request's thread starts the first\n"
"                            chunks; punt: always a dio worker\n"
"     dio_workers=N          dio worker threads (default 4)\n"
"     max_held=SIZE          memory budget: bytes of chunk buffers all writes may hold\n"
"                            at once (default 256M); a write waits for its share, and\n"
"                            one that can never fit (a pin larger than this) fails\n"
"                            with ENOBUFS before anything is written\n"
"     max_held_user=SIZE     of it, what one user's writes may hold (default 3/4 of\n"
"                            max_held: a user whose memory stalls leaves the rest)\n"
"     max_window=W           an ioctl's window is cut to W (default 64)\n"
"     max_chunk=SIZE         an ioctl's chunk is cut to SIZE (default 16M)\n"
"     source_timeout=S       seconds one read of a caller's memory may take before the\n"
"                            write ends with what it has (default 5)\n"
"     fsname=NAME, subtype=NAME, and the generic mount flags (nosuid, nodev, noexec,\n"
"     noatime, ...) are passed on; an unknown option is an error.\n");
}

int rd_mount_parse(int argc, char **argv, struct rd_mount_opts *o)
{
	int pos = 0;

	memset(o, 0, sizeof(*o));
	o->default_permissions = true;
	o->threads = 4;
	o->max_background = 64;
	o->attr_timeout = 1.0;
	o->entry_timeout = 1.0;
	o->dio_strategy = RD_DIO_REFCTX;
	o->dio_issue = RD_DIO_INLINE;
	o->dio_window = 8;
	o->dio_chunk = 1u << 20;
	o->dio_workers = 4;
	o->max_held = 256ull << 20;
	o->max_window = 64;
	o->max_chunk = 16u << 20;
	o->source_timeout = 5.0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-f")) {
			o->foreground = true;
		} else if (!strcmp(a, "-d")) {
			o->debug = o->foreground = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			rd_mount_usage(stdout);
			return 1;
		} else if (!strncmp(a, "-o", 2)) {
			const char *list = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
			int ret;

			if (!list) {
				rd_mount_err("-o needs a list of options");
				return -EINVAL;
			}
			ret = parse_opts(o, list);
			if (ret)
				return ret;
		} else if (a[0] == '-' && a[1]) {
			rd_mount_err("unknown argument '%s' (see refdio mount --help)", a);
			return -EINVAL;
		} else if (pos == 0) {
			o->image = a;
			pos++;
		} else if (pos == 1) {
			o->mountpoint = a;
			pos++;
		} else {
			rd_mount_err("unexpected argument '%s'", a);
			return -EINVAL;
		}
	}
	if (pos != 2) {
		rd_mount_err("needs IMAGE and MOUNTPOINT (see refdio mount --help)");
		return -EINVAL;
	}
	if (o->dio_window > o->max_window || o->dio_chunk > o->max_chunk) {
		rd_mount_err("window=%u and chunk=%u must not exceed max_window=%u and max_chunk=%u",
			  o->dio_window, o->dio_chunk, o->max_window, o->max_chunk);
		return -EINVAL;
	}
	if (!o->max_held_user)
		o->max_held_user = o->max_held / 4 * 3;
	if (o->max_held_user > o->max_held) {
		rd_mount_err("max_held_user=%llu exceeds max_held=%llu",
			  (unsigned long long)o->max_held_user, (unsigned long long)o->max_held);
		return -EINVAL;
	}
	/* Every chunk size allowed must fit a user's share at least once (a buffer is the
	 * next power of two), else writes of that size could never start. */
	if (dio_buf_bytes(o->max_chunk) > o->max_held_user) {
		rd_mount_err("max_held_user=%llu is below one buffer of max_chunk=%u (%llu bytes)",
			  (unsigned long long)o->max_held_user, o->max_chunk,
			  (unsigned long long)dio_buf_bytes(o->max_chunk));
		return -EINVAL;
	}
	if (o->default_permissions && add_fuse_opt(o, "default_permissions"))
		return -EINVAL;
	if (!strstr(o->fuse_opts, "fsname=")) {
		char buf[PATH_MAX + 16];

		if (!strchr(o->image, ',') && strlen(o->image) < 256) {
			snprintf(buf, sizeof(buf), "fsname=%s", o->image);
			if (add_fuse_opt(o, buf))
				return -EINVAL;
		}
	}
	if (!strstr(o->fuse_opts, "subtype=") && add_fuse_opt(o, "subtype=refdio"))
		return -EINVAL;
	/* What the daemon relies on from here on, every value checked above. */
	assert(o->image && o->mountpoint && o->dio_window <= o->max_window &&
	       o->dio_chunk <= o->max_chunk && o->max_held_user <= o->max_held);
	return 0;
}

