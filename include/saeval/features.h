/* Per-latent feature data, kept exactly in one pass and mergeable across
 * threads and ranks in any order:
 *   - top-N examples by activation value, ties broken by the lower global
 *     token index;
 *   - a histogram of the nonzero activations on a dyadic grid: F bins over
 *     [0, 2^e) where 2^e is the smallest power of two above the latent's max
 *     (when a larger value arrives the grid doubles and bins merge in pairs,
 *     so the counts never depend on the order the values came in);
 *   - interval samples: per grid bin the K tokens with the lowest keys
 *     key(seed, latent, token) (a splitmix64 hash: a counter-based random
 *     number); an interval is a run of grid bins, and its samples are the K
 *     lowest keys of its bins' samples (a lowest-K set merges exactly);
 *   - max, nonzero count, and the number of evaluated tokens (the firing
 *     fraction's denominator).
 * Context windows (token ids and the latent's values around each selected
 * example): captured during the pass when an example enters a list
 * (sv_feat_observe_rows), or filled afterwards (sv_feat_windows_fill*). */
#ifndef SAEVAL_FEATURES_H
#define SAEVAL_FEATURES_H
#include <stddef.h>
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"

typedef struct {
    int64_t d_sae;
    int top_n;        /* examples kept per latent (default 20) */
    int n_intervals;  /* interval groups from 0 to the max (default 10) */
    int interval_k;   /* samples per interval (default 5) */
    int grid_bins;    /* F, histogram bins over [0, 2^e) (default 32, even, >= 2 n_intervals) */
    int ctx_before, ctx_after; /* context window (default 5 and 5); both -1: whole sequence */
    uint64_t seed;    /* key of the interval samples (default 0) */
    int64_t window_width; /* W of the windows captured during the pass (sv_feat_observe_rows);
                           * 0 (default): none, windows come from sv_feat_windows_fill* */
} sv_feat_params;

typedef struct {
    int64_t token;  /* global token index in the store */
    float value;
    uint32_t key;   /* interval samples: high 32 bits of sv_feat_key (ties: lower token) */
} sv_feat_ex;

typedef struct sv_feat sv_feat;

void sv_feat_params_default(sv_feat_params *p, int64_t d_sae);
/* where names the config (file and key) in messages. */
sv_rc sv_feat_params_check(const sv_feat_params *p, const char *where);
/* Bytes of one accumulator: d_sae x (16 (N + F + F K) + 32 + 4 W (N + F K)),
 * the last term the captured windows (window_width W; 0 without). */
size_t sv_feat_mem(const sv_feat_params *p);

sv_rc sv_feat_new(sv_feat **out, const sv_feat_params *p);
void sv_feat_free(sv_feat *f);
const sv_feat_params *sv_feat_params_of(const sv_feat *f);

/* The sample key: splitmix64 of (seed, latent, token); see README. */
uint64_t sv_feat_key(uint64_t seed, int64_t latent, int64_t token);

/* Record latent j's activation v on a token (v <= 0 or non-finite: not a
 * firing, ignored). Not thread-safe: one accumulator per thread, merged. */
void sv_feat_observe(sv_feat *f, int64_t j, int64_t token, float v);
/* A tile: rows tokens token0.. (consecutive), latents j0..j0+ncols-1,
 * a[r * lda + c]. skip[r] nonzero: a masked token (may be NULL). */
void sv_feat_observe_tile(sv_feat *f, int64_t token0, int64_t rows, int64_t j0, int64_t ncols,
                          const float *a, size_t lda, const unsigned char *skip);
/* The forward pass's sparse output (sv_fwd: CSR rows, latents ascending
 * within a row): row r covers entries rowptr[r]..rowptr[r+1]-1 of idx/val. */
void sv_feat_observe_csr(sv_feat *f, int64_t token0, int64_t rows, const int64_t *rowptr, const int32_t *idx,
                         const double *val, const unsigned char *skip);
/* Rows of sparse activations held in memory during the pass: row r is
 * global token token[r] (ascending), in sequence seq[r] (seq_off: the
 * store's offsets); its latents idx[rowptr[r]..rowptr[r+1]) ascending, with
 * values val. A token without a row (masked, non-finite) has activation 0. */
typedef struct {
    int64_t rows;
    const int64_t *token, *seq, *seq_off, *rowptr;
    const int32_t *idx;
    const float *val;
} sv_feat_rows;
/* Observe rows [r0, r1) of R (as sv_feat_observe), and when an example
 * enters a top list or a sample set, copy its context window's values from
 * R at that moment (window_width > 0): every row of the examples' sequences
 * must be in R. Latent by latent (R's entries sorted by latent for the
 * call: 4 d_sae + 8 bytes per entry of R, freed on return); fails only
 * without that memory. */
sv_rc sv_feat_observe_rows(sv_feat *f, const sv_feat_rows *R, int64_t r0, int64_t r1);
/* Evaluated tokens seen (once per token, not per latent). */
void sv_feat_add_tokens(sv_feat *f, int64_t n);

/* dst := dst U src (same params). The result depends only on the union of
 * what both saw, so any merge tree gives the same state. */
sv_rc sv_feat_merge(sv_feat *dst, const sv_feat *src);

