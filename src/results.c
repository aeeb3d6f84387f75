/* Pair result files and error notes. */
#include "saeval/results.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "saeval/fsutil.h"
#include "saeval/output.h"

char *sv_error_note_path(const char *out_dir, const char *sae_id, const char *dataset)
{
    char *p = sv_pair_path(out_dir, sae_id, dataset); /* .../id__ds.json */
    if (!p) return NULL;
    size_t n = strlen(p) + 16;
    char *q = sv_malloc(n);
    if (q) {
        p[strlen(p) - 5] = '\0';
        snprintf(q, n, "%s.error.txt", p);
    }
    free(p);
    return q;
}

sv_rc sv_results_write_pair(const char *out_dir, const char *sae_id, const char *dataset, const char *text, size_t n)
{
    char *path = sv_pair_path(out_dir, sae_id, dataset);
    char *note = sv_error_note_path(out_dir, sae_id, dataset);
    sv_rc rc = (!path || !note) ? SV_EINTERNAL : sv_write_atomic(path, text, n);
    if (rc == SV_OK) unlink(note); /* an old failure is history now */
    free(path);
    free(note);
    return rc;
}

void sv_results_note_failure(const char *out_dir, const char *sae_id, const char *dataset, const char *msg)
{
    char *note = sv_error_note_path(out_dir, sae_id, dataset);
    if (note) {
        char line[2100];
        int n = snprintf(line, sizeof line, "%s\n", msg);
        sv_write_atomic(note, line, (size_t)n);
    }
    free(note);
}

/* The top-level "feature_metrics" key: at depth 1 the writer puts a raw
 * newline and two spaces before each key; a raw newline never occurs
 * inside a JSON string, so this cannot match text in a value. */
static const char FM_KEY[] = ",\n  \"feature_metrics\": {";

size_t sv_result_head_cut(const char *text, size_t n, int whole)
{
    const size_t kl = sizeof FM_KEY - 1;
    if (n < 2 || text[0] != '{' || text[1] != '\n') return 0;
    for (size_t i = 1; i + kl <= n; i++) {
        if (text[i] == ',' && memcmp(text + i, FM_KEY, kl) == 0) {
            /* A complete file ends with the object's closing brace. */
            if (whole && !(n >= 7 && memcmp(text + n - 7, "\n  }\n}\n", 7) == 0)) return 0;
            return i;
        }
    }
    return 0;
}

sv_rc sv_result_head(const char *path, char **head, size_t *len)
{
    enum { HEAD = 1 << 16 };
    *head = NULL;
    if (len) *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sv_fail(SV_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    sv_rc rc = SV_OK;
    char *buf = NULL, tail[7];
    size_t size = 0, want = 0, got = 0, cut = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 4) {
        rc = sv_fail(SV_EINPUT, "%s: not a complete result file", path);
        goto out;
    }
    size = (size_t)st.st_size;
    /* The last bytes: a file written by saeval ends by closing
     * feature_metrics (depth 1) and then the object (depth 0); a raw
     * "\n}\n" occurs nowhere else. */
    if (size < sizeof tail || pread(fd, tail, sizeof tail, (off_t)(size - sizeof tail)) != (ssize_t)sizeof tail ||
        memcmp(tail, "\n  }\n}\n", sizeof tail) != 0) {
        rc = sv_fail(SV_EINPUT, "%s: result file is incomplete (does not end where feature_metrics and the object close)", path);
        goto out;
    }
    for (want = size < HEAD ? size : HEAD;; want = size) {
        char *nb = realloc(buf, want + 3);
        if (!nb) { rc = sv_fail(SV_EINTERNAL, "out of memory reading %s", path); goto out; }
        buf = nb;
        while (got < want) {
            ssize_t r = pread(fd, buf + got, want - got, (off_t)got);
            if (r <= 0) { rc = sv_fail(SV_EINPUT, "%s: short read", path); goto out; }
            got += (size_t)r;
        }
        cut = sv_result_head_cut(buf, got, 0);
        if (cut || want == size) break;
    }
    if (!cut) { rc = sv_fail(SV_EINPUT, "%s: field 'feature_metrics': not found where saeval writes it", path); goto out; }
    memcpy(buf + cut, "\n}", 3);
    *head = buf;
    buf = NULL;
    if (len) *len = cut + 2;
out:
    free(buf);
    close(fd);
    return rc;
}
