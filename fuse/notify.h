/*
 * notify.h - the daemon's one notifier thread: the only caller of the kernel's reverse
 * notifications (fuse_lowlevel_notify_inval_inode), fed by a queue nothing else waits on.
 *
 * THE RULE (see notify.c for why): no thread that a FUSE request needs in order to be
 * answered may ever wait in a kernel notification. Receive threads, dio workers, data
 * workers, I/O threads and reader threads only queue an entry (rd_notify_queue never
 * blocks); the notifier invalidates, then runs the entry's `then` (the ioctl's reply).
 */
#ifndef RD_NOTIFY_H
#define RD_NOTIFY_H

#include <stdint.h>

#include <fuse_lowlevel.h>

struct rd_daemon;

/* Embedded in the object that waits for the invalidation (an ioctl write). */
struct rd_notify_ent {
	struct rd_notify_ent	*next;
	fuse_ino_t		ino;
	uint64_t		off, len;	/* the range written; len > 0 */
	/* On the notifier thread, after the invalidation (or, once closed, instead of it).
	 * Must not block on anything but a reply to the kernel. */
	void			(*then)(struct rd_notify_ent *e);
};

int rd_notify_init(struct rd_daemon *d);
/* Queues e; never blocks. */
void rd_notify_queue(struct rd_daemon *d, struct rd_notify_ent *e);
/*
 * From now on entries run their `then` without any kernel call. Waits until the notifier
 * is out of any call it is in: call it only while requests are still being received (or
 * once the connection is gone), so that whatever that call waits for can be answered.
 */
void rd_notify_close(struct rd_daemon *d);
/* After close, once nothing queues any more: runs what is left, stops the thread. */
void rd_notify_exit(struct rd_daemon *d);

#endif
