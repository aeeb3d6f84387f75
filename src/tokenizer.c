/* Hugging Face tokenizer.json: id -> bytes, and spans of ids -> safe UTF-8.
 * The file is untrusted: every field is type-checked, ids are bounded, and
 * the decoder is a fixed list of known steps (nothing is interpreted). */
#include "saeval/tokenizer.h"
#include "saeval/fsutil.h" /* sv_read_file */
#include "saeval/json.h"   /* sv_json_parse_exact */

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F_PRESENT 1u
#define F_SPECIAL 2u

struct sv_tokenizer {
    int64_t n;             /* id slots */
    size_t *off;           /* [n + 1] offsets into bytes */
    unsigned char *flags;  /* [n] F_* */
    char *bytes;
    size_t nbytes;
    sv_tok_kind kind;
};

/* ---- growable byte buffer ---- */
typedef struct { unsigned char *p; size_t n, cap; int oom; } buf;

static void buf_put(buf *b, const void *s, size_t n)
{
    if (b->oom || n == 0) return; /* n == 0: b->p may still be NULL */
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* ---- strict UTF-8: length of the valid character at s (0: invalid) ---- */
static int utf8_char(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static int utf8_put(unsigned char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- decoder steps (per token) ---- */
typedef struct step step;
typedef void (*step_fn)(const step *st, const unsigned char *in, size_t n, buf *out);
struct step {
    step_fn fn;
    char *pat, *rep; /* Replace / Metaspace */
    size_t npat, nrep;
};

/* GPT-2's byte-to-unicode table, inverted: printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100.. in byte order. */
static int16_t bl_inv[256 + 68];

static void bl_init(void)
{
    int next = 0;
    for (int i = 0; i < (int)(sizeof bl_inv / sizeof bl_inv[0]); i++) bl_inv[i] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        if (printable) bl_inv[b] = (int16_t)b;
        else bl_inv[256 + next++] = (int16_t)b;
    }
}

static void st_bytelevel(const step *st, const unsigned char *in, size_t n, buf *out)
{
    (void)st;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int l = utf8_char(in + i, n - i, &cp);
        if (l == 0) { buf_put(out, in + i, 1); i++; continue; }
        if (cp < sizeof bl_inv / sizeof bl_inv[0] && bl_inv[cp] >= 0) {
            unsigned char b = (unsigned char)bl_inv[cp];
            buf_put(out, &b, 1);
        } else {
            buf_put(out, in + i, (size_t)l); /* not in the table: kept as is, as tokenizers does */
        }
        i += (size_t)l;
    }
}

static void st_replace(const step *st, const unsigned char *in, size_t n, buf *out)
{
    size_t i = 0;
    while (i < n) {
        if (n - i >= st->npat && memcmp(in + i, st->pat, st->npat) == 0) {
            buf_put(out, st->rep, st->nrep);
            i += st->npat;
        } else {
            buf_put(out, in + i, 1);
            i++;
        }
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static void st_bytefallback(const step *st, const unsigned char *in, size_t n, buf *out)
{
    (void)st;
    if (n == 6 && memcmp(in, "<0x", 3) == 0 && in[5] == '>' && hexval(in[3]) >= 0 && hexval(in[4]) >= 0) {
        unsigned char b = (unsigned char)(hexval(in[3]) * 16 + hexval(in[4]));
        buf_put(out, &b, 1);
    } else {
        buf_put(out, in, n);
    }
}

static void st_copy(const step *st, const unsigned char *in, size_t n, buf *out)
{
    (void)st;
    buf_put(out, in, n);
}

/* A decoder object -> steps. One row per supported type. */
typedef sv_rc (*dec_parse_fn)(const cJSON *d, step *st, const char *path, const char *field);

static sv_rc str_field(const cJSON *d, const char *key, const char *dflt, char **out, size_t *n,
                       const char *path, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, key);
    const char *s = dflt;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v)) return sv_fail(SV_EINPUT, "%s: %s.%s: must be a string", path, field, key);
        s = v->valuestring;
    }
    if (!s) return sv_fail(SV_EINPUT, "%s: %s.%s: missing", path, field, key);
    *out = sv_strdup(s);
    if (!*out) return SV_EINTERNAL;
    *n = strlen(s);
    return SV_OK;
}

static sv_rc dp_bytelevel(const cJSON *d, step *st, const char *path, const char *field)
{
    (void)d; (void)path; (void)field;
    st->fn = st_bytelevel;
    return SV_OK;
}

