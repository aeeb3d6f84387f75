/* Native transformer forward pass for the downstream metrics (CE / KL loss
 * recovered) and for `saeval collect`: loads a Hugging Face model directory
 * (config.json + model.safetensors or a sharded index) of one of the
 * families in the table of src/model_family.c (gpt2, gpt_neox, gemma2,
 * llama) and runs it in float or double.
 *
 * Two halves of one pass:
 *  - prefix: token ids -> the residual (or attention / MLP output) at a hook;
 *  - suffix: a residual at blocks.L.hook_resid_pre / hook_resid_post ->
 *    remaining blocks -> final norm -> logits in vocabulary tiles, never a
 *    whole [T, vocab] matrix.
 * Determinism: every GEMM is cut into fixed tiles (SV_MODEL_ROWS rows from
 * the sequence start x SV_MODEL_COLS columns), each one single-threaded
 * BLAS call; attention runs per (head, query block) in a fixed order; the
 * vocabulary is walked tile by tile in order. Threads only choose who
 * computes a tile, so results never depend on the thread count. No global
 * state: all buffers live in sv_model / sv_model_ws. */
#ifndef SAEVAL_MODEL_H
#define SAEVAL_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"

/* Tile sizes: part of the numerical definition (OpenBLAS rounding can
 * depend on a call's shape). */
#define SV_MODEL_ROWS 64     /* token rows per GEMM call */
#define SV_MODEL_COLS 512    /* output columns per GEMM call */
#define SV_MODEL_QBLOCK 64   /* queries per attention task */
#define SV_MODEL_VTILE 2048  /* vocabulary entries per logits tile: streams x T x 2048 floats */

typedef enum { SV_ACT_GELU_ERF, SV_ACT_GELU_TANH, SV_ACT_RELU, SV_ACT_SILU } sv_act;
typedef enum { SV_NORMK_LAYER, SV_NORMK_RMS, SV_NORMK_RMS_1P } sv_normk; /* RMS_1P: Gemma (1 + w) */
typedef enum { SV_ROPE_NONE, SV_ROPE_DEFAULT, SV_ROPE_LINEAR, SV_ROPE_LLAMA3 } sv_rope_kind;

typedef struct {
    char model_type[32];
    int64_t d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff, vocab, max_pos;
    double norm_eps;
    sv_normk norm;
    sv_act act;
    int gated_mlp;          /* down(act(gate x) * up x) instead of proj(act(fc x)) */
    int parallel_residual;  /* x + attn(ln1 x) + mlp(ln2 x) */
    int post_norms;         /* Gemma-2: norms after attention and MLP too */
    int tied;               /* unembedding = embedding */
    int qkv_bias, o_bias, mlp_bias;
    int learned_pos;        /* GPT-2 wpe */
    int64_t rotary_dim;     /* dims of each head that rotate (0: none) */
    double rope_theta;
    sv_rope_kind rope;
    double rope_factor, rope_low, rope_high;
    int64_t rope_orig;
    double attn_scale;      /* multiplies q.k */
    int attn_scale_by_layer;/* GPT-2 scale_attn_by_inverse_layer_idx */
    double attn_softcap, final_softcap; /* 0: none */
    int64_t sliding_window; /* 0: none; on even layers (Gemma-2) */
    int embed_scale;        /* multiply embeddings by sqrt(d_model) in compute dtype */
    int64_t bos, eos, pad;  /* -1: not given */
} sv_model_cfg;

typedef enum { SV_HOOK_RESID_PRE, SV_HOOK_RESID_POST, SV_HOOK_ATTN_OUT, SV_HOOK_MLP_OUT } sv_hook_kind;
typedef struct {
    sv_hook_kind kind;
    int64_t layer;
} sv_hook;

/* Weights are held in the compute precision; `w`/`b` point into one block. */
typedef struct { void *w, *b; int64_t in, out; int trans; } sv_lin; /* trans: stored [out][in] */
typedef struct { void *w, *b; } sv_normw;
typedef struct {
    sv_normw ln_attn, ln_attn_post, ln_mlp, ln_mlp_post;
    sv_lin qkv;          /* fused (gpt2 [q|k|v], neox per head [q_h k_h v_h]) */
    int qkv_per_head;
    sv_lin q, k, v, o;
    sv_lin fc, gate, up, down; /* fc/down, or gate/up/down */
} sv_layer;

