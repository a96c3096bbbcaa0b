"""Weights I/O: the official .pth / fused .npz / ONNX assets, the PyTorch-format writer, .npz, BatchNorm
folding, and the model-level `load_weights` / `save_weights` / `fuse_model` / `conv_call_order`."""

import csv
import pickletools
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from yolox_np import nn
from yolox_np.weights import (
    conv_call_order,
    detect_format,
    fold_bn,
    fold_state_dict,
    fuse_model,
    load_weights,
    onnx_conv_state_dict,
    read_npz,
    read_onnx,
    read_pth,
    save_npz,
    save_pth,
    save_weights,
    unfold_state_dict,
    unfold_to_identity_bn,
)

EPS = 1e-3
PTH, NPZ, ONNX, TSV = ("yolox_nano_from_onnx.pth", "yolox_nano_fused.npz", "yolox_nano.onnx",
                       "yolox_nano_layers.tsv")


@pytest.fixture
def nano(assets_dir):
    return assets_dir / "yolox_nano"


def _layers(nano):
    with open(nano / TSV, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _globals(data_pkl: bytes) -> set[str]:
    return {arg for op, arg, _ in pickletools.genops(data_pkl) if op.name == "GLOBAL"}


def _data_offsets(path):
    """Start of every record's data, from the local headers (what an mmap reader needs aligned)."""
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        out = {}
        for info in zf.infolist():
            h = info.header_offset
            name_len, extra_len = int.from_bytes(raw[h + 26:h + 28], "little"), int.from_bytes(raw[h + 28:h + 30],
                                                                                              "little")
            out[info.filename] = h + 30 + name_len + extra_len
    return out


# ----------------------------------------------------------------------------------------- official assets
def test_official_checkpoint_reads_642_entries(nano):
    sd = read_pth(nano / PTH)
    assert len(sd) == 642
    assert sd["backbone.backbone.stem.conv.conv.weight"].shape == (16, 12, 3, 3)
    assert sd["backbone.backbone.dark2.0.dconv.conv.weight"].shape == (16, 1, 3, 3)
    assert sd["backbone.backbone.dark2.0.pconv.conv.weight"].shape == (32, 16, 1, 1)
    assert sd["head.cls_preds.0.weight"].shape == (80, 64, 1, 1) and sd["head.cls_preds.0.bias"].shape == (80,)
    counters = [k for k in sd if k.endswith("num_batches_tracked")]
    assert len(counters) == 104
    assert all(sd[k].shape == () and sd[k].dtype == np.int64 and sd[k] == 0 for k in counters)
    assert all(v.dtype == np.float32 for k, v in sd.items() if k not in counters)
    # identity BN statistics, as the asset README describes them
    assert all(np.all(sd[k] == np.float32(1 - EPS)) for k in sd if k.endswith("running_var"))
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert sum(v.size for k, v in sd.items() if not k.endswith(buffers)) == 912_159  # spec §4.2, Nano


def test_folding_the_official_checkpoint_gives_the_fused_npz(nano):
    sd = read_pth(nano / PTH)
    fused = np.load(nano / NPZ)
    assert len(fused.files) == 226
    folded = fold_state_dict(sd, eps=EPS)
    assert set(folded) == set(fused.files)
    for key in fused.files:
        np.testing.assert_allclose(folded[key], fused[key], rtol=1e-6, atol=1e-7, err_msg=key)
        assert folded[key].dtype == np.float32
    # the same numbers from the formula written out here, independently of fold_bn
    for key in fused.files:
        if key.endswith(".conv.weight"):
            p = key[: -len(".conv.weight")]
            std = np.sqrt(sd[f"{p}.bn.running_var"].astype(np.float64) + EPS)
            gamma, beta, mean = (sd[f"{p}.bn.{s}"].astype(np.float64) for s in ("weight", "bias", "running_mean"))
            w = sd[key] * (gamma / std)[:, None, None, None]
            b = beta - gamma * mean / std
            np.testing.assert_allclose(w, fused[key], rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(b, fused[f"{p}.conv.bias"], rtol=1e-6, atol=1e-7)


def test_unfolding_the_fused_npz_gives_the_official_checkpoint(nano):
    sd = read_pth(nano / PTH)
    unfolded = unfold_state_dict(read_npz(nano / NPZ), eps=EPS)
    expected = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert set(unfolded) == set(expected)
    for k, v in expected.items():
        assert unfolded[k].dtype == v.dtype
        np.testing.assert_array_equal(unfolded[k], v, err_msg=k)


def test_rewriting_the_official_checkpoint_is_byte_identical(nano, tmp_path):
    """save_pth reproduces, byte for byte, the file PyTorch 2.14's torch.save wrote (given its random id)."""
    with zipfile.ZipFile(nano / PTH) as zf:
        sid = zf.read("yolox_nano_from_onnx/.data/serialization_id").decode()
    out = tmp_path / "copy.pth"
    save_pth(read_pth(nano / PTH), out, archive_name="yolox_nano_from_onnx", serialization_id=sid)
    assert out.read_bytes() == (nano / PTH).read_bytes()


def test_written_archive_has_the_official_layout(nano, tmp_path):
    official = nano / PTH
    sd = OrderedDict((k, v) for k, v in read_pth(official).items() if not k.endswith("num_batches_tracked"))
    out = tmp_path / "mine.pth"
    save_pth(sd, out)  # counters re-added by default, archive named after the file
    with zipfile.ZipFile(official) as a, zipfile.ZipFile(out) as b:
        names_a = [n.split("/", 1)[1] for n in a.namelist()]
        names_b = [n.split("/", 1)[1] for n in b.namelist()]
        assert {n.split("/", 1)[0] for n in b.namelist()} == {"mine"}
        assert names_a == names_b
        for name in ("version", "byteorder", ".format_version", ".storage_alignment"):
            assert a.read(f"yolox_nano_from_onnx/{name}") == b.read(f"mine/{name}")
        pkl_a, pkl_b = a.read("yolox_nano_from_onnx/data.pkl"), b.read("mine/data.pkl")
        assert _globals(pkl_a) == _globals(pkl_b) == {
            "collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch FloatStorage", "torch LongStorage"}
        assert [op.name for op, _, _ in pickletools.genops(pkl_a)] == [op.name for op, _, _ in
                                                                      pickletools.genops(pkl_b)]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in b.infolist())
        assert b.testzip() is None
    assert all(off % 64 == 0 for name, off in _data_offsets(out).items() if "/data/" in name)
    back = read_pth(out)
    assert list(back) == list(read_pth(official))


def test_onnx_conv_nodes_match_the_layer_table(nano):
    weights = read_onnx(nano / ONNX)
    rows = _layers(nano)
    assert len(weights.convs) == len(rows) == 113
    for row, conv in zip(rows, weights.convs):
        shape = tuple(int(s) for s in row["weight_shape"].split("x"))
        s, p = int(row["stride"]), int(row["pad"])
        assert (conv.weight_name, conv.bias_name) == (row["onnx_weight"], row["onnx_bias"]), row["index"]
        assert conv.weight_shape == shape and conv.kernel_size == shape[2:]
        assert conv.groups == int(row["groups"]) and conv.strides == (s, s) and conv.pads == (p, p, p, p)
        assert conv.dilations == (1, 1)
        assert weights.initializers[conv.weight_name].shape == shape


def test_onnx_weights_named_by_the_table_equal_the_fused_npz(nano):
    rows = _layers(nano)
    named = onnx_conv_state_dict(read_onnx(nano / ONNX), [r["official_conv"] for r in rows])
    fused = np.load(nano / NPZ)
    assert list(named) == list(fused.files)  # both in forward-call order
    for key in fused.files:
        np.testing.assert_array_equal(named[key], fused[key], err_msg=key)


def test_formats_are_detected_by_content(nano, tmp_path):
    assert detect_format(nano / PTH) == "pth"
    assert detect_format(nano / NPZ) == "npz"
    assert detect_format(nano / ONNX) == "onnx"
    misnamed = tmp_path / "weights.pth"
    misnamed.write_bytes((nano / NPZ).read_bytes())
    assert detect_format(misnamed) == "npz"


@pytest.mark.parametrize("content", [b"", b"just some text\n", bytes(range(200)), b"\x08" + b"\xff" * 20])
def test_unrecognised_files_name_the_supported_formats(tmp_path, content):
    path = tmp_path / "w.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"w\.bin.*supported formats: PyTorch \.pth"):
        detect_format(path)


def test_zip_that_is_neither_checkpoint_nor_npz(tmp_path):
    path = tmp_path / "w.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=r"w\.zip.*neither"):
        detect_format(path)
    with pytest.raises(FileNotFoundError):
        detect_format(tmp_path / "absent.pth")


def test_torch_load_accepts_the_written_file(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the writer is checked against the "
                                                "official file's bytes instead)")
    sd = OrderedDict([("a.weight", np.arange(6, dtype=np.float32).reshape(2, 3)),
                      ("bn.running_var", np.ones(2, np.float32)), ("c", np.array(3, np.int64))])
    save_pth(sd, tmp_path / "t.pth")
    loaded = torch.load(tmp_path / "t.pth", weights_only=True)["model"]
    assert list(loaded) == ["a.weight", "bn.running_var", "bn.num_batches_tracked", "c"]
    for k, v in sd.items():
        np.testing.assert_array_equal(loaded[k].numpy(), v)


# ----------------------------------------------------------------------------------------- writer round trips
DTYPES = [np.float32, np.float64, np.float16, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_]


@st.composite
def state_dicts(draw):
    n = draw(st.integers(1, 5))
    out = OrderedDict()
    for i in range(n):
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
        elements = st.floats(-1e4, 1e4, width=16 if dtype == np.float16 else 32) if dtype.kind == "f" else None
        out[f"layer{i}.{draw(st.sampled_from(['weight', 'bias', 'running_mean']))}"] = draw(
            hnp.arrays(dtype, shape, elements=elements))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sd=state_dicts())
