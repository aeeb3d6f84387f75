/* libFuzzer target: the safetensors header parser (untrusted input).
 *
 * Input layout, chosen by the low bit of the first byte:
 *   bit 0 = 1 and size >= 9: bytes 1..8 are a little-endian u64 data-block
 *                            size, the rest is the header JSON;
 *   otherwise:               byte 0 is skipped, the rest is the header JSON
 *                            checked against a fixed 1 MiB data block.
 * So both arbitrary data sizes (0, huge, 2^64-1) and a realistic fixed size
 * are exercised. On success every parsed tensor is looked up and checked. */
#include "saeval/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIXED_DATA_SIZE (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint64_t data_size = FIXED_DATA_SIZE;
    size_t skip = 1;
    if ((data[0] & 1) && size >= 9) {
        data_size = 0;
        for (int i = 0; i < 8; i++) data_size |= (uint64_t)data[1 + i] << (8 * i);
        skip = 9;
    }
    /* A private copy of exactly the header bytes, so ASan catches any read
     * past the n bytes the parser was given. */
    size_t n = size - skip;
    char *json = malloc(n ? n : 1);
    if (!json) return 0;
    memcpy(json, data + skip, n);

    sv_st_file f;
    sv_rc rc = sv_st_parse_header(&f, json, n, data_size, "fuzz");
    if (rc == SV_OK) {
        /* Invariants promised by the validator. */
        if (f.data_start != 8 + (uint64_t)n) abort();
        uint64_t prev_end = 0;
        for (int i = 0; i < f.n; i++) {
            const sv_st_tensor *t = &f.t[i];
            if (t->ndim < 0 || t->ndim > SV_ST_MAXDIM) abort();
            if ((unsigned)t->dtype > SV_DT_F64) abort();
            if (t->begin > t->end || t->end > data_size) abort();
            int64_t numel = sv_st_numel(t);
            if (numel < 0) abort();
            if (t->begin != t->end) {
                if (t->begin < prev_end) abort(); /* sorted, non-overlapping */
                prev_end = t->end;
            }
            if (sv_st_find(&f, t->name) == NULL) abort();
            (void)sv_dtype_name(t->dtype);
        }
        sv_st_close(&f);
    } else {
        /* On failure the struct must be left empty (nothing to free). */
        if (f.n != 0 || f.t != NULL || f.path != NULL) abort();
        sv_st_close(&f);
    }
    free(json);
    return 0;
}