static sv_rc dp_copy(const cJSON *d, step *st, const char *path, const char *field)
{
    (void)d; (void)path; (void)field;
    st->fn = st_copy; /* Fuse, Strip: act on the whole text, not on one token */
    return SV_OK;
}

static sv_rc dp_bytefallback(const cJSON *d, step *st, const char *path, const char *field)
{
    (void)d; (void)path; (void)field;
    st->fn = st_bytefallback;
    return SV_OK;
}

static sv_rc dp_metaspace(const cJSON *d, step *st, const char *path, const char *field)
{
    sv_rc rc = str_field(d, "replacement", "\xe2\x96\x81", &st->pat, &st->npat, path, field);
    if (rc != SV_OK) return rc;
    if (st->npat == 0) return sv_fail(SV_EINPUT, "%s: %s.replacement: empty", path, field);
    st->rep = sv_strdup(" ");
    if (!st->rep) return SV_EINTERNAL;
    st->nrep = 1;
    st->fn = st_replace;
    return SV_OK;
}

static sv_rc dp_replace(const cJSON *d, step *st, const char *path, const char *field)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(d, "pattern");
    if (!cJSON_IsObject(p)) return sv_fail(SV_EINPUT, "%s: %s.pattern: must be an object {\"String\": ...}", path, field);
    if (!cJSON_GetObjectItemCaseSensitive(p, "String"))
        return sv_fail(SV_EINPUT, "%s: %s.pattern: only String patterns are supported (no Regex)", path, field);
    sv_rc rc = str_field(p, "String", NULL, &st->pat, &st->npat, path, field);
    if (rc != SV_OK) return rc;
    if (st->npat == 0) return sv_fail(SV_EINPUT, "%s: %s.pattern.String: empty", path, field);
    rc = str_field(d, "content", NULL, &st->rep, &st->nrep, path, field);
    if (rc != SV_OK) return rc;
    st->fn = st_replace;
    return SV_OK;
}

static const struct {
    const char *type;
    dec_parse_fn parse;
    sv_tok_kind kind; /* what the step says about the vocabulary */
} dec_table[] = {
    {"ByteLevel", dp_bytelevel, SV_TOK_KIND_BYTELEVEL},
    {"Metaspace", dp_metaspace, SV_TOK_KIND_SENTENCEPIECE},
    {"Replace", dp_replace, SV_TOK_KIND_PLAIN},
    {"ByteFallback", dp_bytefallback, SV_TOK_KIND_SENTENCEPIECE},
    {"Fuse", dp_copy, SV_TOK_KIND_PLAIN},
    {"Strip", dp_copy, SV_TOK_KIND_PLAIN},
};

#define MAX_STEPS 16

typedef struct { step s[MAX_STEPS]; int n; sv_tok_kind kind; } steps;

static void steps_free(steps *ss)
{
    for (int i = 0; i < ss->n; i++) { free(ss->s[i].pat); free(ss->s[i].rep); }
}

static sv_rc parse_one_decoder(const cJSON *d, steps *ss, const char *path, const char *field, int depth)
{
    if (!cJSON_IsObject(d)) return sv_fail(SV_EINPUT, "%s: %s: must be an object", path, field);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(d, "type");
    if (!cJSON_IsString(ty)) return sv_fail(SV_EINPUT, "%s: %s.type: must be a string", path, field);
    if (strcmp(ty->valuestring, "Sequence") == 0) {
        if (depth > 0) return sv_fail(SV_EINPUT, "%s: %s: nested Sequence decoders are not supported", path, field);
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders");
        if (!cJSON_IsArray(list)) return sv_fail(SV_EINPUT, "%s: %s.decoders: must be an array", path, field);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, list) {
            char f[64];
            snprintf(f, sizeof f, "decoder.decoders[%d]", i++);
            sv_rc rc = parse_one_decoder(e, ss, path, f, depth + 1);
            if (rc != SV_OK) return rc;
        }
        return SV_OK;
    }
    for (size_t k = 0; k < sizeof dec_table / sizeof dec_table[0]; k++) {
        if (strcmp(ty->valuestring, dec_table[k].type) != 0) continue;
        if (ss->n == MAX_STEPS) return sv_fail(SV_EINPUT, "%s: %s: more than %d decoder steps", path, field, MAX_STEPS);
        step *st = &ss->s[ss->n++];
        memset(st, 0, sizeof *st);
        if (dec_table[k].kind > ss->kind) ss->kind = dec_table[k].kind;
        return dec_table[k].parse(d, st, path, field);
    }
    return sv_fail(SV_EINPUT,
                   "%s: %s.type: decoder '%.64s' is not supported (ByteLevel, Metaspace, or a Sequence of "
                   "Replace, ByteFallback, Fuse, Strip)", path, field, ty->valuestring);
}

