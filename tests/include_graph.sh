#!/bin/sh
# usage: include_graph.sh ROOT   (ROOT holds src/ and include/saeval/)
#        include_graph.sh --selftest
# Module graph of saeval: foo.c, foo.h and foo_impl.h form module foo (also
# under src/app/); an edge A -> B for every `#include "..."` of a B file in an
# A file. Fails, printing the modules on a cycle, when the graph has one:
# lower layers must never include upper ones.
set -u
if [ "${1:-}" = "--selftest" ]; then
    # A planted cycle (a -> b -> c -> a) must be found; its removal must pass.
    t=$(mktemp -d) || exit 1
    trap 'rm -rf "$t"' EXIT
    mkdir -p "$t/src" "$t/include/saeval"
    printf '#include "saeval/a.h"\n#include "saeval/b.h"\n' > "$t/src/a.c"
    printf '#include "saeval/c.h"\n' > "$t/include/saeval/b.h"
    printf '#include "saeval/error.h"\n' > "$t/include/saeval/a.h"
    printf '#include "c_impl.h"\n' > "$t/src/c.c"
    printf '#include "saeval/a.h"\n' > "$t/src/c_impl.h"
    if sh "$0" "$t" > "$t/out" 2>&1; then echo "FAIL: planted cycle a -> b -> c -> a not found"; cat "$t/out"; exit 1; fi
    for m in a b c; do
        grep -qw "$m" "$t/out" || { echo "FAIL: cycle report does not name $m:"; cat "$t/out"; exit 1; }
    done
    printf '#include "saeval/error.h"\n' > "$t/src/c_impl.h"
    if ! sh "$0" "$t" > "$t/out" 2>&1; then echo "FAIL: acyclic graph reported as cyclic:"; cat "$t/out"; exit 1; fi
    echo "selftest ok"
    exit 0
fi
root=${1:?usage: include_graph.sh ROOT}
mod() { b=${1##*/}; b=${b%.c}; b=${b%.h}; echo "${b%_impl}"; }
edges=$(mktemp) || exit 1
trap 'rm -f "$edges" "$edges.out"' EXIT
n=0
for f in "$root"/src/*.c "$root"/src/*.h "$root"/src/*/*.c "$root"/src/*/*.h "$root"/include/saeval/*.h; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    a=$(mod "$f")
    echo "$a $a" >> "$edges"
    sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" | while read -r inc; do
        b=$(mod "$inc")
        [ "$a" = "$b" ] || echo "$a $b" >> "$edges"
    done
done
[ "$n" -gt 0 ] || { echo "no sources under $root"; exit 1; }
# tsort reports every loop it breaks on stderr ("input contains a loop").
if tsort "$edges" > /dev/null 2> "$edges.out"; then
    echo "include graph of $n files: no cycle ($(sort -u "$edges" | wc -l) edges)"
    exit 0
fi
echo "include graph has a cycle (modules on it, as tsort lists them):"
sed "s|^tsort: .*: input contains a loop:|loop:|" "$edges.out"
exit 1
