/* Summaries and the generalization table from per-pair result files. */
#include "saeval/merge.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/csv.h"
#include "saeval/featmetrics.h"
#include "saeval/fsutil.h"
#include "saeval/metrics.h"
#include "saeval/json.h"
#include "saeval/output.h"
#include "saeval/results.h"


/* Rows of the metric table in the generalization table, by gen_pos. */
static int gen_rows(const sv_metric **rows)
{
    int n = 0;
    for (int pos = 1; pos <= SV_M_COUNT; pos++)
        for (int i = 0; i < SV_M_COUNT; i++)
            if (sv_metrics[i].gen_pos == pos) rows[n++] = &sv_metrics[i];
    return n;
}

/* Expected explained-variance drop (%) for a declared kind of shift. */
static int shift_band(const char *shift, double *lo, double *hi)
{
    if (!shift) return 0;
    if (strcmp(shift, "domain") == 0) { *lo = 20; *hi = 40; return 1; }
    if (strcmp(shift, "task") == 0) { *lo = 0; *hi = 60; return 1; }
    if (strcmp(shift, "distribution") == 0) { *lo = 10; *hi = 30; return 1; }
    return 0;
}

static double drop_percent(double in, double oos)
{
    return (isfinite(in) && isfinite(oos) && in != 0) ? 100.0 * (in - oos) / fabs(in) : NAN;
}

