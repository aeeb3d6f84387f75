#!/bin/sh
# usage: corpus_native_check.sh CASEDIR
# After corpus_run.sh: no malicious pickle of the native corpus ran (a case
# dir holding `pwned` means one did).
found=$(find "$1" -name pwned)
if [ -n "$found" ]; then echo "FAIL: a pickle payload ran: $found"; exit 1; fi
echo "no payload ran ($(ls "$1" | wc -l) cases)"
