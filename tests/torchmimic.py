"""A torch.save look-alike for tests, with Python's own pickle and zipfile
(no torch needed): pickle protocol 2 with GLOBALs collections.OrderedDict,
torch._utils._rebuild_tensor_v2 / _rebuild_parameter and torch.<T>Storage,
BINPERSID ('storage', type, key, 'cpu', numel), and a zip holding
<prefix>/data.pkl, <prefix>/data/<key>, <prefix>/version, <prefix>/byteorder
-- the layout python3-torch 1.13 writes (checked with pickletools).

Importing this module installs stand-in modules named torch and torch._utils
(pickle checks that globals resolve by name): never import it in a process
that uses the real torch."""
import io, pickle, sys, types, zipfile
from collections import OrderedDict
import numpy as np

torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")

def _stub(*a):
    raise AssertionError("stand-in: never called")

for _n in ("_rebuild_tensor_v2", "_rebuild_parameter"):
    _f = types.FunctionType(_stub.__code__, {}, _n)
    _f.__module__ = "torch._utils"
    _f.__qualname__ = _n
    setattr(utils, _n, _f)
STORAGE = {"float32": ("FloatStorage", "<f4"), "float64": ("DoubleStorage", "<f8"),
           "float16": ("HalfStorage", "<f2"), "bfloat16": ("BFloat16Storage", None),
           "int64": ("LongStorage", "<i8"), "int32": ("IntStorage", "<i4")}
for _n, _ in STORAGE.values():
    _c = type(_n, (), {})
    _c.__module__ = "torch"
    _c.__qualname__ = _n
    setattr(torch, _n, _c)
torch._utils = utils
sys.modules["torch"] = torch
sys.modules["torch._utils"] = utils


class Storage:
    def __init__(self, typ, key, numel, data):
        self.typ, self.key, self.numel, self.data = typ, key, numel, data


class Tensor:
    """Pickles as torch.Tensor does."""
    def __init__(self, storage, offset, shape, stride):
        self.s, self.off, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def __reduce_ex__(self, proto):
        return (utils._rebuild_tensor_v2, (self.s, self.off, self.shape, self.stride, False, OrderedDict()))


class Param:
    """Pickles as torch.nn.Parameter does."""
    def __init__(self, t):
        self.t = t

    def __reduce_ex__(self, proto):
        return (utils._rebuild_parameter, (self.t, True, OrderedDict()))


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.typ, obj.key, "cpu", obj.numel)
        return None


def bf16_bytes(a):
    """float32 -> bfloat16 bits, round to nearest even (as torch does); also the exact values."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r.tobytes(), (r.astype(np.uint32) << 16).view(np.float32)


def contiguous_stride(shape):
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= d
    return tuple(reversed(st))


class Writer:
    """Collects tensors (each with its own storage) for one file."""
    def __init__(self):
        self.storages = []

    def tensor(self, a, dtype="float32"):
        """A contiguous tensor of numpy array a stored as dtype; returns (Tensor, exact values)."""
        a = np.asarray(a)
        name, code = STORAGE[dtype]
        if dtype == "bfloat16":
            raw, exact = bf16_bytes(a)
        else:
            exact = np.ascontiguousarray(a).astype(code)
            raw = exact.tobytes()
        s = Storage(getattr(torch, name), str(len(self.storages)), int(a.size), raw)
        self.storages.append(s)
        return Tensor(s, 0, a.shape, contiguous_stride(a.shape)), exact.reshape(a.shape)

    def save(self, path, root, prefix="archive", pkl=None, skip=(), extra=(), protocol=2):
        if pkl is None:
            b = io.BytesIO()
            _Pickler(b, protocol=protocol).dump(root)
            pkl = b.getvalue()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            z.writestr(f"{prefix}/data.pkl", pkl)
            for s in self.storages:
                if s.key not in skip:
                    z.writestr(f"{prefix}/data/{s.key}", s.data)
            z.writestr(f"{prefix}/version", "3\n")
            z.writestr(f"{prefix}/byteorder", "little")
            for name, data in extra:
                z.writestr(name, data)
        return pkl
