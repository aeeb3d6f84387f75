/* safetensors.c: round trips in every dtype, and hand-built malformed
 * files/headers that must each be rejected with SV_EINPUT and a message
 * naming the problem. */
#include "saeval/half.h"
#include "saeval/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fails;
static char dir[64];

#define CHECK(cond, ...)                                            \
    do {                                                            \
        if (!(cond)) {                                              \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);    \
            fprintf(stderr, __VA_ARGS__);                           \
            fprintf(stderr, "\n");                                  \
            fails++;                                                \
        }                                                           \
    } while (0)

static char *tmp_path(const char *name)
{
    static char buf[8][128];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

/* Write a raw file: u64 LE length, header bytes (hlen), data bytes. */
static void write_raw(const char *path, uint64_t hlen_field, const char *hdr, size_t hlen,
                      const void *data, size_t dlen)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); exit(2); }
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen_field >> (8 * i));
    fwrite(b, 1, 8, fp);
    if (hlen) fwrite(hdr, 1, hlen, fp);
    if (dlen) fwrite(data, 1, dlen, fp);
    fclose(fp);
}

/* Expect sv_st_open to fail with SV_EINPUT and a message containing frag
 * (and the file path). */
static void expect_open_fail(const char *path, const char *frag, int line)
{
    sv_st_file f;
    sv_rc rc = sv_st_open(&f, path);
    if (rc != SV_EINPUT || !strstr(sv_errmsg(), frag) || !strstr(sv_errmsg(), path)) {
        fprintf(stderr, "FAIL line %d: open %s: rc=%d msg='%s', want SV_EINPUT and '%s'\n", line, path,
                (int)rc, sv_errmsg(), frag);
        fails++;
    }
    if (rc == SV_OK) sv_st_close(&f);
    CHECK(f.n == 0 && f.t == NULL && f.path == NULL, "line %d: failed open left state behind", line);
}

/* Expect sv_st_parse_header on an exact-size heap copy (no NUL after it)
 * to fail with SV_EINPUT and a message containing frag. */
static void expect_hdr_fail(const char *hdr, uint64_t data_size, const char *frag, int line)
{
    size_t n = strlen(hdr);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, hdr, n);
    sv_st_file f;
    sv_rc rc = sv_st_parse_header(&f, copy, n, data_size, "hdr.safetensors");
    if (rc != SV_EINPUT || !strstr(sv_errmsg(), frag) || !strstr(sv_errmsg(), "hdr.safetensors")) {
        fprintf(stderr, "FAIL line %d: header %s: rc=%d msg='%s', want SV_EINPUT and '%s'\n", line, hdr,
                (int)rc, sv_errmsg(), frag);
        fails++;
    }
    if (rc == SV_OK) sv_st_close(&f);
    free(copy);
}

#define OPEN_FAIL(path, frag) expect_open_fail(path, frag, __LINE__)
#define HDR_FAIL(hdr, dsize, frag) expect_hdr_fail(hdr, dsize, frag, __LINE__)

static void malformed_files(void)
{
    char zeros[64] = {0};

    /* File shorter than 8 bytes. */
    const char *p = tmp_path("short.safetensors");
    FILE *fp = fopen(p, "wb");
    fwrite("abcde", 1, 5, fp);
    fclose(fp);
    OPEN_FAIL(p, "too short");

    /* Absurd header length (beyond the file and beyond 100 MB). */
    p = tmp_path("absurd.safetensors");
    write_raw(p, (uint64_t)1 << 40, "{}      ", 8, NULL, 0);
    OPEN_FAIL(p, "header length");
    write_raw(p, UINT64_MAX, "{}      ", 8, NULL, 0);
    OPEN_FAIL(p, "header length");
    /* Header length just past the end of the file. */
    write_raw(p, 9, "{}      ", 8, NULL, 0);
    OPEN_FAIL(p, "header length");
    /* Over 100 MB even though the file would be big enough: sparse file. */
    p = tmp_path("big.safetensors");
    write_raw(p, 100000001, "{}", 2, NULL, 0);
    CHECK(truncate(p, 8 + 100000001 + 16) == 0, "truncate");
    OPEN_FAIL(p, "header length");
    unlink(p);

    /* Zero-length header, non-JSON, not an object. */
    p = tmp_path("bad.safetensors");
    write_raw(p, 0, "", 0, NULL, 0);
    OPEN_FAIL(p, "not valid JSON");
    write_raw(p, 8, "{\"a\": tr", 8, NULL, 0);
    OPEN_FAIL(p, "not valid JSON");
    write_raw(p, 8, "[1, 2]  ", 8, NULL, 0);
    OPEN_FAIL(p, "not a JSON object");

    /* Offsets past the data block, checked against the real file size. */
    const char *h = "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    write_raw(p, strlen(h), h, strlen(h), zeros, 12);
    OPEN_FAIL(p, "out of range");
    write_raw(p, strlen(h), h, strlen(h), zeros, 16);
    sv_st_file f;
    CHECK(sv_st_open(&f, p) == SV_OK, "exact-size file rejected: %s", sv_errmsg());
    CHECK(f.n == 1 && f.data_start == 8 + strlen(h) && f.file_size == 8 + strlen(h) + 16,
          "open: n=%d data_start=%llu file_size=%llu", f.n, (unsigned long long)f.data_start,
          (unsigned long long)f.file_size);
    sv_st_close(&f);

    /* Missing file. */
    OPEN_FAIL(tmp_path("nonexistent.safetensors"), "cannot open");
}

