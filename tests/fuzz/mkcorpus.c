/*
 * mkcorpus.c - writes the fuzz harnesses' seed corpora from real images.
 * Usage: mkcorpus OUTDIR [STAMP]
 *
 * Formats a few tiny images (512-byte blocks and 8 KiB buckets, or 4 KiB blocks with
 * xxhash), fills them through the filesystem API (directories, files with data in
 * several extents, symlinks of one and two keys, small and multi-key xattrs, a hard link,
 * a rename, removals that leave whiteouts, an orphan), and closes them cleanly or crashes
 * them with the journal holding entries after a checkpoint. From each it writes:
 *   OUTDIR/sb/       both superblock copies (fuzz_sb's layout)
 *   OUTDIR/node/     every node of every tree, leaves and interior (fuzz_node's layout)
 *   OUTDIR/journal/  the crashed images (fuzz.h's image codec)
 *   OUTDIR/fsck/     every image, and with fsck -y and data checks on
 * then touches STAMP (for the build). Every seed is one a harness must accept: the replay
 * test checks that.
 *
 * Must never: leave a file behind. Images live in a memfd, reached as /proc/self/fd/N.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "btree.h"
#include "errors.h"
#include "fs.h"
#include "fuzz.h"
#include "io.h"
#include "sb.h"
#include "store.h"

static const char *outdir;
static unsigned nr_seeds;
static size_t seed_bytes;

static void die(const char *what, int err)
{
	fprintf(stderr, "mkcorpus: %s: %s\n", what, err ? rd_strerror(err) : "failed");
	exit(1);
}

#define TRY(what, expr) do {					\
	int _r = (int)(expr);					\
	if (_r < 0)						\
		die(what, _r);					\
} while (0)

static void put_seed(const char *harness, const char *name, const void *buf, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, harness);
	if (mkdir(path, 0755) && errno != EEXIST)
		die(path, -errno);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, harness, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		die(path, -EIO);
	nr_seeds++;
	seed_bytes += len;
}

/* ---- the images ------------------------------------------------------------------------ */

struct shape {
	const char *name;
	uint64_t size;
	uint32_t block, bucket, node;
	int csum;		/* meta and data */
	unsigned files;		/* regular files in the first round */
	bool crash;		/* crash after a checkpoint and a second round */
};

static const struct shape shapes[] = {
	{ "tiny", 256 << 10, 512, 8 << 10, 4096, RD_CSUM_CRC32C, 8, false },
	{ "tiny-crash", 256 << 10, 512, 8 << 10, 4096, RD_CSUM_CRC32C, 8, true },
	{ "wide-crash", 640 << 10, 512, 8 << 10, 4096, RD_CSUM_CRC32C, 120, true },
	{ "xxhash-crash", 1 << 20, 4096, 64 << 10, 4096, RD_CSUM_XXHASH, 12, true },
};

static const struct rd_fs_cred cred = { 1000, 1000 };

static uint64_t mk(struct rd_fs *fs, uint64_t dir, const char *name, uint32_t mode)
{
	struct rd_stat st;

	if (S_ISDIR(mode))
		TRY(name, rd_fs_mkdir(fs, dir, name, mode & 07777, &cred, &st));
	else
		TRY(name, rd_fs_mknod(fs, dir, name, mode, 0, &cred, &st));
	return st.ino;
}

static void put_data(struct rd_fs *fs, uint64_t ino, uint64_t off, size_t len, uint8_t seed)
{
	uint8_t buf[6000];

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(seed + i * 7);
	if (rd_fs_write(fs, ino, buf, len, off, 0) != (ssize_t)len)
		die("write", -EIO);
}

static void round_one(struct rd_fs *fs, const struct shape *sh, uint64_t *d)
{
	char name[64], big[3000], target[1500];
	struct rd_stat st;

	d[0] = mk(fs, RD_ROOT_INO, "d0", S_IFDIR | 0755);
	d[1] = mk(fs, d[0], "d1", S_IFDIR | 0700);
	memset(big, 'x', sizeof(big));
	memset(target, 't', sizeof(target) - 1);
	target[sizeof(target) - 1] = 0;
	for (unsigned i = 0; i < sh->files; i++) {
		uint64_t ino;

		snprintf(name, sizeof(name), "file-%u", i);
		ino = mk(fs, d[i % 2], name, S_IFREG | 0644);
		if (i % 3 == 0 && i < 12) {
			put_data(fs, ino, 0, 300 + 100 * i, (uint8_t)i);
			put_data(fs, ino, 100 + 7 * i, 200, (uint8_t)(i + 1));	/* a split */
		}
		if (i % 4 == 1)
			TRY("setxattr", rd_fs_setxattr(fs, ino, "user.small", name, strlen(name), 0));
		if (i == 2)	/* several keys: the value is larger than a key may carry */
			TRY("setxattr", rd_fs_setxattr(fs, ino, "user.big", big, sizeof(big), 0));
	}
	TRY("symlink", rd_fs_symlink(fs, d[0], "short", "file-0", &cred, NULL));
	TRY("symlink", rd_fs_symlink(fs, RD_ROOT_INO, "long", target, &cred, NULL));
	TRY("lookup", rd_fs_lookup(fs, d[0], "file-0", &st));
	TRY("link", rd_fs_link(fs, st.ino, d[1], "hard", NULL));
	TRY("rename", rd_fs_rename(fs, d[0], "file-2", d[1], "renamed", 0));
	TRY("unlink", rd_fs_unlink(fs, d[1], "file-3"));
}

