/* Format readers (zip, npy/npz, restricted unpickler, torch .pt) against
 * files written by independent writers (tests/formats_gen.py: numpy's own
 * savez/savez_compressed, Python's pickle+zipfile mimicking torch.save,
 * and torch.save itself when installed).
 *
 * usage: test_formats DIR   (DIR holds the generator's output)
 *   refs.txt  every good array/tensor with its exact values: compared with
 *             what the readers return, from the file and from memory;
 *   cases.txt every bad input: must fail with exit-2 errors containing the
 *             expected text and the file's name;
 * and no "pwned_*" marker may exist afterwards (the evil pickles would
 * create one if anything in them ran). */
#define TEST_NAME "test_formats"
#include "testutil.h"
#include "saeval/npy.h"
#include "saeval/pickle.h"
#include "saeval/torchfile.h"
#include "saeval/zipfile.h"

#include <dirent.h>
#include <string.h>

static const char *dir;

static char *path_of(const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = xcalloc(n, 1);
    snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static char *slurp(const char *path, size_t *len)
{
    char *buf;
    if (sv_read_file(path, &buf, len) != SV_OK) die("cannot read", sv_errmsg());
    return buf;
}

/* One container opened either from its path or from memory. */
typedef struct {
    int is_pt;
    sv_npz npz;
    sv_torchfile pt;
    char *mem;
} container;

static sv_rc copen(container *c, const char *kind, const char *file, int from_mem)
{
    memset(c, 0, sizeof *c);
    char *p = path_of(file);
    sv_rc rc;
    c->is_pt = strcmp(kind, "npz") != 0;
    if (from_mem) {
        size_t len;
        c->mem = slurp(p, &len);
        rc = c->is_pt ? sv_pt_open_mem(&c->pt, c->mem, len, p) : sv_npz_open_mem(&c->npz, c->mem, len, p);
    } else {
        rc = c->is_pt ? sv_pt_open(&c->pt, p) : sv_npz_open(&c->npz, p);
    }
    free(p);
    return rc;
}

static void cclose(container *c)
{
    if (c->is_pt) sv_pt_close(&c->pt);
    else sv_npz_close(&c->npz);
    free(c->mem);
}

static const char *npz_dtype(sv_dtype d)
{
    return d == SV_DT_F16 ? "f2" : d == SV_DT_F32 ? "f4" : d == SV_DT_F64 ? "f8" : "?";
}

static int n_values_checked;

/* "npz|pt FILE NAME DTYPE NDIM d0.. NUMEL v0 v1 ..." */
static void check_ref(char *line, int from_mem)
{
    char *save, *kind = strtok_r(line, " \n", &save), *file = strtok_r(NULL, " \n", &save);
    char *name = strtok_r(NULL, " \n", &save), *dt = strtok_r(NULL, " \n", &save);
    CHECK(kind && file && name && dt, "bad refs line");
    container c;
    CHECK(copen(&c, kind, file, from_mem) == SV_OK, "%s: %s", file, sv_errmsg());
    int ndim = atoi(strtok_r(NULL, " \n", &save));
    int64_t shape[8];
    for (int i = 0; i < ndim; i++) shape[i] = atoll(strtok_r(NULL, " \n", &save));
    int64_t numel = atoll(strtok_r(NULL, " \n", &save));
    double *ref = xcalloc((size_t)numel, sizeof *ref);
    for (int64_t i = 0; i < numel; i++) {
        char *tok = strtok_r(NULL, " \n", &save);
        CHECK(tok, "%s %s: %lld values expected", file, name, (long long)numel);
        ref[i] = strtod(tok, NULL);
    }
    double *got = xcalloc((size_t)numel, sizeof *got);
    float *gotf = xcalloc((size_t)numel, sizeof *gotf);
    if (!c.is_pt) {
        const sv_npz_array *a = sv_npz_find(&c.npz, name);
        CHECK(a, "%s: array %s missing", file, name);
        CHECK(strcmp(npz_dtype(a->h.dtype), dt) == 0, "%s %s: dtype %s, want %s", file, name, npz_dtype(a->h.dtype), dt);
        CHECK(a->h.ndim == ndim, "%s %s: ndim %d, want %d", file, name, a->h.ndim, ndim);
        for (int i = 0; i < ndim; i++) CHECK(a->h.shape[i] == shape[i], "%s %s: dim %d", file, name, i);
        CHECK((int64_t)a->h.numel == numel, "%s %s: numel", file, name);
        CHECK(sv_npz_read_f64(&c.npz, a, got) == SV_OK, "%s", sv_errmsg());
        CHECK(sv_npz_read_f32(&c.npz, a, gotf) == SV_OK, "%s", sv_errmsg());
    } else {
        const sv_pt_tensor *t = sv_pt_find(&c.pt, name);
        CHECK(t, "%s: tensor %s missing", file, name);
        CHECK(strcmp(sv_tdtype_name(t->dtype), dt) == 0, "%s %s: dtype %s, want %s", file, name, sv_tdtype_name(t->dtype), dt);
        CHECK(t->ndim == ndim, "%s %s: ndim %d, want %d", file, name, t->ndim, ndim);
        for (int i = 0; i < ndim; i++) CHECK(t->shape[i] == shape[i], "%s %s: dim %d", file, name, i);
        CHECK(t->numel == numel && t->contiguous, "%s %s: numel/contiguous", file, name);
        CHECK(sv_pt_read_f64(&c.pt, t, got) == SV_OK, "%s", sv_errmsg());
        CHECK(sv_pt_read_f32(&c.pt, t, gotf) == SV_OK, "%s", sv_errmsg());
    }
    for (int64_t i = 0; i < numel; i++) {
        CHECK(got[i] == ref[i], "%s %s[%lld]: %.17g, want %.17g", file, name, (long long)i, got[i], ref[i]);
        CHECK(gotf[i] == (float)ref[i], "%s %s[%lld] as float: %.9g, want %.9g", file, name, (long long)i, gotf[i], (float)ref[i]);
        n_values_checked++;
    }
    free(ref);
    free(got);
    free(gotf);
    cclose(&c);
}

/* "ptitem FILE NAME TYPE VALUE" and "ptint FILE NAME DTYPE N v0 v1 ..." */
static void check_item(char *line)
{
    char *save, *kind = strtok_r(line, " \n", &save), *file = strtok_r(NULL, " \n", &save);
    char *name = strtok_r(NULL, " \n", &save), *type = strtok_r(NULL, " \n", &save);
    char *val = strtok_r(NULL, " \n", &save);
    container c;
    CHECK(copen(&c, "pt", file, 0) == SV_OK, "%s: %s", file, sv_errmsg());
    if (strcmp(kind, "ptint") == 0) {
        const sv_pt_tensor *t = sv_pt_find(&c.pt, name);
        CHECK(t && strcmp(sv_tdtype_name(t->dtype), type) == 0, "%s: int tensor %s", file, name);
        int64_t n = atoll(val);
        CHECK(t->numel == n, "%s: %s has %lld values", file, name, (long long)t->numel);
        int64_t *got = xcalloc((size_t)n, sizeof *got);
        CHECK(sv_pt_read_i64(&c.pt, t, got) == SV_OK, "%s", sv_errmsg());
        for (int64_t i = 0; i < n; i++) {
            char *tok = strtok_r(NULL, " \n", &save);
            CHECK(tok && got[i] == atoll(tok), "%s %s[%lld] = %lld", file, name, (long long)i, (long long)got[i]);
        }
        float tmp;
        CHECK(t->numel < 1 || sv_pt_read_f32(&c.pt, t, &tmp) == SV_EINPUT, "%s: int tensor read as float", name);
        free(got);
    } else {
        const sv_pt_item *it = sv_pt_item_find(&c.pt, name);
        CHECK(it, "%s: item %s missing", file, name);
        const sv_pk_value *v = it->v;
        if (strcmp(type, "str") == 0) CHECK(v->type == SV_PK_STR && strcmp(v->u.str.s, val) == 0, "%s: %s", file, name);
        else if (strcmp(type, "int") == 0) CHECK(v->type == SV_PK_INT && v->u.i == atoll(val), "%s: %s", file, name);
        else if (strcmp(type, "float") == 0) CHECK(v->type == SV_PK_FLOAT && v->u.f == strtod(val, NULL), "%s: %s", file, name);
        else if (strcmp(type, "bool") == 0) CHECK(v->type == SV_PK_BOOL && v->u.b == atoi(val), "%s: %s", file, name);
        else CHECK(0, "unknown item type %s", type);
    }
    cclose(&c);
}

/* Read every array/tensor: the first error is the result. */
static sv_rc read_all(container *c)
{
    sv_rc rc = SV_OK;
    if (!c->is_pt) {
        for (int i = 0; i < c->npz.n && rc == SV_OK; i++) {
            double *buf = xcalloc((size_t)c->npz.a[i].h.numel, sizeof *buf);
            rc = sv_npz_read_f64(&c->npz, &c->npz.a[i], buf);
            free(buf);
        }
    } else {
        for (int i = 0; i < c->pt.n_tensors && rc == SV_OK; i++) {
            float *buf = xcalloc((size_t)c->pt.t[i].numel, sizeof *buf);
            rc = sv_pt_read_f32(&c->pt, &c->pt.t[i], buf);
            free(buf);
        }
    }
    return rc;
}

static int n_cases;

/* "kind<TAB>file<TAB>open|read<TAB>expected" */
static void check_case(char *line, int from_mem)
{
    char *kind = strtok(line, "\t"), *file = strtok(NULL, "\t"), *stage = strtok(NULL, "\t"),
         *expect = strtok(NULL, "\t\n");
    CHECK(kind && file && stage && expect, "bad cases line");
    sv_clear_error();
    sv_rc rc;
    if (strcmp(kind, "pkl") == 0) {
        char *p = path_of(file);
        size_t len;
        char *buf = slurp(p, &len);
        sv_pickle pk;
        rc = sv_pickle_load(&pk, buf, len, p);
        CHECK(pk.root == NULL && pk.arena == NULL, "%s: failed load left values", file);
        free(buf);
        free(p);
    } else {
        container c;
        rc = copen(&c, kind, file, from_mem);
        if (rc == SV_OK) {
            CHECK(strcmp(stage, "read") == 0, "%s: opened, but should fail with '%s'", file, expect);
            rc = read_all(&c);
            cclose(&c);
        } else {
            CHECK(strcmp(stage, "open") == 0, "%s: open failed (%s), but only reading should", file, sv_errmsg());
            free(c.mem);
        }
    }
    CHECK(rc == SV_EINPUT, "%s: rc %d (want 2, bad input): %s", file, (int)rc, sv_errmsg());
    CHECK(strstr(sv_errmsg(), expect), "%s: message '%s' lacks '%s'", file, sv_errmsg(), expect);
    CHECK(strstr(sv_errmsg(), file), "%s: message '%s' does not name the file", file, sv_errmsg());
    n_cases++;
}

static void for_lines(const char *file, const char *prefix, void (*fn)(char *, int), int arg)
{
    char *p = path_of(file);
    FILE *fp = fopen(p, "r");
    if (!fp) die("cannot open", p);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, fp) > 0)
        if (!prefix || strncmp(line, prefix, strlen(prefix)) == 0) fn(line, arg);
    free(line);
    fclose(fp);
    free(p);
}

