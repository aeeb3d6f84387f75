#!/bin/sh
# usage: feat_cmp.sh DIR_A DIR_B
# Both directories must hold the same *.features.h5 and *.json files, byte for byte.
set -u
a=$1 b=$2 bad=0 n=0
la=$(cd "$a" && ls -1 | grep -E '\.(features\.h5|json)$' | sort)
lb=$(cd "$b" && ls -1 | grep -E '\.(features\.h5|json)$' | sort)
if ! printf '%s\n' "$la" | grep -q 'features\.h5$'; then echo "no feature files in $a"; exit 1; fi
[ "$la" = "$lb" ] || { echo "file lists differ between $a and $b"; bad=1; }
for f in $la; do
    [ -f "$b/$f" ] || continue
    n=$((n + 1))
    cmp "$a/$f" "$b/$f" || bad=1
done
echo "compared $n files: $([ $bad = 0 ] && echo identical || echo DIFFERENT)"
exit $bad
