/* libFuzzer target: the result-head reader used by resume and merge on
 * files in the output directory (which anyone may have edited). */
#include "saeval/plan.h"
#include "saeval/results.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size copy: ASan catches any read past the n bytes given. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    size_t cut = sv_result_head_cut(text, size, 1);
    if (cut) {
        if (cut >= size) abort();
        char *head = malloc(cut + 3);
        if (head) {
            memcpy(head, text, cut);
            memcpy(head + cut, "\n}", 3);
            cJSON *o = NULL;
            if (sv_result_head_hash(head, cut + 2, &o) == 0 && o) abort(); /* an object only with a hash */
            cJSON_Delete(o);
            free(head);
        }
    }
    free(text);
    return 0;
}
