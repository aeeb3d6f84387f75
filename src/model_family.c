/* The model families: a row per Hugging Face model_type with its config
 * parser (defaults as transformers 4.48's configuration_*.py), its tensor
 * names (as save_pretrained writes them, without the family prefix) and its
 * block function. A new family is a new row. */
#include "model_impl.h"
#include "saeval/json.h" /* sv_json_parse_exact */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config field readers: every one names the file and the field ---- */

/* JSON null counts as absent (transformers: None means the default) except
 * where a reader says otherwise. */
static const cJSON *field(const cJSON *root, const char *key)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsNull(j) ? NULL : j;
}

static sv_rc get_int(const cJSON *root, const char *key, int64_t def, int64_t lo, int64_t hi, int64_t *out,
                     const char *path)
{
    const cJSON *j = field(root, key);
    if (!j) {
        if (def < lo) return sv_fail(SV_EINPUT, "%s: field '%s' is missing (no default in transformers)", path, key);
        *out = def;
        return SV_OK;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble != floor(j->valuedouble))
        return sv_fail(SV_EINPUT, "%s: field '%s' must be an integer", path, key);
    if (j->valuedouble < (double)lo || j->valuedouble > (double)hi)
        return sv_fail(SV_EINPUT, "%s: field '%s' = %.17g is outside [%lld, %lld]", path, key, j->valuedouble,
                       (long long)lo, (long long)hi);
    *out = (int64_t)j->valuedouble;
    return SV_OK;
}

static sv_rc get_num(const cJSON *root, const char *key, double def, double lo, double hi, double *out,
                     const char *path)
{
    const cJSON *j = field(root, key);
    if (!j) {
        if (isnan(def)) return sv_fail(SV_EINPUT, "%s: field '%s' is missing (no default in transformers)", path, key);
        *out = def;
        return SV_OK;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return sv_fail(SV_EINPUT, "%s: field '%s' must be a number", path, key);
    if (!(j->valuedouble >= lo && j->valuedouble <= hi))
        return sv_fail(SV_EINPUT, "%s: field '%s' = %.17g is outside [%g, %g]", path, key, j->valuedouble, lo, hi);
    *out = j->valuedouble;
    return SV_OK;
}

static sv_rc get_bool(const cJSON *root, const char *key, int def, int *out, const char *path)
{
    const cJSON *j = field(root, key);
    if (!j) {
        *out = def;
        return SV_OK;
    }
    if (!cJSON_IsBool(j)) return sv_fail(SV_EINPUT, "%s: field '%s' must be true or false", path, key);
    *out = cJSON_IsTrue(j);
    return SV_OK;
}

/* A soft-cap: absent = the class default, null = none. */
static sv_rc get_cap(const cJSON *root, const char *key, double def, double *out, const char *path)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsNull(j)) {
        *out = 0;
        return SV_OK;
    }
    return get_num(root, key, def, 1e-6, 1e12, out, path);
}

static sv_rc get_act(const cJSON *root, const char *key, const char *def, sv_act *out, const char *path)
{
    const cJSON *j = field(root, key);
    const char *s = def;
    if (j) {
        if (!cJSON_IsString(j)) return sv_fail(SV_EINPUT, "%s: field '%s' must be a string", path, key);
        s = j->valuestring;
    }
    /* ACT2FN names: gelu = exact erf; gelu_new, gelu_pytorch_tanh and
     * gelu_fast are the tanh approximation (gelu_fast writes the same
     * formula factored differently). */
    if (!strcmp(s, "gelu")) *out = SV_ACT_GELU_ERF;
    else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh") || !strcmp(s, "gelu_fast"))
        *out = SV_ACT_GELU_TANH;
    else if (!strcmp(s, "relu")) *out = SV_ACT_RELU;
    else if (!strcmp(s, "silu") || !strcmp(s, "swish")) *out = SV_ACT_SILU;
    else
        return sv_fail(SV_EINPUT, "%s: field '%s' = '%.40s' is not supported (gelu, gelu_new, gelu_pytorch_tanh, "
                       "gelu_fast, relu, silu)", path, key, s);
    return SV_OK;
}

