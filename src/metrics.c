/* The scalar metric table and finalization from the reduced sums. The
 * arithmetic of each finalize function is the definition in README
 * ("Metrics"); sums arrive in a fixed order, so results do not depend on
 * ranks or threads. */
#include "saeval/metrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double N_of(const sv_metric_sums *s) { return (double)s->ds_ints[SV_D_EVALUATED]; }

static double f_mse(const sv_metric_sums *s, const double *v) { (void)v; return s->p[SV_P_SSE] / N_of(s); }
static double f_ev(const sv_metric_sums *s, const double *v)
{
    const double N = N_of(s);
    if (N == 0) return NAN;
    double mean_sq = 0;
    for (int64_t i = 0; i < s->d_in; i++) {
        double mu = s->ds[i] / N;
        mean_sq += mu * mu;
    }
    double var = s->ds[s->d_in] / N - mean_sq;
    if (var < 1e-10) return v[SV_M_MSE] < 1e-10 ? 1.0 : 0.0;
    return 1.0 - v[SV_M_MSE] / var;
}
static double f_fvu(const sv_metric_sums *s, const double *v) { (void)s; return 1.0 - v[SV_M_EV]; }
#define PART_MEAN(name, slot) \
    static double name(const sv_metric_sums *s, const double *v) { (void)v; return s->p[slot] / N_of(s); }
PART_MEAN(f_ev_legacy, SV_P_LEGACY)
PART_MEAN(f_cossim, SV_P_COS)
PART_MEAN(f_l2_in, SV_P_NORM_IN)
PART_MEAN(f_l2_out, SV_P_NORM_OUT)
PART_MEAN(f_l2_ratio, SV_P_RATIO)
PART_MEAN(f_l1, SV_P_L1)
static double f_rrb(const sv_metric_sums *s, const double *v)
{
    (void)v;
    return s->ints[SV_I_UNITS] > 0 ? s->p[SV_P_RRB] / (double)s->ints[SV_I_UNITS] : NAN;
}
static double f_l0(const sv_metric_sums *s, const double *v) { (void)v; return (double)s->ints[SV_I_L0] / N_of(s); }
static double f_dead(const sv_metric_sums *s, const double *v)
{
    (void)v;
    const int64_t *firing = s->ints + sv_ints_firing(s->d_sae);
    int64_t n = 0;
    for (int64_t j = 0; j < s->d_sae; j++) n += firing[j] == 0;
    return (double)n;
}
static double f_dead_fraction(const sv_metric_sums *s, const double *v) { return v[SV_M_DEAD_FEATURES] / (double)s->d_sae; }
/* Dead by a usage threshold: latents whose density (firings / evaluated
 * tokens) is below dead_density_threshold (seed framework's definition). */
static double f_dead_below(const sv_metric_sums *s, const double *v)
{
    (void)v;
    const int64_t *firing = s->ints + sv_ints_firing(s->d_sae);
    const double N = N_of(s);
    int64_t n = 0;
    for (int64_t j = 0; j < s->d_sae; j++) {
        double dj = N > 0 ? (double)firing[j] / N : 0.0;
        n += dj < s->dead_density_threshold;
    }
    return (double)n / (double)s->d_sae;
}
static double f_tok_eval(const sv_metric_sums *s, const double *v) { (void)v; return (double)s->ds_ints[SV_D_EVALUATED]; }
static double f_tok_masked(const sv_metric_sums *s, const double *v) { (void)v; return (double)s->ds_ints[SV_D_MASKED]; }
static double f_tok_nonfinite(const sv_metric_sums *s, const double *v) { (void)v; return (double)s->ds_ints[SV_D_NONFINITE]; }
static double f_sequences(const sv_metric_sums *s, const double *v) { (void)v; return (double)s->n_seq; }

/* SAEBench "misc" group, from the firing counts. which: 0 alive, 1/2 over
 * 1%/10%, 3/4 the same normalized by the summed density. */
