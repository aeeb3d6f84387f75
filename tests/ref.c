/* Naive double-precision reference; see ref.h. Deliberately simple: one
 * token at a time, plain loops, no BLAS, nothing shared with src/. */
#include "ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int d_out_of(const ref_sae *s) { return s->d_out > 0 ? s->d_out : s->d_in; }

static double dec_norm(const ref_sae *s, int j)
{
    int o = d_out_of(s);
    double n2 = 0;
    for (int i = 0; i < o; i++) n2 += s->W_dec[(size_t)j * o + i] * s->W_dec[(size_t)j * o + i];
    return sqrt(n2);
}

/* Normalized encoder input of token x (before b_dec is subtracted). */
static void norm_input(const ref_sae *s, const double *x, double *in)
{
    int d = s->d_in;
    if (s->norm == REF_NORM_LAYER) {
        double mu = 0, var = 0;
        for (int i = 0; i < d; i++) mu += x[i];
        mu /= d;
        for (int i = 0; i < d; i++) var += (x[i] - mu) * (x[i] - mu);
        double sigma = sqrt(var / (d - 1));
        for (int i = 0; i < d; i++) in[i] = (x[i] - mu) / (sigma + 1e-5);
    } else if (s->norm == REF_NORM_CONST) {
        double n2 = 0;
        for (int i = 0; i < d; i++) n2 += x[i] * x[i];
        double c = n2 > 0 ? sqrt((double)d) / sqrt(n2) : 1.0; /* zero vector left as is */
        for (int i = 0; i < d; i++) in[i] = c * x[i];
    } else if (s->norm == REF_NORM_EXPAVG) {
        for (int i = 0; i < d; i++) in[i] = s->scale * x[i];
    } else {
        for (int i = 0; i < d; i++) in[i] = x[i];
    }
}

/* Map a reconstruction in normalized space back to the space of x. */
static void norm_output(const ref_sae *s, const double *x, double *xh)
{
    int d = s->d_in;
    if (s->norm == REF_NORM_LAYER) {
        double mu = 0, var = 0;
        for (int i = 0; i < d; i++) mu += x[i];
        mu /= d;
        for (int i = 0; i < d; i++) var += (x[i] - mu) * (x[i] - mu);
        double sigma = sqrt(var / (d - 1));
        for (int i = 0; i < d; i++) xh[i] = xh[i] * sigma + mu;
    } else if (s->norm == REF_NORM_CONST) {
        double n2 = 0;
        for (int i = 0; i < d; i++) n2 += x[i] * x[i];
        double c = n2 > 0 ? sqrt((double)d) / sqrt(n2) : 1.0;
        for (int i = 0; i < d; i++) xh[i] = xh[i] / c;
    } else if (s->norm == REF_NORM_EXPAVG) {
        for (int i = 0; i < d; i++) xh[i] = xh[i] / s->scale;
    }
}

void ref_preacts(const ref_sae *s, const double *x, double *h, double *gate)
{
    int d = s->d_in, m = s->d_sae;
    double *xp = malloc((size_t)d * sizeof(double));
    norm_input(s, x, xp);
    if (s->apply_b_dec)
        for (int i = 0; i < d; i++) xp[i] -= s->b_dec[i];
    for (int j = 0; j < m; j++) {
        if (s->arch == REF_GATED) {
            double g = 0, mag = 0, e = exp(s->r_mag[j]);
            for (int i = 0; i < d; i++) {
                g += xp[i] * s->W_enc[(size_t)i * m + j];
                mag += xp[i] * (s->W_enc[(size_t)i * m + j] * e);
            }
            if (gate) gate[j] = g + s->b_gate[j];
            h[j] = mag + s->b_mag[j];
        } else {
            double a = 0;
            for (int i = 0; i < d; i++) a += xp[i] * s->W_enc[(size_t)i * m + j];
            h[j] = a + s->b_enc[j];
            if (s->arch == REF_TOPK && s->rescale) h[j] *= dec_norm(s, j);
        }
    }
    free(xp);
}

/* Indices of the k largest h, lower index first on ties: chosen[j] = 1. */
static void topk_select(const double *h, int m, int k, unsigned char *chosen)
{
    memset(chosen, 0, (size_t)m);
    for (int r = 0; r < k && r < m; r++) {
        int best = -1;
        for (int j = 0; j < m; j++)
            if (!chosen[j] && (best < 0 || h[j] > h[best])) best = j;
        if (best < 0) break;
        chosen[best] = 1;
    }
}

