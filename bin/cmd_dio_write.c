/*
 * cmd_dio_write.c - `refdio dio-write`: one direct write from this process's own memory
 * into a file of a refdio mount, through the mount's ioctls (include/refdio_ioctl.h).
 *
 * Owns: laying out the bytes in memory (a file mapped, or the pattern), issuing
 * REFDIO_IOC_DIO_WRITE or REFDIO_IOC_DIO_SUBMIT + REFDIO_IOC_DIO_WAIT, and reporting
 * bytes, time and throughput.
 *
 * The pattern (--pattern SEED, the default with seed 1) is periodic with a period P of
 * 4 MiB + 4 KiB, so that a write of any size costs P bytes of memory: one P-byte block in a
 * memfd, mapped again and again. Block bytes [32 i, 32 i + 32) are SHA-256 of the 16 bytes
 * le64(SEED) le64(i); the byte the pattern puts at file offset f is block[f mod P]. P is
 * not a multiple of any chunk size, so a chunk landing at a wrong offset shows.
 *
 * Must never: take the daemon's word for anything but the ioctl results.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "cmd.h"
#include "refdio.h"
#include "refdio_ioctl.h"

#define PAT_PERIOD	((4u << 20) + 4096u)

static void dio_write_usage(FILE *f)
{
	fprintf(f,
"usage: refdio dio-write [OPTIONS] (--size N | --from FILE) FILE-ON-MOUNT\n"
"\n"
"Writes N bytes (or the contents of FILE) into FILE-ON-MOUNT (created if missing) with one\n"
"direct-write ioctl: the refdio daemon reads them from this process's memory a chunk at a\n"
"time. Prints the bytes written, the time and the throughput.\n"
"\n"
"options:\n"
"  --size N          bytes to write (K, M, G, T suffixes); with --from, at most N\n"
"  --from FILE       write FILE's contents (mapped, not read)\n"
"  --pattern SEED    the bytes are refdio's test pattern for SEED (default: seed 1): at\n"
"                    file offset f, byte f mod P of a block of P = 4 MiB + 4 KiB bytes whose\n"
"                    32-byte piece i is SHA-256(le64(SEED) le64(i))\n"
"  --offset O        file offset of the first byte (default 0)\n"
"  --strategy S      refctx, pin, chunk or bounce64 (default: the mount's)\n"
"  --window W        refctx chunks in flight (default: the mount's)\n"
"  --chunk SIZE      chunk size, a multiple of 4K up to 64M (default: the mount's)\n"
"  --issue I         inline or punt (default: the mount's)\n"
"  --dsync           durable before the call returns (as O_DSYNC)\n"
"  --async           submit, then wait for the result (the write runs in the daemon;\n"
"                    prints \"submitted ID\" first)\n"
"  --mutate          keep rewriting the buffer while the write runs (a test of checksums)\n"
"  --json            one JSON object instead of text\n"
"  -h, --help        this text\n"
"\n"
"Exit status: 0 all written, 3 a short write, 1 an error (nothing written), 2 bad usage.\n"
"A write that can never fit the mount's memory budget (-o max_held; pin holds the whole\n"
"write) fails at once with ENOBUFS, and the message says the budget and the need.\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The pattern block of seed: PAT_PERIOD bytes. */
static void pat_block(uint8_t *b, uint64_t seed)
{
	for (uint64_t i = 0; i < PAT_PERIOD / 32; i++) {
		uint8_t in[16];

		for (unsigned k = 0; k < 8; k++) {
			in[k] = (uint8_t)(seed >> (8 * k));
			in[8 + k] = (uint8_t)(i >> (8 * k));
		}
		crypto_hash_sha256(b + 32 * i, in, sizeof(in));
	}
}

struct buf {
	uint8_t		*addr;		/* the bytes to write */
	uint64_t	len;
	void		*map;		/* what to munmap */
	size_t		map_len;
	uint8_t		*block;		/* the pattern's block (mutable), NULL for --from */
};

/* Maps the pattern of seed for file range [off, off + len): the memfd block, mapped once
 * per period over a reserved range. */
static int map_pattern(uint64_t seed, uint64_t off, uint64_t len, struct buf *b)
{
	uint64_t start = off % PAT_PERIOD, periods = (start + len + PAT_PERIOD - 1) / PAT_PERIOD;
	uint8_t *base;
	int fd, ret = 0;

	if (!periods)
		periods = 1;
	if (periods > SIZE_MAX / PAT_PERIOD)
		return -ENOMEM;
	fd = memfd_create("refdio-pattern", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, PAT_PERIOD)) {
		ret = -errno;
		goto out;
	}
	base = mmap(NULL, periods * PAT_PERIOD, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	for (uint64_t i = 0; i < periods; i++) {
		void *p = mmap(base + i * PAT_PERIOD, PAT_PERIOD, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, fd, 0);

		if (p == MAP_FAILED) {
			ret = -errno;
			munmap(base, periods * PAT_PERIOD);
			goto out;
		}
	}
	pat_block(base, seed);	/* through the first mapping: every period sees it */
	b->map = base;
	b->map_len = periods * PAT_PERIOD;
	b->addr = base + start;
	b->len = len;
	b->block = base;
out:
	close(fd);
	return ret;
}

