/* oneDNN row of the GEMM table: float32 through dnnl_sgemm, and the
 * bfloat16 tiles through a matmul primitive (bf16 x bf16 -> f32), which
 * oneDNN implements with AVX512-BF16 / AMX instructions. Without them
 * oneDNN 2.6 has no bfloat16 matmul on AVX2 CPUs (primitive creation says
 * "unimplemented"), and the row says so through bf16_native. Built when
 * libdnnl-dev is present (SV_HAVE_DNNL, from CMake). */
#include "gemm_impl.h"

#ifdef SV_HAVE_DNNL
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>

static struct {
    pthread_once_t once;
    int ok, bf16;
    dnnl_engine_t eng;
} dn = {PTHREAD_ONCE_INIT, 0, 0, NULL};

/* oneDNN sizes its OpenMP teams from omp_get_max_threads(): one, for the
 * calling thread alone (an ICV of this thread only). */
#define SV_ONE_THREAD(call)                  \
    do {                                     \
        const int nt_ = omp_get_max_threads(); \
        omp_set_num_threads(1);              \
        call;                                \
        omp_set_num_threads(nt_);            \
    } while (0)

static int dn_bf16_run(int tb, int64_t rows, int64_t cols, int64_t k, const uint16_t *A, int64_t lda, const uint16_t *B,
                       int64_t ldb, float *C, int64_t ldc);

static void dn_load(void)
{
    if (dnnl_engine_create(&dn.eng, dnnl_cpu, 0) != dnnl_success) return;
    dn.ok = 1;
    /* The bfloat16 kernels need the instructions; oneDNN's own emulation
     * on plain AVX-512 would be slower than float32. */
    sv_cpu_features f = sv_cpu_detect();
    if (f.avx512_bf16 || f.amx_bf16) {
        uint16_t a[4] = {0x3f80, 0x3f80, 0x3f80, 0x3f80}; /* 1.0 */
        float c[4];
        dn.bf16 = dn_bf16_run(0, 2, 2, 2, a, 2, a, 2, c, 2) == 0 && c[0] == 2.0f;
    }
}

static int dn_available(void)
{
    pthread_once(&dn.once, dn_load);
    return dn.ok;
}

static const char *dn_kernel(void)
{
    if (!dn_available()) return "unavailable";
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

static void dn_sgemm(int tb, int64_t rows, int64_t cols, int64_t k, const float *A, int64_t lda, const float *B, int64_t ldb,
                     float *C, int64_t ldc)
{
    /* dnnl_sgemm is row-major. */
    SV_ONE_THREAD(dnnl_sgemm('N', tb ? 'T' : 'N', rows, cols, k, 1.0f, A, lda, B, ldb, 0.0f, C, ldc));
}

static int dn_bf16_native(void)
{
    return dn_available() && dn.bf16;
}

static int dn_bf16_run(int tb, int64_t rows, int64_t cols, int64_t k, const uint16_t *A, int64_t lda, const uint16_t *B,
                       int64_t ldb, float *C, int64_t ldc)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_dims_t da = {rows, k}, sa = {lda, 1}, db = {k, cols}, sb = {tb ? 1 : ldb, tb ? ldb : 1}, dc = {rows, cols}, sc = {ldc, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t p = NULL;
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL;
    dnnl_stream_t st = NULL;
    int bad = dnnl_memory_desc_init_by_strides(&a, 2, da, dnnl_bf16, sa) != dnnl_success ||
              dnnl_memory_desc_init_by_strides(&b, 2, db, dnnl_bf16, sb) != dnnl_success ||
              dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, sc) != dnnl_success ||
              dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) != dnnl_success;
    /* Repeated shapes hit oneDNN's primitive cache. */
    bad = bad || dnnl_primitive_desc_create(&pd, &md, NULL, dn.eng, NULL) != dnnl_success;
    bad = bad || dnnl_primitive_create(&p, pd) != dnnl_success;
    bad = bad || dnnl_memory_create(&ma, &a, dn.eng, (void *)A) != dnnl_success;
    bad = bad || dnnl_memory_create(&mb, &b, dn.eng, (void *)B) != dnnl_success;
    bad = bad || dnnl_memory_create(&mc, &c, dn.eng, C) != dnnl_success;
    bad = bad || dnnl_stream_create(&st, dn.eng, dnnl_stream_default_flags) != dnnl_success;
    if (!bad) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        dnnl_status_t s = dnnl_success;
        SV_ONE_THREAD(s = dnnl_primitive_execute(p, st, 3, args));
        bad = s != dnnl_success || dnnl_stream_wait(st) != dnnl_success;
    }
    if (st) dnnl_stream_destroy(st);
    if (ma) dnnl_memory_destroy(ma);
    if (mb) dnnl_memory_destroy(mb);
    if (mc) dnnl_memory_destroy(mc);
    if (p) dnnl_primitive_destroy(p);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return bad;
}

static int dn_bf16(int tb, int64_t rows, int64_t cols, int64_t k, const uint16_t *A, int64_t lda, const uint16_t *B,
                   int64_t ldb, float *C, int64_t ldc)
{
    return dn_bf16_native() ? dn_bf16_run(tb, rows, cols, k, A, lda, B, ldb, C, ldc) : -1;
}

const sv_gemm_backend sv_gemm_onednn_backend = {"onednn", dn_available, dn_kernel, dn_sgemm, NULL, dn_bf16_native,
                                                dn_bf16};
#else
static int dn_none(void) { return 0; }
static const char *dn_kernel(void) { return "not built (libdnnl-dev missing)"; }
const sv_gemm_backend sv_gemm_onednn_backend = {"onednn", dn_none, dn_kernel, NULL, NULL, dn_none, NULL};
#endif
