/*
 * bench_calc.c - the arithmetic of the figures: medians, spreads, percentiles, the names
 * of strategies, issue modes and statuses, and sizes in words.
 *
 * Owns: pure functions over results. Must never: do I/O.
 *
 * Spread: (max - min) / 2 / median over a cell's or job's successful runs, so "812 ±3%"
 * means the runs lay within about 3% of the median either way.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

const double bench_lat_pcts[LAT_PCTS] = { 50, 90, 99, 99.9, 100 };
const char *const bench_lat_names[LAT_PCTS] = { "p50", "p90", "p99", "p99.9", "max" };

const char *bench_strategy_name(unsigned s)
{
	static const char *const n[] = { "host", "refctx", "pin", "chunk", "bounce64" };

	return s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

const char *bench_issue_name(unsigned i)
{
	static const char *const n[] = { "-", "inline", "punt" };

	return i < sizeof(n) / sizeof(n[0]) ? n[i] : "?";
}

const char *bench_status_name(enum bench_status s)
{
	switch (s) {
	case BST_NOTRUN: return "not-run";
	case BST_OK: return "ok";
	case BST_REFUSED: return "refused";
	case BST_FAILED: return "failed";
	case BST_SKIPPED: return "skipped";
	case BST_INTERRUPTED: return "interrupted";
	}
	return "?";
}

const char *bench_size_str(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	unsigned u = 0;

	while (v && !(v % 1024) && u < 4) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%" PRIu64 "%c", v, units[u - 1]);
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

const char *bench_human(double v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "K", "M", "G", "T" };
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? (v < 10 ? "%.2f%s" : v < 100 ? "%.1f%s" : "%.0f%s") : "%.0f%s",
		 v, units[u]);
	return buf;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_pct_sorted(const double *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return 0;
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);	/* nearest rank, ceil */
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static bool median_spread(double *v, unsigned n, double *median, double *spread)
{
	double m;

	if (!n)
		return false;
	m = bench_median(v, n);		/* sorts v */
	*median = m;
	if (spread)
		*spread = m > 0 ? (v[n - 1] - v[0]) / 2 / m : 0;
	return true;
}

double bench_run_mibs(const struct bench_cell_run *r)
{
	return r->seconds > 0 ? (double)r->bytes / 1048576.0 / r->seconds : 0;
}

double bench_run_seconds(const struct bench_cell_run *r) { return r->seconds; }
double bench_run_cpu(const struct bench_cell_run *r) { return r->cpu_s; }
double bench_run_held(const struct bench_cell_run *r) { return (double)r->held_peak; }
double bench_run_inflight(const struct bench_cell_run *r) { return (double)r->inflight_max; }
double bench_run_rss(const struct bench_cell_run *r) { return (double)r->rss_peak; }

bool bench_cell_median(const struct bench_cell *c, double (*get)(const struct bench_cell_run *),
		       double *median, double *spread)
{
	double v[256];
	unsigned n = 0;

	for (unsigned i = 0; i < c->nr_runs && n < 256; i++)
		if (c->runs[i].status == BST_OK)
			v[n++] = get(&c->runs[i]);
	return median_spread(v, n, median, spread);
}

const struct bench_cell *bench_host_cell(const struct bench_result *r, uint64_t size)
{
	for (unsigned i = 0; i < r->nr_cells; i++)
		if (r->cells[i].host && r->cells[i].size == size)
			return &r->cells[i];
	return NULL;
}

bool bench_job_median(const struct bench_job *j, bool refdio, unsigned fig, double *median,
		      double *spread)
{
	double v[256];
	unsigned n = 0;

	for (unsigned i = 0; i < j->nr_runs && n < 256; i++)
		if (j->runs[i].refdio == refdio && j->runs[i].status == BST_OK)
			v[n++] = j->runs[i].value[fig];
	return median_spread(v, n, median, spread);
}

bool bench_job_lat(const struct bench_job *j, bool refdio, unsigned fig, unsigned pct,
		   double *median)
{
	double v[256];
	unsigned n = 0;

	for (unsigned i = 0; i < j->nr_runs && n < 256; i++)
		if (j->runs[i].refdio == refdio && j->runs[i].status == BST_OK)
			v[n++] = j->runs[i].lat_us[fig][pct];
	return median_spread(v, n, median, NULL);
}
