/* `saeval bench --scale`: a sweep shaped like SAEBench's Pythia-70m suite,
 * generated here (issue 15): S SAEs (d_in 512, d_sae 2048/4096, the four
 * architectures, L0 16-176) x 4 stores of 8192 tokens, evaluated with
 * sv_run under a memory budget that forces several passes. Prints wall
 * time, peak RSS per rank (kernel high-water mark, reset before each
 * measurement) against the budget, the runtime allowance measured with a
 * run that has nothing to evaluate, summary sizes, the no-op rerun and the
 * merge; then one wide SAE with geometry on under a budget. --quick: the
 * same on small shapes. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "bench_scale.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "saeval/agree.h"
#include "saeval/arch.h"
#include "saeval/config.h"
#include "saeval/fsutil.h"
#include "saeval/merge.h"
#include "saeval/output.h"
#include "saeval/plan.h"
#include "saeval/run.h"
#include "saeval/store.h"
#include "benchutil.h"
#include "saeval/env.h"
#include "synthwrite.h"

static uint64_t rs = 0x2545f4914f6cdd1dull;
static double ur(void) { return sv_bench_urand(&rs); }

static void hwm_reset(void)
{
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) { fputs("5", cr); fclose(cr); }
}

/* Largest peak RSS over the ranks, MiB. */
static double hwm_max_mib(MPI_Comm comm)
{
    long mine = sv_env_peak_rss_kib(), mx = 0;
    MPI_Allreduce(&mine, &mx, 1, MPI_LONG, MPI_MAX, comm);
    return (double)mx / 1024.0;
}

static sv_rc store(const char *path, int64_t n, int64_t d, double shift)
{
    float *x = sv_malloc((size_t)(n * d) * sizeof(float));
    if (!x) return SV_EINTERNAL;
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)((2.0 * ur() - 1.0) * 1.7320508 + shift);
    sv_store_wopts o;
    memset(&o, 0, sizeof o);
    o.dtype = SV_STORE_F32;
    o.context_size = 128;
    sv_rc rc = sv_store_write(path, x, n, d, &o);
    free(x);
    return rc;
}

/* SAE i of S: architecture cycles, width alternates, target L0 from 16 to
 * 176 (top-k: k; the others: a threshold/bias that keeps about that many of
 * d_sae unit-variance pre-activations positive). */
static sv_rc sae(const char *dir, int i, int S, int64_t d, int64_t m)
{
    static const sv_arch archs[4] = {SV_ARCH_TOPK, SV_ARCH_JUMPRELU, SV_ARCH_STANDARD, SV_ARCH_GATED};
    const sv_arch a = archs[i % 4];
    const int64_t l0 = 16 + (S > 1 ? (int64_t)i * 160 / (S - 1) : 0);
    /* P(z > t) = l0/m for z ~ N(0,1): t from the inverse tail (crude, enough for scale). */
    double pr = (double)l0 / (double)m, t = sqrt(-2.0 * log(pr > 1e-12 ? pr : 1e-12)) - 0.8;
    if (t < 0) t = 0;
    sv_rc rc = SV_OK;
    double *We = sv_malloc((size_t)(d * m) * sizeof(double)), *Wd = sv_malloc((size_t)(d * m) * sizeof(double));
    double *bm = sv_malloc((size_t)m * sizeof(double)), *bd = sv_calloc((size_t)d, sizeof(double));
    double *th = sv_malloc((size_t)m * sizeof(double)), *zero = sv_calloc((size_t)m, sizeof(double));
    if (!We || !Wd || !bm || !bd || !th || !zero) { rc = SV_EINTERNAL; goto out; }
    const double s = sqrt(3.0 / (double)d);
    for (int64_t q = 0; q < d * m; q++) We[q] = (2 * ur() - 1) * s;
    for (int64_t q = 0; q < d * m; q++) Wd[q] = (2 * ur() - 1) * s;
    for (int64_t j = 0; j < m; j++) { th[j] = t; bm[j] = -t; }
    sv_synth_sae o;
    memset(&o, 0, sizeof o);
    o.architecture = sv_arch_name(a);
    o.d_in = d;
    o.d_sae = m;
    o.W_enc = We; o.W_dec = Wd; o.b_dec = bd;
    if (a == SV_ARCH_TOPK) { o.k = l0; o.b_enc = zero; }
    else if (a == SV_ARCH_JUMPRELU) { o.b_enc = zero; o.threshold = th; }
    else if (a == SV_ARCH_STANDARD) o.b_enc = bm;
    else { o.b_gate = bm; o.r_mag = zero; o.b_mag = zero; }
    rc = sv_synth_write_sae(dir, &o);
out:
    free(We); free(Wd); free(bm); free(bd); free(th); free(zero);
    return rc;
}

