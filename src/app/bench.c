/* `saeval bench`: every figure is a ratio to a limit measured in the same
 * run on the same machine. Data and SAEs are generated into a temporary
 * directory; the evaluator runs through sv_run exactly as `saeval run`
 * does, and its pass time is compared with
 *   - compute: the encoder GEMMs alone on the same block shapes and thread
 *     count, both as one plain cblas_sgemm per block (OpenBLAS threads) and
 *     as saeval's fixed tiles; the faster of the two is the limit;
 *   - I/O: reading the same slices of the store (file in page cache);
 * medians over --repeat runs. */
#define _DEFAULT_SOURCE /* sync() */
#include "saeval/bench.h"

#include <cblas.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "saeval/agree.h"
#include "saeval/arch.h"
#include "saeval/forward.h"
#include "saeval/fsutil.h"
#include "saeval/output.h"
#include "saeval/plan.h"
#include "saeval/reduce.h"
#include "saeval/run.h"
#include "saeval/safetensors.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/store.h"
#include "synthwrite.h"

static double now_s(void) { return MPI_Wtime(); }

/* Small deterministic generator: the data only has to be realistic in
 * scale, not in structure. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}

static sv_rc write_store(const char *path, int64_t n, int64_t d, sv_store_dtype dt, int64_t ctx)
{
    float *x = sv_malloc((size_t)(n * d) * sizeof(float));
    if (!x) return SV_EINTERNAL;
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)(2.0 * urand() - 1.0) * 1.7320508f; /* unit variance */
    sv_store_wopts o;
    memset(&o, 0, sizeof o);
    o.dtype = dt;
    o.context_size = ctx;
    sv_rc rc = sv_store_write(path, x, n, d, &o);
    free(x);
    return rc;
}

static sv_rc write_sae(const char *dir, sv_arch arch, int64_t d, int64_t m, int64_t k, double threshold)
{
    sv_rc rc = SV_OK;
    double *We = sv_malloc((size_t)(d * m) * sizeof(double)), *Wd = sv_malloc((size_t)(d * m) * sizeof(double));
    double *be = sv_calloc((size_t)m, sizeof(double)), *bd = sv_calloc((size_t)d, sizeof(double));
    double *th = sv_malloc((size_t)m * sizeof(double));
    if (!We || !Wd || !be || !bd || !th) { rc = SV_EINTERNAL; goto out; }
    const double a = sqrt(3.0 / (double)d); /* pre-activations of unit variance */
    for (int64_t i = 0; i < d * m; i++) We[i] = (2 * urand() - 1) * a;
    for (int64_t i = 0; i < d * m; i++) Wd[i] = (2 * urand() - 1) * a;
    for (int64_t j = 0; j < m; j++) th[j] = threshold;
    sv_synth_sae o;
    memset(&o, 0, sizeof o);
    o.architecture = sv_arch_name(arch);
    o.d_in = d;
    o.d_sae = m;
    o.k = arch == SV_ARCH_TOPK ? k : 0;
    o.W_enc = We; o.b_enc = be; o.W_dec = Wd; o.b_dec = bd;
    o.threshold = arch == SV_ARCH_JUMPRELU ? th : NULL;
    rc = sv_synth_write_sae(dir, &o);
out:
    free(We); free(Wd); free(be); free(bd); free(th);
    return rc;
}

/* VmHWM of this process (KiB), -1 when unknown. */
static long vm_hwm_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static sv_rc write_config(const char *path, const char *out, const char **saes, int ns, const char *store,
                          int64_t budget_mb)
{
    sv_jw w;
    sv_jw_init(&w);
    sv_jw_obj(&w, NULL);
    sv_jw_str(&w, "output_dir", out);
    sv_jw_arr(&w, "saes");
    for (int i = 0; i < ns; i++) sv_jw_str(&w, NULL, saes[i]);
    sv_jw_end(&w);
    sv_jw_arr_block(&w, "datasets");
    sv_jw_obj(&w, NULL);
    sv_jw_str(&w, "name", "bench");
    sv_jw_str(&w, "path", store);
    sv_jw_end(&w);
    sv_jw_end(&w);
    sv_jw_bool(&w, "geometry", 0); /* per-SAE weight geometry is timed apart */
    if (budget_mb > 0) sv_jw_int(&w, "memory_budget_mb", budget_mb);
    sv_jw_end(&w);
    sv_rc rc = w.oom ? SV_EINTERNAL : sv_write_atomic(path, w.buf, w.len);
    sv_jw_free(&w);
    return rc;
}

