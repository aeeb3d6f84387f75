/* GEMM layer (gemm.h): for every backend usable here, a tile's bits depend
 * on its inputs and shape only (not on threads, alignment or leading
 * dimensions), and its values agree with a plain double loop; the bfloat16
 * tile against a double loop on inputs rounded by this file's own code;
 * backend selection errors; the OpenBLAS kernel probe (child processes of
 * the saeval binary given as argv[1]). */
#define TEST_NAME "test_gemm"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/gemm.h"
#include "saeval/half.h"
#define TU_CHECK 1 /* counting CHECK: report every failure */
#include "testutil.h"

static uint64_t rs = 0x2545f4914f6cdd1dull;
static double urand(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}

/* Shapes: odd sizes, and one of saeval's full encoder tiles. */
static const int64_t shapes[][3] = {{37, 53, 29}, {200, 300, 77}, {1024, 2048, 64}};

/* Zeroed [rows][ld] array with off spare elements in front. */
static void *make(int64_t rows, int64_t ld, int64_t off, size_t es)
{
    return xcalloc((size_t)(rows * ld + off + 16), es);
}

/* float32 and float64 tiles of backend b at one shape. */
static void check_tiles(const sv_gemm_backend *b, int64_t m, int64_t n, int64_t k)
{
    /* A [m][k]; B a panel at column 5 of a [k][3n+5] array; C compact. */
    const int64_t ldb = 3 * n + 5;
    float *A = make(m, k, 0, sizeof(float)), *Bw = make(k, ldb, 0, sizeof(float));
    double *Ad = make(m, k, 0, sizeof(double)), *Bwd = make(k, ldb, 0, sizeof(double));
    for (int64_t i = 0; i < m * k; i++) Ad[i] = A[i] = (float)(2 * urand() - 1);
    for (int64_t i = 0; i < k * ldb; i++) Bwd[i] = Bw[i] = (float)(2 * urand() - 1);
    const float *B = Bw + 5;
    const double *Bd = Bwd + 5;
    float *C = make(m, n, 0, sizeof(float)), *Ct = make(m, n, 0, sizeof(float));
    double *Cd = make(m, n, 0, sizeof(double));
    sv_gemm_f32(0, m, n, k, A, k, B, ldb, C, n);
    sv_gemm_f64(0, m, n, k, Ad, k, Bd, ldb, Cd, n);
    /* The transposed form (Gram blocks): B^T stored [n][k + 2]. */
    float *Bt = make(n, k + 2, 0, sizeof(float));
    for (int64_t l = 0; l < k; l++)
        for (int64_t j = 0; j < n; j++) Bt[j * (k + 2) + l] = B[l * ldb + j];
    sv_gemm_f32(1, m, n, k, A, k, Bt, k + 2, Ct, n);

    /* Values: |error| <= gamma_k * sum |a||b| (float32 sums of rounded products). */
    double worst = 0, worst_d = 0, worst_t = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (int64_t l = 0; l < k; l++) {
                s += (double)A[i * k + l] * (double)B[l * ldb + j];
                sa += fabs((double)A[i * k + l] * (double)B[l * ldb + j]);
            }
            double e = fabs(C[i * n + j] - s) / ((double)(k + 1) * 0x1.0p-24 * sa + 1e-30);
            double ed = fabs(Cd[i * n + j] - s) / ((double)(k + 1) * 0x1.0p-53 * sa + 1e-300);
            double et = fabs(Ct[i * n + j] - s) / ((double)(k + 1) * 0x1.0p-24 * sa + 1e-30);
            if (e > worst) worst = e;
            if (et > worst_t) worst_t = et;
            if (ed > worst_d) worst_d = ed;
        }
    CHECK(worst <= 1.0, "%s f32 %lldx%lldx%lld: error %.3g of the float32 bound", b->name, (long long)m,
          (long long)n, (long long)k, worst);
    CHECK(worst_t <= 1.0, "%s f32 B^T %lldx%lldx%lld: error %.3g of the float32 bound", b->name, (long long)m,
          (long long)n, (long long)k, worst_t);
    CHECK(worst_d <= 1.0, "%s f64 %lldx%lldx%lld: error %.3g of the float64 bound", b->name, (long long)m,
          (long long)n, (long long)k, worst_d);

    /* Same tile at odd offsets, compact B, padded C. */
    float *A1 = make(m, k, 1, sizeof(float)), *B1 = make(k, n, 3, sizeof(float));
    float *C1 = make(m, n + 7, 5, sizeof(float));
    memcpy(A1 + 1, A, (size_t)(m * k) * sizeof(float));
    for (int64_t l = 0; l < k; l++) memcpy(B1 + 3 + l * n, B + l * ldb, (size_t)n * sizeof(float));
    sv_gemm_f32(0, m, n, k, A1 + 1, k, B1 + 3, n, C1 + 5, n + 7);
    int same = 1;
    for (int64_t i = 0; i < m; i++) same &= memcmp(C1 + 5 + i * (n + 7), C + i * n, (size_t)n * sizeof(float)) == 0;
    CHECK(same, "%s f32 %lldx%lldx%lld: bits depend on offsets / leading dimensions", b->name, (long long)m,
          (long long)n, (long long)k);

    /* Same tile on 2 threads at once, 6 copies, after OpenBLAS was told to
     * use 2 threads for calls of its own. */
    openblas_set_num_threads(2);
    enum { COPIES = 6 };
    float *Cc = xcalloc((size_t)(2 * COPIES * m * n), sizeof(float));
    double *Ccd = xcalloc((size_t)(COPIES * m * n), sizeof(double));
