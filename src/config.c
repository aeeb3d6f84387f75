/* Run configuration reader. Every key is checked: a typo in a sweep config
 * should stop the job before it burns a node, not be silently ignored. */
#define _GNU_SOURCE /* GLOB_ALTDIRFUNC */
#include "saeval/config.h"
#include "saeval/forward.h" /* SV_GEMM_ROWS */
#include "saeval/format.h"
#include "saeval/fsutil.h"
#include "saeval/json.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return sv_strdup(".");
    if (slash == path) return sv_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = sv_malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static int is_int(const cJSON *it)
{
    return cJSON_IsNumber(it) && isfinite(it->valuedouble) &&
           it->valuedouble == floor(it->valuedouble) && fabs(it->valuedouble) < 9.007199254740992e15;
}

static int has_glob(const char *p) { return strpbrk(p, "*?[") != NULL; }

/* A path some SAE format claims (format.h). */
static int is_sae_dir(const char *dir) { return sv_format_probe(dir) != NULL; }

static sv_rc add_sae(sv_config *c, int *cap, const char *path, int has_scale, double scale, int tc)
{
    if (c->n_saes == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        sv_sae_spec *ns = realloc(c->saes, (size_t)nc * sizeof *ns);
        if (!ns) return sv_fail(SV_EINTERNAL, "out of memory reading the config");
        c->saes = ns;
        *cap = nc;
    }
    sv_sae_spec *s = &c->saes[c->n_saes];
    memset(s, 0, sizeof *s);
    s->path = sv_strdup(path);
    if (!s->path) return SV_EINTERNAL;
    c->n_saes++;
    /* Drop a trailing slash so the directory name is the SAE id. */
    size_t L = strlen(s->path);
    while (L > 1 && s->path[L - 1] == '/') s->path[--L] = '\0';
    s->has_scale = has_scale;
    s->scaling_factor = scale;
    s->transcoder = tc;
    return SV_OK;
}

/* glob(3) reads every directory a pattern can reach, and a pattern of a
 * few "*" levels under "/" reaches the whole file system (fuzzing found a
 * 7-level one that ran for minutes). Its directory reads go through these
 * wrappers, which stop it after a budget of entries
 * (SAEVAL_GLOB_MAX_ENTRIES overrides it, for tests). */
#define SV_GLOB_MAX_LEVELS 64
static long glob_seen, glob_max;
static int glob_over;

static void *glob_opendir(const char *p) { return opendir(p); }
static void glob_closedir(void *d) { closedir(d); }
static struct dirent *glob_readdir(void *d)
{
    struct dirent *e = readdir(d);
    if (e && ++glob_seen > glob_max) {
        glob_over = 1;
        return NULL;
    }
    return e;
}

/* A pattern expands (sorted, as glob(3) returns it) to the directories that
 * hold a cfg.json; matching nothing is an error, not an empty sweep. */
static sv_rc add_pattern(sv_config *c, int *cap, const char *full, int has_scale, double scale, int tc,
                         const char *cp, int i)
{
    if (!has_glob(full)) return add_sae(c, cap, full, has_scale, scale, tc);
    /* glibc's glob recurses (with stack copies) once per slash: fuzzing
     * overflowed the stack with 4 KB patterns full of them. Runs of slashes
     * mean one, so collapse them; then bound the depth and length. */
    char pat[4097];
    size_t n = 0;
    int levels = 0;
    for (const char *q = full; *q; q++) {
        if (q[0] == '/' && q[1] == '/') continue;
        if (n == sizeof pat - 1 || (q[0] == '/' && ++levels > SV_GLOB_MAX_LEVELS))
            return sv_fail(SV_EINPUT, "%s: saes[%d]: pattern has more than %d directory levels or 4096 bytes", cp, i,
                           SV_GLOB_MAX_LEVELS);
        pat[n++] = *q;
    }
    pat[n] = '\0';
    glob_t g;
    memset(&g, 0, sizeof g);
    g.gl_opendir = glob_opendir;
    g.gl_readdir = (void *)glob_readdir;
    g.gl_closedir = glob_closedir;
    g.gl_stat = stat;
    g.gl_lstat = lstat;
    const char *env = getenv("SAEVAL_GLOB_MAX_ENTRIES");
    glob_max = env && atol(env) > 0 ? atol(env) : 200000;
    glob_seen = 0;
    glob_over = 0;
    int r = glob(pat, GLOB_ALTDIRFUNC, NULL, &g);
    if (glob_over) {
        if (r == 0) globfree(&g);
        return sv_fail(SV_EINPUT, "%s: saes[%d]: pattern \"%s\" reaches more than %ld directory entries; make it narrower",
                       cp, i, full, glob_max);
    }
    sv_rc rc = SV_OK;
    int added = 0;
    for (size_t k = 0; r == 0 && k < g.gl_pathc && rc == SV_OK; k++) {
        if (!is_sae_dir(g.gl_pathv[k])) continue;
        rc = add_sae(c, cap, g.gl_pathv[k], has_scale, scale, tc);
        added++;
    }
    if (r == 0) globfree(&g);
    if (rc == SV_OK && added == 0)
        rc = sv_fail(SV_EINPUT, "%s: saes[%d]: pattern \"%s\" matched no SAE directory (a directory holding cfg.json)", cp, i, full);
    return rc;
}

