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
#include <assert.h>
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
	/* NULL: a thread waits on cond for pending to reach 0. Else the last region's
	 * completion calls it, on the I/O thread, and nobody waits (an inline read). */
	void (*all_done)(struct read_batch *b);
	unsigned pending;
	struct read_region *r;
	size_t nr;
	int *map;		/* extent i -> region index, -1 for unwritten */
};

static void region_end_io(struct rd_io_req *req, long res)
{
	struct read_region *r = req->priv;
	struct read_batch *b = r->b;
	/* Read before unlocking: a waiting reader may free b as soon as the lock drops. */
	void (*all_done)(struct read_batch *b) = b->all_done;
	bool last;

	pthread_mutex_lock(&b->lock);
	assert(b->pending > 0);
	r->res = res;
	last = !--b->pending;
	if (last && !all_done)
		pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
	if (last && all_done)
		all_done(b);	/* nobody else touches b any more */
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
 * at least one extent): fills b->r and b->map, allocates the bounce buffers; *bytes gets
 * the bytes of all its regions (what their checks will read). 0, or -ENOMEM (b holds
 * what was allocated: batch_free).
 *
 * A region that is exactly one untrimmed extent lying wholly inside the caller's range
 * [lo, hi), at a 4096-aligned place of the caller's buffer (file byte x goes to
 * ubuf + x - uoff), is read straight into that buffer: no bounce, no copy. It is still
 * verified before the read reports success; on failure the buffer's contents are
 * undefined (the read fails).
 */
static int batch_plan(struct read_batch *b, const struct rd_extent *ext, size_t *nr,
		      char *ubuf, uint64_t uoff, uint64_t lo, uint64_t hi, size_t *bytes_out)
{
	size_t n = *nr, i, budget = 0, all = 0;

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
			all += bytes;
			b->nr++;
		}
		b->map[i] = (int)j;
	}
	assert(i > 0 || !n);	/* at least one extent per batch */
	*nr = i;
	*bytes_out = all;
	return 0;
}

/* Submits every region read of a planned batch. With b->all_done set, b may be gone when
 * this returns (the last completion ran it). */
static void batch_submit(struct rd_fs *fs, struct read_batch *b)
{
	size_t nr = b->nr;

	b->pending = (unsigned)nr;
	for (size_t i = 0; i < nr; i++) {
		struct read_region *r = &b->r[i];

		r->req = (struct rd_io_req){
			.op = RD_IO_READ, .fd = -1, .buf = r->buf, .off = r->dev_offset,
			.len = (size_t)r->sectors << RD_SECTOR_SHIFT, .end_io = region_end_io,
			.priv = r,
		};
		rd_io_submit(fs->s->io, &r->req);
	}
}

/* Plans, reads and waits for a batch: 0 once every read ended (results in r[].res), or
 * -ENOMEM before any I/O. */
