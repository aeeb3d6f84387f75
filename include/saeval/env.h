/* What the run learns from its environment: the launcher (SLURM without
 * working PMI), the node's memory for the default budget, and the
 * description of the machine written at the top of run.log. */
#ifndef SAEVAL_ENV_H
#define SAEVAL_ENV_H
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include "saeval/error.h"

/* SV_EINPUT (message printed by every copy) when SLURM_NTASKS > 1 but MPI
 * sees one rank: srun started independent copies. */
sv_rc sv_env_check_launcher(MPI_Comm comm);
/* Half of the node's memory (or of SLURM_MEM_PER_NODE), shared by the
 * node's ranks. Collective. */
uint64_t sv_env_default_budget(MPI_Comm comm);
/* The run.log header: ranks, host, threads, BLAS, block rows, budget and
 * the environment variables that steer the libraries. */
void sv_env_log_header(FILE *log, const char *config_path, int shard, int n_shards, int ranks, int64_t block,
                       uint64_t budget);

/* run.log: the GEMM backend and kernel, the bfloat16 kernel (precision
 * 16), and for runs with encoder_flops over 1e12 (or SAEVAL_KERNEL_PROBE=1)
 * each OpenBLAS kernel's rate on k-deep tiles and the fastest. */
void sv_env_log_gemm(FILE *log, int precision, double encoder_flops, int64_t k);

/* This process's peak RSS in KiB (VmHWM, which writing 5 to
 * /proc/self/clear_refs resets), -1 when unknown. */
long sv_env_peak_rss_kib(void);
/* run.log: this rank's peak RSS and page faults. Memory touched for the
 * first time costs faults and zeroing, which on some VMs (the host backing
 * each page again) weighs like a step of its own. */
void sv_env_log_memory(FILE *log);

#endif
