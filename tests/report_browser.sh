#!/bin/sh
# Browser test of the HTML report on a fresh synthetic sweep.
# usage: report_browser.sh MODE SAEVAL MPIEXEC NODE NODE_MODULES WORK ARTIFACTS
#   ok          run with --no-report (no report), run again (resumes, writes it)
#   failed      one SAE's weights truncated (its pairs fail), one pair's file
#               removed and `saeval merge` (missing pair; merge writes the report)
#   nocharts    report written without plotly.min.js (SAEVAL_PLOTLY_JS points
#               nowhere): tables only, every chart slot says why
#   downstream  ce_loss_score/kl_div_score added to all_eval_results.json by
#               this script (made-up values: checks the page's handling only)
# then tests/report_browser.mjs checks the pages in Debian's chromium.
set -eu
mode=$1 saeval=$2 mpiexec=$3 node=$4 nm=$5 work=$6 art=$7
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
*) fail "unknown mode $mode" ;;
esac
[ -f "$res/report/index.html" ] || fail "no report in $res/report"
[ "$mode" = nocharts ] || [ -f "$res/report/plotly.min.js" ] || fail "no plotly.min.js next to the report"
SV_WEB_NODE_MODULES=$nm exec "$node" "$here/report_browser.mjs" "$res" "$art" $extra