/* ---- vocabulary ---- */
static int get_id(const cJSON *v, int64_t *id)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d >= (double)SV_TOK_MAX_ID || d != floor(d)) return 0;
    *id = (int64_t)d;
    return 1;
}

typedef struct { const char *s; unsigned char flags; } slot;

static sv_rc collect(const cJSON *root, const char *path, slot **out_slots, int64_t *out_n)
{
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return sv_fail(SV_EINPUT, "%s: model: must be an object", path);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(model, "type");
    const char *type = NULL;
    if (ty && !cJSON_IsNull(ty)) {
        if (!cJSON_IsString(ty)) return sv_fail(SV_EINPUT, "%s: model.type: must be a string", path);
        type = ty->valuestring;
        if (strcmp(type, "BPE") && strcmp(type, "Unigram") && strcmp(type, "WordPiece") && strcmp(type, "WordLevel"))
            return sv_fail(SV_EINPUT, "%s: model.type: '%.64s' is not supported (BPE, Unigram, WordPiece, WordLevel)",
                           path, type);
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    int unigram = type && strcmp(type, "Unigram") == 0;
    if (unigram ? !cJSON_IsArray(vocab) : !(cJSON_IsObject(vocab) || (!type && cJSON_IsArray(vocab))))
        return sv_fail(SV_EINPUT, "%s: model.vocab: must be %s", path,
                       unigram ? "an array of [token, score] pairs (Unigram)" : "an object token -> id");
    if (cJSON_IsArray(vocab)) unigram = 1;

    /* First pass: the largest id and the number of entries. */
    int64_t max_id = -1, entries = 0, i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        int64_t id;
        if (unigram) {
            const cJSON *tok = cJSON_IsArray(e) ? cJSON_GetArrayItem(e, 0) : NULL;
            if (!cJSON_IsString(tok))
                return sv_fail(SV_EINPUT, "%s: model.vocab[%" PRId64 "]: must be [token string, score]", path, i);
            if (i >= SV_TOK_MAX_ID) return sv_fail(SV_EINPUT, "%s: model.vocab: more than %" PRId64 " entries", path, SV_TOK_MAX_ID);
            id = i;
        } else if (!get_id(e, &id)) {
            return sv_fail(SV_EINPUT, "%s: model.vocab: token '%.40s': id must be an integer in [0, %" PRId64 ")",
                           path, e->string ? e->string : "", SV_TOK_MAX_ID);
        }
        if (id > max_id) max_id = id;
        entries++;
        i++;
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return sv_fail(SV_EINPUT, "%s: added_tokens: must be an array", path);
    i = 0;
    cJSON_ArrayForEach(e, added) {
        int64_t id;
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsObject(e) || !get_id(cJSON_GetObjectItemCaseSensitive(e, "id"), &id))
            return sv_fail(SV_EINPUT, "%s: added_tokens[%" PRId64 "].id: must be an integer in [0, %" PRId64 ")",
                           path, i, SV_TOK_MAX_ID);
        if (!cJSON_IsString(c)) return sv_fail(SV_EINPUT, "%s: added_tokens[%" PRId64 "].content: must be a string", path, i);
        if (id > max_id) max_id = id;
        entries++;
        i++;
    }
    if (max_id < 0) return sv_fail(SV_EINPUT, "%s: model.vocab: empty (and no added_tokens)", path);
    /* Real vocabularies are dense; a file claiming huge ids with few entries
     * would only make us allocate for nothing. */
    if (max_id + 1 > 2 * entries + 4096)
        return sv_fail(SV_EINPUT, "%s: model.vocab: largest id %" PRId64 " but only %" PRId64
                       " tokens (more than half the ids unused)", path, max_id, entries);

    slot *sl = sv_calloc((size_t)max_id + 1, sizeof *sl);
    if (!sl) return SV_EINTERNAL;
    i = 0;
    cJSON_ArrayForEach(e, vocab) {
        int64_t id = i;
        const char *s = unigram ? cJSON_GetArrayItem(e, 0)->valuestring : e->string;
        if (!unigram) get_id(e, &id);
        if (!s) s = "";
        if (sl[id].flags && strcmp(sl[id].s, s) != 0) {
            free(sl);
            return sv_fail(SV_EINPUT, "%s: model.vocab: id %" PRId64 " given to two tokens", path, id);
        }
        sl[id].s = s;
        sl[id].flags = F_PRESENT;
        i++;
    }
    cJSON_ArrayForEach(e, added) {
        int64_t id = 0;
        get_id(cJSON_GetObjectItemCaseSensitive(e, "id"), &id);
        sl[id].s = cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring; /* added tokens win */
        sl[id].flags = F_PRESENT;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"))) sl[id].flags |= F_SPECIAL;
    }
    *out_slots = sl;
    *out_n = max_id + 1;
    return SV_OK;
}

