/* sv_report on hand-written result files: hostile names stay inside the
 * JSON data block (no way to close the <script> element), the counts and
 * histogram totals match values worked out by hand for the fixture, pages
 * without Plotly say so, and bad input is refused naming the file/field.
 * usage: test_report DIR */
#define TEST_NAME "test_report"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saeval/report.h"
#include "testutil.h"

/* Counts a failed condition (with its line) and goes on; one argument,
 * unlike testutil.h's CHECK(cond, fmt, ...). */
static int failures;
#define RCHECK(cond)                                                                       \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, TEST_NAME ": line %d: check failed: %s\n", __LINE__, #cond);    \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

#define HOSTILE "</script><script>alert(1)</script>"

static const char *fixture =
    "[\n"
    "{\"sae_id\": \"</script><script>alert(1)</script>\", \"dataset\": \"in_sample\", \"status\": \"ok\",\n"
    " \"sae_cfg\": {\"architecture\": \"standard\", \"d_in\": 4, \"d_sae\": 6},\n"
    " \"metrics\": {\"reconstruction_quality\": {\"explained_variance\": 0.5, \"mse\": 1.25},\n"
    "   \"sparsity\": {\"l0\": 2.5, \"dead_fraction\": 0.16666666666666666, \"l0_histogram\": [1, 0, 3, 2]},\n"
    "   \"geometry\": {\"decoder_mean_abs_cos\": 0.1, \"decoder_cos_histogram\": [0, 3, 12, 0],\n"
    "                \"top_decoder_pairs\": [[0, 1, 0.5], [2, 3, 0.25]]},\n"
    "   \"health\": {\"quality_score\": {\"rating\": \"fair\", \"score_out_of_4\": 2}}},\n"
    " \"feature_metrics\": {\"feature_density\": [0.5, 0, 0.001, 0.02, 1, 1e-13],\n"
    "   \"consistent_activation_heuristic\": [2, -1, 1, 1.5, 3, 1],\n"
    "   \"encoder_norm\": [1, 2, 3, 4, 5, 6], \"encoder_bias\": [0, 0, 0, 0, 0, 0],\n"
    "   \"encoder_decoder_cosine_sim\": [1, -1, 0.5, 0.99, -0.2, 0]}},\n"
    "{\"sae_id\": \"b\", \"dataset\": \"in_sample\", \"status\": \"error\", \"message\": \"bad </SCRIPT> <!-- file\"},\n"
    "{\"sae_id\": \"c\", \"dataset\": \"in_sample\", \"status\": \"missing\"},\n"
    "{\"sae_id\": \"bare\", \"dataset\": \"in_sample\", \"status\": \"ok\"}\n"
    "]\n";

static const char *gen_fixture =
    "{\"reference_in_sample\": \"in_sample\", \"rows\": [{\"sae_id\": \"</script><script>alert(1)</script>\",\n"
    " \"dataset\": \"oos\", \"shift\": \"domain\", \"status\": \"ok\",\n"
    " \"metrics\": {\"explained_variance\": {\"in_sample\": 0.5, \"oos\": 0.375, \"drop_percent\": 25}},\n"
    " \"expected_ev_drop_percent\": [20, 40], \"ev_drop_vs_expected\": \"inside\"}]}\n";

static void put_file(const char *dir, const char *name, const char *text)
{
    char *p = sv_path_join(dir, name);
    if (!p || sv_write_atomic(p, text, strlen(text)) != SV_OK) die("cannot write", name);
    free(p);
}

static char *slurp(const char *dir, const char *name)
{
    char *p = sv_path_join(dir, name), *text = NULL;
    size_t n;
    if (!p || sv_read_file(p, &text, &n) != SV_OK) text = NULL;
    free(p);
    return text;
}

/* Case-insensitive count of needle in hay. */
static int count_ci(const char *hay, const char *needle)
{
    int n = 0;
    size_t k = strlen(needle);
    for (const char *p = hay; *p; p++) {
        size_t i = 0;
        while (i < k && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)needle[i])) i++;
        n += i == k;
    }
    return n;
}

/* The page's JSON data block, parsed. */
static cJSON *page_data(const char *html)
{
    const char *open = "id=\"sv-data\">\n";
    const char *a = html ? strstr(html, open) : NULL;
    const char *b = a ? strstr(a, "\n</script>") : NULL;
    if (!a || !b) return NULL;
    a += strlen(open);
    return cJSON_ParseWithLength(a, (size_t)(b - a));
}

