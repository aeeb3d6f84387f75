/* A run's feature files against its own result files, two independent code
 * paths: per latent, the feature file's nonzero count equals the pair's
 * feature_metrics.firing_counts, tokens_evaluated agrees, the top values are
 * sorted with the max first, and each example's window holds its own value
 * at the example's position.
 * usage: test_featrun RESULTS_DIR SAE_ID DATASET */
#define TEST_NAME "test_featrun"
#include "saeval/featfile.h"
#include "saeval/json.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4) die("usage: test_featrun RESULTS_DIR SAE_ID DATASET", NULL);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s__%s.json", argv[1], argv[2], argv[3]);
    char *text = NULL;
    size_t n = 0;
    CHECK(sv_read_file(path, &text, &n) == SV_OK);
    cJSON *root = sv_json_parse_exact(text, n);
    CHECK(root);
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "feature_metrics"), "firing_counts");
    const cJSON *te = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "metrics"), "token_stats"), "tokens_evaluated");
    CHECK(cJSON_IsArray(fc) && cJSON_IsNumber(te));
    char *fp = sv_featfile_path(argv[1], argv[2], argv[3]);
    sv_featfile *ff = NULL;
    CHECK(sv_featfile_open(&ff, fp) == SV_OK);
    CHECK(sv_featfile_tokens(ff) == (int64_t)te->valuedouble);
    CHECK(sv_featfile_params(ff)->d_sae == cJSON_GetArraySize(fc));
    int64_t live = 0;
    for (int64_t j = 0; j < sv_featfile_params(ff)->d_sae; j++) {
        sv_featfile_latent l;
        CHECK(sv_featfile_read(ff, j, &l) == SV_OK);
        CHECK(l.nonzero == (int64_t)cJSON_GetArrayItem(fc, (int)j)->valuedouble);
        live += l.nonzero > 0;
        CHECK(l.n_top == (l.nonzero < sv_featfile_params(ff)->top_n ? l.nonzero : sv_featfile_params(ff)->top_n));
        for (int k = 0; k < l.n_top; k++) {
            const sv_featfile_ex *x = &l.top[k];
            CHECK(k > 0 || x->value == l.max);
            CHECK(k == 0 || x->value < l.top[k - 1].value || (x->value == l.top[k - 1].value && x->token > l.top[k - 1].token));
            CHECK(x->values[x->token - x->start] == x->value);
        }
        for (int g = 0; g < sv_featfile_params(ff)->n_intervals; g++)
            for (int k = 0; k < l.iv[g].n; k++) {
                const sv_featfile_ex *x = &l.iv[g].ex[k];
                CHECK(x->value >= l.iv[g].lo && x->value < l.iv[g].hi && x->values[x->token - x->start] == x->value);
            }
        sv_featfile_latent_free(&l);
    }
    CHECK(live > 0);
    printf("featrun: %s: %lld live latents, counts agree with %s\n", fp, (long long)live, path);
    sv_featfile_close(ff);
    free(fp);
    cJSON_Delete(root);
    free(text);
    return 0;
}
