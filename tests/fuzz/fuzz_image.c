/*
 * fuzz_image.c - the image codec of the fuzz harnesses (see fuzz.h): a fuzz input becomes an
 * image in a memfd that the engine opens through /proc/self/fd/N; the seed generator goes
 * the other way.
 *
 * Owns: one memfd and one image buffer per process, reused by every input (the previous
 * image is truncated away first, so nothing of it survives into the next).
 *
 * Must never: create a file in any filesystem, or read past the input.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "csum.h"
#include "format.h"
#include "fuzz.h"
#include "sb.h"

#define RUN_MAX		8192	/* the encoder cuts runs there: one node or entry per run */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void fz_image_runs(uint8_t *data, size_t len,
		   bool (*fn)(void *priv, uint64_t off, uint8_t *run, size_t n), void *priv)
{
	size_t pos = FZ_IMAGE_HDR;

	while (pos + FZ_RUN_HDR <= len) {
		uint64_t off = (uint64_t)get16(data + pos) * 512;
		size_t n = get16(data + pos + 2);

		pos += FZ_RUN_HDR;
		if (n > len - pos)
			n = len - pos;
		if (!fn(priv, off, data + pos, n))
			return;
		pos += n;
	}
}

struct place_ctx {
	struct fz_image *im;
	uint64_t end;	/* highest byte written */
};

static bool place_run(void *priv, uint64_t off, uint8_t *run, size_t n)
{
	struct place_ctx *c = priv;

	if (off >= c->im->size)
		return true;
	if (n > c->im->size - off)
		n = (size_t)(c->im->size - off);
	memcpy(c->im->buf + off, run, n);
	if (off + n > c->end)
		c->end = off + n;
	return true;
}

/* The 8 bytes at off + 8 are a header's magic under this uuid: fix its checksum. */
static void fix_header(uint8_t *img, uint64_t size, uint64_t off, uint64_t magic,
		       uint32_t hdr, uint32_t max, unsigned meta_csum)
{
	uint32_t bytes;

	if (get64(img + off + 8) != magic)
		return;
	bytes = get32(img + off + 20);	/* the same place in nodes and entries */
	if (bytes < hdr || bytes > max || bytes > size - off)
		return;
	put32(img + off, (uint32_t)rd_csum(meta_csum, img + off + 8, bytes - 8));
}

void fz_fix_csums(uint8_t *img, uint64_t size)
{
	const struct rd_sb *sb = NULL;
	uint64_t xor, backup;

	if (size >= RD_SB_OFFSET + RD_SB_SIZE &&
	    !memcmp(img + RD_SB_OFFSET + offsetof(struct rd_sb, magic), RD_SB_MAGIC, 8))
		sb = (const struct rd_sb *)(img + RD_SB_OFFSET);
	/* The backup sits where the primary says the device ends, else at the image's end. */
	backup = size >= RD_SB_SIZE ? size - RD_SB_SIZE : 0;
	if (sb && rd_le64_get(sb->dev_size) >= 2 * RD_SB_SIZE &&
	    rd_le64_get(sb->dev_size) <= size)
		backup = rd_le64_get(sb->dev_size) - RD_SB_SIZE;
	if (!sb && size >= RD_SB_SIZE &&
	    !memcmp(img + backup + offsetof(struct rd_sb, magic), RD_SB_MAGIC, 8))
		sb = (const struct rd_sb *)(img + backup);

	if (sb && sb->meta_csum > RD_CSUM_NONE && sb->meta_csum < RD_CSUM_NR) {
		uint32_t node = rd_le32_get(sb->btree_node_size);

		memcpy(&xor, sb->uuid, sizeof(xor));
		xor = le64toh(xor);
		if (node > (1u << 20))
			node = 1u << 20;
		for (uint64_t off = 0; off + 128 <= size; off += 512) {
			fix_header(img, size, off, RD_BTREE_NODE_MAGIC ^ xor,
				   sizeof(struct rd_btree_node), node, sb->meta_csum);
			fix_header(img, size, off, RD_JSET_MAGIC ^ xor, sizeof(struct rd_jset),
				   1u << 20, sb->meta_csum);
		}
	}
	/* Last: the superblocks (nothing above writes into them unless a header overlaps). */
	if (size >= RD_SB_OFFSET + RD_SB_SIZE &&
	    !memcmp(img + RD_SB_OFFSET + offsetof(struct rd_sb, magic), RD_SB_MAGIC, 8)) {
		struct rd_sb *p = (struct rd_sb *)(img + RD_SB_OFFSET);

		p->csum = rd_le32_of(rd_sb_csum(p));
	}
	if (size >= RD_SB_SIZE && backup != RD_SB_OFFSET &&
	    !memcmp(img + backup + offsetof(struct rd_sb, magic), RD_SB_MAGIC, 8)) {
		struct rd_sb *b = (struct rd_sb *)(img + backup);

		b->csum = rd_le32_of(rd_sb_csum(b));
	}
}

