#!/usr/bin/python3
"""Writes torch_*.pt with the real torch.save (Debian python3-torch) and
appends their expected values to OUTDIR/refs.txt. Run by formats_gen.py
only when torch is importable."""
import os, sys
from collections import OrderedDict
import numpy as np
import torch

out = sys.argv[1]
refs = open(os.path.join(out, "refs.txt"), "a")
torch.manual_seed(3)

def vals(t):
    return " ".join(repr(float(v)) for v in t.detach().double().contiguous().view(-1).tolist())

class AE(torch.nn.Module):
    """OpenAI sparse_autoencoder-like: pre_bias, encoder, latent_bias, decoder and an int buffer."""
    def __init__(self):
        super().__init__()
        self.pre_bias = torch.nn.Parameter(torch.randn(6))
        self.encoder = torch.nn.Linear(6, 10, bias=False)
        self.latent_bias = torch.nn.Parameter(torch.randn(10))
        self.decoder = torch.nn.Linear(10, 6, bias=False)
        self.register_buffer("stats_last_nonzero", torch.zeros(10, dtype=torch.long))

ae = AE()
sd = ae.state_dict()
sd["activation"] = "TopK"
sd["activation_state_dict"] = {"k": 4, "postact_fn": "ReLU"}
sd["half"] = torch.randn(3, 2).half()
sd["bf16"] = torch.randn(7).bfloat16()
sd["f64"] = torch.randn(2, 2, dtype=torch.float64)
big = torch.randn(4, 5)
sd["threshold"] = torch.tensor(0.125)   # 0-dim, as dictionary_learning saves it
sd["k"] = torch.tensor(4)
sd["k32"] = torch.tensor([5, -6], dtype=torch.int)
sd["row_view"] = big[1:3]          # offset 5 into a shared storage, contiguous
sd["big"] = big
torch.save(sd, os.path.join(out, "torch_state_dict.pt"))
for k, t in sd.items():
    if torch.is_tensor(t) and t.is_floating_point():
        shape = list(t.shape)
        dt = str(t.dtype).replace("torch.", "")
        refs.write(f"pt torch_state_dict.pt {k} {dt} {len(shape)} {' '.join(map(str, shape))} {t.numel()} {vals(t)}\n".replace("  ", " "))
refs.write("ptitem torch_state_dict.pt activation str TopK\n")
refs.write("ptitem torch_state_dict.pt activation_state_dict.k int 4\n")
refs.write("ptint torch_state_dict.pt stats_last_nonzero int64 10 0 0 0 0 0 0 0 0 0 0\n")
refs.write("ptint torch_state_dict.pt k int64 1 4\n")
refs.write("ptint torch_state_dict.pt k32 int32 2 5 -6\n")

# Parameters saved directly (_rebuild_parameter) and a transposed view.
p = torch.nn.Parameter(torch.randn(3, 4))
torch.save({"p": p, "pt": p.detach().t()}, os.path.join(out, "torch_param.pt"))
refs.write(f"pt torch_param.pt p float32 2 3 4 12 {vals(p)}\n")
with open(os.path.join(out, "cases.txt"), "a") as c:
    c.write("pt\ttorch_param.pt\tread\t'pt': not contiguous (shape (4, 3), stride (1, 4))\n")
refs.close()
