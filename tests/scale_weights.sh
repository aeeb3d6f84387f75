#!/bin/sh
# usage: scale_weights.sh SAEVAL MPIEXEC MPIFLAGS CONFIG WORKDIR
# Every SAE fits the (default) budget: each is read once per rank for the
# whole sweep, not once per dataset. run.log's count and bytes are checked
# against the number of SAE directories and their files' sizes (du).
set -u
saeval=$1 mpiexec=$2 flags=$3 cfg=$4 work=$5
rm -rf "$work" && mkdir -p "$work" || exit 1
# shellcheck disable=SC2086
$mpiexec $flags -np 2 "$saeval" run "$cfg" --output-dir "$work/out" --quiet --no-table || { echo "run failed"; exit 1; }
saes=$(dirname "$cfg")/saes
n=$(ls -1 "$saes" | wc -l)
bytes=$(cat "$saes"/*/* | wc -c)
line=$(grep 'SAE weights:' "$work/out/run.log" | tail -1)
echo "run.log: $line; expected $n loads, $bytes bytes"
[ "$line" = "SAE weights: $n loads, $bytes bytes read per rank" ] || { echo "FAIL"; exit 1; }
# A rerun with nothing to do loads nothing.
$mpiexec $flags -np 2 "$saeval" run "$cfg" --output-dir "$work/out" --quiet --no-table || { echo "rerun failed"; exit 1; }
line=$(grep 'SAE weights:' "$work/out/run.log" | tail -1)
[ "$line" = "SAE weights: 0 loads, 0 bytes read per rank" ] || { echo "FAIL no-op rerun: $line"; exit 1; }
echo "scale_weights: ok"
