/* Corpus of malformed inputs for the reliability promise (README "Errors and
 * exit codes"): every bad input gives exit code 2, one "saeval: error:" line
 * naming the file and the field, and no result file.
 *
 *   test_corpus gen DIR              one directory per case under DIR, each with
 *                                    config.json and `expect` (one stderr
 *                                    fragment per line, all must appear)
 *   test_corpus sweep DIR            sweep isolation inputs: 3 good SAEs + 1
 *                                    corrupt one, a good and a NaN store;
 *                                    DIR/config.json (nonfinite error) and
 *                                    DIR/config_skip.json (nonfinite skip)
 *   test_corpus check-sweep DIR OUT MODE
 *                                    MODE error|skip: check OUT against the
 *                                    expectations written by `sweep`
 *   test_corpus big DIR NTOK DSAE    a slow-enough valid sweep (2 stores of
 *                                    NTOK tokens, d_in 64, 2 SAEs of DSAE)
 *   test_corpus checkjson FILE...    every FILE parses as JSON
 *
 * Everything is deterministic. Cases are tiny: d_in 8, d_sae 16, 64 tokens. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "saeval/safetensors.h"
#include "saeval/output.h"
#include "saeval/store.h"

#define TEST_NAME "test_corpus"
#include "testutil.h"

#define DIN 8
#define DSAE 16
#define NTOK 64
#define CTX 16

/* ---------- utilities ---------- */

static const char *pj(const char *a, const char *b)
{
    static char bufs[8][4096];
    static int k;
    char *r = bufs[k++ & 7];
    if (strlen(a) + strlen(b) + 2 > 4096) die("path too long", a);
    memcpy(r, a, strlen(a));
    r[strlen(a)] = '/';
    memcpy(r + strlen(a) + 1, b, strlen(b) + 1);
    return r;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) die("cannot write", path);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

