/* CSV cells: quoting per RFC 4180, checked against hand-written cells; and
 * `rows FILE ID`: every row of a CSV file has the header's field count, and
 * one row's first cell is ID (an sae_id with a comma keeps its row whole). */
#define TEST_NAME "test_csv"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "saeval/csv.h"
#define TU_CHECK 1 /* counting CHECK: report every failure */
#include "testutil.h"


static void cell(const char *in, const char *want)
{
    sv_jw b;
    sv_jw_init(&b);
    sv_csv_cell(&b, in);
    CHECK(!b.oom && b.buf && strcmp(b.buf, want) == 0, "cell [%s]: got [%s], want [%s]", in, b.buf ? b.buf : "", want);
    sv_jw_free(&b);
}

/* A plain RFC 4180 reader, written apart from the writer: splits one record
 * starting at *p into fields, returns the field count; first field copied. */
static int record(const char **p, char *first, size_t cap)
{
    const char *s = *p;
    int nf = 0;
    size_t fl = 0;
    for (;;) {
        int q = (*s == '"');
        if (q) s++;
        for (;;) {
            if (!*s) break;
            if (q && *s == '"' && s[1] == '"') { if (nf == 0 && fl + 1 < cap) first[fl++] = '"'; s += 2; continue; }
            if (q && *s == '"') { s++; q = 0; continue; }
            if (!q && (*s == ',' || *s == '\n')) break;
            if (nf == 0 && fl + 1 < cap) first[fl++] = *s;
            s++;
        }
        nf++;
        if (*s == ',') { s++; continue; }
        if (*s == '\n') s++;
        break;
    }
    first[fl] = '\0';
    *p = s;
    return nf;
}

static void rows(const char *path, const char *id)
{
    char *text = NULL;
    size_t n = 0;
    if (sv_read_file(path, &text, &n) != SV_OK) die("cannot read", sv_errmsg());
    const char *p = text;
    char first[256];
    int head = record(&p, first, sizeof first), found = 0, nrow = 0;
    CHECK(head > 3 && strcmp(first, "sae_id") == 0, "%s: header has %d fields, first [%s]", path, head, first);
    while (*p) {
        int nf = record(&p, first, sizeof first);
        nrow++;
        CHECK(nf == head, "%s: row %d has %d fields, the header %d", path, nrow, nf, head);
        if (strcmp(first, id) == 0) found++;
    }
    CHECK(nrow > 0 && found > 0, "%s: no row for sae_id [%s] among %d rows", path, id, nrow);
    free(text);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "rows") == 0) {
        rows(argv[2], argv[3]);
    } else {
        cell("std_w512", "std_w512");
        cell("", "");
        cell("a,b", "\"a,b\"");
        cell("say \"hi\"", "\"say \"\"hi\"\"\"");
        cell("two\nlines", "\"two\nlines\"");
        cell("cr\r", "\"cr\r\"");
        cell("x/y z;w", "x/y z;w");
        sv_jw b;
        sv_jw_init(&b);
        sv_csv_num(&b, 0.1);
        sv_jw_raw(&b, "|", 1);
        sv_csv_num(&b, 1.0 / 0.0);
        sv_jw_raw(&b, "|", 1);
        sv_csv_num(&b, -3);
        CHECK(b.buf && strcmp(b.buf, "0.10000000000000001||-3") == 0, "numbers: got [%s]", b.buf ? b.buf : "");
        sv_jw_free(&b);
    }
    if (sv_test_failures()) printf("%d failure(s)\n", sv_test_failures());
    else printf("ok\n");
    return sv_test_failures() ? 1 : 0;
}
