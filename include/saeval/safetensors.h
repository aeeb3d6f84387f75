/* safetensors reader/writer. Layout: u64 LE header length N, N bytes of JSON
 * {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {...}},
 * then the data block; offsets are relative to the end of the header. */
#ifndef SAEVAL_SAFETENSORS_H
#define SAEVAL_SAFETENSORS_H
#include <stdint.h>
#include <stddef.h>
#include "saeval/error.h"

typedef enum { SV_DT_F32 = 0, SV_DT_F16, SV_DT_BF16, SV_DT_F64 } sv_dtype;

#define SV_ST_MAXDIM 8
typedef struct {
    char *name;
    sv_dtype dtype;
    int ndim;
    int64_t shape[SV_ST_MAXDIM];
    uint64_t begin, end; /* relative to the data block */
} sv_st_tensor;

typedef struct {
    char *path;
    uint64_t file_size;
    uint64_t data_start; /* 8 + N */
    int n;
    sv_st_tensor *t;
} sv_st_file;

/* Parse and fully validate a header JSON (not NUL-terminated, length n)
 * against a data block of data_size bytes. `path` only names the file in
 * messages. Entry point for the fuzzer. */
sv_rc sv_st_parse_header(sv_st_file *f, const char *json, size_t n,
                         uint64_t data_size, const char *path);
/* Open a file: read the length, the header, validate. */
sv_rc sv_st_open(sv_st_file *f, const char *path);
const sv_st_tensor *sv_st_find(const sv_st_file *f, const char *name);
int64_t sv_st_numel(const sv_st_tensor *t);
/* Read a tensor, converting from its dtype. */
sv_rc sv_st_read_f32(const sv_st_file *f, const sv_st_tensor *t, float *out);
sv_rc sv_st_read_f64(const sv_st_file *f, const sv_st_tensor *t, double *out);
void sv_st_close(sv_st_file *f);

/* Writer (synthetic data, tests). Data given as doubles, rounded to dtype.
 * Writes to path.tmp and renames. */
typedef struct {
    const char *name;
    sv_dtype dtype;
    int ndim;
    int64_t shape[SV_ST_MAXDIM];
    const double *data;
} sv_st_wtensor;
sv_rc sv_st_write(const char *path, const sv_st_wtensor *t, int n);

const char *sv_dtype_name(sv_dtype d); /* "F32", ... */

#endif
