#!/bin/sh
# usage: e2e_error.sh CASE WORKDIR TEST_E2E SAEVAL MPIEXEC [MPI_FLAGS...]
# Generates a broken input (test_e2e gen), runs saeval on 2 ranks and checks:
# exit code 2, every fragment of expect_stderr.txt in stderr, exactly one
# 'saeval: error:' line, no pair file.
set -u
case=$1 dir=$2 gen=$3 saeval=$4
shift 4
rm -rf "$dir"
mkdir -p "$dir"
"$gen" gen "$dir" "$case" || { echo "FAIL: generator failed"; exit 1; }
out="$dir/out"
"$@" -np 2 "$saeval" run "$dir/config.json" --output-dir "$out" --quiet >"$dir/stdout.txt" 2>"$dir/stderr.txt"
rc=$?
bad=0
echo "exit code $rc; stderr:"
cat "$dir/stderr.txt"
if [ "$rc" -ne 2 ]; then echo "FAIL: expected exit code 2, got $rc"; bad=1; fi
while IFS= read -r frag; do
    [ -n "$frag" ] || continue
    if ! grep -qF -- "$frag" "$dir/stderr.txt"; then echo "FAIL: stderr does not mention \"$frag\""; bad=1; fi
done <"$dir/expect_stderr.txt"
# README: bad input gives one line on stderr (rank 0 speaks for all).
n=$(grep -c '^saeval: error:' "$dir/stderr.txt")
if [ "$n" -ne 1 ]; then echo "FAIL: expected exactly one 'saeval: error:' line, got $n"; bad=1; fi
if ls "$out"/*__*.json >/dev/null 2>&1; then echo "FAIL: a pair result file was written:"; ls "$out"; bad=1; fi
[ $bad = 0 ] && echo "ok"
exit $bad
