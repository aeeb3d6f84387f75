#!/usr/bin/python3
"""Each native format through the run machinery (issue 11): `saeval info`,
glob expansion, input_hash and resume.

usage: native_ident.py SAEVAL WORKDIR [MPIEXEC...]

Writes one SAE per native format (tests/formats_write.py, from random
weights) into WORKDIR/saes/, names them all with the single pattern
"saes/*" and evaluates them on a `saeval synth` store. Requires: `saeval
info` describes each with its format; the glob finds every one (one result
file per SAE); a rerun computes nothing; then, for every file `saeval info`
lists for an SAE (the files its format reads), touching that file (a new
mtime; for the JSON files, a byte appended as well) makes the next rerun
compute exactly that SAE's pair and nothing else, with the same metrics as
before (the weights are unchanged)."""
import json, os, re, shutil, subprocess, sys, time
import numpy as np

saeval, work = sys.argv[1], sys.argv[2]
mpi = sys.argv[3:] or ["mpirun", "--oversubscribe", "--allow-run-as-root"]
here = os.path.dirname(os.path.abspath(__file__))
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
subprocess.run([saeval, "synth", os.path.join(work, "synth")], check=True, stdout=subprocess.DEVNULL, env=env)
D, M = 128, 256
rng = np.random.default_rng(11)

# name in saes/ (a directory, or OpenAI's file): native meta
SAES = {
    "gemma": {"format": "gemma_scope"},
    "llama": {"format": "llama_scope", "threshold": 0.2, "norm_in": 9.0, "norm_out": 11.0},
    "sparsify": {"format": "sparsify", "k": 16},
    "sparsify_groupmax": {"format": "sparsify", "k": 16, "activation": "groupmax"},
    "sparsify_signed": {"format": "sparsify", "k": 16, "signed": True},
    "6.pt": {"format": "openai", "k": 16},
    "dl_topk": {"format": "dictionary_learning", "dict_class": "AutoEncoderTopK", "k": 16},
}
ind = os.path.join(work, "in")
os.makedirs(ind)
for n, shp in {"W_enc": (D, M), "b_enc": (M,), "W_dec": (M, D), "b_dec": (D,), "threshold": (M,)}.items():
    a = rng.standard_normal(shp) * (0.1 if n in ("W_enc", "W_dec") else 0.3)
    if n == "threshold":
        a = np.abs(a)
    a.astype(np.float32).astype("<f8").tofile(os.path.join(ind, n + ".f64"))
os.makedirs(os.path.join(work, "saes"))
fails = 0
files = {}
for name, meta in SAES.items():
    json.dump(dict(meta, d_in=D, d_sae=M), open(os.path.join(ind, "meta.json"), "w"))
    path = os.path.join(work, "saes", name)
    subprocess.run([sys.executable, os.path.join(here, "formats_write.py"), ind, path], check=True)
    info = subprocess.run([saeval, "info", path], capture_output=True, text=True, env=env)
    if info.returncode != 0 or meta["format"] not in info.stdout:
        print(f"FAIL {name}: saeval info: exit {info.returncode}: {info.stdout}{info.stderr}"); fails += 1
    files[name] = re.findall(r"^  file +(.+)$", info.stdout, re.M)
    if not files[name]:
        print(f"FAIL {name}: saeval info lists no file"); fails += 1

store = os.path.join(work, "synth", "stores", "oos_task.h5")
cfg = os.path.join(work, "config.json")
json.dump({"output_dir": os.path.join(work, "results"), "saes": [os.path.join(work, "saes", "*")],
           "datasets": [{"name": "in", "path": store, "role": "in_sample"}], "geometry": False}, open(cfg, "w"))


def run():
    """(pairs to compute, already complete) of one 2-rank run."""
    r = subprocess.run(mpi + ["-np", "2", saeval, "run", cfg, "--no-table"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"native_ident: saeval run: exit {r.returncode}\n{r.stdout}{r.stderr}")
    m = re.search(r"(\d+) pairs, (\d+) to compute, (\d+) already complete", r.stdout + r.stderr)
    if not m:
        sys.exit(f"native_ident: no plan line in\n{r.stdout}{r.stderr}")
    return int(m.group(2)), int(m.group(3))


def metrics():
    out = {}
    for f in os.listdir(os.path.join(work, "results")):
        if f.endswith(".json") and "__" in f:
            j = json.load(open(os.path.join(work, "results", f)))
            out[j["sae_id"]] = (j["input_hash"], json.dumps(j["metrics"], sort_keys=True))
    return out


todo, done = run()
first = metrics()
if todo != len(SAES) or done != 0 or len(first) != len(SAES):
    print(f"FAIL glob: {todo} computed, {done} complete, {len(first)} result files for {len(SAES)} SAEs"); fails += 1
todo, done = run()
if todo != 0 or done != len(SAES):
    print(f"FAIL resume: {todo} to compute, {done} complete"); fails += 1
n_files = 0
for name in SAES:
    for f in files[name]:
        st = os.stat(f)
        if f.endswith(".json"):
            with open(f, "a") as fp:
                fp.write("\n")
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        todo, done = run()
        now = metrics()
        changed = [k for k in now if now[k][0] != first[k][0]]
        if todo != 1 or done != len(SAES) - 1 or len(changed) != 1 or now[changed[0]][1] != first[changed[0]][1]:
            print(f"FAIL input_hash {name}: {os.path.relpath(f, work)} touched: {todo} computed, {done} complete, "
                  f"hash changed for {changed}"); fails += 1
        else:
            print(f"ok   {name}: {os.path.relpath(f, work)} touched -> only {changed[0]} recomputed, same metrics")
        first = now
        n_files += 1
print(f"native_ident: {len(SAES)} native SAEs, {n_files} files touched, {fails} failures")
sys.exit(1 if fails else 0)
