"""Read and write PyTorch `.pth` checkpoints (the zip format of `torch.save`) without PyTorch.

A checkpoint is a zip archive whose records all live under one folder `<archive>/`:

    <archive>/data.pkl          pickle (protocol 2) of e.g. {"model": OrderedDict[name -> tensor]}
    <archive>/data/<key>        raw bytes of one tensor storage
    <archive>/byteorder         "little" or "big"
    <archive>/version           format version, "3"

Inside `data.pkl` a tensor is `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, hooks)` whose storage is a *persistent id* `("storage", torch.FloatStorage, key, "cpu",
numel)` pointing at `data/<key>`.

Unpickling runs whatever callables the pickle names, so `read_pth` uses an allow-list: only the few
globals that rebuild tensors and ordered dicts are resolved, each to a local NumPy stand-in; any other
global refuses the whole file (`UnsafeCheckpointError`) at the moment the pickle names it, before anything
in the file runs.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class UnsafeCheckpointError(ValueError):
    """A checkpoint was refused because unpickling it could run code outside the tensor allow-list."""


# torch storage class name -> NumPy dtype (byte order applied when read). BFloat16 has no NumPy dtype: its
# 16 bits are the upper half of a float32, so it is read as uint16 and widened.
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype(np.float32),
    "DoubleStorage": np.dtype(np.float64),
    "HalfStorage": np.dtype(np.float16),
    "BFloat16Storage": np.dtype(np.uint16),
    "LongStorage": np.dtype(np.int64),
    "IntStorage": np.dtype(np.int32),
    "ShortStorage": np.dtype(np.int16),
    "CharStorage": np.dtype(np.int8),
    "ByteStorage": np.dtype(np.uint8),
    "BoolStorage": np.dtype(np.bool_),
}
_DTYPE_STORAGES = {dt: name for name, dt in _STORAGE_DTYPES.items() if name != "BFloat16Storage"}

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_MAX_EXPANDED_NUMEL = 2**26  # a zero-stride view may repeat storage elements, but not without bound
_ALIGNMENT = 64  # torch pads every record so its data starts at a multiple of 64 bytes (mmap-able)


# ---------------------------------------------------------------------------------------------- reading
class _StorageType:
    """Stand-in for `torch.FloatStorage` & co.: only carries the element dtype."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _Storage:
    """One `data/<key>` record as a flat 1-D array of `numel` elements."""

    __slots__ = ("storage_type", "key", "array")

    def __init__(self, storage_type: _StorageType, key: str, array: np.ndarray):
        self.storage_type, self.key, self.array = storage_type, key, array


