#!/usr/bin/python3
"""Writes one SAE in a project's native on-disk format, for the evaluator's
format tests (issue 11), independently of saeval's readers.

usage: formats_write.py IN_DIR OUT

IN_DIR/meta.json says what to write; IN_DIR/<name>.f64 hold the weights as
little-endian float64 in saeval's canonical layout (row-major):
  W_enc [d_in][d_sae]  b_enc [d_sae]  W_dec [d_sae][d_out]  b_dec [d_out]
  threshold [d_sae]    W_skip [d_out][d_in]   gated: b_gate r_mag b_mag [d_sae]
meta.json: {"format", "d_in", "d_sae", "d_out" (default d_in), "dtype" (float32 |
float16 | bfloat16 | float64, default float32), and per format:
  gemma_scope:         "lowercase" (w_enc/w_dec names), "scaling_factor" (optional scalar)
  llama_scope:         "threshold" (scalar), "norm_in", "norm_out" (dataset average norms),
                       "act_fn" (jumprelu | topk), "k" (top_k)
  sparsify:            "activation" (topk | groupmax), "k", "signed", "skip", "transcode"
  openai:              "activation" (TopK | ReLU), "k"
  dictionary_learning: "dict_class", "k", "threshold" (scalar), "group_sizes"
  saelens (a twin for comparisons): "architecture", "k", "apply_b_dec_to_input",
                       "normalize_activations", "threshold_scalar"}
OUT is a directory (an openai file is OUT itself, e.g. .../autoencoders/3.pt).
Tensor names, shapes and files follow each project's own code: Gemma Scope's
params.npz; OpenMOSS Language-Model-SAEs (hyperparams.json +
checkpoints/final.safetensors); EleutherAI sparsify (cfg.json + sae.safetensors);
openai/sparse_autoencoder (Autoencoder.state_dict()); saprmarks/dictionary_learning
(ae.pt + config.json, per dict_class)."""
import json, os, struct, sys
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

ind, out = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(ind, "meta.json")))
fmt = meta["format"]
d_in, d_sae = meta["d_in"], meta["d_sae"]
d_out = meta.get("d_out", d_in)
dtype = meta.get("dtype", "float32")
SHAPES = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_out), "b_dec": (d_out,),
          "threshold": (d_sae,), "W_skip": (d_out, d_in), "b_gate": (d_sae,), "r_mag": (d_sae,), "b_mag": (d_sae,)}


def arr(name):
    p = os.path.join(ind, name + ".f64")
    if not os.path.exists(p):
        return None
    return np.fromfile(p, dtype="<f8").reshape(SHAPES[name])


W = {n: arr(n) for n in SHAPES}

# ------------------------------------------------------------ safetensors
ST_CODE = {"float32": ("F32", "<f4"), "float16": ("F16", "<f2"), "float64": ("F64", "<f8"), "bfloat16": ("BF16", None)}