#define BIG ((int64_t)1 << 24)
#define TRY(x) do { sv_rc rc_ = (x); if (rc_ != SV_OK) return rc_; } while (0)

/* Token ids are informational (collect writes them as attributes). An
 * id may be a list (Llama-3.1 Instruct: three eos ids): the first counts. */
static sv_rc get_token(const cJSON *root, const char *key, int64_t def, int64_t *out, const char *path)
{
    const cJSON *j = field(root, key);
    if (cJSON_IsArray(j)) {
        const cJSON *first = cJSON_GetArrayItem(j, 0);
        if (!first) {
            *out = -1;
            return SV_OK;
        }
        cJSON tmp = *first; /* read through the integer checks under the list's name */
        tmp.next = tmp.prev = NULL;
        tmp.string = (char *)key;
        cJSON wrap = {0};
        wrap.type = cJSON_Object;
        wrap.child = &tmp;
        return get_int(&wrap, key, def, -1, BIG, out, path);
    }
    return get_int(root, key, def, -1, BIG, out, path);
}

static sv_rc get_tokens(sv_model_cfg *c, const cJSON *root, int64_t bos, int64_t eos, int64_t pad, const char *path)
{
    TRY(get_token(root, "bos_token_id", bos, &c->bos, path));
    TRY(get_token(root, "eos_token_id", eos, &c->eos, path));
    TRY(get_token(root, "pad_token_id", pad, &c->pad, path));
    return SV_OK;
}

/* rope_scaling (modeling_rope_utils.py): null/"default" = none; "linear"
 * divides inv_freq by factor; "llama3" as _compute_llama3_parameters. The
 * other types change the attention scale or depend on the sequence length
 * and are refused. */
static sv_rc get_rope_scaling(sv_model_cfg *c, const cJSON *root, const char *path)
{
    const cJSON *rs = field(root, "rope_scaling");
    if (!rs) return SV_OK;
    if (!cJSON_IsObject(rs)) return sv_fail(SV_EINPUT, "%s: field 'rope_scaling' must be an object or null", path);
    const cJSON *t = field(rs, "rope_type");
    if (!t) t = field(rs, "type"); /* the legacy key */
    if (!cJSON_IsString(t)) return sv_fail(SV_EINPUT, "%s: field 'rope_scaling.rope_type' is missing", path);
    if (!strcmp(t->valuestring, "default")) return SV_OK;
    if (!strcmp(t->valuestring, "linear")) {
        c->rope = SV_ROPE_LINEAR;
        return get_num(rs, "factor", NAN, 1e-6, 1e9, &c->rope_factor, path);
    }
    if (!strcmp(t->valuestring, "llama3")) {
        c->rope = SV_ROPE_LLAMA3;
        TRY(get_num(rs, "factor", NAN, 1e-6, 1e9, &c->rope_factor, path));
        TRY(get_num(rs, "low_freq_factor", NAN, 1e-9, 1e9, &c->rope_low, path));
        TRY(get_num(rs, "high_freq_factor", NAN, 1e-9, 1e9, &c->rope_high, path));
        TRY(get_int(rs, "original_max_position_embeddings", -1, 1, BIG, &c->rope_orig, path));
        if (!(c->rope_high > c->rope_low))
            return sv_fail(SV_EINPUT, "%s: field 'rope_scaling.high_freq_factor' must exceed low_freq_factor", path);
        return SV_OK;
    }
    return sv_fail(SV_EINPUT, "%s: field 'rope_scaling.rope_type' = '%.40s' is not supported (default, linear, llama3)",
                   path, t->valuestring);
}

