/*
 * cmd_demo_strategies.c - `refdio demo strategies`: a short `refdio bench` matrix (the four
 * strategies, refctx at two windows, a host O_DIRECT row), its table and charts, and how to
 * read them. The bench formats, mounts, unmounts and fsck's its own scratch image; this
 * file runs it as a child and judges its JSON.
 *
 * Measured (by the bench, read from its bench.json): every cell's status and the bytes it
 * read back, each write's peak of held memory, the bench's fsck and daemon exit.
 *
 * Must never: signal the bench (a Ctrl-C at the terminal reaches it directly, and it cleans
 * up on its own); remove a directory it did not create.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cmd.h"
#include "cmd_demo.h"

/* Runs argv with stdout into log and stderr (the bench's progress line) on ours. */
static int run_bench(char *const argv[], const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), ws;
	bool passed = false;
	pid_t pid;

	if (fd < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		close(fd);
		return -1;
	}
	if (!pid) {
		dup2(fd, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd);
	/* A Ctrl-C at the terminal reaches the bench too; a SIGTERM or SIGHUP to the demo
	 * alone is passed on as SIGINT, once, so that the bench stops and cleans up. */
	while (waitpid(pid, &ws, 0) < 0) {
		if (errno != EINTR)
			return -1;
		if (bench_stop && !passed) {
			kill(pid, SIGINT);
			passed = true;
		}
	}
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

static void print_file(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("   | %s", line);
	fclose(f);
}

static uint64_t get_u64(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ?
		json_object_get_string(v) : "";
}

/* The verdict from bench.json: every cell ran and read back right, the image was clean,
 * pin held its whole write and refctx W=8 at most 8 chunks. */
static void judge(const char *json, uint64_t size, struct demo_result *r, char *why, size_t wl)
{
	json_object *root = json_object_from_file(json), *m, *setup, *fsck;
	uint64_t pin_held = 0, ref_held = 0, chunk = 0;
	double pin_mibs = 0, ref_mibs = 0, host_mibs = 0;
	unsigned cells = 0;

	if (!root) {
		snprintf(why, wl, "no bench.json: %s", json_util_get_last_err());
		return;
	}
	if (!json_object_object_get_ex(root, "matrix", &m) || !json_object_is_type(m,
			json_type_array) || !json_object_object_get_ex(root, "setup", &setup) ||
	    !json_object_object_get_ex(setup, "fsck", &fsck)) {
		snprintf(why, wl, "bench.json lacks matrix or setup.fsck");
		goto out;
	}
	if (strcmp(get_str(fsck, "result"), "clean") || get_u64(setup, "daemon_exit")) {
		snprintf(why, wl, "the bench's image: fsck %s, daemon exit %" PRIu64,
			 get_str(fsck, "result"), get_u64(setup, "daemon_exit"));
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(m); i++) {
		json_object *c = json_object_array_get_idx(m, i), *runs, *md, *v, *h;
		const char *s = get_str(c, "strategy");
		uint64_t held = 0;
		double mibs = 0;

		if (strcmp(get_str(c, "status"), "ok")) {
			snprintf(why, wl, "cell %zu (%s): %s %s", i, s, get_str(c, "status"),
				 get_str(c, "reason"));
			goto out;
		}
		if (json_object_object_get_ex(c, "median", &md) &&
		    json_object_object_get_ex(md, "mib_s", &v))
			mibs = json_object_get_double(v);
		if (json_object_object_get_ex(c, "runs", &runs))
			for (size_t k = 0; k < json_object_array_length(runs); k++) {
				json_object *x = json_object_array_get_idx(runs, k);

				if (get_u64(x, "verify_mismatches")) {
					snprintf(why, wl, "cell %zu (%s): bytes read back differ", i, s);
					goto out;
				}
				if (get_u64(x, "write_held_peak") > held)
					held = get_u64(x, "write_held_peak");
			}
		cells++;
		if (json_object_object_get_ex(c, "host", &h) && json_object_get_boolean(h))
			host_mibs = mibs;
		else if (!strcmp(s, "pin"))
			pin_held = held, pin_mibs = mibs;
		else if (!strcmp(s, "refctx") && get_u64(c, "window") == 8)
			ref_held = held, ref_mibs = mibs, chunk = get_u64(c, "chunk");
	}
	if (cells < 6)
		snprintf(why, wl, "only %u cells in the matrix", cells);
	else if (pin_held < size)
		snprintf(why, wl, "pin held at most %" PRIu64 " bytes of a %" PRIu64 "-byte write",
			 pin_held, size);
	else if (!ref_held || ref_held > 8 * (chunk + 64 * 1024))
		snprintf(why, wl, "refctx W=8 held %" PRIu64 " bytes (8 chunks of %" PRIu64 ")",
			 ref_held, chunk);
	else
		snprintf(r->detail, sizeof(r->detail), "%u cells ok and verified; refctx W=8 "
			 "%.0f MiB/s holding %" PRIu64 " KiB, pin %.0f MiB/s holding %" PRIu64
			 " KiB, host %.0f MiB/s", cells, ref_mibs, ref_held >> 10, pin_mibs,
			 pin_held >> 10, host_mibs);
out:
	json_object_put(root);
}

void demo_strategies(const struct demo_opts *o, struct bench_env *e, struct demo_result *r,
		     char *why, size_t wl)
{
	const char *size = o->fast ? "32M" : "128M", *repeat = o->fast ? "1" : "3";
	char self[PATH_MAX], dir[PATH_MAX], out[PATH_MAX + 8], log[PATH_MAX + 16];
	char json[PATH_MAX + 32], txt[PATH_MAX + 32];
	char *argv[] = { self, "bench", "--strategies", "refctx,pin,chunk,bounce64",
			 "--windows", "1,8", "--sizes", (char *)size, "--jobs", "none",
			 "--repeat", (char *)repeat, "--dir", (char *)o->dir, "--out", out, NULL };
	uint64_t sz = 0;
	ssize_t n;
	int st;

	(void)e;
	rd_parse_size(size, &sz);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		snprintf(why, wl, "cannot find this program: %s", strerror(errno));
		return;
	}
	self[n] = 0;
	if (snprintf(dir, sizeof(dir), "%s/refdio-demo.XXXXXX", o->dir) >= (int)sizeof(dir) ||
	    !mkdtemp(dir)) {
		snprintf(why, wl, "%s: %s", o->dir, strerror(errno));
		return;
	}
	snprintf(out, sizeof(out), "%s/bench", dir);
	snprintf(log, sizeof(log), "%s/bench.log", dir);
	snprintf(json, sizeof(json), "%s/bench.json", out);
	snprintf(txt, sizeof(txt), "%s/bench.txt", out);

	demo_step("the strategies side by side: refdio bench");
	demo_say("One direct write of %s per cell with each strategy (refctx with 1 and 8 "
		 "chunks in flight, pin, chunk, bounce64) and the same bytes written O_DIRECT to "
		 "the host filesystem; %s run(s) per cell. The bench formats, mounts, unmounts "
		 "and checks its own scratch image.", size, repeat);
	printf("   $ refdio");
	for (int i = 1; argv[i]; i++)
		printf(" %s", argv[i]);
	printf("\n");
	st = run_bench(argv, log);
	if (st) {
		snprintf(why, wl, "refdio bench exited %d (%s)", st, log);
		print_file(log);
		goto out;
	}
	print_file(txt);
	demo_say("How to read it: MiB/s is the write's speed and `x host` its ratio to the host "
		 "row; `held` is the most chunk memory the daemon held for one write. pin holds "
		 "the whole write (its `held` equals the size), refctx holds W chunks whatever "
		 "the size, chunk and bounce64 one at a time, and pay for it in speed.");
	demo_say("The charts (PNG, with their gnuplot scripts) are in %s%s.", out,
		 o->keep ? "" : " (removed at the end: --keep keeps them)");
	judge(json, sz, r, why, wl);
out:
	if (!o->keep) {
		char *rm[] = { "rm", "-rf", "--one-file-system", dir, NULL };

		bench_run_child(rm, NULL);
	}
}
