/*
 * errors.c - messages and errno mapping for the engine's named error codes.
 * Owns: nothing but the tables below.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "refdio/errors.h"

static const char *const rd_err_msg[RD_ERR_LAST - RD_ERR_FIRST] = {
	[RD_ERR_NOT_REFDIO - RD_ERR_FIRST]	= "not a refdio image (no superblock magic)",
	[RD_ERR_SB_CSUM - RD_ERR_FIRST]		= "superblock checksum mismatch",
	[RD_ERR_SB_INVALID - RD_ERR_FIRST]	= "superblock fields invalid",
	[RD_ERR_VERSION - RD_ERR_FIRST]		= "image needs a newer refdio",
	[RD_ERR_FEATURES - RD_ERR_FIRST]	= "image uses unknown features",
	[RD_ERR_TRUNCATED - RD_ERR_FIRST]	= "image is truncated",
	[RD_ERR_NODE_CSUM - RD_ERR_FIRST]	= "b-tree node checksum mismatch",
	[RD_ERR_NODE_INVALID - RD_ERR_FIRST]	= "b-tree node invalid",
	[RD_ERR_STALE_PTR - RD_ERR_FIRST]	= "stale pointer (bucket generation changed)",
	[RD_ERR_JOURNAL_CORRUPT - RD_ERR_FIRST]	= "journal corrupt",
	[RD_ERR_DATA_CSUM - RD_ERR_FIRST]	= "data checksum mismatch",
	[RD_ERR_IMAGE_EXISTS - RD_ERR_FIRST]	= "a refdio image already exists there",
	[RD_ERR_NO_SPACE_META - RD_ERR_FIRST]	= "no space left for metadata",
};

const char *rd_strerror(int err)
{
	int e = err < 0 ? -err : err;

	if (e >= RD_ERR_FIRST && e < RD_ERR_LAST) {
		assert(rd_err_msg[e - RD_ERR_FIRST]);	/* every named code has a message */
		return rd_err_msg[e - RD_ERR_FIRST];
	}
	return strerror(e);
}

int rd_errno(int err)
{
	int e = err < 0 ? -err : err;

	if (e < RD_ERR_FIRST)
		return err;
	switch (e) {
	case RD_ERR_NO_SPACE_META:
		return -ENOSPC;
	case RD_ERR_IMAGE_EXISTS:
		return -EEXIST;
	case RD_ERR_VERSION:
	case RD_ERR_FEATURES:
		return -EPROTO;
	default:
		return -EIO;
	}
}