static void write_fmt(const char *path, const char *fmt, ...)
{
    char buf[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    write_text(path, buf);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = xcalloc((size_t)n + 1, 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) { fclose(f); free(b); return NULL; }
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

static uint64_t rng_state = 88172645463325252ull;
static double urand(void) /* [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double nrand(void) { return (urand() + urand() + urand() + urand() - 2.0) * 1.7320508; }

/* ---------- SAEs ---------- */

static void write_cfg(const char *dir, const char *cfg_json)
{
    mkdirs(dir);
    write_text(pj(dir, "cfg.json"), cfg_json);
}

/* A valid standard SAE with weights via sv_st_write. */
static void good_sae_dims(const char *dir, int64_t d_in, int64_t d_sae, int topk_k)
{
    mkdirs(dir);
    char cfg[512];
    if (topk_k > 0)
        snprintf(cfg, sizeof cfg,
                 "{\"architecture\": \"topk\", \"d_in\": %lld, \"d_sae\": %lld, \"k\": %d, \"dtype\": \"float32\"}",
                 (long long)d_in, (long long)d_sae, topk_k);
    else
        snprintf(cfg, sizeof cfg, "{\"architecture\": \"standard\", \"d_in\": %lld, \"d_sae\": %lld, \"dtype\": \"float32\"}",
                 (long long)d_in, (long long)d_sae);
    write_cfg(dir, cfg);
    double *we = xcalloc((size_t)(d_in * d_sae), sizeof(double));
    double *wd = xcalloc((size_t)(d_in * d_sae), sizeof(double));
    double *be = xcalloc((size_t)d_sae, sizeof(double));
    double *bd = xcalloc((size_t)d_in, sizeof(double));
    double sc = 1.0 / sqrt((double)d_in);
    for (int64_t i = 0; i < d_in * d_sae; i++) we[i] = nrand() * sc;
    for (int64_t i = 0; i < d_in * d_sae; i++) wd[i] = nrand() * sc;
    for (int64_t i = 0; i < d_sae; i++) be[i] = -0.1 * urand();
    for (int64_t i = 0; i < d_in; i++) bd[i] = 0.05 * nrand();
    sv_st_wtensor t[4] = {
        {"W_enc", SV_DT_F32, 2, {d_in, d_sae}, we},
        {"b_enc", SV_DT_F32, 1, {d_sae}, be},
        {"W_dec", SV_DT_F32, 2, {d_sae, d_in}, wd},
        {"b_dec", SV_DT_F32, 1, {d_in}, bd},
    };
    if (sv_st_write(pj(dir, "sae_weights.safetensors"), t, 4) != SV_OK) die("sv_st_write failed", dir);
    free(we); free(wd); free(be); free(bd);
}

static void good_sae(const char *dir) { good_sae_dims(dir, DIN, DSAE, 0); }

/* A SAELens transcoder (d_in DIN -> d_out), with W_skip when skip; cfg_json
 * NULL writes the matching cfg.json. */
static void tc_sae(const char *dir, int64_t d_out, int skip, const char *cfg_json)
{
    mkdirs(dir);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "{\"architecture\": \"%s\", \"d_in\": %d, \"d_sae\": %d, \"d_out\": %lld, \"dtype\": \"float32\"}",
             skip ? "skip_transcoder" : "transcoder", DIN, DSAE, (long long)d_out);
    write_cfg(dir, cfg_json ? cfg_json : cfg);
    double *we = xcalloc((size_t)DIN * DSAE, sizeof(double)), *wd = xcalloc((size_t)d_out * DSAE, sizeof(double));
    double *be = xcalloc(DSAE, sizeof(double)), *bd = xcalloc((size_t)d_out, sizeof(double));
    double *ws = xcalloc((size_t)d_out * DIN, sizeof(double));
    for (int64_t i = 0; i < DIN * DSAE; i++) we[i] = nrand() * 0.3;
    for (int64_t i = 0; i < d_out * DSAE; i++) wd[i] = nrand() * 0.3;
    for (int64_t i = 0; i < d_out * DIN; i++) ws[i] = nrand() * 0.1;
    sv_st_wtensor t[5] = {
        {"W_enc", SV_DT_F32, 2, {DIN, DSAE}, we},
        {"b_enc", SV_DT_F32, 1, {DSAE}, be},
        {"W_dec", SV_DT_F32, 2, {DSAE, d_out}, wd},
        {"b_dec", SV_DT_F32, 1, {d_out}, bd},
        {"W_skip", SV_DT_F32, 2, {d_out, DIN}, ws},
    };
    if (sv_st_write(pj(dir, "sae_weights.safetensors"), t, skip ? 5 : 4) != SV_OK) die("sv_st_write failed", dir);
    free(we); free(wd); free(be); free(bd); free(ws);
}

/* Raw safetensors: u64 LE header length (hlen, or the real length when
 * hlen == UINT64_MAX), the header bytes, then data_len bytes of small floats. */
static void raw_st(const char *path, const char *header, uint64_t hlen, size_t data_len)
{
    size_t n = strlen(header);
    uint64_t L = hlen == UINT64_MAX ? n : hlen;
    size_t tot = 8 + n + data_len;
    unsigned char *b = xcalloc(tot, 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(L >> (8 * i));
    memcpy(b + 8, header, n);
    for (size_t i = 0; i + 4 <= data_len; i += 4) {
        float v = (float)(0.01 * (double)((i / 4) % 7) - 0.03);
        memcpy(b + 8 + n + i, &v, 4);
    }
    write_bytes(path, b, tot);
    free(b);
}

/* The header of the standard 8x16 SAE (data 1120 bytes), with one tensor's
 * fields replaceable. */
#define H_WENC "\"W_enc\": {\"dtype\": \"F32\", \"shape\": [8, 16], \"data_offsets\": [0, 512]}"
#define H_BENC "\"b_enc\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [512, 576]}"
#define H_WDEC "\"W_dec\": {\"dtype\": \"F32\", \"shape\": [16, 8], \"data_offsets\": [576, 1088]}"
#define H_BDEC "\"b_dec\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [1088, 1120]}"
#define ST_DATA 1120


/* ---------- stores (HDF5 API directly, for full control) ---------- */

typedef struct {
    hid_t act_type;       /* H5T_NATIVE_FLOAT default (0) */
    int rank;             /* 2 default (0) */
    hsize_t n_tokens;     /* NTOK default; set no_tokens for 0 */
    int zero_tokens;
    hsize_t d_in;         /* DIN default */
    int no_activations;
    const char *dtype_attr;
    int64_t context_size; /* 0: none; -1: default CTX when no offsets */
    const int64_t *offsets;
    int n_offsets;
    int no_seq;
    int token_ids_len;    /* -1: none; 0: n_tokens */
    int all_special;      /* special_token_ids covering every id */
    const int *nan_tok;   /* tokens to poison, -1 terminated */
    int nan_dim;
    double poison;        /* NAN or INFINITY */
    hsize_t targets_d;    /* > 0: /targets [n_tokens][targets_d] float32 */
    int targets_rank;     /* 2 default (0) */
    hsize_t targets_rows; /* n_tokens default (0) */
    int targets_int;      /* int32 /targets (no dtype attribute) */
    int targets_nan_tok;  /* > 0: NaN at this token of /targets */
} store_spec;

static void h5chk(herr_t e, const char *what)
{
    if (e < 0) die("HDF5 call failed", what);
}

static void attr_i64(hid_t loc, const char *name, const int64_t *v, hsize_t n, int scalar)
{
    hid_t sp = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    h5chk(H5Awrite(a, H5T_NATIVE_INT64, v), name);
    H5Aclose(a);
    H5Sclose(sp);
}

static void attr_str(hid_t loc, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v));
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    h5chk(H5Awrite(a, t, v), name);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void dset_i64(hid_t f, const char *name, const int64_t *v, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (n) h5chk(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), name);
    H5Dclose(d);
    H5Sclose(sp);
}

/* Deterministic activations for token t, dim i. */
static double act_val(int64_t t, int64_t i) { return sin(0.37 * (double)t + 1.3 * (double)i) + 0.1 * (double)(i % 3); }

