/* The one writer of synthetic SAEs, shared by `saeval synth` (the demo sweep)
 * and `saeval bench` (timing data): SAELens 6 layout, cfg.json through
 * cJSON's printer, weights as float32 safetensors, the scaler through the
 * %.17g JSON writer. Stores are written with sv_store_write directly. */
#ifndef SAEVAL_SYNTHWRITE_H
#define SAEVAL_SYNTHWRITE_H
#include <stdint.h>
#include "saeval/error.h"

typedef struct {
    const char *architecture;  /* cfg.json "architecture" */
    int64_t d_in, d_sae;
    int64_t k;                 /* > 0: top-k ("k", "rescale_acts_by_decoder_norm": false) */
    double scaling_factor;     /* > 0: normalize_activations expected_average_only_in
                                  and activation_scaler.json; else "none" */
    /* Provenance under "metadata" when model_name is set. */
    const char *model_name, *hook_name, *dataset_path;
    int64_t context_size;
    /* [d_in][d_sae], [d_sae][d_in] and [d_sae] or [d_in] vectors, as doubles
     * rounded to float32; NULL: tensor not written. */
    const double *W_enc, *b_enc, *W_dec, *b_dec, *threshold, *b_gate, *r_mag, *b_mag;
} sv_synth_sae;

/* Writes dir/{cfg.json, sae_weights.safetensors[, activation_scaler.json]}
 * (dir is created). Tensors in a fixed order: W_enc b_enc W_dec b_dec
 * threshold b_gate r_mag b_mag. */
sv_rc sv_synth_write_sae(const char *dir, const sv_synth_sae *s);

/* Writes a cJSON tree (and deletes it) as cJSON prints it, plus a newline,
 * through sv_write_atomic: synth's cfg.json and config.json. */
struct cJSON;
sv_rc sv_synth_write_cjson(const char *path, struct cJSON *root);

#endif
