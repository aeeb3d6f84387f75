/* The forward pass's memory against what the plan counts for it (issue 15):
 * for each architecture, both precisions, one and two threads, over blocks
 * of two row tiles and a shorter last block, on an SAE with three panels
 * (the last one partial):
 *  - with one thread, the heap the forward gained from sv_fwd_init to the
 *    last block, measured by glibc (mallinfo2: in-use heap plus mmapped
 *    chunks; worker threads would allocate in other arenas), is within
 *    sv_fwd_mem_bytes, and sv_fwd_bytes (the runner's check) agrees with it;
 *  - with any thread count, sv_fwd_bytes <= sv_fwd_mem_bytes;
 *  - all of it for both decode orders (row by row, latent-major);
 *  - a non-topk SAE whose L0 is far above SV_FWD_PLAN_L0 is seen by
 *    sv_fwd_bytes as over the count (so the runner warns), and the heap
 *    agrees.
 * Under a sanitizer's malloc, mallinfo2 sees nothing: the heap checks are
 * skipped, the others stay. The codes' values are checked elsewhere
 * (native, e2e, identity tests). */
#define TEST_NAME "test_fwdmem"
#include "testutil.h"
#include "saeval/forward.h"
#include "fwd_rand.h"

#include <malloc.h>
#include <math.h>
#include <string.h>

enum { D = 32, M = 4100, ROWS = 2 * SV_GEMM_ROWS, N_LAST = 1500 };


/* An SAE whose pre-activations are about unit normal; a latent fires when
 * its pre-activation exceeds t (non-topk), so t sets the L0. */
static void make(sv_sae *s, sv_arch a, int prec, double t)
{
    memset(s, 0, sizeof *s);
    s->cfg.arch = a;
    s->cfg.d_in = D;
    s->cfg.d_sae = M;
    s->cfg.k = a == SV_ARCH_GROUPMAX ? 41 : (a == SV_ARCH_TOPK || a == SV_ARCH_SIGNED_TOPK) ? 64 : 0;
    s->precision = prec;
    s->scaling_factor = 1;
    const double sc = sqrt(3.0 / D); /* uniform weights of variance 1/D */
    s->W_enc = vec(prec, (size_t)D * M, sc, 0);
    s->W_dec = vec(prec, (size_t)M * D, sc, 0);
    s->b_dec = vec(prec, D, 0, 0);
    if (a == SV_ARCH_GATED) {
        s->b_gate = vec(prec, M, 0, -t);
        s->r_mag = vec(prec, M, 0, 0);
        s->b_mag = vec(prec, M, 0, 0);
    } else {
        s->b_enc = vec(prec, M, 0, a == SV_ARCH_STANDARD ? -t : 0);
    }
    if (a == SV_ARCH_JUMPRELU) s->threshold = vec(prec, M, 0, t);
}

