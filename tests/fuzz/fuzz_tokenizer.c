/* libFuzzer target: the tokenizer.json reader (untrusted input) and the
 * renderer: whatever the file, every rendered string must be valid UTF-8. */
#include "saeval/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int valid_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s;
        int len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!len) return 0;
        uint32_t v = len == 1 ? c : c & (0x7F >> len);
        for (int i = 1; i < len; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            v = (v << 6) | (s[i] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
        s += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size ? size : 1);
    if (!json) return 0;
    if (size) memcpy(json, data, size);
    sv_tokenizer *t = NULL;
    if (sv_tokenizer_parse(&t, json, size, "fuzz/tokenizer.json") == SV_OK) {
        int64_t n = sv_tokenizer_size(t);
        if (n < 1 || n > SV_TOK_MAX_ID) abort();
        /* every id, a few out of range, in spans that cut characters anywhere */
        int64_t ids[64];
        size_t k = 0;
        for (int64_t id = -2; id < n + 2 && id < 4000; id++) {
            ids[k++] = id;
            if (k == 64 || id + 1 == n + 2 || id + 1 == 4000) {
                for (unsigned flags = 0; flags < 2; flags++) {
                    char **s = NULL;
                    if (sv_tok_render(t, ids, k, flags, &s) != SV_OK) abort();
                    for (size_t i = 0; i < k; i++)
                        if (!valid_utf8((const unsigned char *)s[i])) abort();
                    free(s);
                }
                k = 0;
            }
        }
        sv_tokenizer_free(t);
    } else if (t != NULL) {
        abort();
    }
    free(json);
    return 0;
}
