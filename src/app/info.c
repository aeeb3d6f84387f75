/* `saeval info PATH`: describe an SAE directory (cfg.json + safetensors) or
 * an activation store. Runs on one process; the store is opened with
 * MPI_COMM_SELF so the collective open involves only the caller. */
#include "saeval/info.h"
#include "saeval/sae.h"
#include "saeval/fsutil.h"
#include "saeval/safetensors.h"
#include "saeval/store.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_sae_dir(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    char *cfg = sv_path_join(path, "cfg.json");
    int ok = cfg && stat(cfg, &st) == 0 && S_ISREG(st.st_mode);
    free(cfg);
    return ok;
}

static sv_rc info_sae(const char *dir, FILE *out)
{
    sv_sae_cfg c;
    sv_rc rc = sv_sae_load_cfg(dir, &c);
    if (rc != SV_OK) return rc;
    fprintf(out, "SAE %s\n", dir);
    fprintf(out, "  architecture          %s\n", sv_arch_name(c.arch));
    fprintf(out, "  d_in                  %lld\n", (long long)c.d_in);
    fprintf(out, "  d_sae                 %lld\n", (long long)c.d_sae);
    if (c.arch == SV_ARCH_TOPK) {
        fprintf(out, "  k                     %lld\n", (long long)c.k);
        fprintf(out, "  rescale_acts_by_decoder_norm %s\n", c.rescale_acts_by_decoder_norm ? "true" : "false");
    }
    fprintf(out, "  normalization         %s\n", sv_norm_name(c.normalize));
    fprintf(out, "  apply_b_dec_to_input  %s\n", c.apply_b_dec_to_input ? "true" : "false");
    fprintf(out, "  dtype (cfg.json)      %s\n", c.dtype);

    char *wpath = sv_path_join(dir, "sae_weights.safetensors");
    if (!wpath) return SV_EINTERNAL;
    sv_st_file f;
    memset(&f, 0, sizeof f);
    rc = sv_st_open(&f, wpath);
    if (rc == SV_OK) {
        fprintf(out, "  weights               %s (%llu bytes, %d tensors)\n", wpath,
                (unsigned long long)f.file_size, f.n);
        for (int i = 0; i < f.n; i++) {
            const sv_st_tensor *t = &f.t[i];
            fprintf(out, "    %-20s %-4s [", t->name, sv_dtype_name(t->dtype));
            for (int j = 0; j < t->ndim; j++) fprintf(out, "%s%lld", j ? ", " : "", (long long)t->shape[j]);
            fprintf(out, "]\n");
        }
        sv_st_close(&f);
    }
    free(wpath);
    return rc;
}

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
    if (is_sae_dir(path)) return info_sae(path, out);
    return info_store(path, out);
}
