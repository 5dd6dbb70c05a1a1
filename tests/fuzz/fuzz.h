/*
 * fuzz.h - what the libFuzzer harnesses (fuzz_*.c) share with their two drivers: libFuzzer
 * itself (the -Dfuzz=true build, clang only) and replay.c (every build, gcc too), which runs
 * the committed seeds and regression inputs as an ordinary test.
 *
 * Owns: the harness contract and the image codec (fuzz_image.c): an input that describes a
 * small image as a sparse list of byte runs, which a harness turns into an in-memory file
 * (memfd, reached as /proc/self/fd/N) that the engine opens like any image.
 *
 * Must never: leave a file behind (images live in a memfd only), keep state from one input
 * to the next that changes what the next one does (inputs must replay alone), or call
 * anything that may block forever on a bad input.
 *
 * The contract of a harness file: it defines
 *  - LLVMFuzzerTestOneInput, which returns 0 for every input; a bug is a crash, a sanitizer
 *    report, or an abort() from a broken invariant (fz_assert);
 *  - fz_accepted: set by each run to whether the engine took the input as a valid image,
 *    node or superblock (the replay test requires it of every seed);
 *  - fz_damage: changes an accepted seed so that it must be rejected (the replay test's
 *    negative control: a harness that looked at nothing would accept it too).
 */
#ifndef RD_FUZZ_H
#define RD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern bool fz_accepted;
/* Damages buf (an accepted seed of n bytes) in place so that it must be rejected; false if
 * the seed has nothing this harness knows how to damage. */
bool fz_damage(uint8_t *buf, size_t n);

/* An invariant the engine promised: a violation is a finding, like a crash. */
#define fz_assert(cond) do {							\
	if (!(cond)) {								\
		fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__,	\
			__LINE__, #cond);					\
		abort();							\
	}									\
} while (0)

/* ---- each harness's flags (byte 0 of its input; the seed generator sets them too) ------- */

/* fuzz_sb */
#define SB_FIX_P	0x01	/* recompute the primary's checksum */
#define SB_FIX_B	0x02	/* recompute the backup's checksum */
#define SB_OWN_BACKUP	0x04	/* the backup has its own bytes (else: a copy of the primary) */
#define SB_OPEN		0x08	/* a copy accepted: open the store on the image too */
/* fuzz_node */
#define NODE_FIX	0x01	/* recompute the node's checksum */
#define NODE_XXHASH	0x02	/* metadata checksummed with xxhash (else crc32c) */
#define NODE_EXPECT	0x04	/* expected tree and level from the input (else the header) */
/* fuzz_journal (and FZ_FIX_CSUMS below) */
#define JR_WRITE	0x02	/* open read-write, close, reopen */
#define JR_FS		0x04	/* open the filesystem (rd_fs_open), walk it, (JR_WRITE) change it */
/* fuzz_fsck (and FZ_FIX_CSUMS below) */
#define FK_REPAIR	0x02	/* fsck -y, then fsck -n */
#define FK_DATA		0x04	/* verify data checksums */

/* ---- the image codec (fuzz_image.c) ------------------------------------------------------ */

/*
 * Input layout of the image harnesses (fuzz_journal, fuzz_fsck):
 *   byte 0      flags: FZ_FIX_CSUMS, then harness-specific bits
 *   bytes 1-2   image size in KiB (le16), capped at FZ_IMAGE_MAX
 *   then runs:  le16 offset in 512-byte sectors, le16 length, length bytes
 * The image is zero except for the runs (later runs win); a run past the image's end is
 * cut, a last run shorter than its length takes what is there.
 */
#define FZ_FIX_CSUMS		0x01	/* recompute sb, node and journal checksums */
#define FZ_IMAGE_HDR		3
#define FZ_RUN_HDR		4
#define FZ_IMAGE_MAX		(4u << 20)

struct fz_image {
	int		fd;		/* memfd, kept across inputs, truncated each time */
	char		path[32];	/* /proc/self/fd/N */
	uint8_t		*buf;		/* the image as assembled */
	uint64_t	size;
	uint64_t	dirty;		/* bytes of buf the last input wrote */
	uint8_t		flags;
};

/* Builds the image data describes into im (created on first use) and its memfd. 0, or
 * -errno if the memfd could not be written (the caller skips the input). */
int fz_image_load(struct fz_image *im, const uint8_t *data, size_t len);

/*
 * With FZ_FIX_CSUMS: recomputes the checksum of both superblock copies, and of every b-tree
 * node and journal entry header found on a 512-byte boundary (their magic under the uuid of
 * the superblock), so that mutations reach the checks behind the checksums.
 */
void fz_fix_csums(uint8_t *img, uint64_t size);

/* The fuzz input that describes img (the seed generator's side of the codec): runs of
 * non-zero sectors. *out is malloc()ed. */
int fz_image_encode(const uint8_t *img, uint64_t size, uint8_t flags, uint8_t **out,
		    size_t *out_len);

/* Runs: where they are in an encoded input (fz_damage implementations walk them). Calls
 * fn for each run's data with its image offset; stops when fn returns false. */
void fz_image_runs(uint8_t *data, size_t len,
		   bool (*fn)(void *priv, uint64_t off, uint8_t *run, size_t n), void *priv);

/* Negative controls: flips a bit in the magic of every b-tree node (FZ_DAMAGE_NODES) and/or
 * journal entry (FZ_DAMAGE_JOURNAL) header of an encoded input (under the uuid of its
 * primary superblock) and clears FZ_FIX_CSUMS. Returns how many it damaged. */
#define FZ_DAMAGE_NODES		0x01
#define FZ_DAMAGE_JOURNAL	0x02
unsigned fz_damage_magics(uint8_t *data, size_t len, unsigned which);

#endif
