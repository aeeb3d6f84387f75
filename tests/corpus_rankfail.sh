#!/bin/sh
# usage: corpus_rankfail.sh BIGDIR SAEVAL
# BIGDIR: `test_corpus big` (a sweep that takes several seconds). With the
# test hook SAEVAL_TEST_FAIL_RANK=1, rank 1 fails after its first work unit;
# on 2 and 3 ranks the job must end within 30 s (all ranks; normally 1-3 s:
# a hang check with a bound far above normal, not a speed check), exit non-zero,
# show the failing rank's message and write no result file.
# Env: MPIEXEC, RANKFAIL_LIMIT_MS (30000).
set -u
dir=$1 saeval=$2
mpiexec=${MPIEXEC:-mpirun --oversubscribe --allow-run-as-root}
limit_ms=${RANKFAIL_LIMIT_MS:-30000}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
now_ms() { date +%s%3N; }
bad=0
for np in 2 3; do
    out="$dir/out_rankfail_np$np"
    rm -rf "$out"
    t0=$(now_ms)
    # shellcheck disable=SC2086
    SAEVAL_TEST_FAIL_RANK=1 timeout 60 $mpiexec -np $np "$saeval" run "$dir/config.json" --output-dir "$out" --quiet \
        >"$out.stdout" 2>"$out.stderr"
    rc=$?
    ms=$(($(now_ms) - t0))
    echo "== $np ranks: exit code $rc after $ms ms; saeval's stderr lines:"
    grep '^saeval' "$out.stderr"
    if [ "$rc" -eq 0 ]; then echo "FAIL: exit code 0"; bad=1; fi
    if [ "$rc" -eq 124 ]; then echo "FAIL: hung (killed by timeout)"; bad=1; fi
    if [ "$ms" -ge "$limit_ms" ]; then echo "FAIL: took $ms ms (limit $limit_ms)"; bad=1; fi
    if ! grep '^saeval: error: ' "$out.stderr" | grep -q 'injected failure'; then
        echo "FAIL: no 'saeval: error:' line with the failing rank's message 'injected failure'"; bad=1
    fi
    if ls "$out"/*__*.json >/dev/null 2>&1; then echo "FAIL: result files written:"; ls "$out"; bad=1; fi
    if ls "$out"/*.tmp* >/dev/null 2>&1; then echo "FAIL: temporary files left:"; ls "$out"; bad=1; fi
    if ls "$out"/all_eval_results.* >/dev/null 2>&1; then echo "FAIL: summary written after a failed run"; bad=1; fi
done
[ $bad = 0 ] && echo "rank failure ok"
exit $bad
