/*
 * bench_plot.c - the charts, drawn by gnuplot (Debian's gnuplot-nox, pngcairo terminal):
 * for each chart a self-contained script DIR/NAME.gp (its data inline, as gnuplot data
 * blocks) that the bench runs to make DIR/NAME.png; a reader can edit and re-run it.
 *
 *   throughput-SIZE  MiB/s against the window (log scale) for each strategy, chunk and
 *                    issue mode at one write size; strategies without a window (pin,
 *                    chunk, bounce64) and the host's O_DIRECT write are flat lines.
 *                    Error bars: the runs' range. (Not drawn for a single window when
 *                    there are several chunk sizes.)
 *   chunks-SIZE      the same against the chunk size, when --chunks has several: a line
 *                    per strategy, window and issue mode; the host and bounce64 flat.
 *   held             the daemon's peak bytes of chunk memory against the write size, per
 *                    strategy (refctx per window), log-log: pin's line rises with the
 *                    write, refctx's stays flat at window x chunk.
 *   latency          everyday jobs: p50 and p99 latency per I/O, baseline and refdio.
 *   ratios           everyday jobs: refdio's median over the baseline's (1 = as fast).
 *
 * Owns: the scripts and the PNGs in DIR. Must never: draw a figure that is not a median
 * of measured runs (cells or jobs without one are left out of the chart).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cmd.h"

static FILE *script_open(const char *dir, const char *name, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s.gp", dir, name);
	f = fopen(path, "w");
	if (!f)
		return NULL;
	fprintf(f, "# %s.gp - drawn by refdio bench; run: gnuplot %s.gp\n", name, name);
	fprintf(f, "set terminal pngcairo size 1100,650 noenhanced font ',10'\n");
	fprintf(f, "set output '%s/%s.png'\n", dir, name);
	fprintf(f, "set grid\nset key outside right top\nset offsets 0, 0, graph 0.06, graph 0.06\n");
	return f;
}

/* A chart with nothing measured to draw: no script, no PNG. */
static int script_drop(FILE *f, const char *path)
{
	fclose(f);
	remove(path);
	return 0;
}

static int script_run(FILE *f, const char *path, const char *dir)
{
	char log[PATH_MAX + 32];
	char *argv[] = { "gnuplot", (char *)path, NULL };
	int ret;

	if (fclose(f))
		return rd_fail("bench", "%s: %s", path, strerror(errno)), -1;
	snprintf(log, sizeof(log), "%s/gnuplot.log", dir);
	ret = bench_run_child(argv, log);
	if (ret)
		return rd_fail("bench", "gnuplot %s failed (exit %d): see %s", path, ret, log), -1;
	return 0;
}

static bool cell_range(const struct bench_cell *c, double *lo, double *hi)
{
	bool any = false;

	for (unsigned i = 0; i < c->nr_runs; i++) {
		double v;

		if (c->runs[i].status != BST_OK)
			continue;
		v = bench_run_mibs(&c->runs[i]);
		if (!any || v < *lo)
			*lo = v;
		if (!any || v > *hi)
			*hi = v;
		any = true;
	}
	return any;
}

/*
 * Throughput against one axis, at one write size: the window (a line per strategy, chunk
 * and issue mode) or the chunk size (a line per strategy, window and issue mode). A cell
 * the axis does not apply to (the host; pin, chunk and bounce64 on the window axis; the
 * host and bounce64 on the chunk axis) is a flat line across the chart.
 */
enum axis { AX_WINDOW, AX_CHUNK };

static bool flat(enum axis ax, const struct bench_cell *c)
{
	return ax == AX_WINDOW ? !c->window :
	       c->host || c->strategy == REFDIO_STRATEGY_BOUNCE64;
}

static double xval(enum axis ax, const struct bench_cell *c)
{
	return ax == AX_WINDOW ? (double)c->window : (double)c->chunk / 1024;
}