static sv_rc check_heads(sv_model_cfg *c, const char *path)
{
    if (c->n_heads % c->n_kv_heads != 0)
        return sv_fail(SV_EINPUT, "%s: field 'num_key_value_heads' = %lld does not divide num_attention_heads = %lld "
                       "(grouped-query attention needs whole groups)", path, (long long)c->n_kv_heads,
                       (long long)c->n_heads);
    if (c->rotary_dim % 2 != 0 || c->rotary_dim > c->head_dim)
        return sv_fail(SV_EINPUT, "%s: rotary dims %lld must be even and at most head_dim %lld", path,
                       (long long)c->rotary_dim, (long long)c->head_dim);
    if (c->n_heads * c->head_dim > BIG || c->d_model * c->d_ff > ((int64_t)1 << 40))
        return sv_fail(SV_EINPUT, "%s: model dimensions too large", path);
    return SV_OK;
}

static sv_rc head_split(sv_model_cfg *c, const char *path, const char *dkey, const char *hkey)
{
    if (c->d_model % c->n_heads != 0)
        return sv_fail(SV_EINPUT, "%s: field '%s' = %lld is not a multiple of '%s' = %lld", path, dkey,
                       (long long)c->d_model, hkey, (long long)c->n_heads);
    c->head_dim = c->d_model / c->n_heads;
    return SV_OK;
}

/* ---- GPT-2 (configuration_gpt2.py, modeling_gpt2.py) ---- */

static sv_rc gpt2_parse(sv_model_cfg *c, const cJSON *r, const char *p)
{
    TRY(get_int(r, "vocab_size", 50257, 1, BIG, &c->vocab, p));
    TRY(get_int(r, "n_positions", 1024, 1, BIG, &c->max_pos, p));
    TRY(get_int(r, "n_embd", 768, 1, 1 << 20, &c->d_model, p));
    TRY(get_int(r, "n_layer", 12, 1, 4096, &c->n_layers, p));
    TRY(get_int(r, "n_head", 12, 1, 1 << 16, &c->n_heads, p));
    TRY(get_int(r, "n_inner", 4 * c->d_model, 1, BIG, &c->d_ff, p)); /* None: 4 * n_embd */
    TRY(get_act(r, "activation_function", "gelu_new", &c->act, p));
    TRY(get_num(r, "layer_norm_epsilon", 1e-5, 0, 1, &c->norm_eps, p));
    int scale = 1;
    TRY(get_bool(r, "scale_attn_weights", 1, &scale, p));
    TRY(get_bool(r, "scale_attn_by_inverse_layer_idx", 0, &c->attn_scale_by_layer, p));
    TRY(get_bool(r, "tie_word_embeddings", 1, &c->tied, p));
    TRY(get_tokens(c, r, 50256, 50256, -1, p));
    TRY(head_split(c, p, "n_embd", "n_head"));
    c->n_kv_heads = c->n_heads;
    c->norm = SV_NORMK_LAYER;
    c->learned_pos = 1;
    c->qkv_bias = c->o_bias = c->mlp_bias = 1;
    c->attn_scale = scale ? 1.0 / sqrt((double)c->head_dim) : 1.0;
    return check_heads(c, p);
}