def test_pth_round_trip_is_bit_exact(tmp_path, sd):
    path = tmp_path / "rt.pth"
    save_pth(sd, path, add_num_batches_tracked=False)
    back = read_pth(path)
    assert list(back) == list(sd)
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        assert back[k].tobytes() == np.ascontiguousarray(v).tobytes()


def test_non_contiguous_and_big_endian_arrays_are_written_in_order(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    sd = OrderedDict(t=base.T, s=base[::2, 1::3], be=np.arange(5, dtype=">i4"))
    save_pth(sd, tmp_path / "v.pth")
    back = read_pth(tmp_path / "v.pth")
    np.testing.assert_array_equal(back["t"], base.T)
    np.testing.assert_array_equal(back["s"], base[::2, 1::3])
    np.testing.assert_array_equal(back["be"], np.arange(5))
    assert back["be"].dtype == np.int32


def test_num_batches_tracked_is_added_after_every_running_var(tmp_path):
    sd = OrderedDict([("a.conv.weight", np.ones((2, 1, 1, 1), np.float32))]
                     + [(f"a.bn.{s}", np.ones(2, np.float32)) for s in ("weight", "bias", "running_mean",
                                                                         "running_var")]
                     + [("b.weight", np.ones(3, np.float32))])
    save_pth(sd, tmp_path / "n.pth")
    back = read_pth(tmp_path / "n.pth")
    assert list(back) == [*sd][:5] + ["a.bn.num_batches_tracked", "b.weight"]
    assert back["a.bn.num_batches_tracked"].dtype == np.int64 and back["a.bn.num_batches_tracked"].shape == ()


@pytest.mark.parametrize("bad, match", [
    ({}, "empty"),
    ({"w": np.array([1.0, np.nan], np.float32)}, "'w' contains NaN"),
    ({"w": np.array([np.inf], np.float64)}, "'w' contains NaN"),
    ({"w": np.array(["a"], dtype=object)}, "dtype object"),
    ({"w": np.array([1], np.uint16)}, "dtype uint16"),
    ({"w": [1.0, 2.0]}, "not a NumPy array"),
    ({3: np.ones(2)}, "strings"),
])
def test_save_pth_refuses_bad_input(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        save_pth(bad, tmp_path / "bad.pth")
    assert not list(tmp_path.iterdir())  # nothing partial left behind


def test_archive_name_must_be_a_plain_folder(tmp_path):
    with pytest.raises(ValueError, match="archive_name"):
        save_pth({"w": np.ones(1, np.float32)}, tmp_path / "a.pth", archive_name="a/b")


def test_npz_round_trip_and_refusals(tmp_path):
    sd = OrderedDict([("z.weight", np.arange(6, dtype=np.float32).reshape(2, 3)), ("a.count", np.array(4))])
    path = tmp_path / "w.weights"
    save_npz(sd, path)
    assert path.exists() and not (tmp_path / "w.weights.npz").exists()
    back = read_npz(path)
    assert list(back) == ["z.weight", "a.count"]
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])
        assert back[k].dtype == sd[k].dtype
    with np.load(path, allow_pickle=False) as plain:
        np.testing.assert_array_equal(plain["z.weight"], sd["z.weight"])
    with pytest.raises(ValueError, match="object array"):
        save_npz({"o": np.array([None], dtype=object)}, tmp_path / "o.npz")
    with pytest.raises(ValueError, match="NaN"):
        save_npz({"w": np.array([np.nan])}, tmp_path / "n.npz")
    pickled = tmp_path / "p.npz"
    np.savez(pickled, o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"p\.npz"):
        read_npz(pickled)
    junk = tmp_path / "j.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"j\.npz"):
        read_npz(junk)


