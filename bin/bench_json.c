/*
 * bench_json.c - the results as one JSON document, schema "refdio-bench" version
 * BENCH_SCHEMA_VERSION, described by bench/bench-schema.json (JSON Schema 2020-12): the
 * machine, the kernel, the options, the setup, every run of every cell and job, and the
 * medians.
 *
 * Owns: the JSON layout. A change of a field's meaning or a removal bumps
 * BENCH_SCHEMA_VERSION and the schema file together; a new optional field does not.
 * Unknown figures are null, never 0. Must never: write a figure the table does not show
 * the same way (medians come from bench_calc.c).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "bench.h"
#include "rd_config.h"

static json_object *num(double v)
{
	return isfinite(v) ? json_object_new_double(v) : NULL;
}

static json_object *u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

static json_object *str_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

static void add(json_object *o, const char *k, json_object *v)
{
	json_object_object_add(o, k, v);
}

static json_object *list(const struct bench_list *l, const char *(*name)(unsigned))
{
	json_object *a = json_object_new_array();

	for (unsigned i = 0; i < l->n; i++)
		json_object_array_add(a, name ? json_object_new_string(name((unsigned)l->v[i])) :
				      u64(l->v[i]));
	return a;
}

static json_object *machine(const struct bench_result *r)
{
	struct bench_machine m;
	json_object *o = json_object_new_object(), *ls = json_object_new_array(),
		    *le = json_object_new_array();

	bench_proc_machine(&m);
	add(o, "hostname", json_object_new_string(m.hostname));
	add(o, "kernel", json_object_new_string(m.kernel));
	add(o, "arch", json_object_new_string(m.arch));
	add(o, "cpu", json_object_new_string(m.cpu));
	add(o, "cpus", json_object_new_int64(m.cpus));
	add(o, "mem_bytes", u64(m.mem_bytes));
	for (int i = 0; i < 3; i++) {
		json_object_array_add(ls, num(r->load_start[i]));
		json_object_array_add(le, num(r->load_end[i]));
	}
	add(o, "load_start", ls);
	add(o, "load_end", le);
	return o;
}

static json_object *options(const struct bench_opts *o)
{
	json_object *j = json_object_new_object();

	add(j, "strategies", list(&o->strategies, bench_strategy_name));
	add(j, "windows", list(&o->windows, NULL));
	add(j, "chunks", list(&o->chunks, NULL));
	add(j, "issues", list(&o->issues, bench_issue_name));
	add(j, "sizes", list(&o->sizes, NULL));
	add(j, "matrix", json_object_new_boolean(!o->no_matrix));
	add(j, "async", json_object_new_boolean(o->async));
	add(j, "dsync", json_object_new_boolean(o->dsync));
	add(j, "verify", json_object_new_boolean(!o->no_verify));
	add(j, "repeat", u64(o->repeat));
	add(j, "runtime_s", num(o->runtime));
	add(j, "file_size", u64(o->file_size));
	add(j, "files", u64(o->files));
	add(j, "jobs", str_or_null(o->jobs));
	add(j, "max_held", o->max_held ? u64(o->max_held) : NULL);
	add(j, "mount_opts", str_or_null(o->mount_opts));
	return j;
}

static json_object *setup(const struct bench_env *e)
{
	json_object *j = json_object_new_object(), *f = json_object_new_object();

	add(j, "image", str_or_null(e->image));
	add(j, "image_size", e->image_size ? u64(e->image_size) : NULL);
	add(j, "mount", json_object_new_string(e->mnt));
	add(j, "mount_opts", str_or_null(e->mount_opts));
	add(j, "baseline", json_object_new_string(e->base));
	add(j, "baseline_fs", json_object_new_string(e->base_fs));
	add(j, "rss_peak_measured", json_object_new_boolean(e->clear_refs_ok));
	add(j, "daemon_exit", e->daemon_status >= 0 ?
	    json_object_new_int(e->daemon_status) : NULL);
	add(f, "status", e->fsck_status >= 0 ? json_object_new_int(e->fsck_status) : NULL);
	add(f, "result", json_object_new_string(e->fsck_status == 0 ? "clean" :
		e->fsck_status > 0 ? "not clean" : e->fsck_note[0] ? e->fsck_note : "not run"));
	add(j, "fsck", f);
	return j;
}

static json_object *opt_u64(bool have, uint64_t v)
{
	return have ? u64(v) : NULL;
}

static json_object *cell_json(const struct bench_result *r, const struct bench_cell *c)
{
	json_object *o = json_object_new_object(), *runs = json_object_new_array();
	const struct bench_cell *h = c->host ? NULL : bench_host_cell(r, c->size);
	double m, sp, v, hm;

	add(o, "host", json_object_new_boolean(c->host));
	add(o, "strategy", json_object_new_string(bench_strategy_name(c->strategy)));
	add(o, "window", c->window ? u64(c->window) : NULL);
	add(o, "chunk", c->chunk ? u64(c->chunk) : NULL);
	add(o, "issue", c->issue ? json_object_new_string(bench_issue_name(c->issue)) : NULL);
	add(o, "size", u64(c->size));
	add(o, "status", json_object_new_string(bench_status_name(c->status)));
	add(o, "reason", str_or_null(c->reason));
	add(o, "errno", c->err ? json_object_new_int(c->err) : NULL);
	for (unsigned i = 0; i < c->nr_runs; i++) {
		const struct bench_cell_run *x = &c->runs[i];
		json_object *rj = json_object_new_object();
		bool d = !c->host && x->status != BST_NOTRUN;

		if (x->status == BST_NOTRUN)
			continue;
		add(rj, "repeat", u64(i));
		add(rj, "status", json_object_new_string(bench_status_name(x->status)));
		add(rj, "errno", x->err ? json_object_new_int(x->err) : NULL);
		add(rj, "bytes", u64(x->bytes));
		add(rj, "seconds", num(x->seconds));
		add(rj, "mib_s", num(bench_run_mibs(x)));
		add(rj, "daemon_seconds", d ? num(x->daemon_s) : NULL);
		add(rj, "daemon_cpu_s", d && x->cpu_s >= 0 ? num(x->cpu_s) : NULL);
		add(rj, "held_peak", opt_u64(d, x->held_peak));
		add(rj, "write_held_peak", opt_u64(d, x->write_held_peak));
		add(rj, "inflight_max", opt_u64(d, x->inflight_max));
		add(rj, "rss_peak", opt_u64(d && x->rss_peak, x->rss_peak));
		add(rj, "rss_daemon", opt_u64(d && x->rss_stats, x->rss_stats));
		add(rj, "verified_bytes", u64(x->verify_bytes));
		add(rj, "verify_mismatches", u64(x->verify_bad));
		json_object_array_add(runs, rj);
	}
	add(o, "runs", runs);
	if (bench_cell_median(c, bench_run_mibs, &m, &sp)) {
		json_object *md = json_object_new_object();

		add(md, "mib_s", num(m));
		add(md, "mib_s_spread", num(sp));
		bench_cell_median(c, bench_run_seconds, &v, NULL);
		add(md, "seconds", num(v));
		add(md, "host_ratio", h && bench_cell_median(h, bench_run_mibs, &hm, NULL) && hm > 0 ?
		    num(m / hm) : NULL);
		if (!c->host) {
			bench_cell_median(c, bench_run_cpu, &v, NULL);
			add(md, "daemon_cpu_s", v >= 0 ? num(v) : NULL);
			bench_cell_median(c, bench_run_held, &v, NULL);
			add(md, "held_peak", num(v));
			bench_cell_median(c, bench_run_inflight, &v, NULL);
			add(md, "inflight_max", num(v));
			bench_cell_median(c, bench_run_rss, &v, NULL);
			add(md, "rss_peak", v > 0 ? num(v) : NULL);
		}
		add(o, "median", md);
	} else {
		add(o, "median", NULL);
	}
	return o;
}

static json_object *lat_json(const double *lat)
{
	json_object *o = json_object_new_object();

	for (unsigned p = 0; p < LAT_PCTS; p++)
		add(o, bench_lat_names[p], num(lat[p]));
	return o;
}

static json_object *job_lat_median(const struct bench_job *j, bool refdio, unsigned g)
{
	json_object *o = json_object_new_object();

	for (unsigned p = 0; p < LAT_PCTS; p++) {
		double v;

		add(o, bench_lat_names[p], bench_job_lat(j, refdio, g, p, &v) ? num(v) : NULL);
	}
	return o;
}

static json_object *job_json(const struct bench_job *j)
{
	json_object *o = json_object_new_object(), *runs = json_object_new_array();
	json_object *figs = json_object_new_array(), *md = json_object_new_object();
	static const char *const kinds[] = { "seq-write", "seq-read", "rand-write", "rand-read",
					     "metadata" };

	add(o, "name", json_object_new_string(j->name));
	add(o, "kind", json_object_new_string(kinds[j->kind]));
	add(o, "block_size", j->bs ? u64(j->bs) : NULL);
	add(o, "queue_depth", u64(j->qd));
	add(o, "direct", json_object_new_boolean(j->direct));
	add(o, "unit", json_object_new_string(j->unit));
	for (unsigned g = 0; g < j->nr_figs; g++)
		json_object_array_add(figs, json_object_new_string(j->fig[g]));
	add(o, "figures", figs);
	add(o, "status", json_object_new_string(bench_status_name(j->status)));
	add(o, "reason", str_or_null(j->reason));
	add(o, "errno", j->err ? json_object_new_int(j->err) : NULL);
	for (unsigned i = 0; i < j->nr_runs; i++) {
		const struct bench_job_run *x = &j->runs[i];
		json_object *rj = json_object_new_object(), *fo = json_object_new_object();

		add(rj, "target", json_object_new_string(x->refdio ? "refdio" : "baseline"));
		add(rj, "repeat", u64(x->repeat));
		add(rj, "status", json_object_new_string(bench_status_name(x->status)));
		add(rj, "errno", x->err ? json_object_new_int(x->err) : NULL);
		add(rj, "daemon_cpu_s", x->cpu_s >= 0 ? num(x->cpu_s) : NULL);
		for (unsigned g = 0; g < j->nr_figs; g++) {
			json_object *f = json_object_new_object();

			add(f, "value", num(x->value[g]));
			add(f, "ops", u64(x->ops[g]));
			add(f, "seconds", num(x->seconds[g]));
			add(f, "latency_us", lat_json(x->lat_us[g]));
			add(fo, j->fig[g], f);
		}
		add(rj, "figures", fo);
		json_object_array_add(runs, rj);
	}
	add(o, "runs", runs);
	for (unsigned g = 0; g < j->nr_figs; g++) {
		json_object *f = json_object_new_object(), *lat = json_object_new_object();
		double bm, bs, rm, rs;
		bool hb = bench_job_median(j, false, g, &bm, &bs);
		bool hr = bench_job_median(j, true, g, &rm, &rs);

		add(f, "baseline", hb ? num(bm) : NULL);
		add(f, "baseline_spread", hb ? num(bs) : NULL);
		add(f, "refdio", hr ? num(rm) : NULL);
		add(f, "refdio_spread", hr ? num(rs) : NULL);
		add(f, "ratio", hb && hr && bm > 0 ? num(rm / bm) : NULL);
		add(lat, "baseline", job_lat_median(j, false, g));
		add(lat, "refdio", job_lat_median(j, true, g));
		add(f, "latency_us", lat);
		add(md, j->fig[g], f);
	}
	add(o, "median", md);
	return o;
}

int bench_report_json(const char *path, const struct bench_opts *o, const struct bench_env *e,
		      const struct bench_result *r)
{
	json_object *root = json_object_new_object(), *cmd = json_object_new_array();
	json_object *cells = json_object_new_array(), *jobs = json_object_new_array();
	int ret;

	add(root, "schema", json_object_new_string("refdio-bench"));
	add(root, "version", json_object_new_int(BENCH_SCHEMA_VERSION));
	add(root, "refdio_version", json_object_new_string(RD_VERSION));
	add(root, "started", json_object_new_string(r->started));
	add(root, "duration_s", num(r->duration_s));
	add(root, "interrupted", json_object_new_boolean(r->interrupted));
	for (int i = 0; i < o->argc; i++)
		json_object_array_add(cmd, json_object_new_string(o->argv[i]));
	add(root, "command", cmd);
	add(root, "machine", machine(r));
	add(root, "options", options(o));
	add(root, "setup", setup(e));
	for (unsigned i = 0; i < r->nr_cells; i++)
		json_object_array_add(cells, cell_json(r, &r->cells[i]));
	add(root, "matrix", cells);
	for (unsigned k = 0; k < r->nr_jobs; k++)
		json_object_array_add(jobs, job_json(&r->jobs[k]));
	add(root, "jobs", jobs);
	add(root, "failures", u64(r->failures));
	ret = json_object_to_file_ext(path, root, JSON_C_TO_STRING_PRETTY |
				      JSON_C_TO_STRING_NOSLASHESCAPE);
	json_object_put(root);
	return ret ? -1 : 0;
}
