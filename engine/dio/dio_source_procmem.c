/*
 * dio_source_procmem.c - another process's memory (the caller of a direct-write ioctl) as a
 * dio source: each chunk is read with process_vm_readv on a reader thread
 * (dio_readers.c), then the caller's identity is checked (dio_caller.c).
 *
 * Owns: struct procmem_source (the caller reference, the jobs in flight) and struct
 * pm_job (one chunk read, from read() until the reader pool releases it: possibly long
 * after the write ended, when the read was abandoned).
 *
 * Why process_vm_readv, measured on Linux 6.18: it honours the caller's protections (a
 * PROT_NONE page ends the read: -EFAULT, or the count read before it), as a kernel direct
 * write from that buffer would; reads of /proc/PID/mem use FOLL_FORCE and read PROT_NONE
 * memory. And where the caller's memory never answers (a userfaultfd page nobody
 * resolves, a file mapping on a FUSE mount that stopped), process_vm_readv waits
 * killably, while a /proc/PID/mem read of a stalled file mapping waits in an uninterruptible
 * sleep that even keeps the daemon from exiting. The address space is still pinned and
 * probed through the caller's /proc mem file (dio_caller.c), never read through it.
 *
 * Lifetime of a job: two references, the pool's (dropped at release) and the source's
 * list entry (dropped when done() unlinks it); cancel() takes a third while it looks the
 * job up. The job holds a caller reference, since run() may still use it after the write
 * (and the source) are gone.
 *
 * Must never: use bytes read without a successful rd_dio_caller_check after the read, touch
 * the source after calling rd->done(), or block in read(), cancel() or done().
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "refdio/dio.h"
#include "dio_readers.h"
#include "util.h"

struct pm_job;

struct procmem_source {
	struct rd_dio_source	src;
	struct rd_dio_readers	*r;
	struct rd_dio_caller	*caller;
	uint64_t		owner;
	uint64_t		addr;
	pthread_mutex_t		lock;
	struct pm_job		*jobs;		/* in flight (lock) */
};

struct pm_job {
	struct rd_dio_rjob	j;
	_Atomic unsigned	refs;
	struct procmem_source	*ps;		/* until done() */
	struct rd_dio_src_read	*rd;		/* until done(); the key for cancel */
	struct rd_dio_caller	*caller;	/* a reference */
	uint64_t		remote;		/* caller's address */
	size_t			len;
	struct pm_job		*next, *prev;	/* in ps->jobs */
};

static void pm_job_put(struct pm_job *pj)
{
	unsigned old = atomic_fetch_sub_explicit(&pj->refs, 1, memory_order_acq_rel);

	assert(old > 0);
	if (old != 1)
		return;
	rd_dio_caller_put(pj->caller);
	free(pj);
}

/* On a reader thread: the read itself, then the check that it read the caller. */
static long pm_run(struct rd_dio_rjob *j)
{
	struct pm_job *pj = container_of(j, struct pm_job, j);
	struct iovec local = { .iov_base = j->buf, .iov_len = pj->len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)pj->remote, .iov_len = pj->len };
	ssize_t n;

	/* The raw system call, not libc's: the sanitizers' wrappers would mark buf written
	 * once the call returns, which for an abandoned read is after the pool handed the
	 * range to this (ghost) thread and made it inaccessible; the kernel never writes
	 * there after that (its copy faults), but the wrapper's mark is seen as a race. */
	n = syscall(SYS_process_vm_readv, rd_dio_caller_pid(pj->caller), &local, 1UL, &remote,
		    1UL, 0UL);
	if (n < 0) {
		int err = errno;

		if (err == ESRCH || !rd_dio_caller_check(pj->caller))
			return 0;	/* gone */
		return err == EFAULT ? -EFAULT : err == EPERM ? -EFAULT : -err;
	}
	if (!rd_dio_caller_check(pj->caller))
		return 0;	/* not the caller any more: the bytes are thrown away */
	return (long)n;	/* fewer than len: unreadable from there on */
}

