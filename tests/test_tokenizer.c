/* tokenizer.json reading and rendering, against hand-built files of both
 * kinds (tests/fuzz/corpus_fuzz_tokenizer/) whose expected texts are written
 * out by hand: GPT-2 byte-level (known vocabulary facts: 'Ġ' is a space,
 * 'Ċ' a newline, "ðŁĺĢ" the bytes of U+1F600, 'ł' 0xA0, 'Ń' 0xAD) and
 * SentencePiece style ('▁' for a space, <0xNN> byte fallback, Unigram). */
#define TEST_NAME "test_tokenizer"
#include "saeval/tokenizer.h"
#include "testutil.h"

#include <stdint.h>
#include <string.h>

static const char *dir;

static sv_tokenizer *load(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sv_tokenizer *t = NULL;
    if (sv_tokenizer_load(&t, path) != SV_OK) die("load failed", sv_errmsg());
    return t;
}

/* Render ids and compare every string with the expected ones. */
static void expect(const sv_tokenizer *t, const int64_t *ids, size_t n, unsigned flags, const char *const *want)
{
    char **got = NULL;
    CHECK(sv_tok_render(t, ids, n, flags, &got) == SV_OK);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(got[i], want[i]) != 0) {
            fprintf(stderr, "token %zu (id %lld): got '%s' want '%s'\n", i, (long long)ids[i], got[i], want[i]);
            CHECK(!"rendered text differs");
        }
    }
    free(got);
}

#define IDS(...) (const int64_t[]){__VA_ARGS__}
#define STRS(...) (const char *const[]){__VA_ARGS__}
#define EXPECT(t, flags, ids, strs) expect(t, IDS ids, sizeof(IDS ids) / sizeof(int64_t), flags, STRS strs)

static void byte_level(void)
{
    sv_tokenizer *t = load("bytelevel.json");
    CHECK(sv_tokenizer_size(t) == 19);
    CHECK(sv_tokenizer_kind(t) == SV_TOK_KIND_BYTELEVEL);
    EXPECT(t, 0, (0, 1, 2), ("h", "ello", " world"));
    /* é = C3 A9 split over two tokens: shown on the second */
    EXPECT(t, 0, (8, 3, 4), ("caf", "", "\xc3\xa9"));
    EXPECT(t, 0, (5, 6), ("", "\xf0\x9f\x98\x80"));
    /* a character cut by the span's end or by a non-continuation: U+FFFD per byte */
    EXPECT(t, 0, (5, 0), ("\xef\xbf\xbd\xef\xbf\xbd", "h"));
    EXPECT(t, 0, (8, 3), ("caf", "\xef\xbf\xbd"));
    EXPECT(t, 0, (4, 0), ("\xef\xbf\xbd", "h"));
    EXPECT(t, 0, (7, 18, 10), ("\n", "\t", " "));
    EXPECT(t, SV_TOK_ESCAPE, (7, 18, 11, 12, 16, 13), ("\\n", "\\t", "\\\\", "\\x01", "\\x7f", "\\x00"));
    EXPECT(t, 0, (13, 11), ("\xe2\x90\x80", "\\")); /* NUL shown as U+2400 unescaped */
    EXPECT(t, 0, (9, 99, -1), ("<|endoftext|>", "<unk:99>", "<unk:-1>"));
    /* single bytes that are not valid UTF-8 on their own: checked as bytes */
    const char *b;
    size_t len;
    int special = -1;
    CHECK(sv_tokenizer_bytes(t, 14, &b, &len, &special) && len == 1 && (unsigned char)b[0] == 0xA0 && special == 0);
    CHECK(sv_tokenizer_bytes(t, 15, &b, &len, NULL) && len == 1 && (unsigned char)b[0] == 0xAD);
    CHECK(sv_tokenizer_bytes(t, 17, &b, &len, NULL) && len == 1 && (unsigned char)b[0] == 0xFF);
    CHECK(sv_tokenizer_bytes(t, 13, &b, &len, NULL) && len == 1 && b[0] == 0);
    CHECK(sv_tokenizer_bytes(t, 9, &b, &len, &special) && len == 13 && special == 1);
    CHECK(!sv_tokenizer_bytes(t, 19, &b, &len, NULL) && !sv_tokenizer_bytes(t, -3, &b, &len, NULL));
    /* the vocabulary-size check */
    CHECK(sv_tokenizer_check_ids(t, "tok.json", IDS(0, 18, 3), 3, "store.h5") == SV_OK);
    CHECK(sv_tokenizer_check_ids(t, "tok.json", IDS(0, 19), 2, "store.h5") == SV_EINPUT);
    CHECK(strstr(sv_errmsg(), "store.h5") && strstr(sv_errmsg(), "tok.json") && strstr(sv_errmsg(), "token_ids[1] = 19"));
    CHECK(sv_tokenizer_mem(t) > 0);
    sv_tokenizer_free(t);
}