static sv_rc config(const char *path, const char *out, const char *dir, int S, int n_ds, int64_t budget_mb, int geometry)
{
    sv_jw w;
    char p[4200];
    sv_jw_init(&w);
    sv_jw_obj(&w, NULL);
    sv_jw_str(&w, "output_dir", out);
    sv_jw_arr_block(&w, "saes");
    for (int i = 0; i < S; i++) {
        snprintf(p, sizeof p, "%s/saes/sae%03d", dir, i);
        sv_jw_str(&w, NULL, p);
    }
    sv_jw_end(&w);
    sv_jw_arr_block(&w, "datasets");
    for (int j = 0; j < n_ds; j++) {
        char name[32];
        snprintf(name, sizeof name, "ds%d", j);
        snprintf(p, sizeof p, "%s/store%d.h5", dir, j);
        sv_jw_obj(&w, NULL);
        sv_jw_str(&w, "name", name);
        sv_jw_str(&w, "path", p);
        sv_jw_str(&w, "role", j == 0 ? "in_sample" : "oos");
        if (j > 0) sv_jw_str(&w, "shift", "domain");
        sv_jw_end(&w);
    }
    sv_jw_end(&w);
    sv_jw_bool(&w, "geometry", geometry);
    sv_jw_int(&w, "memory_budget_mb", budget_mb);
    sv_jw_end(&w);
    sv_rc rc = w.oom ? SV_EINTERNAL : sv_write_atomic(path, w.buf, w.len);
    sv_jw_free(&w);
    return rc;
}