static sv_rc write_generalization(const sv_config *c, const sv_plan *pl, const char *out_dir, cJSON **objs)
{
    const int ns = pl->n_saes, nd = pl->n_ds;
    int ref = -1, n_in = 0;
    for (int j = 0; j < nd; j++)
        if (c->datasets[j].role == SV_ROLE_IN_SAMPLE) { if (ref < 0) ref = j; n_in++; }
    sv_jw js, csv;
    sv_jw_init(&js);
    sv_jw_init(&csv);
    sv_jw_obj(&js, NULL);
    if (ref >= 0) sv_jw_str(&js, "reference_in_sample", c->datasets[ref].name);
    else sv_jw_null(&js, "reference_in_sample");
    sv_jw_arr(&js, "in_sample_datasets");
    for (int j = 0; j < nd; j++)
        if (c->datasets[j].role == SV_ROLE_IN_SAMPLE) sv_jw_str(&js, NULL, c->datasets[j].name);
    sv_jw_end(&js);
    sv_jw_str(&js, "note", n_in > 1 ? "several in-sample datasets: drops are relative to reference_in_sample (the first one in the config)"
                                    : "drop_percent = 100 * (in_sample - oos) / |in_sample|; for mse a negative drop means the error grew");
    sv_jw_obj(&js, "expected_explained_variance_drop_percent");
    const char *kinds[] = {"domain", "task", "distribution"};
    for (int k = 0; k < 3; k++) {
        double lo = 0, hi = 0;
        shift_band(kinds[k], &lo, &hi);
        sv_jw_arr(&js, kinds[k]);
        sv_jw_num(&js, NULL, lo);
        sv_jw_num(&js, NULL, hi);
        sv_jw_end(&js);
    }
    sv_jw_end(&js);
    sv_jw_arr_block(&js, "rows");

    const char *head = "sae_id,dataset,shift,reference_in_sample";
    sv_jw_raw(&csv, head, strlen(head));
    const sv_metric *gen[SV_M_COUNT];
    const int n_gen = gen_rows(gen);
    for (int k = 0; k < n_gen; k++) {
        char col[160];
        const char *key = gen[k]->key;
        int n = snprintf(col, sizeof col, ",%s_in_sample,%s_oos,%s_drop_percent", key, key, key);
        sv_jw_raw(&csv, col, (size_t)n);
    }
    const char *tail = ",expected_ev_drop_low,expected_ev_drop_high,ev_drop_vs_expected\n";
    sv_jw_raw(&csv, tail, strlen(tail));

    for (int i = 0; ref >= 0 && i < ns; i++) {
        const cJSON *in = objs[i * nd + ref];
        for (int j = 0; j < nd; j++) {
            if (c->datasets[j].role != SV_ROLE_OOS) continue;
            const cJSON *oo = objs[i * nd + j];
            const char *shift = c->datasets[j].shift;
            sv_jw_obj(&js, NULL);
            sv_jw_str(&js, "sae_id", pl->ids[i]);
            sv_jw_str(&js, "dataset", c->datasets[j].name);
            if (shift) sv_jw_str(&js, "shift", shift);
            else sv_jw_null(&js, "shift");
            sv_jw_str(&js, "status", in && oo ? "ok" : "incomplete");
            sv_csv_cell(&csv, pl->ids[i]);
            sv_jw_raw(&csv, ",", 1);
            sv_csv_cell(&csv, c->datasets[j].name);
            sv_jw_raw(&csv, ",", 1);
            if (shift) sv_csv_cell(&csv, shift);
            sv_jw_raw(&csv, ",", 1);
            sv_csv_cell(&csv, c->datasets[ref].name);
            sv_jw_obj(&js, "metrics");
            double ev_drop = NAN;
            for (int k = 0; k < n_gen; k++) {
                char path[160];
                sv_metric_path(gen[k], path, sizeof path);
                double a = in ? sv_json_num_at(in, path) : NAN, b = oo ? sv_json_num_at(oo, path) : NAN;
                double dp = drop_percent(a, b);
                if (gen[k]->id == SV_M_EV) ev_drop = dp; /* the shift bands are explained-variance drops */
                sv_jw_obj(&js, gen[k]->key);
                sv_jw_num(&js, "in_sample", a);
                sv_jw_num(&js, "oos", b);
                sv_jw_num(&js, "drop_percent", dp);
                sv_jw_end(&js);
                sv_jw_raw(&csv, ",", 1); sv_csv_num(&csv, a);
                sv_jw_raw(&csv, ",", 1); sv_csv_num(&csv, b);
                sv_jw_raw(&csv, ",", 1); sv_csv_num(&csv, dp);
            }
            sv_jw_end(&js);
            double lo = 0, hi = 0;
            const char *flag;
            if (!shift_band(shift, &lo, &hi)) {
                flag = "no_shift_declared";
                sv_jw_null(&js, "expected_ev_drop_percent");
                sv_jw_raw(&csv, ",,", 2);
            } else {
                flag = isnan(ev_drop) ? "unknown" : ev_drop > hi ? "above" : ev_drop < lo ? "below" : "inside";
                sv_jw_arr(&js, "expected_ev_drop_percent");
                sv_jw_num(&js, NULL, lo);
                sv_jw_num(&js, NULL, hi);
                sv_jw_end(&js);
                sv_jw_raw(&csv, ",", 1); sv_csv_num(&csv, lo);
                sv_jw_raw(&csv, ",", 1); sv_csv_num(&csv, hi);
            }
            sv_jw_str(&js, "ev_drop_vs_expected", flag);
            sv_jw_str(&js, "meaning", strcmp(flag, "above") == 0 ? "generalizes worse than expected for this shift"
                                     : strcmp(flag, "below") == 0 ? "generalizes better than expected for this shift"
                                     : strcmp(flag, "inside") == 0 ? "drop within the expected band" : "no band to compare with");
            sv_jw_raw(&csv, ",", 1);
            sv_jw_raw(&csv, flag, strlen(flag));
            sv_jw_raw(&csv, "\n", 1);
            sv_jw_end(&js);
        }
    }
    sv_jw_end(&js);
    sv_jw_end(&js);
    sv_jw_raw(&js, "\n", 1);
    sv_rc rc = (js.oom || csv.oom) ? sv_fail(SV_EINTERNAL, "out of memory writing the generalization table") : SV_OK;
    char *pj = sv_path_join(out_dir, "generalization.json"), *pc = sv_path_join(out_dir, "generalization.csv");
    if (rc == SV_OK && (!pj || !pc)) rc = SV_EINTERNAL;
    if (rc == SV_OK) rc = sv_write_atomic(pj, js.buf, js.len);
    if (rc == SV_OK) rc = sv_write_atomic(pc, csv.buf, csv.len);
    free(pj); free(pc);
    sv_jw_free(&js);
    sv_jw_free(&csv);
    return rc;
}