static double sum_array(const cJSON *a)
{
    double s = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) s += e->valuedouble;
    return s;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static void expect_error(const char *dir, const char *all_text, const char *plotly, const char *what)
{
    mkdirs(dir);
    char *p = sv_path_join(dir, "all_eval_results.json");
    if (all_text) put_file(dir, "all_eval_results.json", all_text);
    else unlink(p);
    sv_report_stats st;
    sv_rc rc = sv_report(dir, plotly, &st);
    RCHECK(rc == SV_EINPUT);
    RCHECK(strstr(sv_errmsg(), what) != NULL);
    if (rc != SV_EINPUT || !strstr(sv_errmsg(), what)) fprintf(stderr, "  message was: %s\n", sv_errmsg());
    free(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) die("usage: test_report DIR", NULL);
    const char *dir = argv[1];
    char *sub = sv_path_join(dir, "ok"), *fake = sv_path_join(dir, "fake_plotly.js");
    if (!sub || !fake) die("out of memory", NULL);
    mkdirs(sub);
    put_file(dir, "fake_plotly.js", "/* stands in for plotly.min.js */\n");
    put_file(sub, "all_eval_results.json", fixture);
    put_file(sub, "generalization.json", gen_fixture);
    put_file(sub, "bare__in_sample.features.h5", ""); /* latent-page hook: named on the page */

    /* With a Plotly file. */
    sv_report_stats st;
    RCHECK(sv_report(sub, fake, &st) == SV_OK);
    RCHECK(st.pairs == 4 && st.pages == 2 && st.failed == 1 && st.missing == 1 && st.charts == 1);
    char *rdir = sv_path_join(sub, "report");
    char *index = slurp(rdir, "index.html"), *pl = slurp(rdir, "plotly.min.js");
    char *js = slurp(rdir, "report.js"), *css = slurp(rdir, "report.css");
    RCHECK(index && pl && js && css);
    RCHECK(pl && strcmp(pl, "/* stands in for plotly.min.js */\n") == 0);
    /* Three script elements (plotly, data, report.js) and nothing else that
     * could end one or open a comment. */
    RCHECK(index && count_ci(index, "</script") == 3 && count_ci(index, "<!--") == 0);
    RCHECK(index && strstr(index, "<script src=\"plotly.min.js\"></script>"));
    cJSON *d = page_data(index);
    RCHECK(d != NULL);
    const cJSON *rows = get(d, "rows");
    RCHECK(cJSON_GetArraySize(rows) == 4);
    const cJSON *r0 = cJSON_GetArrayItem(rows, 0), *r1 = cJSON_GetArrayItem(rows, 1);
    RCHECK(cJSON_IsString(get(r0, "sae_id")) && strcmp(get(r0, "sae_id")->valuestring, HOSTILE) == 0);
    RCHECK(cJSON_IsString(get(r1, "message")) && strcmp(get(r1, "message")->valuestring, "bad </SCRIPT> <!-- file") == 0);
    RCHECK(!get(r1, "page") && !get(cJSON_GetArrayItem(rows, 2), "page"));
    RCHECK(get(get(r0, "v"), "mse") && get(get(r0, "v"), "mse")->valuedouble == 1.25);
    RCHECK(cJSON_IsNull(get(get(r0, "v"), "cossim")));        /* absent in the file */
    RCHECK(!get(get(r0, "v"), "ce_loss_score"));               /* no downstream metrics: no column */
    RCHECK(cJSON_IsFalse(get(d, "has_downstream")));
    const cJSON *g = get(get(d, "generalization"), "rows");
    RCHECK(cJSON_GetArraySize(g) == 1 && get(cJSON_GetArrayItem(g, 0), "drop")->valuedouble == 25);

    /* The pair page: a file name of safe bytes, totals worked out by hand. */
    const cJSON *page = get(r0, "page");
    RCHECK(cJSON_IsString(page) && strncmp(page->valuestring, "pairs/00000_", 12) == 0);
    if (cJSON_IsString(page)) {
        for (const char *c = page->valuestring + 6; *c; c++) RCHECK(isalnum((unsigned char)*c) || strchr("._-", *c));
        char *html = slurp(rdir, page->valuestring);
        RCHECK(html && count_ci(html, "</script") == 3 && strstr(html, "src=\"../report.js\""));
        cJSON *p = page_data(html);
        RCHECK(p && strcmp(get(p, "sae_id")->valuestring, HOSTILE) == 0);
        /* 5 latents fired (1e-13 too: clamped into the first bin), 1 dead */
        RCHECK(sum_array(get(get(p, "density_hist"), "y")) == 5);
        RCHECK(get(get(p, "density"), "dead")->valuedouble == 1);
        /* CAH: latents 0, 2, 3, 4, 5 (latent 1 never fired) */
        const cJSON *ids = get(get(p, "cah"), "ids");
        RCHECK(cJSON_GetArraySize(ids) == 5 && cJSON_GetArrayItem(ids, 1)->valuedouble == 2);
        RCHECK(sum_array(get(get(p, "encdec_hist"), "y")) == 6);
        /* L0 histogram: tokens at L0 0, 2, 3 */
        const cJSON *lx = get(get(p, "l0_hist"), "x");
        RCHECK(cJSON_GetArraySize(lx) == 3 && cJSON_GetArrayItem(lx, 0)->valuedouble == 0 &&
              cJSON_GetArrayItem(lx, 1)->valuedouble == 2 && cJSON_GetArrayItem(lx, 2)->valuedouble == 3);
        RCHECK(sum_array(get(get(p, "l0_hist"), "y")) == 6);
        RCHECK(sum_array(get(get(p, "dec_cos_hist"), "y")) == 15);
        RCHECK(sum_array(get(get(p, "encoder"), "norm")) == 21);
        RCHECK(cJSON_GetArraySize(get(p, "top_pairs")) == 2);
        RCHECK(cJSON_GetArraySize(get(p, "notes")) == 0);
        RCHECK(cJSON_IsNull(get(p, "latent_pages")));
        cJSON_Delete(p);
        free(html);
    }
    /* A record with nothing but its names still gets a page that says why
     * its charts are missing. */
    const cJSON *bare = get(cJSON_GetArrayItem(rows, 3), "page");
    if (cJSON_IsString(bare)) {
        char *html = slurp(rdir, bare->valuestring);
        cJSON *p = page_data(html);
        RCHECK(p && cJSON_GetArraySize(get(p, "notes")) >= 4 && !get(p, "density_hist"));
        const cJSON *lp = get(get(p, "latent_pages"), "features_file");
        RCHECK(cJSON_IsString(lp) && strcmp(lp->valuestring, "bare__in_sample.features.h5") == 0);
        cJSON_Delete(p);
        free(html);
    } else RCHECK(!"bare record has a page");
    cJSON_Delete(d);
    free(index); free(pl); free(js); free(css);

    /* Without Plotly: tables only, no script tag for it, no stale copy. */
    unsetenv("SAEVAL_PLOTLY_JS");
    RCHECK(sv_report(sub, NULL, &st) == SV_OK);
    RCHECK(st.charts == 0 && st.pages == 2);
    index = slurp(rdir, "index.html");
    pl = slurp(rdir, "plotly.min.js");
    RCHECK(index && !strstr(index, "plotly.min.js") && !pl);
    d = page_data(index);
    RCHECK(d && cJSON_IsFalse(get(d, "charts")));
    cJSON_Delete(d);
    free(index); free(pl);

    /* Downstream metrics, when present, become columns. */
    char *down = sv_path_join(dir, "down");
    mkdirs(down);
    put_file(down, "all_eval_results.json",
             "[{\"sae_id\": \"a\", \"dataset\": \"x\", \"status\": \"ok\", \"metrics\": "
             "{\"model_behavior_preservation\": {\"ce_loss_score\": 0.875}}}]");
    RCHECK(sv_report(down, fake, &st) == SV_OK);
    char *ddir = sv_path_join(down, "report");
    index = slurp(ddir, "index.html");
    d = page_data(index);
    RCHECK(d && cJSON_IsTrue(get(d, "has_downstream")));
    RCHECK(d && get(get(cJSON_GetArrayItem(get(d, "rows"), 0), "v"), "ce_loss_score")->valuedouble == 0.875);
    RCHECK(d && cJSON_IsNull(get(get(cJSON_GetArrayItem(get(d, "rows"), 0), "v"), "kl_div_score")));
    RCHECK(d && cJSON_IsNull(get(d, "generalization")));
    cJSON_Delete(d);
    free(index);

    /* Bad input: exit code 2 material, naming the file and the field. */
    char *bad = sv_path_join(dir, "bad");
    expect_error(bad, "[1, 2", fake, "all_eval_results.json: not valid JSON");
    expect_error(bad, "{}", fake, "all_eval_results.json: top level");
    expect_error(bad, "[{\"sae_id\": \"a\", \"dataset\": \"b\", \"status\": \"ok\"}, {\"dataset\": \"b\", \"status\": \"ok\"}]",
                 fake, "all_eval_results.json: [1].sae_id");
    expect_error(bad, "[7]", fake, "all_eval_results.json: [0]: expected an object");
    expect_error(bad, NULL, fake, "all_eval_results.json: cannot open");
    expect_error(bad, "[]", "/nonexistent/plotly.min.js", "/nonexistent/plotly.min.js: plotly.min.js not found");

    free(sub); free(fake); free(rdir); free(down); free(ddir); free(bad);
    if (failures) fprintf(stderr, TEST_NAME ": %d checks failed\n", failures);
    else printf(TEST_NAME ": all checks passed\n");
    return failures ? 1 : 0;
}
