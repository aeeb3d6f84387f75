/* Private to the model modules: the family table row and the tensor
 * binder the family rows use to declare their weights. */
#ifndef SAEVAL_MODEL_IMPL_H
#define SAEVAL_MODEL_IMPL_H
#include <cjson/cJSON.h>
#include "saeval/model.h"

/* One expected tensor: its canonical name (without the family prefix),
 * shape, and where its pointer goes once loaded. */
typedef struct {
    char name[160];
    int ndim;
    int64_t shape[2];
    void **dst;
} sv_need;

typedef struct {
    sv_need *v;
    int n, cap;
    int oom;
} sv_binder;

#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
void sv_bind(sv_binder *b, void **dst, int ndim, int64_t d0, int64_t d1, const char *fmt, ...);

/* One block on ws->x in place, leaving the attention / MLP hook values in
 * ws->ao / ws->mo. */
typedef void (*sv_block_fn)(sv_model_ws *ws, int64_t layer, int64_t T);

typedef struct sv_model_family {
    const char *model_type;
    const char *prefix;          /* "transformer.", "gpt_neox.", "model." */
    sv_rc (*parse)(sv_model_cfg *c, const cJSON *root, const char *path);
    void (*bind)(sv_binder *b, sv_model *m); /* declares every tensor, sets sv_lin shapes */
    int (*is_buffer)(const char *name);      /* known non-weight entries to ignore */
    sv_block_fn block[2];                    /* float, double */
} sv_model_family;

const sv_model_family *sv_model_family_find(const char *model_type);
/* "gpt2, gpt_neox, ..." for messages. */
const char *sv_model_family_list(void);

/* The block bodies (model_ops.c). */
void sv_block_f32(sv_model_ws *ws, int64_t layer, int64_t T);
void sv_block_f64(sv_model_ws *ws, int64_t layer, int64_t T);

#endif
