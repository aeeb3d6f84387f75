/* Model loading: the accepted spellings (with / without the family prefix,
 * known buffers, sharded index) give the same model, and every bad input is
 * a clear SV_EINPUT naming the file and the field or tensor.
 * usage: test_model_errors DATA_DIR TMP_DIR */
#define TEST_NAME "test_model_errors"
#define TU_CHECK 1
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/forward.h"
#include "saeval/model.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"
#include "saeval/safetensors.h"
#include "testutil.h"

static const char *data, *tmp;

/* Every tensor of a fixture model as doubles. */
typedef struct {
    int n;
    sv_st_wtensor *t;
    double **buf;
} tensors;

static tensors read_all(const char *model)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/model.safetensors", data, model);
    sv_st_file f;
    if (sv_st_open(&f, p) != SV_OK) die("open", sv_errmsg());
    tensors r = {f.n, xcalloc((size_t)f.n + 8, sizeof(sv_st_wtensor)), xcalloc((size_t)f.n + 8, sizeof(double *))};
    for (int i = 0; i < f.n; i++) {
        r.buf[i] = xcalloc((size_t)sv_st_numel(&f.t[i]), sizeof(double));
        if (sv_st_read_f64(&f, &f.t[i], r.buf[i]) != SV_OK) die("read", sv_errmsg());
        r.t[i].name = sv_strdup(f.t[i].name);
        r.t[i].dtype = SV_DT_F32;
        r.t[i].ndim = f.t[i].ndim;
        memcpy(r.t[i].shape, f.t[i].shape, sizeof r.t[i].shape);
        r.t[i].data = r.buf[i];
    }
    sv_st_close(&f);
    return r;
}

static void free_all(tensors *r)
{
    for (int i = 0; i < r->n; i++) {
        free((char *)r->t[i].name);
        free(r->buf[i]);
    }
    free(r->t);
    free(r->buf);
}

static int find(const tensors *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->t[i].name, name)) return i;
    die("no tensor", name);
    return -1;
}

static void drop(tensors *r, int i)
{
    free((char *)r->t[i].name);
    free(r->buf[i]);
    r->t[i] = r->t[r->n - 1];
    r->buf[i] = r->buf[r->n - 1];
    r->n--;
}

static void add(tensors *r, const char *name, int64_t n)
{
    r->buf[r->n] = xcalloc((size_t)n, sizeof(double));
    r->t[r->n] = (sv_st_wtensor){sv_strdup(name), SV_DT_F32, 1, {n}, r->buf[r->n]};
    r->n++;
}

/* tmp/case/{config.json, model.safetensors}; cfg_edit "key=json" or NULL. */
static char *make_dir(const char *name, const char *model, const char *key, const char *val, tensors *t)
{
    char *dir = xcalloc(1024, 1), p[1100];
    snprintf(dir, 1024, "%s/%s", tmp, name);
    mkdirs(dir);
    snprintf(p, sizeof p, "%s/%s/config.json", data, model);
    char *text;
    size_t len;
    if (sv_read_file(p, &text, &len) != SV_OK) die("read", sv_errmsg());
    cJSON *j = sv_json_parse_exact(text, len);
    free(text);
    if (key) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, key);
        cJSON_AddItemToObject(j, key, cJSON_Parse(val));
    }
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (sv_write_atomic(p, out, strlen(out)) != SV_OK) die("write", sv_errmsg());
    free(out);
    if (t) {
        snprintf(p, sizeof p, "%s/model.safetensors", dir);
        if (sv_st_write(p, t->t, t->n) != SV_OK) die("write", sv_errmsg());
    }
    return dir;
}

/* Load must fail with SV_EINPUT and a message holding each fragment. */
static void refuse(const char *dir, const char *f1, const char *f2)
{
    sv_model m;
    sv_rc rc = sv_model_load(&m, dir, 32);
    CHECK(rc == SV_EINPUT, "%s: loaded (rc %d)", dir, (int)rc);
    if (rc == SV_OK) sv_model_free(&m);
    const char *msg = sv_errmsg();
    CHECK(strstr(msg, tmp) != NULL, "%s: message does not name the file: %s", dir, msg);
    CHECK(strstr(msg, f1) != NULL, "%s: message lacks '%s': %s", dir, f1, msg);
    CHECK(!f2 || strstr(msg, f2) != NULL, "%s: message lacks '%s': %s", dir, f2, msg);
    printf("  refused as expected: %s\n", msg);
}

