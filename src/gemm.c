/* GEMM layer: backend table, the run's choice, bfloat16 tiles, CPU
 * features and the OpenBLAS kernel probe. See gemm.h. */
#define _GNU_SOURCE /* environ */
#include "saeval/gemm.h"

#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "gemm_impl.h"
#include "saeval/half.h"

extern char **environ;

/* OpenBLAS first: it defines the float32/float64 results so far, and no
 * other library was faster on the tile shapes (README, Performance). */
static const sv_gemm_backend *const table[] = {&sv_gemm_openblas_backend, &sv_gemm_blis_backend,
                                               &sv_gemm_onednn_backend};
#define NB ((int)(sizeof table / sizeof table[0]))

static const sv_gemm_backend *cur;     /* this run's backend */
/* The backend whose native bfloat16 kernel runs, or NULL; found on first
 * use (only bfloat16 runs initialize oneDNN). */
static const sv_gemm_backend *bf16_be;
static int bf16_known;
static pthread_mutex_t bf16_lock = PTHREAD_MUTEX_INITIALIZER;

const sv_gemm_backend *const *sv_gemm_backends(int *n)
{
    *n = NB;
    return table;
}

const sv_gemm_backend *sv_gemm_find(const char *name)
{
    for (int i = 0; i < NB; i++)
        if (strcmp(table[i]->name, name) == 0) return table[i];
    return NULL;
}

sv_rc sv_gemm_select(const char *name)
{
    const char *why = "argument";
    if (!name || !*name) {
        name = getenv("SAEVAL_GEMM");
        why = "SAEVAL_GEMM";
    }
    const sv_gemm_backend *b = name && *name ? sv_gemm_find(name) : table[0];
    if (!b) return sv_fail(SV_EINPUT, "%s: unknown GEMM backend '%s' (openblas, blis, onednn)", why, name);
    if (!b->available() || !b->sgemm)
        return sv_fail(SV_EINPUT, "%s: GEMM backend '%s' is not usable here (%s)", why, b->name, b->kernel());
    pthread_mutex_lock(&bf16_lock);
    cur = b;
    bf16_known = 0;
    pthread_mutex_unlock(&bf16_lock);
    return SV_OK;
}

const sv_gemm_backend *sv_gemm_current(void)
{
    if (!cur && sv_gemm_select(NULL) != SV_OK) { /* a bad SAEVAL_GEMM is reported by the run's own select */
        cur = table[0];
        sv_clear_error();
    }
    return cur;
}

void sv_gemm_f32(int tb, int64_t rows, int64_t cols, int64_t k, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc)
{
    sv_gemm_current()->sgemm(tb, rows, cols, k, A, lda, B, ldb, C, ldc);
}

void sv_gemm_f64(int tb, int64_t rows, int64_t cols, int64_t k, const double *A, int64_t lda, const double *B,
                 int64_t ldb, double *C, int64_t ldc)
{
    const sv_gemm_backend *b = sv_gemm_current();
    (b->dgemm ? b->dgemm : sv_gemm_openblas_backend.dgemm)(tb, rows, cols, k, A, lda, B, ldb, C, ldc);
}

int sv_gemm_bf16_native(void)
{
    const sv_gemm_backend *b = sv_gemm_current();
    pthread_mutex_lock(&bf16_lock);
    if (!bf16_known) {
        bf16_be = NULL;
        if (b->bf16gemm && b->bf16_native()) bf16_be = b;
        else if (sv_gemm_onednn_backend.available() && sv_gemm_onednn_backend.bf16_native())
            bf16_be = &sv_gemm_onednn_backend;
        bf16_known = 1;
    }
    const int native = bf16_be != NULL;
    pthread_mutex_unlock(&bf16_lock);
    return native;
}

