# shellcheck shell=bash
# A throw-away single-node Slurm cluster (munged + slurmctld + slurmd) for
# tests/slurm_test.sh.  Source this file, then:
#
#   slurm_cluster_start DIR   # installs slurm-wlm/munge if missing, starts the
#                             # daemons; exports SLURM_CONF; returns non-zero
#                             # with the reason on stderr if Slurm cannot start
#   slurm_cluster_stop        # cancels jobs, stops the daemons by PID
#
# Everything (config, state, spool, logs, pid files, munge key and socket)
# lives under DIR.  The daemons run in the foreground (-D / -F) as background
# children of this shell, so their PIDs are known exactly; they are stopped by
# those PIDs, never by name.  Daemons left over from an earlier run that was
# killed (e.g. by a ctest timeout, which skips traps) are found through the
# pid files in DIR and stopped only if /proc shows that the PID really is that
# daemon started with this DIR's config.

SC_DIR=""
SC_FAIL_REASON=""
SC_MUNGE_DIR=""
SC_MUNGED_PID=""
SC_CTLD_PID=""
SC_SLURMD_PID=""
SC_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sc_log() { printf '[slurm-cluster] %s\n' "$*" >&2; }

# Is PID alive and does its command line contain every further argument?
sc_pid_is() {
    local pid=$1 cmd
    shift
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
    local want
    for want in "$@"; do
        [[ $cmd == *"$want"* ]] || return 1
    done
}

