#ifndef SAEVAL_BENCH_SCALE_H
#define SAEVAL_BENCH_SCALE_H
#include <mpi.h>
/* `saeval bench --scale [--quick]`: the issue-15 sweep; collective; returns
 * an exit code. Data go to a temporary directory under tmpdir. */
int sv_bench_scale(const char *tmpdir, int quick, int keep, MPI_Comm comm);
#endif
