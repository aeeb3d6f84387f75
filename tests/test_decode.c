/* The two decode orders (forward.h: row by row, and latent-major in column
 * strips) against each other and against a plain double loop over the
 * codes: for each architecture, float32 and float64, one and two threads,
 * blocks of two row tiles and a shorter last one, an output width that is
 * not a multiple of SV_DEC_STRIP, and the variants that touch the decode
 * (rescaled top-k codes, layer-norm inputs, a transcoder's wider output
 * with a skip connection):
 *  - the reconstructions and the codes are bit for bit the same;
 *  - the reconstruction is b_dec + sum of code x W_dec row (rescaled codes
 *    divided by the decoder norm), undone normalization and skip added,
 *    within float rounding of the double loop. */
#define TEST_NAME "test_decode"
#include "testutil.h"
#include "saeval/forward.h"
#include "fwd_rand.h"

#include <math.h>
#include <string.h>

enum { D = 40, M = 2600, ROWS = 2 * SV_GEMM_ROWS, N_LAST = 1300, DOUT_X = 300 };

static double at(const void *p, int prec, size_t i) { return prec == 64 ? ((const double *)p)[i] : ((const float *)p)[i]; }

enum { V_PLAIN, V_RESCALE, V_LAYERNORM, V_TRANSCODER };

static void make(sv_sae *s, sv_arch a, int prec, int variant)
{
    memset(s, 0, sizeof *s);
    s->cfg.arch = a;
    s->cfg.d_in = D;
    s->cfg.d_sae = M;
    s->cfg.k = a == SV_ARCH_GROUPMAX ? 26 : (a == SV_ARCH_TOPK || a == SV_ARCH_SIGNED_TOPK) ? 48 : 0;
    s->precision = prec;
    s->scaling_factor = 1;
    const int64_t dout = variant == V_TRANSCODER ? DOUT_X : D;
    if (variant == V_TRANSCODER) { s->cfg.d_out = dout; s->cfg.skip = 1; }
    if (variant == V_LAYERNORM) s->cfg.normalize = SV_NORM_LAYER_NORM;
    const double sc = sqrt(3.0 / D), t = 2.0;
    s->W_enc = vec(prec, (size_t)D * M, sc, 0);
    s->W_dec = vec(prec, (size_t)M * dout, 0.5, 0);
    s->b_dec = vec(prec, (size_t)dout, 0.1, 0);
    if (variant == V_TRANSCODER) s->W_skip = vec(prec, (size_t)dout * D, 0.2, 0);
    if (a == SV_ARCH_GATED) {
        s->b_gate = vec(prec, M, 0, -t);
        s->r_mag = vec(prec, M, 0.1, 0);
        s->b_mag = vec(prec, M, 0.1, 0);
    } else {
        s->b_enc = vec(prec, M, 0.1, a == SV_ARCH_STANDARD ? -t : 0);
    }
    if (a == SV_ARCH_JUMPRELU) s->threshold = vec(prec, M, 0, t);
    if (variant == V_RESCALE) {
        s->cfg.rescale_acts_by_decoder_norm = 1;
        s->dec_norm = xcalloc(M, sizeof(double));
        for (int64_t j = 0; j < M; j++) {
            double q = 0;
            for (int64_t i = 0; i < dout; i++) q += at(s->W_dec, prec, (size_t)(j * dout + i)) * at(s->W_dec, prec, (size_t)(j * dout + i));
            s->dec_norm[j] = sqrt(q);
        }
    }
}

/* Outputs of one block: reconstruction and CSR, copied. */
typedef struct { double *xhat; int64_t *rowptr; int32_t *idx; double *val; } outs;