static void gpt2_bind(sv_binder *b, sv_model *m)
{
    const sv_model_cfg *c = &m->cfg;
    const int64_t d = c->d_model, f = c->d_ff;
    sv_bind(b, &m->embed, 2, c->vocab, d, "wte.weight");
    sv_bind(b, &m->pos_embed, 2, c->max_pos, d, "wpe.weight");
    for (int64_t l = 0; l < c->n_layers; l++) {
        sv_layer *L = &m->layers[l];
        sv_bind(b, &L->ln_attn.w, 1, d, 0, "h.%lld.ln_1.weight", (long long)l);
        sv_bind(b, &L->ln_attn.b, 1, d, 0, "h.%lld.ln_1.bias", (long long)l);
        /* Conv1D: [in, out], y = x W + b. */
        L->qkv = (sv_lin){NULL, NULL, d, 3 * d, 0};
        sv_bind(b, &L->qkv.w, 2, d, 3 * d, "h.%lld.attn.c_attn.weight", (long long)l);
        sv_bind(b, &L->qkv.b, 1, 3 * d, 0, "h.%lld.attn.c_attn.bias", (long long)l);
        L->o = (sv_lin){NULL, NULL, d, d, 0};
        sv_bind(b, &L->o.w, 2, d, d, "h.%lld.attn.c_proj.weight", (long long)l);
        sv_bind(b, &L->o.b, 1, d, 0, "h.%lld.attn.c_proj.bias", (long long)l);
        sv_bind(b, &L->ln_mlp.w, 1, d, 0, "h.%lld.ln_2.weight", (long long)l);
        sv_bind(b, &L->ln_mlp.b, 1, d, 0, "h.%lld.ln_2.bias", (long long)l);
        L->fc = (sv_lin){NULL, NULL, d, f, 0};
        sv_bind(b, &L->fc.w, 2, d, f, "h.%lld.mlp.c_fc.weight", (long long)l);
        sv_bind(b, &L->fc.b, 1, f, 0, "h.%lld.mlp.c_fc.bias", (long long)l);
        L->down = (sv_lin){NULL, NULL, f, d, 0};
        sv_bind(b, &L->down.w, 2, f, d, "h.%lld.mlp.c_proj.weight", (long long)l);
        sv_bind(b, &L->down.b, 1, d, 0, "h.%lld.mlp.c_proj.bias", (long long)l);
    }
    sv_bind(b, &m->ln_f.w, 1, d, 0, "ln_f.weight");
    sv_bind(b, &m->ln_f.b, 1, d, 0, "ln_f.bias");
    if (!c->tied) sv_bind(b, &m->unembed, 2, c->vocab, d, "lm_head.weight");
}

/* Suffix after "h.N." / "layers.N." or NULL. */
static const char *after_layer(const char *name, const char *lead)
{
    size_t n = strlen(lead);
    if (strncmp(name, lead, n) != 0) return NULL;
    const char *p = name + n;
    if (*p < '0' || *p > '9') return NULL;
    while (*p >= '0' && *p <= '9') p++;
    return *p == '.' ? p + 1 : NULL;
}

/* Older GPT-2 checkpoints carry the causal-mask buffers. */
static int gpt2_is_buffer(const char *name)
{
    const char *s = after_layer(name, "h.");
    return s && (!strcmp(s, "attn.bias") || !strcmp(s, "attn.masked_bias"));
}

/* ---- GPT-NeoX (configuration_gpt_neox.py, modeling_gpt_neox.py) ---- */

