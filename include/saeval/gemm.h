/* GEMM layer: every dense product of saeval (encoder tiles, Gram blocks)
 * goes through one backend, chosen once per run from a table (OpenBLAS,
 * BLIS, oneDNN). A call is a "tile": row-major C = A * B computed on the
 * calling thread alone, whose result bits depend only on the inputs and the
 * call's shape (rows, cols, k) - not on the thread count, on which thread
 * runs it, on pointer alignment or on the leading dimensions. Callers fix
 * the tile shapes (forward.h), so results are independent of ranks,
 * threads and block sizes.
 *
 * bfloat16: A and B rounded to bfloat16 (round to nearest even), products
 * exact in float32 (8-bit x 8-bit significands), accumulation in float32.
 * A backend with a native kernel (oneDNN on AVX512-BF16/AMX) runs it;
 * otherwise the same arithmetic runs on the float32 kernel (the rounded
 * inputs widened to float32 exactly), with no speed-up - sv_gemm_bf16_native
 * says which. */
#ifndef SAEVAL_GEMM_H
#define SAEVAL_GEMM_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"

/* Encoder GEMM tile: rows x columns of W_enc per call. Part of the
 * numerical definition of saeval (OpenBLAS rounding depends on a call's
 * shape), so changing either may change float rounding. Blocks (max_rows)
 * are multiples of SV_GEMM_ROWS. */
#define SV_GEMM_ROWS 1024
#define SV_GEMM_PANEL 2048

/* C [rows][cols] = A [rows][k] * op(B): B [k][cols], or with tb its
 * transpose, B [cols][k] (Gram blocks). Leading dimensions in elements. */
typedef void (*sv_sgemm_fn)(int tb, int64_t rows, int64_t cols, int64_t k, const float *A, int64_t lda,
                            const float *B, int64_t ldb, float *C, int64_t ldc);
typedef void (*sv_dgemm_fn)(int tb, int64_t rows, int64_t cols, int64_t k, const double *A, int64_t lda,
                            const double *B, int64_t ldb, double *C, int64_t ldc);
/* Returns nonzero when the kernel could not run (then C is unspecified). */
typedef int (*sv_bf16gemm_fn)(int tb, int64_t rows, int64_t cols, int64_t k, const uint16_t *A, int64_t lda,
                              const uint16_t *B, int64_t ldb, float *C, int64_t ldc);

/* One row per library. */
typedef struct {
    const char *name;          /* "openblas", "blis", "onednn" */
    int (*available)(void);    /* library loadable and usable on this CPU (loads it on first call) */
    const char *(*kernel)(void); /* the kernel set it runs here, e.g. OpenBLAS's core name */
    sv_sgemm_fn sgemm;
    sv_dgemm_fn dgemm;         /* NULL: OpenBLAS's dgemm serves float64 */
    int (*bf16_native)(void);  /* a bfloat16 dot-product kernel runs on this CPU */
    sv_bf16gemm_fn bf16gemm;   /* NULL: no bfloat16 kernel in this library */
} sv_gemm_backend;

/* The table, the default (OpenBLAS) first. */
const sv_gemm_backend *const *sv_gemm_backends(int *n);
const sv_gemm_backend *sv_gemm_find(const char *name);

/* Choose the backend for this run: name, or NULL for $SAEVAL_GEMM, or the
 * default (OpenBLAS). SV_EINPUT naming the backend when it is unknown or
 * not usable here. Call before any thread runs tiles. */
sv_rc sv_gemm_select(const char *name);
/* The selected backend (selecting the default on first use). */
const sv_gemm_backend *sv_gemm_current(void);

/* Tiles through the selected backend (see the top of this file). */
void sv_gemm_f32(int tb, int64_t rows, int64_t cols, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc);
void sv_gemm_f64(int tb, int64_t rows, int64_t cols, int64_t k, const double *A, int64_t lda, const double *B,
                 int64_t ldb, double *C, int64_t ldc);

/* bfloat16 tiles. Operands are first rounded into the run's bfloat16
 * format: uint16_t bfloat16 for a native kernel, or float32 holding the
 * rounded values for the emulation (so it costs nothing over float32).
 * native: the selected backend (or oneDNN when the selected one has none)
 * runs a bfloat16 kernel on this CPU. */
int sv_gemm_bf16_native(void);
/* One line for run.log: which bfloat16 kernel runs, or why none does. */
const char *sv_gemm_bf16_describe(void);
/* Bytes per element of a rounded operand (2 native, 4 emulated). */
size_t sv_gemm_bf16_elem(void);
/* Round n floats to bfloat16 (nearest even) into dst, in the run's format
 * (dst: n * sv_gemm_bf16_elem() bytes; dst == src allowed when emulated). */
void sv_gemm_bf16_round(const float *src, void *dst, size_t n);
/* C = A * B on rounded operands (leading dimensions in elements). */
sv_rc sv_gemm_bf16(int tb, int64_t rows, int64_t cols, int64_t k, const void *A, int64_t lda, const void *B,
                   int64_t ldb, float *C, int64_t ldc);

/* CPU features that decide which kernels can run (cpuid + OS state). */
typedef struct {
    int avx2_fma, avx512, avx512_bf16, amx_bf16;
} sv_cpu_features;
sv_cpu_features sv_cpu_detect(void);
/* "avx2 fma avx512f avx512_bf16 amx_bf16" as present, or "none". */
const char *sv_cpu_describe(char *buf, size_t n);

/* Kernel probe. OpenBLAS picks its kernels when it loads (OPENBLAS_CORETYPE
 * or CPU detection), so each candidate kernel is measured in a child
 * process: `exe __gemm-probe K THREADS` with OPENBLAS_CORETYPE set. */
typedef struct {
    char request[32]; /* the OPENBLAS_CORETYPE asked for ("" = OpenBLAS's own choice) */
    char kernel[32];  /* the core name OpenBLAS reported using */
    double gflops;    /* float32 tile rate (sv_gemm_tile_gflops); <= 0 when the child failed */
} sv_gemm_kernel_rate;

/* The OpenBLAS core name of this process. */
const char *sv_gemm_openblas_core(void);
/* Float32 tile rate of the selected backend in this process, GFLOP/s:
 * threads threads each running an SV_GEMM_ROWS x SV_GEMM_PANEL x k tile at
 * once, best of reps rounds. */
double sv_gemm_tile_gflops(int64_t k, int reps, int threads);
/* Children for the kernel this process runs (the user's OPENBLAS_CORETYPE
 * or OpenBLAS's choice; row 0) and each kernel this CPU can run, `rounds`
 * times over, best rate per kernel reported; *n set to the rows filled. */
sv_rc sv_gemm_probe_kernels(const char *exe, int64_t k, int threads, int rounds, sv_gemm_kernel_rate *out, int max,
                            int *n);
/* One run.log line: each kernel's single-thread rate on k-deep tiles, the
 * one in use, and the fastest (with the OPENBLAS_CORETYPE that selects it). */
sv_rc sv_gemm_kernel_note(const char *exe, int64_t k, char *buf, size_t n);
/* The child's side, argv {K [THREADS [BACKEND]]} (default 1, openblas):
 * prints "kernel gflops backend". Exit code 0, or 2 on bad arguments. */
int sv_gemm_probe_child(int argc, char **argv);

#endif