/* d belongs to the series that c starts. */
static bool same_series(enum axis ax, const struct bench_cell *c, const struct bench_cell *d)
{
	if (d->size != c->size || d->host != c->host || d->strategy != c->strategy ||
	    d->issue != c->issue)
		return false;
	if (flat(ax, c))
		return d == c;
	return ax == AX_WINDOW ? d->chunk == c->chunk : d->window == c->window;
}

static bool series_start(enum axis ax, const struct bench_opts *o, const struct bench_cell *c)
{
	if (flat(ax, c))
		return true;
	return ax == AX_WINDOW ? c->window == o->windows.v[0] : c->chunk == o->chunks.v[0];
}

static void series_title(enum axis ax, const struct bench_opts *o, const struct bench_cell *c,
			 char *buf, size_t len)
{
	char ch[16], w[16] = "";
	bool issue = o->issues.n > 1;

	if (c->host) {
		snprintf(buf, len, "host O_DIRECT (dd bs=64M)");
		return;
	}
	if (ax == AX_CHUNK && c->window)
		snprintf(w, sizeof(w), " W=%u", c->window);
	if (ax == AX_WINDOW || c->strategy == REFDIO_STRATEGY_BOUNCE64)
		snprintf(w, sizeof(w), " %s", bench_size_str(c->chunk, ch, sizeof(ch)));
	snprintf(buf, len, "%s%s%s%s", bench_strategy_name(c->strategy), w, issue ? " " : "",
		 issue ? bench_issue_name(c->issue) : "");
}