static sv_rc neox_parse(sv_model_cfg *c, const cJSON *r, const char *p)
{
    TRY(get_int(r, "vocab_size", 50432, 1, BIG, &c->vocab, p));
    TRY(get_int(r, "hidden_size", 6144, 1, 1 << 20, &c->d_model, p));
    TRY(get_int(r, "num_hidden_layers", 44, 1, 4096, &c->n_layers, p));
    TRY(get_int(r, "num_attention_heads", 64, 1, 1 << 16, &c->n_heads, p));
    TRY(get_int(r, "intermediate_size", 24576, 1, BIG, &c->d_ff, p));
    TRY(get_act(r, "hidden_act", "gelu", &c->act, p));
    TRY(get_int(r, "max_position_embeddings", 2048, 1, BIG, &c->max_pos, p));
    TRY(get_num(r, "layer_norm_eps", 1e-5, 0, 1, &c->norm_eps, p));
    TRY(get_bool(r, "use_parallel_residual", 1, &c->parallel_residual, p));
    TRY(get_bool(r, "attention_bias", 1, &c->qkv_bias, p));
    TRY(get_bool(r, "tie_word_embeddings", 0, &c->tied, p));
    double pct, base;
    /* 4.48's GPTNeoXConfig.__init__ sets partial_rotary_factor and
     * rope_theta from rotary_pct / rotary_emb_base after the base class
     * stored any aliases found in the file, so the aliases never count. */
    TRY(get_num(r, "rotary_pct", 0.25, 0, 1, &pct, p));
    TRY(get_num(r, "rotary_emb_base", 10000, 1e-9, 1e30, &base, p));
    TRY(get_rope_scaling(c, r, p));
    TRY(get_tokens(c, r, 0, 2, -1, p));
    TRY(head_split(c, p, "hidden_size", "num_attention_heads"));
    c->n_kv_heads = c->n_heads;
    c->norm = SV_NORMK_LAYER;
    c->o_bias = c->qkv_bias;
    c->mlp_bias = 1;
    c->rope_theta = base;
    c->rotary_dim = (int64_t)((double)c->head_dim * pct); /* int(head_size * rotary_pct); odd is refused (HF fails) */
    if (c->rope == SV_ROPE_NONE) c->rope = SV_ROPE_DEFAULT;
    c->attn_scale = 1.0 / sqrt((double)c->head_dim);
    return check_heads(c, p);
}

static void neox_bind(sv_binder *b, sv_model *m)
{
    const sv_model_cfg *c = &m->cfg;
    const int64_t d = c->d_model, f = c->d_ff;
    sv_bind(b, &m->embed, 2, c->vocab, d, "embed_in.weight");
    for (int64_t l = 0; l < c->n_layers; l++) {
        sv_layer *L = &m->layers[l];
        sv_bind(b, &L->ln_attn.w, 1, d, 0, "layers.%lld.input_layernorm.weight", (long long)l);
        sv_bind(b, &L->ln_attn.b, 1, d, 0, "layers.%lld.input_layernorm.bias", (long long)l);
        sv_bind(b, &L->ln_mlp.w, 1, d, 0, "layers.%lld.post_attention_layernorm.weight", (long long)l);
        sv_bind(b, &L->ln_mlp.b, 1, d, 0, "layers.%lld.post_attention_layernorm.bias", (long long)l);
        L->qkv = (sv_lin){NULL, NULL, d, 3 * d, 1};
        L->qkv_per_head = 1;
        sv_bind(b, &L->qkv.w, 2, 3 * d, d, "layers.%lld.attention.query_key_value.weight", (long long)l);
        if (c->qkv_bias) sv_bind(b, &L->qkv.b, 1, 3 * d, 0, "layers.%lld.attention.query_key_value.bias", (long long)l);
        L->o = (sv_lin){NULL, NULL, d, d, 1};
        sv_bind(b, &L->o.w, 2, d, d, "layers.%lld.attention.dense.weight", (long long)l);
        if (c->o_bias) sv_bind(b, &L->o.b, 1, d, 0, "layers.%lld.attention.dense.bias", (long long)l);
        L->fc = (sv_lin){NULL, NULL, d, f, 1};
        sv_bind(b, &L->fc.w, 2, f, d, "layers.%lld.mlp.dense_h_to_4h.weight", (long long)l);
        sv_bind(b, &L->fc.b, 1, f, 0, "layers.%lld.mlp.dense_h_to_4h.bias", (long long)l);
        L->down = (sv_lin){NULL, NULL, f, d, 1};
        sv_bind(b, &L->down.w, 2, d, f, "layers.%lld.mlp.dense_4h_to_h.weight", (long long)l);
        sv_bind(b, &L->down.b, 1, d, 0, "layers.%lld.mlp.dense_4h_to_h.bias", (long long)l);
    }
    sv_bind(b, &m->ln_f.w, 1, d, 0, "final_layer_norm.weight");
    sv_bind(b, &m->ln_f.b, 1, d, 0, "final_layer_norm.bias");
    /* embed_out sits outside the gpt_neox. prefix; tied NeoX reuses embed_in. */
    if (!c->tied) sv_bind(b, &m->unembed, 2, c->vocab, d, "embed_out.weight");
}

