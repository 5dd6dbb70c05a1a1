/*
 * io_model.c - the volatile write cache model behind power-cut tests (see io_model.h).
 *
 * Owns: struct rd_io_model: the volatile writes in submission order, the flushes in flight,
 * the cut, and the outcomes. Everything is under one mutex; the io calls in through
 * rd_io_hooks from submitting threads and I/O threads.
 *
 * Must never: run outside tests; take any engine lock (it is called from inside the io
 * layer, on I/O threads); report success for anything that completes after the cut.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io_model.h"

#define SECTOR			512u
/* Bytes of volatile writes (twice: old and new bytes) the model keeps before it refuses
 * writes with -ENOMEM: tests flush long before this. */
#define MAX_VOLATILE_BYTES	(1ull << 30)

struct vwrite {
	const struct rd_io_req *req;	/* while in flight; NULL once completed */
	uint64_t	off, len;
	uint8_t		*old;		/* the range as it was just before this write */
	uint8_t		*new;		/* the bytes written */
	bool		completed;
	uint64_t	cover;		/* first flush submitted after it completed; 0 none */
};

struct vflush {
	const struct rd_io_req *req;
	uint64_t	id;
};

struct rd_io_model {
	struct rd_io_hooks	hooks;
	struct rd_io_model_opts	o;
	int			fd;	/* the image, for pre-images */

	pthread_mutex_t		lock;
	struct vwrite		*w;	/* volatile writes, oldest first */
	size_t			nr_w, cap_w;
	struct vflush		*f;	/* flushes in flight */
	size_t			nr_f, cap_f;
	uint64_t		next_flush_id;
	bool			cut;
	struct rd_io_model_stats st;
};

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int grow(void **v, size_t *cap, size_t nr, size_t size)
{
	void *n;

	if (nr < *cap)
		return 0;
	n = realloc(*v, (*cap ? *cap * 2 : 64) * size);
	if (!n)
		return -ENOMEM;
	*v = n;
	*cap = *cap ? *cap * 2 : 64;
	return 0;
}

static int pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {	/* past the end of the file: reads as zeros */
			memset((uint8_t *)buf + done, 0, len - done);
			break;
		}
		done += (uint64_t)n;
	}
	return 0;
}

static int pwrite_full(int fd, const void *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done,
				   (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (uint64_t)n;
	}
	return 0;
}

static void vwrite_free(struct vwrite *v)
{
	free(v->old);
	free(v->new);
}

/* ---- the hooks ------------------------------------------------------------------------ */

/* Under the lock: counts the operation and cuts if it is the chosen one. */
static bool op_cuts_locked(struct rd_io_model *m, const struct rd_io_req *req)
{
	if (!m->cut) {
		m->st.ops++;
		if ((m->o.cut_at && m->st.ops == m->o.cut_at) ||
		    (m->o.cut_when && m->o.cut_when(m->o.cut_priv, req, m->st.ops)))
			m->cut = true;
	}
	if (m->cut)
		m->st.failed_after_cut++;
	return m->cut;
}

static int submit_write_locked(struct rd_io_model *m, const struct rd_io_req *req)
{
	struct vwrite v = { .req = req, .off = req->off, .len = req->len };
	int ret;

	for (size_t i = 0; i < m->nr_w; i++) {
		if (!m->w[i].completed && overlaps(m->w[i].off, m->w[i].len, v.off, v.len))
			m->st.overlaps++;
	}
	if (m->st.volatile_bytes + v.len > MAX_VOLATILE_BYTES)
		return -ENOMEM;
	ret = grow((void **)&m->w, &m->cap_w, m->nr_w, sizeof(*m->w));
	if (ret)
		return ret;
	v.old = malloc(v.len ? v.len : 1);
	v.new = malloc(v.len ? v.len : 1);
	if (!v.old || !v.new) {
		vwrite_free(&v);
		return -ENOMEM;
	}
	ret = pread_full(m->fd, v.old, v.len, v.off);
	if (ret) {
		vwrite_free(&v);
		return ret;
	}
	memcpy(v.new, req->buf, v.len);
	assert(m->nr_w < m->cap_w);
	m->w[m->nr_w++] = v;
	m->st.writes++;
	m->st.volatile_writes++;
	m->st.volatile_bytes += v.len;
	return 0;
}