static sv_rc build(sv_tokenizer *t, const slot *sl, const steps *ss)
{
    buf out = {0}, a = {0}, b = {0};
    t->off = sv_calloc((size_t)t->n + 1, sizeof *t->off);
    t->flags = sv_calloc((size_t)t->n, 1);
    if (!t->off || !t->flags) return SV_EINTERNAL;
    for (int64_t id = 0; id < t->n; id++) {
        t->off[id] = out.n;
        t->flags[id] = sl[id].flags;
        if (!sl[id].flags) continue;
        a.n = 0;
        buf_put(&a, sl[id].s, strlen(sl[id].s));
        for (int k = 0; k < ss->n; k++) {
            b.n = 0;
            ss->s[k].fn(&ss->s[k], a.p, a.n, &b);
            buf tmp = a; a = b; b = tmp;
        }
        buf_put(&out, a.p, a.n);
        if (a.oom || b.oom || out.oom) break;
    }
    int oom = a.oom || b.oom || out.oom;
    free(a.p);
    free(b.p);
    if (oom) { free(out.p); return sv_fail(SV_EINTERNAL, "out of memory decoding the vocabulary"); }
    t->off[t->n] = out.n;
    if (!out.p && !(out.p = malloc(1))) return sv_fail(SV_EINTERNAL, "out of memory"); /* every token empty */
    t->bytes = (char *)out.p;
    t->nbytes = out.n;
    return SV_OK;
}

sv_rc sv_tokenizer_parse(sv_tokenizer **out, const char *json, size_t n, const char *path)
{
    *out = NULL;
    bl_init();
    cJSON *root = sv_json_parse_exact(json, n);
    if (!root) return sv_fail(SV_EINPUT, "%s: not valid JSON", path);
    sv_rc rc = SV_OK;
    slot *sl = NULL;
    steps ss;
    memset(&ss, 0, sizeof ss);
    sv_tokenizer *t = sv_calloc(1, sizeof *t);
    if (!t) { rc = SV_EINTERNAL; goto out; }
    if (!cJSON_IsObject(root)) { rc = sv_fail(SV_EINPUT, "%s: not a JSON object", path); goto out; }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (dec && !cJSON_IsNull(dec)) {
        rc = parse_one_decoder(dec, &ss, path, "decoder", 0);
        if (rc != SV_OK) goto out;
    }
    rc = collect(root, path, &sl, &t->n);
    if (rc != SV_OK) goto out;
    t->kind = ss.kind;
    rc = build(t, sl, &ss);
out:
    steps_free(&ss);
    free(sl);
    cJSON_Delete(root);
    if (rc != SV_OK) sv_tokenizer_free(t);
    else *out = t;
    return rc;
}

sv_rc sv_tokenizer_load(sv_tokenizer **out, const char *path)
{
    char *text = NULL;
    size_t n = 0;
    *out = NULL;
    sv_rc rc = sv_read_file(path, &text, &n);
    if (rc != SV_OK) return rc;
    rc = sv_tokenizer_parse(out, text, n, path);
    free(text);
    return rc;
}

void sv_tokenizer_free(sv_tokenizer *t)
{
    if (!t) return;
    free(t->off);
    free(t->flags);
    free(t->bytes);
    free(t);
}

int64_t sv_tokenizer_size(const sv_tokenizer *t) { return t ? t->n : 0; }
sv_tok_kind sv_tokenizer_kind(const sv_tokenizer *t) { return t ? t->kind : SV_TOK_KIND_PLAIN; }

size_t sv_tokenizer_mem(const sv_tokenizer *t)
{
    return t ? sizeof *t + ((size_t)t->n + 1) * sizeof(size_t) + (size_t)t->n + t->nbytes : 0;
}

