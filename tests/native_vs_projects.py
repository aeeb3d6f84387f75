#!/usr/bin/python3
"""Manual cross-check (not run by ctest: it needs the projects' sources).

usage: native_vs_projects.py BUILD_TESTS_DIR DL_ROOT OPENAI_ROOT SPARSIFY_ROOT

Each *_ROOT holds the project's package directory with only the files the
classes need and an empty __init__.py (the packages' own __init__ pull in
training stacks): dictionary_learning/{dictionary,config}.py and
dictionary_learning/trainers/{trainer,top_k,batch_top_k,matryoshka_batch_top_k}.py
(saprmarks/dictionary_learning); sparse_autoencoder/model.py
(openai/sparse_autoencoder); sparsify/{sparse_coder,fused_encoder,utils,config}.py
(EleutherAI/sparsify). Runs each project's OWN classes (third-party imports
that encode/decode do not use are stubbed) with
Debian's python3-torch in float64 on the SAEs that tests/native_gen.py wrote
(BUILD_TESTS_DIR/native_data), and compares f and xhat with saeval's reading
of the same files (nativesae.c) through the double reference forward pass
(BUILD_TESTS_DIR/native_forward). Prints the largest differences."""
import dataclasses, json, os, struct, subprocess, sys, tempfile, types
import numpy as np
import torch

bt, dl_src, oa_src, sp_src = sys.argv[1:5]
D = os.path.join(bt, "native_data")
tmp = tempfile.mkdtemp()


def stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m


def nope(*a, **k):
    raise NotImplementedError


class Serializable:
    @classmethod
    def from_dict(cls, d, drop_extra_fields=True):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


for n in ("einops", "accelerate", "accelerate.utils", "transformers", "huggingface_hub", "natsort",
          "safetensors", "safetensors.torch", "simple_parsing"):
    stub(n, rearrange=nope, einsum=nope, reduce=nope, repeat=nope, send_to_device=nope,
         PreTrainedModel=object, snapshot_download=nope, natsorted=sorted, safe_open=nope,
         load_model=nope, save_model=nope, Serializable=Serializable,
         list_field=lambda *d: dataclasses.field(default_factory=lambda: list(d)))
torch.cuda.is_bf16_supported = lambda: False   # CPU-only torch
torch.autocast = lambda *a, **k: (lambda fn: fn)
sys.path[:0] = [dl_src, oa_src, sp_src]
import dictionary_learning.dictionary as dd  # noqa: E402
import dictionary_learning.trainers.top_k as tk  # noqa: E402
import dictionary_learning.trainers.batch_top_k as btk  # noqa: E402
import dictionary_learning.trainers.matryoshka_batch_top_k as mtk  # noqa: E402
import sparse_autoencoder.model as om  # noqa: E402
from sparsify.sparse_coder import SparseCoder  # noqa: E402
from sparsify.config import SparseCoderConfig  # noqa: E402

rng = np.random.default_rng(0)
worst = 0.0


def compare(name, path, fwd, d_in, d_sae):
    global worst
    x = rng.standard_normal((7, d_in)) * 2
    xb, ob = os.path.join(tmp, "x.bin"), os.path.join(tmp, "o.bin")
    np.ascontiguousarray(x, dtype="<f8").tofile(xb)
    subprocess.run([os.path.join(bt, "native_forward"), path, "7", xb, ob], check=True)
    o = np.fromfile(ob, dtype="<f8").reshape(7, -1)
    with torch.no_grad():
        f, xh = fwd(torch.tensor(x))
    ef = np.abs(o[:, :d_sae] - f.double().numpy()).max()
    ex = np.abs(o[:, d_sae:] - xh.double().numpy()).max()
    print(f"{name:40s} max|f diff| {ef:.2e}  max|xhat diff| {ex:.2e}")
    worst = max(worst, ef, ex)


for cls, C in (("AutoEncoder", dd.AutoEncoder), ("GatedAutoEncoder", dd.GatedAutoEncoder),
               ("JumpReluAutoEncoder", dd.JumpReluAutoEncoder), ("AutoEncoderTopK", tk.AutoEncoderTopK),
               ("BatchTopKSAE", btk.BatchTopKSAE), ("MatryoshkaBatchTopKSAE", mtk.MatryoshkaBatchTopKSAE)):
    p = os.path.join(D, "dl_" + cls, "sae")
    ae = C.from_pretrained(os.path.join(p, "ae.pt")).double()
    compare("dictionary_learning " + cls, p, lambda x, ae=ae: (ae.encode(x), ae.decode(ae.encode(x))), ae.activation_dim, ae.dict_size)

for name in ("openai_topk/3.pt", "openai_relu/5.pt"):
    ae = om.Autoencoder.from_state_dict(torch.load(os.path.join(D, name)), strict=False).double()
    def fwd(x, ae=ae):
        lat, info = ae.encode(x)
        return lat, ae.decode(lat, info)
    compare("openai " + name, os.path.join(D, name), fwd, ae.pre_bias.shape[0], ae.latent_bias.shape[0])


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: torch.tensor(np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], dtype="<f4")
                            .reshape(v["shape"]).copy()).double() for k, v in h.items() if k != "__metadata__"}


for case in ("sparsify", "sparsify_groupmax", "sparsify_skip_tc"):
    p = os.path.join(D, case, "sae")
    cfg = json.load(open(os.path.join(p, "cfg.json")))
    d_in = cfg.pop("d_in")
    sae = SparseCoder(d_in, SparseCoderConfig.from_dict(cfg), device="cpu", dtype=torch.float64)
    sae.load_state_dict(read_st(os.path.join(p, "sae.safetensors")))
    def fwd(x, sae=sae):
        e = sae.encode(x)
        xh = sae.decode(e.top_acts, e.top_indices)
        if sae.W_skip is not None:
            xh = xh + x @ sae.W_skip.mT
        return torch.zeros(x.shape[0], sae.num_latents, dtype=x.dtype).scatter_(-1, e.top_indices, e.top_acts), xh
    compare("sparsify " + case, p, fwd, d_in, sae.num_latents)
print(f"largest difference {worst:.2e} (AutoEncoder: its from_pretrained renormalizes in float32)")
