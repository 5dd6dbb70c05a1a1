/*
 * bench_report.c - the results as a table on the terminal and as CSV (one row per matrix
 * cell, one per everyday-job figure).
 *
 * Owns: the text layout of the figures. Every figure is a median over a cell's or job's
 * successful runs with its spread ((max - min) / 2 / median); "x host" and "ratio" are
 * refdio's median over the baseline's median from the same run. Must never: compute a
 * figure another way than bench_calc.c does (the JSON and the charts use the same).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

struct cell_figs {
	bool	ok;
	double	mibs, mibs_sp, secs, cpu, held, whp, infl, rss, ratio;
};

static void cell_figs(const struct bench_result *r, const struct bench_cell *c,
		      struct cell_figs *f)
{
	const struct bench_cell *h = c->host ? NULL : bench_host_cell(r, c->size);
	double hm, whp_v[256];
	unsigned n = 0;

	memset(f, 0, sizeof(*f));
	f->cpu = f->ratio = -1;
	f->ok = bench_cell_median(c, bench_run_mibs, &f->mibs, &f->mibs_sp);
	if (!f->ok)
		return;
	bench_cell_median(c, bench_run_seconds, &f->secs, NULL);
	if (!c->host) {
		bench_cell_median(c, bench_run_cpu, &f->cpu, NULL);
		bench_cell_median(c, bench_run_held, &f->held, NULL);
		bench_cell_median(c, bench_run_inflight, &f->infl, NULL);
		bench_cell_median(c, bench_run_rss, &f->rss, NULL);
		for (unsigned i = 0; i < c->nr_runs && n < 256; i++)
			if (c->runs[i].status == BST_OK)
				whp_v[n++] = (double)c->runs[i].write_held_peak;
		f->whp = n ? bench_median(whp_v, n) : 0;
	}
	if (h && bench_cell_median(h, bench_run_mibs, &hm, NULL) && hm > 0)
		f->ratio = f->mibs / hm;
}

static const char *fmt_val(double v, double sp, char *buf, size_t len)
{
	if (v >= 100)
		snprintf(buf, len, "%.0f ±%.0f%%", v, sp * 100);
	else
		snprintf(buf, len, "%.3g ±%.0f%%", v, sp * 100);
	return buf;
}

static void matrix_table(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
	unsigned notes = 0;

	fprintf(f, "\nStrategy matrix: one %sdirect-write ioctl per run from the bench's memory%s; "
		"medians of %u run%s (± half the range).\n", o->async ? "asynchronous " : "",
		o->dsync ? " (dsync)" : "", o->repeat, o->repeat > 1 ? "s" : "");
	fprintf(f, "%-6s %-8s %6s %5s %-6s %12s %6s %8s %7s %7s %8s %8s %5s %8s  %s\n",
		"size", "strategy", "window", "chunk", "issue", "MiB/s", "x host", "latency",
		"d.CPU", "CPU/GiB", "held pk", "1-write", "infl", "RSS pk", "status");
	for (unsigned i = 0; i < r->nr_cells; i++) {
		const struct bench_cell *c = &r->cells[i];
		struct cell_figs fg;
		char sz[16], w[16], ch[16], m[32], x[16], lat[16], cpu[16], cpg[16], hp[16],
		     wp[16], inf[16], rss[16], st[64];

		cell_figs(r, c, &fg);
		bench_size_str(c->size, sz, sizeof(sz));
		snprintf(w, sizeof(w), c->window ? "%u" : "-", c->window);
		if (c->chunk)
			bench_size_str(c->chunk, ch, sizeof(ch));
		else
			snprintf(ch, sizeof(ch), "-");
		if (c->status == BST_OK || c->status == BST_INTERRUPTED)
			snprintf(st, sizeof(st), "%s", bench_status_name(c->status));
		else
			snprintf(st, sizeof(st), "%s [%u]", bench_status_name(c->status), ++notes);
		if (!fg.ok) {
			fprintf(f, "%-6s %-8s %6s %5s %-6s %12s %6s %8s %7s %7s %8s %8s %5s %8s  %s\n",
				sz, bench_strategy_name(c->strategy), w, ch,
				bench_issue_name(c->issue), "-", "-", "-", "-", "-", "-", "-", "-",
				"-", st);
			continue;
		}
		fmt_val(fg.mibs, fg.mibs_sp, m, sizeof(m));
		snprintf(x, sizeof(x), fg.ratio >= 0 ? "%.2f" : "-", fg.ratio);
		snprintf(lat, sizeof(lat), fg.secs >= 1 ? "%.2fs" : "%.0fms",
			 fg.secs >= 1 ? fg.secs : fg.secs * 1e3);
		snprintf(cpu, sizeof(cpu), "-");
		snprintf(cpg, sizeof(cpg), "-");
		snprintf(hp, sizeof(hp), "-");
		snprintf(wp, sizeof(wp), "-");
		snprintf(inf, sizeof(inf), "-");
		snprintf(rss, sizeof(rss), "-");
		if (!c->host && fg.cpu >= 0) {
			snprintf(cpu, sizeof(cpu), "%.2fs", fg.cpu);
			snprintf(cpg, sizeof(cpg), "%.2fs", fg.cpu / ((double)c->size / 1073741824.0));
		}
		if (!c->host) {
			bench_human(fg.held, hp, sizeof(hp));
			bench_human(fg.whp, wp, sizeof(wp));
			snprintf(inf, sizeof(inf), "%.0f", fg.infl);
			if (fg.rss > 0)
				bench_human(fg.rss, rss, sizeof(rss));
			else
				snprintf(rss, sizeof(rss), "-");
		}
		fprintf(f, "%-6s %-8s %6s %5s %-6s %12s %6s %8s %7s %7s %8s %8s %5s %8s  %s\n", sz,
			bench_strategy_name(c->strategy), w, ch, bench_issue_name(c->issue), m, x,
			lat, cpu, cpg, hp, wp, inf, rss, st);
	}
	notes = 0;
	for (unsigned i = 0; i < r->nr_cells; i++) {
		const struct bench_cell *c = &r->cells[i];
		char label[128];

		if (c->status == BST_OK || c->status == BST_INTERRUPTED)
			continue;
		bench_cell_label(c, label, sizeof(label));
		fprintf(f, "  [%u] %s: %s\n", ++notes, label, c->reason[0] ? c->reason :
			bench_status_name(c->status));
	}
}

static void jobs_table(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
	char fs[16];

	fprintf(f, "\nEveryday jobs (io_uring, %.3g s per run on %s files; metadata: %u files), "
		"baseline vs refdio interleaved;\nmedians of %u run%s (± half the range); ratio = "
		"refdio / baseline (above 1: refdio faster); latency in microseconds.\n",
		o->runtime, bench_size_str(o->file_size, fs, sizeof(fs)), o->files, o->repeat,
		o->repeat > 1 ? "s" : "");
	fprintf(f, "%-24s %-6s %-5s %13s %13s %6s %15s %15s %8s  %s\n", "job", "figure", "unit",
		"baseline", "refdio", "ratio", "p50 base/refd", "p99 base/refd", "d.CPU", "status");
	for (unsigned k = 0; k < r->nr_jobs; k++) {
		const struct bench_job *j = &r->jobs[k];

		for (unsigned g = 0; g < j->nr_figs; g++) {
			double bm = 0, bs = 0, rm = 0, rs = 0, b50 = 0, r50 = 0, b99 = 0, r99 = 0;
			bool hb = bench_job_median(j, false, g, &bm, &bs);
			bool hr = bench_job_median(j, true, g, &rm, &rs);
			char b[32] = "-", rr[32] = "-", ra[16] = "-", p50[32] = "-", p99[32] = "-",
			     cpu[16] = "-";
			double cv[256];
			unsigned n = 0;

			if (hb)
				fmt_val(bm, bs, b, sizeof(b));
			if (hr)
				fmt_val(rm, rs, rr, sizeof(rr));
			if (hb && hr && bm > 0)
				snprintf(ra, sizeof(ra), "%.2f", rm / bm);
			if (hb && hr && bench_job_lat(j, false, g, 0, &b50) &&
			    bench_job_lat(j, true, g, 0, &r50))
				snprintf(p50, sizeof(p50), "%.0f/%.0f", b50, r50);
			if (hb && hr && bench_job_lat(j, false, g, 2, &b99) &&
			    bench_job_lat(j, true, g, 2, &r99))
				snprintf(p99, sizeof(p99), "%.0f/%.0f", b99, r99);
			for (unsigned i = 0; i < j->nr_runs && n < 256 && !g; i++)
				if (j->runs[i].refdio && j->runs[i].status == BST_OK &&
				    j->runs[i].cpu_s >= 0)
					cv[n++] = j->runs[i].cpu_s;
			if (n)
				snprintf(cpu, sizeof(cpu), "%.2fs", bench_median(cv, n));
			fprintf(f, "%-24s %-6s %-5s %13s %13s %6s %15s %15s %8s  %s%s%s\n",
				g ? "" : j->name, j->fig[g], j->unit, b, rr, ra, p50, p99, cpu,
				g ? "" : bench_status_name(j->status),
				!g && j->reason[0] ? ": " : "", !g ? j->reason : "");
		}
	}
}

void bench_report_table(FILE *f, const struct bench_opts *o, const struct bench_env *e,
			const struct bench_result *r)
{
	if (r->nr_cells)
		matrix_table(f, o, r);
	if (r->nr_jobs)
		jobs_table(f, o, r);
	fprintf(f, "\n");
	if (e->image[0])
		fprintf(f, "image %s%s: fsck %s\n", e->image, e->image_removed ?
			" (scratch, removed)" : "", e->fsck_status < 0 ?
			(e->fsck_note[0] ? e->fsck_note : "not run") :
			e->fsck_status ? "NOT CLEAN" : "clean");
	if (e->daemon_status > 0)
		fprintf(f, "the daemon exited with status %d\n", e->daemon_status);
	if (r->nr_cells && !e->clear_refs_ok)
		fprintf(f, "daemon peak RSS not measured: /proc/PID/clear_refs could not reset "
			"VmHWM (or the daemon is unknown)\n");
	fprintf(f, "load average %.2f at the start, %.2f at the end (%ld CPUs): %s\n",
		r->load_start[0], r->load_end[0], sysconf(_SC_NPROCESSORS_ONLN),
		r->load_start[0] >= 0.5 ?
		"other work was running: the figures are from a loaded machine" :
		"the machine was idle at the start");
	if (r->interrupted)
		fprintf(f, "INTERRUPTED: the figures cover the runs finished before the signal\n");
}

/* ---- CSV ----------------------------------------------------------------------------- */