/* The residual after the last block for a few tokens. */
static float *run(const char *dir)
{
    sv_model m;
    if (sv_model_load(&m, dir, 32) != SV_OK) {
        CHECK(0, "%s: %s", dir, sv_errmsg());
        return NULL;
    }
    sv_model_ws ws;
    if (sv_model_ws_init(&ws, &m, 8, 1) != SV_OK) die("ws", sv_errmsg());
    const int32_t ids[8] = {511, 3, 17, 200, 5, 400, 9, 1};
    float *out = xcalloc(8 * (size_t)m.cfg.d_model, sizeof(float));
    if (sv_model_prefix(&ws, ids, 8, (sv_hook){SV_HOOK_RESID_POST, m.cfg.n_layers - 1}, out) != SV_OK)
        die("prefix", sv_errmsg());
    sv_model_ws_free(&ws);
    sv_model_free(&m);
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 3) die("usage: test_model_errors DATA_DIR TMP_DIR", NULL);
    data = argv[1];
    tmp = argv[2];
    sv_fwd_set_threads(1);
    mkdirs(tmp);
    char ref_dir[1024], p[1100];
    snprintf(ref_dir, sizeof ref_dir, "%s/gpt2", data);
    float *ref = run(ref_dir);
    const size_t n = 8 * 64 * sizeof(float);

    /* Names without "transformer." plus the old causal-mask buffers. */
    {
        tensors t = read_all("gpt2");
        for (int i = 0; i < t.n; i++) {
            char *s = sv_strdup(t.t[i].name + strlen("transformer."));
            free((char *)t.t[i].name);
            t.t[i].name = s;
        }
        add(&t, "h.0.attn.bias", 16);
        add(&t, "h.2.attn.masked_bias", 1);
        char *d = make_dir("gpt2_noprefix", "gpt2", NULL, NULL, &t);
        float *o = run(d);
        CHECK(o && !memcmp(o, ref, n), "unprefixed names give another model");
        free(o);
        free(d);
        free_all(&t);
    }
    /* Sharded through an index, in bf16 and f16 (upcast on load). */
    {
        tensors t = read_all("gpt2");
        char *d = make_dir("gpt2_sharded", "gpt2", NULL, NULL, NULL);
        int half = t.n / 2;
        snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", d);
        if (sv_st_write(p, t.t, half) != SV_OK) die("write", sv_errmsg());
        snprintf(p, sizeof p, "%s/model-00002-of-00002.safetensors", d);
        if (sv_st_write(p, t.t + half, t.n - half) != SV_OK) die("write", sv_errmsg());
        cJSON *ix = cJSON_CreateObject(), *wm = cJSON_AddObjectToObject(ix, "weight_map");
        cJSON_AddObjectToObject(ix, "metadata");
        for (int i = 0; i < t.n; i++)
            cJSON_AddStringToObject(wm, t.t[i].name, i < half ? "model-00001-of-00002.safetensors"
                                                                : "model-00002-of-00002.safetensors");
        char *txt = cJSON_Print(ix);
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
        if (sv_write_atomic(p, txt, strlen(txt)) != SV_OK) die("write", sv_errmsg());
        float *o = run(d);
        CHECK(o && !memcmp(o, ref, n), "sharded checkpoint gives another model");
        free(o);
        /* A shard name that leaves the directory. */
        cJSON_ReplaceItemInObject(wm, "transformer.wte.weight", cJSON_CreateString("../model.safetensors"));
        free(txt);
        txt = cJSON_Print(ix);
        if (sv_write_atomic(p, txt, strlen(txt)) != SV_OK) die("write", sv_errmsg());
        refuse(d, "model.safetensors.index.json", "weight_map.transformer.wte.weight");
        free(txt);
        cJSON_Delete(ix);
        free(d);
        free_all(&t);
    }
    {
        tensors t = read_all("gpt2");
        for (int i = 0; i < t.n; i++) t.t[i].dtype = SV_DT_BF16;
        char *d = make_dir("gpt2_bf16", "gpt2", NULL, NULL, &t);
        float *o = run(d);
        double md = 0;
        for (size_t i = 0; o && i < 8 * 64; i++) md = fmax(md, fabs(o[i] - ref[i]));
        CHECK(o && md > 0 && md < 0.5, "bf16 copy: max diff %g", md);
        free(o);
        free(d);
        free_all(&t);
    }
    /* Missing, unexpected, duplicated, misshapen tensors. */
    {
        tensors t = read_all("gpt2");
        drop(&t, find(&t, "transformer.h.1.mlp.c_fc.bias"));
        char *d = make_dir("missing", "gpt2", NULL, NULL, &t);
        refuse(d, "transformer.h.1.mlp.c_fc.bias", "missing");
        free(d);
        free_all(&t);
    }
    {
        tensors t = read_all("gpt2");
        add(&t, "transformer.h.0.attn.extra", 4);
        char *d = make_dir("extra", "gpt2", NULL, NULL, &t);
        refuse(d, "transformer.h.0.attn.extra", "model.safetensors");
        free(d);
        free_all(&t);
    }
    {
        tensors t = read_all("gpt2");
        add(&t, "wte.weight", 512 * 64);
        t.t[t.n - 1].ndim = 2;
        t.t[t.n - 1].shape[0] = 512;
        t.t[t.n - 1].shape[1] = 64;
        char *d = make_dir("duplicate", "gpt2", NULL, NULL, &t);
        refuse(d, "wte.weight", "twice");
        free(d);
        free_all(&t);
    }
    {
        tensors t = read_all("gpt2");
        int i = find(&t, "transformer.h.0.ln_1.weight");
        t.t[i].shape[0] = 63;
        char *d = make_dir("shape", "gpt2", NULL, NULL, &t);
        refuse(d, "transformer.h.0.ln_1.weight", "[63]");
        free(d);
        free_all(&t);
    }
    {
        tensors t = read_all("llama3"); /* untied: lm_head.weight is required */
        drop(&t, find(&t, "lm_head.weight"));
        char *d = make_dir("untied_no_head", "llama3", NULL, NULL, &t);
        refuse(d, "lm_head.weight", "missing");
        free(d);
        free_all(&t);
    }
    /* config.json fields. */
    {
        char *d = make_dir("bert", "gpt2", "model_type", "\"bert\"", NULL);
        refuse(d, "config.json", "model_type");
        free(d);
        d = make_dir("yarn", "llama3", "rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4}", NULL);
        refuse(d, "config.json", "rope_scaling.rope_type");
        free(d);
        d = make_dir("gqa", "llama3", "num_key_value_heads", "3", NULL);
        refuse(d, "config.json", "num_key_value_heads");
        free(d);
        d = make_dir("neox_odd_rotary", "pythia", "rotary_pct", "0.3125", NULL); /* 16 * 0.3125 = 5 dims */
        refuse(d, "config.json", "rotary");
        free(d);
        d = make_dir("float_layers", "gpt2", "n_layer", "2.5", NULL);
        refuse(d, "config.json", "n_layer");
        free(d);
        d = make_dir("no_weights", "gpt2", NULL, NULL, NULL);
        refuse(d, "model.safetensors", NULL);
        free(d);
    }
    /* Defaults: a llama config without tie_word_embeddings is untied
     * (LlamaConfig's default), so the tied llama3_rope_scaled weights miss
     * lm_head.weight. */
    {
        tensors t = read_all("llama3_rope_scaled");
        char *d = make_dir("llama_tie_default", "llama3_rope_scaled", "tie_word_embeddings", "null", &t);
        refuse(d, "lm_head.weight", "missing");
        free(d);
        free_all(&t);
    }
    /* Token-id lists (Llama-3.1 Instruct) and defaults per family. */
    {
        sv_model_cfg c;
        const char *j = "{\"model_type\":\"llama\",\"eos_token_id\":[128001,128008,128009],\"bos_token_id\":128000}";
        CHECK(sv_model_cfg_parse(&c, j, strlen(j), "x/config.json") == SV_OK && c.eos == 128001 && c.bos == 128000,
              "eos list: %s", sv_errmsg());
        CHECK(!c.tied && c.n_kv_heads == 32 && c.head_dim == 128 && c.rope_theta == 10000 && c.norm_eps == 1e-6,
              "LlamaConfig defaults");
        j = "{\"model_type\":\"gemma2\"}";
        CHECK(sv_model_cfg_parse(&c, j, strlen(j), "x/config.json") == SV_OK && c.tied && c.head_dim == 256 &&
                  c.n_kv_heads == 4 && c.attn_softcap == 50 && c.final_softcap == 30 && c.sliding_window == 4096 &&
                  fabs(c.attn_scale - 1.0 / 16) < 1e-15 && c.embed_scale,
              "Gemma2Config defaults");
        j = "{\"model_type\":\"gemma2\",\"attn_logit_softcapping\":null,\"final_logit_softcapping\":null}";
        CHECK(sv_model_cfg_parse(&c, j, strlen(j), "x/config.json") == SV_OK && c.attn_softcap == 0 &&
                  c.final_softcap == 0, "null soft-caps");
        j = "{\"model_type\":\"gpt2\"}";
        CHECK(sv_model_cfg_parse(&c, j, strlen(j), "x/config.json") == SV_OK && c.tied && c.d_ff == 3072 &&
                  c.act == SV_ACT_GELU_TANH && c.vocab == 50257, "GPT2Config defaults");
        j = "{\"model_type\":\"gpt_neox\"}";
        CHECK(sv_model_cfg_parse(&c, j, strlen(j), "x/config.json") == SV_OK && !c.tied && c.rotary_dim == 24 &&
                  c.parallel_residual && c.act == SV_ACT_GELU_ERF, "GPTNeoXConfig defaults");
    }
    /* NeoX: the aliases partial_rotary_factor / rope_theta are overridden
     * by rotary_pct / rotary_emb_base, as in GPTNeoXConfig. */
    {
        char pyd[1024];
        snprintf(pyd, sizeof pyd, "%s/pythia", data);
        tensors t = read_all("pythia");
        char *d = make_dir("neox_alias", "pythia", "rope_theta", "20000", &t);
        float *a = run(pyd), *b = run(d);
        CHECK(a && b && !memcmp(a, b, n), "rope_theta alias changed the model");
        free(a);
        free(b);
        free(d);
        free_all(&t);
    }
    /* Hooks, token ids, lengths. */
    {
        sv_model m;
        if (sv_model_load(&m, ref_dir, 32) != SV_OK) die("load", sv_errmsg());
        sv_hook h;
        CHECK(sv_hook_parse(&h, "blocks.2.hook_resid_post", &m.cfg) == SV_OK && h.layer == 2 &&
                  h.kind == SV_HOOK_RESID_POST, "blocks.2.hook_resid_post refused");
        CHECK(sv_hook_parse(&h, "blocks.3.hook_resid_pre", &m.cfg) == SV_EINPUT && strstr(sv_errmsg(), "beyond"),
              "hook beyond the last layer: %s", sv_errmsg());
        CHECK(sv_hook_parse(&h, "blocks.0.attn.hook_q", &m.cfg) == SV_EINPUT && strstr(sv_errmsg(), "hook_resid_pre"),
              "unsupported hook: %s", sv_errmsg());
        CHECK(sv_hook_parse(&h, "blocks.99999999999999999999.hook_resid_pre", &m.cfg) == SV_EINPUT, "huge layer");
        sv_model_ws ws;
        if (sv_model_ws_init(&ws, &m, 200, 1) != SV_OK) die("ws", sv_errmsg());
        int32_t ids[200] = {0};
        float *out = xcalloc(200 * 64, sizeof(float));
        ids[3] = 512;
        CHECK(sv_model_prefix(&ws, ids, 8, (sv_hook){SV_HOOK_RESID_PRE, 1}, out) == SV_EINPUT &&
                  strstr(sv_errmsg(), "vocabulary"), "token id >= vocab: %s", sv_errmsg());
        ids[3] = 0;
        CHECK(sv_model_prefix(&ws, ids, 129, (sv_hook){SV_HOOK_RESID_PRE, 1}, out) == SV_EINPUT &&
                  strstr(sv_errmsg(), "positions"), "too long: %s", sv_errmsg());
        CHECK(sv_model_suffix(&ws, (sv_hook){SV_HOOK_MLP_OUT, 1}, out, 8, out) == SV_EINPUT,
              "suffix from hook_mlp_out accepted");
        free(out);
        sv_model_ws_free(&ws);
        sv_model_free(&m);
    }
    free(ref);
    if (tu_failures()) {
        fprintf(stderr, "%d failures\n", tu_failures());
        return 1;
    }
    printf("ok\n");
    return 0;
}
