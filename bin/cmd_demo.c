/*
 * cmd_demo.c - `refdio demo [SCENARIO] [--fast] [--keep] [--dir DIR]`: the scenarios refdio
 * exists for, live, each on a scratch image of its own, each ending with one line
 * "verdict NAME: PASS|FAIL detail" that a program can check; `all` runs them one after
 * another and ends with a summary table.
 *
 * Owns: the options, the scenario table (sizes, mount options, the words that introduce
 * each), the order of a run, the verdict lines and the exit status: 0 every scenario
 * passed, 1 one failed, 2 bad usage, 130 interrupted (after cleaning up).
 *
 * Must never: leave a mount, a daemon or a scratch file behind (every scenario's
 * environment ends in demo_env_finish, signals only set bench_stop), or print a figure
 * that was not measured in this run.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "cmd_demo.h"

struct demo_scenario {
	const char	*name;
	const char	*title;
	const char	*why;		/* one or two sentences: why it matters */
	uint64_t	image_fast, image_full;	/* 0: no mount of ours (the bench has its own) */
	const char	*mount_opts;
	demo_run_fn	*run;
};

static const struct demo_scenario scenarios[] = {
	{ "caller-exit", "a caller that dies in the middle of its write",
	  "A worker that goes on using a caller's address space after the caller is gone reads "
	  "freed or reused memory. refdio reads the caller through a counted reference, a chunk "
	  "at a time, and stops at the next chunk boundary when the caller is gone.",
	  2 * GIB, 6 * GIB, NULL, demo_caller_exit },
	{ "huge-write", "one huge write, a few chunks of memory",
	  "Pinning a multi-gigabyte write up front costs its whole size in memory. refdio's "
	  "refctx holds a window of chunks whatever the size, and the memory budget refuses a "
	  "pin that can never fit.",
	  2 * GIB, 20 * GIB, "max_held=256M", demo_huge_write },
	{ "strategies", "the four strategies measured side by side",
	  "The old code walked a write 64 pages at a time through one bounce buffer; bcachefs "
	  "keeps one chunk in flight; iomap pins it all. refdio bench runs each.",
	  0, 0, NULL, demo_strategies },
	{ "interrupt", "a synchronous write killed with SIGKILL",
	  "A process killed inside a huge write must not hang in the kernel until the whole "
	  "write is done: refdio answers the interrupt between two chunks.",
	  2 * GIB, 10 * GIB, NULL, demo_interrupt },
};
#define NR_SCENARIOS	(sizeof(scenarios) / sizeof(scenarios[0]))

static void demo_usage(FILE *f)
{
	fprintf(f,
"usage: refdio demo [SCENARIO] [--fast] [--keep] [--dir DIR]\n"
"\n"
"Shows, live, what refdio's direct-write design is for. Each scenario formats a scratch\n"
"image, mounts it (a child `refdio mount`), narrates each step with the numbers the\n"
"daemon reports, unmounts, checks the image with `refdio fsck -n`, and ends with one line\n"
"'verdict SCENARIO: PASS|FAIL ...'. Ctrl-C stops it and cleans up. Needs FUSE (root or\n"
"/dev/fuse access). docs/demo.md describes the scenarios.\n"
"\n"
"scenarios:\n"
"  caller-exit   a child submits a large asynchronous write and is killed part-way: the\n"
"                write ends at a chunk boundary, the file holds exactly that prefix\n"
"  huge-write    one 16 GiB write (RAM cost 4 MiB) with refctx, the daemon's memory\n"
"                watched live, beside the raw disk; then pin, refused by -o max_held\n"
"  strategies    a short refdio bench matrix: its table and charts\n"
"  interrupt     a synchronous write killed with SIGKILL: the caller gone within 1 s\n"
"  all           all of them, then a summary table (the default)\n"
"\n"
"options:\n"
"  --fast        small sizes: `all` runs in about a minute\n"
"  --keep        keep each scenario's scratch directory, image and charts\n"
"  --dir DIR     where the scratch directories go (default /var/tmp); a disk filesystem\n"
"                (the raw-disk comparison and the bench's baseline need O_DIRECT)\n"
"  -h, --help    this text\n"
"\n"
"Exit status: 0 every verdict PASS, 1 a FAIL, 2 bad usage, 130 interrupted.\n");
}

