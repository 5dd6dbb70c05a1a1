/* test_csum.c - checksum types against published check values. */
#include "../test.h"
#include "csum.h"
#include "refdio/errors.h"

int main(void)
{
	const char *s = "123456789";

	/* The standard check values of both algorithms. */
	CHECK_EQ(rd_crc32c(0, s, 9), 0xe3069283u);
	CHECK_EQ(rd_csum(RD_CSUM_CRC32C, s, 9), 0xe3069283u);
	/* Chaining equals one pass. */
	CHECK_EQ(rd_crc32c(rd_crc32c(0, s, 4), s + 4, 5), 0xe3069283u);
	CHECK_EQ(rd_csum(RD_CSUM_NONE, s, 9), 0);
	/* XXH3-64 of the empty input, as published by xxHash. */
	CHECK(rd_csum(RD_CSUM_XXHASH, "", 0) == 0x2d06800538d394c2ull);
	CHECK(rd_csum(RD_CSUM_XXHASH, s, 9) != rd_csum(RD_CSUM_XXHASH, s, 8));

	CHECK_EQ(rd_csum_parse("crc32c"), RD_CSUM_CRC32C);
	CHECK_EQ(rd_csum_parse("xxhash"), RD_CSUM_XXHASH);
	CHECK_EQ(rd_csum_parse("none"), RD_CSUM_NONE);
	CHECK(rd_csum_parse("md5") < 0);
	CHECK(!strcmp(rd_csum_name(RD_CSUM_XXHASH), "xxhash"));
	CHECK(rd_csum_name(99) == NULL);
	return 0;
}
