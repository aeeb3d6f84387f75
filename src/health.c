/* Health rubrics; thresholds and point rules are documented in README. */
#include "saeval/health.h"

#include <math.h>

typedef enum { SIZE_SMALL, SIZE_MEDIUM, SIZE_LARGE } sv_size;

static const char *tier4(double v, double a, double b, double c, int lower_is_better)
{
    /* excellent / good / fair-acceptable / worst along thresholds a<b<c */
    if (lower_is_better) return v < a ? "excellent" : v < b ? "good" : v < c ? "acceptable" : "problematic";
    return v > c ? "excellent" : v > b ? "good" : v > a ? "fair" : "poor";
}

/* Points of one quality criterion: excellent 2, good 1.5, fair 1, else 0. */
static double points_higher(double v, double fair, double good, double excellent, const char **label)
{
    if (v > excellent) { *label = "excellent"; return 2.0; }
    if (v > good) { *label = "good"; return 1.5; }
    if (v > fair) { *label = "fair"; return 1.0; }
    *label = "poor";
    return 0.0;
}

static double points_lower(double v, double excellent, double good, double fair, const char **label)
{
    if (v < excellent) { *label = "excellent"; return 2.0; }
    if (v < good) { *label = "good"; return 1.5; }
    if (v < fair) { *label = "fair"; return 1.0; }
    *label = "poor";
    return 0.0;
}

static void range2(sv_jw *w, const char *key, double lo, double hi)
{
    sv_jw_arr(w, key);
    sv_jw_num(w, NULL, lo);
    sv_jw_num(w, NULL, hi);
    sv_jw_end(w);
}

