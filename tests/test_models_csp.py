"""CSPDarknet + YOLOPAFPN models (Nano ... X): the spec's size table, parameter and FLOP counts, key names,
Focus order, the blocks against naive references, BN folding into `fused=True` models, and gradients."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.models import (
    CONFIGS,
    MODEL_NAMES,
    BaseConv,
    Bottleneck,
    CSPLayer,
    DWConv,
    Focus,
    canonical_name,
    count_flops,
    get_model,
    space_to_depth,
    space_to_depth_backward,
    yolox_csp,
    yolox_darknet53,
    yolox_nano,
    yolox_s,
)
from yolox_np.nn import BatchNorm2d, Conv2d, Identity, Module, SiLU, conv2d_naive, gradcheck

# spec §4.2: name -> (params at C = 80, stage channels (stem, d2..d5), CSP n (d2..d5), PAFPN n, head h,
#                     GFLOPs at the test size, test size)
SPEC = {
    "nano": (912_159, (16, 32, 64, 128, 256), (1, 3, 3, 1), 1, 64, 1.05, 416),
    "tiny": (5_055_855, (24, 48, 96, 192, 384), (1, 3, 3, 1), 1, 96, 6.41, 416),
    "s": (8_968_255, (32, 64, 128, 256, 512), (1, 3, 3, 1), 1, 128, 26.7, 640),
    "m": (25_326_495, (48, 96, 192, 384, 768), (2, 6, 6, 2), 2, 192, 73.5, 640),
    "l": (54_208_895, (64, 128, 256, 512, 1024), (3, 9, 9, 3), 3, 256, 155.3, 640),
    "x": (99_071_455, (80, 160, 320, 640, 1280), (4, 12, 12, 4), 4, 320, 281.4, 640),
}
TINY_CSP = dict(num_classes=3, depth=0.33, width=1 / 16)


class RawOutput(Module):
    """Train-mode model seen as a single-output module, for `gradcheck`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0]

    def backward(self, dout):
        return self.model.backward(dout)


def ref_baseconv(m, x):
    """Eval-mode BaseConv from its weights: naive (grouped) conv, BN with running statistics, SiLU."""
    conv = m.conv
    y = conv2d_naive(x, conv.weight.data, None if conv.bias is None else conv.bias.data, conv.stride,
                     conv.padding, conv.groups)
    if isinstance(m.bn, BatchNorm2d):
        bn = m.bn
        y = (y - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-3)
        y = y * bn.weight.data[None, :, None, None] + bn.bias.data[None, :, None, None]
    return y / (1 + np.exp(-y))


def randomize_bn(model, rng):
    for m in model.modules():
        if isinstance(m, BatchNorm2d):
            c = m.num_features
            m.weight.data = rng.uniform(0.5, 1.5, c).astype(m.weight.dtype)
            m.bias.data = rng.uniform(-0.5, 0.5, c).astype(m.bias.dtype)
            m.running_mean[...] = rng.uniform(-0.2, 0.2, c)
            m.running_var[...] = rng.uniform(0.5, 2.0, c)


def calibrate_bn(model, x):
    """Set every BN's running statistics to the statistics of a batch (so eval mode is well scaled)."""
    bns = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 1.0
    model.train()
    model(x)
    for bn, mom in zip(bns, saved):
        bn.momentum = mom
    return model.eval()


# ----------------------------------------------------------------------------- the spec's size table
@pytest.mark.parametrize("name", list(SPEC))
def test_sizes_parameters_and_flops(name):
    params, stages, csp_n, pafpn_n, hidden, gflops, size = SPEC[name]
    model = get_model(name)
    assert model.num_parameters() == params
    body = model.backbone.backbone
    assert body.stem.conv.conv.weight.shape == (stages[0], 12, 3, 3)
    for k, stage in enumerate(("dark2", "dark3", "dark4", "dark5")):
        down = getattr(body, stage)[0]
        out = (down.pconv if isinstance(down, DWConv) else down).conv.out_channels
        assert out == stages[k + 1], stage
        csp = getattr(body, stage)[2 if stage == "dark5" else 1]
        assert len(csp.m) == csp_n[k], stage
        assert csp.conv3.conv.out_channels == stages[k + 1]
    assert not body.dark5[2].m[0].use_add  # dark5's CSPLayer has no shortcut
    assert body.dark2[1].m[0].use_add
    neck = model.backbone
    for layer in ("C3_p4", "C3_p3", "C3_n3", "C3_n4"):
        assert len(getattr(neck, layer).m) == pafpn_n
        assert not getattr(neck, layer).m[0].use_add
    assert [s.conv.out_channels for s in model.head.stems] == [hidden] * 3
    assert [s.conv.in_channels for s in model.head.stems] == [stages[2], stages[3], stages[4]]
    assert all(isinstance(m.act, SiLU) for m in model.modules() if isinstance(m, BaseConv))
    assert CONFIGS[name].input_size == size
    assert count_flops(model, size) / 1e9 == pytest.approx(gflops, abs=0.05)


