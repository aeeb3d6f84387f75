/* PyTorch .pt files (torch.save, zip format of torch >= 1.6): a zip with
 * <prefix>/data.pkl (a pickle, read by the restricted unpickler of
 * pickle.h), <prefix>/data/<key> raw little-endian storages, and
 * <prefix>/version (+ byteorder, .data/serialization_id in torch 2.x).
 * The pickled root must be a dict (a state dict); nested dicts/lists are
 * flattened to dotted names ("activation_state_dict.k"). Tensors are
 * validated against their storages when the file is opened. The legacy
 * (pre-1.6, non-zip) format is refused. */
#ifndef SAEVAL_TORCHFILE_H
#define SAEVAL_TORCHFILE_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"
#include "saeval/pickle.h"
#include "saeval/zipfile.h"

#define SV_PT_MAX_ENTRIES 1000000
#define SV_PT_MAX_NAME 4096

typedef struct {
    char *name;
    sv_tdtype dtype;
    int ndim;
    int64_t shape[SV_PK_MAXDIM], stride[SV_PK_MAXDIM];
    int64_t offset;        /* elements into the storage */
    int64_t numel;
    int contiguous;        /* C order (dims of size 1 ignored) */
    const char *storage_key;
    int64_t storage_numel;
    const sv_zip_entry *entry;
} sv_pt_tensor;

typedef struct {
    char *name;
    const sv_pk_value *v; /* None, bool, int, float or str */
} sv_pt_item;

typedef struct {
    char *path;
    sv_zip *z;
    sv_pickle pk;
    int n_tensors, n_items;
    sv_pt_tensor *t;
    sv_pt_item *items;
} sv_torchfile;

sv_rc sv_pt_open(sv_torchfile *f, const char *path);
/* From memory (buf must outlive f; `name` names it in messages). */
sv_rc sv_pt_open_mem(sv_torchfile *f, const void *buf, size_t len, const char *name);
const sv_pt_tensor *sv_pt_find(const sv_torchfile *f, const char *name);
const sv_pt_item *sv_pt_item_find(const sv_torchfile *f, const char *name);
/* Read a float tensor (float32/16, bfloat16, float64); non-contiguous
 * tensors and integer dtypes are refused with a message naming them. */
sv_rc sv_pt_read_f32(sv_torchfile *f, const sv_pt_tensor *t, float *out);
sv_rc sv_pt_read_f64(sv_torchfile *f, const sv_pt_tensor *t, double *out);
/* Read an integer or bool tensor (dictionary_learning's k, group_sizes;
 * OpenAI's counters) as int64; float tensors and non-contiguous views are
 * refused. */
sv_rc sv_pt_read_i64(sv_torchfile *f, const sv_pt_tensor *t, int64_t *out);
void sv_pt_close(sv_torchfile *f);

#endif
