/*
 * refdio/dio_fs.h - direct writes into a file of the filesystem: the dio engine (dio.h) over the
 * data path's chunk-level write (rd_data_wr_* in fs_priv.h).
 *
 * Owns: the real struct rd_dio_sink, one per write: it holds a reference on the inode from
 * submission until the write's done callback, begins each chunk's data write (range lock,
 * space reservation, edge blocks), submits it, commits it when dio says so, or aborts it.
 *
 * Must never: begin a chunk of a write before every earlier chunk of the same write began
 * (lock holders must never wait for a data worker, see data_work.c), block on a range lock
 * or an edge read in the thread that called the sink's write (those waits go to a data
 * worker), or touch the inode after the write's done callback was called.
 */
#ifndef RD_DIO_FS_H
#define RD_DIO_FS_H

#include <stdint.h>

#include "refdio/dio.h"
#include "refdio/fs.h"

/*
 * Starts a direct write of all of src into regular file ino at a->off, through d (see
 * rd_dio_submit for a, handle, and what done gets). Chunks are cut at file offsets that are
 * multiples of the chunk size, so only the first and the last can have partial blocks
 * (read-modify-written); a chunk larger than the data path takes (64 MiB) is capped.
 * a->dsync: the journal is flushed up to the write's last commit before done. src is
 * consumed either way. 0 when accepted; else -ENOENT, -EISDIR, -EINVAL (not a regular
 * file, bad arguments), -ENOMEM, -EFBIG: then done is never called.
 * fs must stay open until done was called for every write (destroy d before closing fs).
 */
int rd_fs_dio_submit(struct rd_fs *fs, struct rd_dio *d, uint64_t ino,
		     struct rd_dio_source *src, const struct rd_dio_args *a,
		     struct rd_dio_write **handle);

/* Submits and waits: what done would get (a->done is ignored). */
long rd_fs_dio_pwrite(struct rd_fs *fs, struct rd_dio *d, uint64_t ino,
		      struct rd_dio_source *src, const struct rd_dio_args *a);

#endif