struct sv_model_family;
typedef struct {
    sv_model_cfg cfg;
    const struct sv_model_family *fam;
    int precision;        /* 32 or 64 */
    char *dir;
    void *buf;            /* every weight, compute precision */
    size_t weight_bytes;
    void *embed;          /* [vocab][d] */
    void *pos_embed;      /* [max_pos][d] (gpt2) */
    void *unembed;        /* [vocab][d] (= embed when tied) */
    sv_normw ln_f;
    sv_layer *layers;
    double *inv_freq;     /* [rotary_dim / 2], after rope scaling */
} sv_model;

/* Parse config.json text (exactly n bytes) with transformers 4.48's
 * defaults for each family. `path` names the file in messages. Entry point
 * for the fuzzer. */
sv_rc sv_model_cfg_parse(sv_model_cfg *c, const char *json, size_t n, const char *path);
/* Parse a model.safetensors.index.json: the distinct shard file names
 * (plain names in the same directory) and, per tensor, its shard. Caller
 * frees with sv_model_index_free. */
typedef struct {
    int nfiles;
    char **files;
    int ntensors;
    char **names;
    int *file_of;
} sv_model_index;
sv_rc sv_model_index_parse(sv_model_index *ix, const char *json, size_t n, const char *path);
void sv_model_index_free(sv_model_index *ix);

/* Load dir/config.json and the weights; precision 32 or 64. */
sv_rc sv_model_load(sv_model *m, const char *dir, int precision);
void sv_model_free(sv_model *m);
/* Bytes of the weights in memory (for memory_budget_mb): of a loaded
 * model, or from the config alone before loading (0: out of memory). */
size_t sv_model_weight_bytes(const sv_model *m);
size_t sv_model_cfg_weight_bytes(const sv_model_cfg *c, int precision);

/* "blocks.L.hook_resid_pre" etc. -> hook; refuses other names and L beyond
 * the model's layers with a message listing the supported hooks. */
sv_rc sv_hook_parse(sv_hook *h, const char *name, const sv_model_cfg *c);

/* Scratch for sequences of up to max_T tokens and up to max_streams
 * residual streams in one logits tile walk. */
typedef struct {
    const sv_model *m;
    int64_t max_T;
    int max_streams;
    int threads;
    /* Tile sizes, SV_MODEL_* at init; a test may lower them to reach the
     * multi-tile paths with tiny models (the buffers stay large enough). */
    int64_t rows, cols, qblock, vtile;
    void *x, *h, *ao, *mo;   /* [T][d] residual, norm output, attention / MLP outputs */
    void *q, *k, *v;         /* [heads][T][head_dim] after RoPE */
    void *att, *f1, *f2, *tmp; /* [T][heads*hd], [T][d_ff] x2, [T][max(3d, q+k+v)] */
    void *scores;        /* [threads][QBLOCK][max_T] */
    double *rowd;        /* [threads][max_T] softmax row */
    void *cosb, *sinb;   /* [max_T][rotary_dim/2] */
    void *normed;        /* [max_streams][T][d] final-norm outputs */
    void *tiles;         /* [max_streams][T][VTILE] logits */
} sv_model_ws;
size_t sv_model_scratch_bytes(const sv_model_cfg *c, int precision, int64_t T, int streams, int threads);
sv_rc sv_model_ws_init(sv_model_ws *ws, const sv_model *m, int64_t max_T, int max_streams);
void sv_model_ws_free(sv_model_ws *ws);

/* Token ids [T] (checked against vocab and max positions) -> out [T][d]
 * at the hook, in the compute precision (float or double). */
sv_rc sv_model_prefix(sv_model_ws *ws, const int32_t *ids, int64_t T, sv_hook hook, void *out);
/* The same for n hooks in one pass (collect: several stores at once);
 * out[i] [T][d] each. */
sv_rc sv_model_prefix_multi(sv_model_ws *ws, const int32_t *ids, int64_t T, int n, const sv_hook *hooks,
                            void *const *out);
/* resid [T][d] (compute precision) at a hook_resid_pre / hook_resid_post
 * -> the remaining blocks and the final norm -> normed [T][d]. */
