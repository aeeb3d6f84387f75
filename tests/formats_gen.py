#!/usr/bin/python3
"""Independent writers for the format readers' tests (tests/test_formats.c).

usage: formats_gen.py OUTDIR

Writes into OUTDIR:
  *.npz    with numpy's own np.savez / np.savez_compressed / np.lib.format
  mimic_*.pt  PyTorch zip files written with Python's pickle + zipfile,
           mimicking torch.save's layout (pickle protocol 2, GLOBALs
           torch._utils._rebuild_tensor_v2 / collections.OrderedDict /
           torch.<T>Storage, BINPERSID ('storage', type, key, 'cpu', numel),
           <name>/data.pkl + <name>/data/<key> + <name>/version)
  torch_*.pt  the same written by torch.save itself, when python3-torch is
           installed (optional; a separate process so the mimic's stand-in
           modules never meet the real torch)
  evil_*   pickles that run `touch OUTDIR/pwned_*` under pickle.loads
  refs.txt   expected values (repr of float64, exact) of every good array
  cases.txt  bad inputs: kind<TAB>file<TAB>stage<TAB>expected message part
Nothing here reads the files back except the control check that proves the
os.system payload is live (it is unpickled once by Python, not by saeval).
"""
import io, os, pickle, struct, subprocess, sys, types, zipfile
from collections import OrderedDict
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
refs = open(os.path.join(out, "refs.txt"), "w")
cases = open(os.path.join(out, "cases.txt"), "w")

def case(kind, name, stage, expect):
    assert "\t" not in expect
    cases.write(f"{kind}\t{name}\t{stage}\t{expect}\n")

def vals(a):
    return " ".join(repr(float(v)) for v in np.asarray(a, dtype=np.float64).ravel(order="C"))

rng = np.random.default_rng(11)

# ------------------------------------------------------------------- npz
arrays = {
    "W_enc": rng.standard_normal((3, 5)).astype(np.float32),
    "W_dec": rng.standard_normal((5, 3)).astype(np.float64),
    "b_enc": rng.standard_normal(5).astype(np.float16),
    "threshold": np.abs(rng.standard_normal(5)).astype(np.float32),
    "scaling_factor": np.array(0.75, dtype=np.float32),   # shape ()
    "empty": np.zeros((0, 4), dtype=np.float32),
}
for fn, writer in (("good_savez.npz", np.savez), ("good_compressed.npz", np.savez_compressed)):
    writer(os.path.join(out, fn), **arrays)
    for k, a in arrays.items():
        refs.write(f"npz {fn} {k} {a.dtype.str[1:]} {a.ndim} {' '.join(map(str, a.shape))} {a.size} {vals(a)}\n".replace("  ", " "))

def npy_bytes(a, version=None, header=None):
    b = io.BytesIO()
    if header is None:
        np.lib.format.write_array(b, a, version=version, allow_pickle=False)
        return b.getvalue()
    return header + a.tobytes()

def raw_header(d, version=1):
    txt = d.encode("latin1")
    pre = 10 if version == 1 else 12
    pad = (64 - (pre + len(txt) + 1) % 64) % 64
    txt = txt + b" " * pad + b"\n"
    ln = struct.pack("<H", len(txt)) if version == 1 else struct.pack("<I", len(txt))
    return b"\x93NUMPY" + bytes([version, 0]) + ln + txt

