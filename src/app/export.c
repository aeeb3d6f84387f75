/* `saeval export --neuronpedia`: a feature file as Neuronpedia dashboard
 * batch JSON (SAEDashboard's NeuronpediaDashboardBatch schema). */
#include "saeval/export.h"
#include "saeval/featfile.h"
#include "saeval/fsutil.h" /* sv_mkdir_p, sv_write_atomic */
#include "saeval/json.h"   /* sv_jw_* */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const sv_featfile *ff;
    const sv_tokenizer *tok;
    const char *tok_path, *feat_path;
} np_ctx;

static sv_rc np_activation(sv_jw *w, const np_ctx *cx, const sv_featfile_ex *x, double bmin, double bmax,
                           double bcontains)
{
    int64_t n = x->len;
    int64_t *idp = sv_malloc((size_t)n * sizeof *idp);
    if (!idp) return SV_EINTERNAL;
    for (int64_t i = 0; i < n; i++) idp[i] = x->ids[i];
    sv_rc rc = SV_OK;
    /* the store's ids must belong to the tokenizer (-1: the store had no ids) */
    for (int64_t i = 0; i < n && cx->tok; i++)
        if (idp[i] >= sv_tokenizer_size(cx->tok))
            rc = sv_fail(SV_EINPUT, "%s: token id %" PRId64 " (token %" PRId64 ") is outside the vocabulary of %s (%" PRId64
                         " ids): the tokenizer does not belong to this model", cx->feat_path, idp[i],
                         x->start + i, cx->tok_path ? cx->tok_path : "the tokenizer", sv_tokenizer_size(cx->tok));
    char **s = NULL;
    if (rc == SV_OK) rc = sv_tok_render(cx->tok, idp, (size_t)n, 0, &s);
    free(idp);
    if (rc != SV_OK) return rc;
    sv_jw_obj(w, NULL);
    sv_jw_num(w, "bin_min", bmin);
    sv_jw_num(w, "bin_max", bmax);
    sv_jw_num(w, "bin_contains", bcontains);
    sv_jw_arr(w, "tokens");
    for (int64_t i = 0; i < n; i++) sv_jw_str(w, NULL, s[i]);
    sv_jw_end(w);
    sv_jw_arr(w, "values");
    for (int64_t i = 0; i < n; i++) sv_jw_num(w, NULL, x->values[i]);
    sv_jw_end(w);
    sv_jw_int(w, "qualifying_token_index", x->token - x->start);
    sv_jw_end(w);
    free(s);
    return SV_OK;
}

static void empty_arrays(sv_jw *w, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) { sv_jw_arr(w, keys[i]); sv_jw_end(w); }
}

static sv_rc np_feature(sv_jw *w, const np_ctx *cx, const sv_featfile_latent *l)
{
    const sv_featfile *ff = cx->ff;
    static const char *const align[] = {"neuron_alignment_indices", "neuron_alignment_values", "neuron_alignment_l1",
                                        "correlated_neurons_indices", "correlated_neurons_l1",
                                        "correlated_neurons_pearson", "correlated_features_indices",
                                        "correlated_features_l1", "correlated_features_pearson"};
    /* logit tables need the model's unembedding: not known here, left empty */
    static const char *const logits[] = {"neg_str", "neg_values", "pos_str", "pos_values"};
    static const char *const lhist[] = {"logits_hist_data_bar_heights", "logits_hist_data_bar_values"};
    sv_jw_obj(w, NULL);
    sv_jw_int(w, "feature_index", l->latent);
    empty_arrays(w, align, sizeof align / sizeof align[0]);
    empty_arrays(w, logits, sizeof logits / sizeof logits[0]);
    sv_jw_num(w, "frac_nonzero", l->frac_nonzero);
    int c = 0; /* up to the last nonzero bin: the one holding the max */
    for (int b = 0; b < sv_featfile_params(ff)->grid_bins; b++)
        if (l->hist[b] > 0) c = b + 1;
    sv_jw_arr(w, "freq_hist_data_bar_values"); /* bin centres, parallel to the heights */
    for (int b = 0; b < c; b++) sv_jw_num(w, NULL, (b + 0.5) * l->hist_width);
    sv_jw_end(w);
    sv_jw_arr(w, "freq_hist_data_bar_heights");
    for (int b = 0; b < c; b++) sv_jw_int(w, NULL, l->hist[b]);
    sv_jw_end(w);
    empty_arrays(w, lhist, 2);
    sv_jw_int(w, "n_prompts_total", sv_featfile_sequences(ff));
    sv_jw_int(w, "n_tokens_in_prompt", sv_featfile_width(ff));
    sv_jw_str(w, "dataset", sv_featfile_dataset(ff));
    sv_jw_arr(w, "decoder_weights_dist");
    sv_jw_end(w);
    sv_jw_arr_block(w, "activations");
    sv_rc rc = SV_OK;
    /* top activations as SAEDashboard labels them: bin_min -1, bin_max the max, bin_contains -1 */
    for (int k = 0; k < l->n_top && rc == SV_OK; k++) rc = np_activation(w, cx, &l->top[k], -1, l->max, -1);
    for (int g = sv_featfile_params(ff)->n_intervals - 1; g >= 0 && rc == SV_OK; g--) {
        const sv_featfile_interval *v = &l->iv[g];
        double frac = l->nonzero ? (double)v->count / (double)l->nonzero : 0;
        for (int k = 0; k < v->n && rc == SV_OK; k++) rc = np_activation(w, cx, &v->ex[k], v->lo, v->hi, frac);
    }
    sv_jw_end(w);
    sv_jw_end(w);
    return rc;
}

