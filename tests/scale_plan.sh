#!/bin/sh
# usage: scale_plan.sh SAEVAL CONFIG WORKDIR
# `saeval plan --shards 3` against a plain recomputation from the SAEs'
# cfg.json (d_in, d_sae) and the stores' token counts (from `saeval info`):
# longest-first onto the least-loaded shard, max/mean, suggested size.
set -u
saeval=$1 cfg=$2 work=$3
rm -rf "$work" && mkdir -p "$work" || exit 1
"$saeval" plan "$cfg" --shards 3 --gflops 100 --output-dir "$work/empty" > "$work/plan.txt" || { echo "plan failed"; exit 1; }
cat "$work/plan.txt"
for ds in $(python3 -c "import json,sys,os; c=json.load(open(sys.argv[1])); [print(os.path.join(os.path.dirname(sys.argv[1]), d['path'])) for d in c['datasets']]" "$cfg"); do
    "$saeval" info "$ds" | grep -m1 'n_tokens' || true
done > "$work/info.txt"
python3 - "$cfg" "$work/plan.txt" "$work/info.txt" <<'PY'
import json, os, re, sys
cfgp, planp, infop = sys.argv[1:4]
c = json.load(open(cfgp)); base = os.path.dirname(cfgp)
saes = [s if isinstance(s, str) else s["path"] for s in c["saes"]]
dims = []
for s in saes:
    sc = json.load(open(os.path.join(base, s, "cfg.json")))
    dims.append((sc["d_in"], sc["d_sae"]))
toks = [int(re.search(r"n_tokens\s+(\d+)", l).group(1)) for l in open(infop)]
assert len(toks) == len(c["datasets"]), (toks, "one token count per store from saeval info")
cost = [toks[j] * dims[i][0] * dims[i][1] for i in range(len(saes)) for j in range(len(toks))]
order = sorted(range(len(cost)), key=lambda p: (-cost[p], p))
load = [0.0] * 3
for p in order:
    b = min(range(3), key=lambda s: (load[s], s))
    load[b] += cost[p]
mx, mean = max(load), sum(load) / 3
plan = open(planp).read()
m = re.search(r"shards: 3: .*?max ([\d.]+) mean ([\d.]+) \(max/mean ([\d.]+)\)", plan)
bad = 0
def near(a, b, what):
    global bad
    if abs(a - b) > 0.051 + 1e-3 * abs(b):
        print("FAIL %s: plan %g, expected %g" % (what, a, b)); bad = 1
near(float(m.group(1)), 2 * mx / 1e9, "max shard GFLOP")
near(float(m.group(2)), 2 * mean / 1e9, "mean shard GFLOP")
near(float(m.group(3)), mx / mean, "max/mean")
sug = int(re.search(r"SAEVAL_SUGGESTED_SHARDS=(\d+)", plan).group(1))
want = max(1, min(len(cost), int(sum(cost) // max(cost))))
if sug != want: print("FAIL suggested %d, expected %d" % (sug, want)); bad = 1
np_ = len(cost)
if not re.search(r"= %d pairs: %d can run, 0 cannot, %d to compute, 0 complete" % (np_, np_, np_), plan):
    print("FAIL pair counts"); bad = 1
print("scale_plan:", "FAILED" if bad else "ok")
sys.exit(bad)
PY