/* Per group of m/k latents, the index of the largest ReLU(h), lower first. */
static void groupmax_select(const double *h, int m, int k, unsigned char *chosen)
{
    memset(chosen, 0, (size_t)m);
    int g = m / k;
    for (int q = 0; q < k; q++) {
        int best = q * g;
        double bv = h[best] > 0 ? h[best] : 0.0;
        for (int j = q * g + 1; j < (q + 1) * g; j++) {
            double v = h[j] > 0 ? h[j] : 0.0;
            if (v > bv) { best = j; bv = v; }
        }
        chosen[best] = 1;
    }
}

void ref_forward(const ref_sae *s, const double *x, double *f, double *xhat)
{
    int d = d_out_of(s), m = s->d_sae;
    double *h = malloc((size_t)m * sizeof(double));
    double *g = malloc((size_t)m * sizeof(double));
    unsigned char *chosen = malloc((size_t)m);
    ref_preacts(s, x, h, g);
    if (s->arch == REF_TOPK) topk_select(h, m, s->k, chosen);
    if (s->arch == REF_SIGNED_TOPK) {
        double *a = malloc((size_t)m * sizeof(double));
        for (int j = 0; j < m; j++) a[j] = fabs(h[j]);
        topk_select(a, m, s->k, chosen);
        free(a);
    }
    if (s->arch == REF_GROUPMAX) groupmax_select(h, m, s->k, chosen);
    for (int j = 0; j < m; j++) {
        double relu = h[j] > 0 ? h[j] : 0.0;
        switch (s->arch) {
        case REF_STANDARD: f[j] = relu; break;
        case REF_JUMPRELU: f[j] = h[j] > s->threshold[j] ? relu : 0.0; break;
        case REF_GATED: f[j] = g[j] > 0 ? relu : 0.0; break;
        case REF_TOPK: f[j] = chosen[j] ? relu : 0.0; break; /* rescale: the rescaled value, as SAELens reports it */
        case REF_SIGNED_TOPK: f[j] = chosen[j] ? h[j] : 0.0; break;
        case REF_GROUPMAX: f[j] = chosen[j] ? relu : 0.0; break;
        }
    }
    for (int i = 0; i < d; i++) {
        double a = s->b_dec[i];
        for (int j = 0; j < m; j++) {
            /* rescale_acts_by_decoder_norm: SAELens's decoder divides the
             * reported (rescaled) activation by the decoder norm. */
            double fj = s->arch == REF_TOPK && s->rescale && f[j] != 0 ? f[j] / dec_norm(s, j) : f[j];
            a += fj * s->W_dec[(size_t)j * d + i];
        }
        xhat[i] = a;
    }
    norm_output(s, x, xhat);
    if (s->W_skip)
        for (int i = 0; i < d; i++) {
            double a = 0;
            for (int c = 0; c < s->d_in; c++) a += s->W_skip[(size_t)i * s->d_in + c] * x[c];
            xhat[i] += a;
        }
    free(h);
    free(g);
    free(chosen);
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

double ref_margin(const ref_sae *s, const double *x)
{
    int m = s->d_sae;
    double *h = malloc((size_t)m * sizeof(double));
    double *g = malloc((size_t)m * sizeof(double));
    double best = INFINITY;
    ref_preacts(s, x, h, g);
    for (int j = 0; j < m; j++) {
        switch (s->arch) {
        case REF_STANDARD: best = fmin(best, fabs(h[j])); break;
        case REF_JUMPRELU:
            best = fmin(best, fabs(h[j]));
            best = fmin(best, fabs(h[j] - s->threshold[j]));
            break;
        case REF_GATED:
            best = fmin(best, fabs(g[j]));
            if (g[j] > 0) best = fmin(best, fabs(h[j]));
            break;
        case REF_TOPK: case REF_SIGNED_TOPK: case REF_GROUPMAX: break;
        }
    }
    if (s->arch == REF_SIGNED_TOPK) {
        for (int j = 0; j < m; j++) h[j] = fabs(h[j]);
        qsort(h, (size_t)m, sizeof(double), cmp_desc);
        int k = s->k < m ? s->k : m;
        for (int r = 0; r < k; r++) best = fmin(best, h[r]);
        if (k < m) best = fmin(best, h[k - 1] - h[k]);
    }
    if (s->arch == REF_GROUPMAX) {
        int g = m / s->k;
        for (int q = 0; q < s->k; q++) {
            double b1 = -INFINITY, b2 = -INFINITY;
            for (int j = q * g; j < (q + 1) * g; j++) {
                double v = h[j] > 0 ? h[j] : 0.0;
                best = fmin(best, fabs(h[j]));
                if (v > b1) { b2 = b1; b1 = v; } else if (v > b2) b2 = v;
            }
            if (g > 1 && b1 > 0) best = fmin(best, b1 - b2);
        }
    }
    if (s->arch == REF_TOPK) {
        qsort(h, (size_t)m, sizeof(double), cmp_desc);
        int k = s->k < m ? s->k : m;
        for (int r = 0; r < k; r++) best = fmin(best, fabs(h[r]));
        if (k < m && h[k - 1] > 0) best = fmin(best, h[k - 1] - h[k]);
    }
    free(h);
    free(g);
    return best;
}

int ref_eval(const ref_sae *s, const ref_data *dt, ref_metrics *m)
{
    /* d: the dimension of the compared vectors y (targets, or x itself). */
    const int d = d_out_of(s), di = dt->d_in, M = s->d_sae;
    const int B = dt->legacy_batch_sequences;
    memset(m, 0, sizeof *m);
    if (di != s->d_in || B < 1) return -1;
    if (d != di && (!dt->y || s->apply_b_dec || s->norm != REF_NORM_NONE)) return -1;
    if ((s->arch == REF_GROUPMAX) && (s->k < 1 || M % s->k != 0)) return -1;
    const double *Y = dt->y ? dt->y : dt->x;
    m->d_sae = M;
    m->sequences = dt->n_seq;
    m->l0_histogram = calloc((size_t)M + 1, sizeof(int64_t));
    m->firing_counts = calloc((size_t)M, sizeof(int64_t));
    m->feature_density = calloc((size_t)M, sizeof(double));
    m->consistent_activation_heuristic = calloc((size_t)M, sizeof(double));
    m->encoder_norm = calloc((size_t)M, sizeof(double));
    m->encoder_bias = calloc((size_t)M, sizeof(double));
    m->encoder_decoder_cosine_sim = calloc((size_t)M, sizeof(double));
    int64_t *fired_seq = calloc((size_t)M, sizeof(int64_t));
    unsigned char *fired_here = calloc((size_t)M, 1);
    double *f = malloc((size_t)M * sizeof(double));
    double *xh = malloc((size_t)d * sizeof(double));
    double *mu_b = malloc((size_t)d * sizeof(double));
    double *mu = calloc((size_t)d, sizeof(double));

    /* Token counts and the global mean. */
    int64_t N = 0;
    for (int64_t t = 0; t < dt->n_tokens; t++) {
        if (dt->mask && dt->mask[t]) { m->tokens_masked++; continue; }
        N++;
        for (int i = 0; i < d; i++) mu[i] += Y[(size_t)t * d + i];
    }
    m->tokens_evaluated = N;
    for (int i = 0; i < d; i++) mu[i] /= (double)N;
    double var = 0; /* population variance: mean ||x - mu||^2 */
    for (int64_t t = 0; t < dt->n_tokens; t++) {
        if (dt->mask && dt->mask[t]) continue;
        for (int i = 0; i < d; i++) {
            double v = Y[(size_t)t * d + i] - mu[i];
            var += v * v;
        }
    }
    var /= (double)N;

    double sse = 0, cos_sum = 0, nin = 0, nout = 0, ratio = 0, legacy = 0, l1 = 0, rrb = 0;
    int64_t l0_sum = 0, rrb_batches = 0;
    for (int64_t s0 = 0; s0 < dt->n_seq; s0 += B) {
        int64_t s1 = s0 + B < dt->n_seq ? s0 + B : dt->n_seq;
        /* Batch mean over evaluated tokens. */
        int64_t nb = 0;
        for (int i = 0; i < d; i++) mu_b[i] = 0;
        for (int64_t t = dt->seq_off[s0]; t < dt->seq_off[s1]; t++) {
            if (dt->mask && dt->mask[t]) continue;
            nb++;
            for (int i = 0; i < d; i++) mu_b[i] += Y[(size_t)t * d + i];
        }
        if (nb == 0) continue;
        for (int i = 0; i < d; i++) mu_b[i] /= (double)nb;
        double b_xh2 = 0, b_dot = 0;
        for (int64_t q = s0; q < s1; q++) {
            memset(fired_here, 0, (size_t)M);
            for (int64_t t = dt->seq_off[q]; t < dt->seq_off[q + 1]; t++) {
                if (dt->mask && dt->mask[t]) continue;
                ref_forward(s, dt->x + (size_t)t * di, f, xh);
                const double *x = Y + (size_t)t * d; /* what xh is compared with */
                double e = 0, nx2 = 0, nh2 = 0, dot = 0, dm = 0;
                for (int i = 0; i < d; i++) {
                    e += (x[i] - xh[i]) * (x[i] - xh[i]);
                    nx2 += x[i] * x[i];
                    nh2 += xh[i] * xh[i];
                    dot += x[i] * xh[i];
                    dm += (x[i] - mu_b[i]) * (x[i] - mu_b[i]);
                }
                double nx = sqrt(nx2), nh = sqrt(nh2);
                sse += e;
                cos_sum += (nx == 0 || nh == 0) ? 0.0 : dot / (nx * nh);
                nin += nx;
                nout += nh;
                ratio += nx < 1e-4 ? 1.0 : nh / nx;
                legacy += 1.0 - e / dm;
                b_xh2 += nh2;
                b_dot += dot;
                int l0 = 0;
                for (int j = 0; j < M; j++) {
                    if (f[j] == 0) continue;
                    l0++;
                    l1 += fabs(f[j]);
                    m->firing_counts[j]++;
                    if (!fired_here[j]) { fired_here[j] = 1; fired_seq[j]++; }
                }
                l0_sum += l0;
                m->l0_histogram[l0]++;
            }
        }
        rrb += (b_xh2 / (double)nb) / (b_dot / (double)nb);
        rrb_batches++;
    }

    m->mse = sse / (double)N;
    if (var < 1e-10) m->explained_variance = m->mse < 1e-10 ? 1.0 : 0.0;
    else m->explained_variance = 1.0 - m->mse / var;
    m->fvu = 1.0 - m->explained_variance;
    m->explained_variance_legacy = legacy / (double)N;
    m->cossim = cos_sum / (double)N;
    m->l2_norm_in = nin / (double)N;
    m->l2_norm_out = nout / (double)N;
    m->l2_ratio = ratio / (double)N;
    m->relative_reconstruction_bias = rrb_batches ? rrb / (double)rrb_batches : NAN;
    m->l0 = (double)l0_sum / (double)N;
    m->l1 = l1 / (double)N;
    for (int j = 0; j < M; j++)
        if (m->firing_counts[j] == 0) m->dead_features++;
    m->dead_fraction = (double)m->dead_features / (double)M;
    {
        const double thr = dt->dead_density_threshold > 0 ? dt->dead_density_threshold : 1e-6;
        int below = 0;
        for (int j = 0; j < M; j++)
            if ((double)m->firing_counts[j] / (double)N < thr) below++;
        m->dead_fraction_below_density = (double)below / (double)M;
    }
    m->hist_len = 0;
    for (int v = 0; v <= M; v++)
        if (m->l0_histogram[v]) m->hist_len = v + 1;

    for (int j = 0; j < M; j++) {
        m->feature_density[j] = (double)m->firing_counts[j] / (double)N;
        m->consistent_activation_heuristic[j] =
            fired_seq[j] > 0 ? (double)m->firing_counts[j] / (double)fired_seq[j] : -1.0;
        /* With d_out != d_in encoder and decoder live in different spaces:
         * their cosine is reported as 0. */
        double ne = 0, nd = 0, dot = 0;
        for (int i = 0; i < di; i++) {
            double we = s->W_enc[(size_t)i * M + j];
            ne += we * we;
            if (d == di) {
                double wd = s->W_dec[(size_t)j * d + i];
                nd += wd * wd;
                dot += we * wd;
            }
        }
        m->encoder_norm[j] = sqrt(ne);
        m->encoder_bias[j] = s->arch == REF_GATED ? s->b_mag[j] : s->b_enc[j];
        m->encoder_decoder_cosine_sim[j] = (ne == 0 || nd == 0) ? 0.0 : dot / (sqrt(ne) * sqrt(nd));
    }
    free(fired_seq);
    free(fired_here);
    free(f);
    free(xh);
    free(mu_b);
    free(mu);
    return 0;
}

void ref_metrics_free(ref_metrics *m)
{
    free(m->l0_histogram);
    free(m->firing_counts);
    free(m->feature_density);
    free(m->consistent_activation_heuristic);
    free(m->encoder_norm);
    free(m->encoder_bias);
    free(m->encoder_decoder_cosine_sim);
    memset(m, 0, sizeof *m);
}
