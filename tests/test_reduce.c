/* The fixed-tree reduction must give, bit for bit, the value of the
 * pairwise tree over unit indices, whatever the number of ranks and
 * whatever the split. The reference here is a direct recursion. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/reduce.h"

/* Unit u's partial: values of very different magnitudes so that the
 * order of additions shows in the last bits. */
static double leaf_val(int64_t u, size_t i)
{
    double a = sin((double)(u * 7 + (int64_t)i * 13) + 0.5);
    return a * pow(10.0, (double)((u * 3 + (int64_t)i) % 17) - 8.0);
}

/* Sum of units [lo, hi) of the tree node covering [lo, lo + size). */
static double ref_sum(int64_t lo, int64_t size, int64_t n, size_t i)
{
    if (lo >= n) return 0.0; /* never added: callers check emptiness */
    if (size == 1) return leaf_val(lo, i);
    int64_t half = size / 2;
    double left = ref_sum(lo, half, n, i);
    if (lo + half >= n) return left;
    return left + ref_sum(lo + half, half, n, i);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, P, fails = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    const int64_t sizes[] = {1, 2, 3, 5, 7, 8, 13, 64, 100, 257};
    const size_t len = 5;
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        int64_t n = sizes[t];
        int64_t w[300], first[8], last[8];
        for (int64_t u = 0; u < n; u++) w[u] = 1 + (u * 37) % 11; /* uneven units */
        sv_split_units(w, n, P, first, last);
        /* The split must cover 0..n-1 contiguously. */
        if (first[0] != 0 || last[P - 1] != n) fails++;
        for (int r = 1; r < P; r++)
            if (first[r] != last[r - 1] || last[r] < first[r]) fails++;
        sv_tree *tr = sv_tree_new(n, first[rank], last[rank], len);
        for (int64_t u = first[rank]; u < last[rank]; u++) {
            double *lf = sv_tree_leaf(tr);
            for (size_t i = 0; i < len; i++) lf[i] = leaf_val(u, i);
            if (sv_tree_push(tr) != SV_OK) fails++;
        }
        double out[5];
        if (sv_tree_reduce(tr, MPI_COMM_WORLD, out) != SV_OK) fails++;
        sv_tree_free(tr);
        if (rank == 0) {
            int64_t size = 1;
            while (size < n) size *= 2;
            for (size_t i = 0; i < len; i++) {
                double ref = ref_sum(0, size, n, i);
                if (memcmp(&ref, &out[i], sizeof ref) != 0) {
                    printf("FAIL n=%lld i=%zu: tree %.17g, reference %.17g\n", (long long)n, i, out[i], ref);
                    fails++;
                }
            }
        }
    }
    int all;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%s: reduction tree on %d ranks\n", all ? "FAIL" : "ok", P);
    MPI_Finalize();
    return all ? 1 : 0;
}
