/* Activation store round trips and error handling, under mpirun.
 *
 * Rank 0 writes each store, every rank opens it collectively and reads
 * random row ranges. Expected f16/bf16 values come from an independent
 * double-precision reference rounding written here, not from half.c. */
#include "saeval/store.h"
#include "saeval/info.h"
#include "saeval/safetensors.h"
#include <sys/stat.h>

#include <hdf5.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, nproc, failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            fprintf(stderr, "[rank %d] %s:%d: CHECK(%s) failed: ", rank,       \
                    __FILE__, __LINE__, #cond);                                \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* ---------------- deterministic data (same on every rank) ---------------- */

static uint64_t rng_state;
static uint64_t rng_next(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int64_t rng_below(int64_t n) { return (int64_t)(rng_next() % (uint64_t)n); }

enum { NT = 60, DI = 13, CTX = 12 };
static float X[NT * DI];
static int64_t TOK[NT];
static const int64_t OFFS[] = {0, 7, 8, 20, 33, 60};
static const int64_t SPECIAL[] = {0, 2};

static void make_data(void)
{
    rng_state = 12345;
    for (int i = 0; i < NT * DI; i++) {
        /* Random 24-bit mantissa over a wide exponent range: hits f16
         * subnormals and overflow as well as ordinary values. */
        double m = (double)(rng_next() >> 40) / (double)(1 << 24);
        int e = (int)rng_below(46) - 28;
        X[i] = (float)ldexp(rng_next() & 1 ? -m : m, e);
    }
    /* Exact ties, to check round-half-to-even in both 16-bit formats. */
    X[0] = 1.0f + 0x1p-11f;         /* f16 tie -> 1 */
    X[1] = 1.0f + 3 * 0x1p-11f;     /* f16 tie -> 1 + 2^-9 */
    X[2] = 1.0f + 0x1p-8f;          /* bf16 tie -> 1 */
    X[3] = 1.0f + 3 * 0x1p-8f;      /* bf16 tie -> 1 + 2^-6 */
    X[4] = 0.0f;
    X[5] = -0.0f;
    X[6] = 65519.0f;                /* f16: rounds down to 65504 */
    X[7] = 65520.0f;                /* f16: rounds to inf */
    X[8] = 0x1p-25f;                /* f16: tie between 0 and 2^-24 -> 0 */
    X[9] = 3 * 0x1p-25f;            /* f16: tie -> 2^-23 */
    for (int i = 0; i < NT; i++) TOK[i] = i % 5 == 0 ? SPECIAL[i % 2] : 100 + i;
}

/* ---------------- independent reference rounding ---------------- */

/* Round |v| to a binary format with `mbits` stored mantissa bits, exponent
 * bias `bias` and `ebits` exponent bits; returns the 16-bit pattern. */
static uint16_t ref_encode(float f, int mbits, int ebits, int bias)
{
    double v = f;
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    double a = fabs(v);
    int emax = (1 << ebits) - 1;
    if (a == 0) return sign;
    int ex;
    frexp(a, &ex);
    int E = ex - 1; /* a in [2^E, 2^(E+1)) */
    if (E < 1 - bias) E = 1 - bias; /* subnormal: fixed quantum */
    double q = nearbyint(ldexp(a, mbits - E)); /* exact scaling; ties to even */
    /* q counts quanta 2^(E-mbits); q == 2^(mbits+1) carries into the exponent. */
    if (q >= ldexp(1, mbits + 1)) {
        q /= 2;
        E++;
    }
    int biased = q >= ldexp(1, mbits) ? E + bias : 0;
    if (biased >= emax) return sign | (uint16_t)(emax << mbits); /* overflow -> inf */
    uint32_t mant = (uint32_t)q & ((1u << mbits) - 1);
    return sign | (uint16_t)((unsigned)biased << mbits) | (uint16_t)mant;
}

static float ref_decode(uint16_t h, int mbits, int ebits, int bias)
{
    int emax = (1 << ebits) - 1;
    int e = (h >> mbits) & emax;
    int m = h & ((1 << mbits) - 1);
    double v;
    if (e == emax) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexp(m, 1 - bias - mbits);
    else v = ldexp(m + (1 << mbits), e - bias - mbits);
    return (float)(h & 0x8000 ? -v : v);
}

static float expected(float x, sv_store_dtype dt)
{
    switch (dt) {
    case SV_STORE_F32: return x;
    case SV_STORE_F16: return ref_decode(ref_encode(x, 10, 5, 15), 10, 5, 15);
    default: return ref_decode(ref_encode(x, 7, 8, 127), 7, 8, 127);
    }
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check_reference(void)
{
    /* Sanity-check the reference itself on hand-computed patterns. */
    CHECK(ref_encode(1.0f, 10, 5, 15) == 0x3c00, "f16(1)");
    CHECK(ref_encode(X[0], 10, 5, 15) == 0x3c00, "f16 tie down");
    CHECK(ref_encode(X[1], 10, 5, 15) == 0x3c02, "f16 tie up");
    CHECK(ref_encode(65504.0f, 10, 5, 15) == 0x7bff, "f16 max");
    CHECK(ref_encode(65520.0f, 10, 5, 15) == 0x7c00, "f16 overflow");
    CHECK(ref_encode(0x1p-24f, 10, 5, 15) == 0x0001, "f16 min subnormal");
    CHECK(ref_encode(-0x1p-14f, 10, 5, 15) == 0x8400, "f16 min normal");
    CHECK(ref_encode(0x1p-14f - 0x1p-25f, 10, 5, 15) == 0x0400, "f16 subnormal carries into normal");
    CHECK(ref_encode(1.0f, 7, 8, 127) == 0x3f80, "bf16(1)");
    CHECK(ref_encode(X[3], 7, 8, 127) == 0x3f82, "bf16 tie up");
    CHECK(ref_encode(-2.0f, 7, 8, 127) == 0xc000, "bf16(-2)");
    CHECK(ref_decode(0x0001, 10, 5, 15) == 0x1p-24f, "f16 decode subnormal");
    CHECK(ref_decode(0x3555, 10, 5, 15) == 0x1.554p-2f, "f16 decode");
}

/* ---------------- helpers ---------------- */

static char dir[256];

static char *tpath(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* Run the statements on rank 0 only, then make every rank see the result. */
#define ON_ROOT(...)                                                           \
    do {                                                                       \
        if (rank == 0) { __VA_ARGS__; }                                        \
        MPI_Barrier(MPI_COMM_WORLD);                                           \
    } while (0)

static sv_store_wopts base_opts(sv_store_dtype dt)
{
    sv_store_wopts o;
    memset(&o, 0, sizeof o);
    o.dtype = dt;
    o.context_size = CTX;
    return o;
}

static void write_or_die(const char *path, const float *x, int64_t n, int64_t d, const sv_store_wopts *o)
{
    sv_rc rc = sv_store_write(path, x, n, d, o);
    CHECK(rc == SV_OK, "write %s: %s", path, sv_errmsg());
    CHECK(access(path, F_OK) == 0, "%s missing after write", path);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmp, F_OK) != 0, "%s left behind", tmp);
}

/* ---------------- round trips ---------------- */

static void check_rows(sv_store *s, sv_store_dtype dt, int64_t t0, int64_t n, const char *what)
{
    float *out = malloc((size_t)(n ? n : 1) * DI * sizeof(float));
    sv_rc rc = sv_store_read_rows(s, t0, n, out);
    CHECK(rc == SV_OK, "%s: read_rows(%lld, %lld): %s", what, (long long)t0, (long long)n, sv_errmsg());
    if (rc == SV_OK) {
        int bad = 0;
        for (int64_t i = 0; i < n * DI && bad < 3; i++) {
            float want = expected(X[t0 * DI + i], dt);
            if (!same_bits(out[i], want)) {
                bad++;
                CHECK(0, "%s: row %lld col %lld: got %a want %a (x=%a)", what, (long long)(t0 + i / DI),
                      (long long)(i % DI), out[i], want, X[t0 * DI + i]);
            }
        }
    }
    free(out);
}

static void test_roundtrip(sv_store_dtype dt, int chunked, int use_offsets, int with_tokens, int variant)
{
    char name[64], what[128];
    snprintf(name, sizeof name, "rt_%d_%d_%d_%d.h5", (int)dt, chunked, use_offsets, variant);
    snprintf(what, sizeof what, "%s (%s, %s, %s)", name, sv_store_dtype_name(dt),
             chunked ? "chunked" : "contiguous", use_offsets ? "offsets" : "context_size");
    const char *path = tpath(name);

    sv_store_wopts o = base_opts(dt);
    o.chunked = chunked;
    o.chunk_rows = variant ? 1000 : 7; /* variant 1: clamped to the dims */
    o.chunk_cols = variant ? 0 : 5;    /* ... and raised to at least 1 */
    if (use_offsets) {
        o.seq_offsets = OFFS;
        o.n_seq = 5;
        o.context_size = 0;
    }
    if (with_tokens) {
        o.token_ids = TOK;
        o.special_ids = SPECIAL;
        o.n_special = 2;
    }
    o.model_name = "gpt2-small";
    o.hook_name = "blocks.6.hook_resid_post";
    o.dataset_name = variant ? NULL : "openwebtext";
    ON_ROOT(write_or_die(path, X, NT, DI, &o));

    sv_store s;
    sv_rc rc = sv_store_open(&s, path, MPI_COMM_WORLD);
    CHECK(rc == SV_OK, "%s: open: %s", what, sv_errmsg());
    if (rc != SV_OK) return;
    CHECK(s.n_tokens == NT && s.d_in == DI, "%s: dims %lld x %lld", what, (long long)s.n_tokens, (long long)s.d_in);
    CHECK(s.dtype == dt, "%s: dtype %d", what, (int)s.dtype);
    CHECK(s.chunked == chunked, "%s: chunked %d", what, s.chunked);
    if (chunked && !variant) CHECK(s.chunk[0] == 7 && s.chunk[1] == 5, "%s: chunk %lld x %lld", what,
                                   (long long)s.chunk[0], (long long)s.chunk[1]);
    if (chunked && variant) CHECK(s.chunk[0] == NT && s.chunk[1] == 1, "%s: clamped chunk %lld x %lld", what,
                                  (long long)s.chunk[0], (long long)s.chunk[1]);
    if (use_offsets) {
        CHECK(s.n_seq == 5 && s.context_size == 0, "%s: n_seq %lld ctx %lld", what, (long long)s.n_seq,
              (long long)s.context_size);
        for (int i = 0; s.n_seq == 5 && i <= 5; i++) CHECK(s.seq_offsets[i] == OFFS[i], "%s: offset %d", what, i);
    } else {
        CHECK(s.n_seq == NT / CTX && s.context_size == CTX, "%s: n_seq %lld ctx %lld", what, (long long)s.n_seq,
              (long long)s.context_size);
        for (int i = 0; s.n_seq == NT / CTX && i <= NT / CTX; i++)
            CHECK(s.seq_offsets[i] == i * CTX, "%s: offset %d", what, i);
    }
    CHECK(s.has_token_ids == with_tokens, "%s: has_token_ids", what);
    CHECK(s.n_special == (with_tokens ? 2 : 0), "%s: n_special %d", what, s.n_special);
    if (with_tokens && s.n_special == 2)
        CHECK(s.special_ids[0] == 0 && s.special_ids[1] == 2, "%s: special ids", what);
    CHECK(s.model_name && strcmp(s.model_name, "gpt2-small") == 0, "%s: model_name", what);
    CHECK(s.hook_name && strcmp(s.hook_name, "blocks.6.hook_resid_post") == 0, "%s: hook_name", what);
    if (variant) CHECK(s.dataset_name == NULL, "%s: dataset_name should be absent", what);
    else CHECK(s.dataset_name && strcmp(s.dataset_name, "openwebtext") == 0, "%s: dataset_name", what);
    CHECK(s.file_size > 0 && s.mtime_ns > 0, "%s: stat fields", what);
    CHECK(s.path && strcmp(s.path, path) == 0, "%s: path", what);

    /* Fixed cases plus random ranges; each rank draws its own. */
    check_rows(&s, dt, 0, NT, what);
    check_rows(&s, dt, 0, 0, what);
    check_rows(&s, dt, NT, 0, what);
    check_rows(&s, dt, NT - 1, 1, what);
    uint64_t save = rng_state;
    rng_state = 777 + (uint64_t)rank * 1000 + (uint64_t)dt * 10 + (uint64_t)chunked;
    for (int r = 0; r < 25; r++) {
        int64_t t0 = rng_below(NT + 1);
        int64_t n = rng_below(NT - t0 + 1);
        check_rows(&s, dt, t0, n, what);
        if (with_tokens) {
            int64_t ids[NT + 1];
            rc = sv_store_read_token_ids(&s, t0, n, ids);
            CHECK(rc == SV_OK, "%s: read_token_ids: %s", what, sv_errmsg());
            for (int64_t i = 0; rc == SV_OK && i < n; i++)
                CHECK(ids[i] == TOK[t0 + i], "%s: token %lld", what, (long long)(t0 + i));
        }
    }
    rng_state = save;

    /* Out-of-range and missing-token requests fail cleanly. */
    float tmp[DI * 2];
    CHECK(sv_store_read_rows(&s, NT - 1, 2, tmp) != SV_OK, "%s: read past end", what);
    CHECK(sv_store_read_rows(&s, -1, 1, tmp) != SV_OK, "%s: negative t0", what);
    if (!with_tokens) {
        int64_t ids[2];
        CHECK(sv_store_read_token_ids(&s, 0, 1, ids) != SV_OK, "%s: token ids absent", what);
    }
    sv_store_close(&s);
    sv_store_close(&s); /* idempotent */
}

/* Fixed-length string attributes (as some writers produce) and a variable-length
 * dtype attribute (as h5py writes str attributes). */
static void test_fixed_strings(void)
{
    const char *path = tpath("strings.h5");
    sv_store_wopts o = base_opts(SV_STORE_BF16_U16);
    ON_ROOT({
        write_or_die(path, X, NT, DI, &o);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t sp = H5Screate(H5S_SCALAR);
        /* NUL-padded, no terminator in the stored bytes */
        hid_t t1 = H5Tcopy(H5T_C_S1);
        H5Tset_size(t1, 4);
        H5Tset_strpad(t1, H5T_STR_NULLPAD);
        hid_t a = H5Acreate2(f, "model_name", t1, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t1, "pyth");
        H5Aclose(a);
        /* NUL-terminated with slack */
        hid_t t2 = H5Tcopy(H5T_C_S1);
        H5Tset_size(t2, 16);
        char hook[16] = "hook.x";
        a = H5Acreate2(f, "hook_name", t2, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t2, hook);
        H5Aclose(a);
        /* Replace dtype with a variable-length string */
        hid_t d = H5Dopen2(f, "/activations", H5P_DEFAULT);
        H5Adelete(d, "dtype");
        hid_t tv = H5Tcopy(H5T_C_S1);
        H5Tset_size(tv, H5T_VARIABLE);
        H5Tset_cset(tv, H5T_CSET_UTF8);
        const char *bf = "bfloat16";
        a = H5Acreate2(d, "dtype", tv, sp, H5P_DEFAULT, H5P_DEFAULT);
        CHECK(H5Awrite(a, tv, &bf) >= 0, "vlen dtype attr");
        H5Aclose(a);
        H5Dclose(d);
        H5Tclose(t1); H5Tclose(t2); H5Tclose(tv);
        H5Sclose(sp);
        H5Fclose(f);
    });
    sv_store s;
    sv_rc rc = sv_store_open(&s, path, MPI_COMM_WORLD);
    CHECK(rc == SV_OK, "strings: open: %s", sv_errmsg());
    if (rc != SV_OK) return;
    CHECK(s.dtype == SV_STORE_BF16_U16, "strings: dtype");
    CHECK(s.model_name && strcmp(s.model_name, "pyth") == 0, "strings: model_name '%s'", s.model_name ? s.model_name : "(null)");
    CHECK(s.hook_name && strcmp(s.hook_name, "hook.x") == 0, "strings: hook_name");
    CHECK(s.dataset_name == NULL, "strings: dataset_name");
    check_rows(&s, SV_STORE_BF16_U16, 3, 20, "strings");
    sv_store_close(&s);
}

/* ---------------- malformed files ---------------- */

/* Create a file with an /activations dataset of the given type and shape,
 * plus attribute context_size = CTX. */
static void raw_file(const char *path, hid_t ftype, int ndims, hsize_t d0, hsize_t d1, hid_t dcpl)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {d0, d1};
    hid_t sp = H5Screate_simple(ndims, dims, NULL);
    hid_t d = H5Dcreate2(f, "/activations", ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0, "raw_file %s", path);
    H5Dclose(d);
    H5Sclose(sp);
    hid_t as = H5Screate(H5S_SCALAR);
    int64_t cs = CTX;
    hid_t a = H5Acreate2(f, "context_size", H5T_STD_I64LE, as, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &cs);
    H5Aclose(a);
    H5Sclose(as);
    H5Fclose(f);
}

