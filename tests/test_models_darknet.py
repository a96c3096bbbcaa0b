"""YOLOX-Darknet53: official layout and parameter counts (spec §1-§4.1), shapes, decoding, gradients,
the building blocks against naive references, and input validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from yolox_np.models import (
    YOLOX,
    BaseConv,
    Darknet,
    ResLayer,
    SPPBottleneck,
    YOLOXHead,
    get_model,
    yolox_darknet53,
)
from yolox_np.nn import BatchNorm2d, LeakyReLU, Module, conv2d_naive, gradcheck

TINY = dict(num_classes=3, width=1 / 16, blocks=(1, 1, 1, 1, 1))


@pytest.fixture(scope="module")
def full_model():
    return yolox_darknet53()


def n_params(model, prefix):
    return sum(p.size for name, p in model.named_parameters() if name.startswith(prefix))


class RawOutput(Module):
    """Train-mode model seen as a single-output module, for `gradcheck`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0]

    def backward(self, dout):
        return self.model.backward(dout)


# ----------------------------------------------------------------------------- references written here
def naive_maxpool_same(x, k):
    """Stride-1 max-pool with -inf padding k // 2 (padded cells never win)."""
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    return sliding_window_view(xp, (k, k), axis=(2, 3)).max(axis=(-1, -2))


def ref_baseconv(m, x):
    """Eval-mode BaseConv from its weights: naive conv, BN with running statistics, LeakyReLU 0.1 or SiLU."""
    conv = m.conv
    y = conv2d_naive(x, conv.weight.data, None if conv.bias is None else conv.bias.data, conv.stride,
                     conv.padding, conv.groups)
    if isinstance(m.bn, BatchNorm2d):
        bn = m.bn
        y = (y - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-3)
        y = y * bn.weight.data[None, :, None, None] + bn.bias.data[None, :, None, None]
    if isinstance(m.act, LeakyReLU):
        return np.where(y > 0, y, 0.1 * y)
    return y / (1 + np.exp(-y))


def randomize_bn(model, rng):
    """Give every BN non-trivial affine parameters and running statistics."""
    for m in model.modules():
        if isinstance(m, BatchNorm2d):
            c = m.num_features
            m.weight.data = rng.uniform(0.5, 1.5, c).astype(m.weight.dtype)
            m.bias.data = rng.uniform(-0.5, 0.5, c).astype(m.bias.dtype)
            m.running_mean[...] = rng.uniform(-0.2, 0.2, c)
            m.running_var[...] = rng.uniform(0.5, 2.0, c)


def manual_decode(raw, strides_list, hw_list):
    """Official decode written as loops over levels and cells: xy = (t + cell) * s, wh = exp(t) * s."""
    out = np.empty_like(raw)
    row = 0
    for s, (h, w) in zip(strides_list, hw_list):
        for j in range(h):
            for i in range(w):
                t = raw[:, row]
                out[:, row, 0] = (t[:, 0] + i) * s
                out[:, row, 1] = (t[:, 1] + j) * s
                out[:, row, 2] = np.exp(t[:, 2]) * s
                out[:, row, 3] = np.exp(t[:, 3]) * s
                out[:, row, 4:] = 1 / (1 + np.exp(-t[:, 4:]))
                row += 1
    return out


# ----------------------------------------------------------------------------- counts and layout (spec §1-§4.1)
def test_parameter_counts_match_spec(full_model):
    m = full_model
    assert m.num_parameters() == 63_724_767
    assert n_params(m, "backbone.backbone.") == 52_651_744
    assert n_params(m, "backbone.") - n_params(m, "backbone.backbone.") == 3_692_544
    assert n_params(m, "head.") == 7_380_479
    per_stage = {"stem": 40_160, "dark2": 238_592, "dark3": 2_923_008, "dark4": 11_678_720}
    for stage, count in per_stage.items():
        assert n_params(m, f"backbone.backbone.{stage}.") == count, stage
    assert sum(n_params(m, f"backbone.backbone.dark5.{i}.") for i in range(5)) == 25_704_448
    assert sum(n_params(m, f"backbone.backbone.dark5.{i}.") for i in range(5, 10)) == 12_066_816
    neck = {"out1_cbl": 131_584, "out1": 2_821_632, "out2_cbl": 33_024, "out2": 706_304}
    for name, count in neck.items():
        assert n_params(m, f"backbone.{name}.") == count, name
    head = {"stems": 230_912, "cls_convs": 3_542_016, "reg_convs": 3_542_016, "cls_preds": 61_680,
            "reg_preds": 3_084, "obj_preds": 771}
    for name, count in head.items():
        assert n_params(m, f"head.{name}.") == count, name