static void pm_done(struct rd_dio_rjob *j, long res, bool buf_taken)
{
	struct pm_job *pj = container_of(j, struct pm_job, j);
	struct procmem_source *ps = pj->ps;
	struct rd_dio_src_read *rd = pj->rd;

	assert(ps && rd);	/* done() runs once per job */
	pthread_mutex_lock(&ps->lock);
	if (pj->prev)
		pj->prev->next = pj->next;
	else
		ps->jobs = pj->next;
	if (pj->next)
		pj->next->prev = pj->prev;
	pj->ps = NULL;
	pj->rd = NULL;
	pthread_mutex_unlock(&ps->lock);
	pm_job_put(pj);		/* the list entry's */

	rd->data = rd->buf;
	rd->buf_taken = buf_taken;
	rd->done(rd, res);	/* the source may be gone after this */
}

static void pm_release(struct rd_dio_rjob *j)
{
	pm_job_put(container_of(j, struct pm_job, j));	/* the pool's */
}

static void procmem_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	struct procmem_source *ps = container_of(src, struct procmem_source, src);
	struct pm_job *pj;

	if (rd->pos > src->len || rd->len > src->len - rd->pos || !rd->buf) {
		rd->done(rd, -EFAULT);
		return;
	}
	pj = calloc(1, sizeof(*pj));
	if (!pj) {
		rd->done(rd, -ENOMEM);
		return;
	}
	pj->j = (struct rd_dio_rjob){ .run = pm_run, .done = pm_done, .release = pm_release,
				      .buf = rd->buf, .buf_cap = rd->buf_cap, .owner = ps->owner };
	atomic_init(&pj->refs, 2);
	pj->ps = ps;
	pj->rd = rd;
	rd_dio_caller_get(ps->caller);
	pj->caller = ps->caller;
	pj->remote = ps->addr + rd->pos;
	pj->len = rd->len;
	rd->buf_taken = false;

	pthread_mutex_lock(&ps->lock);
	pj->next = ps->jobs;
	if (ps->jobs)
		ps->jobs->prev = pj;
	ps->jobs = pj;
	pthread_mutex_unlock(&ps->lock);
	dio_readers_submit(ps->r, &pj->j);
}

static void procmem_cancel(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	struct procmem_source *ps = container_of(src, struct procmem_source, src);
	struct pm_job *pj;

	pthread_mutex_lock(&ps->lock);
	for (pj = ps->jobs; pj && pj->rd != rd; pj = pj->next)
		;
	if (pj)
		atomic_fetch_add_explicit(&pj->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&ps->lock);
	if (!pj)
		return;	/* it ended already */
	dio_readers_cancel(ps->r, &pj->j);
	pm_job_put(pj);
}

static void procmem_put(struct rd_dio_source *src)
{
	struct procmem_source *ps = container_of(src, struct procmem_source, src);

	/* Every read was done (the write completed): no job refers to ps any more. */
	assert(!ps->jobs);
	rd_dio_caller_put(ps->caller);
	pthread_mutex_destroy(&ps->lock);
	free(ps);
}

static const struct rd_dio_source_ops procmem_ops = {
	.name	= "procmem",
	.read	= procmem_read,
	.cancel	= procmem_cancel,
	.put	= procmem_put,
};

int rd_dio_source_procmem(struct rd_dio_readers *r, struct rd_dio_caller *c, uint64_t owner,
			  uint64_t addr, uint64_t len, struct rd_dio_source **out)
{
	struct procmem_source *ps;

	*out = NULL;
	if (!r || !c)
		return -EINVAL;
	/* The range must not wrap, nor leave the address space a pointer can name. */
	if (addr > UINTPTR_MAX || len > UINTPTR_MAX - addr || len > INT64_MAX)
		return -EFAULT;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->src.ops = &procmem_ops;
	ps->src.len = len;
	ps->src.flags = 0;
	ps->r = r;
	rd_dio_caller_get(c);
	ps->caller = c;
	ps->owner = owner;
	ps->addr = addr;
	pthread_mutex_init(&ps->lock, NULL);
	*out = &ps->src;
	return 0;
}
