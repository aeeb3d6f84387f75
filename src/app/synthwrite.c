/* Synthetic SAE writer shared by synth and bench. */
#include "synthwrite.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/fsutil.h"
#include "saeval/json.h"
#include "saeval/safetensors.h"

/* Writes a cJSON tree (and deletes it) through the one atomic writer. */
sv_rc sv_synth_write_cjson(const char *path, struct cJSON *root)
{
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return sv_fail(SV_EINTERNAL, "%s: cannot format JSON", path);
    size_t n = strlen(text);
    char *buf = sv_malloc(n + 1);
    sv_rc rc = SV_EINTERNAL;
    if (buf) {
        memcpy(buf, text, n);
        buf[n] = '\n';
        rc = sv_write_atomic(path, buf, n + 1);
    }
    free(buf);
    free(text);
    return rc;
}

sv_rc sv_synth_write_sae(const char *dir, const sv_synth_sae *s)
{
    char *cfgp = sv_path_join(dir, "cfg.json");
    char *wp = sv_path_join(dir, "sae_weights.safetensors");
    char *scp = sv_path_join(dir, "activation_scaler.json");
    sv_rc rc = SV_EINTERNAL;
    if (!cfgp || !wp || !scp) goto done;
    if ((rc = sv_mkdir_p(dir)) != SV_OK) goto done;

    /* SAELens 6 layout: architecture fields at the top, provenance under
     * "metadata". */
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "architecture", s->architecture);
    cJSON_AddNumberToObject(c, "d_in", (double)s->d_in);
    cJSON_AddNumberToObject(c, "d_sae", (double)s->d_sae);
    cJSON_AddStringToObject(c, "dtype", "float32");
    cJSON_AddStringToObject(c, "device", "cpu");
    cJSON_AddBoolToObject(c, "apply_b_dec_to_input", 1);
    cJSON_AddStringToObject(c, "normalize_activations", s->scaling_factor > 0 ? "expected_average_only_in" : "none");
    cJSON_AddStringToObject(c, "reshape_activations", "none");
    if (s->k > 0) {
        cJSON_AddNumberToObject(c, "k", (double)s->k);
        cJSON_AddBoolToObject(c, "rescale_acts_by_decoder_norm", 0);
    }
    if (s->model_name) {
        cJSON *md = cJSON_CreateObject();
        cJSON_AddStringToObject(md, "model_name", s->model_name);
        cJSON_AddStringToObject(md, "hook_name", s->hook_name ? s->hook_name : "");
        cJSON_AddNullToObject(md, "hook_head_index");
        cJSON_AddBoolToObject(md, "prepend_bos", 1);
        cJSON_AddStringToObject(md, "dataset_path", s->dataset_path ? s->dataset_path : "");
        cJSON_AddNumberToObject(md, "context_size", (double)s->context_size);
        cJSON_AddItemToObject(c, "metadata", md);
    }
    if ((rc = sv_synth_write_cjson(cfgp, c)) != SV_OK) goto done;

    if (s->scaling_factor > 0) {
        /* Through the %.17g writer, the one number format of saeval's own
         * JSON (cJSON would print the shortest of 15 or 17 digits). */
        sv_jw w;
        sv_jw_init(&w);
        sv_jw_obj(&w, NULL);
        sv_jw_num(&w, "scaling_factor", s->scaling_factor);
        sv_jw_end(&w);
        sv_jw_raw(&w, "\n", 1);
        rc = w.oom ? sv_fail(SV_EINTERNAL, "%s: out of memory", scp) : sv_write_atomic(scp, w.buf, w.len);
        sv_jw_free(&w);
        if (rc != SV_OK) goto done;
    }

    const int64_t m = s->d_sae, d = s->d_in;
    const struct { const char *name; const double *p; int64_t d0, d1; } all[8] = {
        {"W_enc", s->W_enc, d, m}, {"b_enc", s->b_enc, m, 0}, {"W_dec", s->W_dec, m, d},
        {"b_dec", s->b_dec, d, 0}, {"threshold", s->threshold, m, 0}, {"b_gate", s->b_gate, m, 0},
        {"r_mag", s->r_mag, m, 0}, {"b_mag", s->b_mag, m, 0}};
    sv_st_wtensor t[8];
    int n = 0;
    memset(t, 0, sizeof t);
    for (int i = 0; i < 8; i++) {
        if (!all[i].p) continue;
        t[n].name = all[i].name;
        t[n].dtype = SV_DT_F32;
        t[n].data = all[i].p;
        t[n].ndim = all[i].d1 ? 2 : 1;
        t[n].shape[0] = all[i].d0;
        t[n].shape[1] = all[i].d1;
        n++;
    }
    rc = sv_st_write(wp, t, n);
done:
    free(cfgp); free(wp); free(scp);
    return rc;
}
