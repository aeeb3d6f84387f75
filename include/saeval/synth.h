/* Built-in synthetic sweep for the demo and tests. */
#ifndef SAEVAL_SYNTH_H
#define SAEVAL_SYNTH_H
#include <stdint.h>
#include "saeval/error.h"

/* Writes, deterministically from seed:
 *   DIR/stores/in_sample.h5, DIR/stores/oos_domain.h5, DIR/stores/oos_task.h5
 *   DIR/saes/<name>/{cfg.json,sae_weights.safetensors}   (all four architectures)
 *   DIR/config.json   (a saeval run config over all of the above, output_dir "results")
 * Serial: call on one process only. */
sv_rc sv_synth(const char *dir, uint64_t seed);

#endif