static double file_mib(const char *dir, const char *name)
{
    char p[8400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (double)st.st_size / (1 << 20) : NAN;
}

/* Timed run; rank 0 prints one line. */
static sv_rc timed(const char *what, const char *cfg, int force, MPI_Comm comm, double *secs, double *peak)
{
    sv_run_opts o;
    memset(&o, 0, sizeof o);
    o.quiet = 1;
    o.n_shards = 1;
    o.force = force;
    if (force < 0) { /* an empty run: the last of more shards than pairs holds none */
        o.force = 0;
        o.n_shards = -force;
        o.shard = -force - 1;
    }
    sv_run_stats st;
    MPI_Barrier(comm);
    hwm_reset();
    double t0 = MPI_Wtime();
    sv_rc rc = sv_run(cfg, &o, comm, &st);
    *secs = MPI_Wtime() - t0;
    *peak = hwm_max_mib(comm);
    (void)what;
    return rc;
}

int sv_bench_scale(const char *tmpdir, int quick, int keep, int n_saes, MPI_Comm comm)
{
    int rank, P;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &P);
    const int S = n_saes > 0 ? n_saes : quick ? 24 : 200, ND = 4;
    const int64_t D = quick ? 128 : 512, M0 = quick ? 512 : 2048, NT = quick ? 2048 : 8192;
    char dir[4096] = "", p[4200], cfg[4200], out[4200];
    sv_rc rc = SV_OK;
    if (rank == 0) {
        snprintf(dir, sizeof dir, "%s/saeval-scale-XXXXXX", tmpdir);
        if (!mkdtemp(dir)) rc = sv_fail(SV_EINPUT, "%s: cannot create a temporary directory", dir);
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, comm);
    snprintf(out, sizeof out, "%s/out", dir);
    /* Budget: about a third of the SAEs' estimate, so the sweep needs passes. */
    uint64_t est = 0;
    sv_sae_cfg c;
    memset(&c, 0, sizeof c);
    for (int i = 0; i < S; i++) {
        c.arch = SV_ARCH_JUMPRELU;
        c.d_in = D;
        c.d_sae = M0 << (i % 2);
        est += sv_sae_mem_bytes(&c, 32, 1024);
    }
    const int64_t budget_mb = (int64_t)(est / 3 >> 20) + 1;
    if (rank == 0 && rc == SV_OK) {
        printf("[bench --scale] writing %d SAEs (d_in %lld, d_sae %lld/%lld, topk/jumprelu/standard/gated, L0 16-176) "
               "and %d stores of %lld tokens in %s\n", S, (long long)D, (long long)M0, (long long)(2 * M0), ND,
               (long long)NT, dir);
        fflush(stdout);
        for (int j = 0; j < ND && rc == SV_OK; j++) {
            snprintf(p, sizeof p, "%s/store%d.h5", dir, j);
            rc = store(p, NT, D, 0.1 * j);
        }
        for (int i = 0; i < S && rc == SV_OK; i++) {
            snprintf(p, sizeof p, "%s/saes/sae%03d", dir, i);
            rc = sae(p, i, S, D, M0 << (i % 2));
        }
        snprintf(cfg, sizeof cfg, "%s/sweep.json", dir);
        if (rc == SV_OK) rc = config(cfg, out, dir, S, ND, budget_mb, 1);
        if (rc != SV_OK) fprintf(stderr, "saeval: error: %s\n", sv_errmsg());
    }
    snprintf(cfg, sizeof cfg, "%s/sweep.json", dir);
    if ((rc = sv_agree(rc, comm)) != SV_OK) return rc;

    double t_run, pk_run, t_noop, pk_noop, t_empty, pk_empty, t_merge = 0;
    /* Runtime allowance first, before the sweep's allocations inflate the
     * process: a run of the same config with no pair in its shard (MPI,
     * HDF5 with the stores open, OpenBLAS, the plan). */
    rc = timed("empty", cfg, -(S * ND + 1), comm, &t_empty, &pk_empty);
    { /* ...plus OpenBLAS's own GEMM buffers, touched only by a first GEMM */
        const int gm = 1024, gn = 2048, gk = (int)D;
        float *a = calloc((size_t)gm * gk, sizeof(float)), *b = calloc((size_t)gk * gn, sizeof(float));
        float *cc = calloc((size_t)gm * gn, sizeof(float));
        long before = sv_env_peak_rss_kib();
        if (a && b && cc) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, gm, gn, gk, 1, a, gk, b, gn, 0, cc, gn);
        free(a); free(b); free(cc);
        /* The operands are the evaluator's (budgeted) tiles: count only what
         * the GEMM added beyond them. */
        double extra = (double)(sv_env_peak_rss_kib() - before) / 1024.0 - 4.0 * ((double)gm * gk + (double)gk * gn + (double)gm * gn) / (1 << 20);
        double ex_max = 0;
        if (extra < 0) extra = 0;
        MPI_Allreduce(&extra, &ex_max, 1, MPI_DOUBLE, MPI_MAX, comm);
        pk_empty += ex_max;
    }
    if (rc == SV_OK) rc = timed("sweep", cfg, 1, comm, &t_run, &pk_run);
    if (rc == SV_OK) rc = timed("no-op rerun", cfg, 0, comm, &t_noop, &pk_noop);
    /* merge as `saeval merge` does it: config, plan, summaries on rank 0. */
    if (rc == SV_OK) {
        sv_config sc;
        sv_plan pl;
        sv_merge_counts mc;
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        rc = sv_agree(sv_config_load(&sc, cfg), comm);
        if (rc == SV_OK) rc = sv_agree(sv_plan_build(&pl, &sc, out, 0, 1, 0, comm), comm);
        if (rc == SV_OK) {
            if (rank == 0) rc = sv_merge(&sc, &pl, out, NULL, NULL, &mc);
            rc = sv_agree(rc, comm);
            if (rank == 0) { /* the plan's estimate of the largest pass */
                int *np_ = sv_calloc((size_t)pl.n_ds, sizeof *np_), *po = sv_calloc((size_t)S * ND + 1, sizeof *po);
                int *all = sv_calloc((size_t)S * ND + 1, sizeof *all);
                uint64_t *mx = sv_calloc((size_t)pl.n_ds, sizeof *mx);
                if (np_ && po && all && mx) {
                    for (int q = 0; q < S * ND; q++) all[q] = 1;
                    sv_plan_pack(&pl, sc.precision, all, np_, po, mx);
                    uint64_t big = 0;
                    for (int j = 0; j < pl.n_ds; j++) if (mx[j] > big) big = mx[j];
                    printf("plan: %d passes per store, largest pass estimated %.0f MiB, budget %lld MiB\n", np_[0],
                           (double)big / (1 << 20), (long long)budget_mb);
                }
                free(np_); free(po); free(all); free(mx);
            }
            sv_plan_free(&pl);
        }
        sv_config_free(&sc);
        t_merge = MPI_Wtime() - t0;
    }
    if (rank == 0 && rc == SV_OK) {
        double pj = 0;
        char name[64];
        for (int i = 0; i < S; i++)
            for (int j = 0; j < ND; j++) {
                snprintf(name, sizeof name, "sae%03d__ds%d.json", i, j);
                pj += file_mib(out, name);
            }
        printf("sweep: %d SAEs x %d stores = %d pairs, %d ranks, geometry on: wall %.1f s\n", S, ND, S * ND, P, t_run);
        printf("peak RSS per rank (largest rank): sweep %.0f MiB; budget %lld MiB; runtime allowance %.0f MiB (peak RSS "
               "of an empty run before the sweep, plus OpenBLAS's GEMM buffers: MPI, HDF5, OpenBLAS, plan); sweep <= budget + allowance: %s (no-op "
               "rerun after the sweep: %.0f MiB)\n", pk_run, (long long)budget_mb, pk_empty,
               pk_run <= budget_mb + pk_empty ? "yes" : "NO", pk_noop);
        printf("summaries: all_eval_results.json %.2f MiB, .csv %.2f MiB, feature_metrics.h5 %.2f MiB, "
               "generalization.json %.2f MiB; per-pair JSON %.1f MiB in all\n",
               file_mib(out, "all_eval_results.json"), file_mib(out, "all_eval_results.csv"),
               file_mib(out, "feature_metrics.h5"), file_mib(out, "generalization.json"), pj);
        printf("no-op rerun %.2f s, merge %.2f s (%d pairs)\n", t_noop, t_merge, S * ND);
        fflush(stdout);
    }
    if ((rc = sv_agree(rc, comm)) != SV_OK) return rc;

    /* One wide SAE with geometry on, under a budget below weights + one block. */
    const int64_t MW = quick ? 16384 : 131072, DW = quick ? 64 : 512, NW = quick ? 1024 : 4096;
    const int64_t bw = quick ? 20 : 700; /* weights alone: 2 x DW x MW x 4 B (512 MiB at full size) */
    char wdir[4200], wcfg[4200], wout[4200], wstore[4200];
    snprintf(wdir, sizeof wdir, "%s/wide", dir);
    snprintf(wout, sizeof wout, "%s/wide_out", dir);
    snprintf(wcfg, sizeof wcfg, "%s/wide.json", dir);
    snprintf(wstore, sizeof wstore, "%s/wide.h5", dir);
    if (rank == 0) {
        rc = store(wstore, NW, DW, 0);
        if (rc == SV_OK) rc = sae(wdir, 0, 1, DW, MW);
        sv_jw w;
        sv_jw_init(&w);
        sv_jw_obj(&w, NULL);
        sv_jw_str(&w, "output_dir", wout);
        sv_jw_arr(&w, "saes");
        sv_jw_str(&w, NULL, wdir);
        sv_jw_end(&w);
        sv_jw_arr_block(&w, "datasets");
        sv_jw_obj(&w, NULL);
        sv_jw_str(&w, "name", "wide");
        sv_jw_str(&w, "path", wstore);
        sv_jw_end(&w);
        sv_jw_end(&w);
        sv_jw_bool(&w, "geometry", 1);
        sv_jw_int(&w, "memory_budget_mb", bw);
        sv_jw_end(&w);
        if (rc == SV_OK) rc = w.oom ? SV_EINTERNAL : sv_write_atomic(wcfg, w.buf, w.len);
        sv_jw_free(&w);
    }
    double t_w, pk_w;
    if ((rc = sv_agree(rc, comm)) == SV_OK) rc = timed("wide", wcfg, 1, comm, &t_w, &pk_w);
    if (rank == 0 && rc == SV_OK) {
        printf("wide SAE: d_sae %lld, d_in %lld (weights %.0f MiB), geometry on, %lld tokens, budget %lld MiB: wall %.1f s, "
               "peak RSS %.0f MiB (largest rank)\n", (long long)MW, (long long)DW, 2.0 * DW * MW * 4 / (1 << 20),
               (long long)NW, (long long)bw, t_w, pk_w);
        fflush(stdout);
    }
    if (rank == 0 && !keep) {
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (strchr(dir, '\'') == NULL && system(cmd) != 0) fprintf(stderr, "[bench] could not remove %s\n", dir);
    }
    return sv_agree(rc, comm);
}
