/* Per-pair result objects (written through the JSON writer of json.h). */
#ifndef SAEVAL_OUTPUT_H
#define SAEVAL_OUTPUT_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"
#include "saeval/json.h"
#include "saeval/sae.h"
#include "saeval/config.h"
#include "saeval/geometry.h"

/* Final metrics of one (SAE, dataset) pair. */
typedef struct {
    double mse, explained_variance, fvu, explained_variance_legacy, cossim;
    double l2_norm_in, l2_norm_out, l2_ratio, relative_reconstruction_bias;
    double l0, l1, dead_fraction;
    int64_t dead_features, tokens_evaluated, tokens_masked, tokens_nonfinite, sequences;
    int64_t hist_len;          /* largest L0 seen + 1 (0 when no token) */
    const int64_t *l0_histogram;
    const int64_t *firing_counts;
    const int64_t *fired_sequences;
} sv_pair_metrics;

/* The per-pair JSON object (no trailing newline). g: the SAE's weight
 * geometry; model_params: NaN when unknown (health ratings). */
sv_rc sv_pair_json(sv_jw *w, const char *sae_id, const char *dataset, const sv_sae *s,
                   const sv_config *c, const sv_pair_metrics *m, const sv_geometry *g,
                   double model_params, uint64_t input_hash);

/* Path of a pair's result file. Caller frees. */
char *sv_pair_path(const char *out_dir, const char *sae_id, const char *dataset);

#endif
