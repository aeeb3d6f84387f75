# shellcheck shell=bash
# Shared code of the saeval *.sbatch scripts (not a job script itself).
#
# Slurm runs a copy of the batch script from its spool directory, so a job
# cannot find jobs/ from its own path: submit.sh exports SAEVAL_JOBS_DIR, and
# each *.sbatch falls back to the script path Slurm recorded for the job.

# Print a line prefixed with the job id and time.
sv_say() { printf '[saeval-job %s %s] %s\n' "${SV_JOB_TAG:-?}" "$(date '+%F %T')" "$*"; }

# Source site.sh, load modules, set threads; fail early on a missing binary.
sv_setup() {
    # Trap the stop signals first thing: bash's default action for USR1 is to
    # die, which would lose the requeue.  A signal that arrives before the
    # launcher starts is remembered; sv_run then does not start it.
    trap 'sv_on_signal USR1' USR1
    trap 'sv_on_signal TERM' TERM
    if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then
        SV_JOB_TAG=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
    else
        SV_JOB_TAG=${SLURM_JOB_ID:-nojob}
    fi
    # Threads per rank = the CPUs Slurm gave each task (submit.sh asks for
    # --cpus-per-task=$SAEVAL_THREADS); without -c, site.sh's value is used.
    if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then
        export SAEVAL_THREADS=$SLURM_CPUS_PER_TASK
    fi
    # shellcheck source=site.sh
    . "$SAEVAL_JOBS_DIR/site.sh"
    if [ -n "$SAEVAL_MODULES" ]; then
        if command -v module >/dev/null 2>&1 || type module >/dev/null 2>&1; then
            # shellcheck disable=SC2086
            module load $SAEVAL_MODULES
        else
            sv_say "warning: SAEVAL_MODULES='$SAEVAL_MODULES' but no 'module' command"
        fi
    fi
    if [ ! -x "$SAEVAL_BIN" ]; then
        sv_say "error: saeval binary not found or not executable: $SAEVAL_BIN (set SAEVAL_BIN in jobs/site.sh)"
        exit 2
    fi
    # srun in Slurm >= 22.05 does not inherit the job's --cpus-per-task.
    if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then
        export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK
    fi
    sv_say "host $(hostname -s), ${SLURM_NTASKS:-1} ranks x ${SAEVAL_THREADS:-default} threads, launcher $SAEVAL_LAUNCHER, binary $SAEVAL_BIN"
}

# Fill the array SV_CMD with the launcher command for `saeval ARGS...`.
sv_launcher_cmd() {
    local n=${SLURM_NTASKS:-1}
    # shellcheck disable=SC2206
    local extra=($SAEVAL_LAUNCHER_ARGS)
    case "$SAEVAL_LAUNCHER" in
    srun)
        SV_CMD=(srun --mpi="$SAEVAL_SRUN_MPI" --ntasks="$n" --kill-on-bad-exit=1)
        [ -n "${SLURM_CPUS_PER_TASK:-}" ] && SV_CMD+=(--cpus-per-task="$SLURM_CPUS_PER_TASK")
        ;;
    mpirun)
        # Open MPI takes hosts and slots from the Slurm allocation.
        SV_CMD=(mpirun -np "$n" --bind-to none -x SAEVAL_THREADS)
        ;;
    *)
        sv_say "error: SAEVAL_LAUNCHER must be srun or mpirun, not '$SAEVAL_LAUNCHER'"
        exit 2
        ;;
    esac
    SV_CMD+=("${extra[@]}" "$SAEVAL_BIN" "$@")
}

# Signal handling.  The launcher runs in the background so that the batch
# shell can react to signals while it runs (bash runs traps only between
# commands, and `wait` is interruptible).
SV_CHILD=""
SV_GOT_SIGNAL=""
sv_on_signal() {
    SV_GOT_SIGNAL=$1
    sv_say "got SIG$1: asking saeval to stop after the current work unit"
    if [ -n "$SV_CHILD" ] && kill -0 "$SV_CHILD" 2>/dev/null; then
        # The stop request goes to the launcher as USR1, which saeval treats
        # exactly like TERM (finish the unit, write nothing partial, exit 3).
        # srun and mpirun pass USR1 on to every rank unchanged, whereas a TERM
        # makes srun cancel the step (ranks SIGKILLed at once, measured with
        # Slurm 22.05), and mpirun passes TERM on but then exits 1, not 3.
        kill -USR1 "$SV_CHILD" 2>/dev/null || true
    fi
}

# Run `saeval ARGS...` under the launcher; traps USR1 and TERM while it runs.
# Sets SV_RC to the launcher's exit status.
sv_run() {
    sv_launcher_cmd "$@"
    trap 'sv_on_signal USR1' USR1
    trap 'sv_on_signal TERM' TERM
    if [ -n "$SV_GOT_SIGNAL" ]; then
        SV_RC=3 # stopped before saeval started, like saeval's own exit 3
        sv_say "not starting saeval: SIG$SV_GOT_SIGNAL arrived first"
        return
    fi
    sv_say "running: ${SV_CMD[*]}"
    "${SV_CMD[@]}" &
    SV_CHILD=$!
    SV_RC=0
    # `wait` returns early (status > 128) when a trapped signal arrives; keep
    # waiting until the launcher itself has exited.
    while :; do
        SV_RC=0
        wait "$SV_CHILD" || SV_RC=$?
        kill -0 "$SV_CHILD" 2>/dev/null || break
    done
    SV_CHILD="" # traps stay: a late signal is recorded, not fatal
    sv_say "launcher exited with status $SV_RC"
}

# Requeue this job (array task) if a stop signal asked for it and saeval did
# not finish anyway; then exit.  USR1 (time-limit warning, --signal=B:USR1@N)
# always requeues; TERM only with SAEVAL_REQUEUE_ON_TERM=1 (see site.sh).
sv_finish() {
    local id=${SLURM_JOB_ID:-}
    [ -n "${SLURM_ARRAY_JOB_ID:-}" ] && id=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}
    if [ "$SV_RC" -ne 0 ] && { [ "$SV_GOT_SIGNAL" = USR1 ] ||
        { [ "$SV_GOT_SIGNAL" = TERM ] && [ "$SAEVAL_REQUEUE_ON_TERM" = 1 ]; }; }; then
        trap '' TERM USR1 # requeueing ourselves ends this shell with a TERM
        sv_say "stopped by SIG$SV_GOT_SIGNAL (status $SV_RC): requeueing $id; it resumes where it stopped"
        if scontrol requeue "$id"; then
            exit "$SV_RC"
        fi
        sv_say "error: scontrol requeue $id failed; resubmit to resume"
    elif [ -n "$SV_GOT_SIGNAL" ] && [ "$SV_RC" -ne 0 ]; then
        sv_say "stopped by SIG$SV_GOT_SIGNAL (status $SV_RC); not requeued: resubmit to resume"
    fi
    case "$SV_RC" in
    0) sv_say "done" ;;
    3) sv_say "saeval was interrupted (exit 3); finished pairs are kept, a rerun resumes" ;;
    esac
    exit "$SV_RC"
}
