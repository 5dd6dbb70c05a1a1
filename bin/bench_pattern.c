/*
 * bench_pattern.c - the bytes the matrix writes, at the memory cost of one period, and
 * their check after the write.
 *
 * The pattern of a seed is periodic with period P = 4 MiB + 4 KiB (BENCH_PAT_PERIOD):
 * 64-bit word i of the period is splitmix64(seed * 2^32 + i), little-endian. It lives in
 * one memfd of P bytes, mapped read-only again and again over a reserved range, so a write
 * of any size (8 GiB, 64 GiB) costs the bench P bytes of RAM, and the daemon reads real,
 * varied bytes (no zero page a filesystem or the kernel could special-case). P is not a
 * multiple of any chunk size, so a chunk that lands at a wrong offset shows in the check.
 *
 * Owns: the mapping and the sample check. Must never: write through the mapping (it is
 * read-only; the memfd is written once, through a mapping of its own, before).
 *
 * Test hook: REFDIO_BENCH_FAULT=verify in the environment makes the check compare each
 * sample with the pattern one block further on, so the test can see a check fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define SAMPLES		32
#define SAMPLE_LEN	(64u << 10)

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int fill_period(int fd, uint64_t seed)
{
	uint8_t *p = mmap(NULL, BENCH_PAT_PERIOD, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		return -errno;
	for (uint64_t i = 0; i < BENCH_PAT_PERIOD / 8; i++) {
		uint64_t w = splitmix64((seed << 32) + i);

		for (unsigned k = 0; k < 8; k++)
			p[8 * i + k] = (uint8_t)(w >> (8 * k));
	}
	munmap(p, BENCH_PAT_PERIOD);
	return 0;
}

int bench_pattern_map(uint64_t seed, uint64_t len, struct bench_pattern *p)
{
	uint64_t periods = len / BENCH_PAT_PERIOD + 1;
	uint8_t *base;
	int fd, ret;

	memset(p, 0, sizeof(*p));
	if (periods > 60000)	/* vm.max_map_count is 65530 by default */
		return -E2BIG;
	fd = memfd_create("refdio-bench-pattern", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = ftruncate(fd, BENCH_PAT_PERIOD) ? -errno : fill_period(fd, seed);
	if (ret)
		goto out;
	base = mmap(NULL, periods * BENCH_PAT_PERIOD, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		ret = -errno;
		goto out;
	}
	for (uint64_t i = 0; i < periods; i++)
		if (mmap(base + i * BENCH_PAT_PERIOD, BENCH_PAT_PERIOD, PROT_READ,
			 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
			ret = -errno;
			munmap(base, periods * BENCH_PAT_PERIOD);
			goto out;
		}
	p->addr = base;
	p->len = len;
	p->map_len = periods * BENCH_PAT_PERIOD;
out:
	close(fd);
	return ret;
}

void bench_pattern_unmap(struct bench_pattern *p)
{
	if (p->addr)
		munmap(p->addr, p->map_len);
	memset(p, 0, sizeof(*p));
}

int bench_pattern_verify(const struct bench_pattern *p, int fd, uint64_t len,
			 uint64_t *checked, uint64_t *bad)
{
	const char *fault = getenv("REFDIO_BENCH_FAULT");
	uint64_t shift = fault && !strcmp(fault, "verify") ? 4096 : 0;
	uint64_t x = len ^ 0x5eed;
	uint8_t *buf;
	int ret = 0;

	*checked = *bad = 0;
	if (len > p->len)
		return -EINVAL;
	buf = malloc(SAMPLE_LEN);
	if (!buf)
		return -ENOMEM;
	for (unsigned s = 0; s < SAMPLES + 2 && len; s++) {
		uint64_t n = len < SAMPLE_LEN ? len : SAMPLE_LEN, off;
		ssize_t got;

		if (s == 0)
			off = 0;
		else if (s == 1)
			off = len - n;		/* the last bytes */
		else
			off = (splitmix64(x += s) % (len - n + 1)) & ~4095ull;
		got = pread(fd, buf, n, (off_t)off);
		if (got < 0) {
			ret = -errno;
			break;
		}
		for (uint64_t i = 0; i < n; i++) {
			uint64_t f = off + i + shift;
			uint8_t want = p->addr[f % BENCH_PAT_PERIOD];

			if ((ssize_t)i >= got || buf[i] != want)
				(*bad)++;
		}
		*checked += n;
	}
	free(buf);
	return ret;
}
