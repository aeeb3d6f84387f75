#!/bin/bash
# End-to-end test of jobs/ on a real single-node Slurm cluster started here.
#
#   usage: tests/slurm_test.sh SAEVAL_BINARY WORKDIR
#
# Needs root (starts munged/slurmd); installs slurm-wlm, munge and jq with
# apt-get if missing.  Starts munged + slurmctld + slurmd under WORKDIR/cluster
# (tests/slurm_cluster.sh), runs the job scripts on `saeval synth` sweeps and
# checks the results against direct `mpirun -np 2 saeval run` runs:
#   sweep_job           jobs/submit.sh --sweep (sweep.sbatch, srun --mpi=pmix, 2 ranks)
#   array_merge         (1) array of 3 shards + merge == direct run, byte for byte
#   array_mpirun        the same with SAEVAL_LAUNCHER=mpirun, 2 ranks per task
#   usr1_requeue        (2) USR1 to a running task's batch shell (what
#                       --signal=B:USR1@N does): saeval stops (exit 3), the task
#                       requeues itself, resumes, result == direct run
#   scancel_resubmit    (2) plain scancel of a running task: it stops, the merge
#                       (afterany) exits 4 listing missing pairs; resubmitting
#                       completes; result == direct run
#   resubmit_noop       (3) resubmitting a finished sweep computes nothing:
#                       every task says "0 to compute", checksums and per-pair
#                       mtimes unchanged
#   pmi_none            srun --mpi=none -n 2 does not run saeval twice
#   no_launcher         a 2-task batch job running saeval without a launcher
#                       exits 2 with the "independent copies" error
# One PASS/FAIL line per check; exit 1 if any failed or Slurm cannot start.
# The daemons are stopped by PID at the end, also on failure (trap EXIT).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 SAEVAL_BINARY WORKDIR" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOBS=$(cd "$HERE/../jobs" && pwd)
mkdir -p "$2"
W=$(cd "$2" && pwd)
SRC_BIN=$1

# Nothing from an enclosing Slurm job may leak into this test.
for v in $(compgen -e | grep '^SLURM_' || true); do unset "$v"; done
for v in $(compgen -e | grep '^SAEVAL_' || true); do unset "$v"; done

# shellcheck source=slurm_cluster.sh
. "$HERE/slurm_cluster.sh"

T0=$SECONDS
N_FAIL=0
N_PASS=0
SUMMARY=()
say() { printf '[slurm_test %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
pass() { N_PASS=$((N_PASS + 1)); SUMMARY+=("PASS: $1 ($2 s)"); say "PASS: $1 ($2 s)"; }
fail() { N_FAIL=$((N_FAIL + 1)); SUMMARY+=("FAIL: $1: $2"); say "FAIL: $1: $2"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    slurm_cluster_stop
    [ -n "${CLUSTER_DIR:-}" ] && rm -rf "$CLUSTER_DIR"
    echo "==================== slurm_test summary ($((SECONDS - T0)) s) ===================="
    local l
    for l in "${SUMMARY[@]}"; do echo "$l"; done
    if [ "$N_FAIL" -gt 0 ] || [ "$N_PASS" -eq 0 ] || [ "$rc" -ne 0 ]; then
        [ "$rc" -ne 0 ] && [ "$N_FAIL" -eq 0 ] && echo "FAIL: test script aborted (status $rc)"
        echo "slurm_test: FAILED ($N_FAIL failed, $N_PASS passed)"
        exit 1
    fi
    echo "slurm_test: all $N_PASS checks passed"
    exit 0
}
trap cleanup EXIT
trap 'say "interrupted"; exit 1' INT TERM

# ---------------------------------------------------------------- cluster
# munged runs as the munge user, so the cluster's state lives in its own
# world-traversable directory: the build tree may sit under a 0700 one
# (mktemp -d), which munged could not enter.
CLUSTER_DIR=$(mktemp -d /tmp/saeval-slurm-XXXXXX)
chmod 755 "$CLUSTER_DIR"
if ! slurm_cluster_start "$CLUSTER_DIR/cluster"; then
    fail slurm_cluster "Slurm could not be started on this machine: ${SC_FAIL_REASON:-see above}"
    exit 1
fi
pass slurm_cluster "$((SECONDS - T0))"

if ! command -v jq >/dev/null 2>&1; then
    apt-get install -y jq >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y jq >/dev/null 2>&1; } ||
        { fail setup "jq is missing and could not be installed"; exit 1; }
fi

