/* OUTPUT_DIR/feature_metrics.h5: the per-latent arrays of every complete
 * pair of a sweep in one columnar HDF5 file, so that h5py/pandas read them
 * without parsing JSON:
 *   /pairs/sae_id, /pairs/dataset   fixed-length strings [n_pairs]
 *   /pairs/input_hash               uint64 [n_pairs]: each result's input_hash (a
 *                                   merge leaves a file that holds these pairs as it is)
 *   /pairs/offset                   int64 [n_pairs + 1]: pair q's latents are
 *                                   rows offset[q] .. offset[q+1]-1 of every array
 *   /firing_counts                  int64 [total latents]
 *   /feature_density, /consistent_activation_heuristic, /encoder_norm,
 *   /encoder_bias, /encoder_decoder_cosine_sim, /max_decoder_cosine_sim,
 *   /max_encoder_cosine_sim, /nearest_decoder_latent
 *                                   float64 [total latents] (NaN where a
 *                                   pair has no such array or a null value)
 * Pairs in all_eval_results order (SAE-major), complete ("ok") pairs only.
 * No timestamps and a fixed layout: the same results give the same bytes. */
#ifndef SAEVAL_FEATMETRICS_H
#define SAEVAL_FEATMETRICS_H
#include "saeval/config.h"
#include "saeval/error.h"
#include "saeval/plan.h"

/* Rank 0 only. ok[p] marks the pairs whose result file is complete. */
sv_rc sv_feature_metrics_write(const sv_config *c, const sv_plan *pl, const char *out_dir, const int *ok);

#endif
