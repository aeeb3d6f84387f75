"""Largest relative difference per scalar metric between two saeval result
directories (all_eval_results.json), over all pairs: python3 precdiff.py REF OTHER"""
import json, sys
def flat(d, pre=""):
    for k, v in d.items():
        if isinstance(v, dict): yield from flat(v, pre + k + ".")
        elif isinstance(v, (int, float)) and not isinstance(v, bool): yield pre + k, float(v)
ref = {(r["sae_id"], r["dataset"]): dict(flat(r["metrics"])) for r in json.load(open(sys.argv[1] + "/all_eval_results.json"))}
oth = {(r["sae_id"], r["dataset"]): dict(flat(r["metrics"])) for r in json.load(open(sys.argv[2] + "/all_eval_results.json"))}
worst = {}
for key, m in ref.items():
    for name, a in m.items():
        b = oth[key][name]
        rel = abs(a - b) / max(abs(a), 1e-300) if a != b else 0.0
        if rel > worst.get(name, (-1,))[0]: worst[name] = (rel, key, a, b)
for name in sorted(worst):
    rel, key, a, b = worst[name]
    print(f"{name:55s} {rel:9.2e}  {key[0]}/{key[1]}  {a:.6g} -> {b:.6g}")
