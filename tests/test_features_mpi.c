/* Feature data across MPI ranks: each rank observes its own contiguous
 * share of the tokens (with two "threads" merged locally), the states go to
 * rank 0 (sv_feat_reduce), back to everyone (sv_feat_bcast), each rank
 * fills the context windows of its own rows, and rank 0 collects them
 * (sv_feat_windows_reduce) and writes the feature file with every rank
 * filtering a share of its chunks (sv_featfile_put_coll), in two latent
 * ranges, the second ending in a short chunk. Rank 0 also computes
 * everything alone, writes it alone and checks that both files are
 * byte-identical and that HDF5 reads back what the state holds; ctest then
 * compares the files written with 1, 2, 3 and 4 ranks.
 * usage: mpirun -np R test_features_mpi OUT.features.h5 [whole] */
#define TEST_NAME "test_features_mpi"
#include "saeval/featfile.h"
#include "saeval/features.h"
#include "testutil.h"

#include <mpi.h>
#include <string.h>

#define T 3000
#define D 150 /* two 64-latent chunks and a short one */
#define CUT 128
static int64_t seqoff[T + 1], nseq, tokid[T];

static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* activation of latent j on token t: sparse, on a coarse grid (ties);
 * latents 64..127 (the second file chunk) never fire: their chunks hold
 * only empty slots, which the writer leaves to HDF5's fill value */
static float act(int64_t t, int64_t j)
{
    if (j >= 64 && j < 128) return 0;
    uint64_t h = mix((uint64_t)t * 1000003u + (uint64_t)j);
    if (h % 100 >= (uint64_t)(5 + j % 30)) return 0;
    return 0.125f * (float)(1 + (h >> 20) % 40) * (j == 7 ? 1000.0f : 1.0f);
}

static void data(void)
{
    for (int64_t p = 0; p < T;) {
        seqoff[nseq++] = p;
        p += 1 + (int64_t)(mix((uint64_t)p) % 64);
        if (p > T) p = T;
    }
    seqoff[nseq] = T;
    for (int64_t t = 0; t < T; t++) tokid[t] = (int64_t)(mix((uint64_t)t + 99) % 50000);
}

static void fill_rows(sv_feat_windows *w, int64_t t0, int64_t t1)
{
    float *a = xcalloc((size_t)(t1 - t0 + 1) * (size_t)(w->j1 - w->j0), sizeof *a);
    for (int64_t t = t0; t < t1; t++)
        for (int64_t j = w->j0; j < w->j1; j++) a[(t - t0) * (w->j1 - w->j0) + (j - w->j0)] = act(t, j);
    sv_feat_windows_fill(w, t0, t1 - t0, a, (size_t)(w->j1 - w->j0), tokid + t0);
    free(a);
}

/* The windows of latents [j0, j1) of w (all latents). */
static void part(sv_feat_windows *out, const sv_feat_windows *w, const sv_feat *f, int64_t j0, int64_t j1)
{
    CHECK(sv_feat_windows_new(out, f, j0, j1, seqoff, nseq) == SV_OK);
    int64_t k = 0;
    for (int64_t i = 0; i < w->n; i++) {
        if (w->win[i].latent < j0 || w->win[i].latent >= j1) continue;
        CHECK(k < out->n && out->win[k].latent == w->win[i].latent && out->win[k].token == w->win[i].token);
        memcpy(out->values + k * out->width, w->values + i * w->width, (size_t)w->width * sizeof(float));
        memcpy(out->ids + k * out->width, w->ids + i * w->width, (size_t)w->width * sizeof(int32_t));
        k++;
    }
    CHECK(k == out->n);
}

/* Latents [0, CUT) then [CUT, D): collective (every rank calls, rank 0
 * with the file) or serial (comm MPI_COMM_NULL: rank 0 alone, the plain put). */
static void write(const char *path, const sv_feat *f, sv_feat_windows *w, MPI_Comm comm)
{
    int rank = 0;
    if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
    sv_featfile_meta m = {"sae", "ds", nseq, w->width};
    sv_featfile_writer *fw = NULL;
    if (rank == 0) CHECK(sv_featfile_create(&fw, path, f, &m) == SV_OK);
    else CHECK(sv_featfile_helper(&fw, sv_feat_params_of(f), w->width) == SV_OK);
    const int64_t cut[3] = {0, CUT, D};
    for (int k = 0; k < 2; k++) {
        sv_feat_windows pw;
        if (rank == 0) part(&pw, w, f, cut[k], cut[k + 1]);
        if (comm == MPI_COMM_NULL) CHECK(sv_featfile_put(fw, f, &pw) == SV_OK);
        else CHECK(sv_featfile_put_coll(fw, rank == 0 ? f : NULL, rank == 0 ? &pw : NULL, cut[k], cut[k + 1], comm) == SV_OK);
        if (rank == 0) sv_feat_windows_free(&pw);
    }
    if (rank == 0) CHECK(sv_featfile_commit(fw) == SV_OK);
    else sv_featfile_abort(fw);
}