def st_bytes(a, dt):
    code, np_code = ST_CODE[dt]
    if dt == "bfloat16":
        u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
        return code, ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2").tobytes()
    return code, np.ascontiguousarray(a).astype(np_code).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """safetensors: u64 LE header length, JSON header, data (as the format's spec says)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        code, raw = st_bytes(a, dtype)
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def np_dtype():
    if dtype not in ("float32", "float16", "float64"):
        sys.exit(f"formats_write: numpy cannot store {dtype}")
    return {"float32": np.float32, "float16": np.float16, "float64": np.float64}[dtype]


# ------------------------------------------------------------------ formats
if fmt == "gemma_scope":
    # params.npz: W_enc [d_in, d_sae], W_dec [d_sae, d_out], b_enc, b_dec, threshold
    os.makedirs(out, exist_ok=True)
    enc, dec = ("w_enc", "w_dec") if meta.get("lowercase") else ("W_enc", "W_dec")
    t = np_dtype()
    arrays = {enc: W["W_enc"].astype(t), dec: W["W_dec"].astype(t), "b_enc": W["b_enc"].astype(t),
              "b_dec": W["b_dec"].astype(t), "threshold": W["threshold"].astype(t)}
    if "scaling_factor" in meta:
        arrays["scaling_factor"] = np.array(meta["scaling_factor"], dtype=t)
    (np.savez_compressed if meta.get("compressed") else np.savez)(os.path.join(out, "params.npz"), **arrays)

elif fmt == "llama_scope":
    # Language-Model-SAEs (lm_saes, the 2024 release code): encoder = nn.Linear(d_model, d_sae),
    # decoder = nn.Linear(d_sae, d_model); jumprelu with one scalar threshold; "dataset-wise"
    # normalization with the dataset average norms of the in/out hook points.
    write_safetensors(os.path.join(out, "checkpoints", "final.safetensors"), {
        "encoder.weight": W["W_enc"].T, "encoder.bias": W["b_enc"],
        "decoder.weight": W["W_dec"].T, "decoder.bias": W["b_dec"]})
    hp = {"d_model": d_in, "d_sae": d_sae, "act_fn": meta.get("act_fn", "jumprelu"), "jump_relu_threshold": meta["threshold"],
          "top_k": meta.get("k", 0),
          "norm_activation": "dataset-wise", "dataset_average_activation_norm": {"in": meta["norm_in"], "out": meta["norm_out"]},
          "sparsity_include_decoder_norm": True, "apply_decoder_bias_to_pre_encoder": False, "use_decoder_bias": True,
          "hook_point_in": "blocks.0.hook_resid_post", "hook_point_out": "blocks.0.hook_resid_post"}
    with open(os.path.join(out, "hyperparams.json"), "w") as f:
        json.dump(hp, f, indent=2)

elif fmt == "sparsify":
    # sparsify SparseCoder: encoder = nn.Linear(d_in, num_latents); W_dec [num_latents, d_in]; b_dec [d_in];
    # W_skip [d_in, d_in] with skip_connection; cfg.json = SparseCoderConfig + d_in.
    t = {"encoder.weight": W["W_enc"].T, "encoder.bias": W["b_enc"], "W_dec": W["W_dec"], "b_dec": W["b_dec"]}
    if meta.get("skip"):
        t["W_skip"] = W["W_skip"]
    write_safetensors(os.path.join(out, "sae.safetensors"), t)
    cfg = {"activation": meta.get("activation", "topk"), "expansion_factor": max(1, d_sae // d_in),
           "normalize_decoder": True, "num_latents": d_sae, "k": meta["k"], "multi_topk": False,
           "skip_connection": bool(meta.get("skip")), "transcode": bool(meta.get("transcode")), "d_in": d_in}
    if "signed" in meta:
        cfg["signed"] = bool(meta["signed"])
    with open(os.path.join(out, "cfg.json"), "w") as f:
        json.dump(cfg, f)

elif fmt in ("openai", "dictionary_learning"):
    import torchmimic as tm
    from collections import OrderedDict
    w = tm.Writer()

    def T(a, dt=None):
        return w.tensor(a, dt or dtype)[0]

    if fmt == "openai":
        # Autoencoder.state_dict(): pre_bias, latent_bias, buffers, encoder.weight [n_latents, n_inputs],
        # decoder.weight [n_inputs, n_latents] (no biases), + "activation" and "activation_state_dict".
        sd = OrderedDict()
        sd["pre_bias"] = T(W["b_dec"])
        sd["latent_bias"] = T(W["b_enc"])
        sd["stats_last_nonzero"] = T(np.zeros(d_sae, dtype=np.int64), "int64")
        sd["latents_activation_frequency"] = T(np.zeros(d_sae), "float32")
        sd["latents_mean_square"] = T(np.zeros(d_sae), "float32")
        sd["encoder.weight"] = T(W["W_enc"].T)
        sd["decoder.weight"] = T(W["W_dec"].T)
        act = meta.get("activation", "TopK")
        sd["activation"] = act
        sd["activation_state_dict"] = OrderedDict(k=meta["k"], postact_fn="ReLU") if act == "TopK" else OrderedDict()
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        w.save(out, sd, prefix=os.path.splitext(os.path.basename(out))[0])
    else:
        cls = meta["dict_class"]
        sd = OrderedDict()
        scalar_k = lambda: T(np.array(meta["k"], dtype=np.int32), "int32")
        scalar_thr = lambda: T(np.array(meta.get("threshold", -1.0)), "float32")
        if cls == "AutoEncoder":
            sd["bias"] = T(W["b_dec"]); sd["encoder.weight"] = T(W["W_enc"].T)
            sd["encoder.bias"] = T(W["b_enc"]); sd["decoder.weight"] = T(W["W_dec"].T)
        elif cls == "GatedAutoEncoder":
            sd["decoder_bias"] = T(W["b_dec"]); sd["r_mag"] = T(W["r_mag"]); sd["gate_bias"] = T(W["b_gate"])
            sd["mag_bias"] = T(W["b_mag"]); sd["encoder.weight"] = T(W["W_enc"].T); sd["decoder.weight"] = T(W["W_dec"].T)
        elif cls == "JumpReluAutoEncoder":
            sd["W_enc"] = T(W["W_enc"]); sd["b_enc"] = T(W["b_enc"]); sd["W_dec"] = T(W["W_dec"])
            sd["b_dec"] = T(W["b_dec"]); sd["threshold"] = T(W["threshold"])
        elif cls in ("AutoEncoderTopK", "BatchTopKSAE"):
            sd["k"] = scalar_k(); sd["threshold"] = scalar_thr()
            sd["decoder.weight"] = T(W["W_dec"].T); sd["encoder.weight"] = T(W["W_enc"].T)
            sd["encoder.bias"] = T(W["b_enc"]); sd["b_dec"] = T(W["b_dec"])
        elif cls == "MatryoshkaBatchTopKSAE":
            sd["k"] = scalar_k(); sd["threshold"] = scalar_thr()
            sd["group_sizes"] = T(np.array(meta["group_sizes"], dtype=np.int64), "int64")
            sd["W_enc"] = T(W["W_enc"]); sd["b_enc"] = T(W["b_enc"]); sd["W_dec"] = T(W["W_dec"]); sd["b_dec"] = T(W["b_dec"])
        else:
            sys.exit(f"formats_write: unknown dict_class {cls}")
        os.makedirs(out, exist_ok=True)
        w.save(os.path.join(out, "ae.pt"), sd, prefix="ae")
        trainer = {"dict_class": cls, "activation_dim": d_in, "dict_size": d_sae, "lm_name": "test", "layer": 0,
                   "submodule_name": "resid_post_layer_0", "trainer_class": "Trainer"}
        if "k" in meta:
            trainer["k"] = meta["k"]
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump({"trainer": trainer, "buffer": {"d_submodule": d_in}}, f, indent=1)
elif fmt == "saelens":
    # The SAELens twin of a canonical SAE (tests/native_e2e.py): cfg.json +
    # sae_weights.safetensors with saeval's own names.
    arch = meta["architecture"]
    t = {"W_enc": W["W_enc"], "W_dec": W["W_dec"], "b_dec": W["b_dec"]}
    if arch == "gated":
        t.update(b_gate=W["b_gate"], r_mag=W["r_mag"], b_mag=W["b_mag"])
    else:
        t["b_enc"] = W["b_enc"]
    if arch == "jumprelu":
        thr = W["threshold"] if "threshold_scalar" not in meta else np.full(d_sae, meta["threshold_scalar"])
        t["threshold"] = thr
    write_safetensors(os.path.join(out, "sae_weights.safetensors"), t)
    cfg = {"architecture": arch, "d_in": d_in, "d_sae": d_sae, "dtype": "float32",
           "apply_b_dec_to_input": bool(meta.get("apply_b_dec_to_input", True)),
           "normalize_activations": meta.get("normalize_activations", "none")}
    if arch == "topk":
        cfg["k"] = meta["k"]
    with open(os.path.join(out, "cfg.json"), "w") as f:
        json.dump(cfg, f)
else:
    sys.exit(f"formats_write: unknown format {fmt}")
