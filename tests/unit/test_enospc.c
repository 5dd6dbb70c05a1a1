/*
 * test_enospc.c - a full device: short writes that report exactly what was written, space
 * coming back after truncates, and a consistent filesystem after each step and a reopen.
 *
 * refdio's rule: a write returns the bytes written when any were, else the error; writes
 * go through the dio engine, which stops at the first chunk (1 MiB) whose space cannot be
 * reserved, so a write reports a prefix ending on a chunk boundary. Filling a file with
 * large unaligned writes therefore ends with a short write or -ENOSPC while less than a
 * chunk is left; smaller writes then take the rest, down to -ENOSPC for a single block.
 * The file is exactly as long as the sum reported, and reads back the pattern written. Filled, deleted (unlink) and written again, crashed and
 * closed: the filesystem check (rd_fsck_fs, data included) finds no error each time.
 */
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>

#include "data_util.h"
#include "fsck_util.h"

#define WLEN ((1 << 20) + 13)
/* What a refill may fall short of an earlier fill: the b-trees (256 KiB nodes) are not the
 * same size from one fill to the next, and a write is refused a chunk (1 MiB) at a time. */
#define SLACK (4u << 20)

static uint8_t *wbuf, *rbuf;

static uint64_t up4k(uint64_t x)
{
	return (x + 4095) / 4096 * 4096;
}

/* Appends the pattern of seed to ino until the device is full, with writes of WLEN, then
 * smaller ones (down to a block) once WLEN no longer fits; returns the bytes in it. */
static uint64_t fill(struct rd_fs *fs, uint64_t ino, uint64_t seed, uint64_t *shorts)
{
	uint64_t off = 0;
	size_t len = WLEN;
	unsigned settled = 0;

	for (;;) {
		ssize_t n;

		/* The small writes end on block boundaries: a block-sized write at an unaligned
		 * offset would need two blocks where one may be left. */
		if (len < WLEN && off % 4096 && up4k(off) - off < len)
			len = (size_t)(up4k(off) - off);
		du_fill(wbuf, seed, off, len);
		n = rd_fs_write(fs, ino, wbuf, len, off, 0);
		if (n == -ENOSPC) {
			struct rd_space sp;

			if (len <= 4096) {
				/* Space freed by the last commits (old b-tree nodes after a
				 * checkpoint) comes back once the journal is durable: settle that,
				 * then the device is full for good. */
				if (settled++)
					break;
				CHECK_OK(rd_store_flush(rd_fs_store(fs), 0));
				continue;
			}
			/* Refused only while less than a chunk (plus its edge block) is left. */
			rd_alloc_space(rd_fs_store(fs), &sp);
			CHECK(len != WLEN || sp.available_bytes < (1u << 20) + 8192);
			len = len > 65536 ? 65536 : 4096;
			continue;
		}
		CHECK(n > 0);
		off += (uint64_t)n;
		if ((size_t)n < len)
			(*shorts)++;
		if (len < WLEN && len < 4096)
			len = 4096;	/* (the partial block is filled: back to whole blocks) */
	}
	/* Full now: even one more byte does not fit (a new block would be needed). */
	CHECK_EQ(rd_fs_write(fs, ino, wbuf, 4096, up4k(off), 0), -ENOSPC);
	return off;
}

static void verify(struct rd_fs *fs, uint64_t ino, uint64_t seed, uint64_t size)
{
	CHECK_EQ(du_stat(fs, ino).size, size);
	for (uint64_t off = 0; off < size; off += WLEN) {
		size_t len = size - off < WLEN ? (size_t)(size - off) : WLEN;

		CHECK_EQ(rd_fs_read(fs, ino, rbuf, WLEN, off), len);
		du_fill(wbuf, seed, off, len);
		CHECK(memcmp(rbuf, wbuf, len) == 0);
	}
}

/* The whole scenario on a 48 MiB image with b-tree nodes of node_size: with the default
 * 256 KiB nodes, a full device must still leave room for every checkpoint (close, reopen). */