static void run_one(const struct demo_opts *o, const struct demo_scenario *sc,
		    struct demo_result *r)
{
	uint64_t image = o->fast ? sc->image_fast : sc->image_full;
	char why[256] = "", fwhy[256] = "";
	double t0 = demo_now();
	struct bench_env e;
	bool env_ok = true;

	r->name = sc->name;
	r->ran = true;
	r->detail[0] = 0;
	r->inspect_ino = r->inspect_end = 0;
	printf("\n== %s: %s\n", sc->name, sc->title);
	demo_say("%s", sc->why);
	if (image) {
		if (demo_env_start(o, image, sc->mount_opts, &e)) {
			snprintf(why, sizeof(why), "could not format and mount a scratch image");
			goto verdict;
		}
		sc->run(o, &e, r, why, sizeof(why));
		env_ok = demo_env_finish(o, &e, r, fwhy, sizeof(fwhy));
	} else {
		sc->run(o, NULL, r, why, sizeof(why));
	}
verdict:
	r->pass = !why[0] && env_ok && !bench_stop;
	if (bench_stop && !why[0])
		snprintf(why, sizeof(why), "interrupted");
	if (why[0])
		snprintf(r->detail, sizeof(r->detail), "%s", why);
	else if (!env_ok)
		snprintf(r->detail, sizeof(r->detail), "%s", fwhy);
	else if (image)
		snprintf(r->detail + strlen(r->detail), sizeof(r->detail) - strlen(r->detail),
			 ", fsck clean");
	r->seconds = demo_now() - t0;
	printf("\nverdict %s: %s %s (%.1f s)\n", r->name, r->pass ? "PASS" : "FAIL", r->detail,
	       r->seconds);
	fflush(stdout);
}

static void summary(const struct demo_result *res, unsigned n)
{
	printf("\n== summary\n%-12s %-7s %8s  %s\n", "scenario", "verdict", "seconds", "what was "
	       "measured");
	for (unsigned i = 0; i < n; i++)
		printf("%-12s %-7s %8.1f  %s\n", res[i].name, !res[i].ran ? "-" : res[i].pass ?
		       "PASS" : "FAIL", res[i].seconds, res[i].ran ? res[i].detail : "not run");
}

int cmd_demo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "fast", no_argument, NULL, 'f' },
		{ "keep", no_argument, NULL, 'k' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct demo_opts o = { .dir = "/var/tmp" };
	struct demo_result res[NR_SCENARIOS];
	const char *which = "all";
	unsigned ran = 0, passed = 0;
	bool found = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': o.fast = true; break;
		case 'k': o.keep = true; break;
		case 'd': o.dir = optarg; break;
		case 'h': demo_usage(stdout); return 0;
		default: demo_usage(stderr); return 2;
		}
	}
	if (optind < argc - 1) {
		demo_usage(stderr);
		return 2;
	}
	if (optind == argc - 1)
		which = argv[optind];
	for (unsigned i = 0; i < NR_SCENARIOS; i++)
		found = found || !strcmp(which, scenarios[i].name);
	if (!found && strcmp(which, "all"))
		return rd_fail("demo", "unknown scenario '%s' (caller-exit, huge-write, "
			       "strategies, interrupt, all)", which) + 1;
	if (access(o.dir, W_OK))
		return rd_fail("demo", "--dir %s: not a writable directory", o.dir) + 1;

	bench_signals_install();
	memset(res, 0, sizeof(res));
	for (unsigned i = 0; i < NR_SCENARIOS; i++) {
		res[i].name = scenarios[i].name;
		if (bench_stop || (strcmp(which, "all") && strcmp(which, scenarios[i].name)))
			continue;
		run_one(&o, &scenarios[i], &res[i]);
		ran++;
		passed += res[i].pass;
	}
	if (!strcmp(which, "all"))
		summary(res, NR_SCENARIOS);
	if (bench_stop) {
		fprintf(stderr, "refdio demo: interrupted (cleaned up)\n");
		return 130;
	}
	return ran && passed == ran ? 0 : 1;
}
