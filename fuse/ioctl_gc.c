/*
 * ioctl_gc.c - REFDIO_IOC_GC: copying GC's counters, and a forced GC pass, on a mount.
 *
 * Owns: answering one REFDIO_IOC_GC request (include/refdio_ioctl.h) from rd_fs_gc and
 * rd_fs_stats. A forced pass runs in the request's loop thread and is answered when it is
 * done (the engine's mover thread waits meanwhile; other requests go on in the other loop
 * threads).
 *
 * Must never: reach into the engine beyond include/refdio.h, or answer a request twice.
 */
#include <errno.h>
#include <string.h>

#include "daemon.h"
#include "refdio.h"
#include "refdio_ioctl.h"

void rd_ioctl_gc(fuse_req_t req, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct rd_daemon *d = fuse_req_userdata(req);
	struct refdio_gc g;
	struct rd_fs_stats st;
	int ret;

	if (in_bufsz != sizeof(g) || out_bufsz != sizeof(g)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(&g, in_buf, sizeof(g));	/* no alignment assumed */
	if (g.flags & ~REFDIO_GC_RUN) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (g.flags & REFDIO_GC_RUN) {
		struct rd_gc_report r;

		ret = rd_fs_gc(d->fs, &r);
		if (ret) {
			fuse_reply_err(req, -ret);
			return;
		}
		g.run_rounds = r.rounds;
		g.run_buckets_freed = r.buckets_freed;
		g.run_extents_moved = r.extents_moved;
		g.run_bytes_moved = r.bytes_moved;
		g.run_bytes_read = r.bytes_read;
		g.run_skipped = r.skipped;
		g.run_empty_before = r.empty_before;
		g.run_empty_after = r.empty_after;
	}
	rd_fs_stats(d->fs, &st);
	g.rounds = st.gc_rounds;
	g.buckets_freed = st.gc_buckets_freed;
	g.extents_moved = st.gc_extents_moved;
	g.bytes_moved = st.gc_bytes_moved;
	g.bytes_read = st.gc_bytes_read;
	g.skipped = st.gc_skipped;
	g.waits = st.gc_waits;
	fuse_reply_ioctl(req, 0, &g, sizeof(g));
}
