/* The per-pair feature file OUTPUT_DIR/<sae_id>__<dataset>.features.h5 and
 * its reader, and the Neuronpedia dashboard batch export.
 *
 * Layout (d = d_sae, N = top_n, I = n_intervals, K = interval_k, W = window
 * width, F = histogram bins; every per-latent array has the latent as its
 * first dimension, so a latent range is one hyperslab):
 *   root attributes: format "saeval-features-1", sae_id, dataset, d_sae,
 *     top_n, n_intervals, interval_k, histogram_bins, context_before,
 *     context_after (-1/-1: whole sequences), seed, tokens_evaluated,
 *     sequences, window_width
 *   /nonzero [d] int64, /max [d] float32, /hist_width [d] float64,
 *   /hist_counts [d,F] int64 (bin b: [b w, (b+1) w))
 *   /top_token [d,N] int64 (-1: empty slot), /top_value [d,N] float32,
 *   /top_window_start [d,N] int64, /top_window_len [d,N] int32,
 *   /top_window_ids [d,N,W] int32 (-1 padding), /top_window_values [d,N,W] float32
 *   /interval_lo, /interval_hi [d,I] float64, /interval_count [d,I] int64,
 *   /interval_token, _value, _window_start, _window_len [d,I,K],
 *   /interval_window_ids, _window_values [d,I,K,W]
 * Written by rank 0 after the merge, to a temporary name then renamed;
 * chunked by up to 64 latents (a power of two, about 1 MiB at most), each
 * chunk shuffled and deflated (level 1) by one of the ranks in turn. */
#ifndef SAEVAL_FEATFILE_H
#define SAEVAL_FEATFILE_H
#include <stdint.h>
#include "saeval/error.h"
#include "saeval/features.h"

#define SV_FEATFILE_FORMAT "saeval-features-1"

/* OUTPUT_DIR/<sae_id>__<dataset>.features.h5 ('/' in sae_id becomes '-'). Caller frees. */
char *sv_featfile_path(const char *out_dir, const char *sae_id, const char *dataset);

typedef struct {
    const char *sae_id, *dataset;
    int64_t n_sequences;
    int64_t window_width; /* the windows' W (sv_feat_windows.width) */
} sv_featfile_meta;

typedef struct sv_featfile_writer sv_featfile_writer;
sv_rc sv_featfile_create(sv_featfile_writer **out, const char *path, const sv_feat *f, const sv_featfile_meta *m);
/* The per-latent data of win's latent range [j0, j1), windows included. */
sv_rc sv_featfile_put(sv_featfile_writer *w, const sv_feat *f, const sv_feat_windows *win);
/* Collective sv_featfile_put: rank 0 passes its writer, the merged f and
 * the windows of [j0, j1); the other ranks a helper (below) and NULLs, and
 * filter a share of the chunks. Same return on every rank. */
sv_rc sv_featfile_put_coll(sv_featfile_writer *w, const sv_feat *f, const sv_feat_windows *win, int64_t j0,
                           int64_t j1, MPI_Comm comm);
/* A writer without a file, for the ranks other than 0 (free: sv_featfile_abort). */
sv_rc sv_featfile_helper(sv_featfile_writer **out, const sv_feat_params *p, int64_t window_width);
/* Close and rename into place (frees w, also on error). */
sv_rc sv_featfile_commit(sv_featfile_writer *w);
void sv_featfile_abort(sv_featfile_writer *w);

/* ---- reader ---- */
typedef struct {
    int64_t token, start;   /* token -1: empty slot */
    int32_t len;
    float value;
    int32_t *ids;           /* [W] */
    float *values;          /* [W] */
} sv_featfile_ex;

typedef struct {
    double lo, hi;
    int64_t count;
    int n;                  /* samples */
    sv_featfile_ex *ex;
} sv_featfile_interval;

typedef struct {
    int64_t latent, nonzero;
    float max;
    double frac_nonzero, hist_width;
    int64_t *hist;          /* [F] */
    int n_top;
    sv_featfile_ex *top;
    sv_featfile_interval *iv; /* [I] */
    void *mem_;             /* one allocation behind all the arrays */
} sv_featfile_latent;

typedef struct sv_featfile sv_featfile;
sv_rc sv_featfile_open(sv_featfile **out, const char *path);
void sv_featfile_close(sv_featfile *f);
const sv_feat_params *sv_featfile_params(const sv_featfile *f);
int64_t sv_featfile_tokens(const sv_featfile *f);
int64_t sv_featfile_sequences(const sv_featfile *f);
int64_t sv_featfile_width(const sv_featfile *f);
const char *sv_featfile_sae_id(const sv_featfile *f);
const char *sv_featfile_dataset(const sv_featfile *f);
sv_rc sv_featfile_read(sv_featfile *f, int64_t j, sv_featfile_latent *out);
void sv_featfile_latent_free(sv_featfile_latent *l);

#endif
