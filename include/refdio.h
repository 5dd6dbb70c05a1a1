/*
 * refdio.h - the engine's one public face: what fuse/, bin/ and any other program may use.
 *
 * Owns nothing itself: it gathers the public headers under include/refdio/, each of which
 * the engine also includes for its own definitions, so that a declaration exists once.
 *   refdio/errors.h   error codes and their messages (engine calls return 0 or -errno or
 *                     -RD_ERR_*)
 *   refdio/image.h    an image as a whole: format, probe, open, flush, close, inspect, list
 *   refdio/fs.h       the POSIX layer: files, directories, links, xattrs, data
 *   refdio/dio.h      direct writes: sources, strategies, the engine, its statistics
 *   refdio/dio_fs.h   direct writes into a file of the filesystem
 *   refdio/fsck.h     checking (and repairing) an image
 * The store and the filesystem are opaque here (struct rd_store, struct rd_fs); the
 * on-disk format (engine/format.h) and everything under engine/ stay private: the build
 * gives fuse/ and bin/ only this directory (engine/meson.build: engine_public_dep).
 * include/refdio_ioctl.h, beside it, is the mount's ioctl ABI for any client.
 */
#ifndef REFDIO_H
#define REFDIO_H

#include "refdio/errors.h"
#include "refdio/image.h"
#include "refdio/fs.h"
#include "refdio/dio.h"
#include "refdio/dio_fs.h"
#include "refdio/fsck.h"

#endif
