/* libFuzzer target: the run-configuration reader (untrusted input).
 * "saes" entries with glob characters are expanded with glob(3) relative to
 * /tmp/fuzz; that directory need not exist (patterns then match nothing). */
#include "saeval/config.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* SAEVAL_FUZZ_SKIP_KNOWN=1 skips inputs that trigger the two config.c bugs
 * already reported (so a long campaign can look for others); unset (the
 * default, and in .ci/fuzz) they are reported like any other crash:
 *  - "exclude_token_ids" given twice: the second array is written at
 *    index n_exclude of the first (heap-buffer-overflow) and the first
 *    allocation leaks;
 *  - "legacy_batch_sequences" above INT_MAX: (int) of a double out of range
 *    (undefined behaviour). */
static int known_bug(const char *text, size_t n)
{
    cJSON *root = cJSON_ParseWithLength(text, n);
    if (!root) return 0;
    int n_excl = 0, bad = 0;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, root) {
        if (!kv->string) continue;
        if (strcmp(kv->string, "exclude_token_ids") == 0) n_excl++;
        if (strcmp(kv->string, "legacy_batch_sequences") == 0 && cJSON_IsNumber(kv) &&
            !(kv->valuedouble <= INT_MAX))
            bad = 1;
    }
    cJSON_Delete(root);
    return bad || n_excl > 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy: ASan catches any read past the n bytes given. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    static int skip_known = -1;
    if (skip_known < 0) {
        const char *e = getenv("SAEVAL_FUZZ_SKIP_KNOWN");
        skip_known = e && e[0] == '1';
    }
    if (skip_known && known_bug(text, size)) { free(text); return 0; }

    sv_config c;
    sv_rc rc = sv_config_parse(&c, text, size, "/tmp/fuzz/config.json");
    if (rc == SV_OK) {
        if (!c.output_dir || !c.config_path) abort();
        if (c.n_saes < 1 || c.n_datasets < 1) abort();
        if (c.precision != 32 && c.precision != 64) abort();
        for (int i = 0; i < c.n_saes; i++)
            if (!c.saes[i].path || !c.saes[i].path[0]) abort();
        for (int i = 0; i < c.n_datasets; i++)
            if (!c.datasets[i].name || !c.datasets[i].path) abort();
        for (int i = 0; i < c.n_exclude; i++) (void)c.exclude_ids[i];
    }
    /* Partial results are freed on failure too (callers do this). */
    sv_config_free(&c);
    free(text);
    return 0;
}
