/* The SAE format registry and the format-independent loading steps. */
#include "saeval/format.h"

#include <stdlib.h>
#include <string.h>

/* One line per format; the first is the default. */
const sv_format *const sv_formats[] = {
    &sv_fmt_saelens,
    &sv_fmt_gemma_scope,
    &sv_fmt_llama_scope,
    &sv_fmt_sparsify,
    &sv_fmt_openai,
    &sv_fmt_dictionary_learning,
};
const int sv_n_formats = (int)(sizeof sv_formats / sizeof *sv_formats);

const sv_format *sv_format_probe(const char *path)
{
    const sv_format *best = NULL;
    int best_score = 0;
    for (int i = 0; i < sv_n_formats; i++) {
        int s = sv_formats[i]->probe(path);
        if (s > best_score) { best = sv_formats[i]; best_score = s; }
    }
    return best;
}

const sv_format *sv_format_for(const char *path)
{
    const sv_format *f = sv_format_probe(path);
    return f ? f : sv_formats[0];
}

sv_rc sv_sae_load_cfg(const char *path, sv_sae_cfg *c)
{
    return sv_format_for(path)->read_config(path, c);
}

sv_rc sv_sae_declare_transcoder(sv_sae_cfg *c, const char *path)
{
    if (c->apply_b_dec_to_input || c->normalize != SV_NORM_NONE)
        return sv_fail(SV_EINPUT, "%s: transcoder: declared a transcoder in the config, but it %s its input", path,
                       c->apply_b_dec_to_input ? "subtracts b_dec from" : "normalizes");
    c->transcoder = 1;
    return SV_OK;
}

sv_rc sv_sae_load(sv_sae *s, const char *path, int precision, int has_scale, double scale)
{
    memset(s, 0, sizeof *s);
    if (precision != 16 && precision != 32 && precision != 64)
        return sv_fail(SV_EINTERNAL, "%s: precision must be 16, 32 or 64 (got %d)", path, precision);
    /* bfloat16 mode (16) holds float32 weights; the forward pass rounds its
     * own copy of W_enc for the encoder GEMM. */
    s->precision = precision == 16 ? 32 : precision;
    s->bf16_encoder = precision == 16;
    s->scaling_factor = 1.0;
    s->dir = sv_strdup(path);
    if (!s->dir) return SV_EINTERNAL;
    sv_rc rc = sv_format_for(path)->load(s, path, has_scale, scale);
    if (rc == SV_OK) rc = sv_sae_derive(s);
    if (rc != SV_OK) sv_sae_free(s);
    return rc;
}
