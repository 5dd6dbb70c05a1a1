/*
 * data_read.c - reading file data: extents to regions, regions verified, bytes copied.
 *
 * Owns: rd_fs_read / rd_fs_read_async and the raw read the write path uses for its edge
 * blocks. A read looks up the extents of its range in batches; for each batch it reads
 * every checksummed region the extents point into, whole (a region is the unit its
 * checksum covers; extents sharing one region share the read), and only when every region
 * of the batch is in and verified does it copy bytes out. Holes and unwritten extents are
 * zeros.
 *
 * Staleness: a region is read without any lock, so its bucket may have been emptied,
 * reused and rewritten while the read was in flight. Once the read completed the pointer's
 * generation is compared with the bucket's: if it moved, the bytes are not the extent's
 * and the batch is looked up again (bounded; the count is fs->st.stale_retries). Only a
 * pointer that is still current is verified, so a checksum mismatch is real damage.
 *
 * Must never: return a byte from a region that failed verification or whose pointer
 * turned stale, block on an I/O thread, or hold an inode or range lock (edge reads of
 * writers run under the writer's range lock, which is what makes their view stable).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "bufpool.h"
#include "csum.h"
#include "data_int.h"
#include "refdio/errors.h"
#include "extents.h"
#include "io.h"

#define READ_BATCH_EXTENTS	256
#define READ_STALE_RETRIES	16

struct read_region {
	uint64_t dev_offset;
	uint32_t gen;
	uint32_t sectors;
	uint8_t csum_type;
	uint64_t csum;
	void *buf;
	bool direct;		/* buf is the caller's memory: the bytes land in place */
	long res;
	struct rd_io_req req;
	struct read_batch *b;
};

struct read_batch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pending;
	struct read_region *r;
	size_t nr;
	int *map;		/* extent i -> region index, -1 for unwritten */
};

