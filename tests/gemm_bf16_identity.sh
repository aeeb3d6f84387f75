#!/bin/sh
# usage: gemm_bf16_identity.sh CASE_DIR SAEVAL MPIEXEC [MPI flags...]
# "precision": "bfloat16" on the e2e `ranks` case: results byte-identical on
# 1 and 3 ranks and on 1 rank with 2 threads, eval_cfg says bfloat16, and
# they differ from the float32 results (the rounding really happens).
set -u
dir=$1 saeval=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
out=$dir/bf16
rm -rf "$out"
mkdir -p "$out"
sed 's/"precision":[[:space:]]*"float32"/"precision": "bfloat16"/; s/"precision":[[:space:]]*"float64"/"precision": "bfloat16"/' \
  "$dir/config.json" > "$dir/config_bf16.json"
grep -q '"precision": "bfloat16"' "$dir/config_bf16.json" || { echo "could not set precision"; exit 1; }
run() { # tag np [env]
  tag=$1 np=$2
  shift 2
  env "$@" $MPI -np "$np" "$saeval" run "$dir/config_bf16.json" --output-dir "$out/$tag" --quiet --no-table \
    || { echo "run $tag failed"; exit 1; }
}
MPI="$*"
run np1 1 SAEVAL_THREADS=1
run np3 3 SAEVAL_THREADS=1
run t2 1 SAEVAL_THREADS=2
sh "$here/e2e_cmp.sh" "$out/np1" "$out/np3" || exit 1
sh "$here/e2e_cmp.sh" "$out/np1" "$out/t2" || exit 1
grep -q '"precision": "bfloat16"' "$out/np1/all_eval_results.json" || { echo "eval_cfg lacks bfloat16"; exit 1; }
$MPI -np 1 "$saeval" run "$dir/config.json" --output-dir "$out/f32" --quiet --no-table || exit 1
if sh "$here/e2e_cmp.sh" "$out/f32" "$out/np1" >/dev/null 2>&1; then echo "bfloat16 results equal float32's"; exit 1; fi
grep 'bfloat16 GEMM' "$out/np1/run.log"
echo "bfloat16: identical across ranks and threads, different from float32"