def test_parameter_count_is_linear_in_classes():
    """63,663,087 + 771 C in total; only the head depends on C."""
    for c in (1, 20):
        head = YOLOXHead(c, in_channels=(128, 256, 512), act="lrelu")
        assert 63_724_767 - 7_380_479 + head.num_parameters() == 63_663_087 + 771 * c


def test_state_dict_keys_shapes_and_order(full_model):
    sd = full_model.state_dict()
    keys = list(sd)
    # 85 BaseConvs x 6 + 9 prediction convs x 2 = 528 official entries; num_batches_tracked is not kept.
    assert len(keys) == 528 - 85
    assert not any(k.endswith("num_batches_tracked") for k in keys)
    expected_shapes = {
        "backbone.backbone.stem.0.conv.weight": (32, 3, 3, 3),
        "backbone.backbone.stem.1.conv.weight": (64, 32, 3, 3),
        "backbone.backbone.stem.2.layer1.conv.weight": (32, 64, 1, 1),
        "backbone.backbone.stem.2.layer2.conv.weight": (64, 32, 3, 3),
        "backbone.backbone.dark2.0.conv.weight": (128, 64, 3, 3),
        "backbone.backbone.dark3.0.conv.weight": (256, 128, 3, 3),
        "backbone.backbone.dark4.0.conv.weight": (512, 256, 3, 3),
        "backbone.backbone.dark5.0.conv.weight": (1024, 512, 3, 3),
        "backbone.backbone.dark2.2.layer2.conv.weight": (128, 64, 3, 3),
        "backbone.backbone.dark3.8.layer1.conv.weight": (128, 256, 1, 1),
        "backbone.backbone.dark4.8.layer2.bn.running_var": (512,),
        "backbone.backbone.dark5.4.layer1.conv.weight": (512, 1024, 1, 1),
        "backbone.backbone.dark5.4.layer2.conv.weight": (1024, 512, 3, 3),
        "backbone.backbone.dark5.5.conv.weight": (512, 1024, 1, 1),
        "backbone.backbone.dark5.6.conv.weight": (1024, 512, 3, 3),
        "backbone.backbone.dark5.7.conv1.conv.weight": (512, 1024, 1, 1),
        "backbone.backbone.dark5.7.conv2.conv.weight": (512, 2048, 1, 1),
        "backbone.backbone.dark5.8.conv.weight": (1024, 512, 3, 3),
        "backbone.backbone.dark5.9.conv.weight": (512, 1024, 1, 1),
        "backbone.out1_cbl.conv.weight": (256, 512, 1, 1),
        "backbone.out1.0.conv.weight": (256, 768, 1, 1),
        "backbone.out1.1.conv.weight": (512, 256, 3, 3),
        "backbone.out1.4.conv.weight": (256, 512, 1, 1),
        "backbone.out2_cbl.conv.weight": (128, 256, 1, 1),
        "backbone.out2.0.conv.weight": (128, 384, 1, 1),
        "backbone.out2.3.conv.weight": (256, 128, 3, 3),
        "head.cls_convs.2.1.conv.weight": (256, 256, 3, 3),
        "head.reg_convs.0.0.bn.bias": (256,),
        "head.cls_preds.1.weight": (80, 256, 1, 1),
        "head.cls_preds.1.bias": (80,),
        "head.reg_preds.0.weight": (4, 256, 1, 1),
        "head.obj_preds.2.bias": (1,),
        "head.stems.0.conv.weight": (256, 128, 1, 1),
        "head.stems.1.conv.weight": (256, 256, 1, 1),
        "head.stems.2.conv.weight": (256, 512, 1, 1),
    }
    for k, shape in expected_shapes.items():
        assert sd[k].shape == shape, k
    assert not any(k.startswith("backbone.backbone.dark5.5.0") or k.startswith("backbone.backbone.dark5.10")
                   for k in keys)
    # each BaseConv: conv weight, then BN weight, bias, running mean, running var
    i = keys.index("backbone.backbone.stem.0.conv.weight")
    assert keys[i:i + 5] == ["backbone.backbone.stem.0.conv.weight"] + [
        f"backbone.backbone.stem.0.bn.{n}" for n in ("weight", "bias", "running_mean", "running_var")]
    # module order: Darknet stages, out1_cbl, out1, out2_cbl, out2, then the head lists
    groups = ["backbone.backbone.stem.", "backbone.backbone.dark2.", "backbone.backbone.dark3.",
              "backbone.backbone.dark4.", "backbone.backbone.dark5.", "backbone.out1_cbl.", "backbone.out1.",
              "backbone.out2_cbl.", "backbone.out2.", "head.cls_convs.", "head.reg_convs.", "head.cls_preds.",
              "head.reg_preds.", "head.obj_preds.", "head.stems."]
    order = [next(g for g in groups if k.startswith(g)) for k in keys]
    firsts = [order.index(g) for g in groups]
    assert firsts == sorted(firsts)
    assert all(groups.index(a) <= groups.index(b) for a, b in zip(order, order[1:]))
    assert keys[-1] == "head.stems.2.bn.running_var"