static int plot_axis(const char *dir, const struct bench_opts *o, const struct bench_result *r,
		     uint64_t size, enum axis ax)
{
	const struct bench_list *l = ax == AX_WINDOW ? &o->windows : &o->chunks;
	char name[64], path[PATH_MAX + 64], sz[16];
	double xmin = 0, xmax = 0;
	unsigned nseries = 0;
	FILE *f;

	for (unsigned i = 0; i < l->n; i++) {
		double x = ax == AX_WINDOW ? (double)l->v[i] : (double)l->v[i] / 1024;

		if (!i || x < xmin)
			xmin = x;
		if (!i || x > xmax)
			xmax = x;
	}
	if (xmax <= xmin)
		xmax = xmin * 2;
	snprintf(name, sizeof(name), "%s-%s", ax == AX_WINDOW ? "throughput" : "chunks",
		 bench_size_str(size, sz, sizeof(sz)));
	f = script_open(dir, name, path, sizeof(path));
	if (!f)
		return rd_fail("bench", "%s: %s", path, strerror(errno)), -1;
	fprintf(f, "set title 'Direct writes of %s from the caller: throughput against the %s "
		"(median, bars: range of %u runs)'\n", sz, ax == AX_WINDOW ? "window" : "chunk size",
		o->repeat);
	fprintf(f, "set logscale x 2\nset xlabel '%s'\nset ylabel 'MiB/s'\nset yrange [0:*]\n"
		"set xrange [%g:%g]\n", ax == AX_WINDOW ? "window (refctx chunks in flight)" :
		"chunk size (KiB)", xmin / 1.3, xmax * 1.3);
	/* Data blocks, one per series, then the plot command naming them. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass) {
			if (!nseries)
				return script_drop(f, path);
			fprintf(f, "plot \\\n");
			nseries = 0;
		}
		for (unsigned i = 0; i < r->nr_cells; i++) {
			const struct bench_cell *c = &r->cells[i];
			char title[96];
			bool first = true;

			if (c->size != size || !series_start(ax, o, c))
				continue;
			for (unsigned k = i; k < r->nr_cells; k++) {
				const struct bench_cell *d = &r->cells[k];
				double m, lo = 0, hi = 0;

				if (!same_series(ax, c, d) ||
				    !bench_cell_median(d, bench_run_mibs, &m, NULL) ||
				    !cell_range(d, &lo, &hi))
					continue;
				if (pass) {
					first = false;
					break;
				}
				if (first)
					fprintf(f, "$s%u << EOD\n", nseries);
				first = false;
				if (!flat(ax, d)) {
					fprintf(f, "%g %g %g %g\n", xval(ax, d), m, lo, hi);
				} else {
					fprintf(f, "%g %g %g %g\n", xmin / 1.3, m, lo, hi);
					fprintf(f, "%g %g %g %g\n", xmax * 1.3, m, lo, hi);
				}
			}
			if (first)
				continue;
			if (!pass) {
				fprintf(f, "EOD\n");
			} else {
				series_title(ax, o, c, title, sizeof(title));
				if (!flat(ax, c))
					fprintf(f, "%s$s%u using 1:2:3:4 with yerrorlines lw 2 "
						"title '%s'", nseries ? ", \\\n  " : "  ", nseries,
						title);
				else
					fprintf(f, "%s$s%u using 1:2 with lines lw 2 dt %d title "
						"'%s'", nseries ? ", \\\n  " : "  ", nseries,
						c->host ? 2 : 4, title);
			}
			nseries++;
		}
	}
	fprintf(f, "\n");
	return script_run(f, path, dir);
}

static int plot_held(const char *dir, const struct bench_opts *o, const struct bench_result *r)
{
	char path[PATH_MAX + 64], ch[16];
	unsigned nseries = 0, k;
	FILE *f = script_open(dir, "held", path, sizeof(path));

	if (!f)
		return rd_fail("bench", "%s: %s", path, strerror(errno)), -1;
	fprintf(f, "set title 'Daemon memory held by chunks at peak against the write size "
		"(chunk %s, issue %s; bounce64: 256K)'\n",
		bench_size_str(o->chunks.v[0], ch, sizeof(ch)),
		bench_issue_name((unsigned)o->issues.v[0]));
	fprintf(f, "set logscale xy 2\nset xlabel 'write size (MiB)'\nset ylabel 'bytes held at "
		"peak (MiB)'\nset format y '%%g'\nset format x '%%g'\n");
	/* Series: for each strategy (refctx: each window), the first chunk and issue. */
	for (unsigned s = 0; s < o->strategies.n; s++) {
		unsigned st = (unsigned)o->strategies.v[s];
		unsigned nw = st == REFDIO_STRATEGY_REFCTX ? o->windows.n : 1;

		for (unsigned w = 0; w < nw; w++) {
			unsigned win = st == REFDIO_STRATEGY_REFCTX ? (unsigned)o->windows.v[w] : 0;
			uint64_t chunk = st == REFDIO_STRATEGY_BOUNCE64 ? BENCH_BOUNCE64_CHUNK :
					 o->chunks.v[0];
			bool first = true;

			for (k = 0; k < r->nr_cells; k++) {
				const struct bench_cell *c = &r->cells[k];
				double h;

				if (c->host || c->strategy != st || c->window != win ||
				    c->chunk != chunk || c->issue != o->issues.v[0] ||
				    !bench_cell_median(c, bench_run_held, &h, NULL) || h <= 0)
					continue;
				if (first)
					fprintf(f, "$h%u << EOD\n", nseries);
				first = false;
				fprintf(f, "%g %g\n", (double)c->size / 1048576.0, h / 1048576.0);
			}
			if (first)
				continue;
			fprintf(f, "EOD\n");
			if (win)
				fprintf(f, "t%u = '%s W=%u'\n", nseries, bench_strategy_name(st), win);
			else
				fprintf(f, "t%u = '%s'\n", nseries, bench_strategy_name(st));
			nseries++;
		}
	}
	if (!nseries)
		return script_drop(f, path);
	fprintf(f, "plot \\\n");
	for (k = 0; k < nseries; k++)
		fprintf(f, "%s$h%u using 1:2 with linespoints lw 2 title t%u", k ? ", \\\n  " : "  ",
			k, k);
	fprintf(f, "\n");
	return script_run(f, path, dir);
}