const char *sv_gemm_bf16_describe(void)
{
    static char buf[256];
    char cpu[128];
    if (sv_gemm_bf16_native())
        snprintf(buf, sizeof buf, "bfloat16 GEMM: %s native kernel (%s)", bf16_be->name, bf16_be->kernel());
    else
        snprintf(buf, sizeof buf,
                 "bfloat16 GEMM: no native kernel (CPU: %s; oneDNN: %s), emulated on %s float32 tiles: "
                 "same rounding, no speed-up",
                 sv_cpu_describe(cpu, sizeof cpu), sv_gemm_onednn_backend.kernel(), sv_gemm_current()->name);
    return buf;
}

size_t sv_gemm_bf16_elem(void)
{
    return sv_gemm_bf16_native() ? sizeof(uint16_t) : sizeof(float);
}

void sv_gemm_bf16_round(const float *src, void *dst, size_t n)
{
    if (sv_gemm_bf16_native()) {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = sv_f32_to_bf16(src[i]);
    } else {
        float *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = sv_bf16_to_f32(sv_f32_to_bf16(src[i]));
    }
}

sv_rc sv_gemm_bf16(int tb, int64_t rows, int64_t cols, int64_t k, const void *A, int64_t lda, const void *B,
                   int64_t ldb, float *C, int64_t ldc)
{
    if (sv_gemm_bf16_native()) {
        if (bf16_be->bf16gemm(tb, rows, cols, k, A, lda, B, ldb, C, ldc))
            return sv_fail(SV_EINTERNAL, "%s: bfloat16 GEMM of %lld x %lld x %lld failed", bf16_be->name,
                           (long long)rows, (long long)cols, (long long)k);
        return SV_OK;
    }
    /* Rounded values are exact in float32, and so is the product of two of
     * them (16 significant bits): the float32 kernel does the arithmetic of
     * a bfloat16 one - exact products, float32 sums. */
    sv_gemm_current()->sgemm(tb, rows, cols, k, A, lda, B, ldb, C, ldc);
    return SV_OK;
}

/* ---- CPU features ---- */

#if defined(__x86_64__) && defined(__GNUC__)
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

sv_cpu_features sv_cpu_detect(void)
{
    sv_cpu_features f = {0, 0, 0, 0};
#if defined(__x86_64__) && defined(__GNUC__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return f; /* no OSXSAVE: no AVX state */
    const int fma = (c >> 12) & 1;
    const uint64_t xcr0 = xgetbv0();
    const int os_avx = (xcr0 & 0x6) == 0x6, os_avx512 = (xcr0 & 0xe6) == 0xe6, os_amx = (xcr0 & 0x60000) == 0x60000;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    f.avx2_fma = os_avx && fma && ((b >> 5) & 1);
    /* F, DQ, BW, VL: what OpenBLAS's SkylakeX kernels and oneDNN's avx512_core need. */
    f.avx512 = os_avx512 && ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
    f.amx_bf16 = f.avx512 && os_amx && ((d >> 22) & 1) && ((d >> 24) & 1);
    unsigned a1, b1, c1, d1;
    if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avx512_bf16 = f.avx512 && ((a1 >> 5) & 1);
#endif
    return f;
}

const char *sv_cpu_describe(char *buf, size_t n)
{
    sv_cpu_features f = sv_cpu_detect();
    snprintf(buf, n, "%s%s%s%s", f.avx2_fma ? "avx2+fma " : "", f.avx512 ? "avx512 " : "",
             f.avx512_bf16 ? "avx512_bf16 " : "", f.amx_bf16 ? "amx_bf16 " : "");
    size_t l = strlen(buf);
    if (l) buf[l - 1] = 0;
    else snprintf(buf, n, "no avx2");
    return buf;
}

/* ---- kernel probe ---- */

const char *sv_gemm_openblas_core(void)
{
    return sv_gemm_openblas_backend.kernel();
}

/* Best of reps rounds; in a round each of threads threads runs its own
 * tile (shared inputs, own output) at once, as saeval's tasks do. */
