/*
 * test_bench_calc.c - the arithmetic behind refdio bench's figures (bin/bench_calc.c):
 * medians and spreads over the successful runs only, nearest-rank percentiles, the host
 * row a cell is compared with, and sizes in words. Random runs are checked against a
 * direct computation; the negative control marks a run failed and sees the median move.
 */
#include <math.h>

#include "../../bin/bench.h"
#include "test.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void fixed_cases(void)
{
	double v[] = { 5, 1, 3 }, w[] = { 4, 1, 3, 2 }, s[100];
	char buf[32];

	CHECK(bench_median(v, 3) == 3);
	CHECK(bench_median(w, 4) == 2.5);
	for (int i = 0; i < 100; i++)
		s[i] = i + 1;
	CHECK(bench_pct_sorted(s, 100, 50) == 50);
	CHECK(bench_pct_sorted(s, 100, 99) == 99);
	CHECK(bench_pct_sorted(s, 100, 99.9) == 100);
	CHECK(bench_pct_sorted(s, 100, 100) == 100);
	CHECK(bench_pct_sorted(s, 1, 50) == 1);
	CHECK(!strcmp(bench_size_str(64ull << 20, buf, sizeof(buf)), "64M"));
	CHECK(!strcmp(bench_size_str(8ull << 30, buf, sizeof(buf)), "8G"));
	CHECK(!strcmp(bench_size_str(256 << 10, buf, sizeof(buf)), "256K"));
	CHECK(!strcmp(bench_size_str(5000, buf, sizeof(buf)), "5000"));
	CHECK(!strcmp(bench_strategy_name(REFDIO_STRATEGY_BOUNCE64), "bounce64"));
	CHECK(!strcmp(bench_status_name(BST_REFUSED), "refused"));
}

/* Cells with random runs, some failed: the median and spread cover the ok runs only. */
static void random_cells(uint64_t seed)
{
	for (int round = 0; round < 1000; round++) {
		struct bench_cell_run runs[9];
		struct bench_cell c = { .runs = runs, .size = 1 << 20 };
		double ok[9], m, sp;
		unsigned n = 0;
		bool have;

		c.nr_runs = 1 + (unsigned)(test_rand(&seed) % 9);
		memset(runs, 0, sizeof(runs));
		for (unsigned i = 0; i < c.nr_runs; i++) {
			runs[i].status = test_rand(&seed) % 4 ? BST_OK : BST_FAILED;
			runs[i].bytes = 1 << 20;
			runs[i].seconds = 0.001 + (double)(test_rand(&seed) % 1000) / 1000;
			if (runs[i].status == BST_OK)
				ok[n++] = bench_run_mibs(&runs[i]);
		}
		have = bench_cell_median(&c, bench_run_mibs, &m, &sp);
		CHECK(have == (n > 0));
		if (!n)
			continue;
		qsort(ok, n, sizeof(ok[0]), cmp);
		CHECK(fabs(m - (n % 2 ? ok[n / 2] : (ok[n / 2 - 1] + ok[n / 2]) / 2)) < 1e-9);
		CHECK(fabs(sp - (ok[n - 1] - ok[0]) / 2 / m) < 1e-9);
		CHECK(m >= ok[0] && m <= ok[n - 1]);

		/* Negative control: failing the fastest ok run changes what is counted. */
		if (n >= 2) {
			double m2;

			for (unsigned i = 0; i < c.nr_runs; i++)
				if (runs[i].status == BST_OK && bench_run_mibs(&runs[i]) == ok[n - 1]) {
					runs[i].status = BST_FAILED;
					break;
				}
			CHECK(bench_cell_median(&c, bench_run_mibs, &m2, NULL));
			CHECK(m2 <= m);
			CHECK(n % 2 == 0 || ok[n / 2 - 1] == ok[n / 2] || m2 < m);
		}
	}
}

static void host_and_jobs(void)
{
	struct bench_cell_run hr = { .status = BST_OK, .bytes = 100 << 20, .seconds = 1 };
	struct bench_cell cells[2] = {
		{ .host = true, .size = 64 << 20, .runs = &hr, .nr_runs = 1 },
		{ .strategy = REFDIO_STRATEGY_REFCTX, .size = 1 << 30 },
	};
	struct bench_result r = { .cells = cells, .nr_cells = 2 };
	struct bench_job_run jr[4] = {
		{ .refdio = false, .status = BST_OK, .value = { 100 } },
		{ .refdio = true, .status = BST_OK, .value = { 40 } },
		{ .refdio = false, .status = BST_OK, .value = { 120 } },
		{ .refdio = true, .status = BST_FAILED, .value = { 1000 } },
	};
	struct bench_job j = { .runs = jr, .nr_runs = 4, .nr_figs = 1 };
	double m, sp;

	CHECK(bench_host_cell(&r, 64 << 20) == &cells[0]);
	CHECK(bench_host_cell(&r, 1 << 30) == NULL);
	CHECK(bench_job_median(&j, false, 0, &m, &sp) && m == 110 && fabs(sp - 10.0 / 110) < 1e-12);
	CHECK(bench_job_median(&j, true, 0, &m, NULL) && m == 40);	/* the failed run is out */
}

int main(void)
{
	fixed_cases();
	random_cells(test_seed());
	host_and_jobs();
	printf("ok\n");
	return 0;
}
