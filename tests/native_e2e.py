#!/usr/bin/python3
"""End-to-end check of the native format rows (needs the format table).

usage: native_e2e.py SAEVAL WORKDIR [MPIEXEC...]

Writes SAEs in each native format (tests/formats_write.py) next to SAELens
twins holding the same float32 weights and the same semantics, evaluates all
of them with `saeval run` on a synthetic store (`saeval synth`) on 1 and on 2
ranks, and requires for every native SAE: its metrics and feature_metrics are
byte-identical to its twin's (the SAELens path is checked against the double
reference by the e2e suite), the 1- and 2-rank result files are identical,
and `saeval info` describes it."""
import json, os, shutil, subprocess, sys
import numpy as np

saeval, work = sys.argv[1], sys.argv[2]
mpi = sys.argv[3:] or ["mpirun", "--oversubscribe", "--allow-run-as-root"]
here = os.path.dirname(os.path.abspath(__file__))
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
subprocess.run([saeval, "synth", os.path.join(work, "synth")], check=True, stdout=subprocess.DEVNULL, env=env)
D, M = 128, 256
rng = np.random.default_rng(3)

# name: (native meta, path inside the case dir, SAELens twin meta)
CASES = {
    "gemma": ({"format": "gemma_scope"}, "sae", {"architecture": "jumprelu", "apply_b_dec_to_input": False}),
    "sparsify": ({"format": "sparsify", "k": 16}, "sae", {"architecture": "topk", "k": 16}),
    "openai_topk": ({"format": "openai", "k": 16}, "6.pt", {"architecture": "topk", "k": 16, "normalize_activations": "layer_norm"}),
    "openai_relu": ({"format": "openai", "activation": "ReLU"}, "7.pt", {"architecture": "standard"}),
    "dl_jumprelu": ({"format": "dictionary_learning", "dict_class": "JumpReluAutoEncoder"}, "sae",
                    {"architecture": "jumprelu", "apply_b_dec_to_input": False}),
    "dl_topk": ({"format": "dictionary_learning", "dict_class": "AutoEncoderTopK", "k": 16}, "sae", {"architecture": "topk", "k": 16}),
    "dl_batchtopk": ({"format": "dictionary_learning", "dict_class": "BatchTopKSAE", "k": 16, "threshold": 0.5}, "sae",
                     {"architecture": "jumprelu", "threshold_scalar": 0.5}),
    "dl_matryoshka": ({"format": "dictionary_learning", "dict_class": "MatryoshkaBatchTopKSAE", "k": 16, "threshold": 0.5,
                       "group_sizes": [64, 192]}, "sae", {"architecture": "jumprelu", "threshold_scalar": 0.5}),
    "dl_gated": ({"format": "dictionary_learning", "dict_class": "GatedAutoEncoder"}, "sae", {"architecture": "gated"}),
}
saes = []
for name, (meta, rel, twin) in CASES.items():
    ind = os.path.join(work, name, "in")
    os.makedirs(ind)
    for n, shp in {"W_enc": (D, M), "b_enc": (M,), "W_dec": (M, D), "b_dec": (D,), "threshold": (M,),
                   "b_gate": (M,), "r_mag": (M,), "b_mag": (M,)}.items():
        a = rng.standard_normal(shp) * (0.1 if n in ("W_enc", "W_dec") else 0.3)
        if n == "threshold":
            a = np.abs(a)
        a.astype(np.float32).astype("<f8").tofile(os.path.join(ind, n + ".f64"))
    for fmt_meta, dst in ((meta, os.path.join(work, name, rel)), (dict(twin, format="saelens"), os.path.join(work, name, "twin"))):
        json.dump(dict(fmt_meta, d_in=D, d_sae=M), open(os.path.join(ind, "meta.json"), "w"))
        subprocess.run([sys.executable, os.path.join(here, "formats_write.py"), ind, dst], check=True)
    saes += [os.path.join(name, rel), os.path.join(name, "twin")]
    info = subprocess.run([saeval, "info", os.path.join(work, name, rel)], capture_output=True, text=True, env=env)
    if info.returncode != 0 or meta["format"] not in info.stdout:
        sys.exit(f"native_e2e: saeval info {name}: exit {info.returncode}: {info.stdout}{info.stderr}")

store = os.path.join(work, "synth", "stores", "oos_task.h5")  # the smallest synth store
cfg = {"output_dir": "results", "saes": saes, "datasets": [{"name": "in", "path": store, "role": "in_sample"}],
       "geometry": True}
results = {}
for np_ in (1, 2):
    c = dict(cfg, output_dir=f"results_np{np_}")
    p = os.path.join(work, f"config_np{np_}.json")
    json.dump(c, open(p, "w"))
    r = subprocess.run(mpi + ["-np", str(np_), saeval, "run", p, "--quiet", "--no-table"], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"native_e2e: saeval run on {np_} rank(s): exit {r.returncode}\n{r.stdout}{r.stderr}")
    results[np_] = os.path.join(work, c["output_dir"])

fails = 0
files = sorted(f for f in os.listdir(results[1]) if f.endswith(".json") and "__" in f)
for f in files:
    a, b = open(os.path.join(results[1], f), "rb").read(), open(os.path.join(results[2], f), "rb").read()
    if a != b:
        print(f"FAIL {f}: 1-rank and 2-rank files differ"); fails += 1
by_id = {json.load(open(os.path.join(results[1], f)))["sae_id"]: json.load(open(os.path.join(results[1], f))) for f in files}
for name, (meta, rel, twin) in CASES.items():
    # sae_id: the SAE's directory or file name, or a longer path suffix when names collide
    nat = [v for k, v in by_id.items() if k in (rel, f"{name}/{rel}", f"{name}-{rel}")]
    tw = [v for k, v in by_id.items() if k in (f"{name}/twin", f"{name}-twin")]
    if len(nat) != 1 or len(tw) != 1:
        print(f"FAIL {name}: results not found ({sorted(by_id)})"); fails += 1; continue
    bad = [part for part in ("metrics", "feature_metrics")
           if json.dumps(nat[0][part], sort_keys=True) != json.dumps(tw[0][part], sort_keys=True)]
    for part in bad:
        print(f"FAIL {name}: {part} differ from the SAELens twin's")
    fails += len(bad)
    if not bad:
        print(f"ok   {name}: {meta['format']} == SAELens twin (l0 {nat[0]['metrics']['sparsity']['l0']:.6g})")
print(f"native_e2e: {len(CASES)} native SAEs, {len(files)} result files, 1 vs 2 ranks, {fails} failures")
sys.exit(1 if fails else 0)
