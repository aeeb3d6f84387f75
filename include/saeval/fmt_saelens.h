/* SAELens format: DIR/cfg.json + DIR/sae_weights.safetensors
 * [+ DIR/activation_scaler.json]. */
#ifndef SAEVAL_FMT_SAELENS_H
#define SAEVAL_FMT_SAELENS_H
#include <stddef.h>
#include "saeval/sae.h"

/* The format row is sv_fmt_saelens (format.h). */

/* Parse cfg.json text (length n). Unknown keys ignored; pre-6.0 flat configs
 * accepted. `path` names the file in messages. */
sv_rc sv_sae_cfg_parse(sv_sae_cfg *c, const char *json, size_t n, const char *path);

#endif
