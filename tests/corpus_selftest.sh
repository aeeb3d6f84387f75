#!/bin/sh
# usage: corpus_selftest.sh WORKDIR CORPUS_RUN_SH
# Shows that every check of corpus_run.sh can fail: fake saeval programs that
# break one promise each (exit code, one line, fragment, time, result file)
# must be reported FAIL with the right reason, and a fake that keeps every
# promise must PASS. Runs without MPI (a fake launcher drops "-np N").
set -u
work=$1 runner=$2
rm -rf "$work"
mkdir -p "$work/cases/c1"
printf '{}\n' >"$work/cases/c1/config.json"
printf 'cfg.json\nd_in\n' >"$work/cases/c1/expect"

cat >"$work/launch" <<'EOF'
#!/bin/sh
shift 2
exec "$@"
EOF
# fake saeval: $1 = run, $2 = CASE/config.json; behaviour from $FAKE
cat >"$work/fake" <<'EOF'
#!/bin/sh
[ "$1" = --help ] && exit 0   # the runner's trivial launch
d=$(dirname "$2")
good="saeval: error: $d/sae/cfg.json: d_in: missing (required)"
case $FAKE in
    good)     echo "$good" >&2; echo "unrelated mpirun noise" >&2; exit 2 ;;
    exit0)    echo "$good" >&2; exit 0 ;;
    exit1)    echo "$good" >&2; exit 1 ;;
    twice)    echo "$good" >&2; echo "$good" >&2; exit 2 ;;
    summary)  echo "$good" >&2; echo "saeval: some pairs failed" >&2; exit 2 ;;
    noline)   echo "error: $d/sae/cfg.json: d_in: missing" >&2; exit 2 ;;
    nofield)  echo "saeval: error: $d/sae/cfg.json: something is wrong" >&2; exit 2 ;;
    slow)     sleep 4; echo "$good" >&2; exit 2 ;;
    hang)     exec sleep 1000 ;;
    result)   mkdir -p "$d/out"; echo '{}' >"$d/out/sae__ds.json"; echo "$good" >&2; exit 2 ;;
esac
exit 9
EOF
chmod +x "$work/launch" "$work/fake"

bad=0
# expect FAKE VERDICT REASON [LIMIT_MS]: LIMIT_MS fixes the runner's time
# bound (CORPUS_LIMIT_MS); without it the bound is computed from a trivial
# launch, which a loaded machine can stretch past the slow fake's 4 s.
expect() {
    env FAKE=$1 CORPUS_HANG_SLACK_MS=1500 ${4:+CORPUS_LIMIT_MS=$4} MPIEXEC="$work/launch" CORPUS_JOBS=1 \
        sh "$runner" "$work/cases" "$work/fake" >"$work/log_$1.txt" 2>&1
    rc=$?
    v=$(grep -E '^(PASS|FAIL) c1' "$work/log_$1.txt")
    case "$v" in
        "$2"*"$3"*) echo "ok   $1: $v" ;;
        *) echo "FAIL $1: expected $2 ... $3, got: $v"; bad=1 ;;
    esac
    if [ "$2" = PASS ] && [ $rc -ne 0 ]; then echo "FAIL $1: runner exit $rc on a pass"; bad=1; fi
    if [ "$2" = FAIL ] && [ $rc -eq 0 ]; then echo "FAIL $1: runner exit 0 on a failure"; bad=1; fi
}
expect good PASS ""
expect exit0 FAIL "exit code 0, expected 2"
expect exit1 FAIL "exit code 1, expected 2"
expect twice FAIL "2 stderr lines start with 'saeval:'"
expect summary FAIL "2 stderr lines start with 'saeval:'"
expect noline FAIL "no line starting with 'saeval: error: '"
expect nofield FAIL 'message lacks "d_in"'
expect slow FAIL "(limit 2000)" 2000
expect hang FAIL "exit code 124"
expect result FAIL "result file written"
[ $bad = 0 ] && echo "corpus_run.sh self-test ok"
exit $bad
