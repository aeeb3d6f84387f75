#!/usr/bin/python3
"""Reads feature files with h5py (independently of saeval's reader) for the
latent-page browser test: for a few latents of each pair, the values the
latents page must show. Token text comes from the tokenizer.json's vocabulary
read here (a WordLevel vocabulary without decoder: a token's text is its
vocabulary string).
usage: report_latents_dump.py RESULTS_DIR TOKENIZER_JSON > dump.json"""
import glob
import json
import os
import sys

import h5py

res, tok_path = sys.argv[1], sys.argv[2]
tok = json.load(open(tok_path, encoding="utf-8"))
text = {i: s for s, i in tok["model"]["vocab"].items()}
out = {}
for path in sorted(glob.glob(os.path.join(res, "*.features.h5"))):
    try:
        f = h5py.File(path, "r")
    except OSError:
        continue  # the test's damaged file
    with f:
        d = int(f.attrs["d_sae"])
        nz = f["nonzero"][:]
        busiest = int(max(range(d), key=lambda j: (nz[j], -j)))
        # the default latent, the first and last (last chunk), one in a middle chunk
        pick = sorted({busiest, 0, d - 1, min(d - 1, 200)})
        # each latent's nearest decoder neighbour, as the pair's result file names it
        sid = f.attrs["sae_id"].decode() if isinstance(f.attrs["sae_id"], bytes) else str(f.attrs["sae_id"])
        dsn = f.attrs["dataset"].decode() if isinstance(f.attrs["dataset"], bytes) else str(f.attrs["dataset"])
        pair = json.load(open(os.path.join(res, sid.replace("/", "-") + "__" + dsn + ".json"), encoding="utf-8"))
        nearest = pair["feature_metrics"].get("nearest_decoder_latent")
        lat = {}
        for j in pick:
            top = []
            for k in range(f["top_token"].shape[1]):
                t = int(f["top_token"][j, k])
                if t < 0:
                    break
                n = int(f["top_window_len"][j, k])
                ids = [int(x) for x in f["top_window_ids"][j, k, :n]]
                top.append({"token": t, "value": float(f["top_value"][j, k]),
                            "start": int(f["top_window_start"][j, k]), "ids": ids,
                            "text": [text.get(i, "") for i in ids]})
            samples = [int((f["interval_token"][j, g] >= 0).sum()) for g in range(f["interval_token"].shape[1])]
            lat[str(j)] = {"nonzero": int(nz[j]), "max": float(f["max"][j]), "top": top,
                           "interval_count": [int(x) for x in f["interval_count"][j]],
                           "interval_samples": samples if nz[j] > 0 else [],
                           "nearest": nearest[j] if nearest else None}
        out[f.attrs["sae_id"].decode() if isinstance(f.attrs["sae_id"], bytes) else str(f.attrs["sae_id"])] = {
            "d_sae": d, "default": busiest, "latents": lat}
json.dump(out, sys.stdout)