static void region_end_io(struct rd_io_req *req, long res)
{
	struct read_region *r = req->priv;
	struct read_batch *b = r->b;

	pthread_mutex_lock(&b->lock);
	r->res = res;
	if (!--b->pending)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static bool same_region(const struct read_region *r, const struct rd_extent *e)
{
	return r->dev_offset == e->dev_offset && r->gen == e->gen &&
	       r->sectors == e->region_sectors && r->csum == e->csum &&
	       r->csum_type == e->csum_type;
}

static void batch_free(struct read_batch *b)
{
	for (size_t i = 0; i < b->nr; i++)
		if (!b->r[i].direct)
			rd_bufpool_put(b->r[i].buf, (size_t)b->r[i].sectors << RD_SECTOR_SHIFT);
	free(b->r);
	free(b->map);
	b->r = NULL;
	b->map = NULL;
	b->nr = 0;
}

/*
 * Plans the regions of extents ext[0..*nr) (shrinking *nr to stay within the byte budget,
 * at least one extent) and reads them all. 0 once every read ended (results in r[].res),
 * or -ENOMEM before any I/O.
 *
 * A region that is exactly one untrimmed extent lying wholly inside the caller's range
 * [lo, hi), at a 4096-aligned place of the caller's buffer (file byte x goes to
 * ubuf + x - uoff), is read straight into that buffer: no bounce, no copy. It is still
 * verified before the read reports success; on failure the buffer's contents are
 * undefined (the read fails).
 */
static int batch_read(struct rd_fs *fs, struct read_batch *b, const struct rd_extent *ext,
		      size_t *nr, char *ubuf, uint64_t uoff, uint64_t lo, uint64_t hi)
{
	size_t n = *nr, i, budget = 0;

	b->r = calloc(n, sizeof(*b->r));
	b->map = calloc(n, sizeof(*b->map));
	if (!b->r || !b->map)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const struct rd_extent *e = &ext[i];
		size_t j;

		b->map[i] = -1;
		if (rd_extent_unwritten(e))
			continue;
		for (j = 0; j < b->nr && !same_region(&b->r[j], e); j++)
			;
		if (j == b->nr) {
			size_t bytes = (size_t)e->region_sectors << RD_SECTOR_SHIFT;
			uint64_t s = rd_extent_start(e) << RD_SECTOR_SHIFT;
			/* dst is formed only inside the caller's buffer: pointer arithmetic
			 * that leaves it is undefined even if never dereferenced. */
			bool direct = !e->region_offset && e->size == e->region_sectors &&
				      s >= lo && s >= uoff && s + bytes <= hi;
			char *dst = direct ? ubuf + (s - uoff) : NULL;

			direct = direct && !((uintptr_t)dst % 4096);

			if (!direct && i && budget + bytes > RD_DATA_READ_BUDGET)
				break;	/* the rest waits for the next batch */
			b->r[j] = (struct read_region){
				.dev_offset = e->dev_offset, .gen = e->gen,
				.sectors = e->region_sectors, .csum_type = e->csum_type,
				.csum = e->csum, .b = b, .direct = direct,
			};
			if (direct) {
				b->r[j].buf = dst;
			} else {
				budget += bytes;
				b->r[j].buf = rd_bufpool_get(bytes);
				if (!b->r[j].buf)
					return -ENOMEM;
			}
			b->nr++;
		}
		b->map[i] = (int)j;
	}
	*nr = i;
	b->pending = (unsigned)b->nr;
	for (i = 0; i < b->nr; i++) {
		struct read_region *r = &b->r[i];

		r->req = (struct rd_io_req){
			.op = RD_IO_READ, .fd = -1, .buf = r->buf, .off = r->dev_offset,
			.len = (size_t)r->sectors << RD_SECTOR_SHIFT, .end_io = region_end_io,
			.priv = r,
		};
		rd_io_submit(fs->s->io, &r->req);
	}
	pthread_mutex_lock(&b->lock);
	while (b->pending)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* After the batch's reads: 1 if a pointer turned stale (look up again), 0 if every region
 * is whole and verified, -EIO otherwise. */
static int batch_check(struct rd_fs *fs, struct read_batch *b)
{
	bool stale = false;
	int ret = 0;

	for (size_t i = 0; i < b->nr; i++) {
		struct read_region *r = &b->r[i];
		size_t len = (size_t)r->sectors << RD_SECTOR_SHIFT;

		/* Staleness first: the bytes of a reused bucket are someone else's, and a
		 * mismatch there says nothing about this extent. */
		if (rd_alloc_ptr_stale(fs->s, r->dev_offset, r->gen)) {
			stale = true;
			continue;
		}
		if (r->res < 0 || (size_t)r->res != len) {
			ret = -EIO;
			continue;
		}
		if (r->csum_type != RD_CSUM_NONE &&
		    rd_csum((enum rd_csum_type)r->csum_type, r->buf, len) != r->csum) {
			atomic_fetch_add(&fs->st.csum_errors, 1);
			ret = -EIO;
		}
	}
	if (stale)
		return 1;
	return ret;
}

int rd_data_read_raw(struct rd_fs *fs, struct rd_inode *ip, void *buf, size_t len,
		     uint64_t off)
{
	struct rd_extent_list l = { 0 };
	uint64_t pos = off, end = off + len;
	unsigned retries = 0;
	int ret = 0;

	while (pos < end && !ret) {
		struct read_batch b = { .lock = PTHREAD_MUTEX_INITIALIZER,
					.cond = PTHREAD_COND_INITIALIZER };
		uint64_t batch_end = end, cur = pos;
		bool more;
		size_t n;

		l.nr = 0;
		ret = rd_extents_collect(fs->s, ip->ino, pos >> RD_SECTOR_SHIFT,
					 (end + RD_SECTOR_SIZE - 1) >> RD_SECTOR_SHIFT,
					 READ_BATCH_EXTENTS, &l, &more);
		if (ret)
			break;
		n = l.nr;
		ret = batch_read(fs, &b, l.e, &n, buf, off, pos, end);
		if (!ret)
			ret = batch_check(fs, &b);
		if (ret == 1) {
			batch_free(&b);
			atomic_fetch_add(&fs->st.stale_retries, 1);
			ret = ++retries > READ_STALE_RETRIES ? -EIO : 0;
			continue;	/* look the same range up again */
		}
		if (ret) {
			batch_free(&b);
			break;
		}
		if (n < l.nr || more) {
			/* Only the first n extents were read: this batch ends where they do. */
			uint64_t e_end = l.e[n - 1].end << RD_SECTOR_SHIFT;

			batch_end = e_end < end ? e_end : end;
		}
		for (size_t i = 0; i < n; i++) {
			const struct rd_extent *e = &l.e[i];
			uint64_t s = rd_extent_start(e) << RD_SECTOR_SHIFT;
			uint64_t from = s > cur ? s : cur;
			uint64_t to = e->end << RD_SECTOR_SHIFT;

			if (to > batch_end)
				to = batch_end;
			if (from >= to)
				continue;
			if (from > cur)		/* a hole before this extent */
				memset((char *)buf + (cur - off), 0, from - cur);
			if (b.map[i] < 0) {
				memset((char *)buf + (from - off), 0, to - from);
			} else if (!b.r[b.map[i]].direct) {
				const char *src = b.r[b.map[i]].buf;

				src += ((uint64_t)e->region_offset << RD_SECTOR_SHIFT) + (from - s);
				memcpy((char *)buf + (from - off), src, to - from);
			}
			cur = to;
		}
		if (cur < batch_end)		/* a hole up to the end of the batch */
			memset((char *)buf + (cur - off), 0, batch_end - cur);
		batch_free(&b);
		pos = batch_end;
		retries = 0;
	}
	rd_extent_list_free(&l);
	return ret;
}

ssize_t rd_fs_read(struct rd_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off)
{
	struct rd_inode *ip;
	uint64_t size;
	int ret;

	ret = rd_inode_get_file(fs, ino, &ip);
	if (ret)
		return ret;
	rd_inode_lock(ip);
	size = ip->i.size;
	rd_inode_unlock(ip);
	/* Reads end at i_size. */
	if (off >= size)
		len = 0;
	else if (len > size - off)
		len = (size_t)(size - off);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	ret = len ? rd_data_read_raw(fs, ip, buf, len, off) : 0;
	rd_inode_put(fs, ip);
	if (ret)
		return ret;
	atomic_fetch_add(&fs->st.reads, 1);
	atomic_fetch_add(&fs->st.read_bytes, len);
	return (ssize_t)len;
}

struct read_async {
	struct rd_data_work w;
	struct rd_fs *fs;
	uint64_t ino, off;
	void *buf;
	size_t len;
	rd_fs_done_fn done;
	void *priv;
};

static void read_async_run(struct rd_data_work *w)
{
	struct read_async *ra = (struct read_async *)w;
	ssize_t res = rd_fs_read(ra->fs, ra->ino, ra->buf, ra->len, ra->off);
	rd_fs_done_fn done = ra->done;
	void *priv = ra->priv;

	free(ra);
	done(priv, res);
}

void rd_fs_read_async(struct rd_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off,
		      rd_fs_done_fn done, void *priv)
{
	struct read_async *ra = calloc(1, sizeof(*ra));
	int ret = -ENOMEM;

	if (ra) {
		*ra = (struct read_async){ .w.fn = read_async_run, .fs = fs, .ino = ino,
					   .off = off, .buf = buf, .len = len, .done = done,
					   .priv = priv };
		ret = rd_data_queue(fs, &ra->w);
		if (!ret)
			return;
		free(ra);
	}
	done(priv, ret);
}
