/* Random weights for the forward-pass tests (test_fwdmem, test_decode):
 * a 64-bit LCG the test seeds through fwd_rng before first use, vectors in
 * float or double, and freeing a hand-built SAE. Include after testutil.h. */
#ifndef SAEVAL_TESTS_FWD_RAND_H
#define SAEVAL_TESTS_FWD_RAND_H
#include <stdint.h>
#include <stdlib.h>
#include "saeval/sae.h"

static uint64_t fwd_rng;
static double unit(void) /* uniform [-1, 1) */
{
    fwd_rng = fwd_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(fwd_rng >> 11) / 4503599627370496.0 - 1.0;
}

static void *vec(int prec, size_t n, double scale, double shift)
{
    void *p = xcalloc(n, prec == 64 ? sizeof(double) : sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double v = scale * unit() + shift;
        if (prec == 64) ((double *)p)[i] = v;
        else ((float *)p)[i] = (float)v;
    }
    return p;
}

/* Every array a test may have set (NULL ones are fine). */
static void free_sae(sv_sae *s)
{
    free(s->W_enc); free(s->W_dec); free(s->b_dec); free(s->b_enc); free(s->threshold); free(s->W_skip);
    free(s->b_gate); free(s->r_mag); free(s->b_mag); free(s->dec_norm);
}
#endif
