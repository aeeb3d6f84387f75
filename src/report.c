/* Sweep report: reads all_eval_results.json and generalization.json, writes
 * report/index.html, one page per evaluated pair and the assets. The data
 * go into the pages as JSON inside <script type="application/json"> with
 * every '<' escaped, so nothing from a result file can end the script
 * element or be run; the page script inserts text with textContent only. */
#include "saeval/report.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report_impl.h"
#include "saeval/config.h"
#include "saeval/featfile.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"
#include "saeval/output.h"
#include "saeval/tokenizer.h"

double sv_rep_num(const cJSON *root, const char *dotted)
{
    return sv_json_num_at(root, dotted);
}

const char *sv_rep_str(const cJSON *obj, const char *key)
{
    const cJSON *s = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* Sweep table columns: a row per metric (key in the page data, label,
 * dotted path in a result object). `downstream` columns appear only when
 * some pair has them (they come from the model-based evaluation). */
static const struct {
    const char *key, *label, *path;
    int downstream;
} columns[] = {
    {"explained_variance", "expl. var.", "metrics.reconstruction_quality.explained_variance", 0},
    {"mse", "MSE", "metrics.reconstruction_quality.mse", 0},
    {"cossim", "cos sim", "metrics.reconstruction_quality.cossim", 0},
    {"l0", "L0", "metrics.sparsity.l0", 0},
    {"dead_fraction", "dead frac.", "metrics.sparsity.dead_fraction", 0},
    {"l2_ratio", "L2 ratio", "metrics.shrinkage.l2_ratio", 0},
    {"absorption", "absorption", "metrics.geometry.decoder_mean_abs_cos", 0},
    {"quality", "quality /4", "metrics.health.quality_score.score_out_of_4", 0},
    {"ce_loss_score", "CE loss score", "metrics.model_behavior_preservation.ce_loss_score", 1},
    {"kl_div_score", "KL div score", "metrics.model_behavior_preservation.kl_div_score", 1},
};
#define N_COLUMNS (sizeof columns / sizeof *columns)

/* Appends s to w with every '<' written as \u003c: valid only inside JSON
 * strings, which is the only place '<' can be in valid JSON. */
static void put_script_json(sv_jw *w, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '<') {
            sv_jw_raw(w, s + start, i - start);
            sv_jw_raw(w, "\\u003c", 6);
            start = i + 1;
        }
    sv_jw_raw(w, s + start, n - start);
}

static void put(sv_jw *w, const char *s) { sv_jw_raw(w, s, strlen(s)); }

/* Temporary file + rename (a reader sees the old or the new page) but no
 * fsync: pages are rebuilt from the results at any time, and 800 fsyncs
 * made a large sweep's report several times slower. */
sv_rc sv_rep_write_file(const char *path, const char *buf, size_t len)
{
    size_t n = strlen(path) + 32;
    char *tmp = sv_malloc(n);
    if (!tmp) return SV_EINTERNAL;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    sv_rc rc = SV_OK;
    if (!f) rc = sv_fail(SV_EINPUT, "%s: cannot create: %s", tmp, strerror(errno));
    else {
        int bad = len && fwrite(buf, 1, len, f) != len;
        if (fclose(f) != 0 || bad) rc = sv_fail(SV_EINTERNAL, "%s: write failed: %s", tmp, strerror(errno));
        else if (rename(tmp, path) != 0) rc = sv_fail(SV_EINTERNAL, "%s: cannot rename: %s", path, strerror(errno));
        if (rc != SV_OK) unlink(tmp);
    }
    free(tmp);
    return rc;
}