def test_official_settings(full_model):
    bns = [m for m in full_model.modules() if isinstance(m, BatchNorm2d)]
    assert len(bns) == 85
    assert all(bn.eps == 1e-3 and bn.momentum == 0.03 for bn in bns)
    convs = [m for m in full_model.modules() if isinstance(m, BaseConv)]
    assert len(convs) == 85 and all(c.conv.bias is None for c in convs)
    assert all(isinstance(c.act, LeakyReLU) and c.act.negative_slope == 0.1 for c in convs)
    assert all(c.conv.padding == (c.conv.kernel_size - 1) // 2 for c in convs)
    for name in ("cls_preds", "obj_preds"):
        for conv in getattr(full_model.head, name):
            np.testing.assert_allclose(1 / (1 + np.exp(-conv.bias.data.astype(np.float64))), 0.01, rtol=1e-6)
    # reg_preds keep the default init, bounded by 1 / sqrt(fan_in)
    for conv in full_model.head.reg_preds:
        assert np.abs(conv.bias.data).max() <= 1 / np.sqrt(256)


def test_darknet_output_channels_and_strides():
    backbone = Darknet(53, stem_out_channels=4)  # every channel count / 8
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    out = backbone.eval()(x)
    assert list(out) == ["dark3", "dark4", "dark5"]
    assert out["dark3"].shape == (1, 32, 8, 8)
    assert out["dark4"].shape == (1, 64, 4, 4)
    assert out["dark5"].shape == (1, 64, 2, 2)
    assert Darknet(21, stem_out_channels=2).blocks == (1, 1, 2, 2, 1)
    with pytest.raises(ValueError, match="depth"):
        Darknet(50)
    with pytest.raises(ValueError, match="blocks"):
        Darknet(blocks=(1, 2, 3))


# ----------------------------------------------------------------------------- shapes, grids and decoding
@pytest.mark.parametrize("hw", [(64, 96), (256, 256), (640, 640)])
def test_output_shapes(hw):
    h, w = hw
    model = yolox_darknet53(num_classes=3, width=1 / 32, blocks=(1, 1, 1, 1, 1))
    x = np.random.default_rng(1).standard_normal((2, 3, h, w)).astype(np.float32)
    raw, grids, strides = model(x)
    a = sum((h // s) * (w // s) for s in (8, 16, 32))
    assert raw.shape == (2, a, 8) and raw.dtype == np.float32
    assert grids.shape == (a, 2) and np.issubdtype(grids.dtype, np.integer)
    assert strides.shape == (a,)
    # cells level by level, row-major with x fastest
    expected_cells, expected_strides = [], []
    for s in (8, 16, 32):
        for j in range(h // s):
            for i in range(w // s):
                expected_cells.append((i, j))
                expected_strides.append(s)
    np.testing.assert_array_equal(grids, expected_cells)
    np.testing.assert_array_equal(strides, expected_strides)
    if hw == (256, 256):
        assert (strides == 32).sum() == 64  # the seed article's 8 x 8 grid at stride 32
        assert a == 1344
    model.eval()
    assert model(x[:1]).shape == (1, a, 8)


def test_eval_output_is_the_official_decode():
    model = yolox_darknet53(**TINY).eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 64, 96)).astype(np.float32)
    raw, grids, strides = model.forward_raw(x)
    hw = [(64 // s, 96 // s) for s in (8, 16, 32)]
    expected = manual_decode(raw.astype(np.float64), (8, 16, 32), hw)
    out = model(x)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # the raw output does not depend on the mode's post-processing: same network, same numbers
    np.testing.assert_array_equal(model.forward_raw(x)[0], raw)
    # ONNX-style: raw boxes, sigmoid scores
    model.decode_in_inference = False
    assert model.head.decode_in_inference is False
    onnx_like = model(x)
    np.testing.assert_array_equal(onnx_like[..., :4], raw[..., :4])
    np.testing.assert_allclose(onnx_like[..., 4:], expected[..., 4:], rtol=1e-5, atol=1e-7)


def test_article_decode_convention():
    model = yolox_darknet53(**TINY).eval()
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
    raw, grids, strides = model.forward_raw(x)
    model.convention = "article"
    out = model(x)
    # article: centre = p + s/2 + s*i (offsets in pixels), sizes as official
    np.testing.assert_allclose(out[0, :, 0], raw[0, :, 0] + strides / 2 + strides * grids[:, 0], rtol=1e-5)
    np.testing.assert_allclose(out[0, :, 3], np.exp(raw[0, :, 3]) * strides, rtol=1e-5)


# ----------------------------------------------------------------------------- gradients
# Finite differences meet LeakyReLU kinks (a pre-activation within h * sensitivity of 0) with probability
# proportional to h, and rounding noise grows as 1 / h: h = 3e-7 balances the two at these sizes.
# prior_prob=0.5 keeps the cls/obj logits near 0, which lowers the rounding noise of the probed sum.
def test_gradcheck_whole_model_train_mode():
    """Backbone, SPP, FPN and head in float64, two probed entries per tensor."""
    model = yolox_darknet53(**TINY, seed=1, prior_prob=0.5).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))
    assert gradcheck(RawOutput(model), x, max_entries=2, h=3e-7) < 1e-6


def test_gradcheck_no_neck_variant():
    model = yolox_darknet53(**TINY, neck="none", seed=1, prior_prob=0.5).astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64))
    assert gradcheck(RawOutput(model), x, max_entries=1, h=3e-7) < 1e-6


def test_eval_backward_is_the_chain_rule_through_decode():
    """Eval mode: the gradient of the decoded output = raw gradient (d cx/d t = s, d w/d t = w,
    sigmoid') pushed through the same network."""
    model = yolox_darknet53(**TINY, seed=2).astype(np.float64).eval()
    randomize_bn(model, np.random.default_rng(2))
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 64))
    out = model(x)
    g = np.random.default_rng(3).standard_normal(out.shape)
    model.zero_grad()
    dx = model.backward(g)
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    raw, _, strides = model.forward_raw(x)
    g_raw = g.copy()
    g_raw[..., :2] *= strides[:, None]
    g_raw[..., 2:4] *= np.exp(raw[..., 2:4]) * strides[:, None]
    sig = 1 / (1 + np.exp(-raw[..., 4:]))
    g_raw[..., 4:] *= sig * (1 - sig)
    model.zero_grad()
    np.testing.assert_allclose(model.backward(g_raw), dx, rtol=1e-10, atol=1e-12)
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[n], rtol=1e-10, atol=1e-12, err_msg=n)
    # ONNX-style output: only the scores go through a sigmoid
    model.decode_in_inference = False
    model(x)
    model.zero_grad()
    dx_scores = model.backward(g)
    g_raw[..., :4] = g[..., :4]
    model.forward_raw(x)
    model.zero_grad()
    np.testing.assert_allclose(model.backward(g_raw), dx_scores, rtol=1e-10, atol=1e-12)