int fz_image_load(struct fz_image *im, const uint8_t *data, size_t len)
{
	struct place_ctx c = { .im = im };

	if (!im->buf) {
		im->fd = memfd_create("refdio-fuzz", MFD_CLOEXEC);
		if (im->fd < 0)
			return -errno;
		snprintf(im->path, sizeof(im->path), "/proc/self/fd/%d", im->fd);
		im->buf = calloc(1, FZ_IMAGE_MAX);
		if (!im->buf)
			return -ENOMEM;
	}
	memset(im->buf, 0, im->dirty);
	im->flags = len ? data[0] : 0;
	im->size = len >= FZ_IMAGE_HDR ? (uint64_t)get16(data + 1) << 10 : 0;
	if (im->size > FZ_IMAGE_MAX)
		im->size = FZ_IMAGE_MAX;
	/* The codec only reads data; fz_image_runs is shared with fz_damage, which writes. */
	fz_image_runs((uint8_t *)data, len, place_run, &c);
	im->dirty = c.end;
	if (im->flags & FZ_FIX_CSUMS)
		fz_fix_csums(im->buf, im->size);
	if (ftruncate(im->fd, 0) || ftruncate(im->fd, (off_t)im->size))
		return -errno;
	if (c.end && pwrite(im->fd, im->buf, c.end, 0) != (ssize_t)c.end)
		return -EIO;
	return 0;
}

int fz_image_encode(const uint8_t *img, uint64_t size, uint8_t flags, uint8_t **out,
		    size_t *out_len)
{
	size_t cap = FZ_IMAGE_HDR + size + size / 512 * FZ_RUN_HDR + FZ_RUN_HDR, n = 0;
	uint8_t *o = malloc(cap);
	uint64_t kib = size >> 10;

	if (!o)
		return -ENOMEM;
	if (size > FZ_IMAGE_MAX || size % 1024) {
		free(o);
		return -EINVAL;
	}
	o[n++] = flags;
	o[n++] = (uint8_t)kib;
	o[n++] = (uint8_t)(kib >> 8);
	for (uint64_t off = 0; off < size; ) {
		uint64_t end = off;
		size_t len;

		while (end < size && end - off < RUN_MAX) {
			bool zero = true;

			for (unsigned i = 0; i < 512 && zero; i++)
				zero = !img[end + i];
			if (zero)
				break;
			end += 512;
		}
		if (end == off) {
			off += 512;
			continue;
		}
		len = (size_t)(end - off);
		while (len && !img[off + len - 1])
			len--;	/* the image is zero there anyway */
		o[n++] = (uint8_t)(off / 512);
		o[n++] = (uint8_t)(off / 512 >> 8);
		o[n++] = (uint8_t)len;
		o[n++] = (uint8_t)(len >> 8);
		memcpy(o + n, img + off, len);
		n += len;
		off = end;
	}
	*out = o;
	*out_len = n;
	return 0;
}

/* ---- damage for the negative controls ---------------------------------------------------- */

struct damage_ctx {
	bool have_xor;
	uint64_t xor;
	unsigned which, hits;
};

static bool find_uuid(void *priv, uint64_t off, uint8_t *run, size_t n)
{
	struct damage_ctx *c = priv;
	uint64_t uuid = RD_SB_OFFSET + offsetof(struct rd_sb, uuid);

	if (off > RD_SB_OFFSET || off + n < uuid + 8 ||
	    memcmp(run + RD_SB_OFFSET - off + offsetof(struct rd_sb, magic), RD_SB_MAGIC, 8))
		return true;
	c->xor = get64(run + (uuid - off));
	c->have_xor = true;
	return false;
}

static bool flip_magics(void *priv, uint64_t off, uint8_t *run, size_t n)
{
	struct damage_ctx *c = priv;

	(void)off;	/* runs start on sector boundaries: so do headers */
	for (size_t i = 0; i + 16 <= n; i += 512) {
		uint64_t m = get64(run + i + 8);

		if (((c->which & FZ_DAMAGE_NODES) && m == (RD_BTREE_NODE_MAGIC ^ c->xor)) ||
		    ((c->which & FZ_DAMAGE_JOURNAL) && m == (RD_JSET_MAGIC ^ c->xor))) {
			run[i + 8] ^= 0x01;
			c->hits++;
		}
	}
	return true;
}

unsigned fz_damage_magics(uint8_t *data, size_t len, unsigned which)
{
	struct damage_ctx c = { .which = which };

	if (len < FZ_IMAGE_HDR)
		return 0;
	data[0] &= (uint8_t)~FZ_FIX_CSUMS;
	fz_image_runs(data, len, find_uuid, &c);
	if (!c.have_xor)
		return 0;
	fz_image_runs(data, len, flip_magics, &c);
	return c.hits;
}
