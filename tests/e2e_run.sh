#!/bin/sh
# usage: e2e_run.sh CLEAN_DIR COMMAND [ARGS...]
# Removes CLEAN_DIR (so no stale result can be checked), then runs COMMAND.
set -u
rm -rf "$1"
shift
exec "$@"
