/* Metrics: the layout of the per-unit partial sums (declared once, used by
 * the driver, the reduction and finalization) and the table of scalar
 * metrics that drives the per-pair JSON, the CSV columns, the printed table
 * and the generalization table.
 *
 * Adding a scalar metric: accumulate what it needs (a new SV_P_ or SV_I_
 * slot, if the existing sums are not enough), then one row in the table of
 * src/metrics.c with its finalize function. Every change of a metric's
 * definition bumps SV_RESULT_VERSION, so that old result files are
 * recomputed instead of reused on resume. */
#ifndef SAEVAL_METRICS_H
#define SAEVAL_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/json.h"

/* Hashed into every pair's input_hash (plan.c). */
#define SV_RESULT_VERSION "saeval-result-v2"

/* Double partials of one SAE over one unit, summed in token order. */
enum { SV_P_SSE, SV_P_COS, SV_P_NORM_IN, SV_P_NORM_OUT, SV_P_RATIO, SV_P_L1, SV_P_LEGACY, SV_P_RRB,
       /* downstream sums (downstream.h), zero without a model */
       SV_P_DS_CE_CLEAN, SV_P_DS_CE_SAE, SV_P_DS_CE_ABL, SV_P_DS_KL_SAE, SV_P_DS_KL_ABL,
       SV_P_COUNT };
/* The reduction vector of a pass: the dataset's [sum_x (d_in), sum ||x||^2],
 * then SV_P_COUNT partials per SAE of the pass. With a transcoder in the
 * pass, the dataset part also holds [sum_y (d_out), sum ||y||^2] of
 * /targets: callers pass d_in + 1 + d_out as the dataset width. */
static inline size_t sv_part_len(int64_t d_in, int n_saes) { return (size_t)d_in + 1 + (size_t)n_saes * SV_P_COUNT; }
static inline size_t sv_part_sae(int64_t d_in, int k) { return (size_t)d_in + 1 + (size_t)k * SV_P_COUNT; }

/* Integer partials of one SAE (exact, summed with MPI_SUM):
 * [sum of L0, units, firing[d_sae], fired_sequences[d_sae], l0_hist[d_sae+1]]. */
enum { SV_I_L0, SV_I_UNITS, SV_I_DS_CE_TOKENS, SV_I_DS_KL_TOKENS, SV_I_HEAD };
static inline size_t sv_ints_len(int64_t d_sae) { return SV_I_HEAD + 3 * (size_t)d_sae + 1; }
static inline size_t sv_ints_firing(int64_t d_sae) { (void)d_sae; return SV_I_HEAD; }
static inline size_t sv_ints_fired_seq(int64_t d_sae) { return SV_I_HEAD + (size_t)d_sae; }
static inline size_t sv_ints_hist(int64_t d_sae) { return SV_I_HEAD + 2 * (size_t)d_sae; }

/* Integer counts of the dataset in a pass. */
enum { SV_D_EVALUATED, SV_D_MASKED, SV_D_NONFINITE, SV_D_COUNT };

/* Everything a finalize function may read: the reduced sums of one pair. */
typedef struct {
    int64_t d_in, d_sae, n_seq;  /* d_in: the width of ds (d_out of a transcoder's targets) */
    const double *ds;       /* [sum_x (d_in), sum ||x||^2]; a transcoder's: the same of /targets */
    const double *p;        /* this SAE's SV_P_COUNT partials */
    const int64_t *ints;    /* this SAE's sv_ints_len(d_sae) counts */
    const int64_t *ds_ints; /* SV_D_COUNT */
    double dead_density_threshold;
    int downstream;         /* the pair has the downstream metrics (a model was given) */
} sv_metric_sums;

/* Scalar metric ids, in table (= JSON) order. */
typedef enum {
    SV_M_MSE, SV_M_EV, SV_M_FVU, SV_M_EV_LEGACY, SV_M_COSSIM,
    SV_M_L2_IN, SV_M_L2_OUT, SV_M_L2_RATIO, SV_M_RRB,
    SV_M_L0, SV_M_L1, SV_M_DEAD_FEATURES, SV_M_DEAD_FRACTION, SV_M_DEAD_BELOW_DENSITY, SV_M_L0_HIST,
    SV_M_TOK_EVALUATED, SV_M_TOK_MASKED, SV_M_TOK_NONFINITE, SV_M_SEQUENCES,
    SV_M_FRAC_ALIVE, SV_M_FREQ_1, SV_M_FREQ_10, SV_M_NFREQ_1, SV_M_NFREQ_10,
    SV_M_CE_CLEAN, SV_M_CE_SAE, SV_M_CE_ABL, SV_M_CE_SCORE, SV_M_KL_SAE, SV_M_KL_ABL, SV_M_KL_SCORE,
    SV_M_DS_CE_TOKENS, SV_M_DS_KL_TOKENS,
    SV_M_GEO_MAX_DEC, SV_M_GEO_MAX_ENC, SV_M_GEO_MEAN_ABS, SV_M_GEO_MEAN, SV_M_GEO_OVER_09, SV_M_GEO_OVER_099,
    SV_M_QUALITY,
    SV_M_COUNT
} sv_metric_id;

typedef enum {
    SV_MK_NUM,      /* double, written %.17g */
    SV_MK_INT,      /* exact count, written as an integer */
    SV_MK_HIST,     /* the L0 histogram array */
    SV_MK_EXTERNAL  /* written by its own module (geometry, health): CSV/table only */
} sv_metric_kind;

enum { SV_MF_CSV = 1, SV_MF_DOWNSTREAM = 2 /* written only when the pair has a model */ };

typedef struct {
    sv_metric_id id;
    const char *group;  /* under "metrics" in the per-pair JSON ("health.quality_score": nested) */
    const char *key;
    sv_metric_kind kind;
    double (*finalize)(const sv_metric_sums *s, const double *val); /* val: earlier rows */
    unsigned flags;
    /* Printed table: column position (0: not shown), header, width, printf format, scale. */
    int table_pos;
    const char *table_head;
    int table_width;
    const char *table_fmt;
    double table_scale;
    /* Generalization table: position (0: not in it). */
    int gen_pos;
} sv_metric;

extern const sv_metric sv_metrics[SV_M_COUNT];

/* Final scalars of one (SAE, dataset) pair, by metric id (NaN for external
 * rows), and the arrays the JSON writes. */
typedef struct {
    double val[SV_M_COUNT];
    int64_t d_sae, hist_len;
    const int64_t *l0_histogram, *firing_counts, *fired_sequences;
    int downstream;
    const char *ds_model, *ds_hook; /* for eval_cfg when downstream */
    int64_t ds_sequences;           /* sequences the downstream metrics ran on */
} sv_pair_metrics;

void sv_metrics_finalize(const sv_metric_sums *s, sv_pair_metrics *m);

/* Writes the table-driven groups of "metrics" (reconstruction_quality ...
 * misc) into the current object. */
void sv_metrics_json(sv_jw *w, const sv_pair_metrics *m);

/* "metrics.<group>.<key>" of a row. Returns snprintf's count. */
int sv_metric_path(const sv_metric *r, char *buf, size_t n);

#endif
