#!/bin/sh
# usage: bench_quick.sh MPIEXEC [MPI flags...] -- SAEVAL
# Runs `saeval bench --quick` on 2 ranks; passes when it exits 0 and prints
# every case's row. Timings are not judged here.
set -u
mpi=""
while [ "$1" != "--" ]; do mpi="$mpi $1"; shift; done
shift
out=$($mpi -np 2 "$1" bench --quick --repeat 1 2>&1)
rc=$?
echo "$out"
[ $rc = 0 ] || { echo "bench exited $rc"; exit 1; }
for row in "budget: d_sae 131072" "<- in use" "compute topk, float32 store" "compute topk, bfloat16 store" \
           "compute topk, precision bfloat16" "compute topk, top_examples 20" "keeping examples during the pass" "sweep 8 SAEs + geometry, whole run" "sweep 8 SAEs, dataset passes" \
           "geometry alone, d_sae" "downstream suffix" \
           "downstream 8 SAEs vs 1" "collect, last layer" "BENCH ranks=2"; do
  echo "$out" | grep -q "$row" || { echo "missing row: $row"; exit 1; }
done
echo "bench_quick: all rows present"