sv_rc sv_model_suffix(sv_model_ws *ws, sv_hook hook, const void *resid, int64_t T, void *normed);

/* Logits of `ns` final-norm outputs, vocabulary tile by tile in order:
 * fn gets tiles[s] = [T][vt] (compute precision, final soft-cap applied)
 * for columns v0..v0+vt-1 of every stream at once, so streams can be
 * compared tile by tile. A nonzero return from fn stops the walk. */
typedef int (*sv_logit_tile_fn)(void *ctx, int64_t v0, int64_t vt, int64_t T, const void *const *tiles);
sv_rc sv_model_logit_tiles(sv_model_ws *ws, int ns, const void *const *normed, int64_t T,
                           sv_logit_tile_fn fn, void *ctx);

/* Streaming per-position statistics of one logits stream, in double:
 * online log-sum-exp, the logit of the next token, and optionally
 * KL(p_ref || p_this) against a reference stream whose tiles arrive with
 * the same columns (one pass: the reference's running maximum rescales the
 * partial sum). */
typedef struct {
    int64_t T;
    int kl;
    double *mx, *se;     /* own running max and sum exp(z - mx) */
    double *tgt;         /* logit of targets[t] */
    double *rmx, *rse;   /* reference's running max / sum */
    double *ks;          /* sum exp(zr - rmx) (zr - z) */
} sv_lm_acc;
sv_rc sv_lm_acc_init(sv_lm_acc *a, int64_t T, int with_kl);
void sv_lm_acc_free(sv_lm_acc *a);
/* precision of the tiles: 32 (float) or 64 (double); ref NULL unless kl;
 * targets[t] = id of the token after t, or -1. */
void sv_lm_acc_tile(sv_lm_acc *a, int precision, const void *tile, const void *ref, int64_t v0, int64_t vt,
                    const int32_t *targets, int threads);
/* The same for a reference a[0] and streams a[1..n-1] (KL against it)
 * started together: the reference's exps are computed once per tile and
 * shared; bitwise the results of sv_lm_acc_tile per stream. rowbuf:
 * [threads][vt] doubles. */
void sv_lm_acc_tiles(sv_lm_acc *const *a, int n, int precision, const void *const *tiles, int64_t v0, int64_t vt,
                     const int32_t *targets, int threads, double *rowbuf);
/* Per position (any output may be NULL): lse, nll = lse - z[target] (NaN
 * without a target), kl (NaN without kl). */
void sv_lm_acc_result(const sv_lm_acc *a, double *lse, double *nll, double *kl);

/* Convenience for the evaluator: clean residual + n spliced residuals at a
 * resid hook -> per position nll of each stream ([1 + n][T], stream 0 the
 * clean one) and KL(p_clean || p_s) for s = 1..n ([n][T]). targets as
 * above. ws must have max_streams >= 1 + n. */
sv_rc sv_model_ce_kl(sv_model_ws *ws, sv_hook hook, int64_t T, const int32_t *targets,
                     int n, const void *const *resid, double *nll, double *kl);

/* Benchmark helpers: the GEMMs of ns suffix passes from layer 0 alone
 * (same tiles; attention, norms and softmax left out), and their FLOPs per
 * pass (linear layers + unembedding). */
void sv_model_gemm_only(sv_model_ws *ws, int64_t T, int ns);
/* The GEMMs of one pass through every layer without the unembedding (what
 * `collect` runs up to its last hook), and their FLOPs. */
void sv_model_gemm_layers_only(sv_model_ws *ws, int64_t T);
double sv_model_layer_flops(const sv_model_cfg *c, int64_t T);
double sv_model_suffix_flops(const sv_model_cfg *c, int64_t T);
/* A model with the config's shapes and deterministic random weights (no
 * files): benchmarks and tests. */
sv_rc sv_model_random(sv_model *m, const sv_model_cfg *c, int precision, uint64_t seed);
/* The same random model written as a Hugging Face model directory
 * (dir/config.json = config_json as given, dir/model.safetensors in
 * float32, tensor names with the family's prefix): the collect benchmark. */
sv_rc sv_model_write_random(const char *dir, const char *config_json, uint64_t seed);

#endif
