#ifndef SAEVAL_PLANCMD_H
#define SAEVAL_PLANCMD_H
#include <mpi.h>
#include "saeval/error.h"
/* `saeval plan`: prints the sweep's plan on rank 0 (collective). gflops is
 * the encoder rate assumed per rank, ranks the ranks per shard. */
sv_rc sv_plan_command(const char *config, const char *out_dir, int n_shards, double gflops, int ranks, MPI_Comm comm);
#endif
