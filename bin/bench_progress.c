/*
 * bench_progress.c - the progress line on stderr: what runs now, how far the bench is
 * (items and estimated share of the time), the elapsed time and an ETA.
 *
 * Each item has a cost in nominal seconds (a matrix write at BENCH_NOMINAL_RATE, a job
 * at its runtime); the ETA scales the nominal cost left by how fast nominal seconds have
 * really passed so far, so it corrects itself as the run goes. On a terminal the line is
 * rewritten in place; otherwise each item gets one plain line.
 *
 * Owns: stderr's current line. Must never: write to stdout (the table goes there).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define BENCH_NOMINAL_RATE	(400.0 * 1048576.0)	/* bytes/s, a first guess */

static struct {
	double		t0, total, done, cost;
	unsigned	items, item;
	bool		tty, shown;
	bool		quiet;
} pg;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *dur(double s, char *buf, size_t len)
{
	long t = (long)(s + 0.5);

	if (t >= 3600)
		snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
	else if (t >= 60)
		snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
	else
		snprintf(buf, len, "%lds", t);
	return buf;
}

void bench_progress_init(double total_cost, unsigned total_items)
{
	memset(&pg, 0, sizeof(pg));
	pg.t0 = now_s();
	pg.total = total_cost;
	pg.items = total_items;
	pg.tty = isatty(STDERR_FILENO);
}

double bench_progress_rate_get(void)
{
	return BENCH_NOMINAL_RATE;
}

void bench_progress_begin(const char *what, double cost)
{
	double el = now_s() - pg.t0, pct = pg.total > 0 ? 100 * pg.done / pg.total : 0;
	char e[48], eta[48] = "?";

	if (pct > 100)
		pct = 100;
	if (pg.done > 0 && pg.total > pg.done)
		dur(el / pg.done * (pg.total - pg.done), eta, sizeof(eta));
	else if (pg.done > 0)
		snprintf(eta, sizeof(eta), "0s");
	pg.item++;
	pg.cost = cost;
	if (pg.tty) {
		char line[512];
		int n = snprintf(line, sizeof(line), "[%u/%u %3.0f%%] %s  (elapsed %s, ETA %s)",
				 pg.item, pg.items, pct, what, dur(el, e, sizeof(e)), eta);

		if (n > 160)	/* one terminal line */
			memcpy(line + 156, "...", 4);
		fprintf(stderr, "\r\033[K%s", line);
		pg.shown = true;
	} else {
		fprintf(stderr, "[%u/%u %3.0f%%] %s (elapsed %s, ETA %s)\n", pg.item, pg.items,
			pct, what, dur(el, e, sizeof(e)), eta);
	}
	fflush(stderr);
}

void bench_progress_end(void)
{
	pg.done += pg.cost;
	pg.cost = 0;
}

void bench_progress_clear(void)
{
	if (pg.tty && pg.shown) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
		pg.shown = false;
	}
}