static void malformed_headers(void)
{
    const uint64_t D = 1000;
    HDR_FAIL("", D, "not valid JSON");
    HDR_FAIL("{\"a\":", D, "not valid JSON");
    HDR_FAIL("{} x", D, "not valid JSON"); /* trailing junk */
    HDR_FAIL("\"str\"", D, "not a JSON object");
    HDR_FAIL("42", D, "not a JSON object");
    HDR_FAIL("{\"w\": [1]}", D, "'w': entry is not a JSON object");
    HDR_FAIL("{\"w\": {\"shape\":[1],\"data_offsets\":[0,4]}}", D, "'w': dtype: missing");
    HDR_FAIL("{\"w\": {\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", D, "'w': dtype");
    HDR_FAIL("{\"w\": {\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", D, "'I8'");
    HDR_FAIL("{\"w\": {\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", D, "'f32'");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", D, "'w': shape");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", D, "'w': shape");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", D, "non-negative integer");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", D, "non-negative integer");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", D, "non-negative integer");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", D,
             "9 dimensions");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", D,
             "overflows");
    HDR_FAIL("{\"w\": {\"dtype\":\"F64\",\"shape\":[1099511627776,1048576],\"data_offsets\":[0,4]}}", D,
             "overflows"); /* 2^60 elements x 8 bytes */
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", D, "non-negative integer");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1]}}", D, "'w': data_offsets");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", D, "'w': data_offsets");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", D, "'w': data_offsets");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", D, "'w': data_offsets");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0,\"b\":4}}}", D,
             "'w': data_offsets");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", D, "begin 8 > end 4");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[996,1004]}}", D, "out of range");
    HDR_FAIL("{\"w\": {\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", D, "does not match shape");
    HDR_FAIL("{\"w\": {\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", D, "does not match shape");
    HDR_FAIL("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             " \"b\": {\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[4,12]}}", D, "overlaps");
    /* Overlap found regardless of the order in the header. */
    HDR_FAIL("{\"b\": {\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},"
             " \"c\": {\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[20,28]},"
             " \"a\": {\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", D, "overlaps");
    HDR_FAIL("{\"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             " \"a\": {\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", D, "duplicate");

    /* Valid: metadata ignored, gaps allowed, empty tensors, trailing padding. */
    const char *ok = "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"b\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[16,24]},"
                     "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]},"
                     "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}    ";
    sv_st_file f;
    sv_rc rc = sv_st_parse_header(&f, ok, strlen(ok), 24, "ok");
    CHECK(rc == SV_OK, "valid header rejected: %s", sv_errmsg());
    if (rc == SV_OK) {
        CHECK(f.n == 3, "n = %d, want 3 (metadata skipped)", f.n);
        const sv_st_tensor *b = sv_st_find(&f, "b"), *e = sv_st_find(&f, "e"), *s = sv_st_find(&f, "s");
        CHECK(b && b->dtype == SV_DT_F16 && b->ndim == 2 && b->shape[0] == 2 && b->shape[1] == 2 &&
                  b->begin == 16 && b->end == 24 && sv_st_numel(b) == 4, "tensor b parsed wrong");
        CHECK(e && sv_st_numel(e) == 0, "tensor e parsed wrong");
        CHECK(s && s->ndim == 0 && sv_st_numel(s) == 1 && s->dtype == SV_DT_F64, "scalar s parsed wrong");
        CHECK(!sv_st_find(&f, "__metadata__") && !sv_st_find(&f, "x"), "find of absent name succeeded");
        sv_st_close(&f);
    }
}

/* Every prefix of a valid header, and byte-mutated copies of it, must be
 * handled without crashing (run under ASan/valgrind to check for leaks). */
