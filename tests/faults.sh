#!/bin/sh
# usage: faults.sh CASE SAEVAL WORKDIR CMP_SH [SLOWFS_SO]
# Provokes one fault a shared cluster throws at a long sweep and checks
# saeval's promise for it (README, "Faults"). CASE is one of:
#   sigkill   a rank killed with SIGKILL mid-run: every rank out within 30 s,
#             no partial result file; the rerun resumes, byte-identical.
#   diskfull  the output directory is a tmpfs that fills up while results are
#             written: a clear error naming the file, the same non-zero exit
#             on every rank, no truncated or temporary file, earlier results
#             intact; after space is freed the rerun completes, byte-identical.
#   readonly  the output file system turns read-only mid-run: clear error,
#             same exit on every rank, nothing half-written.
#   vanish    the output directory is deleted mid-run: clear error, same exit
#             on every rank, nothing half-written.
#   concurrent  the same sweep started twice on one output directory: the
#             second run leaves every pair the first has claimed to it and
#             says so (host, pid, SLURM job id); each pair is computed once,
#             results byte-identical.
#   stale     a run killed with SIGKILL leaves its claims: the next run on
#             the host sees the owner's pid gone and takes them over.
#   inputchange  a store and an SAE's weights are touched (new mtime, as a
#             rewrite would give) after the first results: the pairs written
#             later that read them are refused with an error naming the file,
#             never written from mixed inputs; the rerun computes them.
#   budget    memory_budget_mb too small for one SAE and its buffers: a
#             clear error before any work (exit 2 on every rank, no result).
#   stall     a store read that stalls (the LD_PRELOAD shim tests/slowfs.c
#             delays the first large read of the store on each rank by 4 s,
#             watchdog threshold 1 s): each rank reports the stalled read
#             with file and rows; the run then completes, byte-identical.
# Needs root for the tmpfs mounts.
# Runs use --no-report: the faults concern the result files (the HTML report is
# rebuilt from them at any time, and writing it would widen the timing windows).
set -u
case=$1 saeval=$(readlink -f "$2") work=$3 cmp=$4 slowfs=${5:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI="mpirun --oversubscribe -np 2"
# Work units slowed down (test hook) where the test acts mid-run.
SLOW="env SAEVAL_TEST_UNIT_DELAY_MS=150"
fail() { echo "FAIL ($case): $*" >&2; exit 1; }
mnt=""
cleanup() { [ -n "$mnt" ] && umount "$mnt" 2>/dev/null; true; }
trap cleanup EXIT INT TERM

rm -rf "$work" && mkdir -p "$work" || fail "cannot create $work"
"$saeval" synth "$work/sweep" --seed 5 >"$work/synth.log" 2>&1 || fail "synth"
mkcfg() { # mkcfg NAME OUT_DIR -> path of a copy of the sweep config writing to OUT_DIR
    python3 - "$work/sweep/config.json" "$1" "$2" <<'PY'
import json, os, sys
c = json.load(open(sys.argv[1])); c["output_dir"] = sys.argv[3]
p = os.path.join(os.path.dirname(sys.argv[1]), sys.argv[2] + ".json")
json.dump(c, open(p, "w"), indent=1); print(p)
PY
}
ref=$work/ref
cref=$(mkcfg ref "$ref") || fail "config"
$MPI "$saeval" run "$cref" --no-report --quiet >"$work/ref.log" 2>&1 || { cat "$work/ref.log"; fail "reference run"; }

# Runs the sweep on 2 ranks, each rank's exit code in $work/rc.RANK.
run_ranks() { # run_ranks CONFIG LOG
    rm -f "$work"/rc.*
    $MPI sh -c '"$0" run "$1" --no-report --quiet >"$2.rank$OMPI_COMM_WORLD_RANK" 2>&1; echo $? >"$3/rc.$OMPI_COMM_WORLD_RANK"' \
        "$saeval" "$1" "$2" "$work" >"$2" 2>&1
    cat "$2".rank* >>"$2" 2>/dev/null
}
same_rc() { # every rank wrote the same, non-zero exit code; prints it
    [ -f "$work/rc.0" ] && [ -f "$work/rc.1" ] || fail "a rank did not exit by itself (killed by mpirun?)"
    a=$(cat "$work/rc.0") b=$(cat "$work/rc.1")
    [ "$a" = "$b" ] || fail "ranks exited with different codes: $a and $b"
    [ "$a" != 0 ] || fail "exit code 0 after a fault"
    echo "$a"
}
no_partial() { # DIR: no temporary file, every pair file equal to the reference's
    d=$1 allow_tmp=${2:-0}
    [ -d "$d" ] || return 0
    if [ "$allow_tmp" = 0 ] && find "$d" -name '*.tmp*' | grep -q .; then fail "temporary file left: $(find "$d" -name '*.tmp*')"; fi
    n=0
    for f in "$d"/*__*.json; do
        [ -f "$f" ] || continue
        cmp -s "$f" "$ref/$(basename "$f")" || fail "result file differs from the reference (truncated?): $f"
        n=$((n + 1))
    done
    echo "$n"
}
wait_first_result() { # DIR PID: until a pair file exists (or the run ends)
    for _ in $(seq 1 600); do
        ls "$1"/*__*.json >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

case $case in
sigkill)
    out=$work/out; c=$(mkcfg out "$out") || fail "config"
    ($SLOW $MPI "$saeval" run "$c" --no-report --quiet >"$work/kill.log" 2>&1; echo $? >"$work/kill.rc") &
    bg=$!
    wait_first_result "$out" "$bg" || fail "the run wrote no result before ending"
    victim=$(pgrep -f "saeval run $c" | while read -r p; do
        [ "$(readlink /proc/"$p"/exe 2>/dev/null)" = "$saeval" ] && echo "$p"; done | tail -n 1)
    [ -n "$victim" ] || fail "no rank to kill (the run ended too early)"
    kill -9 "$victim"
    t0=$(date +%s)
    while [ ! -f "$work/kill.rc" ]; do
        [ $(( $(date +%s) - t0 )) -le 30 ] || fail "job still running 30 s after a rank was killed"
        sleep 0.2
    done
    [ "$(cat "$work/kill.rc")" != 0 ] || fail "mpirun exited 0 after a rank was killed"
    pgrep -f "saeval run $c" >/dev/null && fail "ranks left running after the kill"
    n=$(no_partial "$out") || exit 1
    echo "ok: rank $victim killed, job ended in $(( $(date +%s) - t0 )) s, $n complete results kept, no partial file"
    $MPI "$saeval" run "$c" --no-report >"$work/rerun.log" 2>&1 || { cat "$work/rerun.log"; fail "rerun"; }
    grep -q "left to another run" "$work/rerun.log" && { cat "$work/rerun.log"; fail "the killed run's claims blocked the rerun"; }
    grep -q "already done\|skipp\|resum" "$work/rerun.log" "$out/run.log" 2>/dev/null ||
        echo "note: the rerun log does not mention resumed pairs"
    sh "$cmp" "$ref" "$out" || fail "rerun differs from the reference"
    ;;
diskfull)
    out=$work/out; mkdir -p "$out"; mnt=$out
    total=$(du -sk "$ref" | cut -f1)
    size=$(( total / 2 ))
    mount -t tmpfs -o size=${size}k tmpfs "$out" || fail "cannot mount a tmpfs (needs root)"
    c=$(mkcfg out "$out") || fail "config"
    run_ranks "$c" "$work/full.log"
    rc=$(same_rc) || exit 1
    grep -q "saeval: error: $out/.*No space left on device" "$work/full.log" ||
        { cat "$work/full.log"; fail "no error line naming a file under $out and the cause"; }
    n=$(no_partial "$out") || exit 1
    [ "$n" -gt 0 ] || fail "no complete result survived (tmpfs of ${size} KiB too small for the test)"
    echo "ok: disk full at ${size} KiB: every rank exit $rc, $n complete results intact, no partial file"
    mount -o remount,size=$(( total * 4 ))k "$out" || fail "cannot grow the tmpfs"
    $MPI "$saeval" run "$c" --no-report --quiet >"$work/rerun.log" 2>&1 || { cat "$work/rerun.log"; fail "rerun after freeing space"; }
    sh "$cmp" "$ref" "$out" || fail "rerun differs from the reference"
    ;;
readonly)
    # Root writes through any permission: the run is made by an unprivileged
    # user (nobody) in a world-traversable scratch directory, and the output
    # directory loses its write permission after the first result.
    sc=$(mktemp -d /tmp/saeval-ro.XXXXXX) || fail "mktemp"
    chmod 755 "$sc" && cp "$saeval" "$sc/saeval" && cp -a "$work/sweep" "$sc/sweep" || fail "scratch copy"
    out=$sc/out
    python3 - "$sc/sweep/config.json" "$out" <<'PY' || fail "config"
import json, sys
c = json.load(open(sys.argv[1])); c["output_dir"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
    chown -R 65534:65534 "$sc" || fail "chown"
    (cd "$sc" && SAEVAL_TEST_UNIT_DELAY_MS=150 setpriv --reuid=65534 --regid=65534 --clear-groups env -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
        mpirun --oversubscribe -np 2 sh -c './saeval run sweep/config.json --quiet --no-report >"fault.log.$OMPI_COMM_WORLD_RANK" 2>&1; echo $? >"rc.$OMPI_COMM_WORLD_RANK"' \
        >"$work/fault.log" 2>&1) &
    bg=$!
    wait_first_result "$out" "$bg" || { rm -rf "$sc"; fail "the run wrote no result before ending"; }
    chmod 555 "$out"
    wait "$bg"
    cat "$sc"/fault.log.* >>"$work/fault.log" 2>/dev/null
    cp "$sc"/rc.* "$work/" 2>/dev/null
    rc=$(same_rc) || { rm -rf "$sc"; exit 1; }
    grep -q "saeval: error: .*$out.*Permission denied" "$work/fault.log" ||
        { cat "$work/fault.log"; rm -rf "$sc"; fail "no error line naming a file under $out and the cause"; }
    # A temporary file created just before the permission went cannot be
    # removed either (unlink needs a writable directory): it may stay, under
    # its temporary name only, and the error names it.
    for t in $(find "$out" -name '*.tmp*'); do
        grep -q "$(basename "$t")" "$work/fault.log" || { rm -rf "$sc"; fail "temporary file left and not named by the error: $t"; }
    done
    n=$(no_partial "$out" 1) || { rm -rf "$sc"; exit 1; }
    rm -rf "$sc"
    echo "ok: output directory made unwritable mid-run: every rank exit $rc, $n complete results, no partial file"
    ;;
vanish)
    out=$work/out; c=$(mkcfg out "$out") || fail "config"
    SAEVAL_TEST_UNIT_DELAY_MS=150 run_ranks "$c" "$work/fault.log" &
    bg=$!
    wait_first_result "$out" "$bg" || fail "the run wrote no result before ending"
    mv "$out" "$out.gone" && rm -rf "$out.gone" || fail "cannot delete $out"
    wait "$bg"
    rc=$(same_rc) || exit 1
    grep -q "saeval: error: .*$out" "$work/fault.log" || { cat "$work/fault.log"; fail "no error line naming a file under $out"; }
    [ ! -e "$out" ] || [ -z "$(find "$out" -name '*.tmp*')" ] || fail "temporary file left in the recreated $out"
    echo "ok: output directory deleted mid-run: every rank exit $rc, nothing half-written"
    ;;
concurrent)
    out=$work/out; c=$(mkcfg out "$out") || fail "config"
    (SLURM_JOB_ID=4242 $SLOW $MPI "$saeval" run "$c" --no-report --quiet >"$work/first.log" 2>&1; echo $? >"$work/first.rc") &
    for _ in $(seq 1 600); do ls "$out/.claims/"*.claim >/dev/null 2>&1 && break; sleep 0.05; done
    ls "$out/.claims/"*.claim >/dev/null 2>&1 || fail "the first run made no claims"
    $MPI "$saeval" run "$c" --no-report >"$work/second.log" 2>&1 || { cat "$work/second.log"; fail "second run failed"; }
    grep -q "pairs were left to another run on this output directory (host .*, pid [0-9]*, SLURM job 4242" "$work/second.log" ||
        { cat "$work/second.log"; fail "the second run does not name the first"; }
    grep -q ": 18 pairs, 0 to compute" "$work/second.log" || { cat "$work/second.log"; fail "the second run computed pairs the first had claimed"; }
    wait
    [ "$(cat "$work/first.rc")" = 0 ] || { cat "$work/first.log"; fail "first run failed"; }
    sh "$cmp" "$ref" "$out" || fail "results differ from the reference"
    if ls "$out/.claims/"* >/dev/null 2>&1; then fail "claims left after both runs: $(ls "$out/.claims")"; fi
    echo "ok: second run left all pairs to the first and named it; results identical; no claim left"
    ;;
stale)
    out=$work/out; c=$(mkcfg out "$out") || fail "config"
    ($SLOW $MPI "$saeval" run "$c" --no-report --quiet >"$work/killed.log" 2>&1) &
    for _ in $(seq 1 600); do ls "$out/.claims/"*.claim >/dev/null 2>&1 && break; sleep 0.05; done
    ls "$out/.claims/"*.claim >/dev/null 2>&1 || fail "the first run made no claims"
    pkill -9 -f "saeval run $c"
    pkill -9 -f "mpirun.*saeval run $c"
    wait
    n=$(ls "$out/.claims/"*.claim 2>/dev/null | wc -l)
    [ "$n" -gt 0 ] || fail "the killed run left no claim (the test proves nothing)"
    $MPI "$saeval" run "$c" --no-report >"$work/after.log" 2>&1 || { cat "$work/after.log"; fail "run after a killed one failed"; }
    grep -q "left to another run" "$work/after.log" && fail "a dead run's claims blocked pairs"
    sh "$cmp" "$ref" "$out" || fail "results differ from the reference"
    echo "ok: $n stale claims of a SIGKILLed run taken over (owner pid gone); results identical"
    ;;
inputchange)
    out=$work/out; c=$(mkcfg out "$out") || fail "config"
    SAEVAL_TEST_UNIT_DELAY_MS=150 run_ranks "$c" "$work/change.log" &
    bg=$!
    wait_first_result "$out" "$bg" || fail "the run wrote no result before ending"
    touch "$work/sweep/stores/oos_task.h5" "$work/sweep/saes/std_w512/sae_weights.safetensors"
    wait "$bg"
    rc=$(same_rc) || exit 1
    [ "$rc" = 2 ] || fail "exit code $rc after inputs changed, expected 2"
    grep -q "saeval: error: .*oos_task.h5: the store changed during the run" "$work/change.log" ||
        { cat "$work/change.log"; fail "no error naming the changed store"; }
    grep -q "saeval: error: .*std_w512: the SAE's files changed during the run" "$work/change.log" ||
        { cat "$work/change.log"; fail "no error naming the changed SAE"; }
    for pair in std_w1024__oos_task topk_k32_w512__oos_task std_w512__oos_domain; do
        [ ! -e "$out/$pair.json" ] || fail "$pair.json written although its input changed"
        [ -f "$out/$pair.error.txt" ] || fail "no error note for $pair"
    done
    n=$(no_partial "$out" 1 2>/dev/null | tail -n 1)
    $MPI "$saeval" run "$c" --no-report --quiet >"$work/rerun.log" 2>&1 || { cat "$work/rerun.log"; fail "rerun after the change"; }
    for pair in std_w1024__oos_task topk_k32_w512__oos_task std_w512__oos_domain; do
        [ -f "$out/$pair.json" ] || fail "the rerun did not compute $pair"
        [ ! -e "$out/$pair.error.txt" ] || fail "$pair.error.txt left after the rerun computed it"
    done
    echo "ok: pairs reading a changed store or SAE refused (exit 2 on every rank, errors name the files); rerun computed them"
    ;;
budget)
    out=$work/out
    c=$(python3 - "$work/sweep/config.json" "$out" <<'PY'
import json, os, sys
c = json.load(open(sys.argv[1])); c["output_dir"] = sys.argv[2]; c["memory_budget_mb"] = 2
p = os.path.join(os.path.dirname(sys.argv[1]), "small.json"); json.dump(c, open(p, "w"), indent=1); print(p)
PY
) || fail "config"
    run_ranks "$c" "$work/budget.log"
    rc=$(same_rc) || exit 1
    [ "$rc" = 2 ] || fail "exit code $rc, expected 2"
    grep -q "saeval: error: .*small.json: memory_budget_mb: 2 MB per rank is too small for SAE .* it needs [0-9]* MB" "$work/budget.log" ||
        { cat "$work/budget.log"; fail "no clear budget error"; }
    if ls "$out"/*__*.json >/dev/null 2>&1; then fail "result files written"; fi
    if grep -q "^dataset" "$out/run.log" 2>/dev/null; then fail "a pass ran before the budget error"; fi
    echo "ok: budget too small refused before any work: $(grep -o 'too small for SAE [^:]*: it needs [0-9]* MB' "$work/budget.log" | head -n 1)"
    ;;
stall)
    [ -f "$slowfs" ] || fail "no slowfs shim given"
    out=$work/out; c=$(mkcfg out "$out") || fail "config"
    SLOWFS_MATCH=in_sample.h5 SLOWFS_DELAY_MS=4000 SAEVAL_STALL_SECONDS=1 LD_PRELOAD=$slowfs \
        ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}verify_asan_link_order=0" \
        $MPI "$saeval" run "$c" --no-report --quiet >"$work/stall.log" 2>&1 || { cat "$work/stall.log"; fail "stalled run failed"; }
    for r in 0 1; do
        grep -q "^\[saeval\] rank $r on .*: reading .*in_sample.h5 (rows [0-9]*-[0-9]*) has taken [0-9]* s so far" "$work/stall.log" ||
            { cat "$work/stall.log"; fail "no stall report from rank $r"; }
    done
    sh "$cmp" "$ref" "$out" || fail "results after a stall differ from the reference"
    echo "ok: stalled reads reported by both ranks: $(grep -c 'has taken' "$work/stall.log") lines; results identical"
    ;;
*) fail "unknown case" ;;
esac
echo "faults $case passed"