static double tile_rate(sv_sgemm_fn f, int64_t k, int reps, int threads)
{
    const int64_t m = SV_GEMM_ROWS, n = SV_GEMM_PANEL;
    float *A = malloc((size_t)(m * k) * sizeof *A), *B = malloc((size_t)(k * n) * sizeof *B);
    float *C = malloc((size_t)(threads * m * n) * sizeof *C);
    double best = -1;
    if (A && B && C) {
        for (int64_t i = 0; i < m * k; i++) A[i] = (float)(i % 13) * 0.125f - 0.75f;
        for (int64_t i = 0; i < k * n; i++) B[i] = (float)(i % 11) * 0.0625f - 0.3125f;
        for (int r = -1; r < reps; r++) { /* round -1: warm-up (packing buffers, page faults) */
            double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
            f(0, m, n, k, A, k, B, n, C + (int64_t)omp_get_thread_num() * m * n, n);
            double t = omp_get_wtime() - t0;
            if (r >= 0 && (best < 0 || t < best)) best = t;
        }
    }
    free(A); free(B); free(C);
    return best > 0 ? 2.0 * (double)threads * (double)m * (double)n * (double)k / best / 1e9 : -1;
}

double sv_gemm_tile_gflops(int64_t k, int reps, int threads)
{
    return tile_rate(sv_gemm_current()->sgemm, k, reps, threads > 0 ? threads : 1);
}

int sv_gemm_probe_child(int argc, char **argv)
{
    char *e1 = "", *e2 = "";
    long k = argc >= 1 ? strtol(argv[0], &e1, 10) : 0, t = argc >= 2 ? strtol(argv[1], &e2, 10) : 1;
    if (argc < 1 || argc > 3 || *e1 || *e2 || k < 1 || k > 65536 || t < 1 || t > 1024) {
        fprintf(stderr, "usage: saeval __gemm-probe K [THREADS [BACKEND]] (K 1..65536, THREADS 1..1024)\n");
        return SV_EINPUT;
    }
    if (sv_gemm_select(argc == 3 ? argv[2] : "openblas") != SV_OK) {
        fprintf(stderr, "saeval __gemm-probe: %s\n", sv_errmsg());
        return SV_EINPUT;
    }
    const sv_gemm_backend *b = sv_gemm_current();
    /* First word: the kernel (what the parent compares); then the rate. */
    printf("%s %.3f %s\n", b->kernel(), sv_gemm_tile_gflops(k, 3, (int)t), b->name);
    return 0;
}

/* Environment for a child: ours without OPENBLAS_CORETYPE (then set to
 * core unless empty) and with SAEVAL_ENV_READY, so it runs as asked. */
static char **child_env(const char *core, char *cbuf, size_t cn)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **e = malloc((n + 3) * sizeof *e);
    if (!e) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OPENBLAS_CORETYPE=", 18) && strncmp(environ[i], "SAEVAL_ENV_READY=", 17))
            e[j++] = environ[i];
    if (*core) {
        snprintf(cbuf, cn, "OPENBLAS_CORETYPE=%s", core);
        e[j++] = cbuf;
    }
    e[j++] = "SAEVAL_ENV_READY=1";
    e[j] = NULL;
    return e;
}

static void probe_one(const char *exe, const char *core, int64_t k, int threads, sv_gemm_kernel_rate *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->request, sizeof r->request, "%s", core);
    snprintf(r->kernel, sizeof r->kernel, "(no answer)");
    r->gflops = -1;
    int fd[2];
    if (pipe(fd)) return;
    char kbuf[32], tbuf[32], cbuf[64];
    snprintf(kbuf, sizeof kbuf, "%lld", (long long)k);
    snprintf(tbuf, sizeof tbuf, "%d", threads);
    char *argv[] = {(char *)exe, "__gemm-probe", kbuf, tbuf, NULL};
    char **env = child_env(core, cbuf, sizeof cbuf);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    int sp = env ? posix_spawn(&pid, exe, &fa, NULL, argv, env) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fd[1]);
    char out[256];
    size_t got = 0;
    ssize_t rd;
    while (got < sizeof out - 1 && (rd = read(fd[0], out + got, sizeof out - 1 - got)) != 0) {
        if (rd < 0) {
            if (errno == EINTR) continue;
            break;
        }
        got += (size_t)rd;
    }
    out[got] = 0;
    close(fd[0]);
    if (sp) return;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    double g;
    char name[32];
    if (WIFSIGNALED(status)) snprintf(r->kernel, sizeof r->kernel, "(killed by signal %d)", WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && sscanf(out, "%31s %lf", name, &g) == 2) {
        snprintf(r->kernel, sizeof r->kernel, "%s", name);
        r->gflops = g;
    }
}