static void print_table(FILE *out, const sv_config *c, const sv_plan *pl, cJSON **objs)
{
    const int nd = pl->n_ds;
    /* Columns: rows of the metric table with a table position; the last
     * (the quality score) also shows its rating. */
    const sv_metric *col[SV_M_COUNT];
    int nc = 0;
    for (int pos = 1; pos <= SV_M_COUNT; pos++)
        for (int i = 0; i < SV_M_COUNT; i++)
            if (sv_metrics[i].table_pos == pos) col[nc++] = &sv_metrics[i];
    fprintf(out, "\n%-22s %-12s", "sae_id", "dataset");
    for (int k = 0; k < nc; k++) {
        if (col[k]->id == SV_M_QUALITY) fprintf(out, "  %s", col[k]->table_head);
        else fprintf(out, " %*s", col[k]->table_width, col[k]->table_head);
    }
    fprintf(out, "\n");
    for (int p = 0; p < pl->n_saes * nd; p++) {
        const cJSON *o = objs[p];
        fprintf(out, "%-22s %-12s ", pl->ids[p / nd], c->datasets[p % nd].name);
        if (!o) { fprintf(out, "(no result)\n"); continue; }
        for (int k = 0; k < nc; k++) {
            char path[160];
            sv_metric_path(col[k], path, sizeof path);
            double v = col[k]->table_scale * sv_json_num_at(o, path);
            fprintf(out, k == 0 ? "" : col[k]->id == SV_M_QUALITY ? "  " : " ");
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
            fprintf(out, col[k]->table_fmt, v);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
            if (col[k]->id == SV_M_QUALITY) {
                const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "metrics");
                q = cJSON_GetObjectItemCaseSensitive(q, "health");
                q = cJSON_GetObjectItemCaseSensitive(q, "quality_score");
                const cJSON *rating = cJSON_GetObjectItemCaseSensitive(q, "rating");
                fprintf(out, " %s", cJSON_IsString(rating) ? rating->valuestring : "?");
            }
        }
        fprintf(out, "\n");
    }
    fflush(out);
}