void sv_health_json(sv_jw *w, const sv_health_in *in)
{
    sv_size size = SIZE_MEDIUM;
    int known = !isnan(in->model_params);
    if (known) size = in->model_params < 1e9 ? SIZE_SMALL : in->model_params <= 1e10 ? SIZE_MEDIUM : SIZE_LARGE;
    static const char *size_names[] = {"small (< 1B)", "medium (1-10B)", "large (> 10B)"};
    static const double ev_band[3][2] = {{40, 60}, {60, 80}, {70, 90}};
    static const double l0_scale[3] = {0.7, 1.0, 1.3};
    const double ev = 100.0 * in->explained_variance, dead = 100.0 * in->dead_fraction, s = l0_scale[size];

    sv_jw_obj(w, "health");

    /* Rubric 1: ranges. */
    sv_jw_obj(w, "ranges");
    sv_jw_obj(w, "model_size");
    if (known) sv_jw_num(w, "model_params", in->model_params);
    else sv_jw_null(w, "model_params");
    sv_jw_str(w, "size_class", size_names[size]);
    sv_jw_bool(w, "assumed", !known);
    if (!known) sv_jw_str(w, "note", "model size unknown (set model_params in the store or the config); the medium row is used");
    sv_jw_end(w);

    sv_jw_obj(w, "explained_variance");
    sv_jw_num(w, "value_percent", ev);
    sv_jw_num(w, "minimum_percent", 40);
    sv_jw_num(w, "optimal_percent", 70);
    sv_jw_str(w, "label", !(ev >= 40) ? "below_minimum" : ev < 70 ? "acceptable" : "optimal");
    range2(w, "expected_band_percent", ev_band[size][0], ev_band[size][1]);
    sv_jw_str(w, "vs_expected_band", ev < ev_band[size][0] ? "below" : ev > ev_band[size][1] ? "above" : "inside");
    sv_jw_end(w);

    sv_jw_obj(w, "l0");
    sv_jw_num(w, "value", in->l0);
    sv_jw_arr(w, "focus");
    if (in->l0 < 10) sv_jw_str(w, NULL, "very_sparse");
    if (in->l0 >= 10 && in->l0 <= 50) sv_jw_str(w, NULL, "interpretability");
    if (in->l0 >= 50 && in->l0 <= 150) sv_jw_str(w, NULL, "balanced");
    if (in->l0 >= 100 && in->l0 <= 300) sv_jw_str(w, NULL, "reconstruction");
    if (in->l0 > 300 && in->l0 <= 500) sv_jw_str(w, NULL, "dense");
    if (in->l0 > 500) sv_jw_str(w, NULL, "sparsity_loses_meaning");
    sv_jw_end(w);
    sv_jw_num(w, "size_scale", s);
    range2(w, "minimum_range", 20 * s, 300 * s);
    range2(w, "optimal_range", 40 * s, 120 * s);
    int l0_opt = in->l0 >= 40 * s && in->l0 <= 120 * s, l0_min = in->l0 >= 20 * s && in->l0 <= 300 * s;
    sv_jw_str(w, "label", l0_opt ? "optimal" : l0_min ? "acceptable" : "outside_minimum");
    sv_jw_end(w);

    sv_jw_obj(w, "dead_features");
    sv_jw_num(w, "value_percent", dead);
    sv_jw_str(w, "label", tier4(dead, 5, 15, 25, 1));
    sv_jw_end(w);

    sv_jw_obj(w, "absorption");
    sv_jw_num(w, "decoder_mean_abs_cos", in->absorption);
    if (isnan(in->absorption)) sv_jw_null(w, "label");
    else sv_jw_str(w, "label", tier4(in->absorption, 0.15, 0.25, 0.35, 1));
    sv_jw_end(w);
    sv_jw_end(w); /* ranges */

    /* Rubric 2: quality score. */
    const char *l_mse, *l_cos, *l_ev, *l_l0, *l_dead;
    double p_mse = points_lower(in->mse_per_element, 0.01, 0.05, 0.10, &l_mse);
    double p_cos = points_higher(in->cossim, 0.85, 0.90, 0.95, &l_cos);
    double p_ev = points_higher(ev, 70, 80, 90, &l_ev);
    double recon = (p_mse + p_cos + p_ev) / 3.0;
    double p_l0;
    if (in->is_topk) {
        p_l0 = points_higher(in->k > 0 ? in->l0 / (double)in->k : 0, 0.5, 0.75, 0.9 - 1e-12, &l_l0);
    } else {
        p_l0 = l0_opt ? 2.0 : l0_min ? 1.0 : 0.0;
        l_l0 = l0_opt ? "excellent" : l0_min ? "fair" : "poor";
    }
    double p_dead = points_lower(dead, 30, 50, 70, &l_dead);
    double sparsity = (p_l0 + p_dead) / 2.0;
    double score4 = recon + sparsity;
    double scaled = score4 * 5.0 / 4.0;

    sv_jw_obj(w, "quality_score");
    sv_jw_obj(w, "reconstruction");
    sv_jw_num(w, "points", recon);
    sv_jw_num(w, "max_points", 2);
    sv_jw_obj(w, "mse_per_element");
    sv_jw_num(w, "value", in->mse_per_element);
    sv_jw_str(w, "label", l_mse);
    sv_jw_num(w, "points", p_mse);
    sv_jw_end(w);
    sv_jw_obj(w, "cossim");
    sv_jw_num(w, "value", in->cossim);
    sv_jw_str(w, "label", l_cos);
    sv_jw_num(w, "points", p_cos);
    sv_jw_end(w);
    sv_jw_obj(w, "explained_variance_percent");
    sv_jw_num(w, "value", ev);
    sv_jw_str(w, "label", l_ev);
    sv_jw_num(w, "points", p_ev);
    sv_jw_end(w);
    sv_jw_end(w);
    sv_jw_obj(w, "sparsity");
    sv_jw_num(w, "points", sparsity);
    sv_jw_num(w, "max_points", 2);
    sv_jw_obj(w, "l0");
    sv_jw_num(w, "value", in->l0);
    if (in->is_topk) { sv_jw_int(w, "k", in->k); sv_jw_num(w, "l0_over_k", in->l0 / (double)in->k); }
    sv_jw_str(w, "label", l_l0);
    sv_jw_num(w, "points", p_l0);
    sv_jw_end(w);
    sv_jw_obj(w, "dead_percent");
    sv_jw_num(w, "value", dead);
    sv_jw_str(w, "label", l_dead);
    sv_jw_num(w, "points", p_dead);
    sv_jw_end(w);
    sv_jw_end(w);
    sv_jw_obj(w, "interpretability");
    sv_jw_null(w, "points");
    sv_jw_num(w, "max_points", 1);
    sv_jw_str(w, "status", "not_assessed: interpretability cannot be judged from activations");
    sv_jw_end(w);
    sv_jw_num(w, "score_out_of_4", score4);
    sv_jw_num(w, "score_out_of_5_scaled", scaled);
    sv_jw_str(w, "rating", !(scaled >= 2.5) ? "poor" : scaled < 3.5 ? "fair" : scaled < 4.5 ? "good" : "excellent");
    sv_jw_end(w);

    sv_jw_end(w); /* health */
}