/* Evaluator pass time (median) of one config; rank 0 gets the stats. */
static sv_rc time_eval(const char *cfg, int repeat, MPI_Comm comm, double *med, sv_run_stats *st)
{
    double t[16];
    sv_run_opts o;
    memset(&o, 0, sizeof o);
    o.quiet = 1;
    o.force = 1;
    o.n_shards = 1;
    for (int r = 0; r < repeat; r++) {
        sv_rc rc = sv_run(cfg, &o, comm, st);
        if (rc != SV_OK) return rc;
        t[r] = st->pass_seconds;
    }
    *med = median(t, repeat);
    return SV_OK;
}

/* This rank's share of tokens, as sv_run splits units (legacy batches of
 * 16 sequences of ctx tokens). */
static int64_t my_tokens(int64_t n, int64_t ctx, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    int64_t unit = 16 * ctx, nu = (n + unit - 1) / unit;
    int64_t *w = malloc((size_t)nu * sizeof *w), first[64], last[64];
    for (int64_t u = 0; u < nu; u++) w[u] = (u + 1) * unit <= n ? unit : n - u * unit;
    sv_split_units(w, nu, P, first, last);
    int64_t mine = 0;
    for (int64_t u = first[rank]; u < last[rank]; u++) mine += w[u];
    free(w);
    return mine;
}

/* GEMM limits: plain per-block sgemm with OpenBLAS threads, and saeval's
 * tiles with its threads (either skipped when its pointer is NULL); wall
 * time is the slowest rank's. */
static void time_gemm(const char *sae_dir, int64_t rows, int64_t block, int repeat, MPI_Comm comm, double *plain,
                      double *tiled)
{
    sv_sae s;
    memset(&s, 0, sizeof s);
    if (sv_sae_load(&s, sae_dir, 32, 0, 0) != SV_OK) {
        if (plain) *plain = NAN;
        if (tiled) *tiled = NAN;
        return;
    }
    const int64_t d = s.cfg.d_in, m = s.cfg.d_sae;
    float *in = calloc((size_t)(block * d), sizeof(float)), *h = plain ? malloc((size_t)(block * m) * sizeof(float)) : NULL;
    for (int64_t i = 0; i < block * d; i++) in[i] = (float)(i % 7) * 0.25f;
    double tp[16], tt[16];
    for (int r = 0; r < repeat; r++) {
        if (plain) {
            MPI_Barrier(comm);
            double t0 = now_s();
            openblas_set_num_threads(sv_fwd_get_threads());
            for (int64_t r0 = 0; r0 < rows; r0 += block) {
                int64_t nb = rows - r0 < block ? rows - r0 : block;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)m, (int)d, 1, in, (int)d,
                            s.W_enc, (int)m, 0, h, (int)m);
            }
            openblas_set_num_threads(1);
            double mine = now_s() - t0;
            MPI_Allreduce(&mine, &tp[r], 1, MPI_DOUBLE, MPI_MAX, comm);
        }
        if (tiled) {
            MPI_Barrier(comm);
            double mine = sv_fwd_gemm_seconds(&s, rows, block);
            MPI_Allreduce(&mine, &tt[r], 1, MPI_DOUBLE, MPI_MAX, comm);
        }
    }
    if (plain) *plain = median(tp, repeat);
    if (tiled) *tiled = median(tt, repeat);
    free(in);
    free(h);
    sv_sae_free(&s);
}