def test_darknet53_flops():
    model = yolox_darknet53()
    assert count_flops(model, 640) / 1e9 == pytest.approx(184.7, abs=0.05)
    # every map scales with H * W when the sides are multiples of 32
    assert count_flops(model, (640, 320)) * 2 == count_flops(model, 640)
    with pytest.raises(ValueError, match="multiples of 32"):
        count_flops(model, 100)


def test_key_names_of_the_spec_examples():
    sd = yolox_s().state_dict()
    for key, shape in {
        "backbone.backbone.stem.conv.conv.weight": (32, 12, 3, 3),
        "backbone.backbone.dark5.1.conv2.conv.weight": (512, 1024, 1, 1),
        "backbone.C3_p4.conv1.conv.weight": (128, 512, 1, 1),
        "head.stems.0.conv.weight": (128, 128, 1, 1),
        "head.cls_preds.0.weight": (80, 128, 1, 1),
        "backbone.lateral_conv0.conv.weight": (256, 512, 1, 1),
        "backbone.bu_conv1.conv.weight": (256, 256, 3, 3),
        "backbone.backbone.dark2.1.m.0.conv2.conv.weight": (32, 32, 3, 3),
    }.items():
        assert sd[key].shape == shape, key
    nano = yolox_nano().state_dict()
    assert nano["backbone.backbone.dark2.0.dconv.conv.weight"].shape == (16, 1, 3, 3)
    assert nano["backbone.backbone.dark2.0.pconv.conv.weight"].shape == (32, 16, 1, 1)
    assert nano["head.cls_convs.1.0.dconv.conv.weight"].shape == (64, 1, 3, 3)
    assert nano["backbone.bu_conv2.dconv.conv.weight"].shape == (64, 1, 3, 3)
    # only the 3x3 "Conv" slots are depthwise: Focus, SPP, lateral/reduce convs and head stems are not
    for plain in ("backbone.backbone.stem.conv.conv.weight", "backbone.backbone.dark5.1.conv1.conv.weight",
                  "backbone.lateral_conv0.conv.weight", "backbone.reduce_conv1.conv.weight",
                  "head.stems.2.conv.weight"):
        assert plain in nano
    assert len(nano) == 642 - 104  # official entries minus one num_batches_tracked per BaseConv


def test_fused_models_have_conv_bias_and_no_bn():
    model = yolox_nano(fused=True)
    keys = list(model.state_dict())
    assert not any(".bn." in k for k in keys)
    assert "backbone.backbone.stem.conv.conv.bias" in keys
    assert "backbone.backbone.dark2.0.dconv.conv.bias" in keys
    assert len(keys) == 2 * (104 + 9)
    assert all(isinstance(m.bn, Identity) for m in model.modules() if isinstance(m, BaseConv))


