/* Built-in benchmark (`saeval bench`): evaluator speed as ratios to limits
 * measured in the same run (see src/bench.c and README "Performance"). */
#ifndef SAEVAL_BENCH_H
#define SAEVAL_BENCH_H
#include <mpi.h>

typedef struct {
    const char *dir; /* where the temporary data goes (default $TMPDIR or /tmp) */
    int repeat;      /* runs per measurement; medians are reported (default 3) */
    int quick;       /* small shapes: a smoke test of the benchmark itself */
    int keep;        /* keep the generated data */
} sv_bench_opts;

/* Collective; prints the table on rank 0; returns an exit code. */
int sv_bench(const sv_bench_opts *o, MPI_Comm comm);

#endif
