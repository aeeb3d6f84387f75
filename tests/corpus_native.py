#!/usr/bin/python3
"""Bad-input corpus cases for the native formats (issue 11), in the layout
tests/corpus_run.sh checks: CASEDIR/<case>/config.json + expect (stderr
fragments; all must appear in the one "saeval: error:" line), exit code 2,
no result file.

usage: corpus_native.py CASEDIR STORE   (STORE: an activation store, d_in 128)

Each case is a valid native SAE (tests/formats_write.py) broken in one way.
The malicious-pickle cases would create CASEDIR/<case>/pwned if anything in
them ran; tests/corpus_native_check.sh verifies afterwards that none did."""
import io, json, os, pickle, shutil, struct, subprocess, sys, zipfile
import numpy as np

casedir, store = sys.argv[1], os.path.abspath(sys.argv[2])
here = os.path.dirname(os.path.abspath(__file__))
shutil.rmtree(casedir, ignore_errors=True)
os.makedirs(casedir)
D, M = 128, 64
rng = np.random.default_rng(11)
n_cases = 0


def weights(ind, d_in=D, d_out=None):
    d_out = d_out or d_in
    for n, shp in {"W_enc": (d_in, M), "b_enc": (M,), "W_dec": (M, d_out), "b_dec": (d_out,), "threshold": (M,),
                   "W_skip": (d_out, d_in), "b_gate": (M,), "r_mag": (M,), "b_mag": (M,)}.items():
        (np.abs(rng.standard_normal(shp)) if n == "threshold" else rng.standard_normal(shp) * 0.1) \
            .astype(np.float32).astype("<f8").tofile(os.path.join(ind, n + ".f64"))


def case(name, meta, rel="sae", expect=(), d_in=D, d_out=None):
    """Writes a good SAE for the case; returns its path for breaking."""
    global n_cases
    cd = os.path.join(casedir, name)
    ind = os.path.join(cd, "in")
    os.makedirs(ind)
    weights(ind, d_in, d_out)
    json.dump(dict(meta, d_in=d_in, d_sae=M, d_out=d_out or d_in), open(os.path.join(ind, "meta.json"), "w"))
    path = os.path.join(cd, rel)
    subprocess.run([sys.executable, os.path.join(here, "formats_write.py"), ind, path], check=True)
    json.dump({"output_dir": "out", "saes": [rel], "datasets": [{"name": "d", "path": store, "role": "in_sample"}]},
              open(os.path.join(cd, "config.json"), "w"))
    with open(os.path.join(cd, "expect"), "w") as f:
        f.write("\n".join(expect) + "\n")
    n_cases += 1
    return path


