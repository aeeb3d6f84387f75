/* Pair result files and error notes. */
#include "saeval/results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
