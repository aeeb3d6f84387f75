#!/bin/sh
# usage: feat_rerun.sh SAEVAL CONFIG COMPLETE_DIR WORK_DIR
# WORK_DIR := COMPLETE_DIR without one feature file; a rerun (no --force) must
# recompute that pair only (progress "pairs 1/1") and write the same bytes; a
# second rerun computes nothing ("pairs 0/0").
set -u
sv=$1 cfg=$2 ref=$3 d=$4 f=std_w512__in_sample.features.h5
rm -rf "$d" && cp -r "$ref" "$d" && rm "$d/$f" || exit 1
"$sv" run "$cfg" --output-dir "$d" --no-table > "$d.log1" 2>&1 || { cat "$d.log1"; exit 1; }
grep -q 'pairs 1/1' "$d.log1" || { echo "first rerun did not compute exactly one pair"; cat "$d.log1"; exit 1; }
cmp "$d/$f" "$ref/$f" || { echo "recomputed feature file differs"; exit 1; }
"$sv" run "$cfg" --output-dir "$d" --no-table > "$d.log2" 2>&1 || { cat "$d.log2"; exit 1; }
grep -q 'pairs 0/0' "$d.log2" || { echo "second rerun computed something"; cat "$d.log2"; exit 1; }
echo "rerun ok"