# ----------------------------------------------------------------------------------------- folding helpers
def _conv_naive(x, w, b=None):
    """Stride-1, no-padding, groups=1 convolution by sliding windows (float64 reference)."""
    k = w.shape[2]
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # N, C, H', W', k, k
    y = np.einsum("nchwij,ocij->nohw", win, w)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


@settings(max_examples=50, deadline=None)
@given(data=st.data(), cout=st.integers(1, 4), cin=st.integers(1, 3), k=st.sampled_from([1, 3]),
       with_conv_bias=st.booleans(), eps=st.sampled_from([1e-5, 1e-3, 0.1]))
def test_fold_bn_equals_conv_then_batchnorm(data, cout, cin, k, with_conv_bias, eps):
    floats = st.floats(-2, 2, allow_nan=False)
    w = data.draw(hnp.arrays(np.float64, (cout, cin, k, k), elements=floats))
    x = data.draw(hnp.arrays(np.float64, (2, cin, k + 2, k + 1), elements=floats))
    gamma, beta, mean = (data.draw(hnp.arrays(np.float64, cout, elements=floats)) for _ in range(3))
    var = data.draw(hnp.arrays(np.float64, cout, elements=st.floats(0, 3)))
    cb = data.draw(hnp.arrays(np.float64, cout, elements=floats)) if with_conv_bias else None
    y = _conv_naive(x, w, cb)
    expected = (y - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + eps) * gamma.reshape(
        1, -1, 1, 1) + beta.reshape(1, -1, 1, 1)
    fw, fb = fold_bn(w, gamma, beta, mean, var, eps, conv_b=cb)
    np.testing.assert_allclose(_conv_naive(x, fw, fb), expected, rtol=1e-9, atol=1e-9)
    # unfolding then folding again gives the folded conv back
    uw, bn = unfold_to_identity_bn(fw, fb, eps)
    rw, rb = fold_bn(uw, bn["weight"], bn["bias"], bn["running_mean"], bn["running_var"], eps)
    np.testing.assert_allclose(rw, fw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rb, fb, rtol=1e-12, atol=1e-12)


