/* feature_metrics.h5 from the per-pair result files; see featmetrics.h. */
#include "saeval/featmetrics.h"

#include <cjson/cJSON.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saeval/fsutil.h"
#include "saeval/output.h"

/* Column names: the per-pair JSON's feature_metrics keys. */
static const char *const COLS[] = {"firing_counts", "feature_density", "consistent_activation_heuristic",
                                   "encoder_norm", "encoder_bias", "encoder_decoder_cosine_sim",
                                   "max_decoder_cosine_sim", "max_encoder_cosine_sim",
                                   /* a latent id, float64 like the other geometry
                                    * columns so that a pair without geometry reads NaN */
                                   "nearest_decoder_latent"};
enum { N_COLS = sizeof COLS / sizeof COLS[0] };

static herr_t put(hid_t f, const char *name, hid_t ftype, hid_t mtype, const void *buf, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL), pl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    herr_t e = -1;
    /* No object timestamps: same results, same bytes. */
    if (sp >= 0 && pl >= 0 && H5Pset_obj_track_times(pl, 0) >= 0)
        d = H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (d >= 0) e = n ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0;
    if (d >= 0) H5Dclose(d);
    if (pl >= 0) H5Pclose(pl);
    if (sp >= 0) H5Sclose(sp);
    return e;
}

static herr_t put_strings(hid_t f, const char *name, char **s, hsize_t n)
{
    size_t w = 1;
    for (hsize_t i = 0; i < n; i++)
        if (strlen(s[i]) + 1 > w) w = strlen(s[i]) + 1;
    char *buf = calloc(n ? n : 1, w);
    hid_t t = H5Tcopy(H5T_C_S1);
    herr_t e = -1;
    if (buf && t >= 0 && H5Tset_size(t, w) >= 0 && H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0 &&
        H5Tset_cset(t, H5T_CSET_UTF8) >= 0) {
        for (hsize_t i = 0; i < n; i++) memcpy(buf + i * w, s[i], strlen(s[i]));
        e = put(f, name, t, t, buf, n);
    }
    if (t >= 0) H5Tclose(t);
    free(buf);
    return e;
}

/* The file at path already holds exactly these pairs (names and input
 * hashes, in order): then nothing needs rewriting, and a merge after a
 * complete sweep costs one small read instead of parsing every array. */
static int up_to_date(const char *path, int nq, char **sid, char **sds, const uint64_t *hash)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    fclose(fp);
    int same = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    hid_t dh = H5Dopen2(f, "pairs/input_hash", H5P_DEFAULT);
    hid_t sp = dh >= 0 ? H5Dget_space(dh) : -1;
    hsize_t n = 0;
    uint64_t *h = NULL;
    if (sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &n, NULL) == 1 &&
        n == (hsize_t)nq && (h = malloc((n ? n : 1) * sizeof *h)) &&
        (n == 0 || H5Dread(dh, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, h) >= 0)) {
        same = 1;
        for (int q = 0; q < nq && same; q++) same = h[q] == hash[q];
    }
    free(h);
    if (sp >= 0) H5Sclose(sp);
    if (dh >= 0) H5Dclose(dh);
    /* Names too: the hashes do not cover an SAE's id (its directory name). */
    const char *names[2] = {"pairs/sae_id", "pairs/dataset"};
    char **want[2] = {sid, sds};
    for (int k = 0; k < 2 && same; k++) {
        hid_t d = H5Dopen2(f, names[k], H5P_DEFAULT), t = d >= 0 ? H5Dget_type(d) : -1;
        size_t w = t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) ? H5Tget_size(t) : 0;
        char *buf = w ? calloc((size_t)nq + 1, w) : NULL;
        same = buf && (nq == 0 || H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
        for (int q = 0; q < nq && same; q++)
            same = strlen(want[k][q]) < w && strncmp(buf + (size_t)q * w, want[k][q], w) == 0;
        free(buf);
        if (t >= 0) H5Tclose(t);
        if (d >= 0) H5Dclose(d);
    }
    H5Fclose(f);
    return same;
}

