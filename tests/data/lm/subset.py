#!/usr/bin/env python3
"""Copy the test subset of ../shared/fixtures/lm (see README.md here).

usage: python3 subset.py /path/to/fixtures/lm  (writes next to this script)
Keeps config.json and model.safetensors unchanged, and from fixtures.h5
only seq2 (48 tokens, longer than Gemma-2's window of 8) with the arrays
tests/test_model.c reads; root attributes and rope_inv_freq are kept.
"""
import os, shutil, sys
import h5py

SRC = sys.argv[1]
DST = os.path.dirname(os.path.abspath(__file__))
MAIN = ["tokens", "hidden_states", "resid_final_pre_norm", "attn_out", "mlp_out", "logits", "nll"]
SPLICE = ["resid_pre", "logits", "nll"]
for name in sorted(os.listdir(os.path.join(SRC, "models"))):
    src = os.path.join(SRC, "models", name)
    dst = os.path.join(DST, name)
    os.makedirs(dst, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copyfile(os.path.join(src, f), os.path.join(dst, f))
    with h5py.File(os.path.join(src, "fixtures.h5"), "r") as fi, \
         h5py.File(os.path.join(dst, "fixtures.h5"), "w", libver="earliest") as fo:
        for k, v in fi.attrs.items():
            fo.attrs[k] = v
        if "rope_inv_freq" in fi:
            fo.create_dataset("rope_inv_freq", data=fi["rope_inv_freq"][()])
        # The splice at layer 1 as the spliced hidden_states[n_layers]
        # (final norm output) too.
        g = fo.create_group("seq2")
        for d in MAIN:
            g.create_dataset(d, data=fi["seq2"][d][()])
        for sp in ("splice_L1_zero", "splice_L1_perturbed"):
            gs = g.create_group(sp)
            for d in SPLICE:
                gs.create_dataset(d, data=fi["seq2"][sp][d][()])
            gs.create_dataset("final_norm", data=fi["seq2"][sp]["hidden_states"][-1])
