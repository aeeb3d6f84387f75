#!/bin/sh
# usage: multinode.sh SAEVAL WORKDIR CMP_SH [NODES]
# A real multi-node run on one machine: NODES (2 or 3) network namespaces,
# each with its own hostname (a UTS namespace) and one veth link into a
# bridge, like hosts on a switch. Open MPI starts its daemons through an rsh
# agent that is `ip netns exec NODE ...` (no ssh); ranks talk TCP over the
# veth links only (btl tcp,self: no shared memory between "nodes"); every node
# writes into one shared output directory, as on a cluster file system.
# Checks:
#   1. the synthetic sweep run on NODES x 2 ranks gives result files
#      byte-identical to a 1-rank run on the host;
#   2. a rank killed with SIGKILL on the last node ends the job on every node
#      within 30 s (mpirun exits non-zero, no saeval process is left in any
#      namespace) and leaves no partial result file; a rerun completes and is
#      again byte-identical.
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2.
set -u
saeval=$(readlink -f "$1") work=$2 cmp=$3 nodes=${4:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tag=$$
sub=$((tag % 200 + 20))
net=10.213.$sub
br=svb$tag
fail() { echo "FAIL: $*"; exit 1; }

cleanup() {
    for i in $(seq 1 "$nodes"); do
        ns=svn$tag-$i
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    ip link del "$br" 2>/dev/null
    true
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || fail "needs root for network namespaces"
rm -rf "$work" && mkdir -p "$work" || fail "cannot create $work"

ip link add "$br" type bridge || fail "cannot create bridge $br"
ip addr add "$net.254/24" dev "$br" && ip link set "$br" up || fail "bridge setup"
hosts=""
: >"$work/nodes.map"
for i in $(seq 1 "$nodes"); do
    ns=svn$tag-$i
    ip netns add "$ns" || fail "ip netns add $ns"
    ip link add "sv$tag-$i" type veth peer name eth0 netns "$ns" || fail "veth for $ns"
    ip link set "sv$tag-$i" master "$br" up || fail "veth master"
    ip netns exec "$ns" ip addr add "$net.$i/24" dev eth0 || fail "addr in $ns"
    ip netns exec "$ns" ip link set eth0 up || fail "eth0 up in $ns"
    ip netns exec "$ns" ip link set lo up || fail "lo up in $ns"
    echo "$net.$i $ns node$i" >>"$work/nodes.map"
    hosts="$hosts${hosts:+,}$net.$i:2"
done

# The rsh agent: Open MPI calls it as `agent [opts] HOST COMMAND...`.
cat >"$work/netns_rsh" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
line=\$(grep "^\$host " "$work/nodes.map") || { echo "netns_rsh: unknown host \$host" >&2; exit 255; }
set -- \$line "\$@"
ip=\$1 ns=\$2 name=\$3; shift 3
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$name; \$*"
EOF
chmod +x "$work/netns_rsh"

mpi_multi() {
    mpirun --oversubscribe -np $((2 * nodes)) --host "$hosts" \
        --mca plm_rsh_agent "$work/netns_rsh" --mca plm_rsh_no_tree_spawn 1 \
        --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" \
        --mca oob_tcp_if_include "$net.0/24" "$@"
}

"$saeval" synth "$work/sweep" --seed 3 >"$work/synth.log" 2>&1 || fail "synth"
cfg=$work/sweep/config.json
mkcfg() { # mkcfg OUT_DIR -> config path with that output_dir
    python3 - "$cfg" "$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["output_dir"] = sys.argv[2]
import os
p = os.path.join(os.path.dirname(sys.argv[1]), os.path.basename(sys.argv[2]) + ".json"); json.dump(c, open(p, "w"), indent=1); print(p)
PY
}
c1=$(mkcfg "$work/out1") && cm=$(mkcfg "$work/outm") && ck=$(mkcfg "$work/outk") || fail "configs"

mpirun --oversubscribe -np 1 "$saeval" run "$c1" --no-report --quiet >"$work/one.log" 2>&1 || { cat "$work/one.log"; fail "1-rank run"; }

# 1. Multi-node run; mpirun's map must put 2 ranks on every node.
mpi_multi --display-map "$saeval" run "$cm" --no-report >"$work/multi.log" 2>&1 || { tail -30 "$work/multi.log"; fail "multi-node run"; }
for i in $(seq 1 "$nodes"); do
    grep -q "Data for node: $net.$i[[:space:]].*Num procs: 2" "$work/multi.log" ||
        { grep -A2 "Data for node" "$work/multi.log"; fail "mpirun's map has no 2 ranks on node$i ($net.$i)"; }
done
sh "$cmp" "$work/out1" "$work/outm" || fail "multi-node results differ from the 1-rank run"
echo "ok: $nodes nodes x 2 ranks, TCP only, byte-identical to 1 rank"

# 2. SIGKILL one rank on the last node in the middle of a run.
ns=svn$tag-$nodes
(mpi_multi "$saeval" run "$ck" --no-report >"$work/kill.log" 2>&1; echo $? >"$work/kill.rc") &
victim=""
for _ in $(seq 1 300); do
    victim=$(for p in $(ip netns pids "$ns" 2>/dev/null); do
                 [ "$(readlink /proc/"$p"/exe 2>/dev/null)" = "$saeval" ] && echo "$p"
             done | head -n 1)
    [ -n "$victim" ] && break
    sleep 0.1
done
[ -n "$victim" ] || fail "no saeval rank appeared on node$nodes"
sleep 1
[ ! -f "$work/kill.rc" ] || fail "the run ended before a rank could be killed"
kill -9 "$victim"
t0=$(date +%s)
while [ ! -f "$work/kill.rc" ]; do
    [ $(( $(date +%s) - t0 )) -le 30 ] || fail "job still running 30 s after a rank was killed"
    sleep 0.2
done
t1=$(date +%s)
rc=$(cat "$work/kill.rc")
[ "$rc" != 0 ] || fail "mpirun exited 0 after a rank was killed"
left=""
for i in $(seq 1 "$nodes"); do
    for p in $(ip netns pids "svn$tag-$i" 2>/dev/null); do
        case "$(readlink /proc/"$p"/exe 2>/dev/null)" in "$saeval"|*/orted) left="$left $p" ;; esac
    done
done
[ -z "$left" ] || fail "processes left after the kill:$left"
if ls "$work/outk"/*.tmp* >/dev/null 2>&1; then fail "partial file left: $(ls "$work/outk"/*.tmp*)"; fi
for f in "$work/outk"/*__*.json; do
    [ -f "$f" ] || continue
    python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$f" || fail "truncated result $f"
done
echo "ok: rank $victim on node$nodes killed; job ended on every node in $((t1 - t0)) s (mpirun exit $rc); no partial file"
mpi_multi "$saeval" run "$ck" --no-report >"$work/rerun.log" 2>&1 || { tail -30 "$work/rerun.log"; fail "rerun after the kill"; }
sh "$cmp" "$work/out1" "$work/outk" || fail "rerun after the kill differs from the 1-rank run"
echo "ok: rerun resumed and is byte-identical"
echo "multinode test passed"