static double misc(const sv_metric_sums *s, int which)
{
    const int64_t *firing = s->ints + sv_ints_firing(s->d_sae);
    const double N = N_of(s);
    int64_t alive = 0, o1 = 0, o10 = 0;
    double dens_all = 0, dens1 = 0, dens10 = 0;
    for (int64_t j = 0; j < s->d_sae; j++) {
        double dj = N > 0 ? (double)firing[j] / N : 0.0;
        dens_all += dj;
        if (dj > 0) alive++;
        if (dj > 0.01) { o1++; dens1 += dj; }
        if (dj > 0.1) { o10++; dens10 += dj; }
    }
    switch (which) {
    case 0: return (double)alive / (double)s->d_sae;
    case 1: return (double)o1 / (double)s->d_sae;
    case 2: return (double)o10 / (double)s->d_sae;
    case 3: return dens_all > 0 ? dens1 / dens_all : 0.0;
    default: return dens_all > 0 ? dens10 / dens_all : 0.0;
    }
}
static double f_alive(const sv_metric_sums *s, const double *v) { (void)v; return misc(s, 0); }
static double f_freq1(const sv_metric_sums *s, const double *v) { (void)v; return misc(s, 1); }
static double f_freq10(const sv_metric_sums *s, const double *v) { (void)v; return misc(s, 2); }
static double f_nfreq1(const sv_metric_sums *s, const double *v) { (void)v; return misc(s, 3); }
static double f_nfreq10(const sv_metric_sums *s, const double *v) { (void)v; return misc(s, 4); }

