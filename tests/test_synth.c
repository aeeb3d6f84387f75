/* sv_synth is deterministic (two runs with one seed give byte-identical
 * files) and what it writes is readable by the config, SAE and store
 * loaders. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saeval/config.h"
#include "saeval/error.h"
#include "saeval/format.h"
#include "saeval/sae.h"
#include "saeval/store.h"
#include "saeval/synth.h"

static const char *const FILES[] = {
    "config.json",
    "stores/in_sample.h5", "stores/oos_domain.h5", "stores/oos_task.h5",
    "saes/std_w512/cfg.json", "saes/std_w512/sae_weights.safetensors",
    "saes/std_w1024/cfg.json", "saes/std_w1024/sae_weights.safetensors",
    "saes/topk_k32_w512/cfg.json", "saes/topk_k32_w512/sae_weights.safetensors",
    "saes/topk_k64_w1024/cfg.json", "saes/topk_k64_w1024/sae_weights.safetensors",
    "saes/topk_k64_w1024/activation_scaler.json",
    "saes/jumprelu_w512/cfg.json", "saes/jumprelu_w512/sae_weights.safetensors",
    "saes/gated_w512/cfg.json", "saes/gated_w512/sae_weights.safetensors",
};
#define N_FILES ((int)(sizeof FILES / sizeof *FILES))
static const char *const DIRS[] = {
    "saes/std_w512", "saes/std_w1024", "saes/topk_k32_w512", "saes/topk_k64_w1024",
    "saes/jumprelu_w512", "saes/gated_w512", "saes", "stores", "",
};

static int fails = 0;
#define CHECK(c, ...) do { if (!(c)) { fails++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static char *path2(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    snprintf(s, n, b[0] ? "%s/%s" : "%s%s", a, b);
    return s;
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static void cleanup(const char *dir)
{
    for (int i = 0; i < N_FILES; i++) { char *p = path2(dir, FILES[i]); remove(p); free(p); }
    for (size_t i = 0; i < sizeof DIRS / sizeof *DIRS; i++) { char *p = path2(dir, DIRS[i]); rmdir(p); free(p); }
}

static void check_parse(const char *dir)
{
    char *cp = path2(dir, "config.json");
    sv_config c;
    sv_rc rc = sv_config_load(&c, cp);
    CHECK(rc == SV_OK, "config: %s", sv_errmsg());
    if (rc == SV_OK) {
        CHECK(c.n_saes == 6 && c.n_datasets == 3, "config: %d saes, %d datasets", c.n_saes, c.n_datasets);
        CHECK(c.precision == 32, "config: precision");
        for (int i = 0; i < c.n_saes; i++) {
            sv_sae s;
            memset(&s, 0, sizeof s);
            rc = sv_sae_load(&s, c.saes[i].path, 32, 0, 0.0);
            CHECK(rc == SV_OK, "sae %s: %s", c.saes[i].path, sv_errmsg());
            if (rc != SV_OK) continue;
            CHECK(s.cfg.d_in == 128, "%s: d_in %lld", c.saes[i].path, (long long)s.cfg.d_in);
            CHECK(s.cfg.d_sae == 512 || s.cfg.d_sae == 1024, "%s: d_sae", c.saes[i].path);
            CHECK(s.cfg.apply_b_dec_to_input == 1, "%s: apply_b_dec_to_input", c.saes[i].path);
            if (s.cfg.arch == SV_ARCH_TOPK) CHECK(s.cfg.k == 32 || s.cfg.k == 64, "%s: k", c.saes[i].path);
            if (s.cfg.arch == SV_ARCH_GATED)
                CHECK(!s.b_enc && s.b_gate && s.r_mag && s.b_mag, "%s: gated tensors", c.saes[i].path);
            if (s.cfg.arch == SV_ARCH_JUMPRELU) CHECK(s.threshold != NULL, "%s: threshold", c.saes[i].path);
            if (s.cfg.normalize == SV_NORM_EXPECTED_AVERAGE_ONLY_IN)
                CHECK(s.scaling_factor > 0 && s.scaling_factor != 1.0, "%s: scaling_factor", c.saes[i].path);
            sv_sae_free(&s);
        }
        for (int i = 0; i < c.n_datasets; i++) {
            sv_store st;
            memset(&st, 0, sizeof st);
            rc = sv_store_open(&st, c.datasets[i].path, MPI_COMM_SELF);
            CHECK(rc == SV_OK, "store %s: %s", c.datasets[i].path, sv_errmsg());
            if (rc != SV_OK) continue;
            CHECK(st.d_in == 128, "%s: d_in", st.path);
            CHECK(st.n_tokens >= 8000 && st.n_tokens <= 16000, "%s: n_tokens %lld", st.path, (long long)st.n_tokens);
            CHECK(st.has_token_ids && st.n_special == 1 && st.special_ids[0] == 1, "%s: token ids", st.path);
            CHECK(st.model_name && strcmp(st.model_name, "synthetic-lm") == 0, "%s: model_name", st.path);
            CHECK(st.seq_offsets[0] == 0 && st.seq_offsets[st.n_seq] == st.n_tokens, "%s: offsets", st.path);
            static const sv_store_dtype want[3] = {SV_STORE_F32, SV_STORE_BF16, SV_STORE_F16};
            CHECK(st.dtype == want[i], "%s: dtype %d", st.path, (int)st.dtype);
            /* Every sequence starts with BOS; no other token is BOS. */
            int64_t *ids = malloc(sizeof(int64_t) * (size_t)st.n_tokens);
            rc = sv_store_read_token_ids(&st, 0, st.n_tokens, ids);
            CHECK(rc == SV_OK, "%s: token ids: %s", st.path, sv_errmsg());
            if (rc == SV_OK) {
                int64_t s = 0, bad = 0;
                for (int64_t t = 0; t < st.n_tokens; t++) {
                    int start = t == st.seq_offsets[s];
                    if (start) s++;
                    bad += start ? ids[t] != 1 : (ids[t] < 2 || ids[t] >= 50000);
                }
                CHECK(bad == 0, "%s: %lld bad token ids", st.path, (long long)bad);
            }
            free(ids);
            float row[2 * 128];
            rc = sv_store_read_rows(&st, 0, 2, row);
            CHECK(rc == SV_OK, "%s: rows: %s", st.path, sv_errmsg());
            if (rc == SV_OK) {
                double n0 = 0, n1 = 0;
                for (int d = 0; d < 128; d++) { n0 += row[d] * row[d]; n1 += row[128 + d] * row[128 + d]; }
                CHECK(n0 > 100.0 * n1, "%s: BOS norm^2 %g vs token %g", st.path, n0, n1);
            }
            sv_store_close(&st);
        }
        sv_config_free(&c);
    }
    free(cp);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !tmp[0]) tmp = "/tmp";
    char d1[512], d2[512];
    snprintf(d1, sizeof d1, "%s/sv_synth_a_XXXXXX", tmp);
    snprintf(d2, sizeof d2, "%s/sv_synth_b_XXXXXX", tmp);
    if (!mkdtemp(d1) || !mkdtemp(d2)) { perror("mkdtemp"); MPI_Abort(MPI_COMM_WORLD, 1); }
    /* The second run also exercises mkdir -p below an existing directory. */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/nested", d2);
    sv_rc rc1 = sv_synth(d1, 12345);
    CHECK(rc1 == SV_OK, "sv_synth 1: %s", sv_errmsg());
    sv_rc rc2 = sv_synth(sub, 12345);
    CHECK(rc2 == SV_OK, "sv_synth 2: %s", sv_errmsg());
    if (rc1 == SV_OK && rc2 == SV_OK) {
        for (int i = 0; i < N_FILES; i++) {
            char *p1 = path2(d1, FILES[i]), *p2 = path2(sub, FILES[i]);
            size_t n1 = 0, n2 = 0;
            char *a = slurp(p1, &n1), *b = slurp(p2, &n2);
            CHECK(a && b, "%s: missing", FILES[i]);
            if (a && b) CHECK(n1 == n2 && memcmp(a, b, n1) == 0, "%s: runs differ (%zu vs %zu bytes)", FILES[i], n1, n2);
            free(a); free(b); free(p1); free(p2);
        }
        check_parse(d1);
    }
    cleanup(d1);
    cleanup(sub);
    rmdir(d2);
    MPI_Finalize();
    if (fails) { fprintf(stderr, "%d failure(s)\n", fails); return 1; }
    printf("test_synth: ok\n");
    return 0;
}