sv_rc sv_rep_write_page(const char *path, const char *title, const char *prefix, int charts, const sv_jw *data)
{
    if (data->oom) return sv_fail(SV_EINTERNAL, "%s: out of memory building the page data", path);
    sv_jw h;
    sv_jw_init(&h);
    put(&h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<link rel=\"icon\" href=\"data:,\">\n<title>");
    put(&h, title); /* a fixed string: names from the data are set by the script */
    put(&h, "</title>\n<link rel=\"stylesheet\" href=\"");
    put(&h, prefix);
    put(&h, "report.css\">\n");
    if (charts) {
        put(&h, "<script src=\"");
        put(&h, prefix);
        put(&h, "plotly.min.js\"></script>\n");
    }
    put(&h, "</head>\n<body>\n<div id=\"app\"><noscript>This report needs JavaScript.</noscript></div>\n"
            "<script type=\"application/json\" id=\"sv-data\">\n");
    put_script_json(&h, data->buf, data->len);
    put(&h, "\n</script>\n<script src=\"");
    put(&h, prefix);
    put(&h, "report.js\"></script>\n</body>\n</html>\n");
    sv_rc rc = h.oom ? sv_fail(SV_EINTERNAL, "%s: out of memory writing the page", path)
                     : sv_rep_write_file(path, h.buf, h.len);
    sv_jw_free(&h);
    return rc;
}

/* plotly.min.js: the argument, $SAEVAL_PLOTLY_JS, or report-assets/ next to
 * the running program (where the build puts it). */
static int find_plotly(const char *given, char *out, size_t cap)
{
    struct stat st;
    const char *env = getenv("SAEVAL_PLOTLY_JS");
    const char *cand = given ? given : (env && *env ? env : NULL);
    if (cand) {
        if (stat(cand, &st) != 0 || !S_ISREG(st.st_mode) || strlen(cand) >= cap) return 0;
        strcpy(out, cand);
        return 1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return 0;
    *slash = '\0';
    int k = snprintf(out, cap, "%s/report-assets/plotly.min.js", exe);
    return k > 0 && (size_t)k < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode);
}

static sv_rc write_bytes(const char *dir, const char *name, const void *buf, size_t len)
{
    char *p = sv_path_join(dir, name);
    if (!p) return SV_EINTERNAL;
    sv_rc rc = sv_rep_write_file(p, buf, len);
    free(p);
    return rc;
}

static sv_rc write_assets(const char *dir, const char *plotly)
{
    sv_rc rc = write_bytes(dir, "report.js", sv_report_js, sv_report_js_len);
    if (rc == SV_OK) rc = write_bytes(dir, "report.css", sv_report_css, sv_report_css_len);
    if (rc == SV_OK && plotly) {
        char *buf = NULL;
        size_t len = 0;
        rc = sv_read_file(plotly, &buf, &len);
        if (rc == SV_OK) rc = write_bytes(dir, "plotly.min.js", buf, len);
        free(buf);
    }
    return rc;
}

/* Pair page file name: index (unique) + the names, reduced to safe bytes. */
static void page_name(char *out, size_t cap, int index, const char *sae, const char *ds)
{
    int k = snprintf(out, cap, "%05d_", index);
    size_t n = k > 0 ? (size_t)k : 0;
    const char *parts[2] = {sae, ds};
    for (int p = 0; p < 2; p++) {
        if (p == 1 && n + 2 < cap) { out[n++] = '_'; out[n++] = '_'; }
        for (const char *c = parts[p]; *c && n + 6 < cap && c - parts[p] < 80; c++) {
            int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                     *c == '-' || *c == '.';
            out[n++] = ok ? *c : '_';
        }
    }
    snprintf(out + n, cap - n, ".html");
}

/* Pages of an earlier report whose sweep had more pairs would linger. */
static void remove_old_pages(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".html") == 0 && e->d_name[0] >= '0' && e->d_name[0] <= '9') {
            char *p = sv_path_join(dir, e->d_name);
            if (p) unlink(p);
            free(p);
        }
    }
    closedir(d);
}

static sv_rc load_json(const char *path, cJSON **out, int optional)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    if (optional && access(path, F_OK) != 0) return SV_OK;
    sv_rc rc = sv_read_file(path, &text, &len);
    if (rc != SV_OK) return rc;
    *out = sv_json_parse_exact(text, len);
    free(text);
    if (!*out) return sv_fail(SV_EINPUT, "%s: not valid JSON", path);
    return SV_OK;
}