static void sentencepiece(void)
{
    sv_tokenizer *t = load("sentencepiece.json");
    CHECK(sv_tokenizer_size(t) == 14);
    CHECK(sv_tokenizer_kind(t) == SV_TOK_KIND_SENTENCEPIECE);
    EXPECT(t, 0, (1, 7, 8, 3, 2), ("<s>", " Hello", " world", "\n", "</s>"));
    /* € = E2 82 AC as three byte-fallback tokens */
    EXPECT(t, 0, (9, 4, 5, 6), (" ", "", "", "\xe2\x82\xac"));
    EXPECT(t, 0, (10, 12, 13, 11), ("\xef\xbf\xbd", "A", "<0xZZ>", "\xc5\x91"));
    EXPECT(t, 0, (4, 5, 7), ("\xef\xbf\xbd", "\xef\xbf\xbd", " Hello"));
    EXPECT(t, SV_TOK_ESCAPE, (3, 4, 5, 6), ("\\n", "", "", "\xe2\x82\xac"));
    sv_tokenizer_free(t);

    t = load("unigram.json");
    CHECK(sv_tokenizer_size(t) == 6);
    CHECK(sv_tokenizer_kind(t) == SV_TOK_KIND_SENTENCEPIECE);
    EXPECT(t, 0, (0, 2, 3, 4, 5), ("<pad>", " the", " caf", "\xc3\xa9", "s"));
    sv_tokenizer_free(t);
}

/* An empty token string (found by fuzzing: a zero-length copy into an empty buffer). */
static void empty_token(void)
{
    const char *json = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\":0,\"a\":1}},\"decoder\":{\"type\":\"ByteLevel\"}}";
    sv_tokenizer *t = NULL;
    CHECK(sv_tokenizer_parse(&t, json, strlen(json), "empty.json") == SV_OK);
    EXPECT(t, 0, (0, 1, 0), ("", "a", ""));
    sv_tokenizer_free(t);
    json = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\":0}}}"; /* nothing but empty tokens */
    CHECK(sv_tokenizer_parse(&t, json, strlen(json), "empty.json") == SV_OK);
    EXPECT(t, 0, (0, 0), ("", ""));
    sv_tokenizer_free(t);
}

static void no_tokenizer(void)
{
    EXPECT(NULL, 0, (0, 42, 50256), ("0", "42", "50256"));
    EXPECT(NULL, 0, (7), ("7"));
    char **got = NULL;
    CHECK(sv_tok_render(NULL, NULL, 0, 0, &got) == SV_OK); /* an empty span */
    free(got);
}

static void bad(const char *json, const char *field)
{
    sv_tokenizer *t = (sv_tokenizer *)&t;
    sv_rc rc = sv_tokenizer_parse(&t, json, strlen(json), "bad/tokenizer.json");
    if (rc != SV_EINPUT || t != NULL || !strstr(sv_errmsg(), "bad/tokenizer.json") || !strstr(sv_errmsg(), field)) {
        fprintf(stderr, "input %s: rc %d, message '%s', wanted field '%s'\n", json, rc, sv_errmsg(), field);
        CHECK(!"bad input not refused as expected");
    }
}

static void bad_inputs(void)
{
    bad("{", "not valid JSON");
    bad("[]", "not a JSON object");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}} x", "not valid JSON");
    bad("{}", "model");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}", "model.vocab");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1.5}}}", "model.vocab");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"1\"}}}", "model.vocab");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1e300}}}", "model.vocab");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":[[\"a\",0]]}}", "model.vocab");
    bad("{\"model\":{\"type\":\"Unigram\",\"vocab\":{\"a\":0}}}", "model.vocab");
    bad("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[1,0]]}}", "model.vocab[0]");
    bad("{\"model\":{\"type\":\"Foo\",\"vocab\":{}}}", "model.type");
    bad("{\"model\":{\"type\":7,\"vocab\":{}}}", "model.type");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", "empty");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0}}}", "id 0 given to two tokens");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":9000000}}}", "unused");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":{}}", "added_tokens");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":[{\"id\":\"1\",\"content\":\"x\"}]}", "added_tokens[0].id");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":[{\"id\":1}]}", "added_tokens[0].content");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":{\"type\":\"WordPiece\"}}", "decoder.type");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":[]}", "decoder");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" \"},\"content\":\"\"}}", "decoder.pattern");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":{\"type\":\"Replace\",\"pattern\":{\"String\":\"\"},\"content\":\"\"}}", "decoder.pattern.String");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"Sequence\",\"decoders\":[]}]}}", "decoder.decoders[1]");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"x\"},\"content\":3}]}}", "decoder.decoders[0].content");
    bad("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\"}}", "decoder.replacement");
    sv_tokenizer *t = NULL;
    CHECK(sv_tokenizer_load(&t, "/nonexistent/tokenizer.json") == SV_EINPUT && t == NULL);
    CHECK(strstr(sv_errmsg(), "/nonexistent/tokenizer.json"));
}

int main(int argc, char **argv)
{
    if (argc != 2) die("usage: test_tokenizer FIXTURE_DIR", NULL);
    dir = argv[1];
    byte_level();
    sentencepiece();
    empty_token();
    no_tokenizer();
    bad_inputs();
    printf("tokenizer: all checks passed\n");
    return 0;
}