/* JSON allows a key twice; a config that does is a mistake (and the
 * parsers below would otherwise keep or leak the first value). */
static int key_repeated(const cJSON *obj, const cJSON *kv)
{
    for (const cJSON *prev = obj->child; prev && prev != kv; prev = prev->next)
        if (strcmp(prev->string, kv->string) == 0) return 1;
    return 0;
}

static sv_rc parse_saes(sv_config *c, const cJSON *arr, const char *dir, const char *cp)
{
    if (!cJSON_IsArray(arr)) return sv_fail(SV_EINPUT, "%s: saes: must be an array", cp);
    if (cJSON_GetArraySize(arr) == 0) return sv_fail(SV_EINPUT, "%s: saes: empty", cp);
    int i = 0, cap = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const char *p = NULL;
        int has_scale = 0, tc = 0;
        double scale = 0;
        if (cJSON_IsString(it)) {
            p = it->valuestring;
        } else if (cJSON_IsObject(it)) {
            const cJSON *kv;
            cJSON_ArrayForEach(kv, it) {
                if (key_repeated(it, kv)) return sv_fail(SV_EINPUT, "%s: saes[%d].%s: key given twice", cp, i, kv->string);
                if (strcmp(kv->string, "path") == 0) {
                    if (!cJSON_IsString(kv)) return sv_fail(SV_EINPUT, "%s: saes[%d].path: must be a string", cp, i);
                    p = kv->valuestring;
                } else if (strcmp(kv->string, "scaling_factor") == 0) {
                    if (!cJSON_IsNumber(kv) || !isfinite(kv->valuedouble) || kv->valuedouble <= 0)
                        return sv_fail(SV_EINPUT, "%s: saes[%d].scaling_factor: must be a positive number", cp, i);
                    has_scale = 1;
                    scale = kv->valuedouble;
                } else if (strcmp(kv->string, "transcoder") == 0) {
                    /* A transcoder whose files cannot say so (Gemma Scope's MLP
                     * transcoders have d_out = d_in). */
                    if (!cJSON_IsBool(kv)) return sv_fail(SV_EINPUT, "%s: saes[%d].transcoder: must be true or false", cp, i);
                    tc = cJSON_IsTrue(kv);
                } else {
                    return sv_fail(SV_EINPUT, "%s: saes[%d]: unknown key \"%s\"", cp, i, kv->string);
                }
            }
            if (!p) return sv_fail(SV_EINPUT, "%s: saes[%d]: missing \"path\"", cp, i);
        } else {
            return sv_fail(SV_EINPUT, "%s: saes[%d]: must be a path string or an object {\"path\", \"scaling_factor\"}", cp, i);
        }
        /* "" would join to the config's own directory. */
        if (!p[0]) return sv_fail(SV_EINPUT, "%s: saes[%d]: empty path", cp, i);
        char *full = sv_path_join(dir, p);
        if (!full) return SV_EINTERNAL;
        sv_rc rc = add_pattern(c, &cap, full, has_scale, scale, tc, cp, i);
        free(full);
        if (rc != SV_OK) return rc;
        i++;
    }
    return SV_OK;
}

