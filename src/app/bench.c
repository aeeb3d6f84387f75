/* `saeval bench`: every figure is a ratio to a limit measured in the same
 * run on the same machine. Data and SAEs are generated into a temporary
 * directory; the evaluator runs through sv_run exactly as `saeval run`
 * does. Limits: the GEMMs of a case alone, on the same shapes, ranks and
 * threads (encoder: the faster of one plain sgemm per block and saeval's
 * tiles; geometry: its Gram blocks), with the OpenBLAS kernel in use; the
 * best kernel's limit scales that by the rates of OpenBLAS kernels measured
 * in child processes (gemm.h). Medians over --repeat runs. Cases: compute
 * (one big SAE, float32 and bfloat16 stores, bfloat16 precision; float32
 * on a store 4x as long with and without top_examples 20: the feature
 * analysis overhead), a sweep
 * of many mid-sized SAEs with geometry (whole run), geometry alone, and an
 * SAE under a memory budget below its weights. */
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
#include "saeval/model_bench.h"
#include "saeval/fsutil.h"
#include "saeval/gemm.h"
#include "saeval/geometry.h"
#include "saeval/output.h"
#include "saeval/plan.h"
#include "saeval/reduce.h"
#include "saeval/run.h"
#include "saeval/safetensors.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/store.h"
#include "benchutil.h"
#include "saeval/env.h"
#include "synthwrite.h"

static double now_s(void) { return MPI_Wtime(); }

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { return sv_bench_urand(&rng_state); }

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

static sv_rc write_config_feat(const char *path, const char *out, const char **saes, int ns, const char *store,
                               int64_t budget_mb, int geometry, const char *precision, int top_examples)
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
    sv_jw_bool(&w, "geometry", geometry);
    sv_jw_str(&w, "precision", precision);
    if (budget_mb > 0) sv_jw_int(&w, "memory_budget_mb", budget_mb);
    if (top_examples > 0) sv_jw_int(&w, "top_examples", top_examples);
    sv_jw_end(&w);
    sv_rc rc = w.oom ? SV_EINTERNAL : sv_write_atomic(path, w.buf, w.len);
    sv_jw_free(&w);
    return rc;
}

