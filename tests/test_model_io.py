"""Model state dicts: .npz round trips, strict loading errors, and the official YOLOX-Nano weights (key names
and order of the official checkpoint, the conv table, and the ONNX export's outputs on two photos)."""

import csv
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from conftest import require_assets

from yolox_np.models import get_model, yolox_csp, yolox_darknet53, yolox_nano
from yolox_np.nn import Conv2d

TINY_DARKNET = dict(num_classes=3, width=1 / 16, blocks=(1, 1, 1, 1, 1))
TINY_CSP = dict(num_classes=3, depth=0.33, width=1 / 16, depthwise=True)


def read_pth_state(path):
    """Official-format checkpoint -> OrderedDict of arrays, without PyTorch (only what these files use)."""
    archive = zipfile.ZipFile(path)
    root = archive.namelist()[0].split("/")[0]
    dtypes = {"FloatStorage": np.float32, "LongStorage": np.int64}

    def rebuild(storage, offset, size, stride, *_):
        flat = storage[offset:]
        if not size:
            return flat[0].copy()
        return np.lib.stride_tricks.as_strided(flat, size, [s * flat.itemsize for s in stride]).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name in dtypes:
                return name
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

        def persistent_load(self, pid):
            _, storage_type, key, _, numel = pid
            data = archive.read(f"{root}/data/{key}")
            return np.frombuffer(data, dtype=dtypes[storage_type])[:numel]

    with archive.open(f"{root}/data.pkl") as f:
        return Unpickler(f).load()["model"]


def train_once(model, seed):
    """One train-mode forward, so that BN running statistics differ from their initial values."""
    rng = np.random.default_rng(seed)
    model.train()
    model(rng.standard_normal((2, 3, 64, 64)).astype(model.dtype))
    return model


# ----------------------------------------------------------------------------- round trips and errors
@pytest.mark.parametrize("factory", ["darknet", "csp"])
def test_npz_round_trip_is_bit_exact(tmp_path, factory):
    def build(seed):
        if factory == "darknet":
            return yolox_darknet53(**TINY_DARKNET, seed=seed)
        return yolox_csp(**TINY_CSP, seed=seed)

    source = train_once(build(0), 1)
    path = tmp_path / "weights.npz"
    np.savez(path, **source.state_dict())
    target = build(5)
    with np.load(path) as data:
        assert list(data.keys()) == list(source.state_dict())
        target.load_state_dict(dict(data))
    for k, v in source.state_dict().items():
        assert np.array_equal(target.state_dict()[k], v), k
    x = np.random.default_rng(2).uniform(0, 255, (2, 3, 64, 96)).astype(np.float32)
    source.eval()
    target.eval()
    assert np.array_equal(source(x), target(x))
    source.train()
    target.train()
    assert np.array_equal(source(x)[0], target(x)[0])