static int rope_buffer(const char *s)
{
    return !strcmp(s, "rotary_emb.inv_freq") || !strcmp(s, "attention.rotary_emb.inv_freq") ||
           !strcmp(s, "self_attn.rotary_emb.inv_freq");
}

static int neox_is_buffer(const char *name)
{
    const char *s = after_layer(name, "layers.");
    if (s) return !strcmp(s, "attention.bias") || !strcmp(s, "attention.masked_bias") || rope_buffer(s);
    return rope_buffer(name);
}

/* ---- Llama and Gemma-2 share the tensor names ---- */

static void llama_like_bind(sv_binder *b, sv_model *m)
{
    const sv_model_cfg *c = &m->cfg;
    const int64_t d = c->d_model, f = c->d_ff, hq = c->n_heads * c->head_dim, hk = c->n_kv_heads * c->head_dim;
    sv_bind(b, &m->embed, 2, c->vocab, d, "embed_tokens.weight");
    for (int64_t l = 0; l < c->n_layers; l++) {
        sv_layer *L = &m->layers[l];
        const long long li = (long long)l;
        sv_bind(b, &L->ln_attn.w, 1, d, 0, "layers.%lld.input_layernorm.weight", li);
        if (c->post_norms) {
            sv_bind(b, &L->ln_attn_post.w, 1, d, 0, "layers.%lld.post_attention_layernorm.weight", li);
            sv_bind(b, &L->ln_mlp.w, 1, d, 0, "layers.%lld.pre_feedforward_layernorm.weight", li);
            sv_bind(b, &L->ln_mlp_post.w, 1, d, 0, "layers.%lld.post_feedforward_layernorm.weight", li);
        } else {
            sv_bind(b, &L->ln_mlp.w, 1, d, 0, "layers.%lld.post_attention_layernorm.weight", li);
        }
        L->q = (sv_lin){NULL, NULL, d, hq, 1};
        L->k = (sv_lin){NULL, NULL, d, hk, 1};
        L->v = (sv_lin){NULL, NULL, d, hk, 1};
        L->o = (sv_lin){NULL, NULL, hq, d, 1};
        sv_bind(b, &L->q.w, 2, hq, d, "layers.%lld.self_attn.q_proj.weight", li);
        sv_bind(b, &L->k.w, 2, hk, d, "layers.%lld.self_attn.k_proj.weight", li);
        sv_bind(b, &L->v.w, 2, hk, d, "layers.%lld.self_attn.v_proj.weight", li);
        sv_bind(b, &L->o.w, 2, d, hq, "layers.%lld.self_attn.o_proj.weight", li);
        if (c->qkv_bias) {
            sv_bind(b, &L->q.b, 1, hq, 0, "layers.%lld.self_attn.q_proj.bias", li);
            sv_bind(b, &L->k.b, 1, hk, 0, "layers.%lld.self_attn.k_proj.bias", li);
            sv_bind(b, &L->v.b, 1, hk, 0, "layers.%lld.self_attn.v_proj.bias", li);
        }
        if (c->o_bias) sv_bind(b, &L->o.b, 1, d, 0, "layers.%lld.self_attn.o_proj.bias", li);
        L->gate = (sv_lin){NULL, NULL, d, f, 1};
        L->up = (sv_lin){NULL, NULL, d, f, 1};
        L->down = (sv_lin){NULL, NULL, f, d, 1};
        sv_bind(b, &L->gate.w, 2, f, d, "layers.%lld.mlp.gate_proj.weight", li);
        sv_bind(b, &L->up.w, 2, f, d, "layers.%lld.mlp.up_proj.weight", li);
        sv_bind(b, &L->down.w, 2, d, f, "layers.%lld.mlp.down_proj.weight", li);
        if (c->mlp_bias) {
            sv_bind(b, &L->gate.b, 1, f, 0, "layers.%lld.mlp.gate_proj.bias", li);
            sv_bind(b, &L->up.b, 1, f, 0, "layers.%lld.mlp.up_proj.bias", li);
            sv_bind(b, &L->down.b, 1, d, 0, "layers.%lld.mlp.down_proj.bias", li);
        }
    }
    sv_bind(b, &m->ln_f.w, 1, d, 0, "norm.weight");
    if (!c->tied) sv_bind(b, &m->unembed, 2, c->vocab, d, "lm_head.weight");
}

