/* Offline HTML report of a sweep, built from the result files alone
 * (all_eval_results.json, generalization.json): OUTPUT_DIR/report/index.html
 * (sweep page), report/pairs/NNNNN_SAE__DATASET.html (one page per evaluated pair), with the
 * data embedded as JSON in <script type="application/json"> (browsers forbid
 * fetch() from file://) and every asset (report.js, report.css,
 * plotly.min.js) next to the pages. Nothing is recomputed. */
#ifndef SAEVAL_REPORT_H
#define SAEVAL_REPORT_H
#include "saeval/error.h"

/* Per-latent scatter plots show at most this many latents: latent
 * j = floor(i * d_sae / SV_REPORT_MAX_POINTS), i = 0.. (all when fewer).
 * Histograms always count every latent. */
#define SV_REPORT_MAX_POINTS 4000

/* Latent pages: the per-latent data of a pair with a feature file go into
 * chunk files of this many latents (report/latents/<pair>/cNNNNN.js), one
 * latents page per pair loads the chunk of the latent shown. */
#define SV_REPORT_LATENT_CHUNK 128

typedef struct {
    int pairs;     /* records in all_eval_results.json */
    int pages;     /* pair pages written (status ok) */
    int failed, missing;
    int charts;    /* 1: plotly.min.js shipped with the report; 0: tables only */
    int latent_pages; /* pairs with latent pages (a readable feature file) */
    char plotly[512]; /* where plotly.min.js came from (empty when not found) */
} sv_report_stats;

/* Writes OUT_DIR/report/. plotly_js: path of plotly.min.js, or NULL to look
 * for $SAEVAL_PLOTLY_JS, then report-assets/plotly.min.js next to the
 * running program. Without it the pages are written with tables only and
 * every chart slot says why (st->charts = 0); callers warn. */
sv_rc sv_report(const char *out_dir, const char *plotly_js, sv_report_stats *st);
/* The same; tokenizer: a tokenizer.json for the latent pages' text (NULL:
 * token ids are shown). */
sv_rc sv_report_ex(const char *out_dir, const char *plotly_js, const char *tokenizer, sv_report_stats *st);

/* Command-line glue, rank 0 only: the output directory is dir, else
 * CONFIG's output_dir; the tokenizer is tokenizer, else CONFIG's (both may
 * be NULL); writes the report and prints where it is (stdout) or why it
 * has no charts (stderr). The caller prints an error. */
sv_rc sv_report_cli(const char *config, const char *dir, const char *tokenizer);

#endif
