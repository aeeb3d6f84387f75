#!/bin/sh
# usage: valgrind_run.sh SAEVAL WORKDIR [NP]
# One MPI run (mpirun -np NP, default 2) of `saeval run` under valgrind
# memcheck on a small synthetic sweep: `saeval synth` writes the sweep
# (not under valgrind), then a reduced config (two SAEs: topk and jumprelu,
# one dataset) is evaluated with every rank under valgrind. Fails if valgrind
# reports any error (invalid read/write, uninitialised value use, bad free,
# definite leak) outside the suppressions in tests/valgrind.supp (MPI/PMIx/
# hwloc/HDF5/OpenBLAS/OpenMP library noise only), or if saeval fails.
# Per-rank logs: WORKDIR/vg.<pid>.log. Env: MPIEXEC (default mpirun),
# VALGRIND_EXTRA (extra valgrind flags).
set -eu
SAEVAL=$(readlink -f "$1")
WORK=$2
NP=${3:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
MPIEXEC=${MPIEXEC:-mpirun}

rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
"$SAEVAL" synth "$WORK/synth" > "$WORK/synth.log" 2>&1 || { cat "$WORK/synth.log"; exit 1; }
cat > "$WORK/config.json" <<JSON
{
  "output_dir": "results",
  "saes": ["synth/saes/topk_k32_w512", "synth/saes/jumprelu_w512"],
  "datasets": [{"name": "oos_domain", "path": "synth/stores/oos_domain.h5", "role": "in_sample"}],
  "exclude_token_ids": [0],
  "precision": "float32"
}
JSON

# saeval re-execs itself once to set these; under valgrind that exec would
# leave valgrind, so set them here and tell saeval not to.
export SAEVAL_ENV_READY=1 GOMP_SPINCOUNT=10000
# valgrind does not emulate AVX-512, so never let OpenBLAS pick SKYLAKEX here.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Keep MPI plugins loaded so leak stacks name them (Open MPI >= 5; 4.1 ignores
# it, and tests/valgrind.supp matches those stacks by their libmpi callers).
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
# Shared-memory single-copy (CMA/XPMEM) confuses memcheck; sm copies are fine.
export OMPI_MCA_btl_vader_single_copy_mechanism=none

rc=0
$MPIEXEC --oversubscribe --allow-run-as-root -np "$NP" \
  valgrind --tool=memcheck --error-exitcode=1 \
    --suppressions="$HERE/valgrind.supp" \
    --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --track-origins=yes --num-callers=40 --gen-suppressions=all \
    --log-file="$WORK/vg.%p.log" ${VALGRIND_EXTRA:-} \
    "$SAEVAL" run "$WORK/config.json" --quiet --no-table > "$WORK/run.log" 2>&1 || rc=$?

echo "[valgrind] saeval run exit code: $rc"
for f in "$WORK"/vg.*.log; do
  echo "[valgrind] $(basename "$f"): $(grep -E 'ERROR SUMMARY' "$f" | tail -1 | sed 's/^==[0-9]*== //')"
  grep -E 'definitely lost:|indirectly lost:|possibly lost:' "$f" | sed 's/^==[0-9]*== /    /' || true
done
ls "$WORK/results" | sed 's/^/[valgrind] result: /'
if [ "$rc" != 0 ]; then
  cat "$WORK/run.log"
  for f in "$WORK"/vg.*.log; do
    grep -q 'ERROR SUMMARY: 0 errors' "$f" || { echo "=== $f"; cat "$f"; }
  done
  echo "[valgrind] FAILED"
  exit 1
fi
# Every rank must have produced a summary, and results must exist.
n=$(grep -l 'ERROR SUMMARY: 0 errors' "$WORK"/vg.*.log | wc -l)
[ "$n" -ge "$NP" ] || { echo "[valgrind] expected $NP clean valgrind logs, got $n"; exit 1; }
[ -f "$WORK/results/all_eval_results.json" ] || { echo "[valgrind] no all_eval_results.json"; exit 1; }
echo "[valgrind] clean: $NP ranks, 0 errors"
