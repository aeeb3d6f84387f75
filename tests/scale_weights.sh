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
# Rank 0's time by step: the steps add up to no more than the whole run, and
# the dataset passes take at least what the pass lines report for themselves.
awk '/^rank 0 seconds:/ { n++; gsub(/,/, ""); for (i = 4; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { sum += $i; k++ }
                          for (i = 4; i <= NF; i++) if ($i == "passes" && $(i-1) == "dataset") passes = $(i+1) }
     / bytes read, [0-9.]+ s$/ { lines += $(NF-1) }
     /^finished after/ { total = $3 }
     END { printf "steps %d numbers, sum %.3f, passes %.3f, pass lines %.3f, run %.3f\n", k, sum, passes, lines, total;
           exit !(n == 1 && k == 7 && sum <= total + 0.01 && passes + 0.01 >= lines && lines > 0) }' "$work/out/run.log" \
    || { echo "FAIL: run.log's step breakdown"; grep -E '^rank 0 seconds|bytes read,|^finished' "$work/out/run.log"; exit 1; }
# Rank 0's memory: its peak RSS holds at least the weights it read (every SAE
# is resident at once here), and a run takes page faults.
awk -v bytes="$bytes" '/^rank 0 memory: peak RSS [0-9.]+ MiB, page faults [0-9]+ minor, [0-9]+ major$/ { n++; rss = $6; minor = $10 }
     END { printf "peak RSS %.1f MiB against weights %.1f MiB, %d minor faults\n", rss, bytes / 1048576, minor;
           exit !(n == 1 && rss * 1048576 >= bytes && minor > 0) }' "$work/out/run.log" \
    || { echo "FAIL: run.log's memory line"; grep -E '^rank 0 memory|^SAE weights' "$work/out/run.log"; exit 1; }
# A rerun with nothing to do loads nothing.
$mpiexec $flags -np 2 "$saeval" run "$cfg" --output-dir "$work/out" --quiet --no-table || { echo "rerun failed"; exit 1; }
line=$(grep 'SAE weights:' "$work/out/run.log" | tail -1)
[ "$line" = "SAE weights: 0 loads, 0 bytes read per rank" ] || { echo "FAIL no-op rerun: $line"; exit 1; }
echo "scale_weights: ok"