static void scenario(uint32_t node_size)
{
	struct du_geo g = { .size = 48 << 20, .node_size = node_size };
	uint64_t a, b, inos[2], sa, sb, sa2, shorts = 0;
	struct rd_fs_stats st;
	struct rd_space sp;
	char path[128];
	struct rd_fs *fs;

	printf("b-tree nodes of %u KiB\n", node_size >> 10);
	du_format(path, "enospc", &g);
	fs = du_open(path);
	a = du_create(fs, "a");
	b = du_create(fs, "b");
	inos[0] = a;
	inos[1] = b;

	/* 1. Fill. */
	sa = fill(fs, a, 1, &shorts);
	rd_alloc_space(rd_fs_store(fs), &sp);
	printf("filled %llu bytes (usable %llu, available now %llu), %llu short write(s)\n",
	       (unsigned long long)sa, (unsigned long long)sp.usable_bytes,
	       (unsigned long long)sp.available_bytes, (unsigned long long)shorts);
	CHECK(sa > sp.usable_bytes / 2);
	CHECK(sp.available_bytes < 4096);
	CHECK_EQ(sp.reserved_bytes, 0);
	verify(fs, a, 1, sa);
	du_check_accounting(fs, inos, 2);
	rd_fs_stats(fs, &st);
	CHECK_EQ(st.short_writes, shorts);
	/* A full device refuses preallocation up front, changing nothing. */
	CHECK_EQ(rd_fs_fallocate(fs, b, 0, 0, 8 << 20), -ENOSPC);
	CHECK_EQ(du_stat(fs, b).size, 0);
	CHECK_EQ(du_stat(fs, b).blocks, 0);
	/* Truncating onto a partial block needs a block for the zeroed tail: it may say
	 * ENOSPC, but then the file is at most cut at the block boundary above. */
	{
		struct rd_setattr sa_ = { .valid = RD_SET_SIZE, .size = sa - 5 };
		int ret = rd_fs_setattr(fs, a, &sa_, NULL);

		CHECK(ret == 0 || ret == -ENOSPC);
		if (ret == 0) {
			sa -= 5;
		} else {
			uint64_t now = du_stat(fs, a).size;

			CHECK(now <= sa && now >= up4k(sa - 5));
			sa = now;
		}
		verify(fs, a, 1, sa);
	}

	/* 2. Half of it freed: the space comes back (once the journal says it is free). */
	sa2 = sa / 2;
	du_truncate(fs, a, sa2);
	sb = fill(fs, b, 2, &shorts);
	printf("after truncating to half: %llu more bytes\n", (unsigned long long)sb);
	CHECK(sb > (sa - sa2) / 2);
	verify(fs, a, 1, sa2);
	verify(fs, b, 2, sb);
	du_check_accounting(fs, inos, 2);

	/* 3. Everything is on disk as reported, and the filesystem check agrees. */
	CHECK_OK(rd_fs_close(fs));
	fu_check_clean(path, true, 0);
	fs = du_open(path);
	verify(fs, a, 1, sa2);
	verify(fs, b, 2, sb);
	du_check_accounting(fs, inos, 2);

	/* 4. Freeing everything gives all the space back. */
	du_truncate(fs, a, 0);
	du_truncate(fs, b, 0);
	du_check_accounting(fs, inos, 2);
	sb = fill(fs, b, 3, &shorts);
	printf("after freeing all: %llu bytes\n", (unsigned long long)sb);
	CHECK(sb + SLACK >= sa);
	verify(fs, b, 3, sb);
	CHECK_OK(rd_fs_close(fs));
	fu_check_clean(path, true, 0);
	fs = du_open(path);
	verify(fs, b, 3, sb);
	du_check_accounting(fs, inos, 2);

	/* 5. Full again: delete the file that fills it (unlink), write a new one; crash
	 * half-way through that and check the image as the crash left it, then again after
	 * a clean close. */
	CHECK_OK(rd_fs_unlink(fs, RD_ROOT_INO, "b"));
	inos[1] = du_create(fs, "c");
	sb = fill(fs, inos[1], 4, &shorts);
	printf("after deleting the full file: %llu bytes in a new one\n", (unsigned long long)sb);
	CHECK(sb + SLACK >= sa);
	CHECK_OK(rd_fs_fsync(fs, inos[1], false));
	rd_fs_crash(fs);
	fu_check_clean(path, true, 0);
	fs = du_open(path);
	verify(fs, inos[1], 4, sb);
	du_check_accounting(fs, inos, 2);
	CHECK_OK(rd_fs_close(fs));
	fu_check_clean(path, true, 0);
	unlink(path);
}

int main(void)
{
	test_seed();
	wbuf = malloc(WLEN);
	rbuf = malloc(WLEN);
	CHECK(wbuf && rbuf);
	scenario(64 << 10);
	scenario(256 << 10);	/* the default node size */
	free(wbuf);
	free(rbuf);
	printf("test_enospc: ok\n");
	return 0;
}
