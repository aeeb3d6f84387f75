/* JSON emitter, atomic writes and result files. */
#include "saeval/output.h"
#include "saeval/arch.h"
#include "saeval/health.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *sv_pair_path(const char *out_dir, const char *sae_id, const char *dataset)
{
    size_t n = strlen(out_dir) + strlen(sae_id) + strlen(dataset) + 16;
    char *p = sv_malloc(n);
    if (!p) return NULL;
    int k = snprintf(p, n, "%s/", out_dir);
    /* An id that is a path suffix ("a/sae") stays one file name ("a-sae"). */
    for (const char *c = sae_id; *c; c++) p[k++] = *c == '/' ? '-' : *c;
    snprintf(p + k, n - (size_t)k, "__%s.json", dataset);
    return p;
}

static void write_cfg(sv_jw *w, const sv_sae *s)
{
    const sv_sae_cfg *c = &s->cfg;
    sv_jw_obj(w, "sae_cfg");
    sv_jw_str(w, "architecture", sv_arch_name(c->arch));
    sv_jw_int(w, "d_in", c->d_in);
    sv_jw_int(w, "d_sae", c->d_sae);
    if (c->transcoder || c->skip) { /* only then: other results keep their bytes */
        sv_jw_int(w, "d_out", sv_cfg_d_out(c));
        sv_jw_bool(w, "transcoder", c->transcoder);
        sv_jw_bool(w, "skip_connection", c->skip);
    }
    if (sv_arch_has(c->arch, SV_AF_TOPK)) {
        sv_jw_int(w, "k", c->k);
        sv_jw_bool(w, "rescale_acts_by_decoder_norm", c->rescale_acts_by_decoder_norm);
    }
    sv_jw_bool(w, "apply_b_dec_to_input", c->apply_b_dec_to_input);
    sv_jw_str(w, "normalize_activations", sv_norm_name(c->normalize));
    if (c->normalize == SV_NORM_EXPECTED_AVERAGE_ONLY_IN) sv_jw_num(w, "scaling_factor", s->scaling_factor);
    sv_jw_str(w, "dtype", c->dtype);
    sv_jw_end(w);
}

static void write_geometry(sv_jw *w, const sv_geometry *g)
{
    if (!g) { /* config "geometry": false */
        sv_jw_null(w, "geometry");
        return;
    }
    sv_jw_obj(w, "geometry");
    sv_jw_num(w, "average_max_decoder_cosine_sim", g->average_max_decoder_cos);
    sv_jw_num(w, "average_max_encoder_cosine_sim", g->average_max_encoder_cos);
    sv_jw_num(w, "decoder_mean_abs_cos", g->decoder_mean_abs_cos);
    sv_jw_num(w, "decoder_mean_cos", g->decoder_mean_cos);
    sv_jw_arr(w, "decoder_cos_histogram");
    for (int b = 0; b < SV_GEOM_BINS; b++) sv_jw_int(w, NULL, g->hist[b]);
    sv_jw_end(w);
    sv_jw_int(w, "decoder_pairs_over_0_9", g->pairs_over_0_9);
    sv_jw_int(w, "decoder_pairs_over_0_99", g->pairs_over_0_99);
    sv_jw_arr(w, "top_decoder_pairs");
    for (int k = 0; k < g->n_top; k++) {
        sv_jw_arr(w, NULL);
        sv_jw_int(w, NULL, g->top[k].j);
        sv_jw_int(w, NULL, g->top[k].l);
        sv_jw_num(w, NULL, g->top[k].cos);
        sv_jw_end(w);
    }
    sv_jw_end(w);
    sv_jw_end(w);
}

