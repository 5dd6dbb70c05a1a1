/*
 * dio_source_mem.c - in-process memory as a dio source (library users, tests, benchmark).
 *
 * Owns: struct rd_dio_mem, a buffer with the kernel's two counts:
 *   count  (mm_count)  the struct stays while > 0: the owner and every source over it;
 *   users  (mm_users)  the memory stays while > 0: the owner and every read copying now.
 * The owner's rd_dio_mem_exit() drops one of each. The memory is released by whoever drops
 * users to 0 (the exit, or a read that was copying at that moment); from then on every
 * get-if-alive fails and the write ends at the previous chunk boundary.
 *
 * Must never: copy from the memory without holding a users reference, take a users
 * reference once users reached 0 (no resurrection), or free the struct while count > 0.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "refdio/dio.h"
#include "util.h"

struct rd_dio_mem {
	void		*base;
	size_t		len;
	void		(*release)(void *base, size_t len, void *priv);
	void		*priv;
	_Atomic unsigned count;
	_Atomic unsigned users;
};

struct mem_source {
	struct rd_dio_source	src;
	struct rd_dio_mem	*m;
	uint64_t		off;	/* of the source's range inside m */
};

static void mem_drop(struct rd_dio_mem *m)	/* mmdrop */
{
	unsigned old = atomic_fetch_sub_explicit(&m->count, 1, memory_order_acq_rel);

	assert(old > 0);
	if (old == 1)
		free(m);
}

static bool mem_get_if_alive(struct rd_dio_mem *m)	/* mmget_not_zero */
{
	unsigned u = atomic_load_explicit(&m->users, memory_order_relaxed);

	do {
		if (!u)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&m->users, &u, u + 1,
							memory_order_acquire,
							memory_order_relaxed));
	return true;
}

static void mem_put_user(struct rd_dio_mem *m)	/* mmput */
{
	unsigned old = atomic_fetch_sub_explicit(&m->users, 1, memory_order_acq_rel);

	assert(old > 0);
	if (old != 1)
		return;
	if (m->release)
		m->release(m->base, m->len, m->priv);
	m->base = NULL;
}

int rd_dio_mem_new(void *base, size_t len, void (*release)(void *base, size_t len, void *priv),
		   void *priv, struct rd_dio_mem **out)
{
	struct rd_dio_mem *m;

	*out = NULL;
	if (!base && len)
		return -EFAULT;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->base = base;
	m->len = len;
	m->release = release;
	m->priv = priv;
	atomic_init(&m->count, 1);
	atomic_init(&m->users, 1);
	*out = m;
	return 0;
}

static void mem_unmap(void *base, size_t len, void *priv)
{
	(void)priv;
	munmap(base, len ? len : 1);
}

int rd_dio_mem_alloc(size_t len, struct rd_dio_mem **out)
{
	void *p;
	int ret;

	*out = NULL;
	p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	ret = rd_dio_mem_new(p, len, mem_unmap, NULL, out);
	if (ret < 0)
		munmap(p, len ? len : 1);
	return ret;
}

void *rd_dio_mem_base(const struct rd_dio_mem *m)
{
	return m->base;
}

void rd_dio_mem_exit(struct rd_dio_mem *m)
{
	mem_put_user(m);
	mem_drop(m);
}

static void mem_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	struct mem_source *ms = container_of(src, struct mem_source, src);
	struct rd_dio_mem *m = ms->m;

	if (rd->pos > src->len || rd->len > src->len - rd->pos) {
		rd->done(rd, -EFAULT);
		return;
	}
	if (!mem_get_if_alive(m)) {
		rd->done(rd, 0);	/* the owner has exited */
		return;
	}
	/* users > 0: m->base cannot be released while we copy. */
	assert(m->base || !rd->len);
	memcpy(rd->buf, (const char *)m->base + ms->off + rd->pos, rd->len);
	rd->data = rd->buf;
	mem_put_user(m);
	rd->done(rd, (long)rd->len);
}

static void mem_source_put(struct rd_dio_source *src)
{
	struct mem_source *ms = container_of(src, struct mem_source, src);

	mem_drop(ms->m);
	free(ms);
}

static const struct rd_dio_source_ops mem_source_ops = {
	.name	= "mem",
	.read	= mem_read,
	.put	= mem_source_put,
};

int rd_dio_source_mem(struct rd_dio_mem *m, uint64_t off, uint64_t len,
		      struct rd_dio_source **out)
{
	struct mem_source *ms;

	*out = NULL;
	if (!m || off > m->len || len > m->len - off)
		return -EFAULT;
	ms = calloc(1, sizeof(*ms));
	if (!ms)
		return -ENOMEM;
	ms->src.ops = &mem_source_ops;
	ms->src.len = len;
	ms->src.flags = 0;
	ms->m = m;
	ms->off = off;
	assert(atomic_load_explicit(&m->count, memory_order_relaxed) > 0);	/* the owner's */
	atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);	/* the grab */
	*out = &ms->src;
	return 0;
}
