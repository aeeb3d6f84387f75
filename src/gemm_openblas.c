/* OpenBLAS row of the GEMM table: the default, and the numerical
 * definition of saeval's float32/float64 results so far. Its output bits
 * depend on a call's shape and thread count, never on alignment or leading
 * dimensions (tests/test_gemm.c), so a tile is one single-threaded call. */
#include <cblas.h>

#include "gemm_impl.h"

/* Tiles run on the caller's thread; a caller that let OpenBLAS use more
 * threads for a plain call of its own (the bench's limit) is undone here. */
static void one_thread(void)
{
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

static void ob_sgemm(int tb, int64_t rows, int64_t cols, int64_t k, const float *A, int64_t lda, const float *B, int64_t ldb,
                     float *C, int64_t ldc)
{
    one_thread();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)rows, (blasint)cols, (blasint)k, 1.0f, A,
                (blasint)lda, B, (blasint)ldb, 0.0f, C, (blasint)ldc);
}

static void ob_dgemm(int tb, int64_t rows, int64_t cols, int64_t k, const double *A, int64_t lda, const double *B,
                     int64_t ldb, double *C, int64_t ldc)
{
    one_thread();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)rows, (blasint)cols, (blasint)k, 1.0, A,
                (blasint)lda, B, (blasint)ldb, 0.0, C, (blasint)ldc);
}

static int ob_available(void)
{
    return 1; /* linked */
}

static const char *ob_kernel(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}

static int ob_no_bf16(void)
{
    return 0; /* Debian's 0.3.21 exports no sbgemm */
}

const sv_gemm_backend sv_gemm_openblas_backend = {"openblas", ob_available, ob_kernel, ob_sgemm, ob_dgemm,
                                                  ob_no_bf16, NULL};
