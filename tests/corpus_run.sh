#!/bin/sh
# usage: corpus_run.sh DIR SAEVAL [CASE...]
# Runs saeval on 2 ranks on every malformed-input case under DIR (made by
# `test_corpus gen DIR`; default: every subdirectory) and checks the README's
# promise for bad input (exit code 2):
#   - exit code 2
#   - exactly one stderr line starting with "saeval:", and it starts with
#     "saeval: error: " (lines not starting with "saeval:", e.g. mpirun's
#     banner about a rank's non-zero exit, are ignored)
#   - that line contains every fragment listed in CASE/expect
#   - the whole job (every rank, mpirun included) ends within the hang bound:
#     CORPUS_HANG_FACTOR (20) x a trivial 2-rank launch timed here first, plus
#     CORPUS_HANG_SLACK_MS (10000). Normal cases take 1-4 s; the bound is a
#     hang check, not a speed check (speed: `saeval bench`), so it scales with
#     the machine's load instead of failing on a busy machine.
#   - no pair result file (*__*.json) in the output dir
# Prints PASS/FAIL per case and "N passed, M failed"; exits 1 on any failure.
# Env: CORPUS_NP ranks (2), CORPUS_LIMIT_MS (fixed bound, overrides the
# relative one), CORPUS_JOBS cases run at
# once (4; Open MPI spends 1-2 s idle in mpirun when a rank exits non-zero),
# MPIEXEC (default "mpirun --oversubscribe --allow-run-as-root").
set -u
dir=$1 saeval=$2
shift 2
np=${CORPUS_NP:-2}
jobs=${CORPUS_JOBS:-4}
mpiexec=${MPIEXEC:-mpirun --oversubscribe --allow-run-as-root}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

now_ms() { date +%s%3N; }
if [ -n "${CORPUS_LIMIT_MS:-}" ]; then
    limit_ms=$CORPUS_LIMIT_MS
    echo "hang bound: $limit_ms ms (CORPUS_LIMIT_MS)"
else
    # A trivial launch of the same program on the same ranks, timed now.
    t0=$(now_ms)
    # shellcheck disable=SC2086
    $mpiexec -np "$np" "$saeval" --help >/dev/null 2>&1
    t1=$(now_ms)
    trivial=$((t1 - t0))
    limit_ms=$(( ${CORPUS_HANG_FACTOR:-20} * trivial + ${CORPUS_HANG_SLACK_MS:-10000} ))
    echo "hang bound: $limit_ms ms = ${CORPUS_HANG_FACTOR:-20} x trivial $np-rank launch ($trivial ms) + ${CORPUS_HANG_SLACK_MS:-10000} ms"
fi
timeout_s=$(( limit_ms / 1000 + 5 ))

if [ $# -gt 0 ]; then cases="$*"; else cases=$(cd "$dir" && ls -d */ | tr -d /); fi
[ -n "$cases" ] || { echo "FAIL: no cases under $dir"; exit 1; }

# run_case NAME: writes NAME/verdict (first line PASS/FAIL ..., then details).
run_case() {
    c=$1
    cd_="$dir/$c"
    v="$cd_/verdict"
    if [ ! -f "$cd_/config.json" ] || [ ! -f "$cd_/expect" ]; then
        echo "FAIL $c: no config.json or expect" >"$v"; return
    fi
    out="$cd_/out"
    rm -rf "$out"
    t0=$(now_ms)
    # shellcheck disable=SC2086
    timeout "$timeout_s" $mpiexec -np "$np" "$saeval" run "$cd_/config.json" --quiet >"$cd_/stdout.txt" 2>"$cd_/stderr.txt"
    rc=$?
    t1=$(now_ms)
    ms=$((t1 - t0))
    why=""
    [ "$rc" -eq 2 ] || why="$why; exit code $rc, expected 2"
    grep '^saeval:' "$cd_/stderr.txt" >"$cd_/saeval_lines.txt"
    n=$(wc -l <"$cd_/saeval_lines.txt")
    [ "$n" -eq 1 ] || why="$why; $n stderr lines start with 'saeval:', expected 1"
    line=$(grep '^saeval: error: ' "$cd_/stderr.txt" | head -n 1)
    [ -n "$line" ] || why="$why; no line starting with 'saeval: error: '"
    while IFS= read -r frag; do
        [ -n "$frag" ] || continue
        case "$line" in
            *"$frag"*) ;;
            *) why="$why; message lacks \"$frag\"" ;;
        esac
    done <"$cd_/expect"
    [ "$ms" -lt "$limit_ms" ] || why="$why; took $ms ms (limit $limit_ms)"
    if ls "$out"/*__*.json >/dev/null 2>&1; then why="$why; result file written: $(cd "$out" && ls ./*__*.json | tr '\n' ' ')"; fi
    if [ -z "$why" ]; then
        echo "PASS $c (${ms} ms): $line" >"$v"
    else
        { echo "FAIL $c (${ms} ms)${why}"; sed 's/^/    stderr| /' "$cd_/stderr.txt" | grep -v -- '-----' | head -n 12; } >"$v"
    fi
}

k=0
for c in $cases; do
    rm -f "$dir/$c/verdict"
    run_case "$c" &
    k=$((k + 1))
    if [ "$k" -ge "$jobs" ]; then wait; k=0; fi
done
wait

pass=0 fail=0
for c in $cases; do
    if [ -f "$dir/$c/verdict" ]; then cat "$dir/$c/verdict"; else echo "FAIL $c: no verdict"; fi
    case "$(head -n 1 "$dir/$c/verdict" 2>/dev/null)" in
        PASS*) pass=$((pass + 1)) ;;
        *) fail=$((fail + 1)) ;;
    esac
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