static int map_file(const char *path, uint64_t limit, bool limited, struct buf *b)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	b->len = (uint64_t)st.st_size;
	if (limited && limit < b->len)
		b->len = limit;
	b->map_len = b->len ? (size_t)b->len : 1;
	b->map = mmap(NULL, b->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (b->map == MAP_FAILED) {
		ret = -errno;
		b->map = NULL;
		goto out;
	}
	b->addr = b->map;
out:
	close(fd);
	return ret;
}

/* --mutate: rewrites the block, a page at a time, until told to stop. */
struct mutator {
	uint8_t		*block;
	atomic_bool	stop;
	atomic_uint_fast64_t pages;	/* pages rewritten so far */
};

static void *mutate_main(void *arg)
{
	struct mutator *m = arg;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		for (size_t p = 0; p < PAT_PERIOD; p += 4096) {
			for (size_t i = p; i < p + 4096; i += 8) {
				uint64_t w;

				memcpy(&w, m->block + i, 8);
				w ^= x;
				memcpy(m->block + i, &w, 8);
			}
			atomic_fetch_add_explicit(&m->pages, 1, memory_order_relaxed);
		}
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	}
	return NULL;
}

/*
 * Why the daemon refused or ended the write, in words: errno, and for ENOBUFS what the
 * budget is and what this write would need (from REFDIO_IOC_STATS on the same file).
 */
static void explain(int fd, const char *path, const char *what, int err,
		    const struct refdio_dio_write *io, int strategy)
{
	struct refdio_stats st;

	if (err != ENOBUFS) {
		rd_fail("dio-write", "%s: %s%s%s", path, what, strerror(err),
			err == ETIMEDOUT ? " (the memory to write from did not answer in time: "
			"-o source_timeout)" : err == ESHUTDOWN ? " (the daemon is stopping)" : "");
		return;
	}
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	if (ioctl(fd, REFDIO_IOC_STATS, &st) || st.version < 2) {
		rd_fail("dio-write", "%s: %s%s: this write can never fit the mount's memory "
			"budget (-o max_held)", path, what, strerror(err));
		return;
	}
	if (strategy == RD_DIO_PIN || (strategy < 0 && st.default_strategy ==
				       REFDIO_STRATEGY_PIN))
		rd_fail("dio-write", "%s: %s%s: pin holds the whole write at once (%" PRIu64
			" bytes) and one user may hold %" PRIu64 " bytes of the mount's memory "
			"budget (-o max_held %" PRIu64 ", max_held_user): it can never fit; "
			"nothing was written (use refctx, or a smaller write)", path, what,
			strerror(err), io->len, st.budget_max_user, st.budget_max);
	else
		rd_fail("dio-write", "%s: %s%s: one chunk buffer of this write is larger than "
			"what one user may hold of the mount's memory budget (%" PRIu64 " bytes of "
			"-o max_held %" PRIu64 "): it can never fit; nothing was written", path,
			what, strerror(err), st.budget_max_user, st.budget_max);
}

static int parse_name(const char *what, const char *v, int (*parse)(const char *), int *out)
{
	int r = parse(v);

	if (r < 0)
		return rd_fail("dio-write", "unknown %s '%s'", what, v);
	*out = r;
	return 0;
}

