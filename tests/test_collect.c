/* saeval collect (src/collect.c) on the GPT-2 fixture model, under mpirun:
 * usage: test_collect DATA_DIR OUT_DIR TAG
 * Writes OUT_DIR/TAG_h{0,1,2}.h5 (f32) and OUT_DIR/TAG_bf16.h5; rank 0 checks
 * them: the fixture sequence against transformers 4.48's hidden states,
 * the others against a serial sv_model_prefix, bf16 = rounded f32, the
 * metadata, bad token files refused with no store left, complete stores
 * kept. ctest compares the files of 1, 3 and 4 ranks byte for byte, and
 * with the store `saeval collect` writes: this program starts in the
 * command's environment (sv_cli_prepare_env: the OpenBLAS kernel the
 * command picks, whose last bits can differ from the one OpenBLAS picks
 * by itself on an AVX-512 CPU). */
#define TEST_NAME "test_collect"
#define TU_CHECK 1
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "saeval/cli.h"
#include "saeval/collect.h"
#include "saeval/forward.h"
#include "saeval/half.h"
#include "saeval/model.h"
#include "saeval/store.h"
#include "testutil.h"

static float *rd(hid_t f, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) die("missing dataset", name);
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    float *v = xcalloc((size_t)n, sizeof(float));
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) die("cannot read", name);
    H5Sclose(s);
    H5Dclose(d);
    return v;
}

#define NSEQ 6
static const int64_t lens[NSEQ] = {48, 20, 33, 7, 64, 1};

/* Serial token file: the fixture's 48 tokens, then fixed pseudo-random ids. */
static void write_tokens(const char *path, const float *fix, int64_t bad_at, int64_t n_over)
{
    int64_t off[NSEQ + 1] = {0}, n = 0;
    for (int s = 0; s < NSEQ; s++) off[s + 1] = off[s] + lens[s];
    n = off[NSEQ];
    int64_t *ids = xcalloc((size_t)n, sizeof(int64_t));
    uint64_t x = 12345;
    for (int64_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = i < 48 ? (int64_t)fix[i] : (int64_t)((x >> 33) % 512);
    }
    if (bad_at >= 0) ids[bad_at] = 512;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dn = (hsize_t)n, dm = NSEQ + 1;
    if (n_over) { /* one sequence longer than the model's 128 positions */
        off[1] = 0;
        off[NSEQ] = n;
        for (int s = 1; s < NSEQ; s++) off[s] = s == 1 ? 130 : off[s - 1] + 1;
    }
    hid_t s1 = H5Screate_simple(1, &dn, NULL), d1 = H5Dcreate2(f, "token_ids", H5T_STD_I64LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d1, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids);
    hid_t s2 = H5Screate_simple(1, &dm, NULL), d2 = H5Dcreate2(f, "sequence_offsets", H5T_STD_I64LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d2, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off);
    int64_t sp = 511;
    hsize_t one = 1;
    hid_t s3 = H5Screate_simple(1, &one, NULL), a = H5Acreate2(f, "special_token_ids", H5T_STD_I64LE, s3, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &sp);
    H5Aclose(a);
    H5Sclose(s3);
    H5Dclose(d1);
    H5Dclose(d2);
    H5Sclose(s1);
    H5Sclose(s2);
    H5Fclose(f);
    free(ids);
}

static int stop_rank0(void)
{
    int r;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r == 0;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static double rel(const float *a, const float *ref, size_t n)
{
    double ss = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        ss += (double)ref[i] * ref[i];
        mx = fmax(mx, fabs((double)a[i] - ref[i]));
    }
    return mx / fmax(1.0, sqrt(ss / (double)n));
}

