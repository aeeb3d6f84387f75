/* Scale check for the weight geometry (not a ctest): a random SAE of
 * d_sae x d_in built in memory, geometry computed over the MPI ranks;
 * prints time and each rank's peak RSS.
 *   mpirun -np 2 build/tests/geometry_big 65536 2304 [DUMP]
 * DUMP: rank 0 writes every result there with %.17g (to compare builds). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "saeval/forward.h"
#include "saeval/geometry.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    int64_t m = argc > 1 ? atoll(argv[1]) : 65536, d = argc > 2 ? atoll(argv[2]) : 2304;
    sv_fwd_set_threads_default(MPI_COMM_WORLD);
    float *We = malloc(sizeof(float) * m * d), *Wd = malloc(sizeof(float) * m * d);
    uint64_t x = 88172645463325252ull;
    for (int64_t i = 0; i < m * d; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        We[i] = (float)((double)(x >> 11) * 0x1.0p-53 - 0.5);
        Wd[i] = (float)((double)((x * 2654435761u) >> 11) * 0x1.0p-53 - 0.5);
    }
    sv_sae s;
    memset(&s, 0, sizeof s);
    s.cfg.d_in = d;
    s.cfg.d_sae = m;
    s.precision = 32;
    s.W_enc = We;
    s.W_dec = Wd;
    struct rusage r0;
    getrusage(RUSAGE_SELF, &r0);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    sv_geometry g;
    sv_rc rc = sv_geometry_compute(&s, 0, MPI_COMM_WORLD, &g);
    double t = MPI_Wtime() - t0;
    struct rusage r1;
    getrusage(RUSAGE_SELF, &r1);
    long rss[2] = {r0.ru_maxrss, r1.ru_maxrss}, all[128];
    MPI_Gather(rss, 2, MPI_LONG, all, 2, MPI_LONG, 0, MPI_COMM_WORLD);
    if (rank == 0) {
        double weights = 2.0 * m * d * 4 / (1 << 20);
        printf("geometry d_sae %lld d_in %lld: %s, %.1f s on %d ranks x %d threads (%.1f GFLOP/s for 2 Gram halves)\n",
               (long long)m, (long long)d, rc == SV_OK ? "ok" : sv_errmsg(), t, P, sv_fwd_get_threads(),
               2.0 * (double)m * m * d / t / 1e9);
        printf("mean |cos| %.6g, pairs over 0.9: %lld, top pair (%lld, %lld, %.4f)\n", g.decoder_mean_abs_cos,
               (long long)g.pairs_over_0_9, (long long)g.top[0].j, (long long)g.top[0].l, g.top[0].cos);
        for (int r = 0; r < P; r++)
            printf("rank %d peak RSS %.0f MiB (before geometry %.0f MiB, of which weights %.0f MiB); "
                   "a d_sae^2 float matrix would be %.0f MiB\n", r, all[2 * r + 1] / 1024.0, all[2 * r] / 1024.0,
                   weights, (double)m * m * 4 / (1 << 20));
    }
    FILE *f = rank == 0 && argc > 3 && rc == SV_OK ? fopen(argv[3], "w") : NULL;
    if (f) {
        for (int64_t j = 0; j < m; j++)
            fprintf(f, "%lld %.17g %.17g %lld\n", (long long)j, g.max_decoder_cos[j], g.max_encoder_cos[j],
                    (long long)g.nearest_decoder[j]);
        fprintf(f, "%.17g %.17g %.17g %.17g %lld %lld\n", g.average_max_decoder_cos, g.average_max_encoder_cos,
                g.decoder_mean_abs_cos, g.decoder_mean_cos, (long long)g.pairs_over_0_9, (long long)g.pairs_over_0_99);
        for (int b = 0; b < SV_GEOM_BINS; b++) fprintf(f, "%lld\n", (long long)g.hist[b]);
        for (int k = 0; k < g.n_top; k++) fprintf(f, "%lld %lld %.17g\n", (long long)g.top[k].j, (long long)g.top[k].l, g.top[k].cos);
        fclose(f);
    }
    sv_geometry_free(&g);
    free(We);
    free(Wd);
    MPI_Finalize();
    return rc != SV_OK;
}