static sv_rc parse_datasets(sv_config *c, const cJSON *arr, const char *dir, const char *cp)
{
    if (!cJSON_IsArray(arr)) return sv_fail(SV_EINPUT, "%s: datasets: must be an array", cp);
    int n = cJSON_GetArraySize(arr);
    if (n == 0) return sv_fail(SV_EINPUT, "%s: datasets: empty", cp);
    c->datasets = sv_calloc((size_t)n, sizeof *c->datasets);
    if (!c->datasets) return SV_EINTERNAL;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        sv_dataset_spec *d = &c->datasets[i];
        c->n_datasets = i + 1;
        if (!cJSON_IsObject(it)) return sv_fail(SV_EINPUT, "%s: datasets[%d]: must be an object", cp, i);
        const char *name = NULL, *path = NULL, *role = NULL;
        const cJSON *kv;
        cJSON_ArrayForEach(kv, it) {
            const char *k = kv->string;
            if (key_repeated(it, kv)) return sv_fail(SV_EINPUT, "%s: datasets[%d].%s: key given twice", cp, i, k);
            if (strcmp(k, "name") == 0 || strcmp(k, "path") == 0 || strcmp(k, "role") == 0 ||
                strcmp(k, "shift") == 0) {
                if (!cJSON_IsString(kv)) return sv_fail(SV_EINPUT, "%s: datasets[%d].%s: must be a string", cp, i, k);
                if (k[0] == 'n') name = kv->valuestring;
                else if (k[0] == 'p') path = kv->valuestring;
                else if (k[0] == 'r') role = kv->valuestring;
                else {
                    const char *v = kv->valuestring;
                    if (strcmp(v, "domain") && strcmp(v, "task") && strcmp(v, "distribution"))
                        return sv_fail(SV_EINPUT, "%s: datasets[%d].shift: \"%s\" is not one of domain, task, distribution", cp, i, v);
                    free(d->shift);
                    d->shift = sv_strdup(v);
                }
            } else if (strcmp(k, "model") == 0) {
                if (!cJSON_IsString(kv) || !kv->valuestring[0]) return sv_fail(SV_EINPUT, "%s: datasets[%d].model: must be a non-empty string (a Hugging Face model directory)", cp, i);
                free(d->model);
                if (!(d->model = sv_path_join(dir, kv->valuestring))) return SV_EINTERNAL;
            } else {
                return sv_fail(SV_EINPUT, "%s: datasets[%d]: unknown key \"%s\"", cp, i, k);
            }
        }
        if (!name || !name[0]) return sv_fail(SV_EINPUT, "%s: datasets[%d].name: missing", cp, i);
        if (!path || !path[0]) return sv_fail(SV_EINPUT, "%s: datasets[%d].path: missing or empty", cp, i);
        for (const char *q = name; *q; q++)
            if (*q == '/' || *q == ',' || *q == '"' || *q == '\\' || (unsigned char)*q < 32)
                return sv_fail(SV_EINPUT, "%s: datasets[%d].name: \"%s\" may not contain '/', ',', quotes or control characters", cp, i, name);
        for (int j = 0; j < i; j++)
            if (strcmp(c->datasets[j].name, name) == 0)
                return sv_fail(SV_EINPUT, "%s: datasets[%d].name: duplicate dataset name \"%s\"", cp, i, name);
        if (!role || strcmp(role, "in_sample") == 0) d->role = SV_ROLE_IN_SAMPLE;
        else if (strcmp(role, "oos") == 0) d->role = SV_ROLE_OOS;
        else return sv_fail(SV_EINPUT, "%s: datasets[%d].role: \"%s\" is not in_sample or oos", cp, i, role);
        d->name = sv_strdup(name);
        d->path = sv_path_join(dir, path);
        if (!d->name || !d->path) return SV_EINTERNAL;
        i++;
    }
    return SV_OK;
}