def test_strict_loading_lists_missing_extra_and_misshaped_keys():
    model = yolox_darknet53(**TINY_DARKNET)
    good = model.state_dict()
    state = dict(good)
    del state["head.obj_preds.1.bias"]
    state["head.unknown.weight"] = np.zeros(3, np.float32)
    state["backbone.out2.0.conv.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    msg = str(err.value)
    for part in ("head.obj_preds.1.bias", "head.unknown.weight", "backbone.out2.0.conv.weight", "missing",
                 "unexpected"):
        assert part in msg
    # nothing was half-loaded
    for k, v in model.state_dict().items():
        assert np.array_equal(v, good[k])


def test_loading_keeps_dtype_and_ignores_num_batches_tracked():
    source = train_once(yolox_csp(**TINY_CSP, seed=0), 3)
    state = source.state_dict()
    with_counters = OrderedDict()
    for k, v in state.items():
        with_counters[k] = v
        if k.endswith("running_var"):
            with_counters[k[: -len("running_var")] + "num_batches_tracked"] = np.array(7)
    target = yolox_csp(**TINY_CSP, seed=1).astype(np.float64)
    target.load_state_dict(with_counters)
    assert target.dtype == np.float64
    for k, v in target.state_dict().items():
        assert v.dtype == np.float64
        np.testing.assert_array_equal(v, state[k].astype(np.float64))


# ----------------------------------------------------------------------------- the official YOLOX-Nano weights
@pytest.fixture(scope="module")
def nano_files():
    return require_assets() / "yolox_nano"


def test_official_checkpoint_keys_and_order(nano_files):
    official = read_pth_state(nano_files / "yolox_nano_from_onnx.pth")
    assert len(official) == 642
    expected = [k for k in official if not k.endswith("num_batches_tracked")]
    model = yolox_nano()
    state = model.state_dict()
    assert list(state) == expected
    for k in expected:
        assert state[k].shape == official[k].shape, k


def test_conv_table_matches_the_official_network(nano_files):
    """Name, weight shape, groups, stride, padding of all 113 convs, in forward-call order."""
    with open(nano_files / "yolox_nano_layers.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 113
    model = yolox_nano(fused=True).eval()
    calls = []
    convs = {name: m for name, m in model.named_modules() if isinstance(m, Conv2d)}
    for name, conv in convs.items():
        original = conv.forward
        object.__setattr__(conv, "forward", lambda x, _o=original, _n=name: (calls.append(_n), _o(x))[1])
    model(np.zeros((1, 3, 64, 64), np.float32))
    assert calls == [r["official_conv"] for r in rows]
    for r in rows:
        conv = convs[r["official_conv"]]
        assert "x".join(map(str, conv.weight.shape)) == r["weight_shape"]
        assert (conv.groups, conv.stride, conv.padding) == (int(r["groups"]), int(r["stride"]), int(r["pad"]))


def assert_matches_onnx(out, expected, name):
    """float32 vs onnxruntime: the log-scale box columns differ by up to a few 1e-4 (PyTorch itself differs
    from onnxruntime by 1.5e-4 on these photos), the probabilities by much less."""
    np.testing.assert_allclose(out[..., :4], expected[..., :4], atol=4e-4, rtol=0, err_msg=name)
    np.testing.assert_allclose(out[..., 4:], expected[..., 4:], atol=1e-4, rtol=0, err_msg=name)


@pytest.fixture(scope="module")
def golden(nano_files):
    return {name: np.load(nano_files / f"golden_{name}.npz") for name in ("chelsea", "coffee")}


def test_official_checkpoint_reproduces_the_onnx_outputs(nano_files, golden):
    model = yolox_nano()
    model.load_state_dict(read_pth_state(nano_files / "yolox_nano_from_onnx.pth"))
    model.eval()
    model.decode_in_inference = False  # the export's output: raw boxes, sigmoid scores
    for name, g in golden.items():
        assert_matches_onnx(model(g["input"]), g["raw_output"], name)


def test_fused_weights_reproduce_the_onnx_outputs(nano_files, golden):
    model = get_model("nano", fused=True)
    with np.load(nano_files / "yolox_nano_fused.npz") as data:
        weights = dict(data)
    assert set(weights) == set(model.state_dict())
    model.load_state_dict(weights)
    model.eval()
    g = golden["coffee"]
    model.decode_in_inference = False
    assert_matches_onnx(model(g["input"]), g["raw_output"], "coffee")
    # decoded rows of the golden detections: cx = (t + i) * s, w = exp(t) * s
    model.decode_in_inference = True
    decoded = model(g["input"])[0, g["anchor_index"]]
    rows = g["raw_rows"].astype(np.float64)
    grids, strides = model.grids(416, 416)
    cells, s = grids[g["anchor_index"]], strides[g["anchor_index"]]
    np.testing.assert_allclose(decoded[:, 0], (rows[:, 0] + cells[:, 0]) * s, atol=2e-3)
    np.testing.assert_allclose(decoded[:, 3], np.exp(rows[:, 3]) * s, rtol=1e-3)