static void generalization_data(sv_jw *w, const cJSON *g)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(g, "rows");
    if (!cJSON_IsObject(g) || !cJSON_IsArray(rows)) { sv_jw_null(w, "generalization"); return; }
    sv_jw_obj(w, "generalization");
    const char *ref = sv_rep_str(g, "reference_in_sample");
    if (ref) sv_jw_str(w, "reference", ref);
    else sv_jw_null(w, "reference");
    sv_jw_arr_block(w, "rows");
    const cJSON *r;
    cJSON_ArrayForEach(r, rows) {
        const char *id = sv_rep_str(r, "sae_id"), *ds = sv_rep_str(r, "dataset");
        if (!id || !ds) continue;
        const char *shift = sv_rep_str(r, "shift"), *flag = sv_rep_str(r, "ev_drop_vs_expected");
        const char *status = sv_rep_str(r, "status");
        const cJSON *band = cJSON_GetObjectItemCaseSensitive(r, "expected_ev_drop_percent");
        sv_jw_obj(w, NULL);
        sv_jw_str(w, "sae_id", id);
        sv_jw_str(w, "dataset", ds);
        sv_jw_str(w, "status", status ? status : "?");
        if (shift) sv_jw_str(w, "shift", shift);
        sv_jw_num(w, "drop", sv_rep_num(r, "metrics.explained_variance.drop_percent"));
        sv_jw_num(w, "in_sample", sv_rep_num(r, "metrics.explained_variance.in_sample"));
        sv_jw_num(w, "oos", sv_rep_num(r, "metrics.explained_variance.oos"));
        if (flag) sv_jw_str(w, "flag", flag);
        if (cJSON_IsArray(band) && cJSON_GetArraySize(band) == 2) {
            sv_jw_arr(w, "band");
            sv_jw_num(w, NULL, cJSON_IsNumber(band->child) ? band->child->valuedouble : NAN);
            sv_jw_num(w, NULL, cJSON_IsNumber(band->child->next) ? band->child->next->valuedouble : NAN);
            sv_jw_end(w);
        }
        sv_jw_end(w);
    }
    sv_jw_end(w);
    sv_jw_end(w);
}

/* The pair's feature file (<sae>__<dataset>.features.h5) if it exists. */
static char *features_file(const char *out_dir, const char *id, const char *ds)
{
    char *q = sv_featfile_path(out_dir, id, ds);
    if (q && access(q, F_OK) != 0) { free(q); q = NULL; }
    return q;
}

/* Checks one record of all_eval_results.json. */
static sv_rc check_record(const char *file, int i, const cJSON *o)
{
    if (!cJSON_IsObject(o)) return sv_fail(SV_EINPUT, "%s: [%d]: expected an object", file, i);
    const char *keys[3] = {"sae_id", "dataset", "status"};
    for (int k = 0; k < 3; k++)
        if (!sv_rep_str(o, keys[k])) return sv_fail(SV_EINPUT, "%s: [%d].%s: expected a string", file, i, keys[k]);
    return SV_OK;
}