def test_fold_bn_hand_computed():
    w = np.array([[[[2.0]]], [[[-1.0]]]], np.float32)  # (2, 1, 1, 1)
    fw, fb = fold_bn(w, bn_w=[3.0, 1.0], bn_b=[0.5, 0.0], mean=[1.0, -2.0], var=[3.0, 0.0], eps=1.0)
    # channel 0: s = 3 / sqrt(4) = 1.5 -> w 3.0, b (0 - 1) * 1.5 + 0.5 = -1.0; channel 1: s = 1 -> w -1, b 2
    np.testing.assert_array_equal(fw.ravel(), [3.0, -1.0])
    np.testing.assert_array_equal(fb, [-1.0, 2.0])
    assert fw.dtype == fb.dtype == np.float32


@pytest.mark.parametrize("kwargs, match", [
    (dict(conv_w=np.ones((2, 1, 1)), bn_w=np.ones(2)), "shape"),
    (dict(bn_w=np.ones(3)), r"bn weight must have shape \(2,\)"),
    (dict(var=np.array([1.0, -5.0])), "channel 1"),
    (dict(mean=np.array([np.nan, 0.0])), "running_mean contains NaN"),
    (dict(eps=-1.0), "eps"),
])
def test_fold_bn_validates(kwargs, match):
    args = dict(conv_w=np.ones((2, 1, 1, 1)), bn_w=np.ones(2), bn_b=np.zeros(2), mean=np.zeros(2), var=np.ones(2),
                eps=1e-3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fold_bn(**args)


def test_unfold_validates():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        unfold_to_identity_bn(np.ones((3, 1, 1, 1)), np.ones(2), 1e-3)
    with pytest.raises(ValueError, match="eps"):
        unfold_to_identity_bn(np.ones((1, 1, 1, 1)), np.ones(1), 1.5)


# ----------------------------------------------------------------------------------------- small hand-built model
class TinyBaseConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1, fused=False, rng=None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups, bias=fused, rng=rng)
        self.bn = nn.Identity() if fused else nn.BatchNorm2d(cout, eps=EPS)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class TinyNet(nn.Module):
    """`late` is registered first but runs third: registration order != call order."""

    CALL_ORDER = ["stem.conv", "dw.conv", "late.conv", "pred"]

    def __init__(self, fused=False, seed=0, dw_groups=8):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.late = TinyBaseConv(8, 8, 1, fused=fused, rng=rng)
        self.stem = TinyBaseConv(3, 8, 3, 2, fused=fused, rng=rng)
        self.dw = TinyBaseConv(8, 8, 3, groups=dw_groups, fused=fused, rng=rng)
        self.pred = nn.Conv2d(8, 5, 1, rng=rng)

    def forward(self, x):
        return self.pred(self.late(self.dw(self.stem(x))))


