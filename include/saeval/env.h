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

#endif
