/* libFuzzer target: sv_report on an untrusted all_eval_results.json (and,
 * after a line "@@", generalization.json). Every page it writes must keep
 * the data inside its <script type="application/json"> block: exactly three
 * "</script" per page, whatever the names and messages hold. */
#include "saeval/report.h"

#include <ctype.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saeval/fsutil.h"

static char dir[64];

static void put(const char *name, const uint8_t *d, size_t n)
{
    char *p = sv_path_join(dir, name);
    FILE *f = p ? fopen(p, "wb") : NULL;
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
    free(p);
}

static int count_script_ends(const char *path)
{
    char *t = NULL;
    size_t n = 0;
    if (sv_read_file(path, &t, &n) != SV_OK) abort();
    int c = 0;
    for (size_t i = 0; i + 8 <= n; i++) {
        if (t[i] != '<' || t[i + 1] != '/') continue;
        const char *w = "script";
        size_t k = 0;
        while (k < 6 && tolower((unsigned char)t[i + 2 + k]) == w[k]) k++;
        c += k == 6;
    }
    free(t);
    return c;
}

static void check_pages(const char *d)
{
    DIR *dd = opendir(d);
    if (!dd) return;
    struct dirent *e;
    while ((e = readdir(dd))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".html") != 0) continue;
        char *p = sv_path_join(d, e->d_name);
        if (!p || count_script_ends(p) != 3) abort();
        free(p);
    }
    closedir(dd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        strcpy(dir, "/tmp/fuzz_report.XXXXXX");
        if (!mkdtemp(dir)) abort();
        put("plotly.js", (const uint8_t *)"/**/", 4);
    }
    const uint8_t *sep = NULL;
    for (size_t i = 0; i + 4 <= size; i++)
        if (memcmp(data + i, "\n@@\n", 4) == 0) { sep = data + i; break; }
    size_t n1 = sep ? (size_t)(sep - data) : size;
    put("all_eval_results.json", data, n1);
    char *g = sv_path_join(dir, "generalization.json");
    if (sep) put("generalization.json", sep + 4, size - n1 - 4);
    else if (g) unlink(g);
    free(g);
    char *plotly = sv_path_join(dir, "plotly.js");
    sv_report_stats st;
    if (sv_report(dir, plotly, &st) == SV_OK) {
        char *r = sv_path_join(dir, "report"), *p = r ? sv_path_join(r, "pairs") : NULL;
        if (!r || !p) abort();
        if (st.pages + st.failed + st.missing != st.pairs) abort();
        check_pages(r);
        check_pages(p);
        free(r);
        free(p);
    }
    free(plotly);
    return 0;
}
