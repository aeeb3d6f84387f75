#!/bin/sh
# usage: feat_expect_error.sh CODE FRAGMENT COMMAND [ARGS...]
# Runs COMMAND and checks its exit code is CODE and its stderr holds FRAGMENT.
set -u
code=$1 frag=$2
shift 2
err=$("$@" 2>&1 >/dev/null)
rc=$?
echo "exit code $rc; stderr: $err"
[ "$rc" -eq "$code" ] || { echo "FAIL: expected exit code $code"; exit 1; }
printf '%s' "$err" | grep -qF -- "$frag" || { echo "FAIL: stderr does not mention \"$frag\""; exit 1; }
echo ok
