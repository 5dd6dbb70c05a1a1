/*
 * ops.c - FUSE low-level operations mapped onto the engine's POSIX layer (fs.h).
 *
 * Owns: the translation between FUSE requests and rd_fs_* calls: attributes, entries and
 * their lookup counts, file handles, and replies. Reads, writes and fsyncs complete
 * asynchronously: the reply is sent from the engine's completion, exactly once, and the
 * request is never touched after it.
 *
 * Lifetime rules:
 *  - Every entry replied (lookup, create, mkdir, ..., readdirplus) carries one lookup
 *    reference (rd_fs_iget); the kernel returns them with forget. If the reply fails (the
 *    request was interrupted), the reference is dropped here at once.
 *  - A write keeps its receive buffer (rbuf.h) referenced until its completion: the data
 *    goes to disk straight from the buffer libfuse received it into (the dio engine's
 *    rbuf source holds the reference).
 *  - Each asynchronous request counts in d->inflight from dispatch to reply, so teardown
 *    can wait for all of them (rd_daemon_drain).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "daemon.h"
#include "refdio.h"

#define RD_MAX_WRITE	(1u << 20)	/* libfuse 3.14's cap on one FUSE_WRITE */

static struct rd_daemon *D(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- conversions -------------------------------------------------------------------- */

static void to_stat(const struct rd_stat *s, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = s->ino;
	st->st_mode = s->mode;
	st->st_nlink = s->nlink;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_rdev = s->rdev;
	st->st_size = (off_t)s->size;
	st->st_blocks = (blkcnt_t)s->blocks;
	st->st_blksize = s->blksize;
	st->st_atim = s->atime;
	st->st_mtim = s->mtime;
	st->st_ctim = s->ctime;
}

static void to_entry(struct rd_daemon *d, const struct rd_stat *s, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = s->ino;
	e->generation = s->generation;
	to_stat(s, &e->attr);
	e->attr_timeout = d->opts.attr_timeout;
	e->entry_timeout = d->opts.entry_timeout;
}

/* Replies with an entry for s, taking the lookup reference the kernel will forget. */
static void reply_entry(fuse_req_t req, const struct rd_stat *s)
{
	struct rd_daemon *d = D(req);
	struct fuse_entry_param e;
	int ret = rd_fs_iget(d->fs, s->ino);

	assert(s->ino);	/* ino 0 would be a negative entry */
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	to_entry(d, s, &e);
	if (fuse_reply_entry(req, &e))
		rd_fs_iput(d->fs, s->ino, 1);	/* interrupted: the kernel never saw it */
}

static void reply_stat_or_err(fuse_req_t req, int ret, const struct rd_stat *s)
{
	struct stat st;

	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	to_stat(s, &st);
	fuse_reply_attr(req, &st, D(req)->opts.attr_timeout);
}

/* The creator's identity, with the setgid-directory rule: a new inode in a setgid
 * directory takes the directory's group (and a new directory keeps the setgid bit). */
static void creator(fuse_req_t req, fuse_ino_t parent, struct rd_fs_cred *cr, uint32_t *mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct rd_stat ps;

	cr->uid = ctx->uid;
	cr->gid = ctx->gid;
	if (!rd_fs_getattr(D(req)->fs, parent, &ps) && (ps.mode & S_ISGID)) {
		cr->gid = ps.gid;
		if (mode && S_ISDIR(*mode))
			*mode |= S_ISGID;
	}
}

/* ---- session --------------------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct rd_daemon *d = userdata;

	/* Spliced write data cannot outlive the handler, and the kernel copies user pages
	 * for O_DIRECT writes anyway: receive into our own buffers. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* REFDIO_IOC_STATS works on directories too, the root included. */
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;
	if (d->opts.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = RD_MAX_WRITE;
	conn->max_readahead = RD_MAX_WRITE;
	assert(d->opts.max_background > 0);	/* mount_opts.c: 1 to 65535 */
	conn->max_background = d->opts.max_background;
	conn->congestion_threshold = d->opts.max_background * 3 / 4;
	conn->time_gran = 1;
}

static void op_destroy(void *userdata)
{
	(void)userdata;	/* teardown is daemon.c's, in its documented order */
}

/* ---- names and attributes ------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rd_stat s;
	int ret = rd_fs_lookup(D(req)->fs, parent, name, &s);

	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_entry(req, &s);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	rd_fs_iput(D(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		rd_fs_iput(D(req)->fs, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rd_stat s;

	(void)fi;
	reply_stat_or_err(req, rd_fs_getattr(D(req)->fs, ino, &s), &s);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct rd_setattr sa = { 0 };
	struct rd_stat s;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa.valid |= RD_SET_MODE;
		sa.mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa.valid |= RD_SET_UID;
		sa.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa.valid |= RD_SET_GID;
		sa.gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa.valid |= RD_SET_SIZE;
		sa.size = (uint64_t)attr->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		sa.valid |= RD_SET_ATIME_NOW;
	else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa.valid |= RD_SET_ATIME;
		sa.atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		sa.valid |= RD_SET_MTIME_NOW;
	else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa.valid |= RD_SET_MTIME;
		sa.mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa.valid |= RD_SET_CTIME;
		sa.ctime = attr->st_ctim;
	}
	reply_stat_or_err(req, rd_fs_setattr(D(req)->fs, ino, &sa, &s), &s);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	ssize_t n = rd_fs_readlink(D(req)->fs, ino, buf, sizeof(buf) - 1);

	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct rd_fs_cred cr;
	struct rd_stat s;
	uint32_t m = mode;
	int ret;

	creator(req, parent, &cr, &m);
	ret = rd_fs_mknod(D(req)->fs, parent, name, m, rdev, &cr, &s);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_entry(req, &s);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct rd_fs_cred cr;
	struct rd_stat s;
	uint32_t m = S_IFDIR | (mode & 07777);
	int ret;

	creator(req, parent, &cr, &m);
	ret = rd_fs_mkdir(D(req)->fs, parent, name, m, &cr, &s);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_entry(req, &s);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct rd_fs_cred cr;
	struct rd_stat s;
	int ret;

	creator(req, parent, &cr, NULL);
	ret = rd_fs_symlink(D(req)->fs, parent, name, link, &cr, &s);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_entry(req, &s);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct rd_stat s;
	int ret = rd_fs_link(D(req)->fs, ino, newparent, newname, &s);

	if (ret)
		fuse_reply_err(req, -ret);
	else
		reply_entry(req, &s);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -rd_fs_unlink(D(req)->fs, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -rd_fs_rmdir(D(req)->fs, parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	unsigned f = 0;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
		fuse_reply_err(req, EINVAL);	/* RENAME_WHITEOUT: overlayfs only */
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= RD_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= RD_RENAME_EXCHANGE;
	fuse_reply_err(req, -rd_fs_rename(D(req)->fs, parent, name, newparent, newname, f));
}