static int batch_read(struct rd_fs *fs, struct read_batch *b, const struct rd_extent *ext,
		      size_t *nr, char *ubuf, uint64_t uoff, uint64_t lo, uint64_t hi)
{
	size_t bytes;
	int ret = batch_plan(b, ext, nr, ubuf, uoff, lo, hi, &bytes);

	if (ret)
		return ret;
	batch_submit(fs, b);
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

/* Copies the verified batch out: file bytes [pos, batch_end) of extents ext[0..n) into
 * buf (file byte x at buf + x - off); holes and unwritten extents as zeros. */
static void batch_copy(const struct read_batch *b, const struct rd_extent *ext, size_t n,
		       char *buf, uint64_t off, uint64_t pos, uint64_t batch_end)
{
	uint64_t cur = pos;

	for (size_t i = 0; i < n; i++) {
		const struct rd_extent *e = &ext[i];
		uint64_t s = rd_extent_start(e) << RD_SECTOR_SHIFT;
		uint64_t from = s > cur ? s : cur;
		uint64_t to = e->end << RD_SECTOR_SHIFT;

		if (to > batch_end)
			to = batch_end;
		if (from >= to)
			continue;
		if (from > cur)		/* a hole before this extent */
			memset(buf + (cur - off), 0, from - cur);
		if (b->map[i] < 0) {
			memset(buf + (from - off), 0, to - from);
		} else if (!b->r[b->map[i]].direct) {
			const char *src = b->r[b->map[i]].buf;

			src += ((uint64_t)e->region_offset << RD_SECTOR_SHIFT) + (from - s);
			memcpy(buf + (from - off), src, to - from);
		}
		cur = to;
	}
	if (cur < batch_end)		/* a hole up to the end of the batch */
		memset(buf + (cur - off), 0, batch_end - cur);
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
		uint64_t batch_end = end;
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
		batch_copy(&b, l.e, n, buf, off, pos, batch_end);
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

/*
 * An asynchronous read. Small ones run inline: the calling thread looks the extents up and
 * submits the region reads, and the last region's completion, on the I/O thread, verifies,
 * copies and calls done, so the read crosses to no other thread (a data worker's wake-up
 * costs more than the read on a busy machine). The I/O thread only checks staleness (the
 * allocator's short lock), checksums at most READ_INLINE_MAX bytes and copies: anything
 * that could block there (a stale pointer's new lookup) goes to a data worker, which runs
 * the whole read again synchronously. Larger reads, and reads of more than one batch, go
 * to a data worker from the start. The limit is low on purpose: measured on the loaded 2-core
 * VM, verifying 256 KiB regions (a 4 KiB read of a 256 KiB extent) on the one I/O thread
 * made random reads at queue depth 32 slower than on the data workers (docs/design.md).
 */
#define READ_INLINE_MAX		(64u << 10)

struct read_async {
	struct rd_data_work w;
	struct rd_fs *fs;
	uint64_t ino, off;
	void *buf;
	size_t len;
	rd_fs_done_fn done;
	void *priv;
	/* The inline path: the batch in flight, its extents, and the end of the range. */
	struct read_batch b;
	struct rd_extent_list l;
	size_t n;
	uint64_t end;
};

static void read_async_free(struct read_async *ra)
{
	batch_free(&ra->b);
	rd_extent_list_free(&ra->l);
	pthread_mutex_destroy(&ra->b.lock);
	pthread_cond_destroy(&ra->b.cond);
	free(ra);
}

static void read_async_finish(struct read_async *ra, ssize_t res)
{
	rd_fs_done_fn done = ra->done;
	void *priv = ra->priv;

	read_async_free(ra);
	done(priv, res);
}

static void read_async_run(struct rd_data_work *w)
{
	struct read_async *ra = (struct read_async *)w;

	read_async_finish(ra, rd_fs_read(ra->fs, ra->ino, ra->buf, ra->len, ra->off));
}

/* The last region read of an inline read ended: on the I/O thread, never blocking. */
static void read_inline_done(struct read_batch *b)
{
	struct read_async *ra = container_of(b, struct read_async, b);
	struct rd_fs *fs = ra->fs;
	int ret = batch_check(fs, b);

	if (ret == 1) {
		/* A bucket was reused under the read: a data worker looks it up again. */
		atomic_fetch_add(&fs->st.stale_retries, 1);
		batch_free(&ra->b);
		ra->b.all_done = NULL;
		ra->w.fn = read_async_run;
		if (!rd_data_queue(fs, &ra->w))
			return;
		ret = -ENOMEM;
	}
	if (ret) {
		read_async_finish(ra, ret);
		return;
	}
	batch_copy(b, ra->l.e, ra->n, ra->buf, ra->off, ra->off, ra->end);
	atomic_fetch_add(&fs->st.reads, 1);
	atomic_fetch_add(&fs->st.read_bytes, ra->end - ra->off);
	read_async_finish(ra, (ssize_t)(ra->end - ra->off));
}

/* Tries the inline path: 1 if it is on its way (or finished here, without I/O), 0 if a
 * data worker must do the read. */
static int read_try_inline(struct read_async *ra)
{
	struct rd_fs *fs = ra->fs;
	struct rd_inode *ip;
	uint64_t size;
	size_t bytes = 0;
	bool more;
	int ret;

	ret = rd_inode_get_file(fs, ra->ino, &ip);
	if (ret)
		goto finish;
	rd_inode_lock(ip);
	size = ip->i.size;
	rd_inode_unlock(ip);
	/* Reads end at i_size (as rd_fs_read). */
	ra->end = ra->off >= size ? ra->off : ra->len > size - ra->off ? size :
		  ra->off + ra->len;
	if (ra->end == ra->off) {
		rd_inode_put(fs, ip);
		ret = 0;
		goto finish;
	}
	ret = rd_extents_collect(fs->s, ra->ino, ra->off >> RD_SECTOR_SHIFT,
				 (ra->end + RD_SECTOR_SIZE - 1) >> RD_SECTOR_SHIFT,
				 READ_BATCH_EXTENTS, &ra->l, &more);
	rd_inode_put(fs, ip);
	if (ret)
		goto finish;
	ra->n = ra->l.nr;
	if (more || (ra->n && batch_plan(&ra->b, ra->l.e, &ra->n, ra->buf, ra->off, ra->off,
					 ra->end, &bytes)) ||
	    ra->n < ra->l.nr || bytes > READ_INLINE_MAX) {
		batch_free(&ra->b);
		return 0;
	}
	if (ra->b.nr) {
		ra->b.all_done = read_inline_done;
		batch_submit(fs, &ra->b);	/* ra may be gone from here on */
		return 1;
	}
	/* Holes and unwritten extents only: zeros, no I/O. */
	batch_copy(&ra->b, ra->l.e, ra->n, ra->buf, ra->off, ra->off, ra->end);
	atomic_fetch_add(&fs->st.reads, 1);
	atomic_fetch_add(&fs->st.read_bytes, ra->end - ra->off);
	read_async_finish(ra, (ssize_t)(ra->end - ra->off));
	return 1;
finish:
	if (!ret) {
		atomic_fetch_add(&fs->st.reads, 1);
		read_async_finish(ra, 0);
	} else {
		read_async_finish(ra, ret);
	}
	return 1;
}

void rd_fs_read_async(struct rd_fs *fs, uint64_t ino, void *buf, size_t len, uint64_t off,
		      rd_fs_done_fn done, void *priv)
{
	struct read_async *ra = calloc(1, sizeof(*ra));
	int ret;

	if (!ra) {
		done(priv, -ENOMEM);
		return;
	}
	ra->w.fn = read_async_run;
	ra->fs = fs;
	ra->ino = ino;
	ra->off = off;
	ra->buf = buf;
	ra->len = len > SSIZE_MAX ? SSIZE_MAX : len;
	ra->done = done;
	ra->priv = priv;
	pthread_mutex_init(&ra->b.lock, NULL);
	pthread_cond_init(&ra->b.cond, NULL);
	if (read_try_inline(ra))
		return;
	ret = rd_data_queue(fs, &ra->w);
	if (ret)
		read_async_finish(ra, ret);
}
