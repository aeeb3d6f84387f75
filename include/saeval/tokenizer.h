/* Token ids to text, from a Hugging Face tokenizer.json (read defensively:
 * it comes from strangers). Supported vocabularies: BPE/WordPiece (`model.vocab`
 * an object token -> id), Unigram (`model.vocab` an array of [token, score]),
 * plus `added_tokens`. Supported decoders: ByteLevel (GPT-2's byte-to-unicode
 * table), Metaspace, and Sequence of Replace (string patterns), ByteFallback
 * (`<0xNN>` tokens), Fuse, Strip, ByteLevel, Metaspace; no decoder means the
 * token strings are shown as they are.
 *
 * Each id is decoded on its own to raw bytes (the decoder steps that act on a
 * single token); a span of tokens is then rendered to valid UTF-8 with
 * characters split across tokens put on the token where they complete. */
#ifndef SAEVAL_TOKENIZER_H
#define SAEVAL_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "saeval/error.h"

typedef struct sv_tokenizer sv_tokenizer;

/* Largest id accepted in a tokenizer.json (vocabularies are < 1M today). */
#define SV_TOK_MAX_ID ((int64_t)1 << 24)

typedef enum {
    SV_TOK_KIND_PLAIN = 0,      /* no decoder / string replacements only */
    SV_TOK_KIND_BYTELEVEL = 1,  /* GPT-2 style byte-level BPE */
    SV_TOK_KIND_SENTENCEPIECE = 2 /* '▁' for a space and/or <0xNN> byte fallback */
} sv_tok_kind;

sv_rc sv_tokenizer_load(sv_tokenizer **out, const char *path);
/* Parse exactly n bytes of tokenizer.json text; path names it in messages. */
sv_rc sv_tokenizer_parse(sv_tokenizer **out, const char *json, size_t n, const char *path);
void sv_tokenizer_free(sv_tokenizer *t);

/* Number of id slots: largest id + 1 (some ids in between may be unused). */
int64_t sv_tokenizer_size(const sv_tokenizer *t);
sv_tok_kind sv_tokenizer_kind(const sv_tokenizer *t);
/* Raw decoded bytes of one id (not NUL-terminated, may be invalid UTF-8).
 * Returns 0 when the id is out of range or unused. special: 1 for an
 * added token marked special. */
int sv_tokenizer_bytes(const sv_tokenizer *t, int64_t id, const char **bytes, size_t *len,
                       int *special);

/* Every id must be a slot of the tokenizer: a store's ids against the
 * tokenizer named in the config. what names the ids (the store's path). */
sv_rc sv_tokenizer_check_ids(const sv_tokenizer *t, const char *tok_path, const int64_t *ids,
                             size_t n, const char *what);

/* Render flags. */
#define SV_TOK_ESCAPE 1u /* control characters and backslash as \n \t \xNN \uNNNN \\ (terminal output) */

/* Render ids[0..n) as n NUL-terminated, valid UTF-8 strings. *out is ONE
 * allocation (the pointer array followed by the text): free(*out). A
 * multi-byte character split across tokens is shown on the token holding
 * its last byte (the earlier tokens show nothing of it); bytes that are not
 * part of a valid character become U+FFFD, one per byte; an unused or
 * out-of-range id shows as <unk:ID>. t NULL: the ids are shown in decimal. */
sv_rc sv_tok_render(const sv_tokenizer *t, const int64_t *ids, size_t n, unsigned flags,
                    char ***out);

/* Bytes needed for the tokenizer's tables (for memory estimates). */
size_t sv_tokenizer_mem(const sv_tokenizer *t);

#endif
