/*
 * csum.c - checksum types used on disk.
 *
 * Owns: crc32c (through Debian's isa-l, which picks the SSE4.2/PCLMUL path at run time)
 * and XXH3-64 (through libxxhash). No hand-written checksum code: both libraries are kept
 * and tested upstream.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <isa-l/crc.h>
#include <xxhash.h>

#include "csum.h"

uint32_t rd_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	unsigned int state = ~crc;	/* isa-l takes and returns the raw, uninverted state */

	assert(buf || !len);

	while (len) {
		int n = len > (size_t)INT_MAX ? INT_MAX : (int)len;

		state = crc32_iscsi((unsigned char *)p, n, state);
		p += n;
		len -= (size_t)n;
	}
	return ~state;
}

uint64_t rd_csum(enum rd_csum_type type, const void *buf, size_t len)
{
	switch (type) {
	case RD_CSUM_CRC32C:
		return rd_crc32c(0, buf, len);
	case RD_CSUM_XXHASH:
		return XXH3_64bits(buf, len);
	case RD_CSUM_NONE:
	case RD_CSUM_NR:
		break;
	}
	return 0;
}

static const char *const csum_names[RD_CSUM_NR] = {
	[RD_CSUM_NONE]	 = "none",
	[RD_CSUM_CRC32C] = "crc32c",
	[RD_CSUM_XXHASH] = "xxhash",
};

const char *rd_csum_name(unsigned type)
{
	return type < RD_CSUM_NR ? csum_names[type] : NULL;
}

int rd_csum_parse(const char *name)
{
	for (unsigned i = 0; i < RD_CSUM_NR; i++)
		if (!strcmp(name, csum_names[i]))
			return (int)i;
	return -EINVAL;
}
