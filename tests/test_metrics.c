/* The metric table: ids in order, unique JSON paths, table/generalization
 * positions unique; and dead_fraction_below_density on hand-made counts
 * (the e2e cases check it against tests/ref.c on real runs). */
#define TEST_NAME "test_metrics"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "saeval/metrics.h"
#define TU_CHECK 1 /* counting CHECK: report every failure */
#include "testutil.h"


int main(void)
{
    char a[160], b[160];
    for (int i = 0; i < SV_M_COUNT; i++) {
        const sv_metric *r = &sv_metrics[i];
        CHECK((int)r->id == i, "row %d has id %d", i, (int)r->id);
        CHECK(r->group && r->key, "row %d: group and key", i);
        CHECK((r->kind == SV_MK_EXTERNAL || r->kind == SV_MK_HIST) == (r->finalize == NULL), "row %d (%s): finalize iff computed here", i, r->key);
        sv_metric_path(r, a, sizeof a);
        for (int j = 0; j < i; j++) {
            sv_metric_path(&sv_metrics[j], b, sizeof b);
            CHECK(strcmp(a, b) != 0, "rows %d and %d share %s", j, i, a);
            CHECK(!r->table_pos || r->table_pos != sv_metrics[j].table_pos, "rows %d and %d share table position", j, i);
            CHECK(!r->gen_pos || r->gen_pos != sv_metrics[j].gen_pos, "rows %d and %d share generalization position", j, i);
        }
    }
    /* 5 latents over N = 1000 tokens; firing counts 0, 1, 9, 10, 500.
     * Threshold 0.01: densities 0, 0.001, 0.009 are below, 0.01 is not. */
    enum { M = 5 };
    int64_t ints[SV_I_HEAD + 3 * M + 1];
    memset(ints, 0, sizeof ints);
    const int64_t fc[M] = {0, 1, 9, 10, 500};
    for (int j = 0; j < M; j++) ints[sv_ints_firing(M) + j] = fc[j];
    CHECK(sv_ints_len(M) == sizeof ints / sizeof *ints, "sv_ints_len");
    double ds[3] = {0, 0, 1}, p[SV_P_COUNT] = {0};
    int64_t dsi[SV_D_COUNT] = {1000, 0, 0};
    sv_metric_sums s = {2, M, 10, ds, p, ints, dsi, 0.01, 0};
    sv_pair_metrics m;
    sv_metrics_finalize(&s, &m);
    CHECK(m.val[SV_M_DEAD_FEATURES] == 1 && m.val[SV_M_DEAD_FRACTION] == 0.2, "never fired: %g", m.val[SV_M_DEAD_FEATURES]);
    CHECK(m.val[SV_M_DEAD_BELOW_DENSITY] == 3.0 / 5.0, "below 0.01: %.17g, want 0.6", m.val[SV_M_DEAD_BELOW_DENSITY]);
    s.dead_density_threshold = 1e-6;
    sv_metrics_finalize(&s, &m);
    CHECK(m.val[SV_M_DEAD_BELOW_DENSITY] == 1.0 / 5.0, "below 1e-6: %.17g, want 0.2", m.val[SV_M_DEAD_BELOW_DENSITY]);
    CHECK(isnan(m.val[SV_M_QUALITY]), "external rows stay NaN");
    if (sv_test_failures()) printf("%d failure(s)\n", sv_test_failures());
    else printf("ok\n");
    return sv_test_failures() ? 1 : 0;
}