class _Tensor:
    """Result of a tensor rebuild. A wrapper (not the array itself) so that no pickle opcode can reach
    `ndarray.__setstate__`; it has no `__dict__`, so a BUILD opcode on it fails."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array


def _as_index_tuple(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ValueError(f"malformed tensor record: {what} must be a tuple of non-negative ints, got {value!r}")
    return value


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None) -> _Tensor:
    """NumPy stand-in for `torch._utils._rebuild_tensor_v2`: a copy of the strided view of `storage`."""
    if not isinstance(storage, _Storage):
        raise ValueError(f"malformed tensor record: storage is a {type(storage).__name__}, not a storage")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise ValueError(f"malformed tensor record: storage offset {storage_offset!r}")
    size, stride = _as_index_tuple(size, "size"), _as_index_tuple(stride, "stride")
    if len(size) != len(stride):
        raise ValueError(f"malformed tensor record: size {size} and stride {stride} differ in length")
    if not isinstance(requires_grad, bool):
        raise ValueError(f"malformed tensor record: requires_grad {requires_grad!r}")
    if backward_hooks is not None and not isinstance(backward_hooks, dict):
        raise ValueError(f"malformed tensor record: backward hooks {type(backward_hooks).__name__}")
    base = storage.array
    numel = int(np.prod(size, dtype=object))
    if numel > max(base.size, _MAX_EXPANDED_NUMEL):
        raise ValueError(
            f"malformed tensor record: a view of {numel} elements (size {size}, stride {stride}) of storage "
            f"'{storage.key}', which has only {base.size}; refusing to expand it"
        )
    if 0 in size:
        out = np.zeros(size, dtype=base.dtype.newbyteorder("="))
    else:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= base.size:
            raise ValueError(
                f"malformed tensor record: size {size}, stride {stride}, offset {storage_offset} reach "
                f"element {last} of storage '{storage.key}', which has {base.size} elements"
            )
        view = np.lib.stride_tricks.as_strided(
            base[storage_offset:], shape=size, strides=tuple(s * base.itemsize for s in stride), writeable=False
        )
        out = np.array(view, dtype=base.dtype.newbyteorder("="), order="C")  # copy, native order
    if storage.storage_type.name == "BFloat16Storage":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return _Tensor(out)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> _Tensor:
    """Stand-in for `torch._utils._rebuild_parameter` (an `nn.Parameter` saved directly): its data."""
    if not isinstance(data, _Tensor):
        raise ValueError(f"malformed parameter record: data is a {type(data).__name__}, not a tensor")
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


def allowed_globals() -> list[str]:
    """The dotted names of the only globals a checkpoint pickle may reference."""
    return [f"{m}.{n}" for m, n in _ALLOWED_GLOBALS]


class _RestrictedUnpickler(pickle.Unpickler):
    byteorder = "<"  # of the raw storages; set from the archive's `byteorder` record

    def __init__(self, data: bytes, source: str, read_record):
        super().__init__(io.BytesIO(data))
        self._source = source
        self._read_record = read_record
        self._storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        target = _ALLOWED_GLOBALS.get((module, name))
        if target is None:
            raise UnsafeCheckpointError(
                f"{self._source}: refused as unsafe: the pickle references the global '{module}.{name}', "
                f"which is not one of the tensor-rebuilding globals allowed ({', '.join(allowed_globals())}); "
                "nothing in the file was run"
            )
        return target

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise ValueError(f"{self._source}: unsupported persistent id {pid!r} (expected a storage)")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise ValueError(f"{self._source}: persistent id names {storage_type!r}, not a storage type")
        if not isinstance(key, str) or not isinstance(location, str):
            raise ValueError(f"{self._source}: malformed storage id {pid!r}")
        if not isinstance(numel, int) or numel < 0:
            raise ValueError(f"{self._source}: storage '{key}' has an invalid element count {numel!r}")
        cached = self._storages.get(key)
        if cached is not None and cached.storage_type.name == storage_type.name:
            return cached
        raw = self._read_record(f"data/{key}")
        nbytes = numel * storage_type.dtype.itemsize
        if len(raw) != nbytes:
            raise ValueError(
                f"{self._source}: record data/{key} has {len(raw)} bytes, but its {storage_type!r} "
                f"of {numel} elements needs {nbytes}"
            )
        array = np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder(self.byteorder))
        storage = _Storage(storage_type, key, array)
        self._storages[key] = storage
        return storage


def _unwrap(obj):
    """Replace every `_Tensor` in a nest of dicts/lists/tuples by its array."""
    if isinstance(obj, _Tensor):
        return obj.array
    if isinstance(obj, dict):
        out = OrderedDict() if isinstance(obj, OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _unwrap(v)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(v) for v in obj)
    return obj


def _refuse_non_zip(path: Path, head: bytes) -> None:
    if head[:1] == b"\x80":
        raise UnsafeCheckpointError(
            f"{path}: refused as unsafe: this is a legacy (non-zip) PyTorch pickle, which can only be read "
            "by unpickling a stream that mixes objects and raw storages outside any allow-list; re-save it "
            "with torch.save in a PyTorch >= 1.6 (zip format)"
        )
    if len(head) >= 262 and head[257:262] == b"ustar":
        raise UnsafeCheckpointError(
            f"{path}: refused as unsafe: this is a legacy tar-format PyTorch checkpoint; re-save it with "
            "torch.save in a PyTorch >= 1.6 (zip format)"
        )
    raise ValueError(f"{path}: not a PyTorch zip checkpoint (the file does not start like a zip archive)")


def _archive_prefix(path: Path, names: list[str]) -> str:
    pkl = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkl) != 1:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        why = "no '<archive>/data.pkl' record" if not pkl else f"several data.pkl records ({', '.join(pkl)})"
        raise ValueError(f"{path}: not a PyTorch checkpoint: {why} (records: {shown or 'none'})")
    prefix = pkl[0][: -len("data.pkl")]
    if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
        raise ValueError(
            f"{path}: this is a TorchScript archive (torch.jit.save), not a state_dict checkpoint; save "
            "the weights with torch.save(model.state_dict(), path) instead"
        )
    return prefix


def _read_pickled(path: Path):
    """Unpickle a zip checkpoint with the restricted unpickler; returns the object with arrays."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:4] not in _ZIP_MAGIC:
        _refuse_non_zip(path, head)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            prefix = _archive_prefix(path, names)

            def read_record(name: str) -> bytes:
                full = prefix + name
                if full not in names:
                    raise ValueError(f"{path}: record '{full}' is missing")
                return zf.read(full)

            unpickler = _RestrictedUnpickler(read_record("data.pkl"), str(path), read_record)
            if prefix + "byteorder" in names:
                order = read_record("byteorder").strip()
                if order not in (b"little", b"big"):
                    raise ValueError(f"{path}: unknown byte order {order!r} in {prefix}byteorder")
                unpickler.byteorder = "<" if order == b"little" else ">"
            try:
                obj = unpickler.load()
            except (UnsafeCheckpointError, zipfile.BadZipFile):
                raise
            except ValueError as e:
                raise ValueError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from e
            except Exception as e:  # UnpicklingError, EOFError, AttributeError, TypeError, ...
                raise ValueError(
                    f"{path}: {prefix}data.pkl is not a valid checkpoint pickle ({type(e).__name__}: {e})"
                ) from e
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path}: corrupt or truncated zip archive ({e})") from e
    except (EOFError, zlib.error, struct.error) as e:
        raise ValueError(f"{path}: corrupt or truncated zip archive ({type(e).__name__}: {e})") from e
    return _unwrap(obj)