static void expect_fail(const char *path, const char *frag)
{
    sv_store s;
    sv_rc rc = sv_store_open(&s, path, MPI_COMM_WORLD);
    const char *msg = sv_errmsg();
    CHECK(rc == SV_EINPUT, "%s: expected SV_EINPUT, got %d (%s)", path, (int)rc, msg);
    CHECK(strstr(msg, frag) != NULL, "%s: message '%s' lacks '%s'", path, msg, frag);
    CHECK(strncmp(msg, path, strlen(path)) == 0, "message '%s' does not start with the path", msg);
    CHECK(strchr(msg, '\n') == NULL, "message '%s' is not one line", msg);
    CHECK(s.file <= 0 && s.dset <= 0 && s.seq_offsets == NULL && s.path == NULL,
          "%s: failed open left state behind", path);
    sv_store_close(&s); /* must be harmless */
    /* Every rank must have got here: a hang would time the test out, and a
     * rank that succeeded would show up in the reduction. */
    int mine = rc == SV_EINPUT, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK(all == nproc, "%s: only %d of %d ranks failed", path, all, nproc);
}

static void test_errors(void)
{
    const char *p;

    expect_fail(tpath("missing.h5"), "cannot open: No such file or directory");

    p = tpath("text.h5");
    ON_ROOT({ FILE *fp = fopen(p, "w"); fputs("not hdf5 at all\n", fp); fclose(fp); });
    expect_fail(p, "not an HDF5 file");

    p = tpath("noact.h5");
    ON_ROOT({
        hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t g = H5Gcreate2(f, "/other", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Gclose(g);
        H5Fclose(f);
    });
    expect_fail(p, "/activations: missing");

    p = tpath("rank1.h5");
    ON_ROOT(raw_file(p, H5T_IEEE_F32LE, 1, NT * DI, 0, H5P_DEFAULT));
    expect_fail(p, "/activations: expected 2-D");

    p = tpath("int.h5");
    ON_ROOT(raw_file(p, H5T_STD_I32LE, 2, NT, DI, H5P_DEFAULT));
    expect_fail(p, "/activations: integer data without attribute");

    p = tpath("u16_f16tag.h5");
    ON_ROOT({
        raw_file(p, H5T_STD_U16LE, 2, NT, DI, H5P_DEFAULT);
        hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
        hid_t d = H5Dopen2(f, "/activations", H5P_DEFAULT);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 7);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(d, "dtype", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, "float16");
        H5Aclose(a); H5Sclose(sp); H5Tclose(t); H5Dclose(d); H5Fclose(f);
    });
    expect_fail(p, "attribute dtype");

    p = tpath("f64.h5");
    ON_ROOT(raw_file(p, H5T_IEEE_F64LE, 2, NT, DI, H5P_DEFAULT));
    expect_fail(p, "/activations: unsupported");

    p = tpath("f32be.h5");
    ON_ROOT(raw_file(p, H5T_IEEE_F32BE, 2, NT, DI, H5P_DEFAULT));
    expect_fail(p, "big-endian");

    p = tpath("filtered.h5");
    ON_ROOT({
        hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
        hsize_t c[2] = {4, 4};
        H5Pset_chunk(pl, 2, c);
        H5Pset_shuffle(pl);
        raw_file(p, H5T_IEEE_F32LE, 2, NT, DI, pl);
        H5Pclose(pl);
    });
    expect_fail(p, "filter");

    p = tpath("badtok.h5");
    ON_ROOT({
        sv_store_wopts o = base_opts(SV_STORE_F32);
        o.token_ids = TOK;
        write_or_die(p, X, NT, DI, &o);
        hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
        H5Ldelete(f, "/token_ids", H5P_DEFAULT);
        hsize_t n = NT - 1;
        hid_t sp = H5Screate_simple(1, &n, NULL);
        hid_t d = H5Dcreate2(f, "/token_ids", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5Dclose(d); H5Sclose(sp); H5Fclose(f);
    });
    expect_fail(p, "/token_ids: length 59, expected n_tokens = 60");

    static const int64_t off_start[] = {1, 7, 60}, off_inc[] = {0, 30, 30, 60}, off_end[] = {0, 30, 59};
    struct { const char *name; const int64_t *o; int64_t n; const char *frag; } bad[] = {
        {"off_start.h5", off_start, 2, "/sequence_offsets: must start at 0"},
        {"off_inc.h5", off_inc, 3, "/sequence_offsets: not strictly increasing"},
        {"off_end.h5", off_end, 2, "/sequence_offsets: ends at 59, expected n_tokens = 60"},
    };
    for (int i = 0; i < 3; i++) {
        p = tpath(bad[i].name);
        sv_store_wopts o = base_opts(SV_STORE_F16);
        o.context_size = 0;
        o.seq_offsets = bad[i].o;
        o.n_seq = bad[i].n;
        ON_ROOT(write_or_die(p, X, NT, DI, &o));
        expect_fail(p, bad[i].frag);
    }

    p = tpath("ctx.h5");
    ON_ROOT({
        sv_store_wopts o = base_opts(SV_STORE_BF16);
        o.context_size = 7;
        write_or_die(p, X, NT, DI, &o);
    });
    expect_fail(p, "context_size: 7 does not divide n_tokens = 60");

    p = tpath("zero.h5");
    ON_ROOT({
        sv_store_wopts o = base_opts(SV_STORE_F32);
        write_or_die(p, X, 0, DI, &o);
    });
    expect_fail(p, "/activations: zero tokens");

    p = tpath("zero_chunked.h5");
    ON_ROOT({
        sv_store_wopts o = base_opts(SV_STORE_F16);
        o.chunked = 1;
        o.chunk_rows = 7;
        o.chunk_cols = 5;
        write_or_die(p, X, 0, DI, &o);
    });
    expect_fail(p, "/activations: zero tokens");

    p = tpath("noseq.h5");
    ON_ROOT({
        sv_store_wopts o = base_opts(SV_STORE_F32);
        o.omit_sequences = 1;
        write_or_die(p, X, NT, DI, &o);
    });
    expect_fail(p, "no sequence structure: need /sequence_offsets or root attribute context_size");

    /* Writer argument checks. */
    if (rank == 0) {
        sv_store_wopts o = base_opts(SV_STORE_F32);
        o.seq_offsets = OFFS;
        o.n_seq = 5; /* and context_size: both given */
        CHECK(sv_store_write(tpath("both.h5"), X, NT, DI, &o) == SV_EINPUT, "writer accepted two sequence forms");
    }

    /* A zeroed (calloc'ed) struct closes harmlessly. */
    sv_store z;
    memset(&z, 0, sizeof z);
    sv_store_close(&z);
}

/* ---------------- info ---------------- */

static void test_info(void)
{
    const char *path = tpath("rt_0_1_1_0.h5"); /* f32, chunked 7x5, offsets, tokens */
    if (rank != 0) return;
    FILE *fp = tmpfile();
    sv_rc rc = sv_info_print(path, fp);
    CHECK(rc == SV_OK, "info: %s", sv_errmsg());
    char buf[8192];
    rewind(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    const char *want[] = {"n_tokens", "60", "d_in", "13", "float32", "chunked", "7 x 5", "sequence_offsets",
                          "5 sequences", "min 1", "median 12", "max 27", "token_ids", "special_token_ids",
                          "masked", "12", "gpt2-small", "blocks.6.hook_resid_post", "openwebtext"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        CHECK(strstr(buf, want[i]) != NULL, "info output lacks '%s':\n%s", want[i], buf);

    fp = tmpfile();
    rc = sv_info_print(tpath("noseq.h5"), fp);
    fclose(fp);
    CHECK(rc == SV_EINPUT && strstr(sv_errmsg(), "no sequence structure"), "info on a bad store: %s", sv_errmsg());

    /* An SAE directory: cfg.json + safetensors. */
    const char *sd = tpath("sae");
    CHECK(mkdir(sd, 0755) == 0, "mkdir %s", sd);
    FILE *cf = fopen(tpath("sae/cfg.json"), "w");
    fputs("{\"architecture\": \"topk\", \"d_in\": 3, \"d_sae\": 4, \"k\": 2, "
          "\"apply_b_dec_to_input\": false, \"normalize_activations\": \"none\"}", cf);
    fclose(cf);
    static const double w[12] = {0};
    sv_st_wtensor t[2] = {{"W_enc", SV_DT_BF16, 2, {3, 4}, w}, {"b_dec", SV_DT_F32, 1, {3}, w}};
    rc = sv_st_write(tpath("sae/sae_weights.safetensors"), t, 2);
    CHECK(rc == SV_OK, "st_write: %s", sv_errmsg());
    fp = tmpfile();
    rc = sv_info_print(sd, fp);
    CHECK(rc == SV_OK, "info sae: %s", sv_errmsg());
    rewind(fp);
    n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    const char *want2[] = {"topk", "d_in", "d_sae", "k ", "apply_b_dec_to_input  false", "normalization", "W_enc",
                           "BF16", "[3, 4]", "b_dec", "F32", "[3]"};
    for (size_t i = 0; i < sizeof want2 / sizeof *want2; i++)
        CHECK(strstr(buf, want2[i]) != NULL, "info sae output lacks '%s':\n%s", want2[i], buf);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nproc);

    if (rank == 0) {
        const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(dir, sizeof dir, "%s/sv_test_store_XXXXXX", base);
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);

    make_data();
    check_reference();
    for (int dt = 0; dt < 4; dt++)
        for (int chunked = 0; chunked < 2; chunked++)
            for (int offs = 0; offs < 2; offs++)
                test_roundtrip((sv_store_dtype)dt, chunked, offs, chunked != offs || dt == 0, 0);
    for (int dt = 0; dt < 4; dt++) test_roundtrip((sv_store_dtype)dt, 1, dt % 2, 1, 1);
    test_fixed_strings();
    test_errors();
    test_info();

    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total == 0) {
            char cmd[512];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
            if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
        } else {
            fprintf(stderr, "test_store: %d failures on %d ranks (files kept in %s)\n", total, nproc, dir);
        }
        if (total == 0) printf("test_store: all checks passed on %d ranks\n", nproc);
    }
    MPI_Finalize();
    return total == 0 ? 0 : 1;
}
