/* Naive double-precision reference for saeval's forward pass and metrics.
 * Independent of src/: straight loops, everything in double, written from
 * the specification only. Used by test_e2e to produce expected results. */
#ifndef SAEVAL_TESTS_REF_H
#define SAEVAL_TESTS_REF_H
#include <stdint.h>

/* REF_SIGNED_TOPK: the k largest |h| keep their sign (sparsify's `signed`,
 * SAEBench's AbsTopK), no ReLU. REF_GROUPMAX: d_sae split into k contiguous
 * groups; in each, the largest ReLU(h) (lower index on ties) is kept.
 * batchtopk/matryoshka at inference are REF_JUMPRELU with the global
 * threshold broadcast to every latent. */
typedef enum { REF_STANDARD = 0, REF_TOPK, REF_JUMPRELU, REF_GATED, REF_SIGNED_TOPK, REF_GROUPMAX } ref_arch;
typedef enum { REF_NORM_NONE = 0, REF_NORM_LAYER, REF_NORM_CONST, REF_NORM_EXPAVG } ref_norm;

typedef struct {
    ref_arch arch;
    int d_in, d_sae;
    int k;              /* topk */
    int rescale;        /* topk: rescale_acts_by_decoder_norm */
    int apply_b_dec;    /* apply_b_dec_to_input */
    ref_norm norm;
    double scale;       /* expected_average_only_in factor s */
    /* Row-major weights, exactly the values the evaluator loads. */
    const double *W_enc;     /* [d_in][d_sae] */
    const double *b_enc;     /* [d_sae], NULL for gated */
    const double *W_dec;     /* [d_sae][d_in] */
    const double *b_dec;     /* [d_in] */
    const double *threshold; /* jumprelu */
    const double *b_gate, *r_mag, *b_mag; /* gated */
    /* Transcoders: the decoder writes d_out values (0 means d_in): W_dec is
     * [d_sae][d_out], b_dec [d_out]; apply_b_dec must be 0 and norm NONE
     * when d_out != d_in. W_skip [d_out][d_in] (or NULL) adds W_skip·x of
     * the raw input x to the reconstruction (sparsify's skip connection). */
    int d_out;
    const double *W_skip;
} ref_sae;

typedef struct {
    int64_t n_tokens;
    int d_in;
    const double *x;            /* [n_tokens][d_in], exactly the stored values */
    const unsigned char *mask;  /* [n_tokens], 1 = masked; NULL = none */
    int64_t n_seq;
    const int64_t *seq_off;     /* [n_seq+1] */
    int legacy_batch_sequences;
    double dead_density_threshold; /* 0: the default 1e-6 */
    /* Transcoders: targets y [n_tokens][d_out] that every reconstruction
     * metric compares with; NULL: y = x (d_out = d_in). */
    const double *y;
} ref_data;

typedef struct {
    double mse, explained_variance, fvu, explained_variance_legacy, cossim;
    double l2_norm_in, l2_norm_out, l2_ratio, relative_reconstruction_bias;
    double l0, l1, dead_fraction;
    double dead_fraction_below_density; /* latents with firings/N < threshold, over d_sae */
    int64_t dead_features;
    int64_t *l0_histogram;
    int hist_len;
    int64_t tokens_evaluated, tokens_masked, sequences;
    int d_sae;
    int64_t *firing_counts;
    double *feature_density, *consistent_activation_heuristic;
    double *encoder_norm, *encoder_bias, *encoder_decoder_cosine_sim;
} ref_metrics;

/* One token: f [d_sae] activations, xhat [d_out] final reconstruction.
 * topk with rescale: f holds h*||W_dec_j|| of the chosen latents (what
 * SAELens's encode returns and its l1 sums); the decoder divides it back. */
void ref_forward(const ref_sae *s, const double *x, double *f, double *xhat);

/* Pre-activations that decide which latents fire, for margin checks:
 * h [d_sae] (topk: rescaled by decoder norm when configured; gated: the
 * magnitude path) and gate [d_sae] (gated only, may be NULL otherwise). */
void ref_preacts(const ref_sae *s, const double *x, double *h, double *gate);

/* Smallest distance of any decision quantity of token x to its boundary
 * (0, threshold, gate 0, the k-th vs (k+1)-th topk value). */
double ref_margin(const ref_sae *s, const double *x);

/* All metrics of one (SAE, dataset) pair. Returns 0 on success. */
int ref_eval(const ref_sae *s, const ref_data *d, ref_metrics *m);
void ref_metrics_free(ref_metrics *m);

#endif