int main(int argc, char **argv)
{
    sv_cli_prepare_env(argv);
    MPI_Init(&argc, &argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (argc < 4) die("usage: test_collect DATA_DIR OUT_DIR TAG", NULL);
    sv_fwd_set_threads(1);
    char model[1024], fx[1100], tok[1100], bad[1100], lng[1100], out[3][1100], bf[1100];
    snprintf(model, sizeof model, "%s/gpt2", argv[1]);
    snprintf(fx, sizeof fx, "%s/fixtures.h5", model);
    snprintf(tok, sizeof tok, "%s/%s_tokens.h5", argv[2], argv[3]);
    snprintf(bad, sizeof bad, "%s/%s_bad.h5", argv[2], argv[3]);
    snprintf(lng, sizeof lng, "%s/%s_long.h5", argv[2], argv[3]);
    for (int h = 0; h < 3; h++) snprintf(out[h], sizeof out[h], "%s/%s_h%d.h5", argv[2], argv[3], h);
    snprintf(bf, sizeof bf, "%s/%s_bf16.h5", argv[2], argv[3]);
    hid_t f = H5Fopen(fx, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) die("cannot open", fx);
    float *ftok = rd(f, "seq2/tokens"), *hs = rd(f, "seq2/hidden_states"), *fin = rd(f, "seq2/resid_final_pre_norm");
    float *mo = rd(f, "seq2/mlp_out");
    H5Fclose(f);
    if (rank == 0) {
        mkdirs(argv[2]);
        for (int h = 0; h < 3; h++) remove(out[h]);
        remove(bf);
        char cli[1200];
        snprintf(cli, sizeof cli, "%s/%s_cli_bf16.h5", argv[2], argv[3]);
        remove(cli);
        write_tokens(tok, ftok, -1, 0);
        write_tokens(bad, ftok, 100, 0);
        write_tokens(lng, ftok, -1, 1);
    }
    MPI_Barrier(MPI_COMM_WORLD);

    const char *hooks[3] = {"blocks.1.hook_resid_pre", "blocks.2.hook_resid_post", "blocks.0.hook_mlp_out"};
    const char *outs[3] = {out[0], out[1], out[2]};
    sv_collect_opts o = {model, tok, 3, hooks, outs, 0, 32, "gpt2-fixture", "fixture-tokens", 0, 50, NULL};
    if (sv_collect(&o, MPI_COMM_WORLD) != SV_OK) die("collect", sv_errmsg());
    sv_collect_opts ob = o;
    ob.n_hooks = 1;
    ob.bf16 = 1;
    const char *bouts[1] = {bf};
    ob.out_paths = bouts;
    if (sv_collect(&ob, MPI_COMM_WORLD) != SV_OK) die("collect bf16", sv_errmsg());

    /* A second run keeps the complete stores. */
    struct stat st0, st1;
    stat(out[0], &st0);
    if (sv_collect(&o, MPI_COMM_WORLD) != SV_OK) die("collect again", sv_errmsg());
    stat(out[0], &st1);
    CHECK(st0.st_ino == st1.st_ino && st0.st_mtime == st1.st_mtime, "a complete store was rewritten");

    /* Bad inputs: refused on every rank, nothing left behind. */
    char bo[1100];
    snprintf(bo, sizeof bo, "%s/%s_never.h5", argv[2], argv[3]);
    const char *bouts2[1] = {bo};
    sv_collect_opts oe = o;
    oe.n_hooks = 1;
    oe.out_paths = bouts2;
    oe.tokens_path = bad;
    CHECK(sv_collect(&oe, MPI_COMM_WORLD) == SV_EINPUT && strstr(sv_errmsg(), "/token_ids[100] = 512"),
          "id >= vocab: %s", sv_errmsg());
    oe.tokens_path = lng;
    CHECK(sv_collect(&oe, MPI_COMM_WORLD) == SV_EINPUT && strstr(sv_errmsg(), "positions"), "too long: %s",
          sv_errmsg());
    const char *bh[1] = {"blocks.3.hook_resid_pre"};
    oe.tokens_path = tok;
    oe.hooks = bh;
    CHECK(sv_collect(&oe, MPI_COMM_WORLD) == SV_EINPUT && strstr(sv_errmsg(), "beyond"), "hook: %s", sv_errmsg());
    /* Interrupted (the stop poll fires on rank 0 only): every rank stops,
     * no store and no partial file remain. */
    oe.hooks = hooks;
    oe.stop = stop_rank0;
    CHECK(sv_collect(&oe, MPI_COMM_WORLD) == SV_EINTERRUPTED, "stop: %s", sv_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    char part[1200];
    snprintf(part, sizeof part, "%s.partial", bo);
    CHECK(!exists(bo) && !exists(part), "a refused collection left a file");

    /* Command line: the same stores through sv_collect_parse_args. */
    {
        char a0[] = "collect", a1[] = "--model", a3[] = "--tokens", a5[] = "--hook", a7[] = "--dtype", a8[] = "bfloat16",
             a9[] = "--model-name", a10[] = "gpt2-fixture", a11[] = "--dataset-name", a12[] = "fixture-tokens";
        char hookarg[1200];
        snprintf(hookarg, sizeof hookarg, "blocks.1.hook_resid_pre=%s/%s_cli_bf16.h5", argv[2], argv[3]);
        char *av[] = {a0, a1, model, a3, tok, a5, hookarg, a7, a8, a9, a10, a11, a12};
        sv_collect_args ca;
        if (sv_collect_parse_args(&ca, 13, av) != SV_OK) die("args", sv_errmsg());
        CHECK(ca.o.n_hooks == 1 && ca.o.bf16 && !strcmp(ca.o.hooks[0], "blocks.1.hook_resid_pre"), "parsed args");
        ca.o.batch_tokens = 50;
        if (sv_collect(&ca.o, MPI_COMM_WORLD) != SV_OK) die("collect (cli)", sv_errmsg());
        sv_collect_args_free(&ca);
        char bad1[] = "--hook", bad2[] = "nohook", bad3[] = "--bogus", bad4[] = "--dtype", bad5[] = "f16";
        char *b1[] = {a0, bad1, bad2};
        char *b2[] = {a0, bad3};
        char *b3[] = {a0, bad4, bad5};
        char *b4[] = {a0, a1, model};
        CHECK(sv_collect_parse_args(&ca, 3, b1) == SV_EINPUT && strstr(sv_errmsg(), "NAME=STORE"), "%s", sv_errmsg());
        CHECK(sv_collect_parse_args(&ca, 2, b2) == SV_EINPUT && strstr(sv_errmsg(), "--bogus"), "%s", sv_errmsg());
        CHECK(sv_collect_parse_args(&ca, 3, b3) == SV_EINPUT && strstr(sv_errmsg(), "bfloat16"), "%s", sv_errmsg());
        CHECK(sv_collect_parse_args(&ca, 3, b4) == SV_EINPUT && strstr(sv_errmsg(), "--tokens"), "%s", sv_errmsg());
    }
    if (rank == 0) {
        sv_model m;
        if (sv_model_load(&m, model, 32) != SV_OK) die("load", sv_errmsg());
        sv_model_ws ws;
        if (sv_model_ws_init(&ws, &m, 64, 1) != SV_OK) die("ws", sv_errmsg());
        const int64_t d = 64;
        sv_hook hk[3];
        for (int h = 0; h < 3; h++)
            if (sv_hook_parse(&hk[h], hooks[h], &m.cfg) != SV_OK) die("hook", sv_errmsg());
        sv_store s[3], sb;
        for (int h = 0; h < 3; h++)
            if (sv_store_open(&s[h], out[h], MPI_COMM_SELF) != SV_OK) die("open store", sv_errmsg());
        if (sv_store_open(&sb, bf, MPI_COMM_SELF) != SV_OK) die("open store", sv_errmsg());
        CHECK(s[0].n_seq == NSEQ && s[0].n_tokens == 173 && s[0].d_in == d, "store shape");
        CHECK(s[0].hook_name && !strcmp(s[0].hook_name, hooks[0]) && s[2].hook_name && !strcmp(s[2].hook_name, hooks[2]),
              "hook_name attribute");
        CHECK(s[0].model_name && !strcmp(s[0].model_name, "gpt2-fixture"), "model_name");
        CHECK(s[0].model_params == 764160.0 / 4, "model_params %g", s[0].model_params);
        CHECK(s[0].n_special == 1 && s[0].special_ids[0] == 511 && s[0].has_token_ids, "special ids / token ids");
        CHECK(sb.dtype == SV_STORE_BF16_U16, "bf16 store dtype %d", (int)sb.dtype);
        const float *ref[3] = {hs + 48 * d, fin, mo};
        float *row = xcalloc(64 * (size_t)d, sizeof(float)), *rb = xcalloc(64 * (size_t)d, sizeof(float));
        float *mine = xcalloc(64 * (size_t)d, sizeof(float));
        int64_t *tid = xcalloc(64, sizeof(int64_t));
        int32_t *ids = xcalloc(64, sizeof(int32_t));
        for (int64_t q = 0; q < NSEQ; q++) {
            const int64_t a = s[0].seq_offsets[q], T = s[0].seq_offsets[q + 1] - a;
            CHECK(T == lens[q], "sequence %lld length", (long long)q);
            if (sv_store_read_token_ids(&s[0], a, T, tid) != SV_OK) die("ids", sv_errmsg());
            for (int64_t i = 0; i < T; i++) ids[i] = (int32_t)tid[i];
            for (int h = 0; h < 3; h++) {
                if (sv_store_read_rows(&s[h], a, T, row) != SV_OK) die("rows", sv_errmsg());
                if (q == 0) {
                    double e = rel(row, ref[h], (size_t)(T * d));
                    CHECK(e <= 1e-4, "hook %s vs transformers: rel err %.3g", hooks[h], e);
                }
                if (sv_model_prefix(&ws, ids, T, hk[h], mine) != SV_OK) die("prefix", sv_errmsg());
                CHECK(!memcmp(row, mine, (size_t)(T * d) * sizeof(float)), "hook %s seq %lld differs from a serial pass",
                      hooks[h], (long long)q);
                if (h == 0) {
                    if (sv_store_read_rows(&sb, a, T, rb) != SV_OK) die("rows", sv_errmsg());
                    for (int64_t i = 0; i < T * d; i++)
                        if (rb[i] != sv_bf16_to_f32(sv_f32_to_bf16(row[i]))) {
                            CHECK(0, "bf16 row %lld dim %lld", (long long)(a + i / d), (long long)(i % d));
                            break;
                        }
                }
            }
        }
        {
            char cli[1200];
            snprintf(cli, sizeof cli, "%s/%s_cli_bf16.h5", argv[2], argv[3]);
            FILE *fa = fopen(bf, "rb"), *fb = fopen(cli, "rb");
            int same = fa && fb;
            while (same) {
                int ca_ = fgetc(fa), cb_ = fgetc(fb);
                if (ca_ != cb_) same = 0;
                if (ca_ == EOF) break;
            }
            CHECK(same, "the command-line store differs from the library call's");
            if (fa) fclose(fa);
            if (fb) fclose(fb);
        }
        free(row);
        free(rb);
        free(mine);
        free(tid);
        free(ids);
        for (int h = 0; h < 3; h++) sv_store_close(&s[h]);
        sv_store_close(&sb);
        sv_model_ws_free(&ws);
        sv_model_free(&m);
    }
    free(ftok);
    free(hs);
    free(fin);
    free(mo);
    int fails = tu_failures(), all = 0;
    MPI_Allreduce(&fails, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf(all ? "%d failures\n" : "ok\n", all);
    MPI_Finalize();
    return all ? 1 : 0;
}
