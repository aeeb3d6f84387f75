#!/bin/sh
# usage: corpus_sweep.sh DIR TEST_CORPUS SAEVAL
# Sweep isolation: 4 SAEs (good_a, bad = corrupt safetensors, good_b, good_c)
# x 2 datasets (good, nanny = 5 tokens with NaN/Inf).
#   nonfinite error: the 3 good SAE x good pairs complete, every other pair
#     fails with status "error" and a message, no result file, exit code 2.
#   nonfinite skip:  the NaN store evaluates with tokens_nonfinite = 5; only
#     the bad SAE's pairs fail; exit code 2.
# Env: MPIEXEC (default "mpirun --oversubscribe --allow-run-as-root").
set -u
dir=$1 gen=$2 saeval=$3
mpiexec=${MPIEXEC:-mpirun --oversubscribe --allow-run-as-root}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$dir"
"$gen" sweep "$dir" || { echo "FAIL: generator failed"; exit 1; }
bad=0

for mode in error skip; do
    if [ $mode = error ]; then cfg=config.json; else cfg=config_skip.json; fi
    out="$dir/out_$mode"
    # shellcheck disable=SC2086
    timeout 60 $mpiexec -np 2 "$saeval" run "$dir/$cfg" --quiet --no-table >"$dir/stdout_$mode.txt" 2>"$dir/stderr_$mode.txt"
    rc=$?
    echo "== nonfinite $mode: exit code $rc; saeval's stderr lines:"
    grep '^saeval:' "$dir/stderr_$mode.txt"
    if [ "$rc" -ne 2 ]; then echo "FAIL: expected exit code 2, got $rc"; bad=1; fi
    if ! grep '^saeval: error: ' "$dir/stderr_$mode.txt" | grep -q 'saes/bad/sae_weights.safetensors'; then
        echo "FAIL: no 'saeval: error:' line names saes/bad/sae_weights.safetensors"; bad=1
    fi
    n=$(grep -c '^saeval: error: ' "$dir/stderr_$mode.txt")
    if [ $mode = error ]; then
        if ! grep '^saeval: error: ' "$dir/stderr_$mode.txt" | grep -q 'nan.h5.*token 3,'; then
            echo "FAIL: no 'saeval: error:' line names nan.h5 and token 3"; bad=1
        fi
        want=2
    else
        if grep -q 'nan.h5' "$dir/stderr_$mode.txt"; then echo "FAIL: nan.h5 reported although nonfinite is skip"; bad=1; fi
        want=1
    fi
    # README: one line per problem (here: the corrupt SAE, and the NaN store).
    if [ "$n" -ne "$want" ]; then echo "FAIL: $n 'saeval: error:' lines, expected one per problem ($want)"; bad=1; fi
    if ls "$out"/*.tmp* >/dev/null 2>&1; then echo "FAIL: temporary files left:"; ls "$out"/*.tmp*; bad=1; fi
    "$gen" check-sweep "$dir" "$out" $mode || bad=1
done
[ $bad = 0 ] && echo "sweep isolation ok"
exit $bad