/* ---- files ------------------------------------------------------------------------------ */

static int fh_new(struct rd_daemon *d, struct fuse_file_info *fi)
{
	fi->fh = rd_fh_encode(fi->flags);
	if (d->opts.direct_io)
		fi->direct_io = 1;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rd_daemon *d = D(req);
	struct rd_stat s;
	int ret = rd_fs_getattr(d->fs, ino, &s);

	if (!ret && S_ISDIR(s.mode))
		ret = -EISDIR;
	if (!ret && d->opts.read_only && (fi->flags & O_ACCMODE) != O_RDONLY)
		ret = -EROFS;
	/* With FUSE_CAP_ATOMIC_O_TRUNC (libfuse asks for it by default) the kernel leaves
	 * O_TRUNC to open instead of sending a setattr first. */
	if (!ret && (fi->flags & O_TRUNC) && s.size) {
		struct rd_setattr sa = { .valid = RD_SET_SIZE | RD_SET_MTIME_NOW, .size = 0 };

		ret = rd_fs_setattr(d->fs, ino, &sa, NULL);
	}
	if (!ret)
		ret = fh_new(d, fi);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fuse_reply_open(req, fi);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct rd_daemon *d = D(req);
	struct fuse_entry_param e;
	struct rd_fs_cred cr;
	struct rd_stat s;
	uint32_t m = S_IFREG | (mode & 07777);
	int ret;

	creator(req, parent, &cr, &m);
	ret = rd_fs_mknod(d->fs, parent, name, m, 0, &cr, &s);
	if (!ret)
		ret = rd_fs_iget(d->fs, s.ino);
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	ret = fh_new(d, fi);
	if (ret) {
		rd_fs_iput(d->fs, s.ino, 1);
		fuse_reply_err(req, -ret);
		return;
	}
	to_entry(d, &s, &e);
	if (fuse_reply_create(req, &e, fi))
		rd_fs_iput(d->fs, s.ino, 1);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;	/* the handle holds no memory (daemon.h) */
	fuse_reply_err(req, 0);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/* close() promises no durability; data is on the device already (no write cache
	 * here), and fsync makes the metadata durable. */
	fuse_reply_err(req, 0);
}

struct read_ctx {
	fuse_req_t req;
	void *buf;
};