#pragma omp parallel for num_threads(2) schedule(dynamic, 1)
    for (int c = 0; c < COPIES; c++) {
        sv_gemm_f32(0, m, n, k, A, k, B, ldb, Cc + c * m * n, n);
        sv_gemm_f32(1, m, n, k, A, k, Bt, k + 2, Cc + (COPIES + c) * m * n, n);
        sv_gemm_f64(0, m, n, k, Ad, k, Bd, ldb, Ccd + c * m * n, n);
    }
    int same_t = 1, same_td = 1;
    for (int c = 0; c < COPIES; c++) {
        same_t &= memcmp(Cc + c * m * n, C, (size_t)(m * n) * sizeof(float)) == 0;
        same_t &= memcmp(Cc + (COPIES + c) * m * n, Ct, (size_t)(m * n) * sizeof(float)) == 0;
        same_td &= memcmp(Ccd + c * m * n, Cd, (size_t)(m * n) * sizeof(double)) == 0;
    }
    CHECK(same_t, "%s f32 %lldx%lldx%lld: bits depend on threads", b->name, (long long)m, (long long)n, (long long)k);
    CHECK(same_td, "%s f64 %lldx%lldx%lld: bits depend on threads", b->name, (long long)m, (long long)n, (long long)k);
    /* Not a contract (OpenBLAS fails it, which is why tiles have fixed
     * shapes), reported for the choice of library: the tile as the top-left
     * block of a 2m x 2n call with the same k. */
    float *A2 = make(2 * m, k, 0, sizeof(float)), *C2 = make(2 * m, 2 * n, 0, sizeof(float));
    memcpy(A2, A, (size_t)(m * k) * sizeof(float));
    for (int64_t i = m * k; i < 2 * m * k; i++) A2[i] = 0.5f;
    sv_gemm_f32(0, 2 * m, 2 * n, k, A2, k, B, ldb, C2, 2 * n);
    int same_big = 1;
    for (int64_t i = 0; i < m; i++) same_big &= memcmp(C2 + i * 2 * n, C + i * n, (size_t)n * sizeof(float)) == 0;
    printf("%s %lldx%lldx%lld: tile bits %s inside a 2x larger call (informational)\n", b->name, (long long)m,
           (long long)n, (long long)k, same_big ? "the same" : "differ");
    free(A2); free(C2);
    free(A); free(Bw); free(Ad); free(Bwd); free(C); free(Ct); free(Bt); free(Cd); free(A1); free(B1); free(C1); free(Cc); free(Ccd);
}

/* bfloat16 rounding written here, apart from half.c: round to nearest
 * even on the upper 16 bits (finite inputs only). */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t lower = u & 0xffff, upper = u >> 16;
    if (lower > 0x8000 || (lower == 0x8000 && (upper & 1))) upper++;
    return (uint16_t)upper;
}