static sv_rc sweep(const char *out_dir, const char *rdir, const char *pdir, const cJSON *all, const char *all_path,
                   const cJSON *gen, int charts, const sv_tokenizer *tok, const char *tok_name, sv_report_stats *st)
{
    sv_rc rc = SV_OK;
    int n = cJSON_GetArraySize(all), i = 0, downstream = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, all) {
        if ((rc = check_record(all_path, i++, o)) != SV_OK) return rc;
        for (size_t c = 0; c < N_COLUMNS; c++)
            if (columns[c].downstream && isfinite(sv_rep_num(o, columns[c].path))) downstream = 1;
    }
    sv_jw w;
    sv_jw_init(&w);
    sv_jw_obj(&w, NULL);
    sv_jw_str(&w, "kind", "sweep");
    sv_jw_str(&w, "output_dir", out_dir);
    sv_jw_bool(&w, "charts", charts);
    sv_jw_bool(&w, "has_downstream", downstream);
    sv_jw_int(&w, "max_points", SV_REPORT_MAX_POINTS);
    sv_jw_arr_block(&w, "columns");
    for (size_t c = 0; c < N_COLUMNS; c++) {
        if (columns[c].downstream && !downstream) continue;
        sv_jw_obj(&w, NULL);
        sv_jw_str(&w, "key", columns[c].key);
        sv_jw_str(&w, "label", columns[c].label);
        sv_jw_str(&w, "path", columns[c].path);
        sv_jw_end(&w);
    }
    sv_jw_end(&w);
    sv_jw_arr_block(&w, "rows");
    i = 0;
    cJSON_ArrayForEach(o, all) {
        const char *id = sv_rep_str(o, "sae_id"), *ds = sv_rep_str(o, "dataset"), *status = sv_rep_str(o, "status");
        int ok = strcmp(status, "ok") == 0;
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(o, "sae_cfg");
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metrics"), "health");
        const char *arch = sv_rep_str(cfg, "architecture"), *msg = sv_rep_str(o, "message");
        const char *rating = sv_rep_str(cJSON_GetObjectItemCaseSensitive(q, "quality_score"), "rating");
        char page[256];
        page_name(page, sizeof page, i, id, ds);
        sv_jw_obj(&w, NULL);
        sv_jw_str(&w, "sae_id", id);
        sv_jw_str(&w, "dataset", ds);
        sv_jw_str(&w, "status", status);
        if (msg) sv_jw_str(&w, "message", msg);
        sv_jw_str(&w, "architecture", arch ? arch : "?");
        sv_jw_num(&w, "d_sae", sv_rep_num(cfg, "d_sae"));
        if (rating) sv_jw_str(&w, "rating", rating);
        if (ok) {
            char rel[300];
            snprintf(rel, sizeof rel, "pairs/%s", page);
            sv_jw_str(&w, "page", rel);
            st->pages++;
        } else if (strcmp(status, "missing") == 0) st->missing++;
        else st->failed++;
        sv_jw_obj(&w, "v");
        for (size_t c = 0; c < N_COLUMNS; c++)
            if (!columns[c].downstream || downstream) sv_jw_num(&w, columns[c].key, sv_rep_num(o, columns[c].path));
        sv_jw_end(&w);
        sv_jw_end(&w);
        if (ok && rc == SV_OK) {
            sv_jw pw;
            sv_jw_init(&pw);
            char *feat = features_file(out_dir, id, ds);
            const char *slash = feat ? strrchr(feat, '/') : NULL;
            /* The per-latent arrays live in the pair's own result file
             * (all_eval_results.json holds scalars only); a pair file that
             * is gone or unreadable leaves the page with its scalars. */
            char *pf = sv_pair_path(out_dir, id, ds);
            cJSON *full = NULL;
            if (pf && load_json(pf, &full, 1) != SV_OK) sv_clear_error();
            const char *src = full && pf ? strrchr(pf, '/') : NULL;
            sv_rep_latent_link lat = {feat ? (slash ? slash + 1 : feat) : NULL, NULL, NULL};
            char base[256], lpage[300], why[1024] = "";
            if (feat) {
                snprintf(base, sizeof base, "%.*s", (int)(strlen(page) - 5), page); /* without .html */
                rc = sv_rep_latents(rdir, base, feat, lat.features, tok, tok_name, full ? full : o, charts, why,
                                    sizeof why);
                if (rc == SV_OK && !why[0]) {
                    snprintf(lpage, sizeof lpage, "%s_latents.html", base);
                    lat.page = lpage;
                    st->latent_pages++;
                } else {
                    lat.why_not = why;
                }
            }
            sv_rep_pair_data(&pw, full ? full : o, src ? src + 1 : "all_eval_results.json", &lat);
            cJSON_Delete(full);
            free(pf);
            free(feat);
            char *pp = rc == SV_OK ? sv_path_join(pdir, page) : NULL;
            if (rc == SV_OK) rc = pp ? sv_rep_write_page(pp, "saeval pair", "../", charts, &pw) : SV_EINTERNAL;
            free(pp);
            sv_jw_free(&pw);
        }
        i++;
    }
    sv_jw_end(&w);
    generalization_data(&w, gen);
    sv_jw_end(&w);
    st->pairs = n;
    if (rc == SV_OK) {
        char *ip = sv_path_join(rdir, "index.html");
        rc = ip ? sv_rep_write_page(ip, "saeval sweep report", "", charts, &w) : SV_EINTERNAL;
        free(ip);
    }
    sv_jw_free(&w);
    return rc;
}