static void round_two(struct rd_fs *fs, uint64_t *d)
{
	struct rd_setattr sa = { .valid = RD_SET_SIZE, .size = 6000 };
	struct rd_stat st;
	uint64_t ino;

	ino = mk(fs, d[1], "late", S_IFREG | 0600);
	put_data(fs, ino, 4096, 5000, 9);
	TRY("truncate", rd_fs_setattr(fs, ino, &sa, NULL));
	TRY("setxattr", rd_fs_setxattr(fs, ino, "user.late", "v", 1, 0));
	TRY("unlink", rd_fs_unlink(fs, d[0], "file-4"));
	TRY("rename", rd_fs_rename(fs, d[1], "renamed", RD_ROOT_INO, "moved", 0));
	/* An orphan: unlinked while referenced, still there when the process dies. */
	TRY("lookup", rd_fs_lookup(fs, d[0], "file-6", &st));
	TRY("iget", rd_fs_iget(fs, st.ino));
	TRY("unlink", rd_fs_unlink(fs, d[0], "file-6"));
	mk(fs, d[0], "empty-dir", S_IFDIR | 0755);
}

/* Formats and fills an image in a memfd; returns its fd. */
static int build(const struct shape *sh, char *path, size_t path_len)
{
	struct rd_format_opts fo = { .size = sh->size, .block_size = sh->block,
				     .bucket_size = sh->bucket, .btree_node_size = sh->node,
				     .journal_size = 4ull * sh->bucket, .data_csum = sh->csum,
				     .meta_csum = sh->csum, .label = sh->name, .force = true,
				     .no_direct = true };
	struct rd_fs_opts o = { .store = { .no_direct = true } };
	struct rd_fs *fs;
	uint64_t d[2];
	char why[256] = "";
	int fd = memfd_create(sh->name, MFD_CLOEXEC);

	if (fd < 0)
		die("memfd_create", -errno);
	snprintf(path, path_len, "/proc/self/fd/%d", fd);
	if (rd_store_format(path, &fo, why, sizeof(why))) {
		fprintf(stderr, "mkcorpus: format %s: %s\n", sh->name, why);
		exit(1);
	}
	if (rd_fs_open(path, &o, &fs, why, sizeof(why))) {
		fprintf(stderr, "mkcorpus: open %s: %s\n", sh->name, why);
		exit(1);
	}
	round_one(fs, sh, d);
	if (!sh->crash) {
		TRY("close", rd_fs_close(fs));
		return fd;
	}
	TRY("checkpoint", rd_btree_checkpoint(rd_fs_store(fs)));
	round_two(fs, d);
	/* Every entry durable, then the process dies: replay has work at the next open. */
	TRY("flush", rd_store_flush(rd_fs_store(fs), 0));
	rd_fs_crash(fs);
	return fd;
}

/* ---- seeds ----------------------------------------------------------------------------- */

static uint8_t *read_image(int fd, uint64_t size)
{
	uint8_t *img = malloc(size);

	if (!img || pread(fd, img, size, 0) != (ssize_t)size)
		die("reading the image", -EIO);
	return img;
}

static size_t trimmed(const uint8_t *p, size_t n)
{
	while (n && !p[n - 1])
		n--;
	return n;
}

/* fuzz_sb: [flags][size KiB][P][primary][backup]. */
static void sb_seeds(const struct shape *sh, const uint8_t *img, uint64_t size)
{
	const uint8_t *p = img + RD_SB_OFFSET, *b = img + size - RD_SB_SIZE;
	size_t pl = trimmed(p, RD_SB_SIZE), bl = trimmed(b, RD_SB_SIZE);
	uint8_t seed[5 + 2 * RD_SB_SIZE];
	char name[64];

	seed[1] = (uint8_t)(size >> 10);
	seed[2] = (uint8_t)(size >> 18);
	seed[3] = (uint8_t)pl;
	seed[4] = (uint8_t)(pl >> 8);
	memcpy(seed + 5, p, pl);
	seed[0] = SB_OPEN | SB_FIX_P;	/* the backup a copy of the primary */
	snprintf(name, sizeof(name), "%s-primary", sh->name);
	put_seed("sb", name, seed, 5 + pl);
	seed[0] = SB_OWN_BACKUP | SB_FIX_P | SB_FIX_B;
	memcpy(seed + 5 + pl, b, bl);
	snprintf(name, sizeof(name), "%s-both", sh->name);
	put_seed("sb", name, seed, 5 + pl + bl);
}