def _randomize_bn(model, seed=1):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = rng.uniform(0.5, 1.5, n).astype(np.float32)
            m.bias.data = rng.normal(0, 0.5, n).astype(np.float32)
            m.running_mean[...] = rng.normal(0, 0.5, n)
            m.running_var[...] = rng.uniform(0.2, 2.0, n)
    return model


def _outputs(model, seed=5):
    x = np.random.default_rng(seed).normal(size=(2, 3, 16, 16)).astype(np.float32)
    return model.eval()(x)


def _assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def test_conv_call_order_follows_the_forward_pass():
    model = TinyNet()
    model.train()
    order = conv_call_order(model, (1, 3, 16, 16))
    assert [name for name, _ in order] == TinyNet.CALL_ORDER
    assert [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)] != TinyNet.CALL_ORDER
    assert order[0][1] is model.stem.conv
    assert all(m.training for m in model.modules())  # mode restored
    assert all("forward" not in m.__dict__ for m in model.modules())  # recorders removed


def test_conv_call_order_refuses_a_conv_called_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.a(self.a(x))

    model = Twice()
    with pytest.raises(ValueError, match=r"'a' \(2 calls\)"):
        conv_call_order(model, (1, 3, 4, 4))
    assert "forward" not in model.a.__dict__
    with pytest.raises(ValueError, match="input_shape"):
        conv_call_order(TinyNet(), (3, 16, 16))


def test_fuse_model_keeps_outputs(tmp_path):
    model = _randomize_bn(TinyNet())
    ref = _outputs(model)
    fused = fuse_model(model)
    assert fused is model
    assert all(isinstance(m.bn, nn.Identity) for m in (model.stem, model.dw, model.late))
    assert "stem.conv.bias" in model.state_dict() and not any(".bn." in k for k in model.state_dict())
    np.testing.assert_allclose(_outputs(model), ref, rtol=1e-4, atol=1e-5)
    # the fused model's keys are those of a model built fused
    assert list(model.state_dict()) == list(TinyNet(fused=True).state_dict())


def test_save_and_load_round_trip(tmp_path):
    model = _randomize_bn(TinyNet(seed=0))
    save_weights(model, tmp_path / "tiny.pth")
    sd = read_pth(tmp_path / "tiny.pth")
    assert sum(k.endswith("num_batches_tracked") for k in sd) == 3
    other = load_weights(TinyNet(seed=9), tmp_path / "tiny.pth")
    _assert_same_state(model, other)


