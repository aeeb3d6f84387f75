/* Data for the feature analysis memory check (README, Feature analysis):
 * feat_mem_gen DIR TOKENS D_IN D_SAE BUDGET_MB writes DIR/store.h5 (random
 * activations of unit variance, sequences of 128 tokens, token ids), a
 * top-k SAE (k 64) DIR/sae and DIR/config.json with top_examples 20 and
 * memory_budget_mb BUDGET_MB. Then: mpirun -np 2 saeval run DIR/config.json,
 * peak RSS per rank from /usr/bin/time -v or VmHWM. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/store.h"
#include "synthwrite.h"
#define TEST_NAME "feat_mem_gen"
#include "testutil.h"

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
    rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17;
    return (double)(rs >> 11) * 0x1.0p-53;
}

int main(int argc, char **argv)
{
    if (argc != 6) die("usage: feat_mem_gen DIR TOKENS D_IN D_SAE BUDGET_MB", NULL);
    const char *dir = argv[1];
    const int64_t n = atoll(argv[2]), d = atoll(argv[3]), m = atoll(argv[4]), budget = atoll(argv[5]);
    if (n < 128 || d < 1 || m < 64 || budget < 1) die("bad sizes", NULL);
    mkdirs(dir);
    char p[4096];
    float *x = xcalloc((size_t)(n * d), sizeof *x);
    int64_t *ids = xcalloc((size_t)n, sizeof *ids);
    for (int64_t i = 0; i < n * d; i++) x[i] = (float)((2 * urand() - 1) * 1.7320508);
    for (int64_t t = 0; t < n; t++) ids[t] = (int64_t)(urand() * 50000);
    sv_store_wopts o;
    memset(&o, 0, sizeof o);
    o.dtype = SV_STORE_F32;
    o.context_size = 128;
    o.token_ids = ids;
    snprintf(p, sizeof p, "%s/store.h5", dir);
    if (sv_store_write(p, x, n, d, &o) != SV_OK) die("store", sv_errmsg());
    free(x);
    free(ids);
    double *We = xcalloc((size_t)(d * m), sizeof *We), *Wd = xcalloc((size_t)(d * m), sizeof *Wd);
    double *be = xcalloc((size_t)m, sizeof *be), *bd = xcalloc((size_t)d, sizeof *bd);
    const double a = sqrt(3.0 / (double)d);
    for (int64_t i = 0; i < d * m; i++) We[i] = (2 * urand() - 1) * a;
    for (int64_t i = 0; i < d * m; i++) Wd[i] = (2 * urand() - 1) * a;
    sv_synth_sae s;
    memset(&s, 0, sizeof s);
    s.architecture = "topk";
    s.d_in = d;
    s.d_sae = m;
    s.k = 64;
    s.W_enc = We; s.b_enc = be; s.W_dec = Wd; s.b_dec = bd;
    snprintf(p, sizeof p, "%s/sae", dir);
    if (sv_synth_write_sae(p, &s) != SV_OK) die("sae", sv_errmsg());
    free(We); free(Wd); free(be); free(bd);
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) die("cannot write", p);
    fprintf(f, "{\"output_dir\": \"%s/out\", \"saes\": [\"%s/sae\"], \"datasets\": [{\"name\": \"mem\", \"path\": \"%s/store.h5\"}], "
               "\"geometry\": false, \"top_examples\": 20, \"memory_budget_mb\": %lld}\n", dir, dir, dir, (long long)budget);
    fclose(f);
    return 0;
}