static void fuzz_smoke(void)
{
    const char *ok = "{\"__metadata__\":{\"k\":\"v\"},"
                     "\"W_enc\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                     "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]}}";
    size_t n = strlen(ok);
    int accepted = 0;
    for (size_t len = 0; len <= n; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, ok, len);
        sv_st_file f;
        sv_rc rc = sv_st_parse_header(&f, copy, len, 32, "fuzz");
        CHECK(rc == SV_OK || rc == SV_EINPUT, "prefix %zu: rc %d", len, (int)rc);
        if (rc == SV_OK) { accepted++; sv_st_close(&f); }
        free(copy);
    }
    CHECK(accepted == 1, "%d prefixes accepted, want only the full header", accepted);

    const char alphabet[] = "{}[]\":,0123456789-.eE \\uFBx";
    unsigned seed = 12345;
    char *buf = malloc(n);
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, ok, n);
        int muts = 1 + it % 4;
        for (int m = 0; m < muts; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            buf[pos] = (it & 1) ? alphabet[(seed >> 8) % (sizeof alphabet - 1)] : (char)(seed >> 16);
        }
        sv_st_file f;
        sv_rc rc = sv_st_parse_header(&f, buf, n, 32, "fuzz");
        CHECK(rc == SV_OK || rc == SV_EINPUT, "mutation %d: rc %d", it, (int)rc);
        if (rc == SV_OK) sv_st_close(&f);
    }
    free(buf);
}

static int same_f32(float a, float b) { return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)); }