static void read_done(void *priv, ssize_t res)
{
	struct read_ctx *c = priv;
	struct rd_daemon *d = D(c->req);

	if (res < 0)
		fuse_reply_err(c->req, (int)-res);
	else
		fuse_reply_buf(c->req, c->buf, (size_t)res);
	rd_io_buf_free(c->buf);
	free(c);
	rd_daemon_end(d);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct rd_daemon *d = D(req);
	struct read_ctx *c;

	(void)fi;
	if (size > RD_MAX_WRITE)
		size = RD_MAX_WRITE;
	c = malloc(sizeof(*c));
	if (c)
		c->buf = rd_io_buf_alloc(size ? size : 1);
	if (!c || !c->buf) {
		free(c);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	c->req = req;
	rd_daemon_begin(d);
	rd_fs_read_async(d->fs, ino, c->buf, size, (uint64_t)off, read_done, c);
}

struct write_ctx {
	fuse_req_t req;
	struct rd_daemon *d;
};

static void write_done(void *priv, long res)
{
	struct write_ctx *c = priv;
	struct rd_daemon *d = c->d;

	if (res < 0)
		fuse_reply_err(c->req, (int)-res);
	else
		fuse_reply_write(c->req, (size_t)res);
	free(c);
	rd_daemon_end(d);
}

/* The receive buffer's reference, as the rbuf source takes and drops it. */
static void write_rbuf_get(void *owner)
{
	rd_rbuf_ref(owner);
}

static void write_rbuf_put(void *owner)
{
	rd_rbuf_put(owner);
}

/*
 * Every write goes through the dio engine with the mount's strategy, window, chunk and
 * issue mode, so `refdio stats` counts ordinary writes too. The source is the receive
 * buffer itself (zero copy: the payload lies page aligned in it, referenced until the
 * write completes). Small and unaligned writes take the same path: the filesystem's sink
 * reads back and merges their edge blocks on a data worker (dio_fs.c).
 */
static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct rd_daemon *d = D(req);
	struct rd_fh fhv, *fh = rd_fh_decode(fi, &fhv) ? &fhv : NULL;
	struct rd_rbuf *rb = rd_rbuf_of_payload(&d->pool, buf, size);
	struct rd_dio_args a = {
		.off = (uint64_t)off, .strategy = d->opts.dio_strategy,
		.issue = d->opts.dio_issue, .window = d->opts.dio_window,
		.chunk = d->opts.dio_chunk, .done = write_done,
	};
	struct rd_dio_source *src = NULL;
	struct write_ctx *c;
	int ret = -ENOMEM;

	c = malloc(sizeof(*c));
	if (!c)
		goto err;
	c->req = req;
	c->d = d;
	a.priv = c;
	/* The kernel reports O_DSYNC/O_SYNC per write (RWF_DSYNC included) in fi->flags. */
	a.dsync = rd_fh_dsync(d, fh, fi->flags);
	if (rb) {
		struct rd_dio_rbuf drb = { .data = buf, .len = size, .get = write_rbuf_get,
					   .put = write_rbuf_put, .owner = rb };

		ret = rd_dio_source_rbuf(&drb, &src);
	} else {
		ret = -EIO;	/* every request is received into a pool buffer (loop.c) */
	}
	if (ret)
		goto err;
	rd_daemon_begin(d);
	ret = rd_fs_dio_submit(d->fs, d->dio, ino, src, &a, NULL);
	if (ret) {
		rd_daemon_end(d);
		goto err;
	}
	return;
err:
	free(c);
	fuse_reply_err(req, -ret);
}

struct fsync_ctx {
	fuse_req_t req;
};

static void fsync_done(void *priv, ssize_t res)
{
	struct fsync_ctx *c = priv;
	struct rd_daemon *d = D(c->req);

	fuse_reply_err(c->req, res < 0 ? (int)-res : 0);
	free(c);
	rd_daemon_end(d);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct rd_daemon *d = D(req);
	struct fsync_ctx *c = malloc(sizeof(*c));

	(void)fi;
	if (!c) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	c->req = req;
	rd_daemon_begin(d);
	rd_fs_fsync_async(d->fs, ino, datasync != 0, fsync_done, c);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -rd_fs_fallocate(D(req)->fs, ino, mode, (uint64_t)off,
					     (uint64_t)len));
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	uint64_t out;
	int ret;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);	/* the kernel handles the others itself */
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	ret = rd_fs_lseek(D(req)->fs, ino, (uint64_t)off, whence, &out);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_lseek(req, (off_t)out);
}