/* Flat byte image for MPI: pack, send, unpack-and-merge. It holds only the
 * entries and windows in use, so its size depends on the state. */
size_t sv_feat_pack_size(const sv_feat *f);
void sv_feat_pack(const sv_feat *f, void *buf);
sv_rc sv_feat_merge_packed(sv_feat *dst, const void *buf, size_t n);

/* Collective: every rank's accumulator merged into rank 0's (a binomial
 * tree of packed images of latent ranges, at most about 64 MiB each, each
 * preceded by its size; the result
 * does not depend on the tree). Other ranks' accumulators are left as they
 * were. Extra memory: sv_feat_reduce_mem on ranks with more than one rank. */
sv_rc sv_feat_reduce(sv_feat *f, MPI_Comm comm);
size_t sv_feat_reduce_mem(const sv_feat_params *p);
/* Collective: rank 0's state to every rank. */
sv_rc sv_feat_bcast(sv_feat *f, MPI_Comm comm);

/* ---- results (after all merges) ---- */
int64_t sv_feat_tokens(const sv_feat *f);
int64_t sv_feat_nonzero(const sv_feat *f, int64_t j);
float sv_feat_max(const sv_feat *f, int64_t j); /* 0 when the latent never fired */
/* Top examples of latent j, value descending then token ascending; returns
 * how many (<= top_n) were written to out. */
int sv_feat_top(const sv_feat *f, int64_t j, sv_feat_ex *out);
/* Histogram: bins 0..c-1 of width *width cover [0, max]; returns c (0 when
 * the latent never fired); counts[0..F) receives every bin's count. */
int sv_feat_hist(const sv_feat *f, int64_t j, double *width, int64_t *counts);
/* Interval i (0 <= i < n_intervals) of latent j: [*lo, *hi), *count
 * nonzero activations in it; samples (value descending, token ascending)
 * written to out (<= interval_k), returns their number (out NULL: none, 0). Grid bins are split
 * over intervals as evenly as possible: interval i holds bins
 * [floor(i c / n), floor((i+1) c / n)). */
int sv_feat_interval(const sv_feat *f, int64_t j, int i, double *lo, double *hi, int64_t *count,
                     sv_feat_ex *out);

/* ---- context windows ---- */
typedef struct {
    int64_t latent;
    int64_t token;      /* the example */
    int64_t start, len; /* window tokens [start, start + len), inside the sequence */
    int kind;           /* 0: top example (rank = index), 1: interval sample */
    int group;          /* rank in the top list, or the interval index */
    float value;
} sv_feat_win;

typedef struct {
    int64_t j0, j1;      /* latents covered */
    int64_t width;       /* W: values per window (ctx_before + 1 + ctx_after, or longest sequence) */
    int64_t n;           /* windows */
    sv_feat_win *win;    /* sorted by (latent, kind, group, ...) : the file order */
    float *values;       /* [n x W] latent's activation on each window token, 0 padded */
    int32_t *ids;        /* [n x W] token ids (-1: padding or no ids) */
    int64_t *by_start;   /* window indices sorted by start (fill lookups) */
} sv_feat_windows;

/* Windows of every selected example (top and interval samples) of latents
 * [j0, j1). seq_off: the store's sequence offsets [n_seq + 1]. */
sv_rc sv_feat_windows_new(sv_feat_windows *w, const sv_feat *f, int64_t j0, int64_t j1,
                          const int64_t *seq_off, int64_t n_seq);
void sv_feat_windows_free(sv_feat_windows *w);
/* Bytes of the windows for n_latents latents (upper bound), given the
 * longest sequence (for whole-sequence windows). */
size_t sv_feat_windows_mem(const sv_feat_params *p, int64_t n_latents, int64_t max_seq_len);
/* The token ranges to recompute, sorted and merged: pairs [start, end).
 * *ranges is allocated; *n pairs. */
sv_rc sv_feat_windows_ranges(const sv_feat_windows *w, int64_t **ranges, int64_t *n);
/* Fill from sparse rows (as sv_feat_observe_csr): a latent absent from a row is 0. */
void sv_feat_windows_fill_csr(sv_feat_windows *w, int64_t token0, int64_t rows, const int64_t *rowptr,
                              const int32_t *idx, const double *val, const int64_t *ids);
/* Collective: each rank filled the window tokens of its own rows; rank 0
 * gets them all (every entry is written by exactly one rank, so a sum of
 * values and a max of ids over ranks is exact). Same windows on every rank. */
sv_rc sv_feat_windows_reduce(sv_feat_windows *w, MPI_Comm comm);
/* Values of every window from the windows captured during the pass
 * (window_width == w->width). */
sv_rc sv_feat_windows_fill_captured(sv_feat_windows *w, const sv_feat *f);
/* Token ids only, for rows token0..token0+rows-1 (masked tokens included). */
void sv_feat_windows_fill_ids(sv_feat_windows *w, int64_t token0, int64_t rows, const int64_t *ids);
/* Fill from rows token0..token0+rows-1 of activations a[r * lda + (j - j0)]
 * for latents j0..j1-1 of the windows; ids (may be NULL) their token ids. */
void sv_feat_windows_fill(sv_feat_windows *w, int64_t token0, int64_t rows, const float *a, size_t lda,
                          const int64_t *ids);

#endif