sv_rc sv_feature_metrics_write(const sv_config *c, const sv_plan *pl, const char *out_dir, const int *ok)
{
    const int nd = pl->n_ds, np = pl->n_saes * nd;
    int nq = 0;
    for (int p = 0; p < np; p++) nq += ok[p] != 0;
    int64_t *off = calloc((size_t)nq + 1, sizeof *off);
    char **sid = calloc((size_t)nq + 1, sizeof *sid), **sds = calloc((size_t)nq + 1, sizeof *sds);
    uint64_t *hash = calloc((size_t)nq + 1, sizeof *hash);
    double *col = NULL;
    int64_t *cnt = NULL;
    char *path = sv_path_join(out_dir, "feature_metrics.h5"), *tmp = path ? sv_tmp_path(path) : NULL;
    sv_rc rc = (!off || !sid || !sds || !hash || !tmp) ? sv_fail(SV_EINTERNAL, "out of memory writing feature_metrics.h5") : SV_OK;
    for (int p = 0, q = 0; p < np && rc == SV_OK; p++)
        if (ok[p]) {
            sid[q] = pl->ids[p / nd];
            sds[q] = c->datasets[p % nd].name;
            hash[q++] = pl->pair_hash[p];
        }
    H5E_BEGIN_TRY { /* an absent or foreign file is simply rewritten */
        if (rc == SV_OK && up_to_date(path, nq, sid, sds, hash)) nq = -1;
    } H5E_END_TRY;
    if (nq < 0) goto out;
    /* Offsets from the plan (d_sae of each SAE); each pair's file is then
     * parsed on its own and its rows written in place, so memory holds one
     * pair's arrays at a time, never the sweep's. */
    for (int p = 0, q = 0; p < np && rc == SV_OK; p++)
        if (ok[p]) { off[q + 1] = off[q] + pl->cfg[p / nd].d_sae; q++; }
    const hsize_t total = (hsize_t)off[nq];
    int64_t wmax = 1;
    for (int q = 0; q < nq; q++)
        if (off[q + 1] - off[q] > wmax) wmax = off[q + 1] - off[q];
    if (rc == SV_OK) {
        col = malloc((size_t)wmax * sizeof *col);
        cnt = malloc((size_t)wmax * sizeof *cnt);
        if (!col || !cnt) rc = sv_fail(SV_EINTERNAL, "out of memory writing feature_metrics.h5");
    }
    hid_t f = -1;
    if (rc == SV_OK && (f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        remove(tmp); /* nothing half-written stays behind */
        rc = sv_fail(SV_EINTERNAL, "%s: cannot create", tmp);
    }
    if (rc == SV_OK) {
        hid_t ocpl = H5Pcreate(H5P_GROUP_CREATE);
        hid_t g = ocpl >= 0 && H5Pset_obj_track_times(ocpl, 0) >= 0 ? H5Gcreate2(f, "pairs", H5P_DEFAULT, ocpl, H5P_DEFAULT) : -1;
        herr_t e = g < 0 ? -1 : 0;
        if (e >= 0) e = put_strings(g, "sae_id", sid, (hsize_t)nq);
        if (e >= 0) e = put_strings(g, "dataset", sds, (hsize_t)nq);
        if (e >= 0) e = put(g, "offset", H5T_STD_I64LE, H5T_NATIVE_INT64, off, (hsize_t)nq + 1);
        if (e >= 0) e = put(g, "input_hash", H5T_STD_U64LE, H5T_NATIVE_UINT64, hash, (hsize_t)nq);
        if (g >= 0) H5Gclose(g);
        if (ocpl >= 0) H5Pclose(ocpl);
        hid_t ds[N_COLS], fsp = H5Screate_simple(1, &total, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (fsp < 0 || dcpl < 0 || H5Pset_obj_track_times(dcpl, 0) < 0) e = -1;
        for (int k = 0; k < N_COLS; k++)
            ds[k] = e < 0 ? -1 : H5Dcreate2(f, COLS[k], k == 0 ? H5T_STD_I64LE : H5T_IEEE_F64LE, fsp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        for (int k = 0; k < N_COLS; k++)
            if (ds[k] < 0) e = -1;
        for (int p = 0, q = 0; p < np && e >= 0 && rc == SV_OK; p++) {
            if (!ok[p]) continue;
            const int64_t w = off[q + 1] - off[q];
            char *pp = sv_pair_path(out_dir, sid[q], sds[q]), *text = NULL;
            size_t n = 0;
            rc = pp ? sv_read_file(pp, &text, &n) : SV_EINTERNAL;
            cJSON *root = rc == SV_OK ? cJSON_ParseWithLength(text, n) : NULL;
            free(text);
            if (rc == SV_OK && !root) rc = sv_fail(SV_EINPUT, "%s: not valid JSON", pp);
            const cJSON *fmo = cJSON_GetObjectItemCaseSensitive(root, "feature_metrics");
            const cJSON *fc = cJSON_GetObjectItemCaseSensitive(fmo, "firing_counts");
            if (rc == SV_OK && !(cJSON_IsArray(fc) && cJSON_GetArraySize(fc) == w))
                rc = sv_fail(SV_EINPUT, "%s: field 'feature_metrics.firing_counts': not an array of d_sae (%lld) numbers", pp,
                             (long long)w);
            hsize_t start = (hsize_t)off[q], count = (hsize_t)w;
            hid_t msp = H5Screate_simple(1, &count, NULL);
            if (msp < 0 || H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0) e = -1;
            for (int k = 0; k < N_COLS && rc == SV_OK && e >= 0; k++) {
                const cJSON *a = cJSON_GetObjectItemCaseSensitive(fmo, COLS[k]), *v = a ? a->child : NULL;
                for (int64_t r = 0; r < w; r++) {
                    if (k == 0) cnt[r] = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
                    else col[r] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
                    if (v) v = v->next;
                }
                if (w > 0 && H5Dwrite(ds[k], k == 0 ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE, msp, fsp, H5P_DEFAULT,
                                      k == 0 ? (const void *)cnt : (const void *)col) < 0)
                    e = -1;
            }
            if (msp >= 0) H5Sclose(msp);
            cJSON_Delete(root);
            free(pp);
            q++;
        }
        for (int k = 0; k < N_COLS; k++)
            if (ds[k] >= 0) H5Dclose(ds[k]);
        if (fsp >= 0) H5Sclose(fsp);
        if (dcpl >= 0) H5Pclose(dcpl);
        if (H5Fclose(f) < 0) e = -1;
        if (e < 0 || rc != SV_OK) {
            remove(tmp);
            if (rc == SV_OK) rc = sv_fail(SV_EINTERNAL, "%s: write: HDF5 error", path);
        } else {
            rc = sv_tmp_commit(tmp, path);
        }
    }
out:
    free(hash); free(sid); free(sds); free(off); free(col); free(cnt); free(path); free(tmp);
    return rc;
}