sv_rc sv_config_parse(sv_config *c, const char *text, size_t n, const char *cp)
{
    memset(c, 0, sizeof *c);
    c->legacy_batch_sequences = 16;
    c->precision = 32;
    c->block_tokens = 1024;
    c->model_params = NAN;
    c->dead_density_threshold = 1e-6;
    c->geometry = 1;
    c->ctx_before = c->ctx_after = 5;
    c->config_path = sv_strdup(cp);
    char *dir = dir_of(cp);
    if (!c->config_path || !dir) { free(dir); return SV_EINTERNAL; }

    sv_rc rc = SV_OK;
    const char *out = NULL;
    const cJSON *saes = NULL, *datasets = NULL;
    cJSON *root = sv_json_parse_exact(text, n);
    if (!root) { rc = sv_fail(SV_EINPUT, "%s: not valid JSON", cp); goto done; }
    if (!cJSON_IsObject(root)) { rc = sv_fail(SV_EINPUT, "%s: top level must be a JSON object", cp); goto done; }

    const cJSON *kv;
    cJSON_ArrayForEach(kv, root) {
        const char *k = kv->string;
        if (key_repeated(root, kv)) { rc = sv_fail(SV_EINPUT, "%s: %s: key given twice", cp, k); goto done; }
        if (strcmp(k, "output_dir") == 0) {
            if (!cJSON_IsString(kv) || !kv->valuestring[0]) { rc = sv_fail(SV_EINPUT, "%s: output_dir: must be a non-empty string", cp); goto done; }
            out = kv->valuestring;
        } else if (strcmp(k, "saes") == 0) {
            saes = kv;
        } else if (strcmp(k, "datasets") == 0) {
            datasets = kv;
        } else if (strcmp(k, "exclude_token_ids") == 0) {
            if (!cJSON_IsArray(kv)) { rc = sv_fail(SV_EINPUT, "%s: exclude_token_ids: must be an array of integers", cp); goto done; }
            int m = cJSON_GetArraySize(kv);
            c->exclude_ids = sv_calloc((size_t)m, sizeof(int64_t));
            if (!c->exclude_ids) { rc = SV_EINTERNAL; goto done; }
            const cJSON *e;
            cJSON_ArrayForEach(e, kv) {
                if (!is_int(e)) { rc = sv_fail(SV_EINPUT, "%s: exclude_token_ids[%d]: must be an integer", cp, c->n_exclude); goto done; }
                c->exclude_ids[c->n_exclude++] = (int64_t)e->valuedouble;
            }
        } else if (strcmp(k, "legacy_batch_sequences") == 0) {
            if (!is_int(kv) || kv->valuedouble < 1 || kv->valuedouble > 1e9) { rc = sv_fail(SV_EINPUT, "%s: legacy_batch_sequences: must be an integer from 1 to 1e9", cp); goto done; }
            c->legacy_batch_sequences = (int)kv->valuedouble;
        } else if (strcmp(k, "precision") == 0) {
            if (!cJSON_IsString(kv)) { rc = sv_fail(SV_EINPUT, "%s: precision: must be \"float32\", \"float64\" or \"bfloat16\"", cp); goto done; }
            if (strcmp(kv->valuestring, "float32") == 0) c->precision = 32;
            else if (strcmp(kv->valuestring, "float64") == 0) c->precision = 64;
            else if (strcmp(kv->valuestring, "bfloat16") == 0) c->precision = 16;
            else { rc = sv_fail(SV_EINPUT, "%s: precision: \"%s\" is not float32, float64 or bfloat16", cp, kv->valuestring); goto done; }
        } else if (strcmp(k, "nonfinite") == 0) {
            if (!cJSON_IsString(kv) || (strcmp(kv->valuestring, "error") && strcmp(kv->valuestring, "skip"))) { rc = sv_fail(SV_EINPUT, "%s: nonfinite: must be \"error\" or \"skip\"", cp); goto done; }
            c->nonfinite_skip = strcmp(kv->valuestring, "skip") == 0;
        } else if (strcmp(k, "top_examples") == 0) {
            if (!is_int(kv) || kv->valuedouble < 0 || kv->valuedouble > 10000) { rc = sv_fail(SV_EINPUT, "%s: top_examples: must be an integer in [0, 10000] (0: no feature files)", cp); goto done; }
            c->top_examples = (int)kv->valuedouble;
        } else if (strcmp(k, "context") == 0) {
            const cJSON *b = cJSON_GetArrayItem(kv, 0), *a = cJSON_GetArrayItem(kv, 1);
            if (cJSON_IsString(kv) && strcmp(kv->valuestring, "sequence") == 0) c->ctx_before = c->ctx_after = -1;
            else if (cJSON_IsArray(kv) && cJSON_GetArraySize(kv) == 2 && is_int(b) && is_int(a) && b->valuedouble >= 0 &&
                     a->valuedouble >= 0 && b->valuedouble <= 4096 && a->valuedouble <= 4096) {
                c->ctx_before = (int)b->valuedouble;
                c->ctx_after = (int)a->valuedouble;
            } else { rc = sv_fail(SV_EINPUT, "%s: context: must be [before, after] (integers in [0, 4096]) or \"sequence\"", cp); goto done; }
        } else if (strcmp(k, "tokenizer") == 0) {
            if (!cJSON_IsString(kv) || !kv->valuestring[0]) { rc = sv_fail(SV_EINPUT, "%s: tokenizer: must be the path of a tokenizer.json", cp); goto done; }
            free(c->tokenizer);
            if (!(c->tokenizer = sv_path_join(dir, kv->valuestring))) { rc = SV_EINTERNAL; goto done; }
        } else if (strcmp(k, "geometry") == 0) {
            if (!cJSON_IsBool(kv)) { rc = sv_fail(SV_EINPUT, "%s: geometry: must be true or false", cp); goto done; }
            c->geometry = cJSON_IsTrue(kv);
        } else if (strcmp(k, "memory_budget_mb") == 0) {
            if (!is_int(kv) || kv->valuedouble < 1 || kv->valuedouble > 1e12) { rc = sv_fail(SV_EINPUT, "%s: memory_budget_mb: must be a positive integer (MiB per rank)", cp); goto done; }
            c->memory_budget_mb = (int64_t)kv->valuedouble;
        } else if (strcmp(k, "dead_density_threshold") == 0) {
            if (!cJSON_IsNumber(kv) || !isfinite(kv->valuedouble) || kv->valuedouble < 0 || kv->valuedouble > 1) { rc = sv_fail(SV_EINPUT, "%s: dead_density_threshold: must be a number in [0, 1] (a latent firing on a smaller fraction of tokens counts as dead)", cp); goto done; }
            c->dead_density_threshold = kv->valuedouble;
        } else if (strcmp(k, "model_params") == 0) {
            if (!cJSON_IsNumber(kv) || !isfinite(kv->valuedouble) || kv->valuedouble <= 0) { rc = sv_fail(SV_EINPUT, "%s: model_params: must be a positive number (parameters of the language model)", cp); goto done; }
            c->model_params = kv->valuedouble;
        } else if (strcmp(k, "model") == 0) {
            if (!cJSON_IsString(kv) || !kv->valuestring[0]) { rc = sv_fail(SV_EINPUT, "%s: model: must be a non-empty string (a Hugging Face model directory)", cp); goto done; }
            free(c->model);
            if (!(c->model = sv_path_join(dir, kv->valuestring))) { rc = SV_EINTERNAL; goto done; }
        } else if (strcmp(k, "downstream_sequences") == 0) {
            if (!is_int(kv) || kv->valuedouble < 0 || kv->valuedouble > 1e15) { rc = sv_fail(SV_EINPUT, "%s: downstream_sequences: must be a non-negative integer (0: every sequence)", cp); goto done; }
            c->downstream_sequences = (int64_t)kv->valuedouble;
        } else if (strcmp(k, "block_tokens") == 0) {
            /* Whole encoder tiles, so that blocks never change results. */
            if (!is_int(kv) || kv->valuedouble < SV_GEMM_ROWS || kv->valuedouble > 1048576 || fmod(kv->valuedouble, SV_GEMM_ROWS) != 0) { rc = sv_fail(SV_EINPUT, "%s: block_tokens: must be a multiple of %d from %d to 1048576", cp, SV_GEMM_ROWS, SV_GEMM_ROWS); goto done; }
            c->block_tokens = (int64_t)kv->valuedouble;
        } else {
            rc = sv_fail(SV_EINPUT, "%s: unknown key \"%s\"", cp, k);
            goto done;
        }
    }
    if (!out) { rc = sv_fail(SV_EINPUT, "%s: output_dir: missing", cp); goto done; }
    if (!saes) { rc = sv_fail(SV_EINPUT, "%s: saes: missing", cp); goto done; }
    if (!datasets) { rc = sv_fail(SV_EINPUT, "%s: datasets: missing", cp); goto done; }
    c->output_dir = sv_path_join(dir, out);
    if (!c->output_dir) { rc = SV_EINTERNAL; goto done; }
    if ((rc = parse_saes(c, saes, dir, cp)) != SV_OK) goto done;
    rc = parse_datasets(c, datasets, dir, cp);
    for (int j = 0; rc == SV_OK && j < c->n_datasets; j++)
        if (!c->datasets[j].model && c->model && !(c->datasets[j].model = sv_strdup(c->model))) rc = SV_EINTERNAL;
done:
    cJSON_Delete(root);
    free(dir);
    return rc;
}

sv_rc sv_config_load(sv_config *c, const char *config_path)
{
    char *text = NULL;
    size_t n = 0;
    memset(c, 0, sizeof *c);
    sv_rc rc = sv_read_file(config_path, &text, &n);
    if (rc != SV_OK) return rc;
    rc = sv_config_parse(c, text, n, config_path);
    free(text);
    return rc;
}

void sv_config_free(sv_config *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_saes; i++) free(c->saes[i].path);
    for (int i = 0; i < c->n_datasets; i++) {
        free(c->datasets[i].name);
        free(c->datasets[i].path);
        free(c->datasets[i].shift);
        free(c->datasets[i].model);
    }
    free(c->model);
    free(c->saes);
    free(c->datasets);
    free(c->exclude_ids);
    free(c->tokenizer);
    free(c->output_dir);
    free(c->config_path);
    memset(c, 0, sizeof *c);
}

const char *sv_precision_name(int precision)
{
    return precision == 64 ? "float64" : precision == 16 ? "bfloat16" : "float32";
}
