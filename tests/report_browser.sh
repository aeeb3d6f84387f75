#!/bin/sh
# Browser test of the HTML report on a fresh synthetic sweep.
# usage: report_browser.sh MODE SAEVAL MPIEXEC NODE NODE_MODULES WORK ARTIFACTS [PYTHON]
#   ok          run with --no-report (no report), run again (resumes, writes it)
#   failed      one SAE's weights truncated (its pairs fail), one pair's file
#               removed and `saeval merge` (missing pair; merge writes the report)
#   nocharts    report written without plotly.min.js (SAEVAL_PLOTLY_JS points
#               nowhere): tables only, every chart slot says why
#   downstream  ce_loss_score/kl_div_score added to all_eval_results.json by
#               this script (made-up values: checks the page's handling only)
#   latents     run with top_examples and a tokenizer.json (written here, a
#               WordLevel vocabulary with markup and non-ASCII tokens): latent
#               pages; then one pair's feature file removed and one damaged,
#               and `saeval report` again: those pairs' pages still render
#               (PYTHON, 8th argument: Debian's python3 with h5py, reads the
#               feature files for the DOM check)
# then tests/report_browser.mjs checks the pages in Debian's chromium.
set -eu
mode=$1 saeval=$2 mpiexec=$3 node=$4 nm=$5 work=$6 art=$7 py=${8:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" "$art"
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi="$mpiexec --oversubscribe --allow-run-as-root -np 2"
"$saeval" synth "$work/sweep" --seed 3 >/dev/null
cfg=$work/sweep/config.json res=$work/sweep/results
fail() { echo "FAIL: $*"; exit 1; }
extra=""
case $mode in
ok)
  $mpi "$saeval" run "$cfg" --quiet --no-table --no-report
  [ ! -e "$res/report" ] || fail "--no-report wrote a report"
  $mpi "$saeval" run "$cfg" --quiet --no-table > "$work/run.out"
  grep -q "report: .*/report/index.html" "$work/run.out" || fail "run did not write the report"
  ;;
failed)
  st=$work/sweep/saes/topk_k32_w512/sae_weights.safetensors
  head -c 100 "$st" > "$st.tmp" && mv "$st.tmp" "$st"
  rc=0; $mpi "$saeval" run "$cfg" --quiet --no-table --no-report 2>/dev/null || rc=$?
  [ "$rc" = 2 ] || fail "run with a broken SAE exited $rc, not 2"
  rm "$res/std_w512__oos_task.json"
  rc=0; "$saeval" merge "$cfg" --no-table > "$work/merge.out" 2>/dev/null || rc=$?
  [ "$rc" = 4 ] || fail "merge with failed/missing pairs exited $rc, not 4"
  grep -q "report: .*(18 pairs, 14 pair pages, 3 failed, 1 missing)" "$work/merge.out" || fail "merge: $(cat "$work/merge.out")"
  extra="--expect-failed 4"
  ;;
downstream)
  $mpi "$saeval" run "$cfg" --quiet --no-table --no-report
  "$node" -e '
    const fs = require("fs"), f = process.argv[1], all = JSON.parse(fs.readFileSync(f, "utf8"));
    all.forEach((r, i) => { if (r.status === "ok") r.metrics.model_behavior_preservation =
      {ce_loss_score: 0.5 + 0.01 * i, kl_div_score: 0.25 + 0.02 * i}; });
    fs.writeFileSync(f, JSON.stringify(all));' "$res/all_eval_results.json"
  "$saeval" report "$cfg" > "$work/report.out"
  extra="--expect-downstream"
  ;;
nocharts)
  $mpi "$saeval" run "$cfg" --quiet --no-table --no-report
  SAEVAL_PLOTLY_JS=/nonexistent/plotly.min.js "$saeval" report "$cfg" > "$work/report.out" 2> "$work/report.err"
  grep -q "warning: plotly.min.js not found" "$work/report.err" || fail "no warning about the missing Plotly"
  [ ! -e "$res/report/plotly.min.js" ] || fail "plotly.min.js shipped although it was not found"
  extra="--no-charts"
  ;;
latents)
  # in_sample only: a feature run over several datasets stops on the second
  # one today ("features: token ... outside the store"), a features-pass bug
  # outside the report (the feature tests also use in_sample alone).
  "$py" - "$cfg" "$work/sweep/tokenizer.json" <<'PYEOF'
import json, sys
cfg, tok = sys.argv[1], sys.argv[2]
c = json.load(open(cfg))
c["datasets"] = [d for d in c["datasets"] if d["name"] == "in_sample"]
c["top_examples"] = 5
c["tokenizer"] = "tokenizer.json"
json.dump(c, open(cfg, "w"))
vocab = {"w%d" % i: i for i in range(2, 50000)}
vocab["<i>é</i>"] = 1           # the synthetic stores' BOS id: markup must show as text
vocab["<script>alert(1)</script>"] = 0
json.dump({"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
           "post_processor": None, "decoder": None,
           "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<i>é</i>"}}, open(tok, "w"))
PYEOF
  $mpi "$saeval" run "$cfg" --quiet --no-table > "$work/run.out"
  grep -q "report: .*(6 pairs, 6 pair pages, 0 failed, 0 missing, latent pages for 6)" "$work/run.out" ||
    fail "run: $(cat "$work/run.out")"
  # one pair without a feature file, one with a damaged one
  rm "$res/std_w1024__in_sample.features.h5"
  head -c 4000 "$res/jumprelu_w512__in_sample.features.h5" > "$res/x" && mv "$res/x" "$res/jumprelu_w512__in_sample.features.h5"
  "$saeval" report "$cfg" > "$work/report.out"
  grep -q "latent pages for 4)" "$work/report.out" || fail "report: $(cat "$work/report.out")"
  [ ! -e "$res/report/pairs/00001_std_w1024__in_sample_latents.html" ] || fail "a latents page without a feature file"
  [ ! -e "$res/report/latents/00001_std_w1024__in_sample" ] || fail "chunks of an earlier report left behind"
  rc=0; "$saeval" report "$cfg" --tokenizer "$work/none.json" > /dev/null 2> "$work/tok.err" || rc=$?
  [ "$rc" = 2 ] && grep -q "none.json" "$work/tok.err" || fail "a missing tokenizer: exit $rc, $(cat "$work/tok.err")"
  "$saeval" report "$cfg" > "$work/report.out"
  "$py" "$here/report_latents_dump.py" "$res" "$work/sweep/tokenizer.json" > "$work/features_dump.json"
  extra="--latents $work/features_dump.json"
  ;;
*) fail "unknown mode $mode" ;;
esac
[ -f "$res/report/index.html" ] || fail "no report in $res/report"
[ "$mode" = nocharts ] || [ -f "$res/report/plotly.min.js" ] || fail "no plotly.min.js next to the report"
SV_WEB_NODE_MODULES=$nm exec "$node" "$here/report_browser.mjs" "$res" "$art" $extra
