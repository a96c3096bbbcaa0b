"""`read_pth` on hand-crafted checkpoints: malicious pickles are refused before they run, malformed archives
and tensor records give clear errors, and strided / offset / big-endian / bfloat16 tensors read correctly.

Checkpoints are crafted with CPython's own pickler and a stand-in `torch` module placed in `sys.modules`,
so they do not depend on the package's writer.
"""

import io
import os
import pickle
import sys
import tarfile
import types
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yolox_np.weights import UnsafeCheckpointError, allowed_globals, read_pth

STORAGE_DTYPES = {"FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "LongStorage": "i8",
                  "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
                  "BoolStorage": "?", "BFloat16Storage": "u2"}


# ------------------------------------------------------------------------------------------ crafting
@pytest.fixture
def fake_torch(monkeypatch):
    """A stand-in `torch` / `torch._utils` whose globals CPython's pickler can name (never called)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def never(*args):
        raise AssertionError("the stand-in torch must never be called")

    for name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
        fn = types.FunctionType(never.__code__, {}, name)
        fn.__module__, fn.__qualname__ = "torch._utils", name
        setattr(utils, name, fn)
    for name in STORAGE_DTYPES:
        setattr(torch, name, type(name, (), {"__module__": "torch", "__qualname__": name}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class Storage:
    def __init__(self, type_name, key, values, byteorder="<"):
        self.type_name, self.key = type_name, key
        values = np.asarray(values, dtype=np.dtype(STORAGE_DTYPES[type_name]).newbyteorder(byteorder))
        self.numel, self.raw = values.size, values.tobytes()


class Tensor:
    def __init__(self, storage, offset, size, stride, as_parameter=False):
        self.args = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())
        self.as_parameter = as_parameter

    def __reduce__(self):
        utils = sys.modules["torch._utils"]
        rebuilt = (utils._rebuild_tensor_v2, self.args)
        if self.as_parameter:
            return utils._rebuild_parameter, (_Reduced(rebuilt), False, OrderedDict())
        return rebuilt


class _Reduced:
    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


class Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def pickle_checkpoint(obj, protocol=2) -> tuple[bytes, list]:
    storages = []

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Storage):
                storages.append(o)
                return ("storage", getattr(sys.modules["torch"], o.type_name), o.key, "cpu", o.numel)
            return None

    buf = io.BytesIO()
    Pickler(buf, protocol=protocol).dump(obj)
    return buf.getvalue(), storages


def write_archive(path, data_pkl: bytes, storages=(), byteorder="little", archive="archive", extra=None):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{archive}/data.pkl", data_pkl)
        if byteorder is not None:
            zf.writestr(f"{archive}/byteorder", byteorder)
        for s in {s.key: s for s in storages}.values():
            zf.writestr(f"{archive}/data/{s.key}", s.raw)
        for name, data in (extra or {}).items():
            zf.writestr(f"{archive}/{name}", data)
        zf.writestr(f"{archive}/version", "3\n")
    return path


def craft(path, obj, protocol=2, **kw):
    data, storages = pickle_checkpoint(obj, protocol)
    return write_archive(path, data, storages, **kw)


# ------------------------------------------------------------------------------------------ refusals
PAYLOADS = ["os.system", "builtins.exec", "builtins.eval"]


def _evil(kind, marker):
    code = f"open({str(marker)!r}, 'w').close()"
    if kind == "os.system":
        return Evil(os.system, f"touch '{marker}'")
    return Evil(exec if kind == "builtins.exec" else eval, code)


@pytest.mark.parametrize("kind", PAYLOADS)
def test_payload_is_live_under_a_plain_unpickler(tmp_path, kind):
    """Control: the crafted payload really runs when unpickled without restrictions."""
    marker = tmp_path / "pwned"
    data, _ = pickle_checkpoint({"model": _evil(kind, marker)})
    pickle.loads(data)
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("kind", PAYLOADS)
def test_malicious_global_is_refused_before_it_runs(tmp_path, fake_torch, kind, protocol):
    marker = tmp_path / "pwned"
    entries = OrderedDict(b=_evil(kind, marker))
    if protocol >= 1:  # protocol 0 cannot express torch's tuple persistent ids
        entries["a"] = Tensor(Storage("FloatStorage", "0", [1.0, 2.0]), 0, (2,), (1,))
        entries.move_to_end("b")
    path = craft(tmp_path / "evil.pth", {"model": entries}, protocol)
    with pytest.raises(UnsafeCheckpointError) as err:
        read_pth(path)
    msg = str(err.value)
    assert "refused as unsafe" in msg and str(path) in msg
    named = {"os.system": "posix.system"}.get(kind, kind)
    if protocol < 3:  # pickle writes Python 2 module names below protocol 3
        named = named.replace("builtins.", "__builtin__.")
    assert f"'{named}'" in msg
    assert not marker.exists()
    assert isinstance(err.value, ValueError)


def test_inst_opcode_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    data = b"(V" + f"touch '{marker}'".encode() + b"\nios\nsystem\n."  # protocol-0 INST: os.system(arg)
    path = write_archive(tmp_path / "inst.pth", data)
    with pytest.raises(UnsafeCheckpointError, match=r"os\.system"):
        read_pth(path)
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [
    ("torch.nn", "Module"),
    ("torch.nn.modules.conv", "Conv2d"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch.serialization", "_get_layout"),
    ("torch", "load"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("builtins", "getattr"),
    ("collections", "defaultdict"),
    ("__builtin__", "eval"),
    ("subprocess", "Popen"),
])
def test_any_global_outside_the_allow_list_is_refused(tmp_path, module, name):
    data = b"\x80\x02}X\x05\x00\x00\x00modelc" + f"{module}\n{name}\n".encode() + b")Rs."
    path = write_archive(tmp_path / "g.pth", data)
    with pytest.raises(UnsafeCheckpointError, match="refused as unsafe") as err:
        read_pth(path)
    assert f"'{module}.{name}'" in str(err.value)


def test_allow_list_is_exactly_the_tensor_globals():
    allowed = set(allowed_globals())
    assert {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch.FloatStorage",
            "torch.LongStorage"} <= allowed
    assert all(g.startswith(("torch.", "collections.OrderedDict")) for g in allowed)
    assert not any(g.split(".")[0] in ("builtins", "os", "posix", "subprocess", "numpy") for g in allowed)


def test_legacy_non_zip_pickle_is_refused(tmp_path):
    path = tmp_path / "legacy.pth"
    magic, protocol_version = 0x1950A86A20F9469CFC6C, 1001
    path.write_bytes(pickle.dumps(magic, protocol=2) + pickle.dumps(protocol_version, protocol=2)
                     + pickle.dumps({"model": {}}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="refused as unsafe.*legacy"):
        read_pth(path)


def test_legacy_tar_checkpoint_is_refused(tmp_path):
    path = tmp_path / "old.tar.pth"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("pickle")
        payload = pickle.dumps({"model": {}}, protocol=2)
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    with pytest.raises(UnsafeCheckpointError, match="tar"):
        read_pth(path)


# ------------------------------------------------------------------------------------------ bad archives
def test_truncated_zip_names_the_file(tmp_path, fake_torch):
    good = craft(tmp_path / "good.pth", {"model": {"w": Tensor(Storage("FloatStorage", "0", np.arange(500)),
                                                                0, (500,), (1,))}})
    raw = good.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cut.pth.*corrupt or truncated"):
        read_pth(cut)


def test_corrupted_storage_bytes_fail_the_crc(tmp_path, fake_torch):
    values = np.arange(256, dtype=np.float32)
    path = craft(tmp_path / "c.pth", {"model": {"w": Tensor(Storage("FloatStorage", "0", values), 0, (256,),
                                                                   (1,))}})
    raw = bytearray(path.read_bytes())
    at = bytes(raw).index(values.tobytes()[400:416])
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="c.pth") as err:
        read_pth(path)
    assert not isinstance(err.value, UnsafeCheckpointError)


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "nodata.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/version", "3\n")
        zf.writestr("archive/data/0", b"\0" * 8)
    with pytest.raises(ValueError, match=r"nodata.pth.*data\.pkl"):
        read_pth(path)


def test_torchscript_archive_is_named(tmp_path):
    path = write_archive(tmp_path / "ts.pt", b"\x80\x02}.", extra={"constants.pkl": b"\x80\x02)."})
    with pytest.raises(ValueError, match="TorchScript"):
        read_pth(path)


@pytest.mark.parametrize("content", [b"", b"hello, world", bytes(range(256))])
def test_non_checkpoint_files(tmp_path, content):
    path = tmp_path / "x.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="x.pth"):
        read_pth(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_pth("/nonexistent/weights.pth")


def test_garbage_pickle_in_a_valid_zip(tmp_path):
    path = write_archive(tmp_path / "g.pth", b"\x80\x02}q\x00(X\x01")
    with pytest.raises(ValueError, match="g.pth") as err:
        read_pth(path)
    assert not isinstance(err.value, UnsafeCheckpointError)


# ------------------------------------------------------------------------------------------ tensor records
@pytest.mark.parametrize("offset, size, stride", [
    (0, (3, 4), (4, 1)),  # needs 12 elements
    (5, (2, 3), (3, 1)),  # 5 + 5 = element 10
    (0, (2, 2, 2), (0, 5, 1)),  # element 6
])
def test_views_past_the_end_of_the_storage_are_refused(tmp_path, fake_torch, offset, size, stride):
    t = Tensor(Storage("FloatStorage", "0", np.arange(6)), offset, size, stride)
    path = craft(tmp_path / "oob.pth", {"model": {"w": t}})
    with pytest.raises(ValueError, match="reach element"):
        read_pth(path)


def test_huge_zero_stride_view_is_refused_before_allocating(tmp_path, fake_torch):
    t = Tensor(Storage("FloatStorage", "0", [1.0]), 0, (100_000, 100_000, 100_000), (0, 0, 0))
    path = craft(tmp_path / "bomb.pth", {"model": {"w": t}})
    with pytest.raises(ValueError, match="refusing to expand"):
        read_pth(path)


def test_storage_record_of_the_wrong_size(tmp_path, fake_torch):
    s = Storage("FloatStorage", "0", np.arange(6))
    data, _ = pickle_checkpoint({"model": {"w": Tensor(s, 0, (6,), (1,))}})
    s.raw = s.raw[:-4]
    path = write_archive(tmp_path / "short.pth", data, [s])
    with pytest.raises(ValueError, match=r"data/0 has 20 bytes"):
        read_pth(path)


def test_missing_storage_record(tmp_path, fake_torch):
    data, _ = pickle_checkpoint({"model": {"w": Tensor(Storage("FloatStorage", "7", [1.0]), 0, (1,), (1,))}})
    path = write_archive(tmp_path / "nostorage.pth", data, [])
    with pytest.raises(ValueError, match=r"data/7.*missing"):
        read_pth(path)


@pytest.mark.parametrize("size, stride", [((2, 2), (1,)), ((2.0,), (1,)), ((2,), (-1,))])
def test_malformed_size_or_stride(tmp_path, fake_torch, size, stride):
    t = Tensor(Storage("FloatStorage", "0", np.arange(4)), 0, (1,), (1,))
    t.args = (t.args[0], 0, size, stride, False, OrderedDict())
    path = craft(tmp_path / "m.pth", {"model": {"w": t}})
    with pytest.raises(ValueError, match="malformed tensor record"):
        read_pth(path)


def _reference_view(storage, offset, size, stride):
    """Naive element-by-element reading of a strided view."""
    out = np.empty(size, dtype=storage.dtype)
    for idx in np.ndindex(*size):
        out[idx] = storage[offset + sum(i * s for i, s in zip(idx, stride))]
    return out


@st.composite
def strided_views(draw):
    ndim = draw(st.integers(0, 3))
    size = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    stride = tuple(draw(st.lists(st.integers(0, 7), min_size=ndim, max_size=ndim)))
    offset = draw(st.integers(0, 5))
    reach = offset + sum((n - 1) * s for n, s in zip(size, stride)) if 0 not in size else 0
    numel = reach + 1 + draw(st.integers(0, 3))
    type_name = draw(st.sampled_from(["FloatStorage", "DoubleStorage", "LongStorage", "ShortStorage",
                                      "ByteStorage", "HalfStorage"]))
    byteorder = draw(st.sampled_from(["little", "big"]))
    return type_name, numel, offset, size, stride, byteorder


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(view=strided_views())
def test_strided_offset_views_and_byte_orders_match_a_naive_reading(tmp_path, fake_torch, view):
    type_name, numel, offset, size, stride, byteorder = view
    storage_values = (np.arange(numel) * 3 + 1) % 120
    s = Storage(type_name, "0", storage_values, byteorder="<" if byteorder == "little" else ">")
    path = craft(tmp_path / "v.pth", {"model": OrderedDict(w=Tensor(s, offset, size, stride))},
                 byteorder=byteorder)
    got = read_pth(path)["w"]
    ref = _reference_view(storage_values.astype(STORAGE_DTYPES[type_name]), offset, size, stride)
    assert got.shape == size and got.dtype == np.dtype(STORAGE_DTYPES[type_name])
    assert got.dtype.isnative and got.flags.c_contiguous and got.flags.writeable
    np.testing.assert_array_equal(got, ref)


def test_storage_shared_by_two_tensors(tmp_path, fake_torch):
    s = Storage("FloatStorage", "0", np.arange(12))
    sd = OrderedDict(a=Tensor(s, 0, (3, 4), (4, 1)), b=Tensor(s, 2, (4,), (3,)))
    out = read_pth(craft(tmp_path / "shared.pth", {"model": sd}))
    np.testing.assert_array_equal(out["a"], np.arange(12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(out["b"], [2, 5, 8, 11])
    out["a"][0, 0] = 99  # fresh copies, not views of one buffer
    assert out["b"][0] == 2


def test_bfloat16_is_widened_to_float32(tmp_path, fake_torch):
    bits = [0x3F80, 0xC020, 0x0000, 0x4049]  # 1.0, -2.5, 0.0, 3.140625 in bfloat16
    out = read_pth(craft(tmp_path / "bf.pth", {"model": {"w": Tensor(Storage("BFloat16Storage", "0", bits), 0,
                                                                          (4,), (1,))}}))
    assert out["w"].dtype == np.float32
    np.testing.assert_array_equal(out["w"], [1.0, -2.5, 0.0, 3.140625])


def test_scalar_parameter_bare_state_dict_and_extra_entries(tmp_path, fake_torch):
    nbt = Tensor(Storage("LongStorage", "0", [7]), 0, (), ())
    w = Tensor(Storage("FloatStorage", "1", [0.5, 1.5]), 0, (2,), (1,), as_parameter=True)
    bare = read_pth(craft(tmp_path / "bare.pth", OrderedDict([("bn.num_batches_tracked", nbt), ("w", w)])))
    assert list(bare) == ["bn.num_batches_tracked", "w"]
    assert bare["bn.num_batches_tracked"].shape == () and bare["bn.num_batches_tracked"].dtype == np.int64
    assert int(bare["bn.num_batches_tracked"]) == 7
    np.testing.assert_array_equal(bare["w"], [0.5, 1.5])
    full = {"model": OrderedDict(w=w), "start_epoch": 12, "best_ap": 25.8,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0, 1]}]}}
    out = read_pth(craft(tmp_path / "full.pth", full))
    assert list(out) == ["w"]


def test_non_tensor_values_in_a_bare_state_dict(tmp_path, fake_torch):
    path = craft(tmp_path / "odd.pth", {"epoch": 3, "lr": 0.1})
    with pytest.raises(ValueError, match="state_dict"):
        read_pth(path)