def rezip(path, change):
    """Rewrites zip `path` with change(name, data) -> data (None drops the entry)."""
    with zipfile.ZipFile(path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for i, data in items:
            data = change(i.filename, data)
            if data is not None:
                z.writestr(i, data)


def npy(a, header=None):
    b = io.BytesIO()
    np.lib.format.write_array(b, a)
    return b.getvalue()


def edit_json(path, fn):
    d = json.load(open(path))
    fn(d)
    json.dump(d, open(path, "w"))


G = {"format": "gemma_scope"}
# ---- Gemma Scope (.npz)
p = case("npz_truncated", G, expect=("params.npz", "not a readable zip archive"))
b = open(p + "/params.npz", "rb").read(); open(p + "/params.npz", "wb").write(b[:len(b) // 2])
p = case("npz_int_dtype", G, expect=("params.npz", "array 'threshold'", "dtype '<i8' is not supported"))
rezip(p + "/params.npz", lambda n, d: npy(np.ones(M, dtype=np.int64)) if n == "threshold.npy" else d)
p = case("npz_fortran", G, expect=("params.npz", "array 'W_enc'", "fortran_order"))
rezip(p + "/params.npz", lambda n, d: npy(np.asfortranarray(rng.standard_normal((D, M)).astype(np.float32))) if n == "W_enc.npy" else d)
p = case("npz_bad_magic", G, expect=("params.npz", "array 'b_dec'", "bad magic"))
rezip(p + "/params.npz", lambda n, d: b"not an array at all" if n == "b_dec.npy" else d)
p = case("npz_missing_threshold", G, expect=("params.npz", "tensor 'threshold': missing"))
rezip(p + "/params.npz", lambda n, d: None if n == "threshold.npy" else d)
p = case("npz_wrong_shape", G, expect=("params.npz", "tensor 'W_dec'", "dimension 0 is 65, expected 64"))
rezip(p + "/params.npz", lambda n, d: npy(rng.standard_normal((M + 1, D)).astype(np.float32)) if n == "W_dec.npy" else d)
p = case("npz_data_short", G, expect=("params.npz", "array 'b_enc'", "(truncated)"))
rezip(p + "/params.npz", lambda n, d: d[:-8] if n == "b_enc.npy" else d)
p = case("npz_scaling_factor", dict(G, scaling_factor=2.0), expect=("params.npz", "scaling_factor", "only 1 is supported"))
case("npz_d_in_mismatch", G, d_in=64, expect=("d_in",))
case("npz_transcoder", G, d_out=96, expect=("npz_transcoder/sae", "/targets: missing", "transcoder (d_out 96)"))
p = case("npz_nan_weight", G, expect=("params.npz", "tensor 'b_enc'", "not finite"))
rezip(p + "/params.npz", lambda n, d: npy(np.full(M, np.nan, dtype=np.float32)) if n == "b_enc.npy" else d)

# ---- OpenAI (.pt): malicious pickles must be refused, not run
O = {"format": "openai", "k": 8}


class Evil:
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (os.system, (self.cmd,))


p = case("pt_os_system", O, rel="3.pt", expect=("3.pt", "disallowed global posix.system at offset 2"))
mark = os.path.join(os.path.dirname(p), "pwned")
rezip(p, lambda n, d: pickle.dumps(Evil("touch " + mark), protocol=2) if n.endswith("data.pkl") else d)
p = case("pt_eval_stack_global", O, rel="3.pt", expect=("3.pt", "disallowed global builtins.eval"))
cmd = f"__import__('os').system('touch {os.path.join(os.path.dirname(p), 'pwned')}')".encode()
rezip(p, lambda n, d: b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93X" + struct.pack("<I", len(cmd)) + cmd + b"\x85R." if n.endswith("data.pkl") else d)
p = case("pt_inst", O, rel="3.pt", expect=("3.pt", "disallowed opcode INST"))
cmd = f"touch {os.path.join(os.path.dirname(p), 'pwned')}".encode()
rezip(p, lambda n, d: b"\x80\x02(X" + struct.pack("<I", len(cmd)) + cmd + b"ios\nsystem\n." if n.endswith("data.pkl") else d)
p = case("pt_truncated", O, rel="3.pt", expect=("3.pt", "not a readable zip archive"))
b = open(p, "rb").read(); open(p, "wb").write(b[:len(b) - 200])
p = case("pt_missing_storage", O, rel="3.pt", expect=("3.pt", "storage entry", "is missing"))
rezip(p, lambda n, d: None if n.endswith("/data/0") else d)
p = case("pt_legacy", O, rel="3.pt", expect=("3.pt", "legacy (pre-1.6)"))
open(p, "wb").write(pickle.dumps({"a": 1}, protocol=2))
p = case("pt_unknown_activation", O, rel="3.pt", expect=("3.pt", "activation: 'TopQ' is not supported"))
rezip(p, lambda n, d: d.replace(b"TopK", b"TopQ") if n.endswith("data.pkl") else d)
p = case("pt_storage_short", O, rel="3.pt", expect=("3.pt", "storage", "holds"))
rezip(p, lambda n, d: d[:-4] if n.endswith("/data/5") else d)

# ---- dictionary_learning (ae.pt + config.json)
DL = {"format": "dictionary_learning", "dict_class": "BatchTopKSAE", "k": 8, "threshold": 0.5}
p = case("dl_threshold_unset", dict(DL, threshold=-1.0), expect=("ae.pt", "tensor 'threshold'", "never set"))
p = case("dl_unknown_class", DL, expect=("config.json", "trainer.dict_class: 'CrossCoder' is not supported"))
edit_json(p + "/config.json", lambda d: d["trainer"].__setitem__("dict_class", "CrossCoder"))
p = case("dl_no_class", DL, expect=("config.json", "trainer.dict_class: missing"))
edit_json(p + "/config.json", lambda d: d["trainer"].pop("dict_class"))
p = case("dl_missing_k", DL, expect=("ae.pt", "tensor 'k'"))
rezip(p + "/ae.pt", lambda n, d: d.replace(b"X\x01\x00\x00\x00k", b"X\x01\x00\x00\x00K") if n.endswith("data.pkl") else d)

# ---- sparsify (cfg.json + sae.safetensors)
S = {"format": "sparsify", "k": 8}
p = case("sparsify_no_d_in", S, expect=("cfg.json", "d_in: missing"))
edit_json(p + "/cfg.json", lambda d: d.pop("d_in"))
case("sparsify_groupmax_k", dict(S, k=7, activation="groupmax"), expect=("cfg.json", "k: 7 does not divide num_latents 64"))
case("sparsify_signed_groupmax", dict(S, signed=True, activation="groupmax"), expect=("cfg.json", "groupmax", "with signed"))
case("sparsify_transcoder", dict(S, transcode=True), expect=("sparsify_transcoder/sae", "/targets: missing", "transcoder (d_out 128)"))
p = case("sparsify_bad_k", dict(S), expect=("cfg.json", "k: 100 outside 1..64"))
edit_json(p + "/cfg.json", lambda d: d.__setitem__("k", 100))

# ---- Llama Scope (hyperparams.json + checkpoints/final.safetensors)
L = {"format": "llama_scope", "threshold": 0.5, "norm_in": 10.0, "norm_out": 10.0}
p = case("llama_token_wise", L, expect=("hyperparams.json", "norm_activation: 'token-wise' is not supported"))
edit_json(p + "/hyperparams.json", lambda d: d.__setitem__("norm_activation", "token-wise"))
p = case("llama_not_json", L, expect=("hyperparams.json", "not a JSON object"))
open(p + "/hyperparams.json", "w").write("{d_model: 128")
p = case("llama_no_norms", L, expect=("hyperparams.json", "dataset_average_activation_norm"))
edit_json(p + "/hyperparams.json", lambda d: d.pop("dataset_average_activation_norm"))

print(f"corpus_native: {n_cases} cases in {casedir}")
