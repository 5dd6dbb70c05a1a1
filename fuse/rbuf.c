/*
 * rbuf.c - reference-counted receive buffers (see rbuf.h for the rules).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rbuf.h"

#define RBUF_PAGE	4096u
#define RD_RBUF_MAGIC	0x72627566u	/* "rbuf" */

/* The struct sits in the first page, in front of the request's headers. */
_Static_assert(sizeof(struct rd_rbuf) <= RBUF_PAGE - RD_RBUF_PAYLOAD_OFFSET,
	       "struct rd_rbuf must fit in front of the request headers");

struct rd_rbuf *rd_rbuf_of_payload(const struct rd_rbuf_pool *p, const void *payload,
				   size_t len)
{
	uintptr_t at = (uintptr_t)payload;
	struct rd_rbuf *b;

	/* A write's payload starts a page: anything else did not come from a buffer's
	 * FUSE_WRITE, and the page in front of it may not be ours to read. */
	if (!payload || at % RBUF_PAGE || at < RBUF_PAGE)
		return NULL;
	b = (struct rd_rbuf *)(at - RBUF_PAGE);
	if (b->magic != RD_RBUF_MAGIC || b->pool != p || b->base != (void *)b ||
	    len > p->recv_size - RD_RBUF_PAYLOAD_OFFSET)
		return NULL;
	assert(atomic_load(&b->refs) > 0);	/* the loop thread's reference, at least */
	return b;
}

int rd_rbuf_pool_init(struct rd_rbuf_pool *p, size_t recv_size, unsigned keep, unsigned max)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	p->recv_size = recv_size;
	/* One page in front holds the headers' tail end; round the rest up to pages. */
	p->alloc_size = RBUF_PAGE + ((recv_size + RBUF_PAGE - 1) & ~(size_t)(RBUF_PAGE - 1));
	p->keep = keep;
	p->max = max < keep ? keep : max;
	return 0;
}

void rd_rbuf_pool_destroy(struct rd_rbuf_pool *p)
{
	struct rd_rbuf *b, *next;

	for (b = p->free; b; b = next) {
		next = b->next;
		b->magic = 0;
		free(b->base);
	}
	p->free = NULL;
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
}

static struct rd_rbuf *rbuf_alloc(struct rd_rbuf_pool *p)
{
	void *base;
	struct rd_rbuf *b;

	if (posix_memalign(&base, RBUF_PAGE, p->alloc_size))
		return NULL;
	b = base;
	memset(b, 0, sizeof(*b));
	b->magic = RD_RBUF_MAGIC;
	b->base = base;
	b->pool = p;
	return b;
}

struct rd_rbuf *rd_rbuf_get(struct rd_rbuf_pool *p)
{
	struct rd_rbuf *b = NULL;
	bool make = false;

	pthread_mutex_lock(&p->lock);
	while (!p->free && p->total >= p->max)
		pthread_cond_wait(&p->freed, &p->lock);
	if (p->free) {
		b = p->free;
		p->free = b->next;
		p->nr_free--;
	} else {
		p->total++;
		if (p->total - p->nr_free > p->peak)
			p->peak = p->total - p->nr_free;
		make = true;
	}
	pthread_mutex_unlock(&p->lock);
	if (make) {
		b = rbuf_alloc(p);
		if (!b) {
			pthread_mutex_lock(&p->lock);
			p->total--;
			pthread_cond_signal(&p->freed);
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
	}
	atomic_store(&b->refs, 1);
	b->next = NULL;
	memset(&b->fbuf, 0, sizeof(b->fbuf));
	b->fbuf.mem = (char *)b->base + RBUF_PAGE - RD_RBUF_PAYLOAD_OFFSET;
	b->fbuf.size = p->recv_size;
	return b;
}

void rd_rbuf_ref(struct rd_rbuf *b)
{
	atomic_fetch_add(&b->refs, 1);
}

void rd_rbuf_put(struct rd_rbuf *b)
{
	struct rd_rbuf_pool *p = b->pool;
	bool drop;

	if (atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	/* Last reference: nobody else can reach b now. */
	pthread_mutex_lock(&p->lock);
	drop = p->nr_free >= p->keep;
	if (drop) {
		p->total--;
	} else {
		b->next = p->free;
		p->free = b;
		p->nr_free++;
	}
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
	if (drop) {
		b->magic = 0;
		free(b->base);
	}
}
