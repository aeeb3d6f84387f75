/* Hand-computed checks of the reference (tests/ref.c) for the architectures
 * added for issue 11: signed top-k, groupmax, skip connection and a
 * transcoder compared with its targets. Every expected number below is
 * worked out by hand in the comments, not by running any code. */
#define TEST_NAME "test_ref_arch"
#include "testutil.h"
#include "ref.h"

#include <math.h>
#include <string.h>

static const double I4[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
static const double Z4[4] = {0, 0, 0, 0};

static ref_sae ident(ref_arch a, int k)
{
    ref_sae s;
    memset(&s, 0, sizeof s);
    s.arch = a;
    s.d_in = s.d_sae = 4;
    s.k = k;
    s.W_enc = I4; s.b_enc = Z4; s.W_dec = I4; s.b_dec = Z4;
    return s; /* h = x, xhat = f */
}

static void expect(const char *what, const double *got, const double *want, int n)
{
    for (int i = 0; i < n; i++)
        CHECK(got[i] == want[i], "%s[%d]: %.17g, want %.17g", what, i, got[i], want[i]);
}

int main(void)
{
    double f[4], xh[4];
    /* signed top-2 of h = (3, -5, 1, 2): |h| largest are -5 and 3, signs kept. */
    ref_sae s = ident(REF_SIGNED_TOPK, 2);
    const double x1[4] = {3, -5, 1, 2};
    ref_forward(&s, x1, f, xh);
    expect("signed f", f, (const double[]){3, -5, 0, 0}, 4);
    expect("signed xhat", xh, (const double[]){3, -5, 0, 0}, 4);
    /* margin: kept |h| 5, 3; gap to the third (2) is 1; smallest kept |h| 3 -> 1 */
    CHECK(ref_margin(&s, x1) == 1, "signed margin %g", ref_margin(&s, x1));

    /* groupmax k=2: groups {0,1}, {2,3}; ReLU(h) = (3, 0, 1, 2) -> keep 0 and 3. */
    s = ident(REF_GROUPMAX, 2);
    ref_forward(&s, x1, f, xh);
    expect("groupmax f", f, (const double[]){3, 0, 0, 2}, 4);
    /* all-negative group keeps a zero; tie 1 = 1 goes to the lower index 2. */
    const double x2[4] = {-1, -2, 1, 1};
    ref_forward(&s, x2, f, xh);
    expect("groupmax f ties", f, (const double[]){0, 0, 1, 0}, 4);

    /* transcoder d_in 4 -> d_out 2, standard ReLU, skip connection:
     * f = ReLU(x) = (1, 2, 3, 4); W_dec rows (1,0) (0,1) (1,1) (0,0):
     * f.W_dec = (1+3, 2+3) = (4, 5); + b_dec (0.5, -0.5) = (4.5, 4.5);
     * W_skip rows (1,0,0,0) (0,0,0,1): + (1, 4) -> (5.5, 8.5). */
    static const double Wd[8] = {1, 0, 0, 1, 1, 1, 0, 0}, bd[2] = {0.5, -0.5};
    static const double Wskip[8] = {1, 0, 0, 0, 0, 0, 0, 1};
    s = ident(REF_STANDARD, 0);
    s.d_out = 2; s.W_dec = Wd; s.b_dec = bd; s.W_skip = Wskip;
    const double x3[4] = {1, 2, 3, 4};
    ref_forward(&s, x3, f, xh);
    expect("transcoder xhat", xh, (const double[]){5.5, 8.5}, 2);

    /* Metrics against targets: one sequence of 2 tokens, both x3, targets
     * (5.5, 9.5) and (5.5, 8.5): errors 1 and 0 -> mse 0.5; l0 4; l1 10;
     * target mean (5.5, 9), population variance ((0.5^2) + (0.5^2))/2 = 0.25
     * -> explained_variance 1 - 0.5/0.25 = -1. */
    const double X[8] = {1, 2, 3, 4, 1, 2, 3, 4}, Y[4] = {5.5, 9.5, 5.5, 8.5};
    const int64_t off[2] = {0, 2};
    ref_data dt = {2, 4, X, NULL, 1, off, 16, 0, Y};
    ref_metrics m;
    CHECK(ref_eval(&s, &dt, &m) == 0, "ref_eval");
    CHECK(m.mse == 0.5 && m.l0 == 4 && m.l1 == 10 && m.explained_variance == -1, "mse %g l0 %g l1 %g ev %g",
          m.mse, m.l0, m.l1, m.explained_variance);
    CHECK(m.encoder_decoder_cosine_sim[0] == 0, "cos across spaces");
    ref_metrics_free(&m);
    /* a transcoder without targets is refused */
    dt.y = NULL;
    CHECK(ref_eval(&s, &dt, &m) != 0, "no targets");
    printf("test_ref_arch: ok\n");
    return 0;
}