static double from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The layer's rounded operand (its format) equals this file's rounding. */
static int same_rounding(const void *op, const uint16_t *ref, size_t n)
{
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= sv_gemm_bf16_elem() == 2 ? ((const uint16_t *)op)[i] == ref[i]
                                       : (double)((const float *)op)[i] == from_bf16(ref[i]);
    return ok;
}

/* Element i of a rounded operand, for copies. */
static void *elem(void *op, int64_t i)
{
    return (char *)op + (size_t)i * sv_gemm_bf16_elem();
}

static void check_bf16(int64_t m, int64_t n, int64_t k)
{
    const int64_t lda = k + 3, ldb = n + 9;
    const size_t es = sv_gemm_bf16_elem();
    float *Af = xcalloc((size_t)(m * lda), sizeof(float)), *Bf = xcalloc((size_t)(k * ldb), sizeof(float));
    uint16_t *A = xcalloc((size_t)(m * lda), 2), *B = xcalloc((size_t)(k * ldb), 2);
    for (int64_t i = 0; i < m * lda; i++) A[i] = to_bf16(Af[i] = (float)((2 * urand() - 1) * 3.0));
    for (int64_t i = 0; i < k * ldb; i++) B[i] = to_bf16(Bf[i] = (float)(2 * urand() - 1));
    void *Ar = xcalloc((size_t)(m * lda), es), *Br = xcalloc((size_t)(k * ldb), es);
    sv_gemm_bf16_round(Af, Ar, (size_t)(m * lda));
    sv_gemm_bf16_round(Bf, Br, (size_t)(k * ldb));
    CHECK(same_rounding(Ar, A, (size_t)(m * lda)) && same_rounding(Br, B, (size_t)(k * ldb)),
          "sv_gemm_bf16_round differs from round-to-nearest-even");
    float *C = xcalloc((size_t)(m * n), sizeof(float)), *C2 = xcalloc((size_t)(m * n), sizeof(float));
    CHECK(sv_gemm_bf16(0, m, n, k, Ar, lda, Br, ldb, C, n) == SV_OK, "bf16 tile failed: %s", sv_errmsg());
    double worst = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, sa = 0;
            for (int64_t l = 0; l < k; l++) {
                double p = from_bf16(A[i * lda + l]) * from_bf16(B[l * ldb + j]);
                s += p;
                sa += fabs(p);
            }
            /* Products are exact in float32; only the k-1 sums round. */
            double e = fabs(C[i * n + j] - s) / ((double)k * 0x1.0p-24 * sa + 1e-30);
            if (e > worst) worst = e;
        }
    CHECK(worst <= 1.0, "bf16 %lldx%lldx%lld: error %.3g of the float32-accumulation bound", (long long)m,
          (long long)n, (long long)k, worst);
    /* k = 1: each entry is one product, which must come out exact. */
    sv_gemm_bf16(0, m, n, 1, Ar, lda, Br, ldb, C2, n);
    int exact = 1;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) exact &= (double)C2[i * n + j] == from_bf16(A[i * lda]) * from_bf16(B[j]);
    CHECK(exact, "bf16 products are not exact");
    /* Bits: compact copies on 2 threads give the same tile. */
    void *Ac = xcalloc((size_t)(m * k), es), *Bc = xcalloc((size_t)(k * n), es);
    for (int64_t i = 0; i < m; i++) memcpy(elem(Ac, i * k), elem(Ar, i * lda), (size_t)k * es);
    for (int64_t l = 0; l < k; l++) memcpy(elem(Bc, l * n), elem(Br, l * ldb), (size_t)n * es);
    enum { COPIES = 4 };
    float *Cc = xcalloc((size_t)(COPIES * m * n), sizeof(float));
#pragma omp parallel for num_threads(2) schedule(dynamic, 1)
    for (int c = 0; c < COPIES; c++) sv_gemm_bf16(0, m, n, k, Ac, k, Bc, n, Cc + c * m * n, n);
    int same = 1;
    for (int c = 0; c < COPIES; c++) same &= memcmp(Cc + c * m * n, C, (size_t)(m * n) * sizeof(float)) == 0;
    CHECK(same, "bf16 %lldx%lldx%lld: bits depend on threads or leading dimensions", (long long)m, (long long)n,
          (long long)k);
    free(Af); free(Bf); free(A); free(B); free(Ar); free(Br); free(C); free(C2); free(Ac); free(Bc); free(Cc);
}

