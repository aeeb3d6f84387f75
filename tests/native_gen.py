#!/usr/bin/python3
"""Native-format SAEs for tests/test_native.c.

usage: native_gen.py OUTDIR

For each case: random canonical weights (float32-representable doubles) in
OUTDIR/<case>/in/*.f64 + meta.json, converted by tests/formats_write.py into
the project's own layout at OUTDIR/<case>/sae (a directory, or a .pt file for
OpenAI). OUTDIR/cases.txt: case, path, then key=value expectations the test
checks; OUTDIR/bad.txt: path<TAB>expected message part."""
import json, os, shutil, subprocess, sys
import numpy as np

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
os.makedirs(out, exist_ok=True)
cases = open(os.path.join(out, "cases.txt"), "w")
bad = open(os.path.join(out, "bad.txt"), "w")


def make(name, meta, d_in=6, d_sae=12, d_out=None, sae_name="sae", expect=""):
    d_out = d_out or d_in
    ind = os.path.join(out, name, "in")
    os.makedirs(ind, exist_ok=True)
    shapes = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_out), "b_dec": (d_out,),
              "threshold": (d_sae,), "W_skip": (d_out, d_in), "b_gate": (d_sae,), "r_mag": (d_sae,), "b_mag": (d_sae,)}
    for n, shp in shapes.items():
        a = rng.standard_normal(shp).astype(np.float32).astype(np.float64)
        if n == "threshold":
            a = np.abs(a)
        a.astype("<f8").tofile(os.path.join(ind, n + ".f64"))
    meta = dict(meta, d_in=d_in, d_sae=d_sae, d_out=d_out)
    json.dump(meta, open(os.path.join(ind, "meta.json"), "w"))
    dst = os.path.join(out, name, sae_name)
    subprocess.run([sys.executable, os.path.join(here, "formats_write.py"), ind, dst], check=True)
    if not name.startswith("bad_"):
        cases.write(f"{name} {dst} d_in={d_in} d_sae={d_sae} d_out={d_out} {expect}\n")
    return dst


make("gemma", {"format": "gemma_scope"}, expect="format=gemma_scope act=jumprelu apply_b_dec=0 map=gemma")
make("gemma_lower", {"format": "gemma_scope", "lowercase": True, "compressed": True, "scaling_factor": 1.0},
     expect="format=gemma_scope act=jumprelu apply_b_dec=0 map=gemma")
make("gemma_transcoder", {"format": "gemma_scope"}, d_out=4, expect="format=gemma_scope act=jumprelu transcoder=1 map=gemma")
make("llama", {"format": "llama_scope", "threshold": 0.7, "norm_in": 9.0, "norm_out": 11.0},
     expect="format=llama_scope act=jumprelu apply_b_dec=0 map=llama thr=0.7 norm_in=9 norm_out=11")
make("llama_topk", {"format": "llama_scope", "act_fn": "topk", "k": 3, "threshold": 0, "norm_in": 5.0, "norm_out": 5.0},
     expect="format=llama_scope act=topk k=3 apply_b_dec=0 map=llama thr=0 norm_in=5 norm_out=5")
make("sparsify", {"format": "sparsify", "k": 3}, expect="format=sparsify act=topk k=3 apply_b_dec=1 map=plain")
make("sparsify_signed", {"format": "sparsify", "k": 3, "signed": True}, expect="format=sparsify act=signed_topk k=3 map=plain")
make("sparsify_groupmax", {"format": "sparsify", "k": 4, "activation": "groupmax"}, expect="format=sparsify act=groupmax k=4 map=plain")
make("sparsify_skip_tc", {"format": "sparsify", "k": 3, "skip": True, "transcode": True},
     expect="format=sparsify act=topk k=3 apply_b_dec=0 transcoder=1 skip=1 map=plain")
