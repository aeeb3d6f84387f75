/* `saeval info PATH`: describe an SAE (its format's describe) or
 * an activation store. Runs on one process; the store is opened with
 * MPI_COMM_SELF so the collective open involves only the caller. */
#include "saeval/info.h"
#include "saeval/format.h"
#include "saeval/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Count tokens whose id is in the special set, reading in blocks. */
static sv_rc count_masked(sv_store *s, int64_t *masked)
{
    enum { BLOCK = 1 << 16 };
    int64_t *ids = sv_malloc(BLOCK * sizeof(int64_t));
    int64_t *sp = sv_malloc((size_t)(s->n_special ? s->n_special : 1) * sizeof(int64_t));
    sv_rc rc = ids && sp ? SV_OK : SV_EINTERNAL;
    *masked = 0;
    if (rc == SV_OK) {
        memcpy(sp, s->special_ids, (size_t)s->n_special * sizeof(int64_t));
        qsort(sp, (size_t)s->n_special, sizeof(int64_t), cmp_i64);
    }
    for (int64_t t0 = 0; rc == SV_OK && t0 < s->n_tokens; t0 += BLOCK) {
        int64_t n = s->n_tokens - t0 < BLOCK ? s->n_tokens - t0 : BLOCK;
        rc = sv_store_read_token_ids(s, t0, n, ids);
        for (int64_t i = 0; rc == SV_OK && i < n; i++)
            if (bsearch(&ids[i], sp, (size_t)s->n_special, sizeof(int64_t), cmp_i64)) (*masked)++;
    }
    free(ids);
    free(sp);
    return rc;
}

static sv_rc info_store(const char *path, FILE *out)
{
    sv_store s;
    sv_rc rc = sv_store_open(&s, path, MPI_COMM_SELF);
    if (rc != SV_OK) return rc;

    fprintf(out, "store %s\n", path);
    fprintf(out, "  file size             %llu bytes\n", (unsigned long long)s.file_size);
    fprintf(out, "  n_tokens              %lld\n", (long long)s.n_tokens);
    fprintf(out, "  d_in                  %lld\n", (long long)s.d_in);
    fprintf(out, "  dtype                 %s\n", sv_store_dtype_name(s.dtype));
    if (s.d_out > 0)
        fprintf(out, "  /targets              [%lld, %lld] %s (what transcoders are compared with)\n",
                (long long)s.n_tokens, (long long)s.d_out, sv_store_dtype_name(s.tgt_dtype));
    if (s.chunked)
        fprintf(out, "  layout                chunked, chunk %lld x %lld\n", (long long)s.chunk[0],
                (long long)s.chunk[1]);
    else
        fprintf(out, "  layout                contiguous\n");
    if (s.context_size > 0)
        fprintf(out, "  sequences             context_size %lld: %lld sequences\n", (long long)s.context_size,
                (long long)s.n_seq);
    else
        fprintf(out, "  sequences             /sequence_offsets: %lld sequences\n", (long long)s.n_seq);

    int64_t *len = sv_malloc((size_t)s.n_seq * sizeof(int64_t));
    if (!len) rc = SV_EINTERNAL;
    if (rc == SV_OK) {
        for (int64_t i = 0; i < s.n_seq; i++) len[i] = s.seq_offsets[i + 1] - s.seq_offsets[i];
        qsort(len, (size_t)s.n_seq, sizeof(int64_t), cmp_i64);
        /* Lower median for an even count: always an actual sequence length. */
        fprintf(out, "  sequence length       min %lld, median %lld, max %lld\n", (long long)len[0],
                (long long)len[(s.n_seq - 1) / 2], (long long)len[s.n_seq - 1]);
    }
    free(len);

    if (rc == SV_OK) {
        fprintf(out, "  token_ids             %s\n", s.has_token_ids ? "present" : "absent");
        fprintf(out, "  special_token_ids     ");
        if (s.n_special == 0) fprintf(out, "none");
        for (int i = 0; i < s.n_special; i++) fprintf(out, "%s%lld", i ? ", " : "", (long long)s.special_ids[i]);
        fprintf(out, "\n");
        if (s.has_token_ids) {
            int64_t masked = 0;
            if (s.n_special > 0) rc = count_masked(&s, &masked);
            if (rc == SV_OK)
                fprintf(out, "  masked tokens         %lld (%.2f%%)\n", (long long)masked,
                        100.0 * (double)masked / (double)s.n_tokens);
        } else {
            fprintf(out, "  masked tokens         n/a (no token_ids)\n");
        }
    }
    if (rc == SV_OK) {
        fprintf(out, "  model_name            %s\n", s.model_name ? s.model_name : "-");
        fprintf(out, "  hook_name             %s\n", s.hook_name ? s.hook_name : "-");
        fprintf(out, "  dataset_name          %s\n", s.dataset_name ? s.dataset_name : "-");
    }
    sv_store_close(&s);
    return rc;
}

sv_rc sv_info_print(const char *path, FILE *out)
{
    /* An SAE directory of any format, else an activation store. */
    const sv_format *f = sv_format_probe(path);
    if (f) return f->describe(path, out);
    return info_store(path, out);
}