def write_zip(fn, members, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(os.path.join(out, fn), "w", compress) as z:
        for name, data in members:
            z.writestr(name, data)

# header versions 2.0 and 3.0 (numpy writes them for huge headers / utf8 names)
v = rng.standard_normal((2, 3)).astype(np.float32)
write_zip("good_v23.npz", [("a2.npy", npy_bytes(v, (2, 0))), ("a3.npy", npy_bytes(v, (3, 0)))])
for k in ("a2", "a3"):
    refs.write(f"npz good_v23.npz {k} f4 2 2 3 6 {vals(v)}\n")

good = open(os.path.join(out, "good_savez.npz"), "rb").read()
open(os.path.join(out, "bad_truncated.npz"), "wb").write(good[: len(good) // 2])
case("npz", "bad_truncated.npz", "open", "not a readable zip archive")
open(os.path.join(out, "bad_empty_file.npz"), "wb").write(b"")
case("npz", "bad_empty_file.npz", "open", "not a readable zip archive")
write_zip("bad_fortran.npz", [("W.npy", npy_bytes(np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32))))])
case("npz", "bad_fortran.npz", "open", "field 'fortran_order': True")
write_zip("bad_bigendian.npz", [("W.npy", npy_bytes(np.ones((2, 2), dtype=">f4")))])
case("npz", "bad_bigendian.npz", "open", "'>f4' is big-endian")
write_zip("bad_int.npz", [("W.npy", npy_bytes(np.ones((2, 2), dtype=np.int64)))])
case("npz", "bad_int.npz", "open", "dtype '<i8' is not supported")
write_zip("bad_bf16_void.npz", [("W.npy", npy_bytes(np.zeros(4, dtype="V2")))])
case("npz", "bad_bf16_void.npz", "open", "'|V2' is a raw 2-byte type")
write_zip("bad_structured.npz", [("W.npy", npy_bytes(np.zeros(3, dtype=[("a", "<f4"), ("b", "<f4")])))])
case("npz", "bad_structured.npz", "open", "structured dtypes")
x = np.ones((3, 4), dtype=np.float32)
write_zip("bad_shape_short.npz", [("W.npy", raw_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4), }") + x.tobytes())])
case("npz", "bad_shape_short.npz", "open", "need 64 (truncated)")
write_zip("bad_shape_long.npz", [("W.npy", raw_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }") + x.tobytes())])
case("npz", "bad_shape_long.npz", "open", "shape and dtype need 32")
write_zip("bad_magic.npz", [("W.npy", b"hello, this is not an array")])
case("npz", "bad_magic.npz", "open", "bad magic")
write_zip("bad_member.npz", [("W.npy", npy_bytes(x)), ("notes.txt", b"hi")])
case("npz", "bad_member.npz", "open", "'notes.txt' is not a .npy file")
write_zip("bad_no_newline.npz", [("W.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'}" + x.tobytes())])
case("npz", "bad_no_newline.npz", "open", "does not end with a newline")
write_zip("bad_unknown_key.npz", [("W.npy", raw_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'evil': __import__('os'), }") + x.tobytes())])
case("npz", "bad_unknown_key.npz", "open", "field 'evil': unknown key")
write_zip("bad_version.npz", [("W.npy", b"\x93NUMPY\x04\x00" + npy_bytes(x)[8:])])
case("npz", "bad_version.npz", "open", "version 4.0")
write_zip("bad_dup_key.npz", [("W.npy", raw_header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }") + x.tobytes())])
case("npz", "bad_dup_key.npz", "open", "field 'descr': appears twice")
write_zip("bad_hdr_len.npz", [("W.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x00" + b" " * 40)])
case("npz", "bad_hdr_len.npz", "open", "npy header: length")
# Bytes of a stored member flipped: the central directory is fine, the CRC is not.
buf = bytearray(open(os.path.join(out, "good_savez.npz"), "rb").read())
i = buf.index(b"\x93NUMPY") + 150  # inside W_enc data (header 128 bytes, data 60)
buf[i] ^= 0xFF
open(os.path.join(out, "bad_crc.npz"), "wb").write(bytes(buf))
case("npz", "bad_crc.npz", "read", "CRC")
# Deflated member whose compressed stream is cut (sizes patched to match).
write_zip("bad_deflate.npz", [("W.npy", npy_bytes(rng.standard_normal((64, 64)).astype(np.float32)))], zipfile.ZIP_DEFLATED)
buf = bytearray(open(os.path.join(out, "bad_deflate.npz"), "rb").read())
lh = 30 + len("W.npy")
buf[lh + 2000: lh + 2300] = bytes(300)  # garbage in the middle of the deflate stream
open(os.path.join(out, "bad_deflate.npz"), "wb").write(bytes(buf))
case("npz", "bad_deflate.npz", "read", "W.npy")
write_zip("bad_dup_entry.npz", [("W.npy", npy_bytes(x)), ("W.npy", npy_bytes(x))])
case("npz", "bad_dup_entry.npz", "open", "not a readable zip archive: File already exists")  # libzip refuses it first

# ------------------------------------------------------ torch-like pickles
MARK_PREFIX = os.path.join(out, "pwned_")

def touch_cmd(tag):
    return "touch " + MARK_PREFIX + tag

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchmimic as tm
from torchmimic import Storage as _Storage, Tensor as FakeTensor, Param as FakeParam, bf16_bytes, contiguous_stride
ftorch, futils = tm.torch, tm.utils

def write_pt(fn, root, storages, prefix="archive", extra=(), skip=(), pkl=None, protocol=2):
    w = tm.Writer()
    w.storages = list(storages)
    return w.save(os.path.join(out, fn), root, prefix=prefix, pkl=pkl, skip=skip, extra=extra, protocol=protocol)

def float_storage(key, a, kind):
    a = np.ascontiguousarray(a)
    if kind == "float32": return _Storage(ftorch.FloatStorage, key, a.size, a.astype("<f4").tobytes()), a.astype(np.float32)
    if kind == "float64": return _Storage(ftorch.DoubleStorage, key, a.size, a.astype("<f8").tobytes()), a.astype(np.float64)
    if kind == "float16": return _Storage(ftorch.HalfStorage, key, a.size, a.astype("<f2").tobytes()), a.astype(np.float16)
    if kind == "bfloat16":
        raw, exact = bf16_bytes(a)
        return _Storage(ftorch.BFloat16Storage, key, a.size, raw), exact
    raise ValueError(kind)

def mimic_state_dict():
    sd, stor, expect = OrderedDict(), [], []
    specs = [("encoder.weight", (5, 3), "float32"), ("encoder.bias", (5,), "float16"),
             ("W_dec", (5, 3), "bfloat16"), ("b_dec", (3,), "float64"), ("pre_bias", (3,), "float32")]
    for i, (name, shape, kind) in enumerate(specs):
        s, exact = float_storage(str(i), rng.standard_normal(shape), kind)
        stor.append(s)
        t = FakeTensor(s, 0, shape, contiguous_stride(shape))
        sd[name] = FakeParam(t) if name == "W_dec" else t
        expect.append((name, kind, shape, exact))
    # a view into the middle of a shared storage (offset 3, 2x3 of a 12-element storage)
    base = rng.standard_normal(12).astype(np.float32)
    s, _ = float_storage("5", base, "float32")
    stor.append(s)
    sd["view"] = FakeTensor(s, 3, (2, 3), (3, 1))
    expect.append(("view", "float32", (2, 3), base[3:9].reshape(2, 3)))
    sd["latent_bias"] = FakeTensor(s, 0, (12,), (1,))
    expect.append(("latent_bias", "float32", (12,), base))
    # integer buffer (OpenAI's stats_last_nonzero): listed, not readable as float
    ints = np.arange(4, dtype="<i8")
    stor.append(_Storage(ftorch.LongStorage, "6", 4, ints.tobytes()))
    sd["stats_last_nonzero"] = FakeTensor(stor[-1], 0, (4,), (1,))
    # 0-dim tensors (dictionary_learning's scalar threshold and k buffers)
    s, exact = float_storage("7", np.array([0.25]), "float32")
    stor.append(s)
    sd["threshold"] = FakeTensor(s, 0, (), ())
    expect.append(("threshold", "float32", (), exact.reshape(())))
    stor.append(_Storage(ftorch.LongStorage, "8", 1, np.array([32], dtype="<i8").tobytes()))
    sd["k"] = FakeTensor(stor[-1], 0, (), ())
    stor.append(_Storage(ftorch.IntStorage, "9", 3, np.array([-7, 8, 2**31 - 1], dtype="<i4").tobytes()))
    sd["k32"] = FakeTensor(stor[-1], 1, (2,), (1,))  # a view at offset 1: (8, 2147483647)
    sd["activation"] = "TopK"
    sd["activation_state_dict"] = {"k": 32, "postact_fn": "ReLU", "scale": 0.5, "flag": True}
    return sd, stor, expect

sd, stor, expect = mimic_state_dict()
write_pt("mimic_good.pt", sd, stor)
# torch.save(..., pickle_protocol=4): FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL
p4 = write_pt("mimic_p4.pt", sd, stor, prefix="p4", protocol=4)
assert b"\x95" in p4 and b"\x93" in p4
for name, kind, shape, exact in expect:
    refs.write(f"pt mimic_p4.pt {name} {kind} {len(shape)} {' '.join(map(str, shape))} {int(np.prod(shape))} {vals(exact)}\n".replace("  ", " "))
for name, kind, shape, exact in expect:
    refs.write(f"pt mimic_good.pt {name} {kind} {len(shape)} {' '.join(map(str, shape))} {int(np.prod(shape))} {vals(exact)}\n".replace("  ", " "))
for k, v in (("activation", "str TopK"), ("activation_state_dict.k", "int 32"),
             ("activation_state_dict.postact_fn", "str ReLU"), ("activation_state_dict.scale", "float 0.5"),
             ("activation_state_dict.flag", "bool 1")):
    refs.write(f"ptitem mimic_good.pt {k} {v}\n")
refs.write("ptint mimic_good.pt stats_last_nonzero int64 4 0 1 2 3\n")
refs.write("ptint mimic_good.pt k int64 1 32\n")
refs.write("ptint mimic_good.pt k32 int32 2 8 2147483647\n")

# bad .pt files
write_pt("bad_pt_missing_storage.pt", sd, stor, skip=("2",))
case("pt", "bad_pt_missing_storage.pt", "open", "storage entry 'archive/data/2' is missing")
short = [_Storage(s.typ, s.key, s.numel, s.data[:-4] if s.key == "0" else s.data) for s in stor]
write_pt("bad_pt_short_storage.pt", sd, short)
case("pt", "bad_pt_short_storage.pt", "open", "storage 'archive/data/0' holds 56 bytes")
s_over, _ = float_storage("0", rng.standard_normal(6), "float32")
write_pt("bad_pt_out_of_storage.pt", {"w": FakeTensor(s_over, 2, (2, 3), (3, 1))}, [s_over])
case("pt", "bad_pt_out_of_storage.pt", "open", "reach element 7 of a storage of 6")
write_pt("bad_pt_transposed.pt", {"w": FakeTensor(s_over, 0, (3, 2), (1, 3))}, [s_over])
case("pt", "bad_pt_transposed.pt", "read", "not contiguous (shape (3, 2), stride (1, 3))")
s_int = [s for s in stor if s.key == "6"][0]
write_pt("bad_pt_int_read.pt", {"n": FakeTensor(s_int, 0, (4,), (1,))}, [s_int])
case("pt", "bad_pt_int_read.pt", "read", "dtype int64 is not a floating-point type")
write_pt("bad_pt_list_root.pt", [1, 2], [])
case("pt", "bad_pt_list_root.pt", "open", "holds a list, not a state dict")
write_pt("bad_pt_bigendian.pt", {"a": 1}, [], extra=())
buf = open(os.path.join(out, "bad_pt_bigendian.pt"), "rb").read()
with zipfile.ZipFile(os.path.join(out, "bad_pt_bigendian.pt"), "w") as z:
    with zipfile.ZipFile(io.BytesIO(buf)) as zi:
        for n in zi.namelist():
            z.writestr(n, b"big" if n.endswith("byteorder") else zi.read(n))
case("pt", "bad_pt_bigendian.pt", "open", "storages are not little-endian")
with zipfile.ZipFile(os.path.join(out, "bad_pt_no_pkl.pt"), "w") as z:
    z.writestr("archive/version", "3\n")
case("pt", "bad_pt_no_pkl.pt", "open", "no <name>/data.pkl")
open(os.path.join(out, "bad_pt_legacy.pt"), "wb").write(pickle.dumps(1, protocol=2) + b"rest")
case("pt", "bad_pt_legacy.pt", "open", "legacy (pre-1.6)")
mgood = open(os.path.join(out, "mimic_good.pt"), "rb").read()
open(os.path.join(out, "bad_pt_truncated.pt"), "wb").write(mgood[: len(mgood) - 100])
case("pt", "bad_pt_truncated.pt", "open", "not a readable zip archive")
write_pt("bad_pt_dup_name.pt", {"a.b": 1, "a": {"b": 2}}, [])
case("pt", "bad_pt_dup_name.pt", "open", "entry 'a.b' appears twice")

# One dict shared 2000 times through the memo: 4 million names if walked
# naively from a 50 kB file.
shared = {f"k{i}": 1 for i in range(2000)}
write_pt("bad_pt_shared_blowup.pt", {f"s{j}": shared for j in range(2000)}, [])
case("pt", "bad_pt_shared_blowup.pt", "open", "more than 1000000 entries")

# ------------------------------------------------------------ evil pickles
class Evil:
    def __init__(self, tag): self.tag = tag
    def __reduce__(self):
        return (os.system, (touch_cmd(self.tag),))

evil = {}
evil["evil_os_system.pkl"] = (pickle.dumps(Evil("os_system"), protocol=2), "disallowed global posix.system at offset 2")
evil["evil_os_system_text.pkl"] = (b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(touch_cmd("text"))) + touch_cmd("text").encode() + b"\x85R.",
                                   "disallowed global os.system at offset 2")
evil["evil_nested.pkl"] = (pickle.dumps(OrderedDict(w=1, x=Evil("nested")), protocol=2), "disallowed global posix.system at offset")
cmd = touch_cmd("eval")
evil["evil_stack_global.pkl"] = (b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c" + bytes([len(f"__import__('os').system('{cmd}')")]) +
                                 f"__import__('os').system('{cmd}')".encode() + b"\x85R.", "disallowed global builtins.eval at offset")
c = touch_cmd("inst").encode()
evil["evil_inst.pkl"] = (b"\x80\x02(X" + struct.pack("<I", len(c)) + c + b"ios\nsystem\n.", f"disallowed opcode INST (0x69) at offset {8 + len(c)}")
evil["evil_obj.pkl"] = (b"\x80\x02(ccollections\nOrderedDict\no.", "disallowed opcode OBJ (0x6f) at offset 28")
evil["evil_newobj.pkl"] = (b"\x80\x02ccollections\nOrderedDict\n)\x81.", "disallowed opcode NEWOBJ (0x81) at offset 28")
evil["evil_call_storage.pkl"] = (b"\x80\x02ctorch\nFloatStorage\n)R.", "cannot call torch.FloatStorage at offset 23")
evil["evil_reduce_str.pkl"] = (b"\x80\x02X\x01\x00\x00\x00a)R.", "REDUCE of a non-callable str")
evil["evil_ext.pkl"] = (b"\x80\x02\x82\x01)R.", "disallowed opcode EXT (0x82) at offset 2")
evil["evil_persid_text.pkl"] = (b"\x80\x02P0\n.", "disallowed opcode PERSID")
evil["evil_build_tensor.pkl"] = (b"\x80\x02]}b.", "BUILD on a non-dict")
evil["evil_hooks.pkl"] = (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQK\x00K\x01\x85K\x01\x85\x89}X\x01\x00\x00\x00hK\x01stR.",
                          "backward hooks must be an empty dict")
evil["evil_cycle.pkl"] = (b"\x80\x02]q\x00h\x00a.", "a container contains itself")
evil["evil_deep.pkl"] = (b"\x80\x02" + b"]" * 300 + b"a" * 299 + b".", "nested deeper than 256 levels")
evil["evil_memo_big.pkl"] = (b"\x80\x02Nr\xff\xff\xff\x7f.", "memo index too large")
evil["evil_trailing.pkl"] = (b"\x80\x02N.junk", "bytes after STOP")
evil["evil_truncated.pkl"] = (pickle.dumps(OrderedDict(a=1), protocol=2)[:-3], "truncated")
evil["evil_proto0.pkl"] = (b"cos\nsystem\n(S'" + touch_cmd("proto0").encode() + b"'\ntR.", "not a protocol 2+ pickle")
evil["evil_bigint.pkl"] = (b"\x80\x02\x8a\x09" + b"\x01" * 9 + b".", "integer wider than 64 bits")
for fn, (data, expect) in evil.items():
    open(os.path.join(out, fn), "wb").write(data)
    case("pkl", fn, "open", expect)
# The same payloads inside a .pt (what a malicious download would be).
for fn in ("evil_os_system.pkl", "evil_stack_global.pkl", "evil_inst.pkl"):
    ptn = fn.replace(".pkl", ".pt")
    write_pt(ptn, None, [], pkl=evil[fn][0])
    case("pt", ptn, "open", evil[fn][1])

# Control: the os.system payload is live under Python's own pickle.loads,
# so its refusal above means something. Run in a child with its own marker.
ctl = os.path.join(out, "control_marker")
payload = pickle.dumps(Evil("x"), protocol=2).replace(touch_cmd("x").encode(), b"touch " + ctl.encode())
payload = payload.replace(struct.pack("<I", len(touch_cmd("x"))), struct.pack("<I", len("touch " + ctl)), 1)
subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"], input=payload, check=True)
if not os.path.exists(ctl):
    sys.exit("formats_gen: control payload did not run: the evil pickles are not live")
os.remove(ctl)

refs.close()
cases.close()

# ---------------------------------------------- real torch.save (optional)
import importlib.util
del sys.modules["torch"], sys.modules["torch._utils"]  # torchmimic's stand-ins
if importlib.util.find_spec("torch") is not None and os.environ.get("SAEVAL_NO_TORCH") != "1":
    subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "formats_gen_torch.py"), out], check=True)