sv_rc sv_gemm_probe_kernels(const char *exe, int64_t k, int threads, int rounds, sv_gemm_kernel_rate *out, int max,
                            int *n)
{
    /* The kernel this process runs first (the user's OPENBLAS_CORETYPE, or
     * OpenBLAS's own choice), then every kernel this CPU can run. */
    const sv_cpu_features f = sv_cpu_detect();
    const char *user = getenv("OPENBLAS_CORETYPE");
    const struct { const char *core; int ok; } cand[] = {
        {user ? user : "", 1},           {"Haswell", f.avx2_fma},       {"Zen", f.avx2_fma},
        {"SkylakeX", f.avx512},          {"Cooperlake", f.avx512_bf16}, {"SapphireRapids", f.amx_bf16},
    };
    /* Rounds over all candidates, best rate per kernel: on a shared host
     * a slow moment then hits each kernel alike instead of one. */
    *n = 0;
    for (int round = 0; round < (rounds > 0 ? rounds : 1); round++)
        for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++) {
            if (!cand[i].ok) continue;
            sv_gemm_kernel_rate r;
            probe_one(exe, cand[i].core, k, threads > 0 ? threads : 1, &r);
            int j = 0;
            while (j < *n && !(strcmp(out[j].kernel, r.kernel) == 0 && (r.gflops > 0) == (out[j].gflops > 0))) j++;
            if (j == *n && *n < max) out[(*n)++] = r;
            else if (j < *n && r.gflops > out[j].gflops) out[j].gflops = r.gflops;
        }
    if (*n == 0 || out[0].gflops <= 0)
        return sv_fail(SV_EINTERNAL, "%s: GEMM kernel probe gave no answer (%s)", exe, *n ? out[0].kernel : "none run");
    return SV_OK;
}

sv_rc sv_gemm_kernel_note(const char *exe, int64_t k, char *buf, size_t n)
{
    sv_gemm_kernel_rate r[8];
    int nr = 0;
    sv_rc rc = sv_gemm_probe_kernels(exe, k, 1, 1, r, 8, &nr);
    if (rc != SV_OK) return rc;
    const char *use = sv_gemm_openblas_core();
    int best = 0;
    for (int i = 1; i < nr; i++)
        if (r[i].gflops > r[best].gflops) best = i;
    size_t l = (size_t)snprintf(buf, n, "OpenBLAS kernels, 1 thread on %dx%dx%lld tiles:", SV_GEMM_ROWS,
                                SV_GEMM_PANEL, (long long)k);
    for (int i = 0; i < nr && l < n; i++)
        l += (size_t)snprintf(buf + l, n - l, " %s %.1f GFLOP/s%s%s", r[i].kernel, r[i].gflops,
                              strcmp(r[i].kernel, use) == 0 ? " (in use)" : "", i + 1 < nr ? "," : ";");
    if (l < n) {
        if (strcmp(r[best].kernel, use) == 0) snprintf(buf + l, n - l, " the one in use is the fastest");
        else
            snprintf(buf + l, n - l, " faster: %s (OPENBLAS_CORETYPE=%s; changes float rounding)", r[best].kernel,
                     r[best].request[0] ? r[best].request : r[best].kernel);
    }
    return SV_OK;
}