def test_folded_npz_loads_into_the_batchnorm_model(tmp_path):
    model = _randomize_bn(TinyNet())
    ref = _outputs(model)
    save_npz(fold_state_dict(model.state_dict()), tmp_path / "fused.npz")
    fresh = load_weights(TinyNet(seed=3), tmp_path / "fused.npz")
    assert isinstance(fresh.stem.bn, nn.BatchNorm2d)
    np.testing.assert_array_equal(fresh.stem.bn.weight.data, 1)
    np.testing.assert_array_equal(fresh.stem.bn.running_mean, 0)
    np.testing.assert_allclose(fresh.stem.bn.running_var, 1 - EPS)
    np.testing.assert_allclose(_outputs(fresh), ref, rtol=1e-4, atol=1e-5)


def test_official_weights_load_into_a_fused_model_and_fused_models_save_official(tmp_path):
    model = _randomize_bn(TinyNet())
    ref = _outputs(model)
    save_weights(model, tmp_path / "official.pth")
    fused = load_weights(TinyNet(fused=True, seed=4), tmp_path / "official.pth")
    np.testing.assert_allclose(_outputs(fused), ref, rtol=1e-4, atol=1e-5)
    save_weights(fused, tmp_path / "from_fused.pth")
    keys = list(read_pth(tmp_path / "from_fused.pth"))
    assert keys == list(read_pth(tmp_path / "official.pth"))
    back = load_weights(TinyNet(seed=6), tmp_path / "from_fused.pth")
    np.testing.assert_allclose(_outputs(back), ref, rtol=1e-4, atol=1e-5)