# A private copy of the binary: others may rebuild the build tree meanwhile.
rm -rf "${W:?}/bin" "${W:?}/demo" "${W:?}"/ref_* "${W:?}"/out_* "${W:?}"/logs_*
mkdir -p "$W/bin"
cp "$SRC_BIN" "$W/bin/saeval"
BIN=$W/bin/saeval

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Site settings for the jobs (normally jobs/site.sh defaults).
export SAEVAL_BIN=$BIN SAEVAL_PARTITION=$SC_PARTITION SAEVAL_LAUNCHER=srun SAEVAL_RANKS=1 \
    SAEVAL_SWEEP_RANKS=2 SAEVAL_THREADS=1 SAEVAL_MEM=1G SAEVAL_MERGE_MEM=512M \
    SAEVAL_TIME=00:15:00 SAEVAL_SWEEP_TIME=00:15:00 SAEVAL_MERGE_TIME=00:05:00 \
    SAEVAL_SIGNAL_SECS=120 SAEVAL_REQUEUE_ON_TERM=0

# ---------------------------------------------------------------- inputs
t=$SECONDS
"$BIN" synth "$W/demo" >"$W/synth.log" 2>&1 || { cat "$W/synth.log"; fail setup "saeval synth failed"; exit 1; }
CFG=$W/demo/config.json
# A 3x larger sweep (every dataset three times under new names) so that a
# shard runs long enough to be caught running by the cancellation checks.
BIG=$W/demo/big.json
jq '.datasets |= ([range(3) as $k | .[] |
        if $k == 0 then . else (.name += "_r\($k)") |
            (if .role == "in_sample" then .role = "oos" | .shift = "domain" else . end) end])' \
    "$CFG" >"$BIG"
for c in "$CFG" "$BIG"; do
    ref=$W/ref_$(basename "$c" .json)
    mpirun --oversubscribe -np 2 "$BIN" run "$c" --output-dir "$ref" --quiet --no-table >"$ref.log" 2>&1 ||
        { cat "$ref.log"; fail setup "direct mpirun -np 2 saeval run $c failed"; exit 1; }
done
say "inputs: demo sweep + 3x sweep, direct references in $(( SECONDS - t )) s"

# ---------------------------------------------------------------- helpers
# Every *.json and *.csv of REF exists in OUT with the same bytes, and OUT has
# no others (run.log and Slurm's logs are not compared).
same_results() {
    local ref=$1 out=$2 a b f n=0
    a=$(cd "$ref" && ls -1 -- *.json *.csv 2>/dev/null | sort)
    b=$(cd "$out" 2>/dev/null && ls -1 -- *.json *.csv 2>/dev/null | sort)
    if [ "$a" != "$b" ]; then
        echo "file lists differ: $(diff <(echo "$a") <(echo "$b") | grep '^[<>]' | tr '\n' ' ')"
        return 1
    fi
    for f in $a; do
        cmp -s "$ref/$f" "$out/$f" || { echo "$f differs"; return 1; }
        n=$((n + 1))
    done
    echo "$n files identical"
}

# submit.sh ARGS... -> sets ARRAY_JOB / MERGE_JOB / SWEEP_JOB
submit() {
    local out
    out=$("$JOBS/submit.sh" "$@") || return 1
    ARRAY_JOB=$(sed -n 's/^SAEVAL_ARRAY_JOB=//p' <<<"$out")
    MERGE_JOB=$(sed -n 's/^SAEVAL_MERGE_JOB=//p' <<<"$out")
    SWEEP_JOB=$(sed -n 's/^SAEVAL_SWEEP_JOB=//p' <<<"$out")
}

# wait_jobs TIMEOUT ID... : wait until no job (or array task) of these ids is
# left; remembers each id's last seen "JobState ExitCode" in LAST[id].
declare -A LAST=()
wait_jobs() {
    local timeout=$1 id left line
    shift
    local end=$((SECONDS + timeout))
    while :; do
        left=$(squeue -h -o '%F' 2>/dev/null | sort -u | grep -xF -f <(printf '%s\n' "$@") || true)
        for id in "$@"; do
            line=$(scontrol -o show job "$id" 2>/dev/null | head -n 1) || continue
            [ -n "$line" ] || continue
            LAST[$id]="$(sed -n 's/.*JobState=\([^ ]*\).*/\1/p' <<<"$line") $(sed -n 's/.* ExitCode=\([^ ]*\).*/\1/p' <<<"$line")"
        done
        [ -z "$left" ] && return 0
        if [ "$SECONDS" -ge "$end" ]; then
            say "timeout waiting for jobs $*: $(squeue -h -o '%i %T %r' | tr '\n' ';')"
            return 1
        fi
        sleep 0.3
    done
}

