/* JSON emitter, atomic writes and result files. */
#include "saeval/output.h"
#include "saeval/health.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sv_jw_init(sv_jw *w) { memset(w, 0, sizeof *w); }
void sv_jw_free(sv_jw *w) { free(w->buf); memset(w, 0, sizeof *w); }

void sv_jw_raw(sv_jw *w, const char *s, size_t n)
{
    if (w->oom) return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (w->len + n + 1 > cap) cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) { w->oom = 1; return; }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void putf(sv_jw *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sv_jw_raw(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void put_string(sv_jw *w, const char *s)
{
    sv_jw_raw(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { sv_jw_raw(w, "\\", 1); sv_jw_raw(w, (const char *)p, 1); }
        else if (*p == '\n') sv_jw_raw(w, "\\n", 2);
        else if (*p < 0x20) putf(w, "\\u%04x", *p);
        else sv_jw_raw(w, (const char *)p, 1);
    }
    sv_jw_raw(w, "\"", 1);
}

/* Separator, newline/indent and key before an element. */
static void element(sv_jw *w, const char *key)
{
    int d = w->depth;
    if (d > 0) {
        if (w->count[d]++ > 0) sv_jw_raw(w, ",", 1);
        if (w->inline_[d]) {
            if (w->count[d] > 1) sv_jw_raw(w, " ", 1);
        } else {
            sv_jw_raw(w, "\n", 1);
            for (int i = 0; i < d; i++) sv_jw_raw(w, "  ", 2);
        }
    }
    if (key) {
        put_string(w, key);
        sv_jw_raw(w, ": ", 2);
    }
}

static void open_(sv_jw *w, const char *key, const char *br, int inl, int arr)
{
    element(w, key);
    sv_jw_raw(w, br, 1);
    if (w->depth < 63) w->depth++;
    w->count[w->depth] = 0;
    w->inline_[w->depth] = inl;
    w->is_arr[w->depth] = arr;
}

void sv_jw_obj(sv_jw *w, const char *key) { open_(w, key, "{", 0, 0); }
void sv_jw_arr(sv_jw *w, const char *key) { open_(w, key, "[", 1, 1); }
void sv_jw_arr_block(sv_jw *w, const char *key) { open_(w, key, "[", 0, 1); }

void sv_jw_end(sv_jw *w)
{
    int d = w->depth;
    int inl = w->inline_[d], arr = w->is_arr[d], had = w->count[d] > 0;
    if (w->depth > 0) w->depth--;
    if (!inl && had) {
        sv_jw_raw(w, "\n", 1);
        for (int i = 0; i < w->depth; i++) sv_jw_raw(w, "  ", 2);
    }
    sv_jw_raw(w, arr ? "]" : "}", 1);
}

void sv_jw_num(sv_jw *w, const char *key, double v)
{
    element(w, key);
    if (isfinite(v)) putf(w, "%.17g", v);
    else sv_jw_raw(w, "null", 4);
}

void sv_jw_int(sv_jw *w, const char *key, int64_t v)
{
    element(w, key);
    putf(w, "%lld", (long long)v);
}

void sv_jw_str(sv_jw *w, const char *key, const char *s)
{
    element(w, key);
    put_string(w, s);
}

void sv_jw_bool(sv_jw *w, const char *key, int v)
{
    element(w, key);
    sv_jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void sv_jw_null(sv_jw *w, const char *key)
{
    element(w, key);
    sv_jw_raw(w, "null", 4);
}

sv_rc sv_mkdir_p(const char *path)
{
    char *p = sv_strdup(path);
    if (!p) return SV_EINTERNAL;
    for (char *q = p + 1; ; q++) {
        if (*q == '/' || *q == '\0') {
            char c = *q;
            *q = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                sv_rc rc = sv_fail(SV_EINPUT, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return rc;
            }
            *q = c;
            if (c == '\0') break;
        }
    }
    free(p);
    return SV_OK;
}

/* 1 when path already holds exactly these bytes. */
static int same_content(const char *path, const char *buf, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0 || (size_t)st.st_size != len) return 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char chunk[65536];
    size_t off = 0, n;
    int same = 1;
    while (same && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (off + n > len || memcmp(chunk, buf + off, n) != 0) same = 0;
        off += n;
    }
    fclose(f);
    return same && off == len;
}

sv_rc sv_write_atomic(const char *path, const char *buf, size_t len)
{
    /* An unchanged file keeps its mtime: a resubmitted, finished sweep
     * touches nothing. */
    if (same_content(path, buf, len)) return SV_OK;
    size_t n = strlen(path) + 32;
    char *tmp = sv_malloc(n);
    if (!tmp) return SV_EINTERNAL;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        sv_rc rc = sv_fail(SV_EINPUT, "%s: cannot write: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t k = write(fd, buf + off, len - off);
        if (k < 0) {
            if (errno == EINTR) continue;
            sv_rc rc = sv_fail(SV_EINTERNAL, "%s: write failed: %s", tmp, strerror(errno));
            close(fd); unlink(tmp); free(tmp);
            return rc;
        }
        off += (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        sv_rc rc = sv_fail(SV_EINTERNAL, "%s: cannot finish writing: %s", path, strerror(errno));
        unlink(tmp); free(tmp);
        return rc;
    }
    free(tmp);
    return SV_OK;
}

char *sv_pair_path(const char *out_dir, const char *sae_id, const char *dataset)
{
    size_t n = strlen(out_dir) + strlen(sae_id) + strlen(dataset) + 16;
    char *p = sv_malloc(n);
    if (!p) return NULL;
    int k = snprintf(p, n, "%s/", out_dir);
    /* An id that is a path suffix ("a/sae") stays one file name ("a-sae"). */
    for (const char *c = sae_id; *c; c++) p[k++] = *c == '/' ? '-' : *c;
    snprintf(p + k, n - (size_t)k, "__%s.json", dataset);
    return p;
}

static void write_cfg(sv_jw *w, const sv_sae *s)
{
    const sv_sae_cfg *c = &s->cfg;
    sv_jw_obj(w, "sae_cfg");
    sv_jw_str(w, "architecture", sv_arch_name(c->arch));
    sv_jw_int(w, "d_in", c->d_in);
    sv_jw_int(w, "d_sae", c->d_sae);
    if (c->arch == SV_ARCH_TOPK) {
        sv_jw_int(w, "k", c->k);
        sv_jw_bool(w, "rescale_acts_by_decoder_norm", c->rescale_acts_by_decoder_norm);
    }
    sv_jw_bool(w, "apply_b_dec_to_input", c->apply_b_dec_to_input);
    sv_jw_str(w, "normalize_activations", sv_norm_name(c->normalize));
    if (c->normalize == SV_NORM_EXPECTED_AVERAGE_ONLY_IN) sv_jw_num(w, "scaling_factor", s->scaling_factor);
    sv_jw_str(w, "dtype", c->dtype);
    sv_jw_end(w);
}

/* SAEBench "misc" group, from the firing counts. */
static void write_misc(sv_jw *w, const sv_pair_metrics *m, int64_t d_sae)
{
    const double N = (double)m->tokens_evaluated;
    int64_t alive = 0, o1 = 0, o10 = 0;
    double dens_all = 0, dens1 = 0, dens10 = 0;
    for (int64_t j = 0; j < d_sae; j++) {
        double dj = N > 0 ? (double)m->firing_counts[j] / N : 0.0;
        dens_all += dj;
        if (dj > 0) alive++;
        if (dj > 0.01) { o1++; dens1 += dj; }
        if (dj > 0.1) { o10++; dens10 += dj; }
    }
    sv_jw_obj(w, "misc");
    sv_jw_num(w, "frac_alive", (double)alive / (double)d_sae);
    sv_jw_num(w, "freq_over_1_percent", (double)o1 / (double)d_sae);
    sv_jw_num(w, "freq_over_10_percent", (double)o10 / (double)d_sae);
    sv_jw_num(w, "normalized_freq_over_1_percent", dens_all > 0 ? dens1 / dens_all : 0.0);
    sv_jw_num(w, "normalized_freq_over_10_percent", dens_all > 0 ? dens10 / dens_all : 0.0);
    sv_jw_end(w);
}

static void write_geometry(sv_jw *w, const sv_geometry *g)
{
    if (!g) { /* config "geometry": false */
        sv_jw_null(w, "geometry");
        return;
    }
    sv_jw_obj(w, "geometry");
    sv_jw_num(w, "average_max_decoder_cosine_sim", g->average_max_decoder_cos);
    sv_jw_num(w, "average_max_encoder_cosine_sim", g->average_max_encoder_cos);
    sv_jw_num(w, "decoder_mean_abs_cos", g->decoder_mean_abs_cos);
    sv_jw_num(w, "decoder_mean_cos", g->decoder_mean_cos);
    sv_jw_arr(w, "decoder_cos_histogram");
    for (int b = 0; b < SV_GEOM_BINS; b++) sv_jw_int(w, NULL, g->hist[b]);
    sv_jw_end(w);
    sv_jw_int(w, "decoder_pairs_over_0_9", g->pairs_over_0_9);
    sv_jw_int(w, "decoder_pairs_over_0_99", g->pairs_over_0_99);
    sv_jw_arr(w, "top_decoder_pairs");
    for (int k = 0; k < g->n_top; k++) {
        sv_jw_arr(w, NULL);
        sv_jw_int(w, NULL, g->top[k].j);
        sv_jw_int(w, NULL, g->top[k].l);
        sv_jw_num(w, NULL, g->top[k].cos);
        sv_jw_end(w);
    }
    sv_jw_end(w);
    sv_jw_end(w);
}

sv_rc sv_pair_json(sv_jw *w, const char *sae_id, const char *dataset, const sv_sae *s,
                   const sv_config *c, const sv_pair_metrics *m, const sv_geometry *g,
                   double model_params, uint64_t input_hash)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)input_hash);
    const int64_t d_sae = s->cfg.d_sae;
    const double N = (double)m->tokens_evaluated;
    sv_jw_obj(w, NULL);
    sv_jw_str(w, "sae_id", sae_id);
    sv_jw_str(w, "dataset", dataset);
    sv_jw_str(w, "status", "ok");
    /* Identity of the inputs and options: a rerun skips this pair when it
     * matches (see plan.c). */
    sv_jw_str(w, "input_hash", hex);
    write_cfg(w, s);
    sv_jw_obj(w, "eval_cfg");
    sv_jw_str(w, "precision", sv_precision_name(c->precision));
    sv_jw_int(w, "legacy_batch_sequences", c->legacy_batch_sequences);
    sv_jw_bool(w, "geometry", c->geometry);
    sv_jw_str(w, "nonfinite", c->nonfinite_skip ? "skip" : "error");
    sv_jw_arr(w, "exclude_token_ids");
    for (int i = 0; i < c->n_exclude; i++) sv_jw_int(w, NULL, c->exclude_ids[i]);
    sv_jw_end(w);
    sv_jw_end(w);

    sv_jw_obj(w, "metrics");
    sv_jw_obj(w, "reconstruction_quality");
    sv_jw_num(w, "mse", m->mse);
    sv_jw_num(w, "explained_variance", m->explained_variance);
    sv_jw_num(w, "fvu", m->fvu);
    sv_jw_num(w, "explained_variance_legacy", m->explained_variance_legacy);
    sv_jw_num(w, "cossim", m->cossim);
    sv_jw_end(w);
    sv_jw_obj(w, "shrinkage");
    sv_jw_num(w, "l2_norm_in", m->l2_norm_in);
    sv_jw_num(w, "l2_norm_out", m->l2_norm_out);
    sv_jw_num(w, "l2_ratio", m->l2_ratio);
    sv_jw_num(w, "relative_reconstruction_bias", m->relative_reconstruction_bias);
    sv_jw_end(w);
    sv_jw_obj(w, "sparsity");
    sv_jw_num(w, "l0", m->l0);
    sv_jw_num(w, "l1", m->l1);
    sv_jw_int(w, "dead_features", m->dead_features);
    sv_jw_num(w, "dead_fraction", m->dead_fraction);
    sv_jw_arr(w, "l0_histogram");
    for (int64_t i = 0; i < m->hist_len; i++) sv_jw_int(w, NULL, m->l0_histogram[i]);
    sv_jw_end(w);
    sv_jw_end(w);
    sv_jw_obj(w, "token_stats");
    sv_jw_int(w, "tokens_evaluated", m->tokens_evaluated);
    sv_jw_int(w, "tokens_masked", m->tokens_masked);
    sv_jw_int(w, "tokens_nonfinite", m->tokens_nonfinite);
    sv_jw_int(w, "sequences", m->sequences);
    sv_jw_end(w);
    write_misc(w, m, d_sae);
    write_geometry(w, g);
    sv_health_in hi = {m->explained_variance, m->mse / (double)s->cfg.d_in, m->cossim, m->l0,
                       m->dead_fraction, g ? g->decoder_mean_abs_cos : NAN, s->cfg.arch == SV_ARCH_TOPK,
                       s->cfg.k, model_params};
    sv_health_json(w, &hi);
    sv_jw_end(w);

    sv_jw_obj(w, "feature_metrics");
    sv_jw_arr(w, "firing_counts");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_int(w, NULL, m->firing_counts[j]);
    sv_jw_end(w);
    sv_jw_arr(w, "feature_density");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, N > 0 ? (double)m->firing_counts[j] / N : NAN);
    sv_jw_end(w);
    sv_jw_arr(w, "consistent_activation_heuristic");
    for (int64_t j = 0; j < d_sae; j++)
        sv_jw_num(w, NULL, m->fired_sequences[j] > 0
                               ? (double)m->firing_counts[j] / (double)m->fired_sequences[j] : -1.0);
    sv_jw_end(w);
    sv_jw_arr(w, "encoder_norm");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, s->enc_norm[j]);
    sv_jw_end(w);
    sv_jw_arr(w, "encoder_bias");
    const void *bias = s->cfg.arch == SV_ARCH_GATED ? s->b_mag : s->b_enc;
    for (int64_t j = 0; j < d_sae; j++)
        sv_jw_num(w, NULL, s->precision == 64 ? ((const double *)bias)[j] : (double)((const float *)bias)[j]);
    sv_jw_end(w);
    sv_jw_arr(w, "encoder_decoder_cosine_sim");
    for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, s->enc_dec_cos[j]);
    sv_jw_end(w);
    if (g) {
        sv_jw_arr(w, "max_decoder_cosine_sim");
        for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, g->max_decoder_cos[j]);
        sv_jw_end(w);
        sv_jw_arr(w, "max_encoder_cosine_sim");
        for (int64_t j = 0; j < d_sae; j++) sv_jw_num(w, NULL, g->max_encoder_cos[j]);
        sv_jw_end(w);
    }
    sv_jw_end(w);
    sv_jw_end(w);
    return w->oom ? sv_fail(SV_EINTERNAL, "out of memory writing results") : SV_OK;
}

cJSON *sv_json_parse_exact(const char *text, size_t n)
{
    if (!text || n == 0) return NULL;
    /* A terminated copy, so that no parser path can run past the end. */
    char *buf = sv_malloc(n + 1);
    if (!buf) return NULL;
    memcpy(buf, text, n);
    buf[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, n, &end, 0);
    for (const char *p = end; root && p < buf + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            root = NULL;
        }
    free(buf);
    return root;
}