/* ---- directories ----------------------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rd_stat s;
	int ret = rd_fs_getattr(D(req)->fs, ino, &s);

	if (!ret && !S_ISDIR(s.mode))
		ret = -ENOTDIR;
	if (ret) {
		fuse_reply_err(req, -ret);
		return;
	}
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

struct dir_fill {
	fuse_req_t req;
	struct rd_daemon *d;
	char *buf;
	size_t size, used;
	bool plus;
	int error;
};

static int dir_fill(void *priv, const char *name, size_t name_len, uint64_t ino,
		    unsigned d_type, uint64_t next_cookie)
{
	struct dir_fill *f = priv;
	char nm[256];
	size_t need;

	if (name_len > 255)
		return 1;
	memcpy(nm, name, name_len);
	nm[name_len] = '\0';
	if (f->plus) {
		struct fuse_entry_param e;
		bool dot = !strcmp(nm, ".") || !strcmp(nm, "..");
		struct rd_stat s;

		memset(&e, 0, sizeof(e));
		/* "." and ".." carry no lookup reference: the kernel ignores their entries. */
		if (!dot) {
			int ret = rd_fs_getattr(f->d->fs, ino, &s);

			if (ret)
				return 0;	/* gone meanwhile: skip it */
			to_entry(f->d, &s, &e);
		} else {
			e.attr.st_ino = ino;
			e.attr.st_mode = d_type << 12;
		}
		need = fuse_add_direntry_plus(f->req, NULL, 0, nm, NULL, 0);
		if (f->used + need > f->size)
			return 1;
		if (!dot && rd_fs_iget(f->d->fs, ino))
			return 0;
		fuse_add_direntry_plus(f->req, f->buf + f->used, f->size - f->used, nm, &e,
				       (off_t)next_cookie);
	} else {
		struct stat st = { .st_ino = ino, .st_mode = d_type << 12 };

		need = fuse_add_direntry(f->req, NULL, 0, nm, NULL, 0);
		if (f->used + need > f->size)
			return 1;
		fuse_add_direntry(f->req, f->buf + f->used, f->size - f->used, nm, &st,
				  (off_t)next_cookie);
	}
	f->used += need;
	assert(f->used <= f->size);
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct dir_fill f = { .req = req, .d = D(req), .size = size, .plus = plus };
	int ret;

	f.buf = malloc(size ? size : 1);
	if (!f.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = rd_fs_readdir(f.d->fs, ino, (uint64_t)off, dir_fill, &f);
	if (ret && !f.used)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_buf(req, f.buf, f.used);
	/* A readdirplus reply that failed leaves the references taken: the kernel did not
	 * get the entries, but libfuse gives no way to know which; the count is returned at
	 * unmount (rd_fs_close forgets everything). */
	free(f.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	op_fsync(req, ino, datasync, fi);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	int ret;

	(void)ino;
	ret = rd_fs_statfs(D(req)->fs, &st);
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_statfs(req, &st);
}

/* ---- extended attributes --------------------------------------------------------------- */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	int f = 0;

	if (flags & XATTR_CREATE)
		f |= RD_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		f |= RD_XATTR_REPLACE;
	fuse_reply_err(req, -rd_fs_setxattr(D(req)->fs, ino, name, value, size, f));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	void *buf = NULL;
	ssize_t n;

	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = rd_fs_getxattr(D(req)->fs, ino, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ssize_t n;

	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = rd_fs_listxattr(D(req)->fs, ino, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -rd_fs_removexattr(D(req)->fs, ino, name));
}

static const struct fuse_lowlevel_ops rd_ops = {
	.init		= op_init,
	.destroy	= op_destroy,
	.lookup		= op_lookup,
	.forget		= op_forget,
	.forget_multi	= op_forget_multi,
	.getattr	= op_getattr,
	.setattr	= op_setattr,
	.readlink	= op_readlink,
	.mknod		= op_mknod,
	.mkdir		= op_mkdir,
	.unlink		= op_unlink,
	.rmdir		= op_rmdir,
	.symlink	= op_symlink,
	.rename		= op_rename,
	.link		= op_link,
	.open		= op_open,
	.create		= op_create,
	.read		= op_read,
	.write		= op_write,
	.flush		= op_flush,
	.release	= op_release,
	.fsync		= op_fsync,
	.opendir	= op_opendir,
	.readdir	= op_readdir,
	.readdirplus	= op_readdirplus,
	.releasedir	= op_releasedir,
	.fsyncdir	= op_fsyncdir,
	.statfs		= op_statfs,
	.setxattr	= op_setxattr,
	.getxattr	= op_getxattr,
	.listxattr	= op_listxattr,
	.removexattr	= op_removexattr,
	.fallocate	= op_fallocate,
	.lseek		= op_lseek,
	.ioctl		= rd_op_ioctl,
};

const struct fuse_lowlevel_ops *rd_fuse_ops(void)
{
	return &rd_ops;
}