static size_t heap_now(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static int n_checked, glibc_heap; /* glibc_heap: mallinfo2 sees malloc (not under ASan or valgrind) */

/* Runs blocks ROWS, ROWS, N_LAST; returns the largest mean L0 of a block. */
static double run_blocks(const char *what, sv_sae *s, const float *x, int threads, int over)
{
    sv_fwd_set_threads(threads);
    const uint64_t est = sv_fwd_mem_bytes(&s->cfg, s->precision, ROWS);
    const size_t h0 = heap_now();
    sv_fwd w;
    CHECK(sv_fwd_init(&w, s, ROWS) == SV_OK, "%s: %s", what, sv_errmsg());
    double l0max = 0;
    const int64_t n[3] = {ROWS, ROWS, N_LAST};
    for (int b = 0; b < 3; b++) {
        CHECK(sv_fwd_run(&w, x + (size_t)b * ROWS * D, n[b]) == SV_OK, "%s: %s", what, sv_errmsg());
        const double l0 = (double)w.rowptr[n[b]] / (double)n[b];
        if (l0 > l0max) l0max = l0;
    }
    const size_t h1 = heap_now();
    const uint64_t held = sv_fwd_bytes(&w);
    /* What glibc adds per allocation: a header, and the page rounding of
     * an mmapped chunk; fewer than 40 allocations. */
    const double slack = 40.0 * (4096 + 32);
    if (threads == 1 && glibc_heap) {
        const double gained = (double)h1 - (double)h0;
        CHECK(fabs(gained - (double)held) <= slack, "%s: heap gained %.0f bytes, sv_fwd_bytes %llu", what, gained,
              (unsigned long long)held);
        if (!over)
            CHECK(gained <= (double)est + slack, "%s: heap gained %.0f bytes, estimate %llu (L0 %.1f)", what, gained,
                  (unsigned long long)est, l0max);
    }
    if (over)
        CHECK(held > est, "%s: L0 %.1f but sv_fwd_bytes %llu within the estimate %llu", what, l0max,
              (unsigned long long)held, (unsigned long long)est);
    else
        CHECK(held <= est, "%s: sv_fwd_bytes %llu > estimate %llu (L0 %.1f)", what, (unsigned long long)held,
              (unsigned long long)est, l0max);
    sv_fwd_free(&w);
    n_checked++;
    return l0max;
}

int main(void)
{
    fwd_rng = 0x9e3779b97f4a7c15ull;
    static const sv_arch archs[] = {SV_ARCH_STANDARD, SV_ARCH_TOPK, SV_ARCH_JUMPRELU, SV_ARCH_GATED,
                                    SV_ARCH_SIGNED_TOPK, SV_ARCH_GROUPMAX};
    static const char *names[] = {"standard", "topk", "jumprelu", "gated", "signed_topk", "groupmax"};
    const size_t nx = (size_t)3 * ROWS * D;
    float *x = xcalloc(nx, sizeof *x);
    for (size_t i = 0; i < nx; i++) x[i] = (float)(unit() * sqrt(3.0)); /* unit variance */
    sv_sae s;
    char what[128];
    {
        const size_t h0 = heap_now(), n = (size_t)2 << 20;
        char *p = malloc(n);
        if (p) memset(p, 1, n);
        glibc_heap = p && heap_now() >= h0 + n;
        free(p);
        if (!glibc_heap) printf(TEST_NAME ": malloc is not glibc's (sanitizer?): the heap checks are skipped\n");
    }
    /* Warm-up: OpenBLAS and OpenMP allocate their own buffers once. */
    make(&s, SV_ARCH_TOPK, 32, 0);
    run_blocks("warm-up", &s, x, 1, 0);
    run_blocks("warm-up", &s, x, 2, 0);
    free_sae(&s);
    /* Both decode orders (forward.h): latent-major holds its own buffers.
     * Under a sanitizer only the default one: without the heap checks the
     * row-by-row order adds nothing here (forward_decode_orders runs both
     * under the sanitizer too), and this test is among the slowest there. */
    const int lm0 = glibc_heap ? 0 : 1;
    for (int lm = lm0; lm < 2; lm++)
    for (int a = 0; a < 6; a++)
        for (int prec = 32; prec <= 64; prec += 32)
            for (int th = 1; th <= 2; th++) {
                make(&s, archs[a], prec, 2.0); /* L0 about 2.3 % of 4100: ~94 */
                snprintf(what, sizeof what, "%s float%d %d thread%s%s", names[a], prec, th, th > 1 ? "s" : "",
                         lm ? ", latent-major decode" : "");
                sv_fwd_set_decode(lm ? SV_DEC_LATENTS : SV_DEC_ROWS);
                const double l0 = run_blocks(what, &s, x, th, 0);
                sv_fwd_set_decode(SV_DEC_AUTO);
                CHECK(l0 > 10, "%s: L0 %.1f: the case tests nothing", what, l0);
                free_sae(&s);
            }
    /* Non-topk at L0 ~ M/2: beyond the count, and seen so. */
    for (int a = 0; a < 4; a++) {
        if (archs[a] == SV_ARCH_TOPK) continue;
        for (int lm = lm0; lm < 2; lm++) {
            make(&s, archs[a], 32, 0.0);
            snprintf(what, sizeof what, "%s float32 L0 ~ d_sae / 2%s", names[a], lm ? ", latent-major decode" : "");
            sv_fwd_set_decode(lm ? SV_DEC_LATENTS : SV_DEC_ROWS);
            const double l0 = run_blocks(what, &s, x, 1, 1);
            sv_fwd_set_decode(SV_DEC_AUTO);
            CHECK(l0 > 4 * SV_FWD_PLAN_L0, "%s: L0 %.1f", what, l0);
            free_sae(&s);
        }
    }
    free(x);
    printf(TEST_NAME ": %d cases ok%s\n", n_checked, glibc_heap ? ", heap measured by glibc" : "");
    return 0;
}
