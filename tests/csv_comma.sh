#!/bin/sh
# usage: csv_comma.sh WORK DEMO_DIR MPIEXEC SAEVAL TEST_CSV
# An SAE whose directory name (its sae_id) holds a comma: every row of
# all_eval_results.csv and generalization.csv keeps the header's field count.
set -eu
w=$1 demo=$2 mpiexec=$3 saeval=$4 test_csv=$5
rm -rf "$w"; mkdir -p "$w/saes"
cp -r "$demo/saes/std_w512" "$w/saes/std,w512"
cat > "$w/config.json" <<JSON
{"output_dir": "results", "saes": ["saes/std,w512"],
 "datasets": [{"name": "in_sample", "path": "$demo/stores/in_sample.h5", "role": "in_sample"},
              {"name": "oos_task", "path": "$demo/stores/oos_task.h5", "role": "oos", "shift": "task"}],
 "geometry": false}
JSON
"$mpiexec" --oversubscribe --allow-run-as-root -np 1 "$saeval" run "$w/config.json" --quiet --no-table
"$test_csv" rows "$w/results/all_eval_results.csv" "std,w512"
"$test_csv" rows "$w/results/generalization.csv" "std,w512"