sv_rc sv_merge(const sv_config *c, const sv_plan *pl, const char *out_dir, FILE *report, FILE *table,
               sv_merge_counts *counts)
{
    const int ns = pl->n_saes, nd = pl->n_ds, np = ns * nd;
    sv_rc rc = SV_OK;
    cJSON **objs = sv_calloc((size_t)np, sizeof *objs);
    sv_jw js, csv;
    sv_jw_init(&js);
    sv_jw_init(&csv);
    memset(counts, 0, sizeof *counts);
    if (!objs) return SV_EINTERNAL;
    const char *head = "sae_id,dataset,status";
    sv_jw_raw(&csv, head, strlen(head));
    /* CSV columns: the rows of the metric table flagged SV_MF_CSV. */
    char cols[SV_M_COUNT][160];
    int ncol = 0;
    for (int i = 0; i < SV_M_COUNT; i++)
        if (sv_metrics[i].flags & SV_MF_CSV) sv_metric_path(&sv_metrics[i], cols[ncol++], sizeof cols[0]);
    for (int k = 0; k < ncol; k++) {
        sv_jw_raw(&csv, ",", 1);
        sv_csv_cell(&csv, cols[k]);
    }
    sv_jw_raw(&csv, "\n", 1);
    sv_jw_raw(&js, "[", 1);
    for (int p = 0; p < np && rc == SV_OK; p++) {
        const char *id = pl->ids[p / nd], *ds = c->datasets[p % nd].name;
        char *path = sv_pair_path(out_dir, id, ds), *note = sv_error_note_path(out_dir, id, ds);
        char *text = NULL, *msg = NULL;
        size_t len = 0;
        if (!path || !note) { free(path); free(note); rc = SV_EINTERNAL; break; }
        const char *status = "missing";
        /* Only the scalar head of each result file is read and parsed: the
         * per-latent arrays are the bulk of the bytes and no summary needs them. */
        if (!pl->pair_err[p] && sv_result_head(path, &text, &len) == SV_OK &&
            sv_result_head_hash(text, len, &objs[p]) != pl->pair_hash[p]) {
            cJSON_Delete(objs[p]);
            objs[p] = NULL;
        }
        sv_clear_error();
        if (objs[p]) {
            status = "ok";
            counts->complete++;
        } else {
            size_t ml;
            if (pl->pair_err[p]) msg = sv_strdup(pl->pair_err[p]);
            else if (sv_read_file(note, &msg, &ml) == SV_OK) { while (ml && msg[ml - 1] == '\n') msg[--ml] = '\0'; }
            else msg = NULL;
            status = msg ? "error" : "missing";
            if (msg) counts->failed++;
            else counts->missing++;
            if (report) fprintf(report, "[saeval] %s: %s / %s%s%s\n", status, id, ds, msg ? ": " : "", msg ? msg : "");
        }
        sv_jw_raw(&js, p ? ",\n" : "\n", p ? 2 : 1);
        if (objs[p]) {
            sv_jw_raw(&js, text, len);
        } else {
            sv_jw rec;
            sv_jw_init(&rec);
            sv_jw_obj(&rec, NULL);
            sv_jw_str(&rec, "sae_id", id);
            sv_jw_str(&rec, "dataset", ds);
            sv_jw_str(&rec, "status", status);
            if (msg) sv_jw_str(&rec, "message", msg);
            sv_jw_end(&rec);
            sv_jw_raw(&js, rec.buf, rec.len);
            sv_jw_free(&rec);
        }
        sv_csv_cell(&csv, id);
        sv_jw_raw(&csv, ",", 1);
        sv_csv_cell(&csv, ds);
        sv_jw_raw(&csv, ",", 1);
        sv_csv_cell(&csv, status);
        for (int k = 0; k < ncol; k++) {
            sv_jw_raw(&csv, ",", 1);
            if (objs[p]) sv_csv_num(&csv, sv_json_num_at(objs[p], cols[k]));
        }
        sv_jw_raw(&csv, "\n", 1);
        free(text); free(msg); free(path); free(note);
    }
    sv_jw_raw(&js, "\n]\n", 3);
    if (rc == SV_OK && (js.oom || csv.oom)) rc = sv_fail(SV_EINTERNAL, "out of memory writing summaries");
    if (rc == SV_OK) {
        char *pj = sv_path_join(out_dir, "all_eval_results.json"), *pc = sv_path_join(out_dir, "all_eval_results.csv");
        if (!pj || !pc) rc = SV_EINTERNAL;
        if (rc == SV_OK) rc = sv_write_atomic(pj, js.buf, js.len);
        if (rc == SV_OK) rc = sv_write_atomic(pc, csv.buf, csv.len);
        free(pj); free(pc);
    }
    if (rc == SV_OK) rc = write_generalization(c, pl, out_dir, objs);
    if (rc == SV_OK) { /* the per-latent arrays, columnar */
        int *ok = sv_calloc((size_t)np + 1, sizeof *ok);
        for (int p = 0; ok && p < np; p++) ok[p] = objs[p] != NULL;
        rc = ok ? sv_feature_metrics_write(c, pl, out_dir, ok) : SV_EINTERNAL;
        free(ok);
    }
    if (rc == SV_OK && table) print_table(table, c, pl, objs);
    for (int p = 0; p < np; p++) cJSON_Delete(objs[p]);
    free(objs);
    sv_jw_free(&js);
    sv_jw_free(&csv);
    return rc;
}