sv_rc sv_export_neuronpedia(const char *feat_path, const sv_tokenizer *tok, const sv_np_opts *o, const char *out_dir,
                            int64_t *n_batches)
{
    *n_batches = 0;
    sv_featfile *ff = NULL;
    sv_rc rc = sv_featfile_open(&ff, feat_path);
    if (rc != SV_OK) return rc;
    rc = sv_mkdir_p(out_dir);
    if (rc != SV_OK) { sv_featfile_close(ff); return rc; }
    int64_t bs = o->batch_size > 0 ? o->batch_size : 128, d = sv_featfile_params(ff)->d_sae;
    int64_t *skipped = sv_malloc((size_t)d * sizeof *skipped), ns = 0;
    if (!skipped) { sv_featfile_close(ff); return SV_EINTERNAL; }
    size_t plen = strlen(out_dir) + 64;
    char *path = sv_malloc(plen);
    if (!path) { free(skipped); sv_featfile_close(ff); return SV_EINTERNAL; }
    np_ctx cx = {ff, tok, o->tokenizer_path, feat_path};
    int64_t j = 0, batch = 0;
    while (rc == SV_OK && j < d) {
        sv_jw w;
        sv_jw_init(&w);
        sv_jw_obj(&w, NULL);
        sv_jw_str(&w, "model_id", o->model_id ? o->model_id : "");
        sv_jw_int(&w, "layer", o->layer);
        sv_jw_str(&w, "sae_set", o->sae_set ? o->sae_set : sv_featfile_sae_id(ff));
        sv_jw_arr_block(&w, "features");
        int64_t in_batch = 0;
        for (; j < d && in_batch < bs && rc == SV_OK; j++) {
            sv_featfile_latent l;
            rc = sv_featfile_read(ff, j, &l);
            if (rc != SV_OK) break;
            if (l.nonzero == 0 || l.n_top == 0) skipped[ns++] = j; /* nothing to show */
            else { rc = np_feature(&w, &cx, &l); in_batch++; }
            sv_featfile_latent_free(&l);
        }
        sv_jw_end(&w);
        sv_jw_end(&w);
        sv_jw_raw(&w, "\n", 1);
        if (rc == SV_OK && w.oom) rc = sv_fail(SV_EINTERNAL, "out of memory formatting a batch");
        if (rc == SV_OK && in_batch > 0) {
            snprintf(path, plen, "%s/batch-%" PRId64 ".json", out_dir, batch++);
            rc = sv_write_atomic(path, w.buf, w.len);
        }
        sv_jw_free(&w);
    }
    if (rc == SV_OK) {
        sv_jw w;
        sv_jw_init(&w);
        sv_jw_obj(&w, NULL);
        sv_jw_arr(&w, "skipped_indexes");
        for (int64_t k = 0; k < ns; k++) sv_jw_int(&w, NULL, skipped[k]);
        sv_jw_end(&w);
        sv_jw_end(&w);
        sv_jw_raw(&w, "\n", 1);
        snprintf(path, plen, "%s/skipped_indexes.json", out_dir);
        rc = w.oom ? sv_fail(SV_EINTERNAL, "out of memory") : sv_write_atomic(path, w.buf, w.len);
        sv_jw_free(&w);
    }
    *n_batches = batch;
    free(path);
    free(skipped);
    sv_featfile_close(ff);
    return rc;
}