static void ref_line(char *line, int from_mem)
{
    if (strncmp(line, "npz ", 4) == 0 || strncmp(line, "pt ", 3) == 0) check_ref(line, from_mem);
    else if (!from_mem) check_item(line);
}

/* Zip API edges not covered by the files: size limits, lookups. */
static void zip_unit(void)
{
    char *p = path_of("good_savez.npz");
    sv_zip *z;
    CHECK(sv_zip_open(&z, p) == SV_OK, "%s", sv_errmsg());
    CHECK(sv_zip_count(z) == 6, "6 entries");
    const sv_zip_entry *e = sv_zip_find(z, "W_enc.npy");
    CHECK(e && !e->deflated && sv_zip_find(z, "nope") == NULL && sv_zip_entry_at(z, 6) == NULL, "lookup");
    char *buf;
    size_t len;
    CHECK(sv_zip_read(z, e, 10, &buf, &len) == SV_EINPUT && strstr(sv_errmsg(), "at most 10 accepted") &&
              strstr(sv_errmsg(), "W_enc.npy"), "limit: %s", sv_errmsg());
    CHECK(sv_zip_read(z, e, 1 << 20, &buf, &len) == SV_OK && len == e->size && memcmp(buf, "\x93NUMPY", 6) == 0, "read");
    free(buf);
    sv_zip_close(z);
    free(p);
    p = path_of("no_such_file.npz");
    CHECK(sv_zip_open(&z, p) == SV_EINPUT && z == NULL && strstr(sv_errmsg(), "no_such_file.npz"), "missing: %s", sv_errmsg());
    free(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) die("usage: test_formats DIR", NULL);
    dir = argv[1];
    zip_unit();
    for_lines("refs.txt", NULL, ref_line, 0);
    int from_file = n_values_checked;
    for_lines("refs.txt", NULL, ref_line, 1);
    CHECK(n_values_checked == 2 * from_file && from_file > 100, "%d values", n_values_checked);
    for_lines("cases.txt", NULL, check_case, 0);
    int cases_file = n_cases;
    for_lines("cases.txt", "n", check_case, 1); /* npz cases from memory too */
    CHECK(cases_file >= 50, "only %d bad-input cases", cases_file);

    DIR *d = opendir(dir);
    CHECK(d, "opendir");
    for (struct dirent *de; (de = readdir(d));)
        CHECK(strncmp(de->d_name, "pwned_", 6) != 0, "marker %s exists: a pickle payload ran", de->d_name);
    closedir(d);
    printf("test_formats: %d values exact, %d bad inputs refused (%d from memory), no payload ran\n",
           from_file, cases_file, n_cases - cases_file);
    return 0;
}
