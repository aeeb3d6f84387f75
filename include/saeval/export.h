/* `saeval export --neuronpedia`: Neuronpedia dashboard batches from a
 * feature file (featfile.h). */
#ifndef SAEVAL_EXPORT_H
#define SAEVAL_EXPORT_H
#include <stdint.h>
#include "saeval/error.h"
#include "saeval/tokenizer.h"

typedef struct {
    const char *model_id;   /* Neuronpedia model id (e.g. "gemma-2-2b") */
    int64_t layer;
    const char *sae_set;    /* Neuronpedia source set name */
    int64_t batch_size;     /* features per batch file (default 128) */
    const char *tokenizer_path; /* for messages: a window id outside the tokenizer is an error */
} sv_np_opts;

/* Writes out_dir/batch-<k>.json (SAEDashboard's NeuronpediaDashboardBatch:
 * model_id, layer, sae_set, features[]) for every latent that fired, and
 * out_dir/skipped_indexes.json for those that never did. tok NULL: tokens
 * are shown as ids. *n_batches: files written. */
sv_rc sv_export_neuronpedia(const char *feat_path, const sv_tokenizer *tok, const sv_np_opts *o,
                            const char *out_dir, int64_t *n_batches);

#endif