/* What HDF5 reads back (its own shuffle and deflate filters) is the state. */
static void read_back(const char *path, const sv_feat *f)
{
    sv_featfile *ff = NULL;
    CHECK(sv_featfile_open(&ff, path) == SV_OK);
    sv_feat_ex ex[64];
    for (int64_t j = 0; j < D; j++) {
        sv_featfile_latent l;
        CHECK(sv_featfile_read(ff, j, &l) == SV_OK);
        CHECK(l.nonzero == sv_feat_nonzero(f, j) && l.max == sv_feat_max(f, j));
        int n = sv_feat_top(f, j, ex);
        CHECK(l.n_top == n);
        for (int k = 0; k < n && k < l.n_top; k++) {
            CHECK(l.top[k].token == ex[k].token && l.top[k].value == ex[k].value);
            const int64_t c = ex[k].token - l.top[k].start; /* the example inside its window */
            CHECK(c >= 0 && c < l.top[k].len && l.top[k].values[c] == act(ex[k].token, j) &&
                  l.top[k].ids[c] == (int32_t)tokid[ex[k].token]);
        }
        sv_featfile_latent_free(&l);
    }
    sv_featfile_close(ff);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 2) die("usage: test_features_mpi OUT.features.h5 [whole]", NULL);
    data();
    sv_feat_params p;
    sv_feat_params_default(&p, D);
    p.top_n = 9;
    p.seed = 3;
    if (argc > 2 && strcmp(argv[2], "whole") == 0) p.ctx_before = p.ctx_after = -1;

    /* this rank's tokens, split over two accumulators ("threads") */
    int64_t t0 = T * rank / size, t1 = T * (rank + 1) / size, mid = (t0 + t1) / 2;
    sv_feat *f = NULL, *g = NULL;
    CHECK(sv_feat_new(&f, &p) == SV_OK && sv_feat_new(&g, &p) == SV_OK);
    for (int64_t t = t0; t < t1; t++)
        for (int64_t j = 0; j < D; j++) sv_feat_observe(t < mid ? f : g, j, t, act(t, j));
    sv_feat_add_tokens(f, mid - t0);
    sv_feat_add_tokens(g, t1 - mid);
    CHECK(sv_feat_merge(g, f) == SV_OK); /* the second thread's state absorbs the first's */
    CHECK(sv_feat_reduce(g, MPI_COMM_WORLD) == SV_OK);
    CHECK(sv_feat_bcast(g, MPI_COMM_WORLD) == SV_OK);
    CHECK(sv_feat_tokens(g) == T);

    sv_feat_windows w;
    CHECK(sv_feat_windows_new(&w, g, 0, D, seqoff, nseq) == SV_OK);
    fill_rows(&w, t0, t1);
    CHECK(sv_feat_windows_reduce(&w, MPI_COMM_WORLD) == SV_OK);
    write(argv[1], g, &w, MPI_COMM_WORLD);
    if (rank == 0) {
        read_back(argv[1], g);
        /* everything on one process, in store order */
        sv_feat *s = NULL;
        CHECK(sv_feat_new(&s, &p) == SV_OK);
        for (int64_t t = 0; t < T; t++)
            for (int64_t j = 0; j < D; j++) sv_feat_observe(s, j, t, act(t, j));
        sv_feat_add_tokens(s, T);
        sv_feat_windows ws;
        CHECK(sv_feat_windows_new(&ws, s, 0, D, seqoff, nseq) == SV_OK);
        fill_rows(&ws, 0, T);
        char serial[4096];
        snprintf(serial, sizeof serial, "%s.serial.h5", argv[1]);
        write(serial, s, &ws, MPI_COMM_NULL);
        char *a = NULL, *b = NULL;
        size_t na, nb;
        CHECK(sv_read_file(argv[1], &a, &na) == SV_OK && sv_read_file(serial, &b, &nb) == SV_OK);
        CHECK(na == nb && memcmp(a, b, na) == 0);
        free(a);
        free(b);
        sv_feat_windows_free(&ws);
        sv_feat_free(s);
        printf("features_mpi: %d ranks: file identical to the serial one (%zu bytes)\n", size, na);
    }
    sv_feat_windows_free(&w);
    sv_feat_free(f);
    sv_feat_free(g);
    MPI_Finalize();
    return 0;
}