sv_rc sv_pair_json(sv_jw *w, const char *sae_id, const char *dataset, const sv_sae *s,
                   const sv_config *c, const sv_pair_metrics *m, const sv_geometry *g,
                   double model_params, uint64_t input_hash)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)input_hash);
    const int64_t d_sae = s->cfg.d_sae;
    const double N = m->val[SV_M_TOK_EVALUATED];
    sv_jw_obj(w, NULL);
    sv_jw_str(w, "sae_id", sae_id);
    sv_jw_str(w, "dataset", dataset);
    sv_jw_str(w, "status", "ok");
    /* Identity of the inputs and options: a rerun skips this pair when it
     * matches (see plan.c). */
    sv_jw_str(w, "input_hash", hex);
    write_cfg(w, s);
    sv_jw_obj(w, "eval_cfg");
    sv_jw_str(w, "precision", sv_precision_name(c->precision));
    /* SAELens computes in the cfg's dtype; saeval in the run's precision
     * whatever the SAE's dtype (README "Precision"). Said only where the
     * dtype is narrower than float32, so other results keep their bytes. */
    if (strcmp(s->cfg.dtype, "float32") != 0 && strcmp(s->cfg.dtype, "float64") != 0) {
        char note[160];
        snprintf(note, sizeof note, "weights read from %.32s and computed in the run's precision %s, not in %.32s",
                 s->cfg.dtype, sv_precision_name(c->precision), s->cfg.dtype);
        sv_jw_str(w, "sae_dtype", note);
    }
    sv_jw_int(w, "legacy_batch_sequences", c->legacy_batch_sequences);
    sv_jw_bool(w, "geometry", c->geometry);
    sv_jw_str(w, "nonfinite", c->nonfinite_skip ? "skip" : "error");
    sv_jw_num(w, "dead_density_threshold", c->dead_density_threshold);
    sv_jw_arr(w, "exclude_token_ids");
    for (int i = 0; i < c->n_exclude; i++) sv_jw_int(w, NULL, c->exclude_ids[i]);
    sv_jw_end(w);
    if (m->downstream) { /* README "Downstream metrics": SAELens 6.18 evals.py, get_recons_loss */
        sv_jw_obj(w, "downstream");
        sv_jw_str(w, "model", m->ds_model);
        sv_jw_str(w, "hook_name", m->ds_hook);
        sv_jw_int(w, "downstream_sequences", c->downstream_sequences);
        sv_jw_int(w, "sequences_used", m->ds_sequences);
        sv_jw_str(w, "definition", "saelens: suffix from the stored activation; spliced = x_hat at unmasked positions, "
                                   "stored value at masked ones; ablation = zeros everywhere; CE at t where token t is "
                                   "unmasked and t < T-1; KL(p_clean || p_new) at unmasked t; token-weighted means");
        sv_jw_end(w);
    }
    sv_jw_end(w);

    sv_jw_obj(w, "metrics");
    sv_metrics_json(w, m);
    write_geometry(w, g);
    const double *v = m->val;
    sv_health_in hi = {v[SV_M_EV], v[SV_M_MSE] / (double)sv_cfg_d_out(&s->cfg), v[SV_M_COSSIM], v[SV_M_L0],
                       v[SV_M_DEAD_FRACTION], g ? g->decoder_mean_abs_cos : NAN, sv_arch_has(s->cfg.arch, SV_AF_TOPK),
                       s->cfg.k, model_params};
    sv_health_json(w, &hi);
    sv_jw_end(w);

    sv_jw_obj(w, "feature_metrics");
    sv_jw_arr(w, "firing_counts");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_int(w, NULL, m->firing_counts[j]);
    sv_jw_end(w);
    sv_jw_arr(w, "feature_density");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, N > 0 ? (double)m->firing_counts[j] / N : NAN);
    sv_jw_end(w);
    sv_jw_arr(w, "consistent_activation_heuristic");
    for (int64_t j = 0; j < d_sae; j++)
        sv_jw_num(w, NULL, m->fired_sequences[j] > 0
                               ? (double)m->firing_counts[j] / (double)m->fired_sequences[j] : -1.0);
    sv_jw_end(w);
    sv_jw_arr(w, "encoder_norm");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, s->enc_norm[j]);
    sv_jw_end(w);
    sv_jw_arr(w, "encoder_bias");
    const void *bias = sv_arch_has(s->cfg.arch, SV_AF_GATED) ? s->b_mag : s->b_enc;
    for (int64_t j = 0; j < d_sae; j++)
        sv_jw_num(w, NULL, s->precision == 64 ? ((const double *)bias)[j] : (double)((const float *)bias)[j]);
    sv_jw_end(w);
    sv_jw_arr(w, "encoder_decoder_cosine_sim");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, s->enc_dec_cos[j]);
    sv_jw_end(w);
    if (g) {
        sv_jw_arr(w, "max_decoder_cosine_sim");
        for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, g->max_decoder_cos[j]);
        sv_jw_end(w);
        sv_jw_arr(w, "max_encoder_cosine_sim");
        for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, g->max_encoder_cos[j]);
        sv_jw_end(w);
        /* saeval's own (SAELens has no such array): the latent behind each
         * max_decoder_cosine_sim, for the report's latent pages. */
        sv_jw_arr(w, "nearest_decoder_latent");
        for (int64_t j = 0; j < d_sae; j++) sv_jw_int(w, NULL, g->nearest_decoder[j]);
        sv_jw_end(w);
    }
    sv_jw_end(w);
    sv_jw_end(w);
    return w->oom ? sv_fail(SV_EINTERNAL, "out of memory writing results") : SV_OK;
}