/* Plain reads of this rank's slices, unit by unit (page cache warm). */
static double time_reads(const char *store, int64_t ctx, int repeat, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    sv_store st;
    memset(&st, 0, sizeof st);
    if (sv_store_open(&st, store, comm) != SV_OK) return NAN;
    int64_t unit = 16 * ctx, nu = (st.n_tokens + unit - 1) / unit;
    int64_t *w = malloc((size_t)nu * sizeof *w), first[64], last[64];
    for (int64_t u = 0; u < nu; u++) w[u] = (u + 1) * unit <= st.n_tokens ? unit : st.n_tokens - u * unit;
    sv_split_units(w, nu, P, first, last);
    float *buf = malloc((size_t)(unit * st.d_in) * sizeof(float));
    double t[16];
    for (int r = 0; r < repeat; r++) {
        MPI_Barrier(comm);
        double t0 = now_s();
        for (int64_t u = first[rank]; u < last[rank]; u++) sv_store_read_rows(&st, u * unit, w[u], buf);
        double mine = now_s() - t0;
        MPI_Allreduce(&mine, &t[r], 1, MPI_DOUBLE, MPI_MAX, comm);
    }
    free(w);
    free(buf);
    sv_store_close(&st);
    return median(t, repeat);
}

/* After writing data: every rank agrees on rc, and the written files are
 * flushed first (sync), so that the kernel's write-back of hundreds of MB
 * does not run during the next measurement. */
static sv_rc bench_barrier(sv_rc rc, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) sync();
    return sv_agree(rc, comm);
}