#define RQ "reconstruction_quality"
const sv_metric sv_metrics[SV_M_COUNT] = {
    /* id                  group       key                              kind        finalize     flags      table: pos head width fmt scale   gen */
    {SV_M_MSE,            RQ,          "mse",                           SV_MK_NUM,  f_mse,       SV_MF_CSV, 2, "mse", 10, "%10.4g", 1, 2},
    {SV_M_EV,             RQ,          "explained_variance",            SV_MK_NUM,  f_ev,        SV_MF_CSV, 1, "expl_var", 8, "%8.4f", 1, 1},
    {SV_M_FVU,            RQ,          "fvu",                           SV_MK_NUM,  f_fvu,       SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_EV_LEGACY,      RQ,          "explained_variance_legacy",     SV_MK_NUM,  f_ev_legacy, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_COSSIM,         RQ,          "cossim",                        SV_MK_NUM,  f_cossim,    SV_MF_CSV, 3, "cossim", 7, "%7.4f", 1, 3},
    {SV_M_L2_IN,          "shrinkage", "l2_norm_in",                    SV_MK_NUM,  f_l2_in,     SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_L2_OUT,         "shrinkage", "l2_norm_out",                   SV_MK_NUM,  f_l2_out,    SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_L2_RATIO,       "shrinkage", "l2_ratio",                      SV_MK_NUM,  f_l2_ratio,  SV_MF_CSV, 6, "l2_rat", 7, "%7.4f", 1, 0},
    {SV_M_RRB,            "shrinkage", "relative_reconstruction_bias",  SV_MK_NUM,  f_rrb,       SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_L0,             "sparsity",  "l0",                            SV_MK_NUM,  f_l0,        SV_MF_CSV, 4, "l0", 7, "%7.2f", 1, 4},
    {SV_M_L1,             "sparsity",  "l1",                            SV_MK_NUM,  f_l1,        SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_DEAD_FEATURES,  "sparsity",  "dead_features",                 SV_MK_INT,  f_dead,      SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_DEAD_FRACTION,  "sparsity",  "dead_fraction",                 SV_MK_NUM,  f_dead_fraction, SV_MF_CSV, 5, "dead%", 6, "%6.2f", 100, 5},
    {SV_M_DEAD_BELOW_DENSITY, "sparsity", "dead_fraction_below_density", SV_MK_NUM, f_dead_below, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_L0_HIST,        "sparsity",  "l0_histogram",                  SV_MK_HIST, 0,           0,         0, 0, 0, 0, 0, 0},
    {SV_M_TOK_EVALUATED,  "token_stats", "tokens_evaluated",            SV_MK_INT,  f_tok_eval,  SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_TOK_MASKED,     "token_stats", "tokens_masked",               SV_MK_INT,  f_tok_masked, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_TOK_NONFINITE,  "token_stats", "tokens_nonfinite",            SV_MK_INT,  f_tok_nonfinite, 0,     0, 0, 0, 0, 0, 0},
    {SV_M_SEQUENCES,      "token_stats", "sequences",                   SV_MK_INT,  f_sequences, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_FRAC_ALIVE,     "misc",      "frac_alive",                    SV_MK_NUM,  f_alive,     SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_FREQ_1,         "misc",      "freq_over_1_percent",           SV_MK_NUM,  f_freq1,     SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_FREQ_10,        "misc",      "freq_over_10_percent",          SV_MK_NUM,  f_freq10,    SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_NFREQ_1,        "misc",      "normalized_freq_over_1_percent", SV_MK_NUM, f_nfreq1,    SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_NFREQ_10,       "misc",      "normalized_freq_over_10_percent", SV_MK_NUM, f_nfreq10,  SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    /* Written by geometry (output.c) and health: listed for the CSV and the table. */
    {SV_M_GEO_MAX_DEC,    "geometry",  "average_max_decoder_cosine_sim", SV_MK_EXTERNAL, 0, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_GEO_MAX_ENC,    "geometry",  "average_max_encoder_cosine_sim", SV_MK_EXTERNAL, 0, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_GEO_MEAN_ABS,   "geometry",  "decoder_mean_abs_cos",          SV_MK_EXTERNAL, 0, SV_MF_CSV, 7, "absorp", 6, "%6.3f", 1, 0},
    {SV_M_GEO_MEAN,       "geometry",  "decoder_mean_cos",              SV_MK_EXTERNAL, 0, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_GEO_OVER_09,    "geometry",  "decoder_pairs_over_0_9",        SV_MK_EXTERNAL, 0, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    {SV_M_GEO_OVER_099,   "geometry",  "decoder_pairs_over_0_99",       SV_MK_EXTERNAL, 0, SV_MF_CSV, 0, 0, 0, 0, 0, 0},
    /* The table's last column adds the rating string (merge.c). */
    {SV_M_QUALITY,        "health.quality_score", "score_out_of_4",     SV_MK_EXTERNAL, 0, SV_MF_CSV, 8, "quality", 0, "%.2f/4", 1, 0},
};

void sv_metrics_finalize(const sv_metric_sums *s, sv_pair_metrics *m)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < SV_M_COUNT; i++) {
        const sv_metric *r = &sv_metrics[i];
        m->val[r->id] = r->finalize ? r->finalize(s, m->val) : NAN;
    }
    m->d_sae = s->d_sae;
    m->firing_counts = s->ints + sv_ints_firing(s->d_sae);
    m->fired_sequences = s->ints + sv_ints_fired_seq(s->d_sae);
    m->l0_histogram = s->ints + sv_ints_hist(s->d_sae);
    m->hist_len = 0;
    for (int64_t v = 0; v <= s->d_sae; v++)
        if (m->l0_histogram[v]) m->hist_len = v + 1;
}

void sv_metrics_json(sv_jw *w, const sv_pair_metrics *m)
{
    const char *open = NULL;
    for (int i = 0; i < SV_M_COUNT; i++) {
        const sv_metric *r = &sv_metrics[i];
        if (r->kind == SV_MK_EXTERNAL) continue;
        if (!open || strcmp(open, r->group) != 0) {
            if (open) sv_jw_end(w);
            sv_jw_obj(w, r->group);
            open = r->group;
        }
        switch (r->kind) {
        case SV_MK_NUM: sv_jw_num(w, r->key, m->val[r->id]); break;
        case SV_MK_INT: sv_jw_int(w, r->key, (int64_t)m->val[r->id]); break;
        case SV_MK_HIST:
            sv_jw_arr(w, r->key);
            for (int64_t v = 0; v < m->hist_len; v++) sv_jw_int(w, NULL, m->l0_histogram[v]);
            sv_jw_end(w);
            break;
        default: break;
        }
    }
    if (open) sv_jw_end(w);
}

int sv_metric_path(const sv_metric *r, char *buf, size_t n)
{
    return snprintf(buf, n, "metrics.%s.%s", r->group, r->key);
}
