/* Result heads (resume and merge read only the scalar part of a pair
 * file): checked against a full cJSON parse of the same file, on a real
 * result file of the demo and on hand-made edge cases.
 *   test_scale head RESULT.json WORKDIR */
#define TEST_NAME "test_scale"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/plan.h"
#include "saeval/results.h"
#define TU_CHECK 1 /* counting CHECK: report every failure */
#include "testutil.h"

static void write_text(const char *path, const char *text, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(text, 1, n, fp) != n) die("cannot write", path);
    fclose(fp);
}

/* Head of path, parsed; NULL when sv_result_head refuses it. */
static cJSON *head_of(const char *path)
{
    char *h = NULL;
    size_t n = 0;
    if (sv_result_head(path, &h, &n) != SV_OK) { sv_clear_error(); return NULL; }
    CHECK(strlen(h) == n, "%s: head length %zu vs strlen %zu", path, n, strlen(h));
    cJSON *o = cJSON_ParseWithLength(h, n);
    CHECK(o != NULL, "%s: head does not parse", path);
    free(h);
    return o;
}

static int cmd_head(const char *result, const char *work)
{
    char *text = NULL, path[4096];
    size_t n = 0;
    mkdirs(work);
    if (sv_read_file(result, &text, &n) != SV_OK) die("cannot read", result);
    cJSON *full = cJSON_ParseWithLength(text, n);
    if (!full) die("not JSON", result);

    /* 1. The head is the whole object without feature_metrics. */
    cJSON *h = head_of(result);
    cJSON *want = cJSON_Duplicate(full, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(want, "feature_metrics");
    CHECK(h && cJSON_Compare(h, want, 1), "%s: head differs from the full object minus feature_metrics", result);
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(full, "input_hash");
    uint64_t expect = cJSON_IsString(hs) ? strtoull(hs->valuestring, NULL, 16) : 0;
    CHECK(expect != 0 && sv_result_hash(result) == expect, "%s: sv_result_hash", result);
    cJSON_Delete(h);

    /* 2. Cut short anywhere after the head: not complete. */
    size_t cuts[] = {n - 1, n - 2, n / 2, n - 40};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        snprintf(path, sizeof path, "%s/cut%zu.json", work, k);
        write_text(path, text, cuts[k]);
        cJSON *c = head_of(path);
        CHECK(c == NULL, "a file cut to %zu of %zu bytes is taken as complete", cuts[k], n);
        CHECK(sv_result_hash(path) == 0, "hash of a cut file");
        cJSON_Delete(c);
    }

    /* 3. A string value that looks like the key (escaped by the writer:
     * the raw newline cannot occur in it) does not end the head early. */
    const char *tricky =
        "{\n  \"sae_id\": \"a,\\n  \\\"feature_metrics\\\": {\",\n  \"status\": \"ok\",\n  \"input_hash\": \"00000000000000ff\",\n"
        "  \"metrics\": {\n    \"x\": 1\n  },\n  \"feature_metrics\": {\n    \"firing_counts\": [1, 2]\n  }\n}\n";
    snprintf(path, sizeof path, "%s/tricky.json", work);
    write_text(path, tricky, strlen(tricky));
    h = head_of(path);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(h, "sae_id");
    CHECK(h && cJSON_IsString(id) && strcmp(id->valuestring, "a,\n  \"feature_metrics\": {") == 0, "tricky sae_id");
    CHECK(h && !cJSON_GetObjectItemCaseSensitive(h, "feature_metrics") &&
                 cJSON_GetObjectItemCaseSensitive(h, "metrics"), "tricky head keys");
    CHECK(sv_result_hash(path) == 0xff, "tricky hash");
    cJSON_Delete(h);

    /* 4. A head longer than the first read (64 KiB): read on to the key. */
    const char *rest = "\",\n  \"status\": \"ok\",\n  \"input_hash\": \"00000000000000ff\",\n  \"metrics\": {\n"
                       "    \"x\": 1\n  },\n  \"feature_metrics\": {\n    \"firing_counts\": [1, 2]\n  }\n}\n";
    const size_t pad = 200000;
    char *big = xcalloc(pad + strlen(rest) + 64, 1);
    int m = snprintf(big, 64, "{\n  \"sae_id\": \"");
    memset(big + m, 'x', pad);
    strcpy(big + m + pad, rest);
    snprintf(path, sizeof path, "%s/long.json", work);
    write_text(path, big, strlen(big));
    cJSON *lf = cJSON_Parse(big);
    CHECK(lf != NULL, "long test file is JSON");
    h = head_of(path);
    id = cJSON_GetObjectItemCaseSensitive(h, "sae_id");
    CHECK(h && cJSON_IsString(id) && strlen(id->valuestring) == pad, "long head sae_id");
    CHECK(sv_result_hash(path) == 0xff, "long head hash");
    cJSON_Delete(h);
    cJSON_Delete(lf);
    free(big);

    /* 5. No feature_metrics, status not ok, not an object: refused or hash 0. */
    const char *bad[] = {
        "{\n  \"status\": \"ok\",\n  \"input_hash\": \"00000000000000ff\",\n  \"metrics\": {}\n}\n",
        "{\n  \"status\": \"error\",\n  \"input_hash\": \"00000000000000ff\",\n  \"metrics\": {},\n  \"feature_metrics\": {}\n}\n",
        "[\n  \"status\",\n  \"feature_metrics\": {}\n}\n",
        "",
        "}\n",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(path, sizeof path, "%s/bad%zu.json", work, k);
        write_text(path, bad[k], strlen(bad[k]));
        CHECK(sv_result_hash(path) == 0, "bad file %zu gives a hash", k);
    }
    snprintf(path, sizeof path, "%s/absent.json", work);
    CHECK(sv_result_hash(path) == 0, "absent file gives a hash");

    cJSON_Delete(want);
    cJSON_Delete(full);
    free(text);
    printf("test_scale head: %s\n", tu_failures() ? "FAILED" : "ok");
    return tu_failures() != 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "head") == 0) return cmd_head(argv[2], argv[3]);
    fprintf(stderr, "usage: test_scale head RESULT.json WORKDIR\n");
    return 2;
}
