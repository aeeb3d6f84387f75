/* libFuzzer target: a model directory's config.json and
 * model.safetensors.index.json parsers (untrusted input). The first byte
 * chooses the parser: even = config.json, odd = index. */
#include "saeval/model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const int which = data[0] & 1;
    data++;
    size--;
    /* Exact-size copy: ASan catches any read past the n bytes given. */
    char *json = malloc(size ? size : 1);
    if (!json) return 0;
    if (size) memcpy(json, data, size);
    if (which == 0) {
        sv_model_cfg c;
        if (sv_model_cfg_parse(&c, json, size, "fuzz/config.json") == SV_OK) {
            /* Invariants the forward pass relies on. */
            if (c.d_model < 1 || c.n_layers < 1 || c.n_heads < 1 || c.n_kv_heads < 1 || c.head_dim < 1) abort();
            if (c.n_heads % c.n_kv_heads || c.vocab < 1 || c.max_pos < 1 || c.d_ff < 1) abort();
            if (c.rotary_dim < 0 || c.rotary_dim > c.head_dim || c.rotary_dim % 2) abort();
            if (memchr(c.model_type, '\0', sizeof c.model_type) == NULL) abort();
            sv_hook h;
            (void)sv_hook_parse(&h, "blocks.0.hook_resid_pre", &c);
        }
    } else {
        sv_model_index ix;
        if (sv_model_index_parse(&ix, json, size, "fuzz/model.safetensors.index.json") == SV_OK) {
            for (int i = 0; i < ix.ntensors; i++)
                if (ix.file_of[i] < 0 || ix.file_of[i] >= ix.nfiles || strchr(ix.files[ix.file_of[i]], '/')) abort();
            sv_model_index_free(&ix);
        }
    }
    free(json);
    return 0;
}
