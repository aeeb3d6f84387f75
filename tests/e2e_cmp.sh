#!/bin/sh
# usage: e2e_cmp.sh DIR_A DIR_B
# Both directories must hold the same *.json, *.csv and *.h5 files, byte for byte.
# run.log is not compared: it records ranks, threads and times by design.
set -u
a=$1 b=$2 bad=0
list() { (cd "$1" && ls -1 | grep -E '\.(json|csv|h5)$' | sort); }
la=$(list "$a") || la=
lb=$(list "$b") || lb=
if [ -z "$la" ]; then echo "no result files in $a"; exit 1; fi
if [ "$la" != "$lb" ]; then
    echo "file lists differ between $a and $b:"
    echo "$la" > "$b.cmp_a.txt"; echo "$lb" > "$b.cmp_b.txt"
    diff "$b.cmp_a.txt" "$b.cmp_b.txt"
    bad=1
fi
n=0
for f in $la; do
    [ -f "$b/$f" ] || continue
    n=$((n + 1))
    if ! cmp "$a/$f" "$b/$f"; then bad=1; diff "$a/$f" "$b/$f" | head -20; fi
done
echo "compared $n files: $([ $bad = 0 ] && echo identical || echo DIFFERENT)"
exit $bad