static void round_trip(void)
{
    enum { N1 = 7, N2 = 100003 };
    double v[N1] = {0.1, -1.0 / 3.0, 65504.0, 1e5, -0.0, 1e-8, 3.140625};
    double *big = malloc(N2 * sizeof *big);
    for (int i = 0; i < N2; i++) big[i] = sin(i * 0.001) * (1 + i % 7);
    const char *weird = "we\"ird\\name\n";
    sv_st_wtensor w[] = {
        {"f32", SV_DT_F32, 1, {N1}, v},
        {"f16", SV_DT_F16, 1, {N1}, v},
        {"bf16", SV_DT_BF16, 1, {N1}, v},
        {"f64", SV_DT_F64, 1, {N1}, v},
        {"big_f16", SV_DT_F16, 3, {7, 1, 14286}, big + 1}, /* 100002 elements */
        {"big_bf16", SV_DT_BF16, 1, {N2}, big},
        {"big_f64", SV_DT_F64, 1, {N2}, big},
        {"empty", SV_DT_F32, 2, {0, 3}, NULL},
        {"scalar", SV_DT_F32, 0, {0}, v + 1},
        {weird, SV_DT_F32, 1, {2}, v},
    };
    int nw = (int)(sizeof w / sizeof w[0]);
    const char *p = tmp_path("rt.safetensors");
    sv_rc rc = sv_st_write(p, w, nw);
    CHECK(rc == SV_OK, "write: %s", sv_errmsg());
    if (rc != SV_OK) { free(big); return; }
    char tmpname[64];
    snprintf(tmpname, sizeof tmpname, "rt.safetensors.tmp.%ld", (long)getpid());
    CHECK(access(tmp_path(tmpname), F_OK) != 0, "temporary file left behind");

    /* Header: multiple of 8, padded with spaces, valid JSON. */
    FILE *fp = fopen(p, "rb");
    unsigned char lb[8];
    CHECK(fp && fread(lb, 1, 8, fp) == 8, "cannot reread header length");
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | lb[i];
    CHECK(hl % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)hl);
    char *hdr = malloc(hl + 1);
    CHECK(fread(hdr, 1, hl, fp) == hl, "short header");
    hdr[hl] = 0;
    CHECK(hdr[0] == '{', "header does not start with '{'");
    size_t last = strlen(hdr);
    while (last > 0 && hdr[last - 1] == ' ') last--;
    CHECK(last > 0 && hdr[last - 1] == '}' && hl - last < 8, "header padding wrong: '%s'", hdr);
    free(hdr);
    fclose(fp);

    sv_st_file f;
    rc = sv_st_open(&f, p);
    CHECK(rc == SV_OK, "open: %s", sv_errmsg());
    if (rc != SV_OK) { free(big); return; }
    CHECK(f.n == nw, "n = %d want %d", f.n, nw);
    CHECK(f.data_start == 8 + hl, "data_start %llu", (unsigned long long)f.data_start);
    for (int k = 0; k < nw; k++) {
        const sv_st_tensor *t = sv_st_find(&f, w[k].name);
        CHECK(t != NULL, "tensor '%s' missing", w[k].name);
        if (!t) continue;
        CHECK(t->dtype == w[k].dtype && t->ndim == w[k].ndim, "'%s': dtype/ndim wrong", w[k].name);
        for (int d = 0; d < t->ndim; d++)
            CHECK(t->shape[d] == w[k].shape[d], "'%s': shape[%d]", w[k].name, d);
        size_t n = (size_t)sv_st_numel(t);
        float *o32 = malloc((n ? n : 1) * sizeof *o32);
        double *o64 = malloc((n ? n : 1) * sizeof *o64);
        for (size_t i = 0; i < n; i++) { o32[i] = NAN; o64[i] = NAN; }
        CHECK(sv_st_read_f32(&f, t, o32) == SV_OK, "'%s': read_f32: %s", w[k].name, sv_errmsg());
        CHECK(sv_st_read_f64(&f, t, o64) == SV_OK, "'%s': read_f64: %s", w[k].name, sv_errmsg());
        int bad = 0;
        for (size_t i = 0; i < n; i++) {
            double x = w[k].data[i];
            float want32;
            double want64;
            switch (w[k].dtype) {
            case SV_DT_F32: want32 = (float)x; want64 = want32; break;
            case SV_DT_F16: want32 = sv_f16_to_f32(sv_f32_to_f16((float)x)); want64 = want32; break;
            case SV_DT_BF16: want32 = sv_bf16_to_f32(sv_f32_to_bf16((float)x)); want64 = want32; break;
            default: want32 = (float)x; want64 = x; break;
            }
            if (!same_f32(o32[i], want32) || !(o64[i] == want64 || (isnan(o64[i]) && isnan(want64)))) {
                if (bad++ < 3)
                    fprintf(stderr, "FAIL '%s'[%zu]: read %a / %a, want %a / %a\n", w[k].name, i, o32[i],
                            o64[i], want32, want64);
            }
        }
        fails += bad;
        free(o32);
        free(o64);
    }
    /* Spot checks that the rounding really happened. */
    const sv_st_tensor *t = sv_st_find(&f, "f16");
    float o[N1];
    if (t && sv_st_read_f32(&f, t, o) == SV_OK) {
        CHECK(o[0] == 0x1.998p-4f, "f16(0.1) read as %a", o[0]);
        CHECK(o[2] == 65504.0f && isinf(o[3]), "f16 max/overflow read as %a %a", o[2], o[3]);
        CHECK(o[4] == 0 && signbit(o[4]), "f16 -0 lost its sign");
    }
    sv_st_close(&f);
    sv_st_close(&f); /* idempotent */

    /* Empty file list is still a valid file. */
    p = tmp_path("empty.safetensors");
    CHECK(sv_st_write(p, NULL, 0) == SV_OK, "write empty: %s", sv_errmsg());
    CHECK(sv_st_open(&f, p) == SV_OK && f.n == 0, "open empty: %s", sv_errmsg());
    sv_st_close(&f);

    /* File truncated after a valid header: reads must fail, not return junk. */
    p = tmp_path("rt.safetensors");
    rc = sv_st_open(&f, p);
    CHECK(rc == SV_OK, "reopen: %s", sv_errmsg());
    if (rc == SV_OK) {
        CHECK(truncate(p, (off_t)f.data_start + 4) == 0, "truncate");
        const sv_st_tensor *b = sv_st_find(&f, "big_f64");
        double *o64 = malloc(N2 * sizeof *o64);
        CHECK(b && sv_st_read_f64(&f, b, o64) != SV_OK, "read past truncated end succeeded");
        free(o64);
        sv_st_close(&f);
        OPEN_FAIL(p, "out of range");
    }
    free(big);
}

static void names(void)
{
    CHECK(!strcmp(sv_dtype_name(SV_DT_F32), "F32") && !strcmp(sv_dtype_name(SV_DT_F16), "F16") &&
              !strcmp(sv_dtype_name(SV_DT_BF16), "BF16") && !strcmp(sv_dtype_name(SV_DT_F64), "F64"),
          "sv_dtype_name");
}

static int rm_file(const char *name)
{
    return unlink(tmp_path(name));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/sv_st_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    names();
    malformed_files();
    malformed_headers();
    fuzz_smoke();
    round_trip();
    const char *files[] = {"short.safetensors", "absurd.safetensors", "bad.safetensors", "rt.safetensors",
                           "empty.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) rm_file(files[i]);
    if (rmdir(dir) != 0) perror(dir);
    if (fails) {
        fprintf(stderr, "test_safetensors: %d check(s) failed\n", fails);
        return 1;
    }
    printf("test_safetensors: ok\n");
    return 0;
}
