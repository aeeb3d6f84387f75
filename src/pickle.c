/* Restricted unpickler (see pickle.h). A stack machine over the opcodes a
 * torch.save'd state dict uses; every other opcode and every global not in
 * the allow-list is refused by name and offset. Nothing is imported or
 * called: "calling" an allowed global builds a plain value. All values live
 * in one arena with a size limit, so hostile input cannot exhaust memory
 * and freeing is one call. */
#include "saeval/pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ arena */

#define ARENA_BLOCK (1u << 16)
#define ARENA_MAX ((size_t)512 << 20)

typedef struct block {
    struct block *next;
    size_t used, cap;
    max_align_t data[];
} block;

struct sv_pk_arena {
    block *head;
    size_t total, limit;
};

static void *arena_alloc(sv_pk_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > a->limit || a->total > a->limit - n) return NULL;
    block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(sv_pk_arena *a)
{
    if (!a) return;
    for (block *b = a->head, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    free(a);
}

/* -------------------------------------------------------------- allow-list */

enum { G_ODICT, G_TENSOR_V2, G_PARAM, G_PARAM_STATE, G_STORAGE };

static const struct {
    const char *module, *name;
    int kind;
    sv_tdtype dt;
} allowed[] = {
    {"collections", "OrderedDict", G_ODICT, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_TENSOR_V2, 0},
    {"torch._utils", "_rebuild_parameter", G_PARAM, 0},
    {"torch._utils", "_rebuild_parameter_with_state", G_PARAM_STATE, 0},
    {"torch", "FloatStorage", G_STORAGE, SV_TDT_F32},
    {"torch", "HalfStorage", G_STORAGE, SV_TDT_F16},
    {"torch", "BFloat16Storage", G_STORAGE, SV_TDT_BF16},
    {"torch", "DoubleStorage", G_STORAGE, SV_TDT_F64},
    {"torch", "LongStorage", G_STORAGE, SV_TDT_I64},
    {"torch", "IntStorage", G_STORAGE, SV_TDT_I32},
    {"torch", "ShortStorage", G_STORAGE, SV_TDT_I16},
    {"torch", "CharStorage", G_STORAGE, SV_TDT_I8},
    {"torch", "ByteStorage", G_STORAGE, SV_TDT_U8},
    {"torch", "BoolStorage", G_STORAGE, SV_TDT_BOOL},
};
#define N_ALLOWED ((int)(sizeof allowed / sizeof allowed[0]))

static const struct {
    const char *name;
    size_t size;
} tdtypes[SV_TDT_COUNT] = {
    {"float32", 4}, {"float16", 2}, {"bfloat16", 2}, {"float64", 8}, {"int64", 8},
    {"int32", 4},   {"int16", 2},   {"int8", 1},     {"uint8", 1},   {"bool", 1},
};

const char *sv_tdtype_name(sv_tdtype d) { return (unsigned)d < SV_TDT_COUNT ? tdtypes[d].name : "?"; }
size_t sv_tdtype_size(sv_tdtype d) { return (unsigned)d < SV_TDT_COUNT ? tdtypes[d].size : 0; }

const char *sv_pk_global_name(const sv_pk_value *v)
{
    static char buf[128];
    if (!v || v->type != SV_PK_GLOBAL || v->u.global.id < 0 || v->u.global.id >= N_ALLOWED) return "?";
    snprintf(buf, sizeof buf, "%s.%s", allowed[v->u.global.id].module, allowed[v->u.global.id].name);
    return buf;
}

const char *sv_pk_type_name(sv_pk_type t)
{
    static const char *n[] = {"None", "bool", "int", "float", "str", "tuple", "list",
                              "dict", "global", "storage", "tensor"};
    return (unsigned)t <= SV_PK_TENSOR ? n[t] : "?";
}

const sv_pk_value *sv_pk_get(const sv_pk_value *d, const char *key)
{
    if (!d || d->type != SV_PK_DICT) return NULL;
    for (int64_t i = 0; i < d->u.dict.n; i++) {
        const sv_pk_value *k = d->u.dict.k[i];
        if (k->type == SV_PK_STR && strcmp(k->u.str.s, key) == 0) return d->u.dict.v[i];
    }
    return NULL;
}

/* ---------------------------------------------------------------- machine */

#define MAX_STACK (1 << 20)
#define MAX_MEMO (1 << 20)
#define MAX_HEIGHT 256

typedef struct {
    const unsigned char *b;
    size_t n, pos, op_at; /* op_at: offset of the current opcode */
    const char *what;
    sv_pk_arena *a;
    sv_pk_value **stack;
    int64_t sp, scap;
    int64_t *marks;
    int64_t nmarks, mcap;
    sv_pk_value **memo;
    int64_t memo_cap, memo_len;
} um;

static sv_rc fail_at(const um *m, const char *fmt, const char *arg)
{
    return sv_fail(SV_EINPUT, "%s: pickle: %s%s at offset %zu", m->what, fmt, arg ? arg : "", m->op_at);
}

static sv_rc oom(const um *m)
{
    return sv_fail(SV_EINPUT, "%s: pickle: more than %zu MiB of values at offset %zu", m->what,
                   m->a->limit >> 20, m->op_at);
}

static sv_pk_value *newv(um *m, sv_pk_type t)
{
    sv_pk_value *v = arena_alloc(m->a, sizeof *v);
    if (v) v->type = t;
    return v;
}

static sv_rc push(um *m, sv_pk_value *v)
{
    if (!v) return oom(m);
    if (m->sp == m->scap) {
        if (m->scap >= MAX_STACK) return fail_at(m, "stack deeper than 1048576 values", NULL);
        int64_t nc = m->scap ? m->scap * 2 : 64;
        sv_pk_value **ns = realloc(m->stack, (size_t)nc * sizeof *ns);
        if (!ns) return sv_fail(SV_EINTERNAL, "out of memory (pickle stack)");
        m->stack = ns;
        m->scap = nc;
    }
    m->stack[m->sp++] = v;
    return SV_OK;
}

/* The bottom of the current frame: values above the last MARK only. */
static int64_t floor_(const um *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static sv_rc pop(um *m, sv_pk_value **v)
{
    if (m->sp <= floor_(m)) return fail_at(m, "stack underflow", NULL);
    *v = m->stack[--m->sp];
    return SV_OK;
}

static sv_rc need(const um *m, size_t k)
{
    if (m->n - m->pos < k) return fail_at(m, "truncated operand", NULL);
    return SV_OK;
}

static uint64_t le(const unsigned char *p, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Append to a tuple/list/dict value, growing its arena array. */
static sv_rc seq_add(um *m, sv_pk_value *s, sv_pk_value *x)
{
    if (s->u.seq.n == s->u.seq.cap) {
        int64_t nc = s->u.seq.cap ? s->u.seq.cap * 2 : 4;
        sv_pk_value **nv = arena_alloc(m->a, (size_t)nc * sizeof *nv);
        if (!nv) return oom(m);
        if (s->u.seq.n) memcpy(nv, s->u.seq.v, (size_t)s->u.seq.n * sizeof *nv);
        s->u.seq.v = nv;
        s->u.seq.cap = nc;
    }
    s->u.seq.v[s->u.seq.n++] = x;
    return SV_OK;
}

static sv_rc dict_add(um *m, sv_pk_value *d, sv_pk_value *k, sv_pk_value *v)
{
    if (k->type > SV_PK_STR) return fail_at(m, "dict key of type ", sv_pk_type_name(k->type));
    if (d->u.dict.n == d->u.dict.cap) {
        int64_t nc = d->u.dict.cap ? d->u.dict.cap * 2 : 4;
        sv_pk_value **nk = arena_alloc(m->a, (size_t)nc * sizeof *nk);
        sv_pk_value **nv = arena_alloc(m->a, (size_t)nc * sizeof *nv);
        if (!nk || !nv) return oom(m);
        if (d->u.dict.n) {
            memcpy(nk, d->u.dict.k, (size_t)d->u.dict.n * sizeof *nk);
            memcpy(nv, d->u.dict.v, (size_t)d->u.dict.n * sizeof *nv);
        }
        d->u.dict.k = nk;
        d->u.dict.v = nv;
        d->u.dict.cap = nc;
    }
    d->u.dict.k[d->u.dict.n] = k;
    d->u.dict.v[d->u.dict.n++] = v;
    return SV_OK;
}

static sv_rc new_str(um *m, const unsigned char *p, size_t len)
{
    if (memchr(p, 0, len)) return fail_at(m, "string with a NUL byte", NULL);
    sv_pk_value *v = newv(m, SV_PK_STR);
    if (!v) return oom(m);
    char *s = arena_alloc(m->a, len + 1);
    if (!s) return oom(m);
    memcpy(s, p, len);
    s[len] = '\0';
    v->u.str.s = s;
    v->u.str.len = len;
    return push(m, v);
}

static sv_rc global(um *m, const char *mod, const char *name)
{
    for (int i = 0; i < N_ALLOWED; i++)
        if (strcmp(allowed[i].module, mod) == 0 && strcmp(allowed[i].name, name) == 0) {
            sv_pk_value *v = newv(m, SV_PK_GLOBAL);
            if (!v) return oom(m);
            v->u.global.id = i;
            return push(m, v);
        }
    char full[600];
    snprintf(full, sizeof full, "%.280s.%.280s", mod, name);
    /* Show only printable bytes of an attacker's name. */
    for (char *c = full; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?';
    return sv_fail(SV_EINPUT, "%s: disallowed global %s at offset %zu", m->what, full, m->op_at);
}

static sv_rc memo_put(um *m, uint64_t idx, sv_pk_value *v)
{
    if (idx >= MAX_MEMO) return fail_at(m, "memo index too large", NULL);
    if ((int64_t)idx >= m->memo_cap) {
        int64_t nc = m->memo_cap ? m->memo_cap : 64;
        while (nc <= (int64_t)idx) nc *= 2;
        sv_pk_value **nm = realloc(m->memo, (size_t)nc * sizeof *nm);
        if (!nm) return sv_fail(SV_EINTERNAL, "out of memory (pickle memo)");
        memset(nm + m->memo_cap, 0, (size_t)(nc - m->memo_cap) * sizeof *nm);
        m->memo = nm;
        m->memo_cap = nc;
    }
    if (!m->memo[idx]) m->memo_len++;
    m->memo[idx] = v;
    return SV_OK;
}

static sv_rc memo_get(um *m, uint64_t idx)
{
    if ((int64_t)idx >= m->memo_cap || !m->memo[idx]) return fail_at(m, "memo key not found", NULL);
    return push(m, m->memo[idx]);
}

static int is_int(const sv_pk_value *v) { return v->type == SV_PK_INT; }

static sv_rc int_tuple(um *m, const sv_pk_value *t, const char *field, int64_t *out, int *nd)
{
    if (t->type != SV_PK_TUPLE) return fail_at(m, "_rebuild_tensor_v2: field ", field);
    if (t->u.seq.n > SV_PK_MAXDIM) return fail_at(m, "_rebuild_tensor_v2: more than 8 dimensions in ", field);
    for (int64_t i = 0; i < t->u.seq.n; i++) {
        const sv_pk_value *x = t->u.seq.v[i];
        if (!is_int(x) || x->u.i < 0) return fail_at(m, "_rebuild_tensor_v2: negative or non-integer value in ", field);
        out[i] = x->u.i;
    }
    *nd = (int)t->u.seq.n;
    return SV_OK;
}

/* REDUCE: "call" an allowed global by building the value it would return. */
static sv_rc reduce(um *m, sv_pk_value *fn, sv_pk_value *args)
{
    if (fn->type != SV_PK_GLOBAL) return fail_at(m, "REDUCE of a non-callable ", sv_pk_type_name(fn->type));
    if (args->type != SV_PK_TUPLE) return fail_at(m, "REDUCE arguments are not a tuple", NULL);
    int kind = allowed[fn->u.global.id].kind;
    sv_pk_value **a = args->u.seq.v;
    int64_t na = args->u.seq.n;
    switch (kind) {
    case G_ODICT:
        if (na != 0) return fail_at(m, "collections.OrderedDict called with arguments", NULL);
        return push(m, newv(m, SV_PK_DICT));
    case G_TENSOR_V2: {
        /* (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
        if (na != 6 && na != 7) return fail_at(m, "_rebuild_tensor_v2: expected 6 or 7 arguments", NULL);
        if (a[0]->type != SV_PK_STORAGE) return fail_at(m, "_rebuild_tensor_v2: first argument is not a storage", NULL);
        if (!is_int(a[1]) || a[1]->u.i < 0) return fail_at(m, "_rebuild_tensor_v2: bad storage offset", NULL);
        if (a[4]->type != SV_PK_BOOL) return fail_at(m, "_rebuild_tensor_v2: requires_grad is not a bool", NULL);
        if (a[5]->type != SV_PK_DICT || a[5]->u.dict.n != 0)
            return fail_at(m, "_rebuild_tensor_v2: backward hooks must be an empty dict", NULL);
        sv_pk_value *t = newv(m, SV_PK_TENSOR);
        if (!t) return oom(m);
        int nd1, nd2;
        sv_rc rc;
        if ((rc = int_tuple(m, a[2], "size", t->u.tensor.shape, &nd1)) != SV_OK) return rc;
        if ((rc = int_tuple(m, a[3], "stride", t->u.tensor.stride, &nd2)) != SV_OK) return rc;
        if (nd1 != nd2) return fail_at(m, "_rebuild_tensor_v2: size and stride differ in length", NULL);
        t->u.tensor.ndim = nd1;
        t->u.tensor.storage = a[0];
        t->u.tensor.offset = a[1]->u.i;
        t->u.tensor.requires_grad = a[4]->u.b;
        return push(m, t);
    }
    case G_PARAM:
    case G_PARAM_STATE:
        /* (tensor, requires_grad, backward_hooks[, state]) */
        if (na != (kind == G_PARAM ? 3 : 4)) return fail_at(m, "_rebuild_parameter: wrong number of arguments", NULL);
        if (a[0]->type != SV_PK_TENSOR) return fail_at(m, "_rebuild_parameter: first argument is not a tensor", NULL);
        if (a[1]->type != SV_PK_BOOL) return fail_at(m, "_rebuild_parameter: requires_grad is not a bool", NULL);
        if (a[2]->type != SV_PK_DICT || a[2]->u.dict.n != 0)
            return fail_at(m, "_rebuild_parameter: backward hooks must be an empty dict", NULL);
        a[0]->u.tensor.requires_grad = a[1]->u.b;
        return push(m, a[0]);
    default:
        return fail_at(m, "cannot call ", sv_pk_global_name(fn));
    }
}

/* BINPERSID: ('storage', torch.<T>Storage, key, location, numel). */
static sv_rc persid(um *m, sv_pk_value *pid)
{
    if (pid->type != SV_PK_TUPLE || pid->u.seq.n != 5) return fail_at(m, "persistent id is not a 5-tuple", NULL);
    sv_pk_value **a = pid->u.seq.v;
    if (a[0]->type != SV_PK_STR || strcmp(a[0]->u.str.s, "storage") != 0)
        return fail_at(m, "persistent id does not start with 'storage'", NULL);
    if (a[1]->type != SV_PK_GLOBAL || allowed[a[1]->u.global.id].kind != G_STORAGE)
        return fail_at(m, "persistent id: not a storage type", NULL);
    if (a[2]->type != SV_PK_STR || a[2]->u.str.len == 0 || a[3]->type != SV_PK_STR)
        return fail_at(m, "persistent id: key and location must be strings", NULL);
    for (const char *c = a[2]->u.str.s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_'))
            return fail_at(m, "persistent id: storage key is not alphanumeric: ", a[2]->u.str.s);
    if (!is_int(a[4]) || a[4]->u.i < 0) return fail_at(m, "persistent id: bad storage size", NULL);
    sv_pk_value *s = newv(m, SV_PK_STORAGE);
    if (!s) return oom(m);
    s->u.storage.dtype = allowed[a[1]->u.global.id].dt;
    s->u.storage.key = a[2]->u.str.s;
    s->u.storage.location = a[3]->u.str.s;
    s->u.storage.numel = a[4]->u.i;
    return push(m, s);
}

static const char *op_name(unsigned char op)
{
    switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 'P': return "PERSID";
    case 0x82: case 0x83: case 0x84: return "EXT";
    case 'S': case 'T': case 'U': return "STRING";
    case 'V': return "UNICODE";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'p': case 'g': return "PUT/GET";
    case '0': case '1': case '2': return "POP/DUP";
    case 'l': case 'd': return "LIST/DICT";
    default: return "unknown";
    }
}

/* Pop the values above the last MARK into a new tuple/list. */
static sv_rc pop_mark(um *m, int64_t *from)
{
    if (!m->nmarks) return fail_at(m, "no MARK on the stack", NULL);
    *from = m->marks[--m->nmarks];
    return SV_OK;
}

/* Cycle check and height (longest path) of the tree, iteratively. */
static sv_rc check_tree(um *m, sv_pk_value *root)
{
    typedef struct { sv_pk_value *v; int64_t i; } fr;
    int64_t cap = 64, n = 0;
    fr *st = malloc((size_t)cap * sizeof *st);
    if (!st) return sv_fail(SV_EINTERNAL, "out of memory");
    sv_rc rc = SV_OK;
    /* mark_: 0 new, -1 on the current path, h > 0 done with height h. */
    st[n++] = (fr){root, 0};
    root->mark_ = -1;
    while (n > 0) {
        fr *f = &st[n - 1];
        sv_pk_value *v = f->v;
        int64_t cnt = v->type == SV_PK_DICT ? 2 * v->u.dict.n
                    : (v->type == SV_PK_TUPLE || v->type == SV_PK_LIST) ? v->u.seq.n : 0;
        if (f->i < cnt) {
            int64_t i = f->i++;
            sv_pk_value *c = v->type == SV_PK_DICT ? (i & 1 ? v->u.dict.v[i / 2] : v->u.dict.k[i / 2]) : v->u.seq.v[i];
            if (c->mark_ == -1) { rc = sv_fail(SV_EINPUT, "%s: pickle: a container contains itself", m->what); break; }
            if (c->mark_ > 0) continue;
            if (n == cap) {
                fr *ns = realloc(st, (size_t)(cap *= 2) * sizeof *st);
                if (!ns) { rc = sv_fail(SV_EINTERNAL, "out of memory"); break; }
                st = ns;
            }
            c->mark_ = -1;
            st[n++] = (fr){c, 0};
            continue;
        }
        int h = 1;
        for (int64_t i = 0; i < cnt; i++) {
            sv_pk_value *c = v->type == SV_PK_DICT ? (i & 1 ? v->u.dict.v[i / 2] : v->u.dict.k[i / 2]) : v->u.seq.v[i];
            if (c->mark_ + 1 > h) h = c->mark_ + 1;
        }
        if (h > MAX_HEIGHT) { rc = sv_fail(SV_EINPUT, "%s: pickle: values nested deeper than %d levels", m->what, MAX_HEIGHT); break; }
        v->mark_ = h;
        n--;
    }
    free(st);
    return rc;
}

static sv_rc run(um *m, sv_pk_value **result)
{
    sv_rc rc;
    sv_pk_value *x = NULL, *y = NULL, *z = NULL;
    if (m->n < 2 || m->b[0] != 0x80) {
        m->op_at = 0;
        return fail_at(m, "not a protocol 2+ pickle (no PROTO opcode)", NULL);
    }
    while (m->pos < m->n) {
        m->op_at = m->pos;
        unsigned char op = m->b[m->pos++];
        switch (op) {
        case 0x80: /* PROTO */
            if ((rc = need(m, 1)) != SV_OK) return rc;
            if (m->b[m->pos] < 2 || m->b[m->pos] > 5) return fail_at(m, "unsupported protocol", NULL);
            m->pos++;
            break;
        case 0x95: /* FRAME: a length hint only */
            if ((rc = need(m, 8)) != SV_OK) return rc;
            m->pos += 8;
            break;
        case '}': rc = push(m, newv(m, SV_PK_DICT)); if (rc) return rc; break;
        case ']': rc = push(m, newv(m, SV_PK_LIST)); if (rc) return rc; break;
        case ')': rc = push(m, newv(m, SV_PK_TUPLE)); if (rc) return rc; break;
        case 'N': rc = push(m, newv(m, SV_PK_NONE)); if (rc) return rc; break;
        case 0x88: case 0x89:
            if (!(x = newv(m, SV_PK_BOOL))) return oom(m);
            x->u.b = op == 0x88;
            if ((rc = push(m, x)) != SV_OK) return rc;
            break;
        case '(': /* MARK */
            if (m->nmarks == m->mcap) {
                if (m->mcap >= MAX_STACK) return fail_at(m, "too many MARKs", NULL);
                int64_t nc = m->mcap ? m->mcap * 2 : 16;
                int64_t *nm = realloc(m->marks, (size_t)nc * sizeof *nm);
                if (!nm) return sv_fail(SV_EINTERNAL, "out of memory (pickle marks)");
                m->marks = nm;
                m->mcap = nc;
            }
            m->marks[m->nmarks++] = m->sp;
            break;
        case 'q': case 'r': case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
            uint64_t idx;
            if (op == 0x94) idx = (uint64_t)m->memo_len;
            else {
                int k = op == 'q' ? 1 : 4;
                if ((rc = need(m, (size_t)k)) != SV_OK) return rc;
                idx = le(m->b + m->pos, k);
                m->pos += (size_t)k;
            }
            if (m->sp <= floor_(m)) return fail_at(m, "memo store from an empty stack", NULL);
            if ((rc = memo_put(m, idx, m->stack[m->sp - 1])) != SV_OK) return rc;
            break;
        }
        case 'h': case 'j': { /* BINGET, LONG_BINGET */
            int k = op == 'h' ? 1 : 4;
            if ((rc = need(m, (size_t)k)) != SV_OK) return rc;
            uint64_t idx = le(m->b + m->pos, k);
            m->pos += (size_t)k;
            if ((rc = memo_get(m, idx)) != SV_OK) return rc;
            break;
        }
        case 'X': case 0x8c: { /* BINUNICODE, SHORT_BINUNICODE */
            int k = op == 'X' ? 4 : 1;
            if ((rc = need(m, (size_t)k)) != SV_OK) return rc;
            uint64_t len = le(m->b + m->pos, k);
            m->pos += (size_t)k;
            if ((rc = need(m, len)) != SV_OK) return rc;
            if ((rc = new_str(m, m->b + m->pos, (size_t)len)) != SV_OK) return rc;
            m->pos += (size_t)len;
            break;
        }
        case 'J': case 'K': case 'M': { /* BININT (signed 32), BININT1, BININT2 */
            int k = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if ((rc = need(m, (size_t)k)) != SV_OK) return rc;
            uint64_t u = le(m->b + m->pos, k);
            m->pos += (size_t)k;
            if (!(x = newv(m, SV_PK_INT))) return oom(m);
            x->u.i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            if ((rc = push(m, x)) != SV_OK) return rc;
            break;
        }
        case 0x8a: { /* LONG1: n-byte two's complement */
            if ((rc = need(m, 1)) != SV_OK) return rc;
            unsigned k = m->b[m->pos++];
            if (k > 8) return fail_at(m, "integer wider than 64 bits", NULL);
            if ((rc = need(m, k)) != SV_OK) return rc;
            uint64_t u = le(m->b + m->pos, (int)k);
            if (k > 0 && k < 8 && (m->b[m->pos + k - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * k);
            m->pos += k;
            if (!(x = newv(m, SV_PK_INT))) return oom(m);
            x->u.i = (int64_t)u;
            if ((rc = push(m, x)) != SV_OK) return rc;
            break;
        }
        case 'G': { /* BINFLOAT, big-endian */
            if ((rc = need(m, 8)) != SV_OK) return rc;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | m->b[m->pos + (size_t)i];
            m->pos += 8;
            if (!(x = newv(m, SV_PK_FLOAT))) return oom(m);
            memcpy(&x->u.f, &u, 8);
            if ((rc = push(m, x)) != SV_OK) return rc;
            break;
        }
        case 't': { /* TUPLE (from MARK) */
            int64_t from = 0;
            if ((rc = pop_mark(m, &from)) != SV_OK) return rc;
            if (!(x = newv(m, SV_PK_TUPLE))) return oom(m);
            for (int64_t i = from; i < m->sp; i++)
                if ((rc = seq_add(m, x, m->stack[i])) != SV_OK) return rc;
            m->sp = from;
            if ((rc = push(m, x)) != SV_OK) return rc;
            break;
        }
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            int k = op - 0x84;
            if (m->sp - floor_(m) < k) return fail_at(m, "stack underflow", NULL);
            if (!(x = newv(m, SV_PK_TUPLE))) return oom(m);
            for (int64_t i = m->sp - k; i < m->sp; i++)
                if ((rc = seq_add(m, x, m->stack[i])) != SV_OK) return rc;
            m->sp -= k;
            if ((rc = push(m, x)) != SV_OK) return rc;
            break;
        }
        case 'a': /* APPEND */
            if ((rc = pop(m, &y)) != SV_OK) return rc;
            if (m->sp <= floor_(m) || (x = m->stack[m->sp - 1])->type != SV_PK_LIST)
                return fail_at(m, "APPEND to a non-list", NULL);
            if ((rc = seq_add(m, x, y)) != SV_OK) return rc;
            break;
        case 'e': { /* APPENDS */
            int64_t from = 0;
            if ((rc = pop_mark(m, &from)) != SV_OK) return rc;
            if (from <= floor_(m) || (x = m->stack[from - 1])->type != SV_PK_LIST)
                return fail_at(m, "APPENDS to a non-list", NULL);
            for (int64_t i = from; i < m->sp; i++)
                if ((rc = seq_add(m, x, m->stack[i])) != SV_OK) return rc;
            m->sp = from;
            break;
        }
        case 's': /* SETITEM */
            if ((rc = pop(m, &z)) != SV_OK || (rc = pop(m, &y)) != SV_OK) return rc;
            if (m->sp <= floor_(m) || (x = m->stack[m->sp - 1])->type != SV_PK_DICT)
                return fail_at(m, "SETITEM on a non-dict", NULL);
            if ((rc = dict_add(m, x, y, z)) != SV_OK) return rc;
            break;
        case 'u': { /* SETITEMS */
            int64_t from = 0;
            if ((rc = pop_mark(m, &from)) != SV_OK) return rc;
            if ((m->sp - from) % 2) return fail_at(m, "SETITEMS with an odd number of values", NULL);
            if (from <= floor_(m) || (x = m->stack[from - 1])->type != SV_PK_DICT)
                return fail_at(m, "SETITEMS on a non-dict", NULL);
            for (int64_t i = from; i < m->sp; i += 2)
                if ((rc = dict_add(m, x, m->stack[i], m->stack[i + 1])) != SV_OK) return rc;
            m->sp = from;
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const char *s = (const char *)m->b + m->pos;
            size_t left = m->n - m->pos;
            const char *nl1 = memchr(s, '\n', left);
            if (!nl1) return fail_at(m, "truncated GLOBAL", NULL);
            const char *nl2 = memchr(nl1 + 1, '\n', left - (size_t)(nl1 + 1 - s));
            if (!nl2) return fail_at(m, "truncated GLOBAL", NULL);
            char mod[256], name[256];
            size_t l1 = (size_t)(nl1 - s), l2 = (size_t)(nl2 - nl1 - 1);
            snprintf(mod, sizeof mod, "%.*s", (int)(l1 < 255 ? l1 : 255), s);
            snprintf(name, sizeof name, "%.*s", (int)(l2 < 255 ? l2 : 255), nl1 + 1);
            if (l1 > 255 || l2 > 255 || memchr(s, 0, (size_t)(nl2 - s)))
                return sv_fail(SV_EINPUT, "%s: disallowed global %s.%s... at offset %zu", m->what, mod, name, m->op_at);
            m->pos += (size_t)(nl2 + 1 - s);
            if ((rc = global(m, mod, name)) != SV_OK) return rc;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if ((rc = pop(m, &y)) != SV_OK || (rc = pop(m, &x)) != SV_OK) return rc;
            if (x->type != SV_PK_STR || y->type != SV_PK_STR) return fail_at(m, "STACK_GLOBAL of non-strings", NULL);
            if ((rc = global(m, x->u.str.s, y->u.str.s)) != SV_OK) return rc;
            break;
        case 'R': /* REDUCE */
            if ((rc = pop(m, &y)) != SV_OK || (rc = pop(m, &x)) != SV_OK) return rc;
            if ((rc = reduce(m, x, y)) != SV_OK) return rc;
            break;
        case 'Q': /* BINPERSID */
            if ((rc = pop(m, &x)) != SV_OK) return rc;
            if ((rc = persid(m, x)) != SV_OK) return rc;
            break;
        case 'b': /* BUILD: only an OrderedDict's attribute dict (state_dict's _metadata), dropped */
            if ((rc = pop(m, &y)) != SV_OK) return rc;
            if (m->sp <= floor_(m) || m->stack[m->sp - 1]->type != SV_PK_DICT)
                return fail_at(m, "BUILD on a non-dict", NULL);
            if (y->type != SV_PK_DICT && y->type != SV_PK_NONE) return fail_at(m, "BUILD with a non-dict state", NULL);
            break;
        case '.': /* STOP */
            if (m->nmarks) return fail_at(m, "STOP with an open MARK", NULL);
            if (m->sp != 1) return fail_at(m, "STOP with a stack not holding exactly one value", NULL);
            if (m->pos != m->n) return fail_at(m, "bytes after STOP", NULL);
            *result = m->stack[0];
            return check_tree(m, m->stack[0]);
        default: {
            char nm[64];
            snprintf(nm, sizeof nm, "%s (0x%02x)", op_name(op), op);
            return fail_at(m, "disallowed opcode ", nm);
        }
        }
    }
    m->op_at = m->n;
    return fail_at(m, "no STOP opcode (truncated)", NULL);
}

sv_rc sv_pickle_load(sv_pickle *p, const void *buf, size_t n, const char *what)
{
    memset(p, 0, sizeof *p);
    if (n > SV_PK_MAX_INPUT)
        return sv_fail(SV_EINPUT, "%s: pickle of %zu bytes (at most %u accepted)", what, n, SV_PK_MAX_INPUT);
    sv_pk_arena *a = calloc(1, sizeof *a);
    if (!a) return sv_fail(SV_EINTERNAL, "out of memory");
    /* A plain state dict costs ~30 bytes of values per pickle byte (a tensor
     * record of ~90 bytes builds ~17 values); hostile input at most ~200
     * (an EMPTY_LIST byte is one value). 256 per byte, capped, covers the
     * first and bounds the second. */
    a->limit = (size_t)n * 256 + ((size_t)1 << 20);
    if (a->limit > ARENA_MAX) a->limit = ARENA_MAX;
    um m = {.b = buf, .n = n, .what = what, .a = a};
    sv_pk_value *root = NULL;
    sv_rc rc = run(&m, &root);
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (rc != SV_OK) {
        arena_free(a);
        return rc;
    }
    p->arena = a;
    p->root = root;
    return SV_OK;
}

void sv_pickle_free(sv_pickle *p)
{
    if (!p) return;
    arena_free(p->arena);
    p->arena = NULL;
    p->root = NULL;
}