static int llama_is_buffer(const char *name)
{
    const char *s = after_layer(name, "layers.");
    return s ? rope_buffer(s) : rope_buffer(name);
}

/* configuration_llama.py */
static sv_rc llama_parse(sv_model_cfg *c, const cJSON *r, const char *p)
{
    TRY(get_int(r, "vocab_size", 32000, 1, BIG, &c->vocab, p));
    TRY(get_int(r, "hidden_size", 4096, 1, 1 << 20, &c->d_model, p));
    TRY(get_int(r, "intermediate_size", 11008, 1, BIG, &c->d_ff, p));
    TRY(get_int(r, "num_hidden_layers", 32, 1, 4096, &c->n_layers, p));
    TRY(get_int(r, "num_attention_heads", 32, 1, 1 << 16, &c->n_heads, p));
    TRY(get_int(r, "num_key_value_heads", c->n_heads, 1, 1 << 16, &c->n_kv_heads, p)); /* None: n_heads */
    TRY(get_act(r, "hidden_act", "silu", &c->act, p));
    TRY(get_int(r, "max_position_embeddings", 2048, 1, BIG, &c->max_pos, p));
    TRY(get_num(r, "rms_norm_eps", 1e-6, 0, 1, &c->norm_eps, p));
    TRY(get_bool(r, "tie_word_embeddings", 0, &c->tied, p)); /* LlamaConfig's own default */
    TRY(get_num(r, "rope_theta", 10000, 1e-9, 1e30, &c->rope_theta, p));
    TRY(get_bool(r, "attention_bias", 0, &c->qkv_bias, p));
    TRY(get_bool(r, "mlp_bias", 0, &c->mlp_bias, p));
    TRY(get_rope_scaling(c, r, p));
    TRY(get_tokens(c, r, 1, 2, -1, p));
    int64_t hd = c->d_model / c->n_heads;
    TRY(get_int(r, "head_dim", hd, 1, 1 << 16, &c->head_dim, p)); /* None: hidden / heads */
    if (!field(r, "head_dim") && c->d_model % c->n_heads != 0)
        return sv_fail(SV_EINPUT, "%s: field 'hidden_size' is not a multiple of 'num_attention_heads' and no head_dim", p);
    c->o_bias = c->qkv_bias;
    c->norm = SV_NORMK_RMS;
    c->gated_mlp = 1;
    c->rotary_dim = c->head_dim;
    if (c->rope == SV_ROPE_NONE) c->rope = SV_ROPE_DEFAULT;
    c->attn_scale = 1.0 / sqrt((double)c->head_dim);
    return check_heads(c, p);
}

