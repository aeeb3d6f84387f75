/* Environment probing for the driver. */
#include "saeval/env.h"

#include <cblas.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "saeval/config.h"
#include "saeval/forward.h"
#include "saeval/gemm.h"

sv_rc sv_env_check_launcher(MPI_Comm comm)
{
    int P;
    MPI_Comm_size(comm, &P);
    const char *sn = getenv("SLURM_NTASKS");
    if (sn && atoi(sn) > 1 && P == 1) {
        /* Every copy prints: they are all rank 0 of their own world. */
        fprintf(stderr, "saeval: error: SLURM_NTASKS=%s but MPI sees 1 rank: the launcher started independent copies "
                        "(srun without working PMI?). Use `srun --mpi=pmix` or mpirun inside the allocation.\n", sn);
        return SV_EINPUT;
    }
    return SV_OK;
}

uint64_t sv_env_default_budget(MPI_Comm comm)
{
    MPI_Comm node;
    int local = 1;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    const char *slurm_mem = getenv("SLURM_MEM_PER_NODE"); /* MiB */
    if (slurm_mem && atoll(slurm_mem) > 0 && ((uint64_t)atoll(slurm_mem) << 20) < phys)
        phys = (uint64_t)atoll(slurm_mem) << 20;
    return phys / 2 / (uint64_t)local;
}

void sv_env_log_header(FILE *log, const char *config_path, int shard, int n_shards, int ranks, int64_t block,
                       uint64_t budget)
{
    char host[256] = "?";
    gethostname(host, sizeof host);
    fprintf(log, "saeval run %s shard %d/%d\nranks %d, host of rank 0 %s, threads per rank %d, OpenBLAS %s (core %s)\n"
                 "block rows %lld, memory budget %llu MB per rank, OPENBLAS_CORETYPE=%s GOMP_SPINCOUNT=%s GLIBC_TUNABLES=%s\n",
            config_path, shard, n_shards, ranks, host, sv_fwd_get_threads(), openblas_get_config(),
            openblas_get_corename(), (long long)block, (unsigned long long)(budget >> 20),
            getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "(auto)",
            getenv("GOMP_SPINCOUNT") ? getenv("GOMP_SPINCOUNT") : "(default)",
            getenv("GLIBC_TUNABLES") ? getenv("GLIBC_TUNABLES") : "(none)");
    fflush(log); /* visible to `tail -f run.log` and to tests while the run goes on */
}

void sv_env_log_gemm(FILE *log, int precision, double encoder_flops, int64_t k)
{
    fprintf(log, "GEMM backend %s, kernel %s; precision %s%s%s\n", sv_gemm_current()->name,
            sv_gemm_current()->kernel(), sv_precision_name(precision), precision == 16 ? "; " : "",
            precision == 16 ? sv_gemm_bf16_describe() : "");
    /* Which OpenBLAS kernel is fastest here, measured in child processes
     * (~1 s): when the run's encoder GEMMs are worth it (> 1 TFLOP), or
     * always / never with SAEVAL_KERNEL_PROBE=1 / 0. */
    const char *env = getenv("SAEVAL_KERNEL_PROBE");
    if (k <= 0 || (env ? atoi(env) == 0 : encoder_flops < 1e12)) {
        fprintf(log, "OpenBLAS kernel probe skipped (%s)\n",
                env ? "SAEVAL_KERNEL_PROBE=0" : "under 1 TFLOP of encoder GEMMs");
    } else {
        char buf[1024];
        if (sv_gemm_kernel_note("/proc/self/exe", k, buf, sizeof buf) == SV_OK) fprintf(log, "%s\n", buf);
        else fprintf(log, "OpenBLAS kernel probe failed: %s\n", sv_errmsg());
        sv_clear_error();
    }
    fflush(log);
}

long sv_env_peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

void sv_env_log_memory(FILE *log)
{
    struct rusage ru;
    const long kib = sv_env_peak_rss_kib();
    if (kib < 0 || getrusage(RUSAGE_SELF, &ru) != 0) return;
    fprintf(log, "rank 0 memory: peak RSS %.1f MiB, page faults %ld minor, %ld major\n", (double)kib / 1024.0,
            ru.ru_minflt, ru.ru_majflt);
}
