/* libFuzzer target: the restricted unpickler and the torch .pt reader
 * (untrusted input), from memory.
 *   byte 0 even: the rest is a pickle (sv_pickle_load);
 *   byte 0 odd:  the rest is a .pt zip: open, list, read every float tensor.
 * Nothing may be executed: the unpickler has no way to, and any global
 * outside the allow-list must be refused (checked below on success). */
#include "saeval/pickle.h"
#include "saeval/torchfile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Every value reachable from the root is one of the plain types. */
static void walk(const sv_pk_value *v, int depth, long *budget)
{
    if (depth > 300 || --*budget < 0) return;
    switch (v->type) {
    case SV_PK_TUPLE: case SV_PK_LIST:
        for (int64_t i = 0; i < v->u.seq.n; i++) walk(v->u.seq.v[i], depth + 1, budget);
        break;
    case SV_PK_DICT:
        for (int64_t i = 0; i < v->u.dict.n; i++) {
            if (v->u.dict.k[i]->type > SV_PK_STR) abort();
            walk(v->u.dict.v[i], depth + 1, budget);
        }
        break;
    case SV_PK_TENSOR:
        if (v->u.tensor.storage->type != SV_PK_STORAGE || v->u.tensor.ndim > SV_PK_MAXDIM) abort();
        break;
    case SV_PK_STR:
        if (strlen(v->u.str.s) != v->u.str.len) abort();
        break;
    default:
        if (v->type > SV_PK_TENSOR) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    if ((data[0] & 1) == 0) {
        sv_pickle p;
        if (sv_pickle_load(&p, buf, n, "fuzz.pkl") == SV_OK) {
            long budget = 100000;
            walk(p.root, 0, &budget);
            sv_pickle_free(&p);
        } else if (p.root || p.arena) {
            abort();
        }
    } else {
        sv_torchfile f;
        if (sv_pt_open_mem(&f, buf, n, "fuzz.pt") == SV_OK) {
            for (int i = 0; i < f.n_tensors; i++) {
                const sv_pt_tensor *t = &f.t[i];
                if (sv_pt_find(&f, t->name) == NULL) abort();
                if (t->numel > (1 << 20)) continue;
                float *o = malloc((size_t)t->numel * sizeof *o + 1);
                if (o) (void)sv_pt_read_f32(&f, t, o);
                free(o);
                int64_t *q = malloc((size_t)t->numel * sizeof *q + 1);
                if (q) (void)sv_pt_read_i64(&f, t, q);
                free(q);
            }
            for (int i = 0; i < f.n_items; i++)
                if (f.items[i].v->type > SV_PK_STR) abort();
            sv_pt_close(&f);
        } else if (f.z || f.t || f.items || f.path) {
            abort();
        }
    }
    free(buf);
    return 0;
}