int sv_bench(const sv_bench_opts *opt, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    char dir[4096] = "";
    sv_rc rc = SV_OK;
    if (rank == 0) {
        const char *tmp = opt->dir ? opt->dir : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        snprintf(dir, sizeof dir, "%s/saeval-bench-XXXXXX", tmp);
        if (!mkdtemp(dir)) rc = sv_fail(SV_EINPUT, "%s: cannot create a temporary directory", dir);
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, comm);
    if ((rc = bench_barrier(rc, comm)) != SV_OK) return rc;

    const int R = opt->repeat > 0 ? (opt->repeat < 16 ? opt->repeat : 15) : 3;
    const int64_t D = opt->quick ? 256 : 2304, M = opt->quick ? 2048 : 16384, K = 64;
    const int64_t NT = opt->quick ? 4096 : 32768, CTX = opt->quick ? 64 : 256;
    const double sgemm_flops_per_token = 2.0 * (double)D * (double)M;
    char p[4096], q[4096], cfg[4096], out[4096];
    /* First, so that the process's peak RSS is this case's.
     * Memory budget: a 131072-latent SAE under a budget smaller than one
     * full 1024-row block of its pre-activations. */
    const int64_t DB = opt->quick ? 64 : 768, MB = opt->quick ? 16384 : 131072, NB = opt->quick ? 2048 : 8192;
    /* Weights alone are 2 x 768 x 131072 x 4 B = 768 MiB; one 1024-row block
     * of pre-activations would add 512 MiB. The budget is below the sum. */
    const int64_t budget_mb = opt->quick ? 40 : 1000;
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(p, sizeof p, "%s/budget.h5", dir);
    snprintf(q, sizeof q, "%s/budget_sae", dir);
    snprintf(cfg, sizeof cfg, "%s/cfg_budget.json", dir);
    if (rc == SV_OK && rank == 0) {
        rc = write_store(p, NB, DB, SV_STORE_F32, CTX);
        if (rc == SV_OK) rc = write_sae(q, SV_ARCH_TOPK, DB, MB, 64, 0);
        const char *saes[1] = {q};
        if (rc == SV_OK) rc = write_config(cfg, out, saes, 1, p, budget_mb);
    }
    if ((rc = bench_barrier(rc, comm)) == SV_OK) {
        /* Peak RSS of the evaluation alone: reset the kernel's high-water
         * mark (data generation on rank 0 used more) and read it after. */
        FILE *cr = fopen("/proc/self/clear_refs", "w");
        if (cr) { fputs("5", cr); fclose(cr); }
        double te = 0;
        sv_run_stats st;
        memset(&st, 0, sizeof st);
        rc = time_eval(cfg, 1, comm, &te, &st);
        long peak = vm_hwm_kib(), peak_max = 0;
        MPI_Reduce(&peak, &peak_max, 1, MPI_LONG, MPI_MAX, 0, comm);
        if (rc == SV_OK && rank == 0) {
            const double mib = 1 << 20, weights = 2.0 * DB * MB * 4 / mib, block = 1024.0 * MB * 4 / mib;
            sv_sae_cfg c;
            memset(&c, 0, sizeof c);
            c.arch = SV_ARCH_TOPK;
            c.d_in = DB;
            c.d_sae = MB;
            c.k = 64;
            printf("%-28s %9lld %10.3f %10.0f\n", "budget: d_sae 131072", (long long)NB, te, NB / te);
            printf("%-28s memory_budget_mb %lld < weights (%.0f MiB) + one 1024-row block of pre-activations (%.0f MiB);\n"
                   "%-28s saeval holds one %dx%d tile of them per thread; its estimate %.0f MiB, block rows %lld;\n"
                   "%-28s peak RSS during the run %.0f MiB, largest rank (incl. the MPI/HDF5/OpenBLAS runtime)\n",
                   "", (long long)budget_mb, weights, block, "", SV_GEMM_ROWS, SV_GEMM_PANEL,
                   sv_sae_mem_bytes(&c, 32, st.block_rows) / mib, (long long)st.block_rows, "", peak_max / 1024.0);
            fflush(stdout);
        }
    }
    if (rank == 0) {
        printf("[bench] %d rank(s) x %d thread(s), OpenBLAS core %s, data in %s, medians of %d runs\n", P,
               sv_fwd_get_threads(), openblas_get_corename(), dir, R);
        printf("[bench] writing compute-bound case: %lld tokens x d_in %lld, SAEs d_sae %lld (topk k=%lld, jumprelu)\n",
               (long long)NT, (long long)D, (long long)M, (long long)K);
        fflush(stdout);
        snprintf(p, sizeof p, "%s/f32.h5", dir);
        rc = write_store(p, NT, D, SV_STORE_F32, CTX);
        snprintf(p, sizeof p, "%s/bf16.h5", dir);
        if (rc == SV_OK) rc = write_store(p, NT, D, SV_STORE_BF16, CTX);
        snprintf(p, sizeof p, "%s/topk", dir);
        if (rc == SV_OK) rc = write_sae(p, SV_ARCH_TOPK, D, M, K, 0);
        snprintf(p, sizeof p, "%s/jumprelu", dir);
        if (rc == SV_OK) rc = write_sae(p, SV_ARCH_JUMPRELU, D, M, 0, 2.5); /* L0 ~ 100 */
    }
    if ((rc = bench_barrier(rc, comm)) != SV_OK) return rc;

    if (rank == 0) {
        printf("\n%-28s %9s %10s %10s %12s %12s %8s\n", "case", "tokens", "eval s", "tok/s", "enc GFLOP/s",
               "limit GF/s", "ratio");
        fflush(stdout);
    }
    double compute_tps = 0;
    const char *archs[2] = {"topk", "jumprelu"}, *stores[2] = {"f32", "bf16"};
    /* The machine's speed drifts (shared host): each evaluator run is
     * paired with a run of the limit right before it (plain sgemm per
     * block, as the limit is defined, and saeval's tiles; the faster
     * counts), and the ratio is the median of the pairs' ratios. */
    for (int a = 0; a < 2 && rc == SV_OK; a++) {
        snprintf(q, sizeof q, "%s/%s", dir, archs[a]);
        const int64_t mine = my_tokens(NT, CTX, comm);
        for (int s = 0; s < 2 && rc == SV_OK; s++) {
            const char *saes[1] = {q};
            snprintf(p, sizeof p, "%s/%s.h5", dir, stores[s]);
            snprintf(cfg, sizeof cfg, "%s/cfg_%s_%s.json", dir, archs[a], stores[s]);
            snprintf(out, sizeof out, "%s/out", dir);
            if (rank == 0) rc = write_config(cfg, out, saes, 1, p, 0);
            if ((rc = bench_barrier(rc, comm)) != SV_OK) break;
            double te[16], tl[16], tp[16], tt[16], ratio[16];
            sv_run_stats st;
            for (int r = 0; r < R && rc == SV_OK; r++) {
                time_gemm(q, mine, 1024, 1, comm, &tp[r], &tt[r]);
                tl[r] = tp[r] < tt[r] ? tp[r] : tt[r];
                rc = time_eval(cfg, 1, comm, &te[r], &st);
                ratio[r] = tl[r] / te[r];
            }
            if (rc != SV_OK) break;
            const double r_med = median(ratio, R), te_med = median(te, R), tl_med = median(tl, R);
            const double plain = median(tp, R), tiled = median(tt, R);
            if (rank == 0) {
                char name[64];
                snprintf(name, sizeof name, "compute %s, %s store", archs[a], stores[s]);
                printf("%-28s %9lld %10.3f %10.0f %12.1f %12.1f %8.3f\n", name, (long long)NT, te_med, NT / te_med,
                       sgemm_flops_per_token * NT / te_med / 1e9, sgemm_flops_per_token * NT / tl_med / 1e9, r_med);
                printf("%-28s limit: plain sgemm per block %.3f s (%.1f GF/s), saeval tiles %.3f s (%.1f GF/s), faster used\n", "",
                       plain, sgemm_flops_per_token * NT / plain / 1e9, tiled, sgemm_flops_per_token * NT / tiled / 1e9);
                fflush(stdout);
                if (a == 0 && s == 0) compute_tps = NT / te_med;
            }
        }
    }

    /* Scaling: the compute topk/float32 case again on rank 0 alone, one
     * thread, against the 2-rank figure above. */
    if (rc == SV_OK && P > 1) {
        MPI_Comm solo;
        MPI_Comm_split(comm, rank == 0 ? 0 : MPI_UNDEFINED, 0, &solo);
        double t1 = 0;
        if (rank == 0) {
            snprintf(cfg, sizeof cfg, "%s/cfg_topk_f32.json", dir);
            const char *env = getenv("SAEVAL_THREADS");
            char *saved = env ? strdup(env) : NULL;
            setenv("SAEVAL_THREADS", "1", 1);
            sv_run_stats st;
            rc = time_eval(cfg, R, solo, &t1, &st);
            if (saved) setenv("SAEVAL_THREADS", saved, 1);
            else unsetenv("SAEVAL_THREADS");
            free(saved);
            MPI_Comm_free(&solo);
        }
        /* The other ranks wait without spinning on a core. */
        MPI_Request req;
        MPI_Ibarrier(comm, &req);
        for (int done = 0; !done;) {
            MPI_Test(&req, &done, MPI_STATUS_IGNORE);
            if (!done) nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
        MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
        sv_fwd_set_threads_default(comm); /* collective: every rank */
        if (rc == SV_OK && rank == 0) {
            printf("%-28s %9lld %10.3f %10.0f %12.1f %12s %8s\n", "scaling: 1 rank x 1 thread", (long long)NT, t1,
                   NT / t1, sgemm_flops_per_token * NT / t1 / 1e9, "", "");
            printf("%-28s %d ranks run %.2f x faster than 1 (compute topk, float32 store)\n", "", P,
                   compute_tps * t1 / NT);
            fflush(stdout);
        }
    }

    /* I/O-bound: a big store, a small SAE. */
    const int64_t DI = opt->quick ? 256 : 2304, NI = opt->quick ? 16384 : 131072, MI = 512;
    if (rc == SV_OK && rank == 0) {
        printf("[bench] writing I/O-bound case: %lld tokens x d_in %lld float32 (%.2f GiB), SAE d_sae %lld\n",
               (long long)NI, (long long)DI, (double)NI * DI * 4 / (1 << 30), (long long)MI);
        fflush(stdout);
        snprintf(p, sizeof p, "%s/io.h5", dir);
        rc = write_store(p, NI, DI, SV_STORE_F32, CTX);
        snprintf(q, sizeof q, "%s/io_sae", dir);
        if (rc == SV_OK) rc = write_sae(q, SV_ARCH_TOPK, DI, MI, 32, 0);
        snprintf(cfg, sizeof cfg, "%s/cfg_io.json", dir);
        const char *saes[1] = {q};
        if (rc == SV_OK) rc = write_config(cfg, out, saes, 1, p, 0);
    }
    if ((rc = bench_barrier(rc, comm)) == SV_OK) {
        snprintf(p, sizeof p, "%s/io.h5", dir);
        snprintf(cfg, sizeof cfg, "%s/cfg_io.json", dir);
        double tr = time_reads(p, CTX, R + 1, comm); /* first read warms the page cache */
        double plain = 0, tiled = 0;
        snprintf(q, sizeof q, "%s/io_sae", dir);
        time_gemm(q, my_tokens(NI, CTX, comm), 1024, R, comm, &plain, &tiled);
        const double tg = plain < tiled ? plain : tiled;
        double te = 0;
        sv_run_stats st;
        memset(&st, 0, sizeof st);
        rc = time_eval(cfg, R, comm, &te, &st);
        if (rc == SV_OK && rank == 0) {
            double bytes = (double)NI * DI * 4;
            printf("%-28s %9lld %10.3f %10.0f %12s %12s %8.3f\n", "I/O d_sae 512, f32 store", (long long)NI, te,
                   NI / te, "", "", tr / te);
            printf("%-28s evaluator %.2f GB/s; plain reads of the same slices %.3f s = %.2f GB/s (file in page cache)\n",
                   "", bytes / te / 1e9, tr, bytes / tr / 1e9);
            printf("%-28s not I/O-bound here: the d_sae 512 encoder GEMMs alone take %.3f s (%.2f GB/s at most);\n"
                   "%-28s evaluator / that limit %.3f\n",
                   "", tg, bytes / tg / 1e9, "", tg / te);
            fflush(stdout);
        }
    }

    /* Several SAEs share one read of the store. */
    const int64_t DM = opt->quick ? 128 : 768, MM = opt->quick ? 512 : 4096, NM = opt->quick ? 8192 : 65536;
    snprintf(cfg, sizeof cfg, "%s/cfg_multi.json", dir);
    if (rc == SV_OK && rank == 0) {
        snprintf(p, sizeof p, "%s/multi.h5", dir);
        rc = write_store(p, NM, DM, SV_STORE_F32, CTX);
        char names[8][4096];
        const char *saes[8];
        for (int i = 0; i < 8 && rc == SV_OK; i++) {
            snprintf(names[i], sizeof names[i], "%s/multi_%d", dir, i);
            saes[i] = names[i];
            rc = write_sae(names[i], SV_ARCH_TOPK, DM, MM, 32, 0);
        }
        if (rc == SV_OK) rc = write_config(cfg, out, saes, 8, p, 0);
    }
    if ((rc = bench_barrier(rc, comm)) == SV_OK) {
        double te = 0;
        sv_run_stats st;
        memset(&st, 0, sizeof st);
        rc = time_eval(cfg, R, comm, &te, &st);
        if (rc == SV_OK && rank == 0) {
            double store_bytes = (double)NM * DM * 4;
            printf("%-28s %9lld %10.3f %10.0f %12.1f %12s %8s\n", "8 SAEs (768 x 4096), 1 store", (long long)NM, te,
                   NM / te, 8 * 2.0 * DM * MM * NM / te / 1e9, "", "");
            printf("%-28s bytes read %.0f = %.2f x the store (%d pass): read once per pass, not once per SAE\n", "",
                   (double)st.bytes_read, st.bytes_read / store_bytes, st.passes);
            fflush(stdout);
        }
    }

    if (rank == 0) {
        printf("BENCH ranks=%d threads=%d compute_topk_f32_tokens_per_s=%.1f\n", P, sv_fwd_get_threads(), compute_tps);
        if (!opt->keep) {
            char cmd[4200];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0) fprintf(stderr, "[bench] could not remove %s\n", dir);
        }
        fflush(stdout);
    }
    return bench_barrier(rc, comm);
}