def _tiny_onnx(path, model, order=TinyNet.CALL_ORDER, groups_override=None):
    """Export `model` (BN folded) as an ONNX graph with renamed BaseConv initializers, in call order."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    folded = fold_state_dict(model.state_dict())
    modules = dict(model.named_modules())
    nodes, inits, x = [], [], "images"
    for i, name in enumerate(order):
        conv = modules[name]
        renamed = name.endswith(".conv")
        wn, bn = (str(900 + 2 * i), str(901 + 2 * i)) if renamed else (f"{name}.weight", f"{name}.bias")
        inits += [numpy_helper.from_array(folded[f"{name}.weight"], wn),
                  numpy_helper.from_array(folded[f"{name}.bias"], bn)]
        y = f"conv{i}"
        groups = conv.groups if groups_override is None or i != 1 else groups_override
        nodes.append(helper.make_node("Conv", [x, wn, bn], [y], name=f"Conv_{i}", group=groups,
                                      strides=[conv.stride] * 2, pads=[conv.padding] * 4,
                                      kernel_shape=[conv.kernel_size] * 2, dilations=[1, 1]))
        if renamed:  # SiLU as Sigmoid + Mul, like the official export
            nodes += [helper.make_node("Sigmoid", [y], [f"{y}s"]), helper.make_node("Mul", [y, f"{y}s"], [f"{y}a"])]
            y = f"{y}a"
        x = y
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                            [1, 3, 16, 16])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 5, 8, 8])], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def test_onnx_loads_by_call_order_into_both_model_forms(tmp_path):
    model = _randomize_bn(TinyNet())
    ref = _outputs(model)
    path = _tiny_onnx(tmp_path / "tiny.bin", model)
    assert detect_format(path) == "onnx"
    for target in (TinyNet(seed=7), TinyNet(fused=True, seed=8)):
        load_weights(target, path, input_shape=(1, 3, 16, 16))
        np.testing.assert_allclose(_outputs(target), ref, rtol=1e-4, atol=1e-5)


def test_onnx_mismatch_names_the_pair(tmp_path):
    model = TinyNet(dw_groups=1)
    path = _tiny_onnx(tmp_path / "bad.onnx", model)
    with pytest.raises(ValueError, match=r"conv 1 does not match: ONNX node 'Conv_1'.*model conv 'dw\.conv'"):
        load_weights(TinyNet(), path, input_shape=(1, 3, 16, 16))
    wrong_order = _tiny_onnx(tmp_path / "order.onnx", model, ["dw.conv", "stem.conv", "late.conv", "pred"])
    with pytest.raises(ValueError, match="conv 0 does not match"):
        load_weights(TinyNet(dw_groups=1), wrong_order, input_shape=(1, 3, 16, 16))


def test_weights_of_another_model_are_listed(tmp_path):
    sd = TinyNet().state_dict()
    sd["extra.weight"] = np.ones(3, np.float32)
    del sd["pred.bias"]
    sd["stem.conv.weight"] = np.ones((8, 3, 1, 1), np.float32)
    save_pth(sd, tmp_path / "other.pth")
    with pytest.raises(ValueError) as err:
        load_weights(TinyNet(), tmp_path / "other.pth")
    msg = str(err.value)
    assert "other.pth (pth) does not fit TinyNet" in msg
    assert "missing (1): pred.bias" in msg and "unexpected (1): extra.weight" in msg
    assert "stem.conv.weight (file (8, 3, 1, 1), model (8, 3, 3, 3))" in msg


def test_model_level_input_validation(tmp_path):
    with pytest.raises(ValueError, match="yolox_np.nn.Module"):
        load_weights(object(), tmp_path / "x.pth")
    with pytest.raises(FileNotFoundError):
        load_weights(TinyNet(), tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="yolox_np.nn.Module"):
        fuse_model({"not": "a model"})


# ----------------------------------------------------------------------------------------- the real YOLOX-Nano
def _yolox_nano():
    models = pytest.importorskip("yolox_np.models")
    factory = getattr(models, "yolox_nano", None)
    if factory is None:
        pytest.skip("yolox_np.models.yolox_nano does not exist yet")
    return factory


def test_nano_conv_call_order_matches_the_layer_table(nano):
    model = _yolox_nano()()
    names = [name for name, _ in conv_call_order(model)]
    assert names == [r["official_conv"] for r in _layers(nano)]


def test_nano_loads_every_format_to_the_same_state(nano):
    factory = _yolox_nano()
    states = {}
    for f in (PTH, NPZ, ONNX):
        states[f] = load_weights(factory(), nano / f).state_dict()
    official = read_pth(nano / PTH)
    for f, sd in states.items():
        assert list(sd) == [k for k in official if not k.endswith("num_batches_tracked")], f
        for k, v in sd.items():
            np.testing.assert_array_equal(v, official[k], err_msg=f"{f}: {k}")


def test_nano_save_weights_reproduces_the_official_file(nano, tmp_path):
    model = load_weights(_yolox_nano()(), nano / NPZ)
    out = tmp_path / "yolox_nano_from_onnx.pth"
    save_weights(model, out)
    with zipfile.ZipFile(out) as a, zipfile.ZipFile(nano / PTH) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if not name.endswith("serialization_id"):
                assert a.read(name) == b.read(name), name


def test_nano_fusing_keeps_outputs(nano):
    factory = _yolox_nano()
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 128, 128)).astype(np.float32)
    model = load_weights(factory(), nano / PTH).eval()
    model.decode_in_inference = False
    raw = model(x)
    np.testing.assert_allclose(fuse_model(model)(x), raw, atol=1e-4)
    built_fused = load_weights(factory(fused=True), nano / PTH).eval()
    built_fused.decode_in_inference = False
    np.testing.assert_allclose(built_fused(x), raw, atol=1e-4)


@pytest.mark.slow
def test_nano_loaded_from_onnx_reproduces_the_golden_output(nano):
    golden = np.load(nano / "golden_chelsea.npz")
    model = load_weights(_yolox_nano()(), nano / ONNX).eval()
    model.decode_in_inference = False
    raw = model(golden["input"])
    # float32 rounding over 113 layers: PyTorch itself differs from onnxruntime by up to 1.45e-4 on the
    # photos (assets README), almost all of it in the raw box columns
    np.testing.assert_allclose(raw[..., 4:], golden["raw_output"][..., 4:], atol=1e-4)
    np.testing.assert_allclose(raw[..., :4], golden["raw_output"][..., :4], atol=2e-4)


def test_nano_state_dict_order_is_the_official_one(nano):
    model = _yolox_nano()()
    official = [k for k in read_pth(nano / PTH) if not k.endswith("num_batches_tracked")]
    assert list(model.state_dict()) == official
