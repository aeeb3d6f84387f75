#!/usr/bin/python3
# usage: scale_h5.py OUTPUT_DIR N_PAIRS
# feature_metrics.h5 read with h5py/numpy (Debian's python3-h5py), compared
# value by value with the per-pair JSON arrays (which this reads with the
# standard json module): the same numbers, pairs in all_eval_results order.
import json, math, os, sys
import h5py, numpy as np

out, n_pairs = sys.argv[1], int(sys.argv[2])
bad = 0
def fail(msg):
    global bad
    bad += 1
    if bad < 20: print("FAIL", msg)

summary = json.load(open(os.path.join(out, "all_eval_results.json")))
ok = [r for r in summary if r.get("status") == "ok"]
for r in summary:
    if "feature_metrics" in r: fail("all_eval_results.json record %s/%s holds feature_metrics" % (r["sae_id"], r["dataset"]))
with h5py.File(os.path.join(out, "feature_metrics.h5"), "r") as f:
    sid = [s.decode() for s in f["pairs/sae_id"][:]]
    dsn = [s.decode() for s in f["pairs/dataset"][:]]
    off = f["pairs/offset"][:]
    cols = {k: f[k][:] for k in f.keys() if k != "pairs"}
if len(sid) != n_pairs or len(ok) != n_pairs: fail("%d pairs in the h5, %d ok in the summary, expected %d" % (len(sid), len(ok), n_pairs))
if off[0] != 0 or any(off[i + 1] < off[i] for i in range(len(off) - 1)): fail("offsets not increasing from 0")
if cols["firing_counts"].dtype != np.int64: fail("firing_counts dtype %s" % cols["firing_counts"].dtype)
for q, r in enumerate(ok[:len(sid)]):
    if (sid[q], dsn[q]) != (r["sae_id"], r["dataset"]): fail("pair %d: %s/%s vs summary %s/%s" % (q, sid[q], dsn[q], r["sae_id"], r["dataset"]))
    fm = json.load(open(os.path.join(out, "%s__%s.json" % (r["sae_id"].replace("/", "-"), r["dataset"]))))["feature_metrics"]
    if set(fm) - set(cols): fail("pair %d: arrays %s not in the h5" % (q, set(fm) - set(cols)))
    for k, col in cols.items():
        got = col[off[q]:off[q + 1]]
        want = fm.get(k)
        if want is None:
            if not np.all(np.isnan(got)): fail("pair %d %s: absent in JSON, not NaN in h5" % (q, k))
            continue
        if len(want) != len(got): fail("pair %d %s: %d values vs %d" % (q, k, len(got), len(want))); continue
        for i, w in enumerate(want):
            g = got[i]
            if w is None:
                if not math.isnan(g): fail("pair %d %s[%d]: null vs %r" % (q, k, i, g))
            elif g != w: fail("pair %d %s[%d]: %r vs JSON %r" % (q, k, i, g, w)); break
print("scale_h5: %d pairs, %d latents, %d columns: %s" % (len(sid), off[-1], len(cols), "FAILED" if bad else "ok"))
sys.exit(1 if bad else 0)