# wait_grep TIMEOUT REGEX FILE
wait_grep() {
    local end=$((SECONDS + $1))
    until grep -qE -- "$2" "$3" 2>/dev/null; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# "N to compute, M already complete" of the last saeval run in a task log.
resume_line() { grep -o '[0-9]* to compute, [0-9]* already complete' "$1" | tail -n 1; }

# Per-pair result files: the outputs that cost work.
pair_stats() { (cd "$1" && stat -c '%n %Y.%y %s' -- *__*.json | sort); }
all_sums() { (cd "$1" && sha256sum -- *.json *.csv | sort -k 2); }

# run_check NAME: runs check_NAME in a subshell with its output in
# WORKDIR/check_NAME.log; its last line is the PASS/FAIL detail.  A failing
# check does not stop the others.
run_check() {
    local name=$1 t=$SECONDS log=$W/check_$1.log rc=0
    say "---- $name"
    (check_"$name") >"$log" 2>&1 || rc=$?
    grep '^\[slurm_test' "$log" || true
    if [ "$rc" -eq 0 ]; then
        pass "$name" "$((SECONDS - t))"
        say "     $(tail -n 1 "$log")"
    else
        echo "------ last lines of $log"
        tail -n 40 "$log"
        fail "$name" "$(tail -n 1 "$log") (full log: $log)"
    fi
}

# ---------------------------------------------------------------- checks
check_sweep_job() {
    export SAEVAL_OUTPUT_DIR=$W/out_sweep SAEVAL_LOG_DIR=$W/logs_sweep
    submit --sweep "$CFG" || { echo "submit.sh --sweep failed"; return 1; }
    wait_jobs 300 "$SWEEP_JOB" || { echo "sweep job did not finish"; return 1; }
    cat "$W/logs_sweep/saeval-sweep_$SWEEP_JOB.out"
    grep -q '2 ranks x 1 threads' "$W/logs_sweep/saeval-sweep_$SWEEP_JOB.out" || { echo "sweep did not run on 2 MPI ranks"; return 1; }
    [[ ${LAST[$SWEEP_JOB]:-} == "COMPLETED 0:0" ]] || { echo "sweep job state: ${LAST[$SWEEP_JOB]:-unknown}"; return 1; }
    same_results "$W/ref_config" "$W/out_sweep"
}

# (1) array of shards + merge == direct run
check_array_merge() {
    export SAEVAL_OUTPUT_DIR=$W/out_array SAEVAL_LOG_DIR=$W/logs_array
    submit "$CFG" 3 2 || { echo "submit.sh failed"; return 1; }
    say "array job $ARRAY_JOB, merge job $MERGE_JOB"
    wait_jobs 300 "$ARRAY_JOB" "$MERGE_JOB" || { echo "jobs did not finish"; return 1; }
    cat "$W"/logs_array/*.out
    [[ ${LAST[$MERGE_JOB]:-} == "COMPLETED 0:0" ]] || { echo "merge job state: ${LAST[$MERGE_JOB]:-unknown}"; return 1; }
    local i
    for i in 0 1 2; do
        grep -q "shard $i/3: 6 pairs, 6 to compute" "$W/logs_array/saeval-array_${ARRAY_JOB}_$i.out" ||
            { echo "task $i did not evaluate shard $i/3"; return 1; }
    done
    same_results "$W/ref_config" "$W/out_array"
}

check_array_mpirun() {
    export SAEVAL_OUTPUT_DIR=$W/out_mpirun SAEVAL_LOG_DIR=$W/logs_mpirun
    SAEVAL_LAUNCHER=mpirun SAEVAL_RANKS=2 submit "$CFG" 2 1 || { echo "submit.sh failed"; return 1; }
    wait_jobs 300 "$ARRAY_JOB" "$MERGE_JOB" || { echo "jobs did not finish"; return 1; }
    cat "$W"/logs_mpirun/*.out
    grep -q 'running: mpirun -np 2' "$W/logs_mpirun/saeval-array_${ARRAY_JOB}_0.out" || { echo "mpirun launcher not used"; return 1; }
    grep -q '2 ranks x 1 threads' "$W/logs_mpirun/saeval-array_${ARRAY_JOB}_0.out" || { echo "task did not run on 2 MPI ranks"; return 1; }
    [[ ${LAST[$MERGE_JOB]:-} == "COMPLETED 0:0" ]] || { echo "merge job state: ${LAST[$MERGE_JOB]:-unknown}"; return 1; }
    same_results "$W/ref_config" "$W/out_mpirun"
}

# (2a) time-limit warning path: USR1 to the batch shell of a running task.
check_usr1_requeue() {
    export SAEVAL_OUTPUT_DIR=$W/out_usr1 SAEVAL_LOG_DIR=$W/logs_usr1
    # One shard of 54 pairs (~10 s): time to stop it after some pairs are done.
    submit "$BIG" 1 1 || { echo "submit.sh failed"; return 1; }
    local log=$W/logs_usr1/saeval-array_${ARRAY_JOB}_0.out resumed
    wait_grep 120 '^\[saeval\] pairs [1-9]' "$log" || { echo "task 0 never got past its first pairs"; return 1; }
    say "task ${ARRAY_JOB}_0 is computing; scancel --signal=USR1 --batch ${ARRAY_JOB}_0"
    scancel --signal=USR1 --batch "${ARRAY_JOB}_0"
    wait_jobs 400 "$ARRAY_JOB" "$MERGE_JOB" || { echo "jobs did not finish"; return 1; }
    cat "$W"/logs_usr1/*.out
    grep -q 'got SIGUSR1' "$log" || { echo "batch shell did not see USR1"; return 1; }
    grep -q 'launcher exited with status 3' "$log" ||
        { echo "saeval was not caught running (no exit 3 after USR1): the interruption was not tested"; return 1; }
    grep -q "requeueing ${ARRAY_JOB}_0" "$log" || { echo "task did not requeue itself"; return 1; }
    if grep -q 'scontrol requeue .* failed' "$log"; then echo "scontrol requeue failed"; return 1; fi
    grep -q '(restart 1)' "$log" || { echo "requeued task did not run again"; return 1; }
    resumed=$(resume_line "$log")
    say "requeued task: $resumed"
    [[ $resumed =~ ^[0-9]+\ to\ compute,\ ([0-9]+)\ already && ${BASH_REMATCH[1]} -gt 0 ]] ||
        { echo "the requeued task did not resume (expected some pairs already complete): '$resumed'"; return 1; }
    [[ ${LAST[$MERGE_JOB]:-} == "COMPLETED 0:0" ]] || { echo "merge job state: ${LAST[$MERGE_JOB]:-unknown}"; return 1; }
    same_results "$W/ref_big" "$W/out_usr1"
}

# (2b) plain scancel of a running task, then resubmission.
check_scancel_resubmit() {
    export SAEVAL_OUTPUT_DIR=$W/out_cancel SAEVAL_LOG_DIR=$W/logs_cancel
    submit "$BIG" 2 2 || { echo "submit.sh failed"; return 1; }
    local a1=$ARRAY_JOB m1=$MERGE_JOB log=$W/logs_cancel/saeval-array_${ARRAY_JOB}_0.out resumed
    wait_grep 120 '^\[saeval\] pairs [1-9]' "$log" || { echo "task 0 never got past its first pairs"; return 1; }
    say "task ${a1}_0 is computing; scancel ${a1}_0"
    scancel "${a1}_0"
    wait_jobs 300 "$a1" "$m1" || { echo "jobs did not finish"; return 1; }
    cat "$W"/logs_cancel/*.out
    grep -q 'launcher exited with status 3' "$log" ||
        { echo "saeval was not caught running (no exit 3 after scancel)"; return 1; }
    grep -q 'not requeued' "$log" || { echo "cancelled task did not stop for good"; return 1; }
    [[ ${LAST[$m1]:-} == "FAILED 4:0" ]] || { echo "merge after a cancelled task: ${LAST[$m1]:-unknown}, expected FAILED 4:0"; return 1; }
    grep -q 'missing' "$W/logs_cancel/saeval-merge_$m1.out" || { echo "merge did not report missing pairs"; return 1; }
    local before
    before=$(ls "$SAEVAL_OUTPUT_DIR"/*__*.json | wc -l)
    say "after scancel: $before of 54 pair files, merge exited 4; resubmitting"
    [ "$before" -lt 54 ] || { echo "all pairs were done before the cancel took effect"; return 1; }
    submit "$BIG" 2 2 || { echo "resubmission failed"; return 1; }
    wait_jobs 300 "$ARRAY_JOB" "$MERGE_JOB" || { echo "resubmitted jobs did not finish"; return 1; }
    cat "$W/logs_cancel/saeval-array_${ARRAY_JOB}"_*.out "$W/logs_cancel/saeval-merge_$MERGE_JOB.out"
    [[ ${LAST[$MERGE_JOB]:-} == "COMPLETED 0:0" ]] || { echo "merge after resubmission: ${LAST[$MERGE_JOB]:-unknown}"; return 1; }
    resumed=$(resume_line "$W/logs_cancel/saeval-array_${ARRAY_JOB}_0.out")
    say "resubmitted shard 0: $resumed"
    [[ $resumed =~ ^[0-9]+\ to\ compute,\ ([0-9]+)\ already && ${BASH_REMATCH[1]} -gt 0 ]] ||
        { echo "the resubmitted shard 0 did not resume: '$resumed'"; return 1; }
    same_results "$W/ref_big" "$W/out_cancel"
}

# (3) resubmitting a finished sweep does no work.
check_resubmit_noop() {
    export SAEVAL_OUTPUT_DIR=$W/out_array SAEVAL_LOG_DIR=$W/logs_noop
    [ -s "$W/out_array/all_eval_results.json" ] || { echo "needs the finished sweep of array_merge"; return 1; }
    local s0 m0 s1 m1 i
    s0=$(all_sums "$W/out_array")
    m0=$(pair_stats "$W/out_array")
    sleep 1.1 # a rewrite would show in the mtimes
    touch "$W/noop.stamp"
    submit "$CFG" 3 2 || { echo "submit.sh failed"; return 1; }
    wait_jobs 300 "$ARRAY_JOB" "$MERGE_JOB" || { echo "jobs did not finish"; return 1; }
    cat "$W"/logs_noop/*.out
    [[ ${LAST[$MERGE_JOB]:-} == "COMPLETED 0:0" ]] || { echo "merge job state: ${LAST[$MERGE_JOB]:-unknown}"; return 1; }
    for i in 0 1 2; do
        grep -q '6 pairs, 0 to compute, 6 already complete' "$W/logs_noop/saeval-array_${ARRAY_JOB}_$i.out" ||
            { echo "task $i did not report 0 to compute"; return 1; }
    done
    s1=$(all_sums "$W/out_array")
    m1=$(pair_stats "$W/out_array")
    [ "$s0" = "$s1" ] || { echo "checksums changed: $(diff <(echo "$s0") <(echo "$s1") | grep '^>' | tr '\n' ' ')"; return 1; }
    [ "$m0" = "$m1" ] || { echo "per-pair files were rewritten: $(diff <(echo "$m0") <(echo "$m1") | grep '^>' | head -n 3 | tr '\n' ' ')"; return 1; }
    local touched
    touched=$(cd "$W/out_array" && find . -maxdepth 1 \( -name '*.json' -o -name '*.csv' \) -newer "$W/noop.stamp" -printf '%f ')
    echo "0 to compute in all 3 tasks; $(echo "$s1" | wc -l) files with unchanged checksums; $(echo "$m1" | wc -l) per-pair files with unchanged mtimes; rewritten with identical bytes by merge: ${touched:-none}"
}

# srun without PMI must not run the sweep twice.
check_pmi_none() {
    local out=$W/out_pmi_none rc=0
    srun --mpi=none --ntasks=2 --cpus-per-task=1 "$BIN" run "$CFG" --output-dir "$out" --quiet --no-table \
        >"$W/pmi_none.log" 2>&1 || rc=$?
    cat "$W/pmi_none.log"
    [ "$rc" -ne 0 ] || { echo "srun --mpi=none -n 2 succeeded: saeval ran as independent copies"; return 1; }
    if ls "$out"/*.json >/dev/null 2>&1; then echo "result files written by independent copies"; return 1; fi
    grep -qE 'PMI|independent copies' "$W/pmi_none.log" || { echo "no PMI error message"; return 1; }
    echo "srun --mpi=none -n 2: exit $rc before any work, PMI error reported: $(grep -oE 'independent copies|PMI support' "$W/pmi_none.log" | sort -u | paste -sd,)"
}

# A multi-task job that forgets the launcher: saeval's SLURM_NTASKS check.
check_no_launcher() {
    local out=$W/out_nolaunch rc=0
    sbatch --wait --ntasks=2 --cpus-per-task=1 --mem=512M --output="$W/no_launcher.log" \
        --wrap "'$BIN' run '$CFG' --output-dir '$out' --quiet --no-table" >/dev/null || rc=$?
    cat "$W/no_launcher.log"
    [ "$rc" -eq 2 ] || { echo "expected exit 2, got $rc"; return 1; }
    grep -q 'SLURM_NTASKS=2 but MPI sees 1 rank' "$W/no_launcher.log" || { echo "no 'independent copies' error"; return 1; }
    if ls "$out"/*.json >/dev/null 2>&1; then echo "result files written"; return 1; fi
    echo "exit 2 with the independent-copies error"
}

for c in sweep_job array_merge array_mpirun usr1_requeue scancel_resubmit resubmit_noop pmi_none no_launcher; do
    run_check "$c"
done