def test_backward_reaches_every_parameter_and_input_grad_is_optional():
    model = yolox_darknet53(**TINY)
    x = np.random.default_rng(4).standard_normal((2, 3, 64, 64)).astype(np.float32)
    raw, _, _ = model(x)
    g = np.random.default_rng(5).standard_normal(raw.shape).astype(np.float32)
    model.zero_grad()
    dx = model.backward(g)
    assert dx.shape == x.shape and dx.dtype == np.float32
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    assert all(np.abs(v).sum() > 0 for v in grads.values()), [n for n, v in grads.items() if not v.any()]
    model.zero_grad()
    model(x)
    assert model.backward(g, need_input_grad=False) is None
    for n, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, grads[n], rtol=1e-4, atol=1e-5 * np.abs(grads[n]).max())


def test_fused_bn_activation_matches_the_layer_modules():
    """BaseConv's one-pass BN + activation equals BatchNorm2d followed by the activation module."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 64, 64))
    results = []
    default = BaseConv.fuse_bn_act
    for fuse in (True, False):
        model = yolox_darknet53(**TINY, seed=6).astype(np.float64)
        BaseConv.fuse_bn_act = fuse
        try:
            raw, _, _ = model(x)
            g = np.random.default_rng(7).standard_normal(raw.shape)
            dx = model.backward(g)
            model.eval()
            decoded = model(x)
            dx_eval = model.backward(g)
        finally:
            BaseConv.fuse_bn_act = default
        results.append((raw, dx, decoded, dx_eval, model.state_dict(),
                        {n: p.grad.copy() for n, p in model.named_parameters()}))
    fused, plain = results
    for a, b in zip(fused[:4], plain[:4]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    for k in fused[4]:
        np.testing.assert_allclose(fused[4][k], plain[4][k], rtol=1e-9, atol=1e-12, err_msg=k)
    for k in fused[5]:
        np.testing.assert_allclose(fused[5][k], plain[5][k], rtol=1e-8, atol=1e-9, err_msg=k)


def test_train_mode_updates_running_statistics():
    model = yolox_darknet53(**TINY, seed=8).astype(np.float64)
    x = np.random.default_rng(8).standard_normal((2, 3, 64, 64))
    first = model.backbone.backbone.stem[0]
    model(x)
    y = conv2d_naive(x, first.conv.weight.data, None, 1, 1)
    n = y.shape[0] * y.shape[2] * y.shape[3]
    np.testing.assert_allclose(first.bn.running_mean, 0.03 * y.mean(axis=(0, 2, 3)), rtol=1e-10)
    unbiased = y.var(axis=(0, 2, 3)) * n / (n - 1)
    np.testing.assert_allclose(first.bn.running_var, 0.97 + 0.03 * unbiased, rtol=1e-10)


# ----------------------------------------------------------------------------- blocks against references
def test_blocks_against_naive_references():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 8, 12, 12))

    res = ResLayer(8, rng=rng).astype(np.float64).eval()
    randomize_bn(res, rng)
    expected = x + ref_baseconv(res.layer2, ref_baseconv(res.layer1, x))
    np.testing.assert_allclose(res(x), expected, rtol=1e-10, atol=1e-12)

    spp = SPPBottleneck(8, 6, activation="lrelu", rng=rng).astype(np.float64).eval()
    randomize_bn(spp, rng)
    h = ref_baseconv(spp.conv1, x)
    cat = np.concatenate([h] + [naive_maxpool_same(h, k) for k in (5, 9, 13)], axis=1)
    np.testing.assert_allclose(spp(x), ref_baseconv(spp.conv2, cat), rtol=1e-10, atol=1e-12)
    assert [p.kernel_size for p in spp.m] == [5, 9, 13]
    assert spp.conv2.conv.in_channels == 16


@pytest.mark.parametrize("block", ["res", "spp", "baseconv_stride2"])
def test_block_gradients(block):
    rng = np.random.default_rng(10)
    if block == "res":
        m = ResLayer(6, rng=rng)
    elif block == "spp":
        m = SPPBottleneck(6, 4, activation="lrelu", rng=rng)
    else:
        m = BaseConv(6, 5, 3, 2, act="lrelu", rng=rng)
    m.astype(np.float64)
    x = rng.standard_normal((2, 6, 10, 10))
    assert gradcheck(m, x, max_entries=30) < 1e-6


# ----------------------------------------------------------------------------- no neck, factories, validation
def test_no_neck_variant_layout():
    model = yolox_darknet53(neck="none")
    assert [s.conv.in_channels for s in model.head.stems] == [256, 512, 1024]
    keys = list(model.state_dict())
    assert not any(k.startswith("backbone.backbone.dark5.5.") for k in keys)
    assert not any(k.startswith("backbone.out") for k in keys)
    # Darknet-53 without the SPP block + the head with 256/512/1024 inputs
    stems = (256 + 512 + 1024) * 256 + 3 * 2 * 256
    assert model.num_parameters() == (52_651_744 - 12_066_816) + (7_380_479 - 230_912 + stems)
    small = yolox_darknet53(**TINY, neck="none")
    x = np.zeros((1, 3, 64, 64), np.float32)
    feats = small.backbone.eval()(x)
    assert [f.shape[1] for f in feats] == [16, 32, 64]


def test_factories_and_determinism():
    a = yolox_darknet53(**TINY, seed=3)
    b = get_model("yolox-darknet53", **TINY, seed=3)
    c = yolox_darknet53(**TINY, rng=np.random.default_rng(4))
    assert isinstance(b, YOLOX)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not all(np.array_equal(sa[k], sc[k]) for k in sa)
    with pytest.raises(ValueError, match="width"):
        yolox_darknet53(width=0.3)
    with pytest.raises(ValueError, match="neck"):
        yolox_darknet53(**TINY, neck="pafpn")
    with pytest.raises(ValueError, match="num_classes"):
        yolox_darknet53(num_classes=0, width=1 / 16)


def test_invalid_inputs_raise_clear_errors():
    model = yolox_darknet53(**TINY)
    good = np.zeros((1, 3, 64, 64), np.float32)
    cases = [
        (np.zeros((1, 3, 64, 48), np.float32), "multiples of 32"),
        (np.zeros((1, 3, 16, 16), np.float32), "multiples of 32"),
        (np.zeros((1, 4, 64, 64), np.float32), r"\(B, 3, H, W\)"),
        (np.zeros((3, 64, 64), np.float32), r"\(B, 3, H, W\)"),
        (np.zeros((1, 3, 64, 64), np.uint8), "floating"),
        (np.zeros((1, 3, 64, 64), np.float64), "float32"),
        (good.tolist(), "NumPy array"),
    ]
    nan = good.copy()
    nan[0, 1, 2, 3] = np.nan
    cases.append((nan, r"non-finite.*\(0, 1, 2, 3\)"))
    for bad, msg in cases:
        with pytest.raises(ValueError, match=msg):
            model(bad)
    raw, _, _ = model(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        model.backward(raw[:, :10])
    with pytest.raises(ValueError, match="finite"):
        model.backward(np.full_like(raw, np.inf))
    with pytest.raises(RuntimeError, match="before forward"):
        yolox_darknet53(**TINY).backward(raw)


_PROPERTY_MODEL = yolox_darknet53(num_classes=3, width=1 / 32, blocks=(0, 0, 0, 0, 0)).eval()


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2))
def test_anchor_count_property(hm, wm, batch):
    """A = sum over strides of (H/s)(W/s) for any multiple-of-32 input; grids stay inside each level."""
    model = _PROPERTY_MODEL
    h, w = 32 * hm, 32 * wm
    raw, grids, strides = model.forward_raw(np.zeros((batch, 3, h, w), np.float32))
    assert raw.shape == (batch, sum((h // s) * (w // s) for s in (8, 16, 32)), 8)
    assert (grids[:, 0] < w // strides).all() and (grids[:, 1] < h // strides).all()

