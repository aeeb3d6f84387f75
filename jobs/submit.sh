#!/bin/bash
# Submit a saeval sweep to Slurm.
#
#   jobs/submit.sh CONFIG [N_SHARDS|auto] [MAX_PARALLEL]
#       a job array of N_SHARDS tasks (auto, the default: the size
#       `saeval plan CONFIG` suggests) (shard i of N each, at most MAX_PARALLEL
#       running at once) and a merge job that runs after the whole array
#   jobs/submit.sh --sweep CONFIG
#       one MPI job over the whole config (jobs/sweep.sbatch)
#
# Options (before CONFIG):  --dry-run  print the sbatch commands, submit nothing
#
# Resources, partition, account, launcher, binary: jobs/site.sh (or the same
# variables in the environment).  Prints the job ids on stdout as
#   SAEVAL_ARRAY_JOB=<id>
#   SAEVAL_MERGE_JOB=<id>        (or SAEVAL_SWEEP_JOB=<id> with --sweep)
# so that `eval "$(jobs/submit.sh cfg.json 8 4)"` works; details go to stderr.
#
# Why the merge depends on the array with afterany, not afterok: afterok is
# never satisfied when a task fails or is cancelled, so the merge would stay
# pending forever (DependencyNeverSatisfied) and nobody learns which pairs are
# missing.  With afterany the merge always runs once every task has ended for
# good (a requeued task has not ended), writes the summaries when everything
# is there, and otherwise exits 4 listing the missing/failed pairs -- the job
# shows FAILED and its log says what to resubmit.
set -euo pipefail

JOBS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SAEVAL_JOBS_DIR=$JOBS_DIR
# shellcheck source=site.sh
. "$JOBS_DIR/site.sh"

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

MODE=array
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
    --sweep) MODE=sweep; shift ;;
    --dry-run) DRY=1; shift ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) echo "submit.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
[ -f "$1" ] || { echo "submit.sh: config not found: $1" >&2; exit 2; }
CONFIG=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
N_SHARDS=${2:-$SAEVAL_SHARDS}
if [ "$MODE" = array ] && [ "$N_SHARDS" = auto ]; then
    # The plan's suggestion: more shards than that cannot shorten the longest one.
    plan_out=$("$SAEVAL_BIN" plan "$CONFIG" --ranks "$SAEVAL_RANKS" ${SAEVAL_OUTPUT_DIR:+--output-dir "$SAEVAL_OUTPUT_DIR"}) ||
        { echo "submit.sh: saeval plan $CONFIG failed; give N_SHARDS" >&2; exit 2; }
    echo "$plan_out" | grep -v '^SAEVAL_SUGGESTED_SHARDS=' >&2
    N_SHARDS=$(echo "$plan_out" | sed -n 's/^SAEVAL_SUGGESTED_SHARDS=//p')
elif [ "$N_SHARDS" = auto ]; then
    N_SHARDS=1
fi
MAX_PARALLEL=${3:-$SAEVAL_MAX_PARALLEL}
for v in N_SHARDS MAX_PARALLEL SAEVAL_RANKS SAEVAL_SWEEP_RANKS SAEVAL_THREADS SAEVAL_SIGNAL_SECS; do
    case "${!v}" in
    '' | *[!0-9]* | 0) echo "submit.sh: $v must be a positive integer, not '${!v}'" >&2; exit 2 ;;
    esac
done
[ -x "$SAEVAL_BIN" ] || echo "submit.sh: warning: $SAEVAL_BIN is not executable here (fine if it exists on the compute nodes)" >&2

LOG_DIR=${SAEVAL_LOG_DIR:-$PWD}
mkdir -p "$LOG_DIR"
LOG_DIR=$(cd "$LOG_DIR" && pwd)

# Options every job gets.
common=(--parsable)
[ -n "$SAEVAL_PARTITION" ] && common+=(--partition="$SAEVAL_PARTITION")
[ -n "$SAEVAL_ACCOUNT" ] && common+=(--account="$SAEVAL_ACCOUNT")
[ -n "$SAEVAL_QOS" ] && common+=(--qos="$SAEVAL_QOS")
# shellcheck disable=SC2206
[ -n "$SAEVAL_SBATCH_EXTRA" ] && common+=($SAEVAL_SBATCH_EXTRA)

# sbatch ARGS...: submit, print the id (without ";cluster").
submit() {
    if [ "$DRY" = 1 ]; then
        echo "sbatch $*" >&2
        echo "DRYRUN$RANDOM"
        return
    fi
    local out
    out=$(sbatch "$@") || { echo "submit.sh: sbatch failed: sbatch $*" >&2; return 1; }
    echo "${out%%;*}"
}

if [ "$MODE" = sweep ]; then
    id=$(submit "${common[@]}" --nodes="$SAEVAL_SWEEP_NODES" --ntasks="$SAEVAL_SWEEP_RANKS" \
        --cpus-per-task="$SAEVAL_THREADS" --mem="$SAEVAL_MEM" --time="$SAEVAL_SWEEP_TIME" \
        --signal=B:USR1@"$SAEVAL_SIGNAL_SECS" --requeue --output="$LOG_DIR/%x_%j.out" \
        "$JOBS_DIR/sweep.sbatch" "$CONFIG")
    echo "submit.sh: sweep job $id: $SAEVAL_SWEEP_RANKS ranks x $SAEVAL_THREADS threads; log $LOG_DIR/saeval-sweep_$id.out" >&2
    echo "SAEVAL_SWEEP_JOB=$id"
    exit 0
fi

[ "$MAX_PARALLEL" -le "$N_SHARDS" ] || MAX_PARALLEL=$N_SHARDS
array_id=$(submit "${common[@]}" --array="0-$((N_SHARDS - 1))%$MAX_PARALLEL" \
    --nodes=1 --ntasks="$SAEVAL_RANKS" --cpus-per-task="$SAEVAL_THREADS" --mem="$SAEVAL_MEM" \
    --time="$SAEVAL_TIME" --signal=B:USR1@"$SAEVAL_SIGNAL_SECS" --requeue \
    --output="$LOG_DIR/%x_%A_%a.out" "$JOBS_DIR/array.sbatch" "$CONFIG" "$N_SHARDS")
if ! merge_id=$(submit "${common[@]}" --dependency=afterany:"$array_id" --ntasks=1 \
    --cpus-per-task=1 --mem="$SAEVAL_MERGE_MEM" --time="$SAEVAL_MERGE_TIME" \
    --output="$LOG_DIR/%x_%j.out" "$JOBS_DIR/merge.sbatch" "$CONFIG"); then
    echo "submit.sh: cancelling array job $array_id (no merge job)" >&2
    [ "$DRY" = 1 ] || scancel "$array_id" || true
    exit 1
fi
echo "submit.sh: array job $array_id: $N_SHARDS shards, at most $MAX_PARALLEL at once, $SAEVAL_RANKS ranks x $SAEVAL_THREADS threads each; logs $LOG_DIR/saeval-array_${array_id}_<shard>.out" >&2
echo "submit.sh: merge job $merge_id after the array (afterany:$array_id); log $LOG_DIR/saeval-merge_$merge_id.out" >&2
echo "SAEVAL_ARRAY_JOB=$array_id"
echo "SAEVAL_MERGE_JOB=$merge_id"