def test_folding_bn_into_a_fused_model_gives_the_same_outputs():
    rng = np.random.default_rng(0)
    plain = yolox_csp(**TINY_CSP, depthwise=True, seed=1).astype(np.float64).eval()
    randomize_bn(plain, rng)
    fused = yolox_csp(**TINY_CSP, depthwise=True, fused=True, seed=2).astype(np.float64).eval()
    sd = plain.state_dict()
    folded = {}
    for name, m in plain.named_modules():
        if isinstance(m, BaseConv):
            bn = m.bn
            scale = bn.weight.data / np.sqrt(bn.running_var + bn.eps)
            folded[f"{name}.conv.weight"] = m.conv.weight.data * scale[:, None, None, None]
            folded[f"{name}.conv.bias"] = bn.bias.data - bn.running_mean * scale
    for k, v in sd.items():
        if k.split(".")[1].endswith("_preds"):
            folded[k] = v
    fused.load_state_dict(folded)
    x = rng.standard_normal((1, 3, 64, 64))
    np.testing.assert_allclose(fused(x), plain(x), rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- blocks against references
def test_space_to_depth_official_order():
    x = np.arange(2 * 3 * 4 * 6, dtype=np.float64).reshape(2, 3, 4, 6)
    y = space_to_depth(x)
    assert y.shape == (2, 12, 2, 3)
    offsets = [(0, 0), (1, 0), (0, 1), (1, 1)]  # (row, col): top-left, bottom-left, top-right, bottom-right
    for k, (dy, dx) in enumerate(offsets):
        for c in range(3):
            for i in range(2):
                for j in range(3):
                    assert y[1, 3 * k + c, i, j] == x[1, c, 2 * i + dy, 2 * j + dx]
    with pytest.raises(ValueError, match="even"):
        space_to_depth(np.zeros((1, 3, 5, 4)))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(0, 10_000))
def test_space_to_depth_backward_is_the_adjoint(n, c, h2, w2, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, 2 * h2, 2 * w2))
    g = rng.standard_normal((n, 4 * c, h2, w2))
    np.testing.assert_allclose(np.sum(space_to_depth(x) * g), np.sum(x * space_to_depth_backward(g)),
                               rtol=1e-12, atol=1e-12)


