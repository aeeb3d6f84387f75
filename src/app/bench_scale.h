#ifndef SAEVAL_BENCH_SCALE_H
#define SAEVAL_BENCH_SCALE_H
#include <mpi.h>
/* `saeval bench --scale [--quick]`: the issue-15 sweep; collective; returns
 * an exit code. Data go to a temporary directory under tmpdir; n_saes > 0
 * overrides the number of SAEs (200, or 24 with quick). */
int sv_bench_scale(const char *tmpdir, int quick, int keep, int n_saes, MPI_Comm comm);
#endif
