/* Weight geometry vs a naive all-pairs double reference, on small SAEs
 * with a zero decoder row and exact duplicate rows. Small blocks force
 * many row blocks, so the distributed path is really exercised; narrow
 * Gram panels make rows cross many panel boundaries (and panel groups of
 * the two threads), as 2048-column panels do on wide SAEs. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/forward.h"
#include "saeval/geometry.h"

static int fails;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); fails++; } } while (0)

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (fabs(b) > 1 ? fabs(b) : 1); }

/* Reference: cosine of rows j, l of an [m][d] matrix in double. */
static double cosine(const double *A, int64_t d, int64_t j, int64_t l)
{
    double dot = 0, nj = 0, nl = 0;
    for (int64_t i = 0; i < d; i++) {
        dot += A[j * d + i] * A[l * d + i];
        nj += A[j * d + i] * A[j * d + i];
        nl += A[l * d + i] * A[l * d + i];
    }
    return (nj == 0 || nl == 0) ? 0.0 : dot / (sqrt(nj) * sqrt(nl));
}

static void run_case(int64_t m, int64_t d, int64_t block, int64_t panel, int rank)
{
    double *dec = malloc(sizeof(double) * m * d), *enc = malloc(sizeof(double) * d * m);
    double *encT = malloc(sizeof(double) * m * d);
    srand(7);
    for (int64_t i = 0; i < m * d; i++) dec[i] = rand() / (double)RAND_MAX - 0.5;
    for (int64_t i = 0; i < m * d; i++) encT[i] = rand() / (double)RAND_MAX - 0.5;
    memset(dec + 3 * d, 0, sizeof(double) * d);                  /* zero decoder row */
    memcpy(dec + 10 * d, dec + 5 * d, sizeof(double) * d);        /* exact duplicates */
    memcpy(dec + (m - 1) * d, dec + 5 * d, sizeof(double) * d);
    for (int64_t i = 0; i < d; i++) dec[20 * d + i] = -dec[21 * d + i]; /* antiparallel */
    memcpy(encT + 7 * d, encT + 2 * d, sizeof(double) * d);
    for (int64_t j = 0; j < m; j++)
        for (int64_t i = 0; i < d; i++) enc[i * m + j] = encT[j * d + i];

    sv_sae s;
    memset(&s, 0, sizeof s);
    s.cfg.d_in = d;
    s.cfg.d_sae = m;
    s.precision = 64;
    s.W_dec = dec;
    s.W_enc = enc;
    sv_geometry g;
    if (sv_geometry_compute_panels(&s, block, panel, MPI_COMM_WORLD, &g) != SV_OK) { fails++; return; }
    if (rank == 0) {
        int64_t hist[SV_GEOM_BINS] = {0}, o9 = 0, o99 = 0;
        double sa = 0, ss = 0, amd = 0, ame = 0;
        sv_pair_cos *pairs = malloc(sizeof *pairs * (size_t)(m * (m - 1) / 2));
        int64_t np = 0;
        for (int64_t j = 0; j < m; j++) {
            double mx = -INFINITY, mxe = -INFINITY;
            for (int64_t l = 0; l < m; l++) {
                if (l == j) continue;
                double c = cosine(dec, d, j, l), ce = cosine(encT, d, j, l);
                if (c > mx) mx = c;
                if (ce > mxe) mxe = ce;
                if (l > j) {
                    sa += fabs(c);
                    ss += c;
                    int b = (int)floor((c + 1.0) * 100.0);
                    if (b < 0) b = 0;
                    if (b > 199) b = 199;
                    hist[b]++;
                    o9 += c > 0.9;
                    o99 += c > 0.99;
                    pairs[np++] = (sv_pair_cos){j, l, c};
                }
            }
            CHECK(close_to(g.max_decoder_cos[j], mx, 1e-12), "m=%lld max_decoder_cos[%lld] %.17g vs %.17g", (long long)m, (long long)j, g.max_decoder_cos[j], mx);
            /* The nearest neighbour: a latent whose reference cosine is the
             * maximum (within rounding: duplicates tie). */
            const int64_t nn = g.nearest_decoder[j];
            CHECK(nn >= 0 && nn < m && nn != j && close_to(cosine(dec, d, j, nn), mx, 1e-12),
                  "m=%lld nearest_decoder[%lld] = %lld (cos %.17g, max %.17g)", (long long)m, (long long)j, (long long)nn,
                  nn >= 0 && nn < m ? cosine(dec, d, j, nn) : NAN, mx);
            CHECK(close_to(g.max_encoder_cos[j], mxe, 1e-12), "max_encoder_cos[%lld] %.17g vs %.17g", (long long)j, g.max_encoder_cos[j], mxe);
            amd += mx;
            ame += mxe;
        }
        double P = (double)m * (m - 1) / 2;
        CHECK(close_to(g.decoder_mean_abs_cos, sa / P, 1e-12), "mean_abs %.17g vs %.17g", g.decoder_mean_abs_cos, sa / P);
        CHECK(close_to(g.decoder_mean_cos, ss / P, 1e-10), "mean %.17g vs %.17g", g.decoder_mean_cos, ss / P);
        CHECK(close_to(g.average_max_decoder_cos, amd / m, 1e-12), "avg max dec");
        CHECK(close_to(g.average_max_encoder_cos, ame / m, 1e-12), "avg max enc");
        CHECK(g.pairs_over_0_9 == o9 && g.pairs_over_0_99 == o99, "over counts %lld/%lld vs %lld/%lld",
              (long long)g.pairs_over_0_9, (long long)g.pairs_over_0_99, (long long)o9, (long long)o99);
        CHECK(o99 >= 3, "the duplicate rows must give pairs over 0.99");
        for (int b = 0; b < SV_GEOM_BINS; b++)
            CHECK(g.hist[b] == hist[b], "hist[%d] %lld vs %lld", b, (long long)g.hist[b], (long long)hist[b]);
        /* Top pairs by selection: repeatedly the best remaining (cos desc).
         * Pairs whose cosines tie within rounding (rows 5 and 10 are exact
         * duplicates, so (5, l) and (10, l) do) may come in either order:
         * the program orders by its computed values, whose last bits depend
         * on the GEMM kernel; the entry must be one of the tied pairs. */
        int nt = np < SV_GEOM_TOP ? (int)np : SV_GEOM_TOP;
        CHECK(g.n_top == nt, "n_top %d vs %d", g.n_top, nt);
        for (int k = 0; k < nt && k < g.n_top; k++) {
            int64_t best = -1, hit = -1;
            for (int64_t q = 0; q < np; q++)
                if (pairs[q].j >= 0 && (best < 0 || pairs[q].cos > pairs[best].cos)) best = q;
            for (int64_t q = 0; q < np && best >= 0; q++)
                if (pairs[q].j == g.top[k].j && pairs[q].l == g.top[k].l && close_to(pairs[q].cos, pairs[best].cos, 1e-12))
                    hit = q;
            CHECK(hit >= 0 && close_to(g.top[k].cos, pairs[hit].cos, 1e-12),
                  "top[%d] (%lld,%lld,%.17g) is not the best remaining pair (%lld,%lld,%.17g) or a tie of it", k,
                  (long long)g.top[k].j, (long long)g.top[k].l, g.top[k].cos, (long long)pairs[best].j,
                  (long long)pairs[best].l, pairs[best].cos);
            if (hit >= 0) pairs[hit].j = -1;
            else pairs[best].j = -1;
        }
        /* Zero row: cos 0 with everything, so its max is 0 unless... it is exactly 0. */
        CHECK(g.max_decoder_cos[3] == 0.0, "zero row max %.17g", g.max_decoder_cos[3]);
        free(pairs);
    }
    sv_geometry_free(&g);
    free(dec); free(enc); free(encT);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    sv_fwd_set_threads(2);
    run_case(40, 8, 7, 0, rank);    /* many small row blocks, ragged last block */
    run_case(300, 24, 64, 0, rank);
    run_case(33, 5, 1024, 0, rank); /* a single block */
    run_case(40, 8, 7, 5, rank);    /* panels narrower than a block, ragged */
    run_case(300, 24, 64, 16, rank);
    run_case(33, 5, 1024, 4, rank); /* one block, nine panels */
    int all;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%s: geometry vs naive reference\n", all ? "FAIL" : "ok");
    MPI_Finalize();
    return all != 0;
}
