/*
 * replay.c - runs a fuzz harness over files, without libFuzzer: the ordinary test that
 * every build (gcc too) runs, so that seeds and regression inputs are checked on each one.
 * Usage: fuzz_replay_NAME [--seeds DIR]... [--regress DIR]... [FILE]...
 *
 *  --seeds DIR    every file must be accepted (a valid image, node or superblock: the
 *                 harness reached the engine's deep paths with it), and, damaged by the
 *                 harness's fz_damage, rejected: the negative control, showing that the
 *                 harness looks at what it is given. At least one control must run.
 *  --regress DIR  every file (a crash the fuzzer once found) must run to completion; a
 *                 crash or a sanitizer report fails the test, as it did the fuzzer. A
 *                 missing directory is empty.
 *  FILE           run once, as a regression input.
 *  --image INPUT OUT  (image harnesses) write the image INPUT describes, checksums fixed
 *                 as its flags say, to OUT: for `refdio fsck`, `refdio show` and friends.
 *
 * Owns: nothing but the loop. Must never: change the files it reads.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "fuzz.h"

static unsigned failures;

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto fail;
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto fail;
	fclose(f);
	*len = (size_t)n;
	return buf;
fail:
	fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
	if (f)
		fclose(f);
	free(buf);
	exit(1);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files in dir, sorted (a stable order for the log); NULL-terminated. */
static char **list_dir(const char *dir, bool must_exist)
{
	DIR *d = opendir(dir);
	char **v = calloc(1, sizeof(*v));
	size_t n = 0;
	struct dirent *e;

	if (!v)
		exit(1);
	if (!d) {
		if (must_exist) {
			fprintf(stderr, "%s: %s\n", dir, strerror(errno));
			exit(1);
		}
		return v;
	}
	while ((e = readdir(d))) {
		char **nv;

		if (e->d_name[0] == '.')
			continue;
		nv = realloc(v, (n + 2) * sizeof(*v));
		if (!nv || asprintf(&nv[n], "%s/%s", dir, e->d_name) < 0)
			exit(1);
		v = nv;
		v[++n] = NULL;
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_names);
	return v;
}

static void free_list(char **v)
{
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Seeds: accepted as they are, rejected once damaged. Returns the controls run. */
static unsigned run_seeds(const char *dir)
{
	char **v = list_dir(dir, true);
	unsigned n = 0, controls = 0;

	for (char **p = v; *p; p++, n++) {
		size_t len;
		uint8_t *buf = slurp(*p, &len);

		LLVMFuzzerTestOneInput(buf, len);
		if (!fz_accepted) {
			fprintf(stderr, "FAIL %s: a seed the harness does not accept\n", *p);
			failures++;
		} else if (fz_damage(buf, len)) {
			LLVMFuzzerTestOneInput(buf, len);
			if (fz_accepted) {
				fprintf(stderr, "FAIL %s: still accepted once damaged\n", *p);
				failures++;
			}
			controls++;
		}
		free(buf);
	}
	printf("%s: %u seeds, %u damaged copies checked\n", dir, n, controls);
	if (!n) {
		fprintf(stderr, "FAIL %s: no seeds\n", dir);
		failures++;
	}
	free_list(v);
	return controls;
}

static void run_one(const char *path)
{
	size_t len;
	uint8_t *buf = slurp(path, &len);

	LLVMFuzzerTestOneInput(buf, len);
	printf("  %s: %s\n", path, fz_accepted ? "accepted" : "rejected");
	free(buf);
}

static void write_image(const char *in, const char *out)
{
	struct fz_image im = { 0 };
	size_t len;
	uint8_t *buf = slurp(in, &len);
	FILE *f;

	if (fz_image_load(&im, buf, len) || !(f = fopen(out, "wb")) ||
	    fwrite(im.buf, 1, im.size, f) != im.size || fclose(f)) {
		fprintf(stderr, "cannot write %s\n", out);
		exit(1);
	}
	printf("%s: %llu bytes, flags %#x\n", out, (unsigned long long)im.size, im.flags);
	free(buf);
}

int main(int argc, char **argv)
{
	unsigned controls = 0, regress = 0;
	bool seeds = false;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
			controls += run_seeds(argv[++i]);
			seeds = true;
		} else if (!strcmp(argv[i], "--regress") && i + 1 < argc) {
			char **v = list_dir(argv[++i], false);

			for (char **p = v; *p; p++, regress++)
				run_one(*p);
			free_list(v);
		} else if (!strcmp(argv[i], "--image") && i + 2 < argc) {
			write_image(argv[i + 1], argv[i + 2]);
			i += 2;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "usage: %s [--seeds DIR]... [--regress DIR]... [--image INPUT OUT] [FILE]...\n",
				argv[0]);
			return 2;
		} else {
			run_one(argv[i]);
			regress++;
		}
	}
	if (seeds && !controls) {
		fprintf(stderr, "FAIL: no seed could be damaged: the negative control never ran\n");
		failures++;
	}
	printf("%u regression inputs ran to completion; %u failures\n", regress, failures);
	return failures ? 1 : 0;
}
