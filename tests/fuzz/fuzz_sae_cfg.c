/* libFuzzer target: the SAELens cfg.json parser (untrusted input). */
#include "saeval/arch.h"
#include "saeval/fmt_saelens.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy: ASan catches any read past the n bytes given. */
    char *json = malloc(size ? size : 1);
    if (!json) return 0;
    if (size) memcpy(json, data, size);

    sv_sae_cfg c;
    sv_rc rc = sv_sae_cfg_parse(&c, json, size, "fuzz/cfg.json");
    if (rc == SV_OK) {
        if (c.d_in < 1 || c.d_sae < 1) abort();
        if ((unsigned)c.arch > SV_ARCH_GATED) abort();
        if ((unsigned)c.normalize > SV_NORM_EXPECTED_AVERAGE_ONLY_IN) abort();
        if (c.arch == SV_ARCH_TOPK && (c.k < 1 || c.k > c.d_sae)) abort();
        /* A transcoder has its own width, never shifts or normalizes its input. */
        if (c.transcoder && (c.d_out < 1 || c.apply_b_dec_to_input || c.normalize != SV_NORM_NONE)) abort();
        if (c.skip && !c.transcoder) abort();
        if (memchr(c.dtype, '\0', sizeof c.dtype) == NULL) abort();
        (void)sv_arch_name(c.arch);
        (void)sv_norm_name(c.normalize);
    }
    free(json);
    return 0;
}
