/* Zip archives (NumPy .npz, PyTorch .pt) read through Debian's libzip.
 * Archives are untrusted: the central directory is checked for consistency,
 * entries must be stored or deflated and unencrypted, names must be unique,
 * and every read is bounded by the entry's declared size (a longer or
 * shorter stream, or a CRC mismatch, is an error naming archive and entry). */
#ifndef SAEVAL_ZIPFILE_H
#define SAEVAL_ZIPFILE_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"

#define SV_ZIP_MAX_ENTRIES 1000000

typedef struct {
    char *name;
    uint64_t size;      /* uncompressed */
    uint64_t comp_size;
    int deflated;       /* 0 stored, 1 deflated */
    int64_t index;      /* libzip index */
} sv_zip_entry;

typedef struct sv_zip sv_zip;           /* opaque */
typedef struct sv_zip_stream sv_zip_stream;

/* Open an archive file, or an archive held in memory (buf must outlive the
 * sv_zip; `name` only names it in messages). */
sv_rc sv_zip_open(sv_zip **z, const char *path);
sv_rc sv_zip_open_mem(sv_zip **z, const void *buf, size_t len, const char *name);
void sv_zip_close(sv_zip *z);

const char *sv_zip_name(const sv_zip *z);
int64_t sv_zip_count(const sv_zip *z);
const sv_zip_entry *sv_zip_entry_at(const sv_zip *z, int64_t i);
const sv_zip_entry *sv_zip_find(const sv_zip *z, const char *name);

/* Read a whole entry into a new buffer (NUL-terminated, *len = size);
 * entries larger than max_size are refused. */
sv_rc sv_zip_read(sv_zip *z, const sv_zip_entry *e, uint64_t max_size, char **out, size_t *len);

/* Streaming: exactly n bytes per call or an error; skip discards bytes;
 * close with check=1 also verifies that the stream ends at the declared
 * size and that the CRC matches. */
sv_rc sv_zip_stream_open(sv_zip *z, const sv_zip_entry *e, sv_zip_stream **s);
sv_rc sv_zip_stream_read(sv_zip_stream *s, void *buf, size_t n);
sv_rc sv_zip_stream_skip(sv_zip_stream *s, uint64_t n);
sv_rc sv_zip_stream_close(sv_zip_stream *s, int check);



/* Float tensors stored raw in an entry (little-endian, dtype from
 * safetensors.h): read n elements starting at byte `offset` of entry e,
 * converting to float (out_f) or double (out_d; exactly one is non-NULL).
 * Conversion goes through a bounded chunk, never a full-size copy. */
#include "saeval/safetensors.h"
size_t sv_dtype_size(sv_dtype d);
void sv_raw_to_f32(sv_dtype d, const void *raw, size_t n, float *out);
void sv_raw_to_f64(sv_dtype d, const void *raw, size_t n, double *out);
/* n raw bytes from byte `offset` of entry e into out. */
sv_rc sv_zip_read_raw(sv_zip *z, const sv_zip_entry *e, uint64_t offset, void *out, size_t n);
sv_rc sv_zip_read_floats(sv_zip *z, const sv_zip_entry *e, uint64_t offset, sv_dtype d,
                         size_t n, float *out_f, double *out_d);
#endif