static void write_store(const char *path, const store_spec *s)
{
    hsize_t n = s->zero_tokens ? 0 : (s->n_tokens ? s->n_tokens : NTOK);
    hsize_t d = s->d_in ? s->d_in : DIN;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) die("H5Fcreate failed", path);
    if (!s->no_activations) {
        int rank = s->rank ? s->rank : 2;
        hsize_t dims[3] = {n, d, 2};
        hsize_t total = n * (rank >= 2 ? d : 1) * (rank >= 3 ? 2 : 1);
        hid_t type = s->act_type ? s->act_type : H5T_NATIVE_FLOAT;
        hid_t sp = H5Screate_simple(rank, dims, NULL);
        hid_t ds = H5Dcreate2(f, "/activations", type == H5T_NATIVE_FLOAT ? H5T_IEEE_F32LE : type, sp, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0) die("cannot create /activations", path);
        if (type == H5T_NATIVE_FLOAT) {
            float *x = xcalloc(total, sizeof(float));
            for (hsize_t k = 0; k < total; k++) x[k] = (float)act_val((int64_t)(k / d), (int64_t)(k % d));
            if (s->nan_tok)
                for (const int *p = s->nan_tok; *p >= 0; p++) x[(hsize_t)*p * d + (hsize_t)s->nan_dim] = (float)s->poison;
            if (total) h5chk(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x), "activations");
            free(x);
        } else {
            int32_t *x = xcalloc(total, sizeof(int32_t));
            for (hsize_t k = 0; k < total; k++) x[k] = (int32_t)(k % 100);
            if (total) h5chk(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, x), "activations");
            free(x);
        }
        if (s->dtype_attr) attr_str(ds, "dtype", s->dtype_attr);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    if (s->targets_d) {
        hsize_t dims[2] = {s->targets_rows ? s->targets_rows : n, s->targets_d}, total = dims[0] * dims[1];
        int rank = s->targets_rank ? s->targets_rank : 2;
        if (rank == 1) total = dims[0];
        hid_t sp = H5Screate_simple(rank, dims, NULL);
        hid_t ds = H5Dcreate2(f, "/targets", s->targets_int ? H5T_STD_I32LE : H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                              H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0) die("cannot create /targets", path);
        float *y = xcalloc(total, sizeof(float));
        for (hsize_t k = 0; k < total; k++) y[k] = (float)act_val((int64_t)(k / s->targets_d), (int64_t)(k % s->targets_d) + 3);
        if (s->targets_nan_tok > 0) y[(hsize_t)s->targets_nan_tok * s->targets_d] = NAN;
        int32_t *yi = xcalloc(total, sizeof(int32_t));
        h5chk(s->targets_int ? H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, yi)
                             : H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, y), "targets");
        free(y); free(yi);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    if (s->offsets) dset_i64(f, "/sequence_offsets", s->offsets, (hsize_t)s->n_offsets);
    else if (!s->no_seq) {
        int64_t cs = s->context_size ? s->context_size : CTX;
        attr_i64(f, "context_size", &cs, 1, 1);
    }
    if (s->token_ids_len >= 0) {
        hsize_t m = s->token_ids_len ? (hsize_t)s->token_ids_len : n;
        int64_t *ids = xcalloc(m, sizeof(int64_t));
        for (hsize_t k = 0; k < m; k++) ids[k] = (int64_t)(k % 5); /* ids 0..4 */
        dset_i64(f, "/token_ids", ids, m);
        free(ids);
    }
    if (s->all_special) {
        int64_t sp[5] = {0, 1, 2, 3, 4};
        attr_i64(f, "special_token_ids", sp, 5, 0);
    }
    H5Fclose(f);
}

static void good_store(const char *path)
{
    store_spec s = {0};
    s.token_ids_len = 0;
    write_store(path, &s);
}

/* ---------- cases ---------- */

/* config.json with the standard SAE "sae" and store "store.h5"; `extra` is
 * appended inside the object (start it with a comma). */
static void std_config(const char *dir, const char *extra)
{
    write_fmt(pj(dir, "config.json"),
              "{\"output_dir\": \"out\", \"saes\": [\"sae\"],\n"
              " \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\", \"role\": \"in_sample\"}]%s}\n",
              extra ? extra : "");
}

static const char *g_root;
static int g_count;

/* Make a case directory with a good SAE and store and the standard config;
 * the case function then breaks one thing. */
static const char *new_case(const char *name, const char *expect)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", g_root, name);
    mkdirs(dir);
    good_sae(pj(dir, "sae"));
    good_store(pj(dir, "store.h5"));
    std_config(dir, NULL);
    write_text(pj(dir, "expect"), expect);
    g_count++;
    return dir;
}