int cmd_dio_write(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "from", required_argument, NULL, 'f' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "offset", required_argument, NULL, 'o' },
		{ "strategy", required_argument, NULL, 'S' },
		{ "window", required_argument, NULL, 'W' },
		{ "chunk", required_argument, NULL, 'C' },
		{ "issue", required_argument, NULL, 'I' },
		{ "dsync", no_argument, NULL, 'D' },
		{ "async", no_argument, NULL, 'A' },
		{ "mutate", no_argument, NULL, 'M' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct refdio_dio_write io = { 0 };
	struct refdio_dio_wait wt = { 0 };
	struct mutator mut = { 0 };
	struct buf b = { 0 };
	const char *from = NULL, *path;
	uint64_t size = 0, seed = 1, window = 0, chunk = 0;
	bool have_size = false, async = false, json = false, mutate = false;
	int strategy = -1, issue = -1, opt, fd, status = 1, ret;
	pthread_t mt;
	bool mt_started = false;
	double t0, t;
	int64_t result;
	uint64_t elapsed_ns;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 's':
			if (rd_parse_size(optarg, &size))
				return rd_fail("dio-write", "bad --size '%s'", optarg) + 1;
			have_size = true;
			break;
		case 'f':
			from = optarg;
			break;
		case 'p':
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end)
				return rd_fail("dio-write", "bad --pattern '%s'", optarg) + 1;
			break;
		case 'o':
			if (rd_parse_size(optarg, &io.offset))
				return rd_fail("dio-write", "bad --offset '%s'", optarg) + 1;
			break;
		case 'S':
			if (parse_name("strategy", optarg, rd_dio_strategy_parse, &strategy))
				return 2;
			break;
		case 'I':
			if (parse_name("issue mode", optarg, rd_dio_issue_parse, &issue))
				return 2;
			break;
		case 'W':
			if (rd_parse_size(optarg, &window) || !window || window > 65536)
				return rd_fail("dio-write", "bad --window '%s' (1..65536)",
					       optarg) + 1;
			break;
		case 'C':
			if (rd_parse_size(optarg, &chunk) || !chunk || chunk % 4096 ||
			    chunk > REFDIO_CHUNK_MAX)
				return rd_fail("dio-write", "bad --chunk '%s' (4K..64M, 4K steps)",
					       optarg) + 1;
			break;
		case 'D':
			io.flags |= REFDIO_DIO_DSYNC;
			break;
		case 'A':
			async = true;
			break;
		case 'M':
			mutate = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			dio_write_usage(stdout);
			return 0;
		default:
			dio_write_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || (!have_size && !from)) {
		dio_write_usage(stderr);
		return 2;
	}
	path = argv[optind];
	if (sodium_init() < 0)
		return rd_fail("dio-write", "libsodium did not start");

	ret = from ? map_file(from, size, have_size, &b) : map_pattern(seed, io.offset, size, &b);
	if (ret)
		return rd_fail("dio-write", "%s: %s", from ? from : "pattern", strerror(-ret));
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rd_fail("dio-write", "%s: %s", path, strerror(errno));
		goto out_unmap;
	}
	io.buf = (uint64_t)(uintptr_t)b.addr;
	io.len = b.len;
	io.strategy = strategy < 0 ? REFDIO_STRATEGY_DEFAULT : (uint32_t)strategy + 1;
	io.issue = issue < 0 ? REFDIO_ISSUE_DEFAULT : (uint32_t)issue + 1;
	io.window = (uint32_t)window;
	io.chunk = (uint32_t)chunk;

	if (mutate && b.block) {
		mut.block = b.block;
		mt_started = !pthread_create(&mt, NULL, mutate_main, &mut);
		/* The buffer is already changing when the write starts. */
		while (mt_started && !atomic_load(&mut.pages))
			sched_yield();
	}
	t0 = now_s();
	if (!async) {
		if (ioctl(fd, REFDIO_IOC_DIO_WRITE, &io)) {
			explain(fd, path, "", errno, &io, strategy);
			goto out_close;
		}
		result = io.result;
		elapsed_ns = io.elapsed_ns;
	} else {
		if (ioctl(fd, REFDIO_IOC_DIO_SUBMIT, &io)) {
			explain(fd, path, "submit: ", errno, &io, strategy);
			goto out_close;
		}
		if (!json)
			printf("submitted %" PRIu64 "\n", io.id);
		else
			printf("{\"submitted\": %" PRIu64 "}\n", io.id);
		fflush(stdout);
		wt.id = io.id;
		while (ioctl(fd, REFDIO_IOC_DIO_WAIT, &wt)) {
			if (errno == EINTR)
				continue;
			rd_fail("dio-write", "%s: wait for %" PRIu64 ": %s", path, io.id,
				strerror(errno));
			goto out_close;
		}
		if (wt.result < 0) {
			explain(fd, path, "", (int)-wt.result, &io, strategy);
			goto out_close;
		}
		result = wt.result;
		elapsed_ns = wt.elapsed_ns;
	}
	t = now_s() - t0;
	status = (uint64_t)result == b.len ? 0 : 3;
	if (mt_started) {
		atomic_store(&mut.stop, true);
		pthread_join(mt, NULL);
		mt_started = false;
	}

	if (json) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "file", json_object_new_string(path));
		json_object_object_add(o, "requested", json_object_new_uint64(b.len));
		json_object_object_add(o, "bytes", json_object_new_uint64((uint64_t)result));
		json_object_object_add(o, "offset", json_object_new_uint64(io.offset));
		json_object_object_add(o, "seconds", json_object_new_double(t));
		json_object_object_add(o, "daemon_seconds",
				       json_object_new_double((double)elapsed_ns / 1e9));
		json_object_object_add(o, "mib_per_s", json_object_new_double(
			t > 0 ? (double)result / 1048576.0 / t : 0));
		json_object_object_add(o, "strategy", json_object_new_string(
			strategy < 0 ? "default" : rd_dio_strategy_name((unsigned)strategy)));
		json_object_object_add(o, "async", json_object_new_boolean(async));
		if (async)
			json_object_object_add(o, "id", json_object_new_uint64(io.id));
		json_object_object_add(o, "short", json_object_new_boolean(status == 3));
		if (mutate)
			json_object_object_add(o, "mutations",
					       json_object_new_uint64(atomic_load(&mut.pages)));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		printf("wrote %" PRId64 " of %" PRIu64 " bytes in %.3f s (daemon %.3f s): %.1f MiB/s%s\n",
		       result, b.len, t, (double)elapsed_ns / 1e9,
		       t > 0 ? (double)result / 1048576.0 / t : 0.0,
		       status == 3 ? " (short write)" : "");
	}
out_close:
	if (mt_started) {
		atomic_store(&mut.stop, true);
		pthread_join(mt, NULL);
	}
	close(fd);
out_unmap:
	if (b.map)
		munmap(b.map, b.map_len);
	return status;
}