/* configuration_gemma2.py */
static sv_rc gemma2_parse(sv_model_cfg *c, const cJSON *r, const char *p)
{
    TRY(get_int(r, "vocab_size", 256000, 1, BIG, &c->vocab, p));
    TRY(get_int(r, "hidden_size", 2304, 1, 1 << 20, &c->d_model, p));
    TRY(get_int(r, "intermediate_size", 9216, 1, BIG, &c->d_ff, p));
    TRY(get_int(r, "num_hidden_layers", 26, 1, 4096, &c->n_layers, p));
    TRY(get_int(r, "num_attention_heads", 8, 1, 1 << 16, &c->n_heads, p));
    TRY(get_int(r, "num_key_value_heads", 4, 1, 1 << 16, &c->n_kv_heads, p));
    TRY(get_int(r, "head_dim", 256, 1, 1 << 16, &c->head_dim, p));
    TRY(get_act(r, "hidden_activation", "gelu_pytorch_tanh", &c->act, p)); /* Gemma2MLP reads hidden_activation */
    TRY(get_int(r, "max_position_embeddings", 8192, 1, BIG, &c->max_pos, p));
    TRY(get_num(r, "rms_norm_eps", 1e-6, 0, 1, &c->norm_eps, p));
    TRY(get_bool(r, "tie_word_embeddings", 1, &c->tied, p));
    TRY(get_num(r, "rope_theta", 10000, 1e-9, 1e30, &c->rope_theta, p));
    TRY(get_bool(r, "attention_bias", 0, &c->qkv_bias, p));
    double qpas;
    TRY(get_num(r, "query_pre_attn_scalar", 256, 1e-12, 1e12, &qpas, p));
    TRY(get_int(r, "sliding_window", 4096, 1, BIG, &c->sliding_window, p));
    TRY(get_cap(r, "final_logit_softcapping", 30.0, &c->final_softcap, p));
    TRY(get_cap(r, "attn_logit_softcapping", 50.0, &c->attn_softcap, p));
    TRY(get_rope_scaling(c, r, p));
    TRY(get_tokens(c, r, 2, 1, 0, p));
    c->o_bias = c->qkv_bias;
    c->norm = SV_NORMK_RMS_1P;
    c->post_norms = 1;
    c->gated_mlp = 1;
    c->embed_scale = 1;
    c->rotary_dim = c->head_dim;
    if (c->rope == SV_ROPE_NONE) c->rope = SV_ROPE_DEFAULT;
    c->attn_scale = 1.0 / sqrt(qpas); /* query_pre_attn_scalar ** -0.5 */
    return check_heads(c, p);
}

static const sv_model_family families[] = {
    {"gpt2", "transformer.", gpt2_parse, gpt2_bind, gpt2_is_buffer, {sv_block_f32, sv_block_f64}},
    {"gpt_neox", "gpt_neox.", neox_parse, neox_bind, neox_is_buffer, {sv_block_f32, sv_block_f64}},
    {"gemma2", "model.", gemma2_parse, llama_like_bind, llama_is_buffer, {sv_block_f32, sv_block_f64}},
    {"llama", "model.", llama_parse, llama_like_bind, llama_is_buffer, {sv_block_f32, sv_block_f64}},
};

const sv_model_family *sv_model_family_find(const char *model_type)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (!strcmp(families[i].model_type, model_type)) return &families[i];
    return NULL;
}

const char *sv_model_family_list(void) { return "gpt2, gpt_neox, gemma2, llama"; }

sv_rc sv_model_cfg_parse(sv_model_cfg *c, const char *json, size_t n, const char *path)
{
    memset(c, 0, sizeof *c);
    cJSON *root = sv_json_parse_exact(json, n);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sv_fail(SV_EINPUT, "%s: not a JSON object", path);
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    sv_rc rc;
    if (!cJSON_IsString(mt)) {
        rc = sv_fail(SV_EINPUT, "%s: field 'model_type' is missing or not a string", path);
    } else {
        const sv_model_family *f = sv_model_family_find(mt->valuestring);
        if (!f) {
            rc = sv_fail(SV_EINPUT, "%s: field 'model_type' = '%.40s' is not supported (supported: %s)", path,
                         mt->valuestring, sv_model_family_list());
        } else {
            snprintf(c->model_type, sizeof c->model_type, "%s", f->model_type);
            c->rope_factor = 1;
            rc = f->parse(c, root, path);
        }
    }
    cJSON_Delete(root);
    return rc;
}