static int submit_flush_locked(struct rd_io_model *m, const struct rd_io_req *req)
{
	uint64_t id = ++m->next_flush_id;
	int ret;

	ret = grow((void **)&m->f, &m->cap_f, m->nr_f, sizeof(*m->f));
	if (ret)
		return ret;
	/* It covers every write that completed before it was submitted. */
	for (size_t i = 0; i < m->nr_w; i++) {
		if (m->w[i].completed && !m->w[i].cover)
			m->w[i].cover = id;
	}
	assert(m->nr_f < m->cap_f);
	m->f[m->nr_f++] = (struct vflush){ .req = req, .id = id };
	m->st.flushes++;
	return 0;
}

static int hook_submit(void *priv, const struct rd_io_req *req)
{
	struct rd_io_model *m = priv;
	int ret;

	if (m->o.observe)
		m->o.observe(m->o.observe_priv, req);
	pthread_mutex_lock(&m->lock);
	if (op_cuts_locked(m, req))
		ret = -EIO;
	else if (req->op == RD_IO_WRITE)
		ret = submit_write_locked(m, req);
	else
		ret = submit_flush_locked(m, req);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* A flush completed: every write it (or an earlier flush) covers is stable. */
static void flush_done_locked(struct rd_io_model *m, uint64_t id)
{
	size_t keep = 0;

	for (size_t i = 0; i < m->nr_w; i++) {
		struct vwrite *v = &m->w[i];

		if (v->cover && v->cover <= id) {
			assert(v->completed && m->st.volatile_bytes >= v->len);
			m->st.volatile_writes--;
			m->st.volatile_bytes -= v->len;
			vwrite_free(v);
		} else {
			m->w[keep++] = *v;
		}
	}
	m->nr_w = keep;
}

static long hook_complete(void *priv, const struct rd_io_req *req, long res)
{
	struct rd_io_model *m = priv;

	if (req->forced_res)
		return res;	/* failed at submission: the model never recorded it */
	pthread_mutex_lock(&m->lock);
	if (m->cut) {
		/* Power is gone: nobody learns that this finished. A write stays volatile. */
		res = -EIO;
	} else if (req->op == RD_IO_WRITE) {
		for (size_t i = m->nr_w; i-- > 0; ) {
			if (m->w[i].req == req) {
				m->w[i].req = NULL;
				m->w[i].completed = true;
				break;
			}
		}
	} else {
		for (size_t i = 0; i < m->nr_f; i++) {
			if (m->f[i].req != req)
				continue;
			if (res == 0)
				flush_done_locked(m, m->f[i].id);
			m->f[i] = m->f[--m->nr_f];
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return res;
}

/* ---- life cycle and queries ----------------------------------------------------------- */

int rd_io_model_new(const struct rd_io_model_opts *o, struct rd_io_model **out)
{
	struct rd_io_model *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->o = *o;
	m->fd = open(o->image, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0) {
		int ret = -errno;

		free(m);
		return ret;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->hooks = (struct rd_io_hooks){
		.submit = hook_submit, .complete = hook_complete, .priv = m,
	};
	*out = m;
	return 0;
}

void rd_io_model_free(struct rd_io_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nr_w; i++)
		vwrite_free(&m->w[i]);
	free(m->w);
	free(m->f);
	close(m->fd);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

const struct rd_io_hooks *rd_io_model_hooks(struct rd_io_model *m)
{
	return &m->hooks;
}

void rd_io_model_cut(struct rd_io_model *m)
{
	pthread_mutex_lock(&m->lock);
	m->cut = true;
	pthread_mutex_unlock(&m->lock);
}

bool rd_io_model_is_cut(struct rd_io_model *m)
{
	bool cut;

	pthread_mutex_lock(&m->lock);
	cut = m->cut;
	pthread_mutex_unlock(&m->lock);
	return cut;
}

bool rd_io_model_range_stable(struct rd_io_model *m, uint64_t off, uint64_t len)
{
	bool stable = true;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nr_w && stable; i++)
		stable = !overlaps(m->w[i].off, m->w[i].len, off, len);
	pthread_mutex_unlock(&m->lock);
	return stable;
}

void rd_io_model_stats(struct rd_io_model *m, struct rd_io_model_stats *st)
{
	pthread_mutex_lock(&m->lock);
	*st = m->st;
	pthread_mutex_unlock(&m->lock);
}

/* ---- outcomes ------------------------------------------------------------------------- */

static uint64_t next_rand(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

enum fate { KEEP, LOSE, TEAR };

/* Writes the sectors of v that survive a tear (each with probability 1/2). */
static int apply_torn(int fd, const struct vwrite *v, uint64_t *rng)
{
	uint64_t pos = v->off, end = v->off + v->len;

	while (pos < end) {
		uint64_t next = (pos / SECTOR + 1) * SECTOR;
		int ret;

		if (next > end)
			next = end;
		if (next_rand(rng) & 1) {
			ret = pwrite_full(fd, v->new + (pos - v->off), next - pos, pos);
			if (ret)
				return ret;
		}
		pos = next;
	}
	return 0;
}

int rd_io_model_apply(struct rd_io_model *m, int fd, uint64_t seed,
		      struct rd_io_model_outcome *out)
{
	static const char *const hows[] = {
		"each write whole or lost", "each write whole, lost or torn",
		"every write torn", "a prefix in submission order, the next one torn",
	};
	uint64_t rng = seed, mode = next_rand(&rng) % 4, prefix;
	size_t n, *order = NULL;
	enum fate *fate = NULL;
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	n = m->nr_w;
	memset(out, 0, sizeof(*out));
	out->how = hows[mode];
	order = malloc((n ? n : 1) * sizeof(*order));
	fate = malloc((n ? n : 1) * sizeof(*fate));
	if (!order || !fate) {
		ret = -ENOMEM;
		goto out;
	}
	/* Back to the state before the oldest volatile write: undo newest first. */
	for (size_t i = n; i-- > 0 && !ret; )
		ret = pwrite_full(fd, m->w[i].old, m->w[i].len, m->w[i].off);
	if (ret)
		goto out;

	prefix = n ? next_rand(&rng) % (n + 1) : 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t r = next_rand(&rng) % 10;

		order[i] = i;
		switch (mode) {
		case 0: fate[i] = r < 5 ? KEEP : LOSE; break;
		case 1: fate[i] = r < 4 ? KEEP : r < 8 ? LOSE : TEAR; break;
		case 2: fate[i] = TEAR; break;
		default: fate[i] = i < prefix ? KEEP : i == prefix ? TEAR : LOSE; break;
		}
	}
	if (mode != 3) {	/* any order: shuffle (Fisher-Yates) */
		for (size_t i = n; i > 1; i--) {
			size_t j = next_rand(&rng) % i, t = order[i - 1];

			order[i - 1] = order[j];
			order[j] = t;
		}
	}
	for (size_t k = 0; k < n && !ret; k++) {
		const struct vwrite *v = &m->w[order[k]];

		switch (fate[order[k]]) {
		case KEEP:
			ret = pwrite_full(fd, v->new, v->len, v->off);
			out->kept++;
			break;
		case TEAR:
			ret = apply_torn(fd, v, &rng);
			out->torn++;
			break;
		case LOSE:
			out->lost++;
			break;
		}
	}
out:
	pthread_mutex_unlock(&m->lock);
	free(order);
	free(fate);
	return ret;
}