static void run(const sv_sae *s, const float *x, int mode, int threads, outs o[3], const char *what)
{
    sv_fwd_set_threads(threads);
    sv_fwd_set_decode(mode);
    sv_fwd w;
    CHECK(sv_fwd_init(&w, s, ROWS) == SV_OK, "%s: %s", what, sv_errmsg());
    CHECK(w.latent_major == (mode == SV_DEC_LATENTS), "%s: decode order not as asked", what);
    const int64_t n[3] = {ROWS, ROWS, N_LAST}, dout = sv_cfg_d_out(&s->cfg);
    for (int b = 0; b < 3; b++) {
        CHECK(sv_fwd_run(&w, x + (size_t)b * ROWS * D, n[b]) == SV_OK, "%s: %s", what, sv_errmsg());
        const int64_t nc = w.rowptr[n[b]];
        o[b].xhat = xcalloc((size_t)(n[b] * dout), sizeof(double));
        o[b].rowptr = xcalloc((size_t)n[b] + 1, sizeof(int64_t));
        o[b].idx = xcalloc((size_t)nc + 1, sizeof(int32_t));
        o[b].val = xcalloc((size_t)nc + 1, sizeof(double));
        memcpy(o[b].xhat, w.xhat, (size_t)(n[b] * dout) * sizeof(double));
        memcpy(o[b].rowptr, w.rowptr, (size_t)(n[b] + 1) * sizeof(int64_t));
        memcpy(o[b].idx, w.idx, (size_t)nc * sizeof(int32_t));
        memcpy(o[b].val, w.val, (size_t)nc * sizeof(double));
    }
    sv_fwd_free(&w);
    sv_fwd_set_decode(SV_DEC_AUTO);
}

static void free_outs(outs o[3])
{
    for (int b = 0; b < 3; b++) { free(o[b].xhat); free(o[b].rowptr); free(o[b].idx); free(o[b].val); }
}

/* The double loop: x^ = b_dec + sum_j f_j W_dec[j] (f_j / ||W_dec[j]|| when
 * rescaled), layer norm undone with the row's statistics, skip added. */
static void check_reference(const sv_sae *s, const float *x, const outs o[3], const char *what)
{
    const int prec = s->precision;
    const int64_t n[3] = {ROWS, ROWS, N_LAST}, dout = sv_cfg_d_out(&s->cfg);
    double worst = 0;
    int64_t active = 0;
    for (int b = 0; b < 3; b++)
        for (int64_t r = 0; r < n[b]; r++) {
            const float *xr = x + ((size_t)b * ROWS + (size_t)r) * D;
            double mu = 0, sd = 0;
            if (s->cfg.normalize == SV_NORM_LAYER_NORM) {
                for (int64_t i = 0; i < D; i++) mu += xr[i];
                mu /= D;
                for (int64_t i = 0; i < D; i++) sd += (xr[i] - mu) * (xr[i] - mu);
                sd = sqrt(sd / (D - 1)); /* SAELens: unbiased, scale sigma back on */
            }
            for (int64_t i = 0; i < dout; i++) {
                double v = 0, mag = 0;
                for (int64_t q = o[b].rowptr[r]; q < o[b].rowptr[r + 1]; q++) {
                    const int32_t j = o[b].idx[q];
                    const double f = s->dec_norm ? o[b].val[q] / s->dec_norm[j] : o[b].val[q];
                    v += f * at(s->W_dec, prec, (size_t)(j * dout + i));
                    mag += fabs(f * at(s->W_dec, prec, (size_t)(j * dout + i)));
                }
                v += at(s->b_dec, prec, (size_t)i);
                if (s->cfg.normalize == SV_NORM_LAYER_NORM) v = v * sd + mu;
                if (s->W_skip)
                    for (int64_t c = 0; c < D; c++) {
                        v += (double)xr[c] * at(s->W_skip, prec, (size_t)(i * D + c));
                        mag += fabs((double)xr[c] * at(s->W_skip, prec, (size_t)(i * D + c)));
                    }
                const double tol = (prec == 64 ? 1e-13 : 4e-6) * (mag + fabs(v) + 1) * (sd > 0 ? sd : 1);
                const double err = fabs(o[b].xhat[r * dout + i] - v);
                if (err / tol > worst) worst = err / tol;
                CHECK(err <= tol, "%s: block %d row %lld out %lld: %.17g vs reference %.17g", what, b, (long long)r,
                      (long long)i, o[b].xhat[r * dout + i], v);
            }
            active += o[b].rowptr[r + 1] - o[b].rowptr[r];
        }
    CHECK(active > 10 * (2 * ROWS + N_LAST), "%s: %lld codes in all: the case tests little", what, (long long)active);
}