static void gen_corpus(const char *root)
{
    g_root = root;
    mkdirs(root);
    const char *d;
    char h[8192];
    const char *st = "sae/sae_weights.safetensors";

    /* ---- safetensors ---- */
    d = new_case("st_truncated", "sae_weights.safetensors\ndata_offsets\n");
    {   /* cut a valid file in the middle of its data block */
        size_t n;
        char *b = read_file(pj(d, st), &n);
        write_bytes(pj(d, st), b, n - 300);
        free(b);
    }
    d = new_case("st_weight_nan", "sae_weights.safetensors\nW_dec\nnon-finite\n");
    {   /* a NaN in W_dec (the 6th value of its data block at offset 576) */
        size_t n;
        char *b = read_file(pj(d, st), &n);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)b[i];
        const float v = NAN;
        memcpy(b + 8 + hl + 576 + 5 * 4, &v, 4);
        write_bytes(pj(d, st), b, n);
        free(b);
    }
    d = new_case("st_shorter_than_length_field", "sae_weights.safetensors\n");
    write_bytes(pj(d, st), "\x10\x00\x00", 3);
    d = new_case("st_header_len_beyond_file", "sae_weights.safetensors\nheader\n");
    snprintf(h, sizeof h, "{" H_WENC ", " H_BENC ", " H_WDEC ", " H_BDEC "}");
    raw_st(pj(d, st), h, 100000, ST_DATA);
    d = new_case("st_header_len_absurd", "sae_weights.safetensors\nheader\n");
    raw_st(pj(d, st), h, (uint64_t)1 << 40, ST_DATA);
    d = new_case("st_header_len_zero", "sae_weights.safetensors\nheader\n");
    raw_st(pj(d, st), h, 0, ST_DATA);
    d = new_case("st_header_not_json", "sae_weights.safetensors\nheader\n");
    raw_st(pj(d, st), "{\"W_enc\": {\"dtype\": \"F32\", \"shape\": [8, 16], ", UINT64_MAX, ST_DATA);
    d = new_case("st_header_not_object", "sae_weights.safetensors\nheader\n");
    raw_st(pj(d, st), "[1, 2, 3]", UINT64_MAX, ST_DATA);
    d = new_case("st_unknown_dtype", "sae_weights.safetensors\nW_enc\nQ4\n");
    raw_st(pj(d, st),
           "{\"W_enc\": {\"dtype\": \"Q4\", \"shape\": [8, 16], \"data_offsets\": [0, 512]}, " H_BENC ", " H_WDEC
           ", " H_BDEC "}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_dtype_not_string", "sae_weights.safetensors\nb_dec\ndtype\n");
    raw_st(pj(d, st),
           "{" H_WENC ", " H_BENC ", " H_WDEC ", \"b_dec\": {\"dtype\": 32, \"shape\": [8], \"data_offsets\": [1088, 1120]}}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_shape_overflow", "sae_weights.safetensors\nW_enc\nshape\n");
    raw_st(pj(d, st),
           "{\"W_enc\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16], \"data_offsets\": [0, 512]}, " H_BENC
           ", " H_WDEC ", " H_BDEC "}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_shape_negative", "sae_weights.safetensors\nb_enc\nshape\n");
    raw_st(pj(d, st),
           "{" H_WENC ", \"b_enc\": {\"dtype\": \"F32\", \"shape\": [-16], \"data_offsets\": [512, 576]}, " H_WDEC
           ", " H_BDEC "}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_offsets_out_of_range", "sae_weights.safetensors\nb_dec\ndata_offsets\n");
    raw_st(pj(d, st),
           "{" H_WENC ", " H_BENC ", " H_WDEC ", \"b_dec\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [1120, 1152]}}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_offsets_huge", "sae_weights.safetensors\nb_dec\ndata_offsets\n");
    raw_st(pj(d, st),
           "{" H_WENC ", " H_BENC ", " H_WDEC
           ", \"b_dec\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [18446744073709551584, 18446744073709551615]}}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_offsets_reversed", "sae_weights.safetensors\nb_enc\ndata_offsets\n");
    raw_st(pj(d, st),
           "{" H_WENC ", \"b_enc\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [576, 512]}, " H_WDEC ", " H_BDEC "}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_offsets_overlap", "sae_weights.safetensors\noverlap\n");
    /* b_enc [500, 564) overlaps W_enc [0, 512); sizes match shapes */
    raw_st(pj(d, st),
           "{" H_WENC ", \"b_enc\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [500, 564]}, " H_WDEC ", " H_BDEC "}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_offsets_vs_shape", "sae_weights.safetensors\nW_dec\n");
    raw_st(pj(d, st),
           "{" H_WENC ", " H_BENC ", \"W_dec\": {\"dtype\": \"F32\", \"shape\": [16, 8], \"data_offsets\": [576, 1080]}, "
           H_BDEC "}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_offsets_missing", "sae_weights.safetensors\nb_enc\ndata_offsets\n");
    raw_st(pj(d, st), "{" H_WENC ", \"b_enc\": {\"dtype\": \"F32\", \"shape\": [16]}, " H_WDEC ", " H_BDEC "}",
           UINT64_MAX, ST_DATA);
    d = new_case("st_missing_W_dec", "sae_weights.safetensors\nW_dec\n");
    raw_st(pj(d, st),
           "{" H_WENC ", " H_BENC ", \"b_dec\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [576, 608]}}",
           UINT64_MAX, 608);
    d = new_case("st_missing_threshold_jumprelu", "sae_weights.safetensors\nthreshold\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"jumprelu\", \"d_in\": 8, \"d_sae\": 16}");
    d = new_case("st_shape_vs_cfg", "sae_weights.safetensors\nW_enc\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_in\": 8, \"d_sae\": 32}");
    d = new_case("st_missing_file", "sae_weights.safetensors\n");
    unlink(pj(d, st));

    /* ---- cfg.json ---- */
    d = new_case("cfg_not_json", "cfg.json\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_in\": 8,, }");
    d = new_case("cfg_not_object", "cfg.json\n");
    write_cfg(pj(d, "sae"), "[8, 16]");
    d = new_case("cfg_missing_d_in", "cfg.json\nd_in\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_sae\": 16}");
    d = new_case("cfg_missing_d_sae", "cfg.json\nd_sae\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_in\": 8}");
    d = new_case("cfg_d_in_string", "cfg.json\nd_in\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_in\": \"8\", \"d_sae\": 16}");
    d = new_case("cfg_d_sae_zero", "cfg.json\nd_sae\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_in\": 8, \"d_sae\": 0}");
    d = new_case("cfg_d_in_fraction", "cfg.json\nd_in\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_in\": 8.5, \"d_sae\": 16}");
    d = new_case("cfg_unknown_architecture", "cfg.json\narchitecture\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"transcoder\", \"d_in\": 8, \"d_sae\": 16}");
    d = new_case("cfg_topk_k_zero", "cfg.json\nk\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"topk\", \"d_in\": 8, \"d_sae\": 16, \"k\": 0}");
    d = new_case("cfg_topk_k_negative", "cfg.json\nk\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"topk\", \"d_in\": 8, \"d_sae\": 16, \"k\": -3}");
    d = new_case("cfg_topk_k_gt_d_sae", "cfg.json\nk\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"topk\", \"d_in\": 8, \"d_sae\": 16, \"k\": 17}");
    d = new_case("cfg_topk_k_missing", "cfg.json\nk\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"topk\", \"d_in\": 8, \"d_sae\": 16}");
    d = new_case("cfg_unknown_normalize", "cfg.json\nnormalize_activations\n");
    write_cfg(pj(d, "sae"), "{\"architecture\": \"standard\", \"d_in\": 8, \"d_sae\": 16, \"normalize_activations\": \"l2\"}");
    d = new_case("cfg_missing", "cfg.json\n");
    unlink(pj(d, "sae/cfg.json"));
    d = new_case("cfg_expected_average_no_scale", "scaling_factor\n");
    write_cfg(pj(d, "sae"),
              "{\"architecture\": \"standard\", \"d_in\": 8, \"d_sae\": 16, \"normalize_activations\": \"expected_average_only_in\"}");
    d = new_case("cfg_activation_scaler_bad", "activation_scaler.json\nscaling_factor\n");
    write_cfg(pj(d, "sae"),
              "{\"architecture\": \"standard\", \"d_in\": 8, \"d_sae\": 16, \"normalize_activations\": \"expected_average_only_in\"}");
    write_text(pj(d, "sae/activation_scaler.json"), "{\"scaling_factor\": \"big\"}");

    /* ---- stores ---- */
    {
        store_spec s;
        d = new_case("store_not_hdf5", "store.h5\nHDF5\n");
        write_text(pj(d, "store.h5"), "this is not an HDF5 file\n");
        d = new_case("store_truncated_hdf5", "store.h5\n");
        {
            size_t n;
            char *b = read_file(pj(d, "store.h5"), &n);
            write_bytes(pj(d, "store.h5"), b, 1200);
            free(b);
        }
        d = new_case("store_no_activations", "store.h5\nactivations\n");
        memset(&s, 0, sizeof s); s.no_activations = 1; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_activations_1d", "store.h5\nactivations\n");
        memset(&s, 0, sizeof s); s.rank = 1; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_activations_3d", "store.h5\nactivations\n");
        memset(&s, 0, sizeof s); s.rank = 3; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_int_activations", "store.h5\nactivations\n");
        memset(&s, 0, sizeof s); s.act_type = H5T_STD_I32LE; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_u16_without_bf16_attr", "store.h5\nactivations\n");
        memset(&s, 0, sizeof s); s.act_type = H5T_STD_U16LE; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_u16_bad_dtype_attr", "store.h5\ndtype\n");
        memset(&s, 0, sizeof s); s.act_type = H5T_STD_U16LE; s.dtype_attr = "float8"; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_token_ids_length", "store.h5\ntoken_ids\n");
        memset(&s, 0, sizeof s); s.token_ids_len = NTOK - 3;
        write_store(pj(d, "store.h5"), &s);
        static const int64_t off_nz[] = {1, 16, 32, 48, 64};
        d = new_case("store_offsets_not_zero", "store.h5\nsequence_offsets\n");
        memset(&s, 0, sizeof s); s.offsets = off_nz; s.n_offsets = 5; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        static const int64_t off_ni[] = {0, 16, 40, 32, 64};
        d = new_case("store_offsets_not_increasing", "store.h5\nsequence_offsets\n");
        memset(&s, 0, sizeof s); s.offsets = off_ni; s.n_offsets = 5; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        static const int64_t off_eq[] = {0, 16, 16, 32, 64};
        d = new_case("store_offsets_repeated", "store.h5\nsequence_offsets\n");
        memset(&s, 0, sizeof s); s.offsets = off_eq; s.n_offsets = 5; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        static const int64_t off_ne[] = {0, 16, 32, 48, 60};
        d = new_case("store_offsets_not_ending_at_n_tokens", "store.h5\nsequence_offsets\n");
        memset(&s, 0, sizeof s); s.offsets = off_ne; s.n_offsets = 5; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        static const int64_t off_one[] = {0};
        d = new_case("store_offsets_single_entry", "store.h5\nsequence_offsets\n");
        memset(&s, 0, sizeof s); s.offsets = off_one; s.n_offsets = 1; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_context_size_not_dividing", "store.h5\ncontext_size\n");
        memset(&s, 0, sizeof s); s.context_size = 12; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_context_size_negative", "store.h5\ncontext_size\n");
        memset(&s, 0, sizeof s); s.context_size = -16; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_zero_tokens", "store.h5\ntokens\n");
        memset(&s, 0, sizeof s); s.zero_tokens = 1; s.no_seq = 1; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_no_sequence_structure", "store.h5\nsequence\n");
        memset(&s, 0, sizeof s); s.no_seq = 1; s.token_ids_len = -1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_every_token_masked", "store.h5\nmasked\n");
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.all_special = 1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("store_every_token_excluded", "store.h5\nmasked\n");
        std_config(d, ", \"exclude_token_ids\": [0, 1, 2, 3, 4]");
        static const int nan_tok[] = {37, 50, -1};
        d = new_case("store_nan", "store.h5\nnon-finite\ntoken 37\ndimension 5\n");
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.nan_tok = nan_tok; s.nan_dim = 5; s.poison = NAN;
        write_store(pj(d, "store.h5"), &s);
        /* one unit per sequence, so the NaN (token 60) is in rank 1's share */
        static const int nan_tok1[] = {60, -1};
        d = new_case("store_nan_on_rank_1", "store.h5\nnon-finite\ntoken 60\ndimension 1\n");
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.nan_tok = nan_tok1; s.nan_dim = 1; s.poison = NAN;
        write_store(pj(d, "store.h5"), &s);
        std_config(d, ", \"legacy_batch_sequences\": 1");
        static const int inf_tok[] = {9, -1};
        d = new_case("store_inf", "store.h5\nnon-finite\ntoken 9\ndimension 2\n");
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.nan_tok = inf_tok; s.nan_dim = 2; s.poison = -INFINITY;
        write_store(pj(d, "store.h5"), &s);
    }

    /* ---- run config ---- */
    d = new_case("conf_not_json", "config.json\n");
    write_text(pj(d, "config.json"), "{\"output_dir\": \"out\", \"saes\": [\"sae\"\n");
    d = new_case("conf_not_object", "config.json\n");
    write_text(pj(d, "config.json"), "[\"sae\"]\n");
    d = new_case("conf_unknown_key", "config.json\nbatch_size_typo\n");
    std_config(d, ", \"batch_size_typo\": 4");
    d = new_case("conf_missing_output_dir", "config.json\noutput_dir\n");
    write_text(pj(d, "config.json"),
               "{\"saes\": [\"sae\"], \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\"}]}\n");
    d = new_case("conf_missing_saes", "config.json\nsaes\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\"}]}\n");
    d = new_case("conf_saes_empty", "config.json\nsaes\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [], \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\"}]}\n");
    d = new_case("conf_missing_datasets", "config.json\ndatasets\n");
    write_text(pj(d, "config.json"), "{\"output_dir\": \"out\", \"saes\": [\"sae\"]}\n");
    d = new_case("conf_missing_store_file", "nonexistent.h5\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"sae\"], \"datasets\": [{\"name\": \"ds\", \"path\": \"nonexistent.h5\"}]}\n");
    d = new_case("conf_missing_sae_dir", "no_such_sae\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"no_such_sae\"], \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\"}]}\n");
    d = new_case("conf_glob_matches_nothing", "sweep_*/nomatch*\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"sae\", \"sweep_*/nomatch*\"], \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\"}]}\n");
    d = new_case("conf_duplicate_dataset", "config.json\nduplicate\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"sae\"], \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\"},"
               " {\"name\": \"ds\", \"path\": \"store.h5\"}]}\n");
    d = new_case("conf_dataset_missing_name", "config.json\nname\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"sae\"], \"datasets\": [{\"path\": \"store.h5\"}]}\n");
    d = new_case("conf_bad_role", "config.json\nrole\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"sae\"], \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\", \"role\": \"test\"}]}\n");
    d = new_case("conf_bad_shift", "config.json\nshift\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"sae\"], \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\", \"role\": \"oos\", \"shift\": \"time\"}]}\n");
    d = new_case("conf_d_in_mismatch", "d_in\n");
    good_sae_dims(pj(d, "sae"), 12, DSAE, 0);
    /* ---- transcoders and /targets (issue 11) ---- */
    {
        store_spec s;
        d = new_case("tc_store_without_targets", "store.h5\n/targets\nmissing\n");
        tc_sae(pj(d, "sae"), 6, 0, NULL);
        d = new_case("tc_targets_width_mismatch", "store.h5\n/targets\nd_out 5\n");
        tc_sae(pj(d, "sae"), 6, 0, NULL);
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.targets_d = 5;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("tc_targets_rows_mismatch", "store.h5\n/targets\nrows\n");
        tc_sae(pj(d, "sae"), 6, 0, NULL);
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.targets_d = 6; s.targets_rows = NTOK - 3;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("tc_targets_rank1", "store.h5\n/targets\n2-D\n");
        tc_sae(pj(d, "sae"), 6, 0, NULL);
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.targets_d = 6; s.targets_rank = 1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("tc_targets_integers", "store.h5\n/targets\nbfloat16\n");
        tc_sae(pj(d, "sae"), 6, 0, NULL);
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.targets_d = 6; s.targets_int = 1;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("tc_targets_nonfinite", "store.h5\n/targets\nnon-finite\n");
        tc_sae(pj(d, "sae"), 6, 0, NULL);
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.targets_d = 6; s.targets_nan_tok = 21;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("tc_cfg_missing_d_out", "cfg.json\nd_out\n");
        tc_sae(pj(d, "sae"), 6, 0, "{\"architecture\": \"transcoder\", \"d_in\": 8, \"d_sae\": 16}");
        d = new_case("tc_cfg_layer_norm", "cfg.json\nnormalize_activations\n");
        tc_sae(pj(d, "sae"), 6, 0, "{\"architecture\": \"transcoder\", \"d_in\": 8, \"d_sae\": 16, \"d_out\": 6, "
                                   "\"normalize_activations\": \"layer_norm\"}");
        d = new_case("tc_skip_without_W_skip", "sae_weights.safetensors\nW_skip\nmissing\n");
        tc_sae(pj(d, "sae"), 6, 0, "{\"architecture\": \"skip_transcoder\", \"d_in\": 8, \"d_sae\": 16, \"d_out\": 6}");
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.targets_d = 6;
        write_store(pj(d, "store.h5"), &s);
        d = new_case("tc_W_dec_width", "sae_weights.safetensors\nW_dec\n");
        tc_sae(pj(d, "sae"), 6, 0, "{\"architecture\": \"transcoder\", \"d_in\": 8, \"d_sae\": 16, \"d_out\": 7}");
        memset(&s, 0, sizeof s); s.token_ids_len = 0; s.targets_d = 7;
        write_store(pj(d, "store.h5"), &s);
    }
    d = new_case("conf_sae_transcoder_not_bool", "config.json\nsaes[0].transcoder\n");
    write_text(pj(d, "config.json"), "{\"output_dir\": \"out\", \"saes\": [{\"path\": \"sae\", \"transcoder\": 1}],"
                                     " \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\", \"role\": \"in_sample\"}]}\n");
    d = new_case("conf_declared_transcoder_subtracts_b_dec", "sae\ntranscoder\nsubtracts b_dec\n");
    write_text(pj(d, "config.json"), "{\"output_dir\": \"out\", \"saes\": [{\"path\": \"sae\", \"transcoder\": true}],"
                                     " \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\", \"role\": \"in_sample\"}]}\n");
    d = new_case("conf_bad_precision", "config.json\nprecision\n");
    std_config(d, ", \"precision\": \"float16\"");
    d = new_case("conf_legacy_batch_sequences_zero", "config.json\nlegacy_batch_sequences\n");
    std_config(d, ", \"legacy_batch_sequences\": 0");
    d = new_case("conf_legacy_batch_sequences_string", "config.json\nlegacy_batch_sequences\n");
    std_config(d, ", \"legacy_batch_sequences\": \"16\"");
    d = new_case("conf_bad_nonfinite", "config.json\nnonfinite\n");
    std_config(d, ", \"nonfinite\": \"ignore\"");
    d = new_case("conf_block_tokens_not_multiple", "config.json\nblock_tokens\n");
    std_config(d, ", \"block_tokens\": 300");
    d = new_case("conf_exclude_ids_not_integers", "config.json\nexclude_token_ids\n");
    std_config(d, ", \"exclude_token_ids\": [\"<bos>\"]");
    d = new_case("conf_memory_budget_negative", "config.json\nmemory_budget_mb\n");
    std_config(d, ", \"memory_budget_mb\": -5");
    d = new_case("conf_geometry_not_bool", "config.json\ngeometry\n");
    std_config(d, ", \"geometry\": \"yes\"");
    d = new_case("conf_sae_scaling_factor_string", "config.json\nscaling_factor\n");
    write_text(pj(d, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [{\"path\": \"sae\", \"scaling_factor\": \"0.5\"}],"
               " \"datasets\": [{\"name\": \"ds\", \"path\": \"store.h5\"}]}\n");

    printf("%d cases in %s\n", g_count, root);
}

/* ---------- sweep isolation ---------- */

#define SW_NTOK 256
#define SW_CTX 32
static const int sweep_bad_tokens[] = {3, 40, 41, 130, 255, -1}; /* 5 tokens */

static void gen_sweep(const char *root)
{
    mkdirs(root);
    good_sae_dims(pj(root, "saes/good_a"), DIN, DSAE, 0);
    good_sae_dims(pj(root, "saes/good_b"), DIN, 32, 0);
    good_sae_dims(pj(root, "saes/good_c"), DIN, DSAE, 4);
    good_sae_dims(pj(root, "saes/bad"), DIN, DSAE, 0);
    {   /* corrupt: garbage in the middle of the header */
        const char *p = pj(root, "saes/bad/sae_weights.safetensors");
        size_t n;
        char *b = read_file(p, &n);
        memcpy(b + 20, "\x01\x02garbage\x7f", 10);
        write_bytes(p, b, n);
        free(b);
    }
    mkdirs(pj(root, "stores"));
    store_spec s;
    memset(&s, 0, sizeof s);
    s.n_tokens = SW_NTOK; s.context_size = SW_CTX; s.token_ids_len = 0;
    write_store(pj(root, "stores/good.h5"), &s);
    /* NaN and Inf, some tokens with several bad dims (counted once). */
    {
        float *x = xcalloc(SW_NTOK * DIN, sizeof(float));
        for (int t = 0; t < SW_NTOK; t++)
            for (int i = 0; i < DIN; i++) x[t * DIN + i] = (float)act_val(t + 1000, i);
        int k = 0;
        for (const int *p = sweep_bad_tokens; *p >= 0; p++, k++) {
            x[*p * DIN + (k % DIN)] = (k & 1) ? INFINITY : NAN;
            if (k == 2) x[*p * DIN + 7] = -INFINITY;
            if (k == 3) x[*p * DIN + 0] = NAN;
        }
        int64_t ids[SW_NTOK];
        for (int t = 0; t < SW_NTOK; t++) ids[t] = t % 5;
        sv_store_wopts o;
        memset(&o, 0, sizeof o);
        o.dtype = SV_STORE_F32;
        o.context_size = SW_CTX;
        o.token_ids = ids;
        if (sv_store_write(pj(root, "stores/nan.h5"), x, SW_NTOK, DIN, &o) != SV_OK) die("sv_store_write", "nan.h5");
        free(x);
    }
    const char *fmt =
        "{\"output_dir\": \"%s\", \"saes\": [\"saes/good_a\", \"saes/bad\", \"saes/good_b\", \"saes/good_c\"],\n"
        " \"datasets\": [{\"name\": \"good\", \"path\": \"stores/good.h5\", \"role\": \"in_sample\"},\n"
        "              {\"name\": \"nanny\", \"path\": \"stores/nan.h5\", \"role\": \"oos\", \"shift\": \"domain\"}],\n"
        " \"legacy_batch_sequences\": 2%s}\n";
    write_fmt(pj(root, "config.json"), fmt, "out_error", "");
    write_fmt(pj(root, "config_skip.json"), fmt, "out_skip", ", \"nonfinite\": \"skip\"");
    printf("sweep inputs in %s\n", root);
}

static int n_fail;
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!ok) n_fail++;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static cJSON *load_json(const char *path)
{
    char *t = read_file(path, NULL);
    if (!t) return NULL;
    cJSON *j = cJSON_Parse(t);
    free(t);
    return j;
}

static double jnum(const cJSON *o, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (x && b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (x && c) x = cJSON_GetObjectItemCaseSensitive(x, c);
    return cJSON_IsNumber(x) ? x->valuedouble : -12345.0;
}

static int check_sweep(const char *root, const char *out, const char *mode)
{
    int skip = strcmp(mode, "skip") == 0;
    const char *saes[4] = {"good_a", "bad", "good_b", "good_c"};
    const char *dss[2] = {"good", "nanny"};
    int n_bad = 0;
    for (const int *p = sweep_bad_tokens; *p >= 0; p++) n_bad++;
    cJSON *all = load_json(pj(out, "all_eval_results.json"));
    check(all && cJSON_IsArray(all), "%s/all_eval_results.json is a JSON list", out);
    check(all && cJSON_GetArraySize(all) == 8, "all_eval_results.json has 8 records (got %d)",
          all ? cJSON_GetArraySize(all) : -1);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 2; j++) {
            int expect_ok = strcmp(saes[i], "bad") != 0 && (j == 0 || skip);
            char name[256];
            snprintf(name, sizeof name, "%s__%s.json", saes[i], dss[j]);
            const cJSON *rec = NULL, *r;
            cJSON_ArrayForEach(r, all)
            {
                const cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "sae_id");
                const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, "dataset");
                if (cJSON_IsString(a) && cJSON_IsString(b) && !strcmp(a->valuestring, saes[i]) &&
                    !strcmp(b->valuestring, dss[j]))
                    rec = r;
            }
            const cJSON *status = cJSON_GetObjectItemCaseSensitive(rec, "status");
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(rec, "message");
            const char *sv = cJSON_IsString(status) ? status->valuestring : "(none)";
            if (expect_ok) {
                check(rec && !strcmp(sv, "ok"), "%s x %s: status ok in all_eval_results.json (got %s)", saes[i], dss[j], sv);
                cJSON *pf = load_json(pj(out, name));
                check(pf != NULL, "%s exists and is JSON", name);
                const cJSON *ps = cJSON_GetObjectItemCaseSensitive(pf, "status");
                check(cJSON_IsString(ps) && !strcmp(ps->valuestring, "ok"), "%s: status ok", name);
                if (j == 1) {
                    double nf = jnum(pf, "metrics", "token_stats", "tokens_nonfinite");
                    double ev = jnum(pf, "metrics", "token_stats", "tokens_evaluated");
                    check(nf == n_bad, "%s: token_stats.tokens_nonfinite = %d planted (got %g)", name, n_bad, nf);
                    check(ev == SW_NTOK - n_bad, "%s: token_stats.tokens_evaluated = %d (got %g)", name, SW_NTOK - n_bad, ev);
                } else if (pf) {
                    double nf = jnum(pf, "metrics", "token_stats", "tokens_nonfinite");
                    check(nf == 0, "%s: token_stats.tokens_nonfinite = 0 (got %g)", name, nf);
                }
                cJSON_Delete(pf);
                char et[300];
                snprintf(et, sizeof et, "%s__%s.error.txt", saes[i], dss[j]);
                check(!file_exists(pj(out, et)), "no %s for a good pair", et);
            } else {
                check(rec && !strcmp(sv, "error"), "%s x %s: status error in all_eval_results.json (got %s)", saes[i], dss[j], sv);
                const char *mv = cJSON_IsString(msg) ? msg->valuestring : "";
                const char *frag = strcmp(saes[i], "bad") == 0 ? "sae_weights.safetensors" : "nan.h5";
                check(strstr(mv, frag) != NULL, "%s x %s: message names %s (message: \"%s\")", saes[i], dss[j], frag, mv);
                if (strcmp(saes[i], "bad") != 0)
                    check(strstr(mv, "non-finite") != NULL && strstr(mv, "token 3,") != NULL,
                          "%s x %s: message says non-finite and names the first bad token 3 (message: \"%s\")", saes[i], dss[j], mv);
                check(!file_exists(pj(out, name)), "no result file %s for a failed pair", name);
                char et[300];
                snprintf(et, sizeof et, "%s__%s.error.txt", saes[i], dss[j]);
                check(file_exists(pj(out, et)), "%s written for the failed pair", et);
            }
        }
    cJSON_Delete(all);
    (void)root;
    printf("%s\n", n_fail ? "sweep check FAILED" : "sweep check ok");
    return n_fail ? 1 : 0;
}