# Send TERM to PID, wait up to $2 seconds, then KILL.
sc_stop_pid() {
    local pid=$1 secs=${2:-15} i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        sc_log "PID $pid ignored SIGTERM for ${secs}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Stop daemons of an earlier, killed run of the test in the same DIR.
sc_stop_stale() {
    local dir=$1 f pid
    for f in "$dir"/run/slurmd.*.pid "$dir"/run/slurmctld.pid "$dir"/munge/munged.pid; do
        [[ -r $f ]] || continue
        pid=$(tr -dc '0-9' < "$f")
        if sc_pid_is "$pid" slurm "$dir/slurm.conf" || sc_pid_is "$pid" munged "$dir/munge/"; then
            sc_log "stopping daemon left over from an earlier run: PID $pid ($f)"
            kill -TERM "$pid" 2>/dev/null || true
            sleep 1
            kill -KILL "$pid" 2>/dev/null || true
        elif [[ -n $pid ]]; then
            sc_log "ignoring stale pid file $f (PID $pid is not that daemon)"
        fi
    done
}

sc_install() {
    local need=()
    command -v slurmctld >/dev/null 2>&1 || need+=(slurm-wlm)
    command -v slurmd >/dev/null 2>&1 || need+=(slurm-wlm)
    command -v munged >/dev/null 2>&1 || need+=(munge)
    ((${#need[@]} == 0)) && return 0
    sc_log "installing slurm-wlm munge (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y slurm-wlm munge >"$SC_DIR/apt.log" 2>&1; then
        sc_log "apt-get install failed; running apt-get update and retrying"
        apt-get update >>"$SC_DIR/apt.log" 2>&1 || true
        apt-get install -y slurm-wlm munge >>"$SC_DIR/apt.log" 2>&1 || {
            sc_log "cannot install slurm-wlm munge (see $SC_DIR/apt.log)"
            tail -5 "$SC_DIR/apt.log" >&2
            return 1
        }
    fi
}

# Run "${@:2}" if PID $1 is alive; fail at once (status 99) if it died.
sc_alive_and() {
    kill -0 "$1" 2>/dev/null || return 99
    "${@:2}"
}

# Wait up to $1 seconds for command "${@:2}" to succeed.
sc_wait_for() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        (($? == 99)) && return 1
        sleep 0.2
    done
    return 1
}

sc_fail() {
    sc_log "FAILED to start Slurm: $*"
    SC_FAIL_REASON=$*
    local f fatal
    for f in "$SC_DIR"/log/* "$SC_MUNGE_DIR"/munged.log; do
        [[ -s $f ]] || continue
        sc_log "---- last lines of $f"
        tail -15 "$f" >&2
        fatal=$(grep -E 'fatal:|Error:' "$f" | tail -n 1 || true)
        [ -n "$fatal" ] && SC_FAIL_REASON="$SC_FAIL_REASON; $(basename "$f"): $fatal"
    done
    return 1
}

slurm_cluster_start() {
    SC_DIR=$1
    [[ $(id -u) == 0 ]] || { sc_log "must run as root (starts slurmd and munged)"; return 1; }
    mkdir -p "$SC_DIR"
    SC_DIR=$(cd "$SC_DIR" && pwd)
    sc_stop_stale "$SC_DIR"
    rm -rf "$SC_DIR"/{state,spool,log,run,munge,slurm.conf}
    mkdir -p "$SC_DIR"/{state,spool,log,run}
    sc_install || return 1

    # --- munged, as the munge user (it refuses to run as root), with its own
    # key and socket.  Unix socket paths are limited to 107 bytes.
    SC_MUNGE_DIR=$SC_DIR/munge
    if ((${#SC_MUNGE_DIR} > 80)); then
        SC_MUNGE_DIR=$(mktemp -d /tmp/saeval-munge.XXXXXX)
        ln -sfn "$SC_MUNGE_DIR" "$SC_DIR/munge"
    fi
    mkdir -p "$SC_MUNGE_DIR"
    chown munge:munge "$SC_MUNGE_DIR"
    chmod 755 "$SC_MUNGE_DIR" # munged: socket dir must be searchable by all
    dd if=/dev/urandom of="$SC_MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    chown munge:munge "$SC_MUNGE_DIR/munge.key"
    chmod 400 "$SC_MUNGE_DIR/munge.key"
    local sock=$SC_MUNGE_DIR/munge.socket
    # setpriv execs munged directly, so $! is munged's own PID.
    setpriv --reuid=munge --regid=munge --init-groups -- /usr/sbin/munged -F \
        --socket="$sock" --key-file="$SC_MUNGE_DIR/munge.key" \
        --pid-file="$SC_MUNGE_DIR/munged.pid" --log-file="$SC_MUNGE_DIR/munged.log" \
        --seed-file="$SC_MUNGE_DIR/munged.seed" >"$SC_DIR/log/munged.out" 2>&1 &
    SC_MUNGED_PID=$!
    sc_wait_for 20 sc_alive_and "$SC_MUNGED_PID" bash -c "munge -n -S '$sock' | unmunge -S '$sock'" ||
        sc_fail "munged (PID $SC_MUNGED_PID) does not answer on $sock" || return 1
    sc_log "munged running, PID $SC_MUNGED_PID"

    # --- slurm.conf; ports: the first free pair from 16817 up (unless given).
    local host cpus mem_mb p
    if [ -z "${SC_CTLD_PORT:-}" ]; then
        for ((p = 16817; p < 16917; p += 2)); do
            sc_port_free "$p" && sc_port_free $((p + 1)) && break
        done
        SC_CTLD_PORT=$p SC_SLURMD_PORT=$((p + 1))
    fi
    host=$(hostname -s)
    cpus=$(nproc --all)
    mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    SC_PARTITION=${SC_PARTITION:-debug}
    sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$SC_DIR|g" -e "s|@CPUS@|$cpus|g" \
        -e "s|@MEM_MB@|$mem_mb|g" -e "s|@MUNGE_SOCKET@|$sock|g" \
        -e "s|@CTLD_PORT@|$SC_CTLD_PORT|g" -e "s|@SLURMD_PORT@|${SC_SLURMD_PORT:-$((SC_CTLD_PORT + 1))}|g" \
        -e "s|@PARTITION@|$SC_PARTITION|g" \
        "$SC_HERE/slurm_cluster.conf.in" >"$SC_DIR/slurm.conf"
    export SLURM_CONF=$SC_DIR/slurm.conf
    export SC_PARTITION SC_MEM_MB=$mem_mb SC_CPUS=$cpus

    # --- slurmctld and slurmd in the foreground (-D), fresh state (-c / -i).
    /usr/sbin/slurmctld -D -c -i -f "$SLURM_CONF" >"$SC_DIR/log/slurmctld.out" 2>&1 &
    SC_CTLD_PID=$!
    sc_wait_for 30 sc_alive_and "$SC_CTLD_PID" scontrol ping ||
        sc_fail "slurmctld (PID $SC_CTLD_PID) does not answer scontrol ping" || return 1
    /usr/sbin/slurmd -D -f "$SLURM_CONF" >"$SC_DIR/log/slurmd.out" 2>&1 &
    SC_SLURMD_PID=$!
    sc_wait_for 60 sc_alive_and "$SC_SLURMD_PID" sc_node_idle ||
        sc_fail "node did not become idle: $(sinfo -h -N -o '%N %T %E' 2>&1)" || return 1
    kill -0 "$SC_CTLD_PID" 2>/dev/null || sc_fail "slurmctld exited" || return 1
    kill -0 "$SC_SLURMD_PID" 2>/dev/null || sc_fail "slurmd exited" || return 1
    sc_log "slurmctld PID $SC_CTLD_PID, slurmd PID $SC_SLURMD_PID; node $host: $cpus CPUs, ${mem_mb} MB; SLURM_CONF=$SLURM_CONF"
}

# Nothing listens on 127.0.0.1:PORT.
sc_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

sc_node_idle() {
    [[ $(sinfo -h -o '%T' 2>/dev/null) == idle* ]]
}

slurm_cluster_stop() {
    local pid
    if [[ -n $SC_CTLD_PID ]] && kill -0 "$SC_CTLD_PID" 2>/dev/null; then
        # Cancel whatever is left, give slurmd a moment to reap the steps.
        scancel --full --quiet -u "$(id -un)" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
            sleep 0.2
        done
    fi
    for pid in "$SC_SLURMD_PID" "$SC_CTLD_PID" "$SC_MUNGED_PID"; do
        sc_stop_pid "$pid" 15
    done
    [[ -n $SC_SLURMD_PID ]] && sc_log "stopped slurmd $SC_SLURMD_PID, slurmctld $SC_CTLD_PID, munged $SC_MUNGED_PID"
    SC_SLURMD_PID="" SC_CTLD_PID="" SC_MUNGED_PID=""
    if [[ -n $SC_MUNGE_DIR && $SC_MUNGE_DIR == /tmp/saeval-munge.* ]]; then
        rm -rf "$SC_MUNGE_DIR"
    fi
}