static int plot_jobs(const char *dir, const struct bench_result *r)
{
	char path[PATH_MAX + 64];
	unsigned rows = 0;
	FILE *f = script_open(dir, "latency", path, sizeof(path));

	if (!f)
		return rd_fail("bench", "%s: %s", path, strerror(errno)), -1;
	fprintf(f, "set title 'Everyday jobs: latency per operation (median of runs)'\n"
		"set style data histogram\nset style histogram cluster gap 1\n"
		"set style fill solid 0.8 border -1\nset logscale y\nset ylabel 'microseconds'\n"
		"set xtics rotate by -35\nset bmargin 9\n$lat << EOD\n");
	for (unsigned k = 0; k < r->nr_jobs; k++) {
		const struct bench_job *j = &r->jobs[k];

		for (unsigned g = 0; g < j->nr_figs; g++) {
			double v[4];

			if (!bench_job_lat(j, false, g, 0, &v[0]) ||
			    !bench_job_lat(j, true, g, 0, &v[1]) ||
			    !bench_job_lat(j, false, g, 2, &v[2]) ||
			    !bench_job_lat(j, true, g, 2, &v[3]))
				continue;
			fprintf(f, "\"%s%s%s\" %g %g %g %g\n", j->name, j->nr_figs > 1 ? " " : "",
				j->nr_figs > 1 ? j->fig[g] : "", v[0], v[1], v[2], v[3]);
			rows++;
		}
	}
	fprintf(f, "EOD\nplot $lat using 2:xtic(1) title 'baseline p50', '' using 3 title "
		"'refdio p50', '' using 4 title 'baseline p99', '' using 5 title 'refdio p99'\n");
	if (!rows)
		return script_drop(f, path);
	if (script_run(f, path, dir))
		return -1;

	f = script_open(dir, "ratios", path, sizeof(path));
	if (!f)
		return rd_fail("bench", "%s: %s", path, strerror(errno)), -1;
	fprintf(f, "set title 'Everyday jobs: refdio / baseline (median of runs; 1 = as fast, "
		"above = refdio faster)'\nset style data histogram\n"
		"set style fill solid 0.8 border -1\nset ylabel 'ratio'\nset yrange [0:*]\n"
		"set xtics rotate by -35\nset bmargin 9\nset rmargin 12\nset key off\n$r << EOD\n");
	rows = 0;
	for (unsigned k = 0; k < r->nr_jobs; k++) {
		const struct bench_job *j = &r->jobs[k];

		for (unsigned g = 0; g < j->nr_figs; g++) {
			double bm, rm;

			if (!bench_job_median(j, false, g, &bm, NULL) ||
			    !bench_job_median(j, true, g, &rm, NULL) || bm <= 0)
				continue;
			fprintf(f, "\"%s%s%s\" %g\n", j->name, j->nr_figs > 1 ? " " : "",
				j->nr_figs > 1 ? j->fig[g] : "", rm / bm);
			rows++;
		}
	}
	fprintf(f, "EOD\nset arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2\n"
		"plot $r using 2:xtic(1) lc rgb '#4070a0', '' using 0:2:(sprintf('%%.2f', $2)) "
		"with labels offset 0,0.7 notitle\n");
	return script_run(f, path, dir);
}

int bench_plot(const char *dir, const struct bench_opts *o, const struct bench_result *r)
{
	int ret = 0;

	if (mkdir(dir, 0755) && errno != EEXIST)
		return rd_fail("bench", "--plot %s: %s", dir, strerror(errno)), -1;
	for (unsigned z = 0; z < o->sizes.n && r->nr_cells; z++) {
		if (o->windows.n > 1 || o->chunks.n == 1)
			ret |= plot_axis(dir, o, r, o->sizes.v[z], AX_WINDOW);
		if (o->chunks.n > 1)
			ret |= plot_axis(dir, o, r, o->sizes.v[z], AX_CHUNK);
	}
	if (r->nr_cells)
		ret |= plot_held(dir, o, r);
	if (r->nr_jobs)
		ret |= plot_jobs(dir, r);
	if (!ret) {	/* gnuplot's output is kept only when something went wrong */
		char log[PATH_MAX + 32];

		snprintf(log, sizeof(log), "%s/gnuplot.log", dir);
		unlink(log);
	}
	return ret ? -1 : 0;
}
