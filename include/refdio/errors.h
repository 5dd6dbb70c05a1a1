/*
 * refdio/errors.h - the engine's named error codes.
 *
 * Owns: private error codes for conditions errno cannot name (a bad checksum is not just
 * EIO to someone running fsck), their messages, and their mapping to errno at the edge.
 * Engine functions return 0 or a negative value: -errno, or -RD_ERR_*. Never a bare -1.
 */
#ifndef RD_ERRORS_H
#define RD_ERRORS_H

enum rd_err {
	RD_ERR_FIRST = 4096,
	RD_ERR_NOT_REFDIO = RD_ERR_FIRST, /* neither superblock copy has the refdio magic */
	RD_ERR_SB_CSUM,		/* superblock checksum mismatch */
	RD_ERR_SB_INVALID,	/* superblock fields out of range or inconsistent */
	RD_ERR_VERSION,		/* written by a newer, incompatible refdio */
	RD_ERR_FEATURES,	/* unknown feature bits */
	RD_ERR_TRUNCATED,	/* image shorter than its superblock says */
	RD_ERR_NODE_CSUM,	/* b-tree node checksum mismatch */
	RD_ERR_NODE_INVALID,	/* b-tree node header or key order wrong */
	RD_ERR_STALE_PTR,	/* pointer generation differs from its bucket's */
	RD_ERR_JOURNAL_CORRUPT,	/* journal entry invalid where a valid one is needed */
	RD_ERR_DATA_CSUM,	/* user data checksum mismatch */
	RD_ERR_IMAGE_EXISTS,	/* refusing to overwrite an existing refdio image */
	RD_ERR_NO_SPACE_META,	/* no space left for metadata (b-tree nodes, journal) */
	RD_ERR_LAST
};

/* A message for any engine return value (negative errno or -RD_ERR_*). */
const char *rd_strerror(int err);

/* The errno an engine error becomes at a POSIX edge (FUSE reply, CLI exit). Negative in,
 * negative out: -RD_ERR_DATA_CSUM -> -EIO, -ENOSPC -> -ENOSPC. */
int rd_errno(int err);

#endif