int main(void)
{
    fwd_rng = 0x2545f4914f6cdd1dull;
    static const sv_arch archs[] = {SV_ARCH_STANDARD, SV_ARCH_TOPK, SV_ARCH_JUMPRELU, SV_ARCH_GATED,
                                    SV_ARCH_SIGNED_TOPK, SV_ARCH_GROUPMAX};
    static const char *names[] = {"standard", "topk", "jumprelu", "gated", "signed_topk", "groupmax"};
    static const char *vnames[] = {"", " rescaled", " layer-norm", " transcoder+skip"};
    const size_t nx = (size_t)3 * ROWS * D;
    float *x = xcalloc(nx, sizeof *x);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(unit() * sqrt(3.0) + 0.3);
    int cases = 0;
    char what[160];
    for (int a = 0; a < 6; a++)
        for (int v = 0; v < 4; v++) {
            if (v == V_RESCALE && archs[a] != SV_ARCH_TOPK) continue;
            if (v == V_LAYERNORM && archs[a] != SV_ARCH_STANDARD && archs[a] != SV_ARCH_JUMPRELU) continue;
            if (v == V_TRANSCODER && archs[a] != SV_ARCH_TOPK && archs[a] != SV_ARCH_JUMPRELU) continue;
            for (int prec = 32; prec <= 64; prec += 32) {
                sv_sae s;
                make(&s, archs[a], prec, v);
                outs rows[3], lat[3];
                snprintf(what, sizeof what, "%s%s float%d", names[a], vnames[v], prec);
                run(&s, x, SV_DEC_ROWS, 1, rows, what);
                check_reference(&s, x, rows, what);
                for (int th = 1; th <= 2; th++) {
                    snprintf(what, sizeof what, "%s%s float%d, latent-major, %d thread(s)", names[a], vnames[v], prec, th);
                    run(&s, x, SV_DEC_LATENTS, th, lat, what);
                    const int64_t n[3] = {ROWS, ROWS, N_LAST}, dout = sv_cfg_d_out(&s.cfg);
                    for (int b = 0; b < 3; b++) {
                        const int64_t nc = rows[b].rowptr[n[b]];
                        CHECK(memcmp(rows[b].rowptr, lat[b].rowptr, (size_t)(n[b] + 1) * sizeof(int64_t)) == 0 &&
                                  memcmp(rows[b].idx, lat[b].idx, (size_t)nc * sizeof(int32_t)) == 0 &&
                                  memcmp(rows[b].val, lat[b].val, (size_t)nc * sizeof(double)) == 0,
                              "%s: block %d: codes differ", what, b);
                        for (int64_t e = 0; e < n[b] * dout; e++)
                            CHECK(memcmp(&rows[b].xhat[e], &lat[b].xhat[e], sizeof(double)) == 0,
                                  "%s: block %d row %lld out %lld: %.17g row by row, %.17g latent-major", what, b,
                                  (long long)(e / dout), (long long)(e % dout), rows[b].xhat[e], lat[b].xhat[e]);
                    }
                    free_outs(lat);
                    cases++;
                }
                free_outs(rows);
                free_sae(&s);
            }
        }
    free(x);
    printf(TEST_NAME ": %d cases: latent-major decode bit-identical to row by row, both against a double loop\n", cases);
    return 0;
}
