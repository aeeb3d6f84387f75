/* BLIS row of the GEMM table, loaded at run time: libblis also exports the
 * cblas_ and Fortran BLAS symbols, which must not displace OpenBLAS's, so
 * it is opened RTLD_LOCAL and only its typed bli_ API is used. Its tiles'
 * bits depend on the inputs alone (not even on the call's shape within a
 * larger product; README, Performance). */
#include <dlfcn.h>
#include <pthread.h>

#include "gemm_impl.h"

typedef void (*bli_sgemm_t)(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *alpha, const float *a,
                            int64_t rsa, int64_t csa, const float *b, int64_t rsb, int64_t csb, const float *beta,
                            float *c, int64_t rsc, int64_t csc);
typedef void (*bli_dgemm_t)(int ta, int tb, int64_t m, int64_t n, int64_t k, const double *alpha, const double *a,
                            int64_t rsa, int64_t csa, const double *b, int64_t rsb, int64_t csb, const double *beta,
                            double *c, int64_t rsc, int64_t csc);

static struct {
    pthread_once_t once;
    int ok;
    bli_sgemm_t sgemm;
    bli_dgemm_t dgemm;
    const char *arch;
} blis = {PTHREAD_ONCE_INIT, 0, NULL, NULL, "unavailable"};

#if defined(__SANITIZE_ADDRESS__)
#define SV_NO_BLIS "not loaded in sanitizer builds: LeakSanitizer crashes scanning the thread-local storage of a dlopen'ed libblis"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SV_NO_BLIS "not loaded in sanitizer builds: LeakSanitizer crashes scanning the thread-local storage of a dlopen'ed libblis"
#endif
#endif

static void blis_load(void)
{
#ifdef SV_NO_BLIS
    blis.arch = SV_NO_BLIS;
    return;
#endif
    /* Kept open for the life of the process (its memory pools live there). */
    void *h = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        blis.arch = "libblis.so.4 not found (Debian: libblis4)";
        return;
    }
    void (*set_threads)(int64_t) = (void (*)(int64_t))dlsym(h, "bli_thread_set_num_threads");
    int (*arch_id)(void) = (int (*)(void))dlsym(h, "bli_arch_query_id");
    const char *(*arch_str)(int) = (const char *(*)(int))dlsym(h, "bli_arch_string");
    blis.sgemm = (bli_sgemm_t)dlsym(h, "bli_sgemm");
    blis.dgemm = (bli_dgemm_t)dlsym(h, "bli_dgemm");
    if (!set_threads || !arch_id || !arch_str || !blis.sgemm || !blis.dgemm) return;
    set_threads(1); /* a tile runs on its caller's thread */
    blis.arch = arch_str(arch_id());
    blis.ok = 1;
}

static int blis_available(void)
{
    pthread_once(&blis.once, blis_load);
    return blis.ok;
}

static const char *blis_kernel(void)
{
    blis_available();
    return blis.arch;
}

/* op(B) by strides: B^T is B with row and column strides swapped. */
enum { BLIS_NO_TRANSPOSE_ = 0 };

static void blis_sgemm(int tb, int64_t rows, int64_t cols, int64_t k, const float *A, int64_t lda, const float *B,
                       int64_t ldb, float *C, int64_t ldc)
{
    const float one = 1.0f, zero = 0.0f;
    blis.sgemm(BLIS_NO_TRANSPOSE_, BLIS_NO_TRANSPOSE_, rows, cols, k, &one, A, lda, 1, B, tb ? 1 : ldb, tb ? ldb : 1, &zero, C, ldc, 1);
}

static void blis_dgemm(int tb, int64_t rows, int64_t cols, int64_t k, const double *A, int64_t lda, const double *B,
                       int64_t ldb, double *C, int64_t ldc)
{
    const double one = 1.0, zero = 0.0;
    blis.dgemm(BLIS_NO_TRANSPOSE_, BLIS_NO_TRANSPOSE_, rows, cols, k, &one, A, lda, 1, B, tb ? 1 : ldb, tb ? ldb : 1, &zero, C, ldc, 1);
}

static int blis_no_bf16(void)
{
    return 0; /* BLIS 0.9 has no bfloat16 GEMM */
}

const sv_gemm_backend sv_gemm_blis_backend = {"blis", blis_available, blis_kernel, blis_sgemm, blis_dgemm,
                                              blis_no_bf16, NULL};