make("openai_topk", {"format": "openai", "k": 5}, sae_name="3.pt", expect="format=openai act=topk k=5 layer_norm=1 apply_b_dec=1 map=plain")
make("openai_relu", {"format": "openai", "activation": "ReLU"}, sae_name="5.pt", expect="format=openai act=relu layer_norm=0 map=plain")
for cls, act, extra, mp in (("AutoEncoder", "relu", {}, "ae_norm"), ("GatedAutoEncoder", "gated", {}, "gated"),
                            ("JumpReluAutoEncoder", "jumprelu", {}, "plain"), ("AutoEncoderTopK", "topk", {"k": 4}, "plain"),
                            ("BatchTopKSAE", "jumprelu", {"k": 4, "threshold": 0.25}, "scalar_thr"),
                            ("MatryoshkaBatchTopKSAE", "jumprelu", {"k": 4, "threshold": 0.5, "group_sizes": [4, 8]}, "scalar_thr")):
    ab = 0 if cls == "JumpReluAutoEncoder" else 1
    k = f" k={extra['k']}" if "k" in extra else ""
    thr = f" thr={extra['threshold']}" if "threshold" in extra else ""
    make("dl_" + cls, dict({"format": "dictionary_learning", "dict_class": cls}, **extra),
         expect=f"format=dictionary_learning act={act} apply_b_dec={ab}{k}{thr} map={mp}")

# bad inputs
def badcase(path, expect):
    bad.write(f"{path}\t{expect}\n")

p = make("bad_gemma_sf", {"format": "gemma_scope", "scaling_factor": 2.0})
badcase(p, "tensor 'scaling_factor': 2; only 1 is supported")
p = make("bad_bt_thr", {"format": "dictionary_learning", "dict_class": "BatchTopKSAE", "k": 4, "threshold": -1.0})
badcase(p, "tensor 'threshold': -1, never set")
p = make("bad_dl_class", {"format": "dictionary_learning", "dict_class": "AutoEncoder"})
cfg = json.load(open(os.path.join(p, "config.json"))); cfg["trainer"]["dict_class"] = "CrossCoder"
json.dump(cfg, open(os.path.join(p, "config.json"), "w"))
badcase(p, "trainer.dict_class: 'CrossCoder' is not supported")
p = make("bad_sparsify_k", {"format": "sparsify", "k": 5, "activation": "groupmax"})
badcase(p, "k: 5 does not divide num_latents 12 (groupmax)")
p = make("bad_sparsify_dim", {"format": "sparsify", "k": 3})
cfg = json.load(open(os.path.join(p, "cfg.json"))); cfg["d_in"] = 7
json.dump(cfg, open(os.path.join(p, "cfg.json"), "w"))
badcase(p, "tensor 'encoder.weight': dimension 1 is 6, expected 7")
p = make("bad_openai_act", {"format": "openai", "activation": "TopK", "k": 3}, sae_name="1.pt")
import zipfile
with zipfile.ZipFile(p) as z:
    names = z.namelist(); data = {n: z.read(n) for n in names}
pk = [n for n in names if n.endswith("data.pkl")][0]
data[pk] = data[pk].replace(b"TopK", b"TopQ")
with zipfile.ZipFile(p, "w") as z:
    for n in names: z.writestr(n, data[n])
badcase(p, "activation: 'TopQ' is not supported")
p = make("bad_llama_norm", {"format": "llama_scope", "threshold": 0.5, "norm_in": 1.0, "norm_out": 1.0})
hp = json.load(open(os.path.join(p, "hyperparams.json"))); hp["norm_activation"] = "token-wise"
json.dump(hp, open(os.path.join(p, "hyperparams.json"), "w"))
badcase(p, "norm_activation: 'token-wise' is not supported")
p = make("bad_missing", {"format": "dictionary_learning", "dict_class": "JumpReluAutoEncoder"})
os.remove(os.path.join(p, "ae.pt"))
badcase(p, "not an SAE in a known format")
cases.close()
bad.close()
