/* native_forward SAE N X.bin OUT.bin: reads an SAE in a native format
 * (nativesae.c), runs the double reference forward pass (tests/ref.c) on N
 * tokens of X.bin (float64, [N][d_in]) and writes f [d_sae] then xhat [d_out]
 * per token to OUT.bin. Used by tests/native_vs_projects.py (manual check
 * against the projects' own Python classes). */
#include "saeval/nativesae.h"
#include "ref.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    if (argc != 5) { fprintf(stderr, "usage: native_forward SAE N X.bin OUT.bin\n"); return 2; }
    sv_native s;
    if (sv_native_load(&s, argv[1], 1)) { fprintf(stderr, "%s\n", sv_errmsg()); return 2; }
    int n = atoi(argv[2]);
    FILE *fx = fopen(argv[3], "rb"), *fo = fopen(argv[4], "wb");
    if (!fx || !fo) { fprintf(stderr, "cannot open %s or %s\n", argv[3], argv[4]); return 2; }
    static const ref_arch map[] = {REF_STANDARD, REF_JUMPRELU, REF_TOPK, REF_SIGNED_TOPK, REF_GROUPMAX, REF_GATED};
    ref_sae r = {map[s.act], (int)s.d_in, (int)s.d_sae, (int)s.k, 0, s.apply_b_dec_to_input,
                 s.layer_norm ? REF_NORM_LAYER : REF_NORM_NONE, 1, s.W_enc, s.b_enc, s.W_dec, s.b_dec, s.threshold,
                 s.b_gate, s.r_mag, s.b_mag, (int)s.d_out, s.W_skip};
    double *x = malloc(sizeof(double) * s.d_in), *f = malloc(sizeof(double) * s.d_sae), *xh = malloc(sizeof(double) * s.d_out);
    for (int t = 0; t < n; t++) {
        if (fread(x, sizeof(double), s.d_in, fx) != (size_t)s.d_in) return 3;
        ref_forward(&r, x, f, xh);
        fwrite(f, sizeof(double), s.d_sae, fo);
        fwrite(xh, sizeof(double), s.d_out, fo);
    }
    fclose(fx); fclose(fo);
    free(x); free(f); free(xh);
    sv_native_free(&s);
    return 0;
}
