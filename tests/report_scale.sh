#!/bin/sh
# Report generation time for a large sweep (not a ctest: timing only).
# usage: tests/report_scale.sh BUILD_DIR DEMO_RESULTS WORK [N_SAES N_DATASETS WIDEN]
# Builds WORK/results with N_SAES x N_DATASETS pair records (default 200 x 4)
# made from the demo's per-pair records (names changed; feature arrays
# repeated WIDEN times to imitate wide SAEs) as saeval writes them: each
# pair's file with its arrays, all_eval_results.json with the scalars only;
# the matching generalization rows; then times `saeval report`.
set -eu
build=$1 demo=$2 work=$3 ns=${4:-200} nd=${5:-4} widen=${6:-1}
rm -rf "$work"
mkdir -p "$work/results"
node - "$demo" "$work/results" "$ns" "$nd" "$widen" <<'JS'
const fs = require('fs');
const [demo, out, ns, nd, widen] = [process.argv[2], process.argv[3], +process.argv[4], +process.argv[5], +process.argv[6]];
const src = JSON.parse(fs.readFileSync(demo + '/all_eval_results.json', 'utf8')).filter(r => r.status === 'ok')
  .map(r => JSON.parse(fs.readFileSync(demo + '/' + r.sae_id.replace(/\//g, '-') + '__' + r.dataset + '.json', 'utf8')));
const saes = [...new Set(src.map(r => r.sae_id))], dss = [...new Set(src.map(r => r.dataset))];
const shifts = ['domain', 'task', 'distribution'];
const f = fs.openSync(out + '/all_eval_results.json', 'w');
fs.writeSync(f, '[\n');
const gen = [];
for (let s = 0; s < ns; s++) {
  const base = saes[s % saes.length];
  for (let d = 0; d < nd; d++) {
    const r = structuredClone(src.find(x => x.sae_id === base && x.dataset === dss[Math.min(d, dss.length - 1)]));
    r.sae_id = 'sae' + String(s).padStart(3, '0') + '_' + base;
    r.dataset = d === 0 ? 'in_sample' : 'oos_' + d;
    if (widen > 1) {
      for (const [k, v] of Object.entries(r.feature_metrics)) r.feature_metrics[k] = Array(widen).fill(v).flat();
      r.sae_cfg.d_sae *= widen;
    }
    fs.writeFileSync(out + '/' + r.sae_id + '__' + r.dataset + '.json', JSON.stringify(r, null, 1) + '\n');
    delete r.feature_metrics;
    fs.writeSync(f, (s || d ? ',\n' : '') + JSON.stringify(r));
    if (d > 0) {
      const drop = 5 + ((s * 7 + d * 13) % 50);
      gen.push({sae_id: r.sae_id, dataset: r.dataset, shift: shifts[(d - 1) % 3], status: 'ok',
                metrics: {explained_variance: {in_sample: 0.7, oos: 0.7 * (1 - drop / 100), drop_percent: drop}},
                expected_ev_drop_percent: [20, 40], ev_drop_vs_expected: drop < 20 ? 'below' : drop > 40 ? 'above' : 'inside'});
    }
  }
}
fs.writeSync(f, '\n]\n');
fs.closeSync(f);
fs.writeFileSync(out + '/generalization.json', JSON.stringify({reference_in_sample: 'in_sample', rows: gen}));
JS
ls -la "$work/results"
/usr/bin/time -v "$build/saeval" report --output-dir "$work/results" 2> "$work/time.txt"
grep -E "Elapsed|Maximum resident" "$work/time.txt"
du -sh "$work/results/report" "$work/results/report/pairs"