static void check_select(void)
{
    CHECK(sv_gemm_select("nosuchlib") == SV_EINPUT, "unknown backend accepted");
    CHECK(strstr(sv_errmsg(), "nosuchlib") != NULL, "message does not name the backend: %s", sv_errmsg());
    setenv("SAEVAL_GEMM", "bogus", 1);
    CHECK(sv_gemm_select(NULL) == SV_EINPUT && strstr(sv_errmsg(), "SAEVAL_GEMM") != NULL,
          "bad SAEVAL_GEMM not reported: %s", sv_errmsg());
    unsetenv("SAEVAL_GEMM");
    CHECK(sv_gemm_select(NULL) == SV_OK && strcmp(sv_gemm_current()->name, "openblas") == 0,
          "default backend is not openblas");
    const sv_gemm_backend *dn = sv_gemm_find("onednn");
    if (dn && !dn->available()) {
        CHECK(sv_gemm_select("onednn") == SV_EINPUT && strstr(sv_errmsg(), "not usable"), "unusable backend accepted");
    }
    /* Without bfloat16 instructions there is no native kernel, and the
     * run.log line says so. */
    sv_cpu_features f = sv_cpu_detect();
    sv_gemm_select(NULL);
    if (!f.avx512_bf16 && !f.amx_bf16) {
        CHECK(!sv_gemm_bf16_native(), "native bf16 claimed on a CPU without bf16 instructions");
        CHECK(strstr(sv_gemm_bf16_describe(), "no native kernel") != NULL, "describe: %s", sv_gemm_bf16_describe());
    }
    printf("%s\n", sv_gemm_bf16_describe());
}

static void check_probe(const char *exe)
{
    sv_gemm_kernel_rate r[8];
    int n = 0;
    char note[1024] = "";
    CHECK(sv_gemm_probe_kernels(exe, 64, 1, 2, r, 8, &n) == SV_OK, "probe failed: %s", sv_errmsg());
    CHECK(n >= 1 && r[0].gflops > 0, "probe: no rate for the kernel in use");
    /* The first child runs what this process runs (same library, same environment). */
    if (n >= 1 && !getenv("OPENBLAS_CORETYPE"))
        CHECK(strcmp(r[0].kernel, sv_gemm_openblas_core()) == 0, "probe ran %s, this process %s", r[0].kernel,
              sv_gemm_openblas_core());
    CHECK(sv_gemm_kernel_note(exe, 64, note, sizeof note) == SV_OK && strstr(note, "(in use)") != NULL,
          "kernel note: %s", note);
    printf("%s\n", note);
    for (int i = 0; i < n; i++)
        printf("probe: OPENBLAS_CORETYPE=%s -> %s %.1f GFLOP/s (k=64, not a benchmark)\n",
               r[i].request[0] ? r[i].request : "(unset)", r[i].kernel, r[i].gflops);
}

int main(int argc, char **argv)
{
    if (argc != 2) die("usage: test_gemm PATH_TO_SAEVAL", NULL);
    check_select();
    int nb;
    const sv_gemm_backend *const *t = sv_gemm_backends(&nb);
    for (int i = 0; i < nb; i++) {
        if (!t[i]->available()) {
            printf("%s: not usable here (%s)\n", t[i]->name, t[i]->kernel());
            continue;
        }
        CHECK(sv_gemm_select(t[i]->name) == SV_OK, "select %s: %s", t[i]->name, sv_errmsg());
        printf("%s: kernel %s\n", t[i]->name, t[i]->kernel());
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            check_tiles(t[i], shapes[s][0], shapes[s][1], shapes[s][2]);
        check_bf16(45, 70, 33);
    }
    sv_gemm_select(NULL);
    check_bf16(300, 256, 130);
    check_probe(argv[1]);
    return sv_test_failures() ? 1 : 0;
}