def read_pth(path: str | os.PathLike) -> OrderedDict[str, np.ndarray]:
    """Read a `torch.save` zip checkpoint into an OrderedDict name -> array, without PyTorch.

    Accepts `{"model": state_dict, ...}` (official YOLOX checkpoints, extra entries such as "optimizer"
    are ignored) or a bare state_dict. Arrays are fresh, native-byte-order copies; `num_batches_tracked`
    entries are kept as 0-d int64 arrays. Raises `UnsafeCheckpointError` for a pickle that references any
    global outside the allow-list (see `allowed_globals()`) or for a legacy non-zip pickle, and `ValueError`
    naming the file for a corrupt archive or an unexpected layout.
    """
    path = Path(path)
    obj = _read_pickled(path)
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict or {{'model': state_dict}}, got {type(obj).__name__}")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            keys = ", ".join(repr(k) for k in list(obj)[:8])
            raise ValueError(
                f"{path}: expected a state_dict (name -> tensor) or {{'model': state_dict}}; entry {k!r} is a "
                f"{type(v).__name__} (top-level keys: {keys})"
            )
        out[k] = v
    return out


# ---------------------------------------------------------------------------------------------- writing
class _PickleWriter:
    """Emits pickle protocol 2 opcodes by hand, memoizing like CPython's pickler, so the globals
    (`torch.FloatStorage`, ...) can be named without importing torch."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")  # PROTO 2
        self._memo = 0
        self._globals: dict[tuple[str, str], int] = {}
        self._strings: dict[str, int] = {}

    def _put(self) -> int:
        idx = self._memo
        self.out += b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx)
        self._memo += 1
        return idx

    def _get(self, idx: int) -> None:
        self.out += b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)

    def glob(self, module: str, name: str) -> None:
        key = (module, name)
        if key in self._globals:
            self._get(self._globals[key])
        else:
            self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
            self._globals[key] = self._put()

    def string(self, s: str, shared: bool = False) -> None:
        """A str; `shared=True` for strings that are one object in torch (re-used via the memo)."""
        if shared and s in self._strings:
            self._get(self._strings[s])
            return
        data = s.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(data)) + data
        idx = self._put()
        if shared:
            self._strings[s] = idx

    def integer(self, v: int) -> None:
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        elif -(2**31) <= v < 2**31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            n = (v.bit_length() + 8) // 8
            self.out += b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)

    def int_tuple(self, values: tuple[int, ...]) -> None:
        if not values:
            self.out += b")"  # EMPTY_TUPLE (not memoized)
            return
        if len(values) > 3:
            self.out += b"("  # MARK
        for v in values:
            self.integer(v)
        self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(values), b"t")
        self._put()

    def empty_ordered_dict(self) -> None:
        self.glob("collections", "OrderedDict")
        self.out += b")R"  # EMPTY_TUPLE, REDUCE
        self._put()

    def tensor(self, storage_type: str, key: str, shape: tuple[int, ...]) -> None:
        """`_rebuild_tensor_v2(storage, 0, shape, contiguous strides, False, OrderedDict())`."""
        self.glob("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("  # MARK args, MARK persistent id
        self.string("storage", shared=True)
        self.glob("torch", storage_type)
        self.string(key)
        self.string("cpu", shared=True)
        self.integer(int(np.prod(shape, dtype=np.int64)))
        self.out += b"t"
        self._put()
        self.out += b"Q"  # BINPERSID
        self.integer(0)
        self.int_tuple(shape)
        strides = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) for i in range(len(shape)))
        self.int_tuple(strides)
        self.out += b"\x89"  # NEWFALSE
        self.empty_ordered_dict()
        self.out += b"t"
        self._put()
        self.out += b"R"
        self._put()


def _state_dict_pickle(state: Mapping[str, np.ndarray], storage_types: list[str]) -> bytes:
    """data.pkl for `{"model": OrderedDict(state)}`; tensor i uses storage key str(i)."""
    w = _PickleWriter()
    w.out += b"}"  # EMPTY_DICT
    w._put()
    w.string("model")
    w.empty_ordered_dict()
    items = list(state.items())
    for start in range(0, len(items), 1000):  # CPython batches SETITEMS by 1000
        batch = items[start:start + 1000]
        if len(batch) > 1:
            w.out += b"("
        for i, (key, arr) in enumerate(batch, start):
            w.string(key)
            w.tensor(storage_types[i], str(i), arr.shape)
        w.out += b"u" if len(batch) > 1 else b"s"
    w.out += b"s."  # SETITEM of "model", STOP
    return bytes(w.out)


class _TorchZipWriter:
    """Writes records the way PyTorch's writer does: stored (uncompressed), data 64-byte aligned via an
    'FB' padding extra field, CRC and sizes in a data descriptor, zip64 end records, zeroed timestamps."""

    def __init__(self, f):
        self.f = f
        self.entries: list[tuple[bytes, int, int, int]] = []  # name, crc, size, header offset

    def add(self, name: str, data: bytes) -> None:
        offset = self.f.tell()
        bname = name.encode("utf-8")
        pad = -(offset + 30 + len(bname) + 4) % _ALIGNMENT
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data)
        self.f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0x0808, 0, 0, 0, 0, 0, 0, len(bname), len(extra)))
        self.f.write(bname + extra)
        self.f.write(data)
        self.f.write(struct.pack("<IIII", 0x08074B50, crc, len(data), len(data)))
        self.entries.append((bname, crc, len(data), offset))

    def close(self) -> None:
        cd_offset = self.f.tell()
        for bname, crc, size, offset in self.entries:
            self.f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0x0808, 0, 0, 0, crc, size, size,
                                     len(bname), 0, 0, 0, 0, 0, offset))
            self.f.write(bname)
        cd_size = self.f.tell() - cd_offset
        n = len(self.entries)
        eocd64 = self.f.tell()
        self.f.write(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 0x002D, 0, 0, n, n, cd_size, cd_offset))
        self.f.write(struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1))
        self.f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF),
                                 min(cd_size, 0xFFFFFFFF), min(cd_offset, 0xFFFFFFFF), 0))


def _with_num_batches_tracked(state: Mapping[str, np.ndarray]) -> OrderedDict[str, np.ndarray]:
    """Insert `P.num_batches_tracked` (int64 0) after every `P.running_var` that lacks one, as PyTorch's
    BatchNorm state_dict has it (its strict `load_state_dict` requires the key)."""
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in state.items():
        out[k] = v
        if k.endswith("running_var"):
            nbt = k[: -len("running_var")] + "num_batches_tracked"
            if nbt not in state:
                out[nbt] = np.array(0, dtype=np.int64)
    return out


def _default_archive_name(path: Path) -> str:
    return path.stem if path.stem and not path.stem.startswith(".") else "archive"


def save_pth(state_dict: Mapping[str, np.ndarray], path: str | os.PathLike, archive_name: str | None = None,
             add_num_batches_tracked: bool = True, serialization_id: str | None = None) -> None:
    """Write `{"model": state_dict}` as a `torch.save` zip checkpoint (readable by `torch.load(path,
    weights_only=True)` and by `read_pth`).

    Layout as PyTorch 2.x writes it: records `<archive>/data.pkl` (pickle protocol 2),
    `.format_version`, `.storage_alignment`, `byteorder` ("little"), `data/<i>` (one little-endian raw
    storage per tensor), `version` ("3"), `.data/serialization_id`. `archive_name` defaults to the file
    name without extension. With `add_num_batches_tracked`, every BatchNorm (`P.running_var`) gets the
    int64 scalar `P.num_batches_tracked = 0` that PyTorch's strict loading requires. `serialization_id`
    (40 decimal digits) defaults to a hash of the content, so equal weights give equal files.
    The file is written to a temporary name and renamed, so a failed save leaves no partial checkpoint.
    """
    path = Path(path)
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"save_pth needs a mapping name -> array, got {type(state_dict).__name__}")
    if not state_dict:
        raise ValueError("save_pth: the state_dict is empty")
    arrays: OrderedDict[str, np.ndarray] = OrderedDict()
    for k, v in state_dict.items():
        if not isinstance(k, str) or not k:
            raise ValueError(f"save_pth: state_dict keys must be non-empty strings, got {k!r}")
        if not isinstance(v, (np.ndarray, np.generic)):
            raise ValueError(f"save_pth: '{k}' is a {type(v).__name__}, not a NumPy array")
        v = np.asarray(v)
        if v.dtype.newbyteorder("=") not in _DTYPE_STORAGES:
            raise ValueError(f"save_pth: '{k}' has dtype {v.dtype}, which has no PyTorch storage type here")
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise ValueError(f"save_pth: '{k}' contains NaN or infinite values")
        arrays[k] = v
    if add_num_batches_tracked:
        arrays = _with_num_batches_tracked(arrays)
    if archive_name is None:
        archive_name = _default_archive_name(path)
    if not archive_name or "/" in archive_name or "\\" in archive_name or archive_name in (".", ".."):
        raise ValueError(f"save_pth: archive_name must be a plain folder name, got {archive_name!r}")

    storage_types = [_DTYPE_STORAGES[a.dtype.newbyteorder("=")] for a in arrays.values()]
    pickled = _state_dict_pickle(arrays, storage_types)
    blobs = [np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes() for a in arrays.values()]
    if len(pickled) + sum(len(b) + 256 for b in blobs) >= 0xFFFFFFFF:
        raise ValueError("save_pth: checkpoints of 4 GiB or more are not supported")
    if serialization_id is None:
        digest = hashlib.sha256(pickled)
        for b in blobs:
            digest.update(b)
        serialization_id = str(int.from_bytes(digest.digest()[:17], "big") % 10**40).zfill(40)
    if not (isinstance(serialization_id, str) and serialization_id.isdigit()):
        raise ValueError(f"save_pth: serialization_id must be a string of digits, got {serialization_id!r}")

    pre = archive_name + "/"
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            zw = _TorchZipWriter(f)
            zw.add(pre + "data.pkl", pickled)
            zw.add(pre + ".format_version", b"1")
            zw.add(pre + ".storage_alignment", str(_ALIGNMENT).encode())
            zw.add(pre + "byteorder", b"little")
            for i, blob in enumerate(blobs):
                zw.add(f"{pre}data/{i}", blob)
            zw.add(pre + "version", b"3\n")
            zw.add(pre + ".data/serialization_id", serialization_id.encode())
            zw.close()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
