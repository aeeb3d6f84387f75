/* libFuzzer target: the run-configuration reader (untrusted input).
 * "saes" entries with glob characters are expanded with glob(3) relative to
 * /tmp/fuzz (.ci/fuzz creates /tmp/fuzz/saes/{a,b}/cfg.json so that patterns
 * like "saes/" followed by a star match; elsewhere patterns simply match nothing). */
#include "saeval/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy: ASan catches any read past the n bytes given. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);

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
