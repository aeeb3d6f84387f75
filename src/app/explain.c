/* `saeval explain`: which latents fire on a span of a store, and what each
 * of them is known for (its top examples, from the run's feature file). */
#include "saeval/explain.h"
#include "saeval/config.h"
#include "saeval/featfile.h"
#include "saeval/forward.h"
#include "saeval/plan.h" /* sv_sae_ids */
#include "saeval/arch.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/store.h"
#include "saeval/tokenizer.h"

#include <inttypes.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SPAN 65536

typedef struct { int32_t j; double v; } lat;

/* larger activation first, then the lower latent id */
static int cmp_lat(const void *a, const void *b)
{
    const lat *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* First occurrence of ids[0..n) inside one sequence of the store. */
static sv_rc find_ids(sv_store *st, const int64_t *ids, int64_t n, int64_t *seq, int64_t *pos0)
{
    if (!st->has_token_ids) return sv_fail(SV_EINPUT, "%s: /token_ids: the store has no token ids to search (give --sequence)", st->path);
    const int64_t chunk = 1 << 20;
    int64_t *buf = sv_malloc((size_t)(chunk + n) * sizeof *buf);
    if (!buf) return SV_EINTERNAL;
    sv_rc rc = SV_OK;
    int64_t s = 0;
    for (int64_t t0 = 0; t0 + n <= st->n_tokens && rc == SV_OK; t0 += chunk) {
        int64_t len = chunk + n - 1;
        if (t0 + len > st->n_tokens) len = st->n_tokens - t0;
        rc = sv_store_read_token_ids(st, t0, len, buf);
        for (int64_t i = 0; rc == SV_OK && i + n <= len && i < chunk; i++) {
            if (memcmp(buf + i, ids, (size_t)n * sizeof *ids) != 0) continue;
            int64_t t = t0 + i;
            while (st->seq_offsets[s + 1] <= t) s++;
            if (t + n > st->seq_offsets[s + 1]) continue; /* crosses into the next sequence */
            *seq = s;
            *pos0 = t - st->seq_offsets[s];
            free(buf);
            return SV_OK;
        }
    }
    free(buf);
    if (rc != SV_OK) return rc;
    return sv_fail(SV_EINPUT, "%s: the %" PRId64 " given token ids do not occur inside any sequence", st->path, n);
}

/* "…a b «c» d e…" from an example's window: 5 tokens each side at most. */
static void print_example(FILE *out, const sv_tokenizer *tok, const sv_featfile_ex *x)
{
    int64_t q = x->token - x->start, a = q - 5 > 0 ? q - 5 : 0, b = q + 6 < x->len ? q + 6 : x->len;
    int64_t ids[11];
    for (int64_t i = a; i < b; i++) ids[i - a] = x->ids[i];
    char **s = NULL;
    if (sv_tok_render(tok, ids, (size_t)(b - a), SV_TOK_ESCAPE, &s) != SV_OK) return;
    fputs(a > 0 ? "\"…" : "\"", out);
    for (int64_t i = a; i < b; i++) {
        if (i == q) fputs("«", out);
        fputs(s[i - a], out);
        if (i == q) fputs("»", out);
        if (!tok && i + 1 < b) fputc(' ', out);
    }
    fputs(b < x->len ? "…\"" : "\"", out);
    fprintf(out, " (%.4g)", (double)x->value);
    free(s);
}

static void summary(FILE *out, sv_featfile *ff, const sv_tokenizer *tok, int32_t j)
{
    fprintf(out, "    latent %d:", (int)j);
    sv_featfile_latent l;
    if (sv_featfile_read(ff, j, &l) != SV_OK) { fprintf(out, " unreadable: %s\n", sv_errmsg()); return; }
    fprintf(out, " max %.4g, fires on %.3g%% of tokens", (double)l.max, 100.0 * l.frac_nonzero);
    for (int k = 0; k < l.n_top && k < 2; k++) {
        fputs(k ? "; " : "; top: ", out);
        print_example(out, tok, &l.top[k]);
    }
    fputc('\n', out);
    sv_featfile_latent_free(&l);
}

static sv_rc explain_sae(FILE *out, const sv_config *cfg, int i, const char *sae_id, const char *out_dir,
                         const char *dataset, const sv_store *st, const float *x, int64_t n, int64_t pos0,
                         char **text, const unsigned char *masked, const sv_tokenizer *tok, int top)
{
    sv_sae sae;
    sv_rc rc = sv_sae_load(&sae, cfg->saes[i].path, cfg->precision, cfg->saes[i].has_scale, cfg->saes[i].scaling_factor);
    if (rc != SV_OK) return rc;
    if (sae.cfg.d_in != st->d_in) {
        rc = sv_fail(SV_EINPUT, "%s: d_in %" PRId64 " but store %s has d_in %" PRId64, cfg->saes[i].path,
                     (int64_t)sae.cfg.d_in, st->path, st->d_in);
        sv_sae_free(&sae);
        return rc;
    }
    sv_fwd w;
    int64_t rows = (n + SV_GEMM_ROWS - 1) / SV_GEMM_ROWS * SV_GEMM_ROWS;
    rc = sv_fwd_init(&w, &sae, rows);
    if (rc == SV_OK) rc = sv_fwd_run(&w, x, n);
    if (rc != SV_OK) { sv_fwd_free(&w); sv_sae_free(&sae); return rc; }

    char *fpath = sv_featfile_path(out_dir, sae_id, dataset);
    sv_featfile *ff = NULL;
    if (fpath && access(fpath, F_OK) == 0 && sv_featfile_open(&ff, fpath) != SV_OK)
        fprintf(out, "  (feature file %s unreadable: %s)\n", fpath, sv_errmsg());
    fprintf(out, "\n== SAE %s (%s, d_sae %" PRId64 ")%s%s\n", sae_id, sv_arch_name(sae.cfg.arch), (int64_t)sae.cfg.d_sae,
            ff ? ", examples from " : "", ff ? fpath : "");
    int32_t *shown = sv_malloc((size_t)(n * top + 1) * sizeof *shown);
    lat *l = sv_malloc((size_t)(sae.cfg.d_sae + 1) * sizeof *l);
    int64_t nshown = 0;
    if (!shown || !l) rc = SV_EINTERNAL;
    for (int64_t r = 0; r < n && rc == SV_OK; r++) {
        int64_t m = 0;
        for (int64_t e = w.rowptr[r]; e < w.rowptr[r + 1]; e++)
            if (w.val[e] != 0) { l[m].j = w.idx[e]; l[m].v = w.val[e]; m++; }
        qsort(l, (size_t)m, sizeof *l, cmp_lat);
        fprintf(out, "  %5" PRId64 "  %-18s", pos0 + r, text[r]);
        if (masked[r]) fputs(" (masked)", out);
        if (m == 0) fputs(" -", out);
        for (int64_t k = 0; k < m && k < top; k++) {
            fprintf(out, " %d:%.4g", (int)l[k].j, l[k].v);
            shown[nshown++] = l[k].j;
        }
        if (m > top) fprintf(out, " (+%" PRId64 " more)", m - top);
        fputc('\n', out);
    }
    if (rc == SV_OK && nshown && ff) {
        qsort(shown, (size_t)nshown, sizeof *shown, cmp_i32);
        fputs("  latents:\n", out);
        for (int64_t k = 0; k < nshown; k++)
            if (k == 0 || shown[k] != shown[k - 1]) summary(out, ff, tok, shown[k]);
    } else if (rc == SV_OK && nshown) {
        fprintf(out, "  (no feature file %s: no examples to show)\n", fpath ? fpath : "");
    }
    free(shown);
    free(l);
    sv_featfile_close(ff);
    free(fpath);
    sv_fwd_free(&w);
    sv_sae_free(&sae);
    return rc;
}

sv_rc sv_explain(const sv_explain_opts *o, FILE *out)
{
    sv_config cfg;
    sv_rc rc = sv_config_load(&cfg, o->config_path);
    if (rc != SV_OK) return rc;
    const sv_dataset_spec *ds = NULL;
    for (int i = 0; i < cfg.n_datasets; i++)
        if (strcmp(cfg.datasets[i].name, o->dataset) == 0) ds = &cfg.datasets[i];
    if (!ds) {
        rc = sv_fail(SV_EINPUT, "%s: datasets: no dataset named '%s'", o->config_path, o->dataset);
        sv_config_free(&cfg);
        return rc;
    }
    sv_store st;
    memset(&st, 0, sizeof st);
    sv_tokenizer *tok = NULL;
    float *x = NULL;
    int64_t *ids = NULL;
    char **text = NULL, **sae_ids = NULL, **paths = NULL;
    unsigned char *masked = NULL;
    int store_open = 0;
    rc = sv_store_open(&st, ds->path, MPI_COMM_SELF);
    if (rc != SV_OK) goto out;
    store_open = 1;
    const char *tok_path = o->tokenizer ? o->tokenizer : cfg.tokenizer; /* --tokenizer, else the config's */
    if (tok_path) rc = sv_tokenizer_load(&tok, tok_path);
    if (rc != SV_OK) goto out;

    int64_t seq = o->sequence, pos0 = o->pos0, pos1 = o->pos1;
    if (seq < 0) {
        if (!o->ids || o->n_ids < 1) { rc = sv_fail(SV_EINPUT, "explain: give --sequence S or --ids"); goto out; }
        rc = find_ids(&st, o->ids, o->n_ids, &seq, &pos0);
        if (rc != SV_OK) goto out;
        pos1 = pos0 + o->n_ids;
    }
    if (seq >= st.n_seq) {
        rc = sv_fail(SV_EINPUT, "%s: --sequence %" PRId64 ": out of range (the store has %" PRId64 " sequences)", st.path, seq, st.n_seq);
        goto out;
    }
    int64_t s0 = st.seq_offsets[seq], len = st.seq_offsets[seq + 1] - s0;
    if (pos1 < 0) pos1 = len;
    if (pos0 < 0 || pos0 >= pos1 || pos1 > len) {
        rc = sv_fail(SV_EINPUT, "%s: --positions %" PRId64 ":%" PRId64 ": out of range (sequence %" PRId64 " has %" PRId64 " tokens)",
                     st.path, pos0, pos1, seq, len);
        goto out;
    }
    int64_t n = pos1 - pos0;
    if (n > MAX_SPAN) { rc = sv_fail(SV_EINPUT, "explain: a span of %" PRId64 " tokens; at most %d", n, MAX_SPAN); goto out; }
    x = sv_malloc((size_t)n * (size_t)st.d_in * sizeof *x);
    ids = sv_malloc((size_t)n * sizeof *ids);
    masked = sv_calloc((size_t)n, 1);
    if (!x || !ids || !masked) { rc = SV_EINTERNAL; goto out; }
    rc = sv_store_read_rows(&st, s0 + pos0, n, x);
    if (rc == SV_OK && st.has_token_ids) rc = sv_store_read_token_ids(&st, s0 + pos0, n, ids);
    if (rc != SV_OK) goto out;
    if (!st.has_token_ids) for (int64_t r = 0; r < n; r++) ids[r] = -1;
    if (tok && st.has_token_ids) rc = sv_tokenizer_check_ids(tok, tok_path, ids, (size_t)n, st.path);
    if (rc != SV_OK) goto out;
    for (int64_t r = 0; r < n && st.has_token_ids; r++) {
        for (int k = 0; k < st.n_special; k++) if (ids[r] == st.special_ids[k]) masked[r] = 1;
        for (int k = 0; k < cfg.n_exclude; k++) if (ids[r] == cfg.exclude_ids[k]) masked[r] = 1;
    }
    rc = sv_tok_render(st.has_token_ids ? tok : NULL, ids, (size_t)n, SV_TOK_ESCAPE, &text);
    if (rc != SV_OK) goto out;
    if (!st.has_token_ids)
        for (int64_t r = 0; r < n; r++) text[r][0] = '\0'; /* no ids: nothing to show but positions */

    paths = sv_calloc((size_t)cfg.n_saes, sizeof *paths);
    sae_ids = sv_calloc((size_t)cfg.n_saes, sizeof *sae_ids);
    if (!paths || !sae_ids) { rc = SV_EINTERNAL; goto out; }
    for (int i = 0; i < cfg.n_saes; i++) paths[i] = cfg.saes[i].path;
    rc = sv_sae_ids(paths, cfg.n_saes, sae_ids);
    if (rc != SV_OK) goto out;
    fprintf(out, "dataset %s (%s), sequence %" PRId64 ", positions %" PRId64 ":%" PRId64 "; per token: latent:activation, largest first\n",
            ds->name, st.path, seq, pos0, pos1);
    const char *odir = o->output_dir ? o->output_dir : cfg.output_dir;
    int top = o->top_latents > 0 ? o->top_latents : 5;
    for (int i = 0; i < cfg.n_saes && rc == SV_OK; i++)
        rc = explain_sae(out, &cfg, i, sae_ids[i], odir, ds->name, &st, x, n, pos0, text, masked, tok, top);
out:
    if (sae_ids) for (int i = 0; i < cfg.n_saes; i++) free(sae_ids[i]);
    free(sae_ids);
    free(paths);
    free(text);
    free(masked);
    free(ids);
    free(x);
    sv_tokenizer_free(tok);
    if (store_open) sv_store_close(&st);
    sv_config_free(&cfg);
    return rc;
}
