/* Activation stores: one HDF5 file per dataset.
 *   /activations        [n_tokens, d_in] f32 | f16 | bf16 (16-bit HDF5 float with
 *                       8-bit exponent, or uint16 with attribute dtype="bfloat16")
 *   /targets            [n_tokens, d_out] same dtypes, optional: what a
 *                       transcoder's output is compared with
 *   /token_ids          [n_tokens] integers, optional
 *   /sequence_offsets   [n_sequences+1] int64, or root attribute context_size
 *   root attributes     special_token_ids, model_name, hook_name, dataset_name,
 *                       model_params (optional)
 */
#ifndef SAEVAL_STORE_H
#define SAEVAL_STORE_H
#include <stdint.h>
#include <mpi.h>
#include "saeval/error.h"

typedef enum {
    SV_STORE_F32 = 0,
    SV_STORE_F16,
    SV_STORE_BF16,     /* HDF5 16-bit float type with bf16 layout */
    SV_STORE_BF16_U16  /* uint16 dataset + attribute dtype="bfloat16" */
} sv_store_dtype;
const char *sv_store_dtype_name(sv_store_dtype d);

typedef struct {
    char *path;
    int64_t file;         /* hid_t, kept opaque so callers need not include hdf5.h */
    int64_t dset;         /* /activations */
    int64_t tok_dset;     /* /token_ids or -1 */
    int64_t tgt_dset;     /* /targets or -1 */
    int64_t d_out;        /* /targets columns, 0 when the store has none */
    sv_store_dtype tgt_dtype;
    int64_t n_tokens, d_in;
    sv_store_dtype dtype;
    int chunked;
    int64_t chunk[2];
    int64_t n_seq;
    int64_t *seq_offsets; /* [n_seq+1], always filled (also from context_size) */
    int64_t context_size; /* 0 when /sequence_offsets is used */
    int has_token_ids;
    int64_t *special_ids;
    int n_special;
    char *model_name, *hook_name, *dataset_name; /* NULL when absent */
    double model_params;  /* root attribute model_params (parameters of the LM), NaN when absent */
    uint64_t file_size;
    int64_t mtime_ns;
} sv_store;

/* Collective over comm: opens with the MPI-IO driver, reads and validates
 * metadata (every rank gets the same sequence offsets). */
sv_rc sv_store_open(sv_store *s, const char *path, MPI_Comm comm);
/* Independent: rows [t0, t0+n) converted to float32, row-major [n][d_in]. */
sv_rc sv_store_read_rows(sv_store *s, int64_t t0, int64_t n, float *out);
/* Independent: rows [t0, t0+n) of /targets, [n][d_out] float32; fails if
 * the store has none. */
sv_rc sv_store_read_targets(sv_store *s, int64_t t0, int64_t n, float *out);
/* Independent: token ids [t0, t0+n); fails if the store has none. */
sv_rc sv_store_read_token_ids(sv_store *s, int64_t t0, int64_t n, int64_t *out);
/* Collective. */
void sv_store_close(sv_store *s);

/* Serial writer for synthetic data and tests. x is [n_tokens][d_in]; values
 * are rounded to the dtype. Exactly one of seq_offsets (n_seq+1 entries) or
 * context_size > 0 is used unless omit_sequences is set (for error tests). */
typedef struct {
    sv_store_dtype dtype;
    int chunked;            /* 0: contiguous */
    int64_t chunk_rows, chunk_cols;
    const int64_t *seq_offsets;
    int64_t n_seq;
    int64_t context_size;
    int omit_sequences;
    const int64_t *token_ids; /* NULL: no /token_ids */
    const int64_t *special_ids;
    int n_special;
    const char *model_name, *hook_name, *dataset_name;
    const float *targets;   /* NULL: no /targets; else [n_tokens][d_out], in dtype */
    int64_t d_out;
} sv_store_wopts;
sv_rc sv_store_write(const char *path, const float *x, int64_t n_tokens, int64_t d_in,
                     const sv_store_wopts *o);

#endif