static void csv_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void csv_num(FILE *f, bool have, double v)
{
	if (have && isfinite(v))
		fprintf(f, ",%.6g", v);
	else
		fputs(",", f);
}

int bench_report_csv(const char *path, const struct bench_result *r)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs("kind,name,strategy,window,chunk,issue,size,status,reason,runs,mib_s,mib_s_spread,"
	      "host_ratio,seconds,daemon_cpu_s,daemon_cpu_s_per_gib,held_peak,write_held_peak,"
	      "inflight_max,rss_peak,figure,unit,baseline,baseline_spread,refdio,refdio_spread,"
	      "ratio,baseline_p50_us,baseline_p99_us,refdio_p50_us,refdio_p99_us\n", f);
	for (unsigned i = 0; i < r->nr_cells; i++) {
		const struct bench_cell *c = &r->cells[i];
		struct cell_figs fg;
		char label[128];
		unsigned ok = 0;

		cell_figs(r, c, &fg);
		for (unsigned k = 0; k < c->nr_runs; k++)
			ok += c->runs[k].status == BST_OK;
		bench_cell_label(c, label, sizeof(label));
		fputs("matrix,", f);
		csv_str(f, label);
		fprintf(f, ",%s,%u,%" PRIu64 ",%s,%" PRIu64 ",%s,", bench_strategy_name(c->strategy),
			c->window, c->chunk, bench_issue_name(c->issue), c->size,
			bench_status_name(c->status));
		csv_str(f, c->reason);
		fprintf(f, ",%u", ok);
		csv_num(f, fg.ok, fg.mibs);
		csv_num(f, fg.ok, fg.mibs_sp);
		csv_num(f, fg.ok && fg.ratio >= 0, fg.ratio);
		csv_num(f, fg.ok, fg.secs);
		csv_num(f, fg.ok && !c->host && fg.cpu >= 0, fg.cpu);
		csv_num(f, fg.ok && !c->host && fg.cpu >= 0,
			fg.cpu / ((double)c->size / 1073741824.0));
		csv_num(f, fg.ok && !c->host, fg.held);
		csv_num(f, fg.ok && !c->host, fg.whp);
		csv_num(f, fg.ok && !c->host, fg.infl);
		csv_num(f, fg.ok && !c->host && fg.rss > 0, fg.rss);
		fputs(",,,,,,,,,,,\n", f);
	}
	for (unsigned k = 0; k < r->nr_jobs; k++) {
		const struct bench_job *j = &r->jobs[k];

		for (unsigned g = 0; g < j->nr_figs; g++) {
			double bm = 0, bs = 0, rm = 0, rs = 0, l[4] = { 0 };
			bool hb = bench_job_median(j, false, g, &bm, &bs);
			bool hr = bench_job_median(j, true, g, &rm, &rs);
			unsigned ok = 0;

			for (unsigned i = 0; i < j->nr_runs; i++)
				ok += j->runs[i].status == BST_OK;
			fprintf(f, "job,%s,,,,,,%s,", j->name, bench_status_name(j->status));
			csv_str(f, j->reason);
			fprintf(f, ",%u,,,,,,,,,,", ok);
			fprintf(f, ",%s,%s", j->fig[g], j->unit);
			csv_num(f, hb, bm);
			csv_num(f, hb, bs);
			csv_num(f, hr, rm);
			csv_num(f, hr, rs);
			csv_num(f, hb && hr && bm > 0, hb && bm > 0 ? rm / bm : 0);
			csv_num(f, hb && bench_job_lat(j, false, g, 0, &l[0]), l[0]);
			csv_num(f, hb && bench_job_lat(j, false, g, 2, &l[1]), l[1]);
			csv_num(f, hr && bench_job_lat(j, true, g, 0, &l[2]), l[2]);
			csv_num(f, hr && bench_job_lat(j, true, g, 2, &l[3]), l[3]);
			fputc('\n', f);
		}
	}
	return fclose(f) ? -1 : 0;
}
