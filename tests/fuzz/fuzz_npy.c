/* libFuzzer target: the .npy header parser and the .npz reader (untrusted
 * input), from memory.
 *   byte 0 even: the rest is a .npy file (header parsed against its size);
 *   byte 0 odd:  the rest is an .npz archive: open, then read every array
 *                as float and as double.
 * Invariants promised by the parser are checked on success. */
#include "saeval/npy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* A private copy of exactly the payload so ASan sees any overread. */
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    if ((data[0] & 1) == 0) {
        sv_npy_header h;
        if (sv_npy_parse_header(buf, n, n, "fuzz.npy", &h) == SV_OK) {
            if (h.data_offset + h.data_bytes != n) abort();
            if (h.ndim < 0 || h.ndim > SV_ST_MAXDIM) abort();
            if (h.data_bytes != h.numel * sv_dtype_size(h.dtype)) abort();
        }
    } else {
        sv_npz f;
        if (sv_npz_open_mem(&f, buf, n, "fuzz.npz") == SV_OK) {
            for (int i = 0; i < f.n; i++) {
                const sv_npz_array *a = &f.a[i];
                if (sv_npz_find(&f, a->name) == NULL) abort();
                if (a->h.numel > (1u << 20)) continue;
                float *of = malloc(a->h.numel * sizeof *of + 1);
                double *od = malloc(a->h.numel * sizeof *od + 1);
                if (of && od) {
                    (void)sv_npz_read_f32(&f, a, of);
                    (void)sv_npz_read_f64(&f, a, od);
                }
                free(of);
                free(od);
            }
            sv_npz_close(&f);
        } else if (f.z != NULL || f.a != NULL || f.path != NULL) {
            abort(); /* a failed open leaves nothing to free */
        }
    }
    free(buf);
    return 0;
}
