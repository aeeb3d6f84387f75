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
#include "saeval/metrics.h"

/* The per-pair JSON object (no trailing newline). g: the SAE's weight
 * geometry; model_params: NaN when unknown (health ratings). */
sv_rc sv_pair_json(sv_jw *w, const char *sae_id, const char *dataset, const sv_sae *s,
                   const sv_config *c, const sv_pair_metrics *m, const sv_geometry *g,
                   double model_params, uint64_t input_hash);

/* Path of a pair's result file. Caller frees. */
char *sv_pair_path(const char *out_dir, const char *sae_id, const char *dataset);

#endif