int sv_tokenizer_bytes(const sv_tokenizer *t, int64_t id, const char **bytes, size_t *len, int *special)
{
    if (!t || id < 0 || id >= t->n || !(t->flags[id] & F_PRESENT)) return 0;
    *bytes = t->bytes + t->off[id];
    *len = t->off[id + 1] - t->off[id];
    if (special) *special = (t->flags[id] & F_SPECIAL) != 0;
    return 1;
}

sv_rc sv_tokenizer_check_ids(const sv_tokenizer *t, const char *tok_path, const int64_t *ids, size_t n,
                             const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n)
            return sv_fail(SV_EINPUT,
                           "%s: token_ids[%zu] = %" PRId64 " is outside the vocabulary of %s (%" PRId64
                           " ids): the tokenizer does not belong to this model", what, i, ids[i], tok_path, t->n);
    return SV_OK;
}

/* ---- rendering ---- */
static void emit_cp(buf *o, uint32_t cp, unsigned flags)
{
    unsigned char tmp[16];
    if (cp == 0 && !(flags & SV_TOK_ESCAPE)) cp = 0x2400; /* strings are NUL-terminated: show U+2400 */
    if (flags & SV_TOK_ESCAPE) {
        const char *e = NULL;
        if (cp == '\n') e = "\\n";
        else if (cp == '\t') e = "\\t";
        else if (cp == '\r') e = "\\r";
        else if (cp == '\\') e = "\\\\";
        if (e) { buf_put(o, e, 2); return; }
        if (cp < 0x20 || cp == 0x7F) { int k = snprintf((char *)tmp, sizeof tmp, "\\x%02x", (unsigned)cp); buf_put(o, tmp, (size_t)k); return; }
        if (cp >= 0x80 && cp < 0xA0) { int k = snprintf((char *)tmp, sizeof tmp, "\\u%04x", (unsigned)cp); buf_put(o, tmp, (size_t)k); return; }
    }
    buf_put(o, tmp, (size_t)utf8_put(tmp, cp));
}

sv_rc sv_tok_render(const sv_tokenizer *t, const int64_t *ids, size_t n, unsigned flags, char ***out)
{
    *out = NULL;
    buf s = {0};                 /* concatenated raw bytes */
    size_t *end = sv_calloc(n + 1, sizeof *end); /* end[i]: stream offset after token i */
    if (!end) return SV_EINTERNAL;
    for (size_t i = 0; i < n; i++) {
        const char *b;
        size_t len;
        char tmp[48];
        if (!t) {
            int k = snprintf(tmp, sizeof tmp, "%" PRId64, ids[i]);
            buf_put(&s, tmp, (size_t)k);
        } else if (sv_tokenizer_bytes(t, ids[i], &b, &len, NULL)) {
            buf_put(&s, b, len);
        } else {
            int k = snprintf(tmp, sizeof tmp, "<unk:%" PRId64 ">", ids[i]);
            buf_put(&s, tmp, (size_t)k);
        }
        end[i] = s.n;
    }
    buf o = {0};
    size_t *start = sv_calloc(n + 1, sizeof *start); /* output offset of token i's string */
    if (!start || s.oom) { free(end); free(start); free(s.p); return sv_fail(SV_EINTERNAL, "out of memory rendering tokens"); }
    size_t p = 0, tok = 0;
    while (p < s.n) {
        uint32_t cp = 0;
        int l = utf8_char(s.p + p, s.n - p, &cp);
        size_t last = l ? p + (size_t)l - 1 : p; /* the byte that decides the owner */
        while (tok < n && end[tok] <= last) { /* close tokens that end before it */
            buf_put(&o, "", 1);
            start[++tok] = o.n;
        }
        emit_cp(&o, l ? cp : 0xFFFD, l ? flags : 0);
        p += l ? (size_t)l : 1;
    }
    while (tok < n) { buf_put(&o, "", 1); start[++tok] = o.n; }
    free(s.p);
    free(end);
    char **res = o.oom ? NULL : malloc(n * sizeof(char *) + o.n + 1);
    if (!res) { free(o.p); free(start); return sv_fail(SV_EINTERNAL, "out of memory rendering tokens"); }
    char *text = (char *)(res + n);
    if (o.n) memcpy(text, o.p, o.n);
    for (size_t i = 0; i < n; i++) res[i] = text + start[i];
    free(o.p);
    free(start);
    *out = res;
    return SV_OK;
}
