/* The format-table side of the native formats (format.h): what every
 * native row does, parameterized by the row's name; src/fmt_X.c are thin. */
#include "saeval/nativerow.h"
#include "saeval/nativesae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int sv_nrow_probe(const char *format, const char *path)
{
    /* Above SAELens's 10 (a directory holding cfg.json): a sparsify
     * directory holds a cfg.json too. */
    return sv_native_probe_as(format, path) ? 20 : 0;
}

sv_rc sv_nrow_config(const char *format, const char *path, sv_sae_cfg *c)
{
    sv_native n;
    sv_rc rc = sv_native_load(&n, path, 0);
    if (rc == SV_OK && strcmp(n.format, format) != 0) rc = sv_fail(SV_EINPUT, "%s: not a %s SAE", path, format);
    if (rc == SV_OK) rc = sv_native_cfg(&n, path, c);
    sv_native_free(&n);
    return rc;
}

sv_rc sv_nrow_load(const char *format, sv_sae *s, const char *path, int has_scale, double scale)
{
    (void)scale;
    if (has_scale) return sv_fail(SV_EINPUT, "%s: scaling_factor: only SAELens SAEs take one (this is %s)", path, format);
    sv_native n;
    sv_rc rc = sv_native_load(&n, path, 1);
    if (rc == SV_OK && strcmp(n.format, format) != 0) rc = sv_fail(SV_EINPUT, "%s: not a %s SAE", path, format);
    if (rc == SV_OK) rc = sv_native_fill_sae(&n, path, s);
    sv_native_free(&n);
    return rc;
}

/* Files per format, relative to the SAE directory ("" = the path itself). */
static const struct {
    const char *format;
    const char *files[2];
    sv_ident_kind kinds[2];
} idents[] = {
    {"gemma_scope", {"params.npz", NULL}, {SV_IDENT_STAT}},
    {"llama_scope", {"hyperparams.json", "checkpoints/final.safetensors"}, {SV_IDENT_BYTES, SV_IDENT_STAT}},
    {"sparsify", {"cfg.json", "sae.safetensors"}, {SV_IDENT_BYTES, SV_IDENT_STAT}},
    {"openai", {"", NULL}, {SV_IDENT_STAT}},
    {"dictionary_learning", {"config.json", "ae.pt"}, {SV_IDENT_BYTES, SV_IDENT_STAT}},
};

sv_rc sv_nrow_identity(const char *format, const char *path, sv_ident_visit visit, void *ctx)
{
    for (size_t i = 0; i < sizeof idents / sizeof idents[0]; i++) {
        if (strcmp(idents[i].format, format) != 0) continue;
        for (int f = 0; f < 2 && idents[i].files[f]; f++) {
            const char *rel = idents[i].files[f];
            /* OpenAI names the file itself; Gemma Scope may name the .npz. */
            struct stat st;
            int self = !*rel || (strcmp(format, "gemma_scope") == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode));
            size_t len = strlen(path) + strlen(rel) + 2;
            char *p = sv_malloc(len);
            if (!p) return SV_EINTERNAL;
            if (self) snprintf(p, len, "%s", path);
            else snprintf(p, len, "%s/%s", path, rel);
            visit(ctx, p, idents[i].kinds[f]);
            free(p);
        }
        return SV_OK;
    }
    return sv_fail(SV_EINTERNAL, "%s: unknown native format %s", path, format);
}

sv_rc sv_nrow_describe(const char *format, const char *path, FILE *out)
{
    (void)format; /* the file says which */
    sv_native n;
    sv_rc rc = sv_native_load(&n, path, 0);
    if (rc != SV_OK) return rc;
    fprintf(out, "SAE %s\n", path);
    fprintf(out, "  format                %s%s%s\n", n.format, n.variant[0] ? " " : "", n.variant);
    fprintf(out, "  activation            %s\n", sv_nact_name(n.act));
    fprintf(out, "  d_in                  %lld\n", (long long)n.d_in);
    fprintf(out, "  d_sae                 %lld\n", (long long)n.d_sae);
    if (n.d_out != n.d_in) fprintf(out, "  d_out                 %lld (transcoder)\n", (long long)n.d_out);
    if (n.k) fprintf(out, "  k                     %lld\n", (long long)n.k);
    fprintf(out, "  apply_b_dec_to_input  %s\n", n.apply_b_dec_to_input ? "true" : "false");
    if (n.layer_norm) fprintf(out, "  normalization         layer_norm (per token)\n");
    if (n.note[0]) fprintf(out, "  loading               %s\n", n.note);
    for (int i = 0; i < n.n_files; i++) fprintf(out, "  file                  %s\n", n.files[i]);
    sv_sae_cfg c;
    if (sv_native_cfg(&n, path, &c) != SV_OK) fprintf(out, "  evaluation            %s\n", sv_errmsg());
    sv_native_free(&n);
    return SV_OK;
}
