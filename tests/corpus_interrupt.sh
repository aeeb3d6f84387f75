#!/bin/sh
# usage: corpus_interrupt.sh BIGDIR TEST_CORPUS SAEVAL
# BIGDIR: `test_corpus big` (2 SAEs x 2 datasets, several seconds per dataset).
#   1. SIGTERM to mpirun ~1 s into a run (inside the first dataset).
#   2. Resume; once the first dataset's result files exist (inside the second
#      dataset) SIGTERM every rank directly, as SLURM's scancel does: every
#      rank must exit 3. The files written before must not be recomputed.
#   3. Resume; SIGUSR1 to mpirun once it runs (mpirun forwards it; SLURM
#      preemption): exit code 3.
#   4. Resume to completion (exit 0).
#   5. An uninterrupted run into another directory.
# After each stop: exit code non-zero (for 1. mpirun's own code is accepted), a
# "saeval: error:" line saying "stopped by signal", no *.tmp* file, every
# *.json complete JSON, the pair not finished has no result file. Finally
# the *.json and *.csv of 4. and 5. are byte-identical.
# Env: MPIEXEC (default "mpirun --oversubscribe --allow-run-as-root").
set -u
dir=$1 gen=$2 saeval=$3
mpiexec=${MPIEXEC:-mpirun --oversubscribe --allow-run-as-root}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out="$dir/out_interrupted" ref="$dir/out_reference"
rm -rf "$out" "$ref"
bad=0
fail() { echo "FAIL: $*"; bad=1; }

# start_run LOGTAG: starts saeval on 2 ranks into $out in the background; sets
# $pid; returns once the run has started (its header line is in run.log: every
# rank has its signal handlers by then), so a signal sent next is never one
# that arrives before saeval could handle it, however loaded the machine.
start_run() {
    n0=$(cat "$out/run.log" 2>/dev/null | grep -c '^saeval run')
    # shellcheck disable=SC2086
    $mpiexec -np 2 "$saeval" run "$dir/config.json" --output-dir "$out" --quiet --no-table \
        >"$dir/$1.stdout" 2>"$dir/$1.stderr" &
    pid=$!
    i=0
    while [ "$(cat "$out/run.log" 2>/dev/null | grep -c '^saeval run')" -le "$n0" ] && [ $i -lt 1200 ] &&
          kill -0 "$pid" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
}

# check_stopped LOGTAG RC: the checks after a stop.
check_stopped() {
    echo "== $1: exit code $2; saeval's stderr lines:"
    grep '^saeval' "$dir/$1.stderr"
    [ "$2" -ne 0 ] || fail "$1: exit code 0 after SIGTERM (the run was not interrupted?)"
    [ "$2" -ne 124 ] && [ "$2" -ne 137 ] || fail "$1: killed, not stopped"
    grep '^saeval: error: ' "$dir/$1.stderr" | grep -q 'stopped by signal' ||
        fail "$1: no 'saeval: error:' line says 'stopped by signal'"
    if ls "$out" | grep -q '\.tmp'; then fail "$1: temporary files left: $(ls "$out" | grep '\.tmp' | tr '\n' ' ')"; fi
    for f in "$out"/*.json; do
        [ -e "$f" ] || continue
        "$gen" checkjson "$f" || fail "$1: $f is not complete JSON"
    done
    [ ! -e "$out/big_a__two.json" ] || fail "$1: big_a__two.json exists although the run was stopped"
}

# 1. stop ~1 s in
start_run stop1
sleep 1
kill -TERM "$pid"
wait "$pid"
rc=$?
check_stopped stop1 $rc
[ ! -e "$out/big_a__one.json" ] || echo "note: stop1 came after the first dataset"

# 2. resume, stop during the second dataset
start_run stop2
i=0
while [ ! -e "$out/big_b__one.json" ] && [ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
ranks=$(ps -o pid= --ppid "$pid")
echo "SIGTERM to ranks $(echo $ranks)"
# shellcheck disable=SC2086
[ -n "$ranks" ] && kill -TERM $ranks
wait "$pid"
rc=$?
check_stopped stop2 $rc
[ "$rc" -eq 3 ] || fail "stop2: exit code $rc after SIGTERM to every rank, README says 3"
for p in big_a__one big_b__one; do
    [ -e "$out/$p.json" ] || fail "stop2: $p.json (first dataset, finished before the stop) is missing"
done
stamp() { for p in big_a__one big_b__one; do stat -c '%n %s %Y %i' "$out/$p.json" 2>/dev/null; done; }
before=$(stamp)

# 3. resume, SIGUSR1 to mpirun
start_run stop3
sleep 0.5
kill -USR1 "$pid"
wait "$pid"
rc=$?
check_stopped stop3 $rc
[ "$rc" -eq 3 ] || fail "stop3: exit code $rc after SIGUSR1 (forwarded by mpirun), README says 3"
[ "$before" = "$(stamp)" ] || fail "stop3: complete result files were rewritten (before: $before; after: $(stamp))"

# 4. resume to completion
# shellcheck disable=SC2086
timeout 120 $mpiexec -np 2 "$saeval" run "$dir/config.json" --output-dir "$out" --quiet --no-table \
    >"$dir/resume.stdout" 2>"$dir/resume.stderr"
rc=$?
echo "== resume: exit code $rc"
[ "$rc" -eq 0 ] || { fail "resume: exit code $rc"; cat "$dir/resume.stderr"; }
[ "$before" = "$(stamp)" ] || fail "resume: complete result files were rewritten (before: $before; after: $(stamp))"

# 5. uninterrupted reference
# shellcheck disable=SC2086
timeout 120 $mpiexec -np 2 "$saeval" run "$dir/config.json" --output-dir "$ref" --quiet --no-table \
    >"$dir/ref.stdout" 2>"$dir/ref.stderr"
rc=$?
echo "== reference: exit code $rc"
[ "$rc" -eq 0 ] || { fail "reference: exit code $rc"; cat "$dir/ref.stderr"; }

n=0
for f in "$ref"/*.json "$ref"/*.csv; do
    [ -e "$f" ] || continue
    b=$(basename "$f")
    n=$((n + 1))
    cmp "$f" "$out/$b" || fail "$b differs between the interrupted-and-resumed and the uninterrupted run"
done
for f in "$out"/*.json "$out"/*.csv; do
    [ -e "$ref/$(basename "$f")" ] || fail "$(basename "$f") only in the resumed run"
done
[ "$n" -ge 8 ] || fail "only $n result files in the reference run (expected 4 pairs + 4 summaries)"
echo "compared $n files"
[ $bad = 0 ] && echo "interrupt and rerun ok"
exit $bad