struct node_ctx {
	const struct shape *sh;
	const struct rd_geometry *g;
	const uint8_t *img;
	uint64_t size;
	unsigned n;
};

static int node_seed(void *priv, const struct rd_node_info *ni)
{
	struct node_ctx *c = priv;
	static uint8_t seed[16 + 65536];
	const struct rd_btree_node *h;
	unsigned shift = 0;
	uint32_t bytes;
	char name[64];

	/* The node as it is on disk (a replayed tree may hold a changed copy in memory). */
	if (ni->error || !ni->offset || ni->offset + c->g->btree_node_size > c->size)
		return 0;
	h = (const void *)(c->img + ni->offset);
	bytes = rd_le32_get(h->bytes);
	if (bytes < sizeof(*h) || bytes > c->g->btree_node_size)
		die("a node on disk is not one", 0);
	while ((4096u << shift) < c->g->btree_node_size)
		shift++;
	memset(seed, 0, 16);
	seed[0] = NODE_FIX | (c->g->meta_csum == RD_CSUM_XXHASH ? NODE_XXHASH : 0);
	seed[1] = (uint8_t)shift;
	for (unsigned i = 0; i < 8; i++)
		seed[2 + i] = (uint8_t)(c->g->magic_xor >> (8 * i));
	memcpy(seed + 16, c->img + ni->offset, bytes);
	snprintf(name, sizeof(name), "%s-%s-l%u-%u", c->sh->name, rd_btree_name(ni->id),
		 ni->level, c->n++);
	put_seed("node", name, seed, 16 + bytes);
	return 0;
}

static void node_seeds(const struct shape *sh, const char *path, const uint8_t *img)
{
	struct rd_open_opts oo = { .read_only = true, .no_direct = true };
	struct rd_store *s;
	char why[256] = "";
	struct node_ctx c = { .sh = sh, .img = img, .size = sh->size };

	if (rd_store_open(path, &oo, &s, why, sizeof(why))) {
		fprintf(stderr, "mkcorpus: reopen %s: %s\n", sh->name, why);
		exit(1);
	}
	c.g = &s->geo;
	for (unsigned id = 0; id < RD_BTREE_NR; id++)
		TRY("walk", rd_btree_walk(s, id, true, node_seed, &c));
	TRY("close", rd_store_close(s));
}

static void image_seed(const char *harness, const char *name, const uint8_t *img,
		       uint64_t size, uint8_t flags)
{
	uint8_t *enc;
	size_t len;

	TRY("encode", fz_image_encode(img, size, flags, &enc, &len));
	put_seed(harness, name, enc, len);
	free(enc);
}

int main(int argc, char **argv)
{
	char path[64], name[64];

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: mkcorpus OUTDIR [STAMP]\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) && errno != EEXIST)
		die(outdir, -errno);
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *sh = &shapes[i];
		int fd = build(sh, path, sizeof(path));
		uint8_t *img = read_image(fd, sh->size);

		sb_seeds(sh, img, sh->size);
		node_seeds(sh, path, img);
		/* Most seeds ask for checksums to be recomputed after mutation, so that the
		 * fuzzer reaches the checks behind them; one per image does not. */
		if (sh->crash) {
			image_seed("journal", sh->name, img, sh->size, 0);
			snprintf(name, sizeof(name), "%s-fix", sh->name);
			image_seed("journal", name, img, sh->size, FZ_FIX_CSUMS);
			snprintf(name, sizeof(name), "%s-write", sh->name);
			image_seed("journal", name, img, sh->size, FZ_FIX_CSUMS | JR_WRITE);
			snprintf(name, sizeof(name), "%s-fs", sh->name);
			image_seed("journal", name, img, sh->size, FZ_FIX_CSUMS | JR_FS);
			snprintf(name, sizeof(name), "%s-fs-write", sh->name);
			image_seed("journal", name, img, sh->size,
				   FZ_FIX_CSUMS | JR_FS | JR_WRITE);
		}
		image_seed("fsck", sh->name, img, sh->size, 0);
		snprintf(name, sizeof(name), "%s-fix", sh->name);
		image_seed("fsck", name, img, sh->size, FZ_FIX_CSUMS);
		snprintf(name, sizeof(name), "%s-data", sh->name);
		image_seed("fsck", name, img, sh->size, FZ_FIX_CSUMS | FK_DATA);
		snprintf(name, sizeof(name), "%s-repair", sh->name);
		image_seed("fsck", name, img, sh->size, FZ_FIX_CSUMS | FK_REPAIR);
		free(img);
		close(fd);
	}
	printf("mkcorpus: %u seeds, %zu bytes, in %s\n", nr_seeds, seed_bytes, outdir);
	if (argc == 3) {
		FILE *f = fopen(argv[2], "w");

		if (!f || fclose(f))
			die(argv[2], -EIO);
	}
	return 0;
}
