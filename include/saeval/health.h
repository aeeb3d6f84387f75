/* Health ratings of one (SAE, dataset) pair: two documented rubrics that
 * turn metrics into labels and points, each rating written with its inputs
 * so that a reader sees why. Definitions: README, "Health ratings". */
#ifndef SAEVAL_HEALTH_H
#define SAEVAL_HEALTH_H
#include <stdint.h>
#include "saeval/json.h"

typedef struct {
    double explained_variance; /* fraction */
    double mse_per_element;    /* mse / d_in */
    double cossim;
    double l0;
    double dead_fraction;
    double absorption;         /* decoder_mean_abs_cos, NaN if not computed */
    int is_topk;
    int64_t k;
    double model_params;       /* NaN when unknown */
} sv_health_in;

/* Writes the "health" group (key "health") into the current object. */
void sv_health_json(sv_jw *w, const sv_health_in *in);

#endif
