/* NumPy .npy headers and .npz archives (a zip of .npy files, stored or
 * deflated, as np.savez / np.savez_compressed write them).
 *
 * .npy: "\x93NUMPY", version 1.0 (u16 header length), 2.0 or 3.0 (u32),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (d0, d1), } padded with spaces and '\n', then the raw data.
 * Accepted descr: <f2 <f4 <f8 ('=' and '|' as byte order too on this
 * little-endian host). NumPy has no bfloat16: ml_dtypes' bfloat16 arrays
 * are saved as '<V2', a 2-byte void indistinguishable from any other, and
 * are refused. fortran_order True is refused. */
#ifndef SAEVAL_NPY_H
#define SAEVAL_NPY_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"
#include "saeval/safetensors.h" /* sv_dtype, SV_ST_MAXDIM */
#include "saeval/zipfile.h"

#define SV_NPY_MAX_HEADER 65536

typedef struct {
    int version;       /* 1, 2 or 3 */
    sv_dtype dtype;
    int ndim;
    int64_t shape[SV_ST_MAXDIM];
    uint64_t numel;
    uint64_t data_offset; /* bytes from the start of the .npy */
    uint64_t data_bytes;
} sv_npy_header;

/* Parse the header at the start of buf (n bytes available, which may be
 * only a prefix of the file) of a .npy whose total size is total_size;
 * the data must fill the rest exactly. `what` names the file/array. */
sv_rc sv_npy_parse_header(const void *buf, size_t n, uint64_t total_size, const char *what,
                          sv_npy_header *h);
int64_t sv_npy_dim(const sv_npy_header *h, int i);

typedef struct {
    char *name; /* entry name without ".npy" */
    const sv_zip_entry *entry;
    sv_npy_header h;
} sv_npz_array;

typedef struct {
    sv_zip *z;
    char *path;
    int n;
    sv_npz_array *a;
} sv_npz;

/* Open and validate every member's header. */
sv_rc sv_npz_open(sv_npz *f, const char *path);
sv_rc sv_npz_open_mem(sv_npz *f, const void *buf, size_t len, const char *name);
const sv_npz_array *sv_npz_find(const sv_npz *f, const char *name);
sv_rc sv_npz_read_f32(sv_npz *f, const sv_npz_array *a, float *out);
sv_rc sv_npz_read_f64(sv_npz *f, const sv_npz_array *a, double *out);
void sv_npz_close(sv_npz *f);

#endif
