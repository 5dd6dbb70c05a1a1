/*
 * alloc_free.c - binary min-heap of (key, bucket) pairs for the allocator's free buckets.
 *
 * Owns: the heap arrays only. Must never: lock or allocate after rd_bheap_init.
 * Invariant: v[i] <= v[2i+1] and v[i] <= v[2i+2] for every i (by key, then bucket).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "alloc_free.h"

static bool ent_less(const struct rd_bheap_ent *a, const struct rd_bheap_ent *b)
{
	if (a->key != b->key)
		return a->key < b->key;
	return a->bucket < b->bucket;
}

/* Moves children up into slot i while they are smaller than x, from slot i down; returns
 * the slot where x belongs (the caller stores it there). */
static size_t sift_down(struct rd_bheap *h, size_t i, struct rd_bheap_ent x)
{
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->nr)
			break;
		if (c + 1 < h->nr && ent_less(&h->v[c + 1], &h->v[c]))
			c++;
		if (!ent_less(&h->v[c], &x))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	return i;
}

int rd_bheap_init(struct rd_bheap *h, size_t cap)
{
	h->nr = 0;
	h->cap = cap;
	h->v = calloc(cap ? cap : 1, sizeof(*h->v));
	return h->v ? 0 : -ENOMEM;
}

void rd_bheap_free(struct rd_bheap *h)
{
	free(h->v);
	h->v = NULL;
	h->nr = h->cap = 0;
}

bool rd_bheap_push(struct rd_bheap *h, uint64_t key, uint64_t bucket)
{
	struct rd_bheap_ent e = { key, bucket };
	size_t i;

	if (h->nr >= h->cap)
		return false;
	i = h->nr++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!ent_less(&e, &h->v[parent]))
			break;
		h->v[i] = h->v[parent];
		i = parent;
	}
	h->v[i] = e;
	assert(!i || !ent_less(&e, &h->v[(i - 1) / 2]));	/* the heap order */
	return true;
}

bool rd_bheap_peek(const struct rd_bheap *h, struct rd_bheap_ent *out)
{
	if (!h->nr)
		return false;
	*out = h->v[0];
	return true;
}

bool rd_bheap_pop(struct rd_bheap *h, struct rd_bheap_ent *out)
{
	struct rd_bheap_ent last;
	size_t i = 0;

	if (!h->nr)
		return false;
	assert(h->nr <= h->cap);
	*out = h->v[0];
	last = h->v[--h->nr];
	/* Sift the former last entry down from the root. */
	i = sift_down(h, 0, last);
	if (h->nr)
		h->v[i] = last;
	return true;
}

bool rd_bheap_remove(struct rd_bheap *h, uint64_t bucket)
{
	struct rd_bheap_ent last;
	size_t i;

	for (i = 0; i < h->nr && h->v[i].bucket != bucket; i++)
		;
	if (i == h->nr)
		return false;
	last = h->v[--h->nr];
	if (i == h->nr)
		return true;	/* it was the last entry */
	/* The former last entry takes slot i: sift it up if it is smaller than the parent
	 * there, else down. */
	while (i > 0 && ent_less(&last, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	i = sift_down(h, i, last);
	h->v[i] = last;
	return true;
}