/* ---------- big valid sweep (interrupt, rank failure) ---------- */

static void gen_big(const char *root, int64_t ntok, int64_t dsae)
{
    const int64_t d = 64, ctx = 128;
    mkdirs(pj(root, "stores"));
    good_sae_dims(pj(root, "saes/big_a"), d, dsae, 0);
    good_sae_dims(pj(root, "saes/big_b"), d, dsae, 32);
    float *x = xcalloc((size_t)(ntok * d), sizeof(float));
    const char *names[2] = {"stores/one.h5", "stores/two.h5"};
    for (int k = 0; k < 2; k++) {
        for (int64_t i = 0; i < ntok * d; i++) x[i] = (float)nrand();
        sv_store_wopts o;
        memset(&o, 0, sizeof o);
        o.dtype = SV_STORE_F32;
        o.context_size = ctx;
        if (sv_store_write(pj(root, names[k]), x, ntok - ntok % ctx, d, &o) != SV_OK) die("sv_store_write", names[k]);
    }
    free(x);
    write_text(pj(root, "config.json"),
               "{\"output_dir\": \"out\", \"saes\": [\"saes/big_a\", \"saes/big_b\"],\n"
               " \"datasets\": [{\"name\": \"one\", \"path\": \"stores/one.h5\", \"role\": \"in_sample\"},\n"
               "              {\"name\": \"two\", \"path\": \"stores/two.h5\", \"role\": \"oos\", \"shift\": \"task\"}],\n"
               " \"legacy_batch_sequences\": 4}\n");
    printf("big sweep in %s\n", root);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "gen")) {
        gen_corpus(argv[2]);
        return 0;
    }
    if (argc >= 3 && !strcmp(argv[1], "sweep")) {
        gen_sweep(argv[2]);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "check-sweep")) return check_sweep(argv[2], argv[3], argv[4]);
    if (argc >= 5 && !strcmp(argv[1], "big")) {
        gen_big(argv[2], atoll(argv[3]), atoll(argv[4]));
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "checkjson")) {
        int bad = 0;
        for (int i = 2; i < argc; i++) {
            cJSON *j = load_json(argv[i]);
            if (!j) {
                printf("not complete JSON: %s\n", argv[i]);
                bad = 1;
            }
            cJSON_Delete(j);
        }
        return bad;
    }
    fprintf(stderr,
            "usage: test_corpus gen DIR | sweep DIR | check-sweep DIR OUT error|skip | big DIR NTOK DSAE | checkjson FILE...\n");
    return 2;
}
