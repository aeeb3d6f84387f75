# shellcheck shell=bash
# saeval SLURM jobs: the ONE place for site settings.
#
# Sourced by submit.sh (which turns the resource settings into sbatch options)
# and by every *.sbatch script (launcher, binary, modules, threads).  Every
# value can be overridden from the environment, e.g.
#     SAEVAL_PARTITION=gpu SAEVAL_TIME=08:00:00 jobs/submit.sh sweep/config.json 16 4
# Edit the defaults below for your cluster.

# --- Where the jobs run -------------------------------------------------------
# Partition (empty: the cluster's default partition).
: "${SAEVAL_PARTITION:=}"
# Account to charge (empty: your default account).
: "${SAEVAL_ACCOUNT:=}"
# QOS (empty: default).
: "${SAEVAL_QOS:=}"
# Any further sbatch options for every job, e.g. "--constraint=avx2 --exclusive".
: "${SAEVAL_SBATCH_EXTRA:=}"

# --- Software -----------------------------------------------------------------
# Environment modules to load in each job, space separated (empty: none), e.g.
# "gcc/12 openmpi/4.1 hdf5/1.14-openmpi".  Only loaded if `module` exists.
: "${SAEVAL_MODULES:=}"
# The saeval binary (absolute path; default: the build tree next to jobs/).
: "${SAEVAL_BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/saeval}"
# How MPI ranks are started inside the allocation:
#   srun    srun --mpi=$SAEVAL_SRUN_MPI (default; Slurm must be built with PMIx)
#   mpirun  Open MPI's mpirun, which reads the allocation from Slurm
: "${SAEVAL_LAUNCHER:=srun}"
# PMI plugin for srun.  Debian's Open MPI 4.1 + Slurm 22.05: only pmix works
# (pmi2 and none fail in MPI_Init).  `srun --mpi=list` shows what you have.
: "${SAEVAL_SRUN_MPI:=pmix}"
# Extra arguments for the launcher (e.g. "--bind-to core" for mpirun).
: "${SAEVAL_LAUNCHER_ARGS:=}"

# --- Resources ----------------------------------------------------------------
# MPI ranks per array task (one shard) and per sweep job.
: "${SAEVAL_RANKS:=1}"
: "${SAEVAL_SWEEP_RANKS:=4}"
# Nodes for the single sweep job (array tasks always use one node).
: "${SAEVAL_SWEEP_NODES:=1}"
# Threads per rank; becomes --cpus-per-task and SAEVAL_THREADS in the job.
: "${SAEVAL_THREADS:=4}"
# Memory per node (sbatch --mem) for array tasks / the sweep job, and for merge.
# saeval's own default memory budget is half of the node's RAM divided by its
# ranks on that node; if --mem is smaller, set "memory_budget_mb" in the
# config to about (mem / ranks per node) minus 1 GB.
: "${SAEVAL_MEM:=16G}"
: "${SAEVAL_MERGE_MEM:=2G}"
# Wall-time limits.
: "${SAEVAL_TIME:=04:00:00}"       # one array task (one shard)
: "${SAEVAL_SWEEP_TIME:=24:00:00}" # sweep.sbatch
: "${SAEVAL_MERGE_TIME:=00:30:00}" # merge.sbatch
# Seconds before the time limit at which Slurm sends USR1 to the batch shell
# (--signal=B:USR1@N): enough to finish the current work unit.  Slurm checks
# this about once a minute, so keep it >= 120.
: "${SAEVAL_SIGNAL_SECS:=300}"

# --- Sweep layout -------------------------------------------------------------
# Default shard count and array throttle for submit.sh (its arguments win).
# "auto": the array size `saeval plan CONFIG` suggests (run here, on the
# submitting node: it reads configs and store headers only).
: "${SAEVAL_SHARDS:=auto}"
: "${SAEVAL_MAX_PARALLEL:=4}"
# Results directory (empty: the config's output_dir).
: "${SAEVAL_OUTPUT_DIR:=}"
# Directory for the jobs' stdout/stderr logs (%x_%A_%a.out); empty: where
# submit.sh is run.
: "${SAEVAL_LOG_DIR:=}"
# What the array tasks do on SIGTERM (scancel, preemption in CANCEL mode):
#   0  stop cleanly and stay stopped (resubmit to resume) -- default, so a
#      plain `scancel` really cancels
#   1  stop cleanly and requeue, like on the USR1 time-limit warning (for
#      sites whose preemption sends TERM and does not requeue by itself)
# Preemption with PreemptMode=REQUEUE is requeued by Slurm in any case
# (the tasks are submitted with --requeue).
: "${SAEVAL_REQUEUE_ON_TERM:=0}"

export SAEVAL_PARTITION SAEVAL_ACCOUNT SAEVAL_QOS SAEVAL_SBATCH_EXTRA SAEVAL_MODULES \
    SAEVAL_BIN SAEVAL_LAUNCHER SAEVAL_SRUN_MPI SAEVAL_LAUNCHER_ARGS SAEVAL_RANKS \
    SAEVAL_SWEEP_RANKS SAEVAL_SWEEP_NODES SAEVAL_THREADS SAEVAL_MEM SAEVAL_MERGE_MEM \
    SAEVAL_TIME SAEVAL_SWEEP_TIME SAEVAL_MERGE_TIME SAEVAL_SIGNAL_SECS SAEVAL_SHARDS \
    SAEVAL_MAX_PARALLEL SAEVAL_OUTPUT_DIR SAEVAL_LOG_DIR SAEVAL_REQUEUE_ON_TERM

# Open MPI refuses to run as root unless told to (containers, test clusters).
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
