/*
 * dio_source_procmem.c - another process's memory as a dio source, read through
 * /proc/PID/mem with io_uring (rd_io_submit with req->fd = the mem fd).
 *
 * Owns: the mem fd. Opening it is the grab: the kernel takes an mm_count reference on the
 * process's mm at open (mmgrab) and keeps it until close (mmdrop). Every read does
 * mmget_not_zero inside the kernel: a read of 0 bytes means the process's address space is
 * gone (it exited or was killed); -EIO means the range is not mapped (-> -EFAULT).
 *
 * Must never: read the caller's memory any other way (process_vm_readv, a mapping), or
 * keep the fd past put. Reads go to io-wq (the file has no FMODE_NOWAIT), so they never
 * block the submitter.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dio.h"

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

struct procmem_source {
	struct rd_dio_source	src;
	struct rd_io		*io;
	int			fd;
	uint64_t		addr;
};

static void procmem_end_io(struct rd_io_req *req, long res)
{
	struct rd_dio_src_read *rd = container_of(req, struct rd_dio_src_read, io);

	if (res == -EIO)	/* not mapped in the caller */
		res = -EFAULT;
	rd->done(rd, res);	/* 0: gone; short: the mapping ended inside the chunk */
}

static void procmem_read(struct rd_dio_source *src, struct rd_dio_src_read *rd)
{
	struct procmem_source *ps = container_of(src, struct procmem_source, src);

	if (rd->pos > src->len || rd->len > src->len - rd->pos) {
		rd->done(rd, -EFAULT);
		return;
	}
	rd->data = rd->buf;
	rd->io = (struct rd_io_req){
		.op	= RD_IO_READ,
		.fd	= ps->fd,
		.buf	= rd->buf,
		.off	= ps->addr + rd->pos,
		.len	= rd->len,
		.end_io	= procmem_end_io,
		.priv	= ps,
	};
	rd_io_submit(ps->io, &rd->io);
}

static void procmem_put(struct rd_dio_source *src)
{
	struct procmem_source *ps = container_of(src, struct procmem_source, src);

	close(ps->fd);	/* mmdrop */
	free(ps);
}

static const struct rd_dio_source_ops procmem_ops = {
	.name	= "procmem",
	.read	= procmem_read,
	.put	= procmem_put,
};

int rd_dio_source_procmem(struct rd_io *io, pid_t pid, uint64_t addr, uint64_t len,
			  struct rd_dio_source **out)
{
	struct procmem_source *ps;
	char path[40];
	int ret;

	*out = NULL;
	if (!io || pid <= 0)
		return -EINVAL;
	/* /proc/PID/mem offsets are addresses; the range must not wrap or go negative. */
	if (addr > INT64_MAX || len > INT64_MAX - addr)
		return -EFAULT;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	ps->fd = open(path, O_RDONLY | O_CLOEXEC);	/* the grab */
	if (ps->fd < 0) {
		ret = errno == ENOENT ? -ESRCH : -errno;
		goto err_free;
	}
	ps->src.ops = &procmem_ops;
	ps->src.len = len;
	ps->src.flags = 0;
	ps->io = io;
	ps->addr = addr;
	*out = &ps->src;
	return 0;

err_free:
	free(ps);
	return ret;
}
