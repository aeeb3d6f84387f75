/* A restricted unpickler for PyTorch's data.pkl (torch.save writes pickle
 * protocol 2; protocols 2-4 are accepted with the same restrictions).
 *
 * Nothing is ever executed or imported. Only the opcodes a plain state
 * dict uses are accepted, GLOBAL may name only the allow-listed callables
 * below, and REDUCE of an allowed callable builds a plain value:
 *   collections.OrderedDict          -> an (empty) dict
 *   torch._utils._rebuild_tensor_v2  -> a tensor (storage, offset, shape, stride)
 *   torch._utils._rebuild_parameter(_with_state) -> that tensor
 *   torch.<Type>Storage              -> only as the type in a storage id
 * BINPERSID ids must be ('storage', torch.<Type>Storage, key, location,
 * numel). Anything else (os.system, builtins.eval, INST, OBJ, NEWOBJ, ...)
 * is refused with "WHAT: disallowed global os.system at offset N" style
 * messages. The result is a tree of values owned by the sv_pickle. */
#ifndef SAEVAL_PICKLE_H
#define SAEVAL_PICKLE_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"

#define SV_PK_MAXDIM 8
#define SV_PK_MAX_INPUT (64u << 20) /* data.pkl larger than this is refused */

typedef enum {
    SV_PK_NONE, SV_PK_BOOL, SV_PK_INT, SV_PK_FLOAT, SV_PK_STR,
    SV_PK_TUPLE, SV_PK_LIST, SV_PK_DICT,
    SV_PK_GLOBAL,  /* an allow-listed callable or storage type */
    SV_PK_STORAGE, /* a persistent storage id */
    SV_PK_TENSOR
} sv_pk_type;

/* Element types of torch storages; only the float ones can be read as
 * float (torchfile.h), the others are listed so that a state dict with
 * integer buffers still loads. */
typedef enum {
    SV_TDT_F32, SV_TDT_F16, SV_TDT_BF16, SV_TDT_F64,
    SV_TDT_I64, SV_TDT_I32, SV_TDT_I16, SV_TDT_I8, SV_TDT_U8, SV_TDT_BOOL,
    SV_TDT_COUNT
} sv_tdtype;
const char *sv_tdtype_name(sv_tdtype d);   /* "float32", ... */
size_t sv_tdtype_size(sv_tdtype d);

typedef struct sv_pk_value sv_pk_value;
struct sv_pk_value {
    sv_pk_type type;
    int mark_; /* private: traversal state */
    union {
        int b;
        int64_t i;
        double f;
        struct { char *s; size_t len; } str;
        struct { sv_pk_value **v; int64_t n, cap; } seq;                 /* tuple, list */
        struct { sv_pk_value **k, **v; int64_t n, cap; } dict;           /* insertion order */
        struct { int id; } global;                                       /* index in the allow-list */
        struct { sv_tdtype dtype; char *key; char *location; int64_t numel; } storage;
        struct {
            sv_pk_value *storage;
            int64_t offset;
            int ndim;
            int64_t shape[SV_PK_MAXDIM], stride[SV_PK_MAXDIM];
            int requires_grad;
        } tensor;
    } u;
};

typedef struct sv_pk_arena sv_pk_arena;
typedef struct {
    sv_pk_arena *arena;
    sv_pk_value *root;
} sv_pickle;

/* Unpickle buf (n bytes); `what` names the file in messages. */
sv_rc sv_pickle_load(sv_pickle *p, const void *buf, size_t n, const char *what);
void sv_pickle_free(sv_pickle *p);

/* Dict lookup by string key (NULL when absent or d is not a dict). */
const sv_pk_value *sv_pk_get(const sv_pk_value *d, const char *key);
const char *sv_pk_type_name(sv_pk_type t);
/* "module.name" of a GLOBAL value. */
const char *sv_pk_global_name(const sv_pk_value *v);

#endif