static sv_rc write_config(const char *path, const char *out, const char **saes, int ns, const char *store,
                          int64_t budget_mb, int geometry, const char *precision)
{
    return write_config_feat(path, out, saes, ns, store, budget_mb, geometry, precision, 0);
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
static void time_gemm(const char *sae_dir, int precision, int64_t rows, int64_t block, int repeat, MPI_Comm comm,
                      double *plain, double *tiled)
{
    sv_sae s;
    memset(&s, 0, sizeof s);
    if (sv_sae_load(&s, sae_dir, precision, 0, 0) != SV_OK) {
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

/* Rank 0 works alone (fn), the others wait without spinning on a core. */
static sv_rc rank0_alone(sv_rc (*fn)(void *), void *arg, MPI_Comm comm)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    sv_rc rc = rank == 0 ? fn(arg) : SV_OK;
    MPI_Request req;
    MPI_Ibarrier(comm, &req);
    for (int done = 0; !done;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done) nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    return rc;
}

/* OpenBLAS kernels on tiles with inner dimension k, all the node's cores
 * busy (one tile per rank x thread). */
typedef struct {
    int64_t k;
    int tiles, rounds;
    sv_gemm_kernel_rate r[8];
    int n;
    double in_use, best; /* GFLOP/s of the kernel this process runs, and of the fastest */
    char best_name[32];
} kernel_probe;

static sv_rc probe_fn(void *arg)
{
    kernel_probe *kp = arg;
    sv_rc rc = sv_gemm_probe_kernels("/proc/self/exe", kp->k, kp->tiles, kp->rounds, kp->r, 8, &kp->n);
    if (rc != SV_OK) return rc;
    kp->in_use = kp->r[0].gflops;
    for (int i = 0; i < kp->n; i++)
        if (strcmp(kp->r[i].kernel, sv_gemm_openblas_core()) == 0) kp->in_use = kp->r[i].gflops;
    kp->best = 0;
    for (int i = 0; i < kp->n; i++)
        if (kp->r[i].gflops > kp->best) {
            kp->best = kp->r[i].gflops;
            snprintf(kp->best_name, sizeof kp->best_name, "%s", kp->r[i].kernel);
        }
    return SV_OK;
}

static sv_rc probe_kernels(kernel_probe *kp, MPI_Comm comm)
{
    sv_rc rc = rank0_alone(probe_fn, kp, comm);
    MPI_Bcast(&kp->in_use, 1, MPI_DOUBLE, 0, comm);
    MPI_Bcast(&kp->best, 1, MPI_DOUBLE, 0, comm);
    return rc;
}

/* Wall time of a whole sv_run (slowest rank) and its pass time. */
static sv_rc time_run(const char *cfg, MPI_Comm comm, double *wall, double *pass)
{
    sv_run_opts o;
    memset(&o, 0, sizeof o);
    o.quiet = 1;
    o.force = 1;
    o.n_shards = 1;
    MPI_Barrier(comm);
    double t0 = now_s();
    sv_run_stats st;
    memset(&st, 0, sizeof st);
    sv_rc rc = sv_run(cfg, &o, comm, &st);
    double mine = now_s() - t0;
    MPI_Allreduce(&mine, wall, 1, MPI_DOUBLE, MPI_MAX, comm);
    *pass = st.pass_seconds;
    return rc;
}

/* Gram GEMMs alone for one SAE (slowest rank), and their flops. */
static double time_geometry_gemm(const char *sae_dir, MPI_Comm comm, double *flops)
{
    sv_sae s;
    memset(&s, 0, sizeof s);
    double t = NAN;
    if (sv_sae_load(&s, sae_dir, 32, 0, 0) == SV_OK) t = sv_geometry_gemm_seconds(&s, 0, comm, flops);
    sv_sae_free(&s);
    return t;
}

static void print_row(const char *name, int64_t tokens, double te, double tl, double best_scale, double non_gemm_us)
{
    printf("%-34s %8lld %9.3f %9.3f %7.3f %7.3f %9.2f %7.1f%%\n", name, (long long)tokens, te, tl, tl / te,
           tl * best_scale / te, non_gemm_us, 100.0 * (te - tl) / te);
    fflush(stdout);
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
    const int64_t NT = opt->quick ? 4096 : 8192, CTX = opt->quick ? 64 : 256;
    char p[4096], q[4096], cfg[4096], out[4096];
    /* First, so that the process's peak RSS is this case's.
     * Memory budget: a 131072-latent SAE under a budget smaller than one
     * full 1024-row block of its pre-activations. */
    const int64_t DB = opt->quick ? 64 : 768, MB = opt->quick ? 16384 : 131072, NB = 2048;
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
        if (rc == SV_OK) rc = write_config(cfg, out, saes, 1, p, budget_mb, 0, "float32");
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
        long peak = sv_env_peak_rss_kib(), peak_max = 0;
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
    if (rc != SV_OK) return bench_barrier(rc, comm);
    const int T = sv_fwd_get_threads();
    /* Kernels: rates of OpenBLAS's kernels on the two inner dimensions of
     * the cases, P x T tiles at once (one node assumed). */
    kernel_probe kp[2];
    memset(kp, 0, sizeof kp);
    kp[0].k = D;
    kp[1].k = opt->quick ? 128 : 512;
    for (int i = 0; i < 2 && rc == SV_OK; i++) {
        kp[i].tiles = P * T;
        kp[i].rounds = R;
        rc = probe_kernels(&kp[i], comm);
    }
    if (rc != SV_OK) return bench_barrier(rc, comm);
    if (rank == 0) {
        printf("[bench] %d rank(s) x %d thread(s), GEMM backend %s, OpenBLAS kernel in use %s, data in %s, "
               "medians of %d runs\n", P, T, sv_gemm_current()->name, sv_gemm_openblas_core(), dir, R);
        printf("[bench] %s\n", sv_gemm_bf16_describe());
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < kp[i].n; j++)
                printf("[bench] kernel %-14s (OPENBLAS_CORETYPE=%s): %7.1f GFLOP/s on %d x %dx%dx%lld tiles at once%s\n",
                       kp[i].r[j].kernel, kp[i].r[j].request[0] ? kp[i].r[j].request : "unset", kp[i].r[j].gflops,
                       kp[i].tiles, SV_GEMM_ROWS, SV_GEMM_PANEL, (long long)kp[i].k,
                       strcmp(kp[i].r[j].kernel, sv_gemm_openblas_core()) == 0 ? "  <- in use" : "");
        printf("[bench] writing compute case: %lld tokens x d_in %lld, SAE topk k=%lld d_sae %lld\n", (long long)NT,
               (long long)D, (long long)K, (long long)M);
        fflush(stdout);
        snprintf(p, sizeof p, "%s/f32.h5", dir);
        rc = write_store(p, NT, D, SV_STORE_F32, CTX);
        snprintf(p, sizeof p, "%s/bf16.h5", dir);
        if (rc == SV_OK) rc = write_store(p, NT, D, SV_STORE_BF16, CTX);
        snprintf(p, sizeof p, "%s/topk", dir);
        if (rc == SV_OK) rc = write_sae(p, SV_ARCH_TOPK, D, M, K, 0);
    }
    if ((rc = bench_barrier(rc, comm)) != SV_OK) return rc;
    if (rank == 0) {
        printf("\n%-34s %8s %9s %9s %7s %7s %9s %8s\n", "case", "tokens", "eval s", "limit s", "ratio", "r.best",
               "non-GEMM", "share");
        printf("%-34s %8s %9s %9s %7s %7s %9s %8s\n", "", "", "", "(in use)", "", "", "us/tk/SAE", "");
        fflush(stdout);
    }

    /* Compute: each evaluator run paired with a limit run right before it
     * (the host is shared and its speed drifts); medians of both. */
    const int64_t mine = my_tokens(NT, CTX, comm);
    const double scale_big = kp[0].best > 0 ? kp[0].in_use / kp[0].best : NAN;
    double compute_tps = 0;
    const struct { const char *store, *precision, *name; } cc[3] = {
        {"f32", "float32", "compute topk, float32 store"},
        {"bf16", "float32", "compute topk, bfloat16 store"},
        {"f32", "bfloat16", "compute topk, precision bfloat16"}};
    for (int c = 0; c < 3 && rc == SV_OK; c++) {
        const int prec = strcmp(cc[c].precision, "bfloat16") == 0 ? 16 : 32;
        snprintf(q, sizeof q, "%s/topk", dir);
        const char *saes[1] = {q};
        snprintf(p, sizeof p, "%s/%s.h5", dir, cc[c].store);
        snprintf(cfg, sizeof cfg, "%s/cfg_compute%d.json", dir, c);
        snprintf(out, sizeof out, "%s/out", dir);
        if (rank == 0) rc = write_config(cfg, out, saes, 1, p, 0, 0, cc[c].precision);
        if ((rc = bench_barrier(rc, comm)) != SV_OK) break;
        double te[16], tl[16], tp = NAN;
        sv_run_stats st;
        for (int r = 0; r < R && rc == SV_OK; r++) {
            double tt = NAN;
            /* The plain sgemm once (time), the tiles before every run;
             * bfloat16 tiles have no plain-sgemm counterpart. */
            time_gemm(q, prec, mine, 1024, 1, comm, prec == 16 || r > 0 ? NULL : &tp, &tt);
            tl[r] = prec == 16 || !(tp < tt) ? tt : tp;
            rc = time_eval(cfg, 1, comm, &te[r], &st);
        }
        if (rc != SV_OK) break;
        const double te_m = median(te, R), tl_m = median(tl, R);
        if (rank == 0) {
            /* bfloat16: the best OpenBLAS kernel says nothing about it */
            print_row(cc[c].name, NT, te_m, tl_m, prec == 16 ? 1.0 : scale_big, (te_m - tl_m) / (double)NT * 1e6);
            if (c == 0) compute_tps = NT / te_m;
        }
    }
    /* Feature analysis overhead: the float32 compute case on a store 4x as
     * long (the size of the compute case when the target was set; on 8192
     * tokens each latent fires about 32 times, so nearly every firing
     * enters a list and the fixed cost per latent, merging and writing
     * 16384 latents' examples, weighs 4x more), each run with top_examples
     * 20 right after the same run without; the pass time includes merging
     * the feature data and writing its file. One pair (two from R = 5:
     * a pair takes half a minute, and --repeat 3 must stay within 5). */
    if (rc == SV_OK) {
        const int64_t NF = 4 * NT;
        char cfg_off[4096], cfg_on[4096];
        snprintf(p, sizeof p, "%s/f32_long.h5", dir);
        snprintf(q, sizeof q, "%s/topk", dir);
        const char *saes[1] = {q};
        snprintf(cfg_off, sizeof cfg_off, "%s/cfg_feat0.json", dir);
        snprintf(cfg_on, sizeof cfg_on, "%s/cfg_feat20.json", dir);
        if (rank == 0) {
            rc = write_store(p, NF, D, SV_STORE_F32, CTX);
            if (rc == SV_OK) rc = write_config(cfg_off, out, saes, 1, p, 0, 0, "float32");
            if (rc == SV_OK) rc = write_config_feat(cfg_on, out, saes, 1, p, 0, 0, "float32", 20);
        }
        rc = bench_barrier(rc, comm);
        const int RF = R >= 5 ? 2 : 1;
        double on[16], off[16], obs[16], fin[16];
        sv_run_stats st;
        for (int r = 0; r < RF && rc == SV_OK; r++) {
            rc = time_eval(cfg_off, 1, comm, &off[r], &st);
            if (rc == SV_OK) rc = time_eval(cfg_on, 1, comm, &on[r], &st);
            obs[r] = st.feat_observe_seconds;
            fin[r] = st.feat_finish_seconds;
        }
        if (rc == SV_OK && rank == 0) {
            const double w = median(on, RF), wo = median(off, RF);
            printf("%-34s %8lld %9.3f %9.3f %7.3f   (eval s with, without; ratio with / without, target <= 1.10)\n",
                   "compute topk, top_examples 20", (long long)NF, w, wo, w / wo);
            printf("%-34s keeping examples during the pass %.3f s (%.2f us/token on rank 0), merging and writing\n"
                   "%-34s the feature file of %lld latents %.3f s (per pair, whatever the tokens); %d pair(s)\n",
                   "", median(obs, RF), median(obs, RF) / (double)my_tokens(NF, CTX, comm) * 1e6, "", (long long)M, median(fin, RF), RF);
            fflush(stdout);
        }
    }

    /* Sweep: many mid-sized SAEs on two stores (d_in 512 and 2304),
     * geometry on, L0 16-176; whole runs against all their GEMMs alone. */
    const int64_t DS = opt->quick ? 128 : 512, NS = opt->quick ? 2048 : 8192, NS2 = opt->quick ? 2048 : 4096;
    /* Widths m1 < m2 < m3 (quick: small, for sanitizer builds). */
    const int64_t m1 = opt->quick ? 512 : 2048, m2 = opt->quick ? 1024 : 4096, m3 = opt->quick ? 1024 : 8192;
    const struct { sv_arch arch; int64_t d, m, k; double thr; } sw[8] = {
        {SV_ARCH_TOPK, DS, m1, 16, 0},     {SV_ARCH_TOPK, DS, m2, 64, 0},
        {SV_ARCH_TOPK, DS, m2, 128, 0},    {SV_ARCH_JUMPRELU, DS, m1, 0, 1.9},  /* L0 ~ 59 */
        {SV_ARCH_JUMPRELU, DS, m2, 0, 1.72}, /* L0 ~ 176 */ {SV_ARCH_JUMPRELU, DS, m2, 0, 2.4}, /* L0 ~ 34 */
        {SV_ARCH_TOPK, D, m2, 64, 0}, {SV_ARCH_JUMPRELU, D, m3, 0, 2.25}}; /* L0 ~ 100 */
    char swd[8][4096];
    for (int i = 0; i < 8; i++) snprintf(swd[i], sizeof swd[i], "%s/sweep_%d", dir, i);
    if (rc == SV_OK && rank == 0) {
        snprintf(p, sizeof p, "%s/s_small.h5", dir);
        rc = write_store(p, NS, DS, SV_STORE_F32, CTX);
        snprintf(p, sizeof p, "%s/s_big.h5", dir);
        if (rc == SV_OK) rc = write_store(p, NS2, D, SV_STORE_F32, CTX);
        for (int i = 0; i < 8 && rc == SV_OK; i++) rc = write_sae(swd[i], sw[i].arch, sw[i].d, sw[i].m, sw[i].k, sw[i].thr);
        const char *small[6] = {swd[0], swd[1], swd[2], swd[3], swd[4], swd[5]}, *big[2] = {swd[6], swd[7]};
        snprintf(p, sizeof p, "%s/s_small.h5", dir);
        snprintf(cfg, sizeof cfg, "%s/cfg_sweep_small.json", dir);
        if (rc == SV_OK) rc = write_config(cfg, out, small, 6, p, 0, 1, "float32");
        snprintf(p, sizeof p, "%s/s_big.h5", dir);
        snprintf(cfg, sizeof cfg, "%s/cfg_sweep_big.json", dir);
        if (rc == SV_OK) rc = write_config(cfg, out, big, 2, p, 0, 1, "float32");
    }
    if ((rc = bench_barrier(rc, comm)) == SV_OK) {
        const int64_t mine_s = my_tokens(NS, CTX, comm), mine_b = my_tokens(NS2, CTX, comm);
        double wall[16], lim[16], pass[16], enc[16], lim_best[16], tps[8];
        for (int r = 0; r < R && rc == SV_OK; r++) {
            double e = 0, g = 0, eb = 0, gb = 0;
            for (int i = 0; i < 8; i++) {
                double tt = NAN, *tp = &tps[i];
                time_gemm(swd[i], 32, i < 6 ? mine_s : mine_b, 1024, 1, comm, r == 0 ? tp : NULL, &tt);
                const double t = !(*tp < tt) ? tt : *tp, gt = time_geometry_gemm(swd[i], comm, NULL);
                const kernel_probe *k = i < 6 ? &kp[1] : &kp[0];
                e += t;
                g += gt;
                eb += t * k->in_use / k->best;
                gb += gt * k->in_use / k->best;
            }
            double w1, p1, w2, p2;
            snprintf(cfg, sizeof cfg, "%s/cfg_sweep_small.json", dir);
            rc = time_run(cfg, comm, &w1, &p1);
            snprintf(cfg, sizeof cfg, "%s/cfg_sweep_big.json", dir);
            if (rc == SV_OK) rc = time_run(cfg, comm, &w2, &p2);
            wall[r] = w1 + w2;
            pass[r] = p1 + p2;
            enc[r] = e;
            lim[r] = e + g;
            lim_best[r] = eb + gb;
        }
        if (rc == SV_OK && rank == 0) {
            const double w = median(wall, R), l = median(lim, R), ps = median(pass, R), e = median(enc, R);
            const double tok_sae = 6.0 * NS + 2.0 * NS2;
            print_row("sweep 8 SAEs + geometry, whole run", NS + NS2, w, l, median(lim_best, R) / l,
                      (ps - e) / tok_sae * 1e6);
            print_row("sweep 8 SAEs, dataset passes", NS + NS2, ps, e, NAN, (ps - e) / tok_sae * 1e6);
        }
    }

    /* Geometry alone: the d_sae 8192 sweep SAE. */
    if (rc == SV_OK) {
        sv_sae s;
        memset(&s, 0, sizeof s);
        rc = sv_sae_load(&s, swd[7], 32, 0, 0);
        double tg[16], tl[16], flops = 0;
        for (int r = 0; r < R && rc == SV_OK; r++) {
            tl[r] = sv_geometry_gemm_seconds(&s, 0, comm, &flops);
            sv_geometry g;
            MPI_Barrier(comm);
            double t0 = now_s();
            rc = sv_geometry_compute(&s, 0, comm, &g);
            double mine_t = now_s() - t0;
            MPI_Allreduce(&mine_t, &tg[r], 1, MPI_DOUBLE, MPI_MAX, comm);
            sv_geometry_free(&g);
        }
        rc = sv_agree(rc, comm);
        if (rc == SV_OK && rank == 0) {
            char name[64];
            snprintf(name, sizeof name, "geometry alone, d_sae %lld", (long long)s.cfg.d_sae);
            print_row(name, 0, median(tg, R), median(tl, R), kp[0].in_use / kp[0].best, NAN);
            printf("%-34s Gram GEMMs %.1f GFLOP (decoder + encoder passes)\n", "", flops / 1e9);
        }
        sv_sae_free(&s);
    }

    /* Downstream metrics: the native transformer's suffix against the
     * GEMMs of the same shapes, and 8 SAEs sharing the clean and ablated
     * passes (rank 0 alone: a sequence is one rank's work unit). */
    if (rc == SV_OK && rank == 0) {
        sv_model_bench_result mb;
        sv_rc mrc = sv_model_bench(opt->quick, R, &mb);
        if (mrc != SV_OK) {
            fprintf(stderr, "[bench] downstream case: %s\n", sv_errmsg());
        } else {
            char name[64];
            snprintf(name, sizeof name, "downstream suffix, T %lld", (long long)mb.T);
            printf("%-28s %9lld %10.3f %10.0f %12.1f %12s %8.3f\n", name, (long long)(2 * mb.T), mb.suffix_s,
                   mb.tokens_per_s, mb.gflops, "", mb.ratio);
            printf("%-28s Llama-shaped d %lld, %lld layers, vocab %lld: one clean + one spliced walk; its GEMMs alone\n"
                   "%-28s %.3f s (%.1f GF/s); ratio = GEMM time / suffix time (target >= 0.7)\n", "",
                   (long long)mb.d_model, (long long)mb.n_layers, (long long)mb.vocab, "", mb.gemm_s, mb.gemm_gflops);
            printf("%-28s %9s %10.3f %10s %12s %12s %8.2f\n", "downstream 8 SAEs vs 1", "", mb.ds8_s, "", "", "",
                   mb.shared_ratio);
            printf("%-28s 1 SAE %.3f s (3 suffix passes), 8 SAEs %.3f s (10): ratio 8/1 (target <= 4)\n", "", mb.ds1_s,
                   mb.ds8_s);
            fflush(stdout);
        }
    }

    /* Collect: token ids -> a store through the native model, every rank. */
    if (rc == SV_OK) {
        sv_collect_bench_result cb;
        sv_rc crc = sv_collect_bench(dir, opt->quick, R, comm, &cb);
        if (crc != SV_OK) {
            if (rank == 0) fprintf(stderr, "[bench] collect case: %s\n", sv_errmsg());
        } else if (rank == 0) {
            print_row("collect, last layer", cb.tokens, cb.collect_s, cb.gemm_s, NAN,
                      (cb.collect_s - cb.gemm_s) / (double)cb.tokens * 1e6);
            printf("%-34s Llama-shaped d %lld, %lld layers, %.0f tokens/s: model load, forward to the last hook,\n"
                   "%-34s parallel write; limit = the layers' GEMMs on each rank's sequences (no unembedding)\n", "",
                   (long long)cb.d_model, (long long)cb.n_layers, cb.tokens_per_s, "");
            fflush(stdout);
        }
    }

    if (rank == 0) {
        printf("\nlimit s: the case's GEMMs alone with the kernel in use (%s); ratio = limit / eval; r.best: the\n"
               "same against the best OpenBLAS kernel here; non-GEMM: (eval - limit) per token and SAE, share of eval.\n",
               sv_gemm_openblas_core());
        printf("BENCH ranks=%d threads=%d compute_topk_f32_tokens_per_s=%.1f\n", P, T, compute_tps);
        if (!opt->keep) {
            char cmd[4200];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0) fprintf(stderr, "[bench] could not remove %s\n", dir);
        }
        fflush(stdout);
    }
    return bench_barrier(rc, comm);
}