def test_blocks_against_naive_references():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 8, 8))

    dw = DWConv(6, 5, 3, 2, rng=rng).astype(np.float64).eval()
    randomize_bn(dw, rng)
    assert dw.dconv.conv.groups == 6 and dw.dconv.conv.weight.shape == (6, 1, 3, 3)
    np.testing.assert_allclose(dw(x), ref_baseconv(dw.pconv, ref_baseconv(dw.dconv, x)), rtol=1e-10, atol=1e-12)

    for shortcut, cout in ((True, 6), (False, 6), (True, 4)):
        b = Bottleneck(6, cout, shortcut=shortcut, rng=rng).astype(np.float64).eval()
        randomize_bn(b, rng)
        assert b.conv1.conv.out_channels == int(cout * 0.5)
        expected = ref_baseconv(b.conv2, ref_baseconv(b.conv1, x))
        if shortcut and cout == 6:
            expected = expected + x
        np.testing.assert_allclose(b(x), expected, rtol=1e-10, atol=1e-12)

    csp = CSPLayer(6, 8, n=2, rng=rng).astype(np.float64).eval()
    randomize_bn(csp, rng)
    main = ref_baseconv(csp.conv1, x)
    for bott in csp.m:
        main = main + ref_baseconv(bott.conv2, ref_baseconv(bott.conv1, main))
    side = ref_baseconv(csp.conv2, x)
    expected = ref_baseconv(csp.conv3, np.concatenate([main, side], axis=1))
    np.testing.assert_allclose(csp(x), expected, rtol=1e-10, atol=1e-12)

    focus = Focus(3, 4, ksize=3, rng=rng).astype(np.float64).eval()
    randomize_bn(focus, rng)
    x3 = rng.standard_normal((1, 3, 8, 8))
    s2d = np.concatenate([x3[..., ::2, ::2], x3[..., 1::2, ::2], x3[..., ::2, 1::2], x3[..., 1::2, 1::2]], axis=1)
    np.testing.assert_allclose(focus(x3), ref_baseconv(focus.conv, s2d), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("block", ["dwconv", "bottleneck_dw", "csp", "focus"])
def test_block_gradients(block):
    rng = np.random.default_rng(4)
    m = {"dwconv": lambda: DWConv(4, 6, 3, 2, rng=rng),
         "bottleneck_dw": lambda: Bottleneck(4, 4, depthwise=True, rng=rng),
         "csp": lambda: CSPLayer(4, 6, n=2, rng=rng),
         "focus": lambda: Focus(4, 5, ksize=3, rng=rng)}[block]().astype(np.float64)
    x = rng.standard_normal((2, 4, 8, 8))
    assert gradcheck(m, x, max_entries=20) < 1e-6


# ----------------------------------------------------------------------------- whole-model gradients
# prior_prob=0.5 keeps the cls/obj logits near 0, which lowers the rounding noise of the probed sum.
def test_gradcheck_whole_csp_model():
    model = yolox_csp(**TINY_CSP, seed=0, prior_prob=0.5).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    assert gradcheck(RawOutput(model), x, max_entries=1, h=1e-6) < 1e-6


def test_gradcheck_whole_depthwise_model():
    """Nano-like: depthwise 3x3 convs everywhere they are in YOLOX-Nano."""
    model = yolox_csp(**TINY_CSP, depthwise=True, seed=0, prior_prob=0.5).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    assert gradcheck(RawOutput(model), x, max_entries=1, h=3e-7) < 1e-6


def test_gradcheck_eval_mode_decoded_output():
    """Eval mode (BN with running statistics) through decode and the sigmoids, w.r.t. the image."""
    model = yolox_csp(num_classes=2, depth=0.33, width=1 / 32, seed=5, prior_prob=0.5).astype(np.float64)
    calibrate_bn(model, np.random.default_rng(5).standard_normal((2, 3, 64, 64)))
    x = np.random.default_rng(6).standard_normal((1, 3, 32, 64))
    assert gradcheck(model, x, max_entries=30, h=1e-6, check_params=False) < 1e-6


@pytest.mark.parametrize("act", ["silu", "lrelu"])
def test_gradcheck_baseconv_eval_mode(act):
    rng = np.random.default_rng(7)
    m = BaseConv(4, 6, 3, 1, act=act, rng=rng).astype(np.float64).eval()
    randomize_bn(m, rng)
    assert gradcheck(m, rng.standard_normal((2, 4, 6, 6)), max_entries=40) < 1e-6


# ----------------------------------------------------------------------------- registry
def test_get_model_names_and_aliases():
    assert MODEL_NAMES == ("darknet53", "nano", "tiny", "s", "m", "l", "x")
    for alias, name in (("yolox_nano", "nano"), ("YOLOX-S", "s"), ("yolox-darknet53", "darknet53"),
                        ("tiny", "tiny"), (" L ", "l")):
        assert canonical_name(alias) == name
    a, b = get_model("yolox_nano", num_classes=5, seed=7), yolox_nano(5, seed=7)
    assert a.num_classes == 5 and a.head.cls_preds[0].weight.shape == (5, 64, 1, 1)
    assert all(np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert get_model("nano", fused=True).head.stems[0].conv.bias is not None
    for bad in ("yolox_q", "", 3):
        with pytest.raises(ValueError, match="model"):
            get_model(bad)
    with pytest.raises(ValueError, match="match the backbone"):
        yolox_csp(width=0.1)


def test_csp_shapes_and_validation():
    model = yolox_csp(**TINY_CSP)
    raw, grids, strides = model(np.random.default_rng(0).standard_normal((2, 3, 64, 96)).astype(np.float32))
    assert raw.shape == (2, 8 * 12 + 4 * 6 + 2 * 3, 8)
    assert grids.shape == (raw.shape[1], 2) and strides[0] == 8 and strides[-1] == 32
    with pytest.raises(ValueError, match="multiples of 32"):
        model(np.zeros((1, 3, 64, 80), np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        model(np.full((1, 3, 64, 64), np.inf, np.float32))
    with pytest.raises(ValueError, match="one value per channel"):
        model(np.zeros((1, 3, 32, 32), np.float32))  # train-mode BN on a 1 x 1 map of one image
    assert model.eval()(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 21, 8)
    assert isinstance(model.head.cls_preds[0], Conv2d)


def _tiny_run():
    model = yolox_csp(num_classes=2, depth=0.33, width=1 / 32, depthwise=True, seed=3).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32))
    raw = model(x)[0]
    dx = model.backward(np.ones_like(raw))
    return dict(raw=raw, dx=dx, **{n: p.grad for n, p in model.named_parameters()})


def test_pure_python_path_gives_the_same_model(tmp_path):
    """With NUMBA_DISABLE_JIT=1 (kernels as plain Python, the debugging path) the outputs and gradients agree."""
    out = tmp_path / "no_jit.npz"
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from test_models_csp import _tiny_run
        np.savez({str(out)!r}, **_tiny_run())
    """)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=600)
    python = np.load(out)
    jit = _tiny_run()
    assert set(python.files) == set(jit)
    for k, v in jit.items():
        scale = np.abs(v).max() + 1e-12
        np.testing.assert_allclose(python[k], v, rtol=1e-7, atol=1e-9 * scale, err_msg=k)