sv_rc sv_report(const char *out_dir, const char *plotly_js, sv_report_stats *st)
{
    return sv_report_ex(out_dir, plotly_js, NULL, st);
}

sv_rc sv_report_ex(const char *out_dir, const char *plotly_js, const char *tokenizer, sv_report_stats *st)
{
    memset(st, 0, sizeof *st);
    st->charts = find_plotly(plotly_js, st->plotly, sizeof st->plotly);
    if (!st->charts) {
        st->plotly[0] = '\0';
        if (plotly_js) return sv_fail(SV_EINPUT, "%s: plotly.min.js not found", plotly_js);
    }
    char *all_path = sv_path_join(out_dir, "all_eval_results.json");
    char *gen_path = sv_path_join(out_dir, "generalization.json");
    char *rdir = sv_path_join(out_dir, "report");
    char *pdir = rdir ? sv_path_join(rdir, "pairs") : NULL;
    char *ldir = rdir ? sv_path_join(rdir, "latents") : NULL;
    cJSON *all = NULL, *gen = NULL;
    sv_tokenizer *tok = NULL;
    sv_rc rc = (all_path && gen_path && rdir && pdir && ldir) ? SV_OK : SV_EINTERNAL;
    if (rc == SV_OK && tokenizer) rc = sv_tokenizer_load(&tok, tokenizer);
    if (rc == SV_OK) rc = load_json(all_path, &all, 0);
    if (rc == SV_OK && !cJSON_IsArray(all))
        rc = sv_fail(SV_EINPUT, "%s: top level: expected an array of pair records", all_path);
    if (rc == SV_OK) rc = load_json(gen_path, &gen, 1);
    if (rc == SV_OK) rc = sv_mkdir_p(pdir);
    if (rc == SV_OK) {
        remove_old_pages(pdir);
        sv_rep_latents_clean(ldir);
        rc = write_assets(rdir, st->charts ? st->plotly : NULL);
    }
    if (rc == SV_OK && !st->charts) {
        /* A plotly.min.js from an earlier report would contradict the pages. */
        char *old = sv_path_join(rdir, "plotly.min.js");
        if (old) unlink(old);
        free(old);
    }
    if (rc == SV_OK) {
        const char *tn = tokenizer ? strrchr(tokenizer, '/') : NULL;
        rc = sweep(out_dir, rdir, pdir, all, all_path, gen, st->charts, tok, tok ? (tn ? tn + 1 : tokenizer) : NULL, st);
    }
    sv_tokenizer_free(tok);
    free(ldir);
    cJSON_Delete(all);
    cJSON_Delete(gen);
    free(all_path);
    free(gen_path);
    free(rdir);
    free(pdir);
    return rc;
}

sv_rc sv_report_cli(const char *config, const char *dir, const char *tokenizer)
{
    sv_config c;
    memset(&c, 0, sizeof c);
    sv_rc rc = SV_OK;
    if (config) {
        rc = sv_config_load(&c, config);
        if (!dir) dir = c.output_dir;
        if (!tokenizer) tokenizer = c.tokenizer;
    }
    sv_report_stats st;
    if (rc == SV_OK) rc = sv_report_ex(dir, NULL, tokenizer, &st);
    if (rc == SV_OK) {
        printf("[saeval] report: %s/report/index.html (%d pairs, %d pair pages, %d failed, %d missing", dir,
               st.pairs, st.pages, st.failed, st.missing);
        if (st.latent_pages) printf(", latent pages for %d", st.latent_pages);
        printf(")\n");
        if (!st.charts)
            fprintf(stderr, "saeval: warning: plotly.min.js not found (not next to the program in report-assets/, "
                            "SAEVAL_PLOTLY_JS unset): the report has tables only\n");
        fflush(stdout);
    }
    sv_config_free(&c);
    return rc;
}
