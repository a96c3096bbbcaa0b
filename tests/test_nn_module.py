"""`Parameter`, `Module`, `Sequential`, `ModuleList`: registration, naming, modes, dtype and state dicts."""

import inspect

import numpy as np
import pytest

from yolox_np.nn import (
    BatchNorm2d,
    Conv2d,
    LeakyReLU,
    MaxPool2d,
    Module,
    ModuleList,
    Parameter,
    Sequential,
    SiLU,
)


class ConvBlock(Module):
    """conv -> bn -> act, named as the official YOLOX BaseConv."""

    def __init__(self, cin, cout, k, stride=1, rng=None):
        super().__init__()
        self.conv = Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False, rng=rng)
        self.bn = BatchNorm2d(cout)
        self.act = SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))

    def backward(self, dout):
        return self.conv.backward(self.bn.backward(self.act.backward(dout)))


class TinyNet(Module):
    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.stem = ConvBlock(3, 4, 3, rng=rng)
        self.blocks = Sequential(ConvBlock(4, 4, 1, rng=rng), ConvBlock(4, 6, 3, 2, rng=rng))
        self.heads = ModuleList([Conv2d(6, 2, 1, rng=rng), Conv2d(6, 3, 1, rng=rng)])
        self.scale = Parameter(np.full(1, 2.0, np.float32))  # own parameter, registered after the children

    def forward(self, x):
        h = self.blocks(self.stem(x)) * self.scale.data
        return [head(h) for head in self.heads]


def block_keys(prefix):
    return [f"{prefix}.conv.weight", f"{prefix}.bn.weight", f"{prefix}.bn.bias",
            f"{prefix}.bn.running_mean", f"{prefix}.bn.running_var"]


# PyTorch order: a module's own parameters and buffers first, then its children in registration order.
EXPECTED_STATE_KEYS = (
    ["scale"] + block_keys("stem") + block_keys("blocks.0") + block_keys("blocks.1")
    + ["heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]
)
BUFFER_SUFFIXES = ("running_mean", "running_var")


def randomise_bn_stats(model, seed=1):
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, BatchNorm2d):
            m.running_mean[...] = rng.normal(0, 0.5, m.num_features)
            m.running_var[...] = rng.uniform(0.5, 2.0, m.num_features)


# ----------------------------------------------------------------------------- Parameter
def test_parameter_holds_data_and_zero_grad_of_same_shape_and_dtype():
    p = Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert p.data.shape == p.grad.shape == p.shape == (2, 3)
    assert p.grad.dtype == p.data.dtype == np.float32
    assert not p.grad.any()
    p.grad += 1.5
    p.zero_grad()
    assert not p.grad.any()


def test_parameter_rejects_integer_data_and_shape_changes():
    with pytest.raises(ValueError, match="int"):
        Parameter(np.arange(4))
    p = Parameter(np.zeros((2, 3)))
    p.data = np.ones((2, 3))
    np.testing.assert_array_equal(p.data, 1.0)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        p.data = np.ones((3, 2))


# ----------------------------------------------------------------------------- registration and names
def test_named_parameters_use_dotted_attribute_names_in_pytorch_order():
    net = TinyNet()
    names = [n for n, _ in net.named_parameters()]
    assert names == [k for k in EXPECTED_STATE_KEYS if not k.endswith(BUFFER_SUFFIXES)]
    assert dict(net.named_parameters())["stem.conv.weight"] is net.stem.conv.weight
    assert dict(net.named_parameters())["blocks.1.bn.bias"] is net.blocks[1].bn.bias
    assert dict(net.named_parameters())["heads.1.weight"] is net.heads[1].weight


def test_parameters_are_the_attribute_objects_with_grad_buffers():
    net = TinyNet()
    params = list(net.parameters())
    assert len(params) == len({id(p) for p in params}) == 14
    for p in params:
        assert isinstance(p, Parameter)
        assert p.grad.shape == p.data.shape and p.grad.dtype == p.data.dtype
    expected_count = 4 * 3 * 9 + 4 * 4 + 6 * 4 * 9 + 2 * (4 + 4 + 6) + (6 * 2 + 2) + (6 * 3 + 3) + 1
    assert net.num_parameters() == expected_count == sum(p.size for p in params)


def test_buffers_are_in_the_state_dict_but_not_parameters():
    net = TinyNet()
    buffers = dict(net.named_buffers())
    assert list(buffers) == [k for k in EXPECTED_STATE_KEYS if k.endswith(BUFFER_SUFFIXES)]
    param_ids = {id(p.data) for p in net.parameters()}
    assert all(id(b) not in param_ids for b in buffers.values())
    np.testing.assert_array_equal(buffers["stem.bn.running_var"], np.ones(4))
    np.testing.assert_array_equal(buffers["stem.bn.running_mean"], np.zeros(4))


def test_state_dict_keys_order_and_values():
    net = TinyNet()
    sd = net.state_dict()
    assert list(sd) == EXPECTED_STATE_KEYS
    np.testing.assert_array_equal(sd["stem.conv.weight"], net.stem.conv.weight.data)
    np.testing.assert_array_equal(sd["scale"], [2.0])
    assert sd["heads.1.weight"].shape == (3, 6, 1, 1)


def test_state_dict_returns_copies():
    net = TinyNet()
    sd = net.state_dict()
    sd["stem.conv.weight"][...] = 123.0
    sd["stem.bn.running_mean"][...] = 123.0
    assert not np.any(net.stem.conv.weight.data == 123.0)
    assert not np.any(net.stem.bn.running_mean == 123.0)


def test_conv_without_bias_has_no_bias_key():
    conv = Conv2d(2, 3, 3, bias=False)
    assert conv.bias is None
    assert list(conv.state_dict()) == ["weight"]
    assert [n for n, _ in conv.named_parameters()] == ["weight"]


def test_reassigning_an_attribute_replaces_the_registration():
    m = Module()
    m.a = Parameter(np.zeros(2))
    m.a = Conv2d(1, 1, 1)
    assert [n for n, _ in m.named_parameters()] == ["a.weight", "a.bias"]
    m.a = 3
    assert list(m.named_parameters()) == [] and m.a == 3


def test_subclass_must_call_super_init():
    class Broken(Module):
        def __init__(self):
            self.conv = Conv2d(1, 1, 1)

    with pytest.raises(RuntimeError, match="super"):
        Broken()


# ----------------------------------------------------------------------------- modes and grads
def test_train_and_eval_switch_every_submodule_and_return_self():
    net = TinyNet()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not net.heads[0].training and not net.blocks[1].bn.training


def test_eval_mode_changes_batchnorm_behaviour_through_the_parent():
    net = TinyNet()
    randomise_bn_stats(net)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    before = net.stem.bn.running_mean.copy()
    net.eval()
    y1 = net(x)
    np.testing.assert_array_equal(net.stem.bn.running_mean, before)  # eval does not update statistics
    y2 = net(x[:1])
    np.testing.assert_allclose(y2[0], y1[0][:1], rtol=1e-5, atol=1e-6)  # per-image in eval mode
    net.train()
    net(x)
    assert not np.allclose(net.stem.bn.running_mean, before)


def test_zero_grad_clears_every_parameter():
    net = TinyNet()
    for p in net.parameters():
        p.grad += 1.0
    net.zero_grad()
    assert all(not p.grad.any() for p in net.parameters())


# ----------------------------------------------------------------------------- load_state_dict
def test_load_state_dict_round_trip_gives_identical_outputs():
    src, dst = TinyNet(seed=0), TinyNet(seed=1)
    randomise_bn_stats(src)
    dst_arrays = {n: p.data for n, p in dst.named_parameters()}
    dst_buffers = dict(dst.named_buffers())
    dst.load_state_dict(src.state_dict())
    for n, p in dst.named_parameters():
        assert p.data is dst_arrays[n]  # copied into the existing arrays
    for n, b in dst.named_buffers():
        assert b is dst_buffers[n]
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v, src.state_dict()[k])
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    for a, b in zip(src.eval()(x), dst.eval()(x), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_reports_missing_unexpected_and_misshaped_keys_together():
    net = TinyNet()
    sd = net.state_dict()
    del sd["blocks.0.bn.running_var"]
    sd["heads.2.weight"] = np.zeros((1, 6, 1, 1), np.float32)
    sd["stem.conv.weight"] = np.zeros((4, 3, 5, 5), np.float32)
    before = net.state_dict()
    with pytest.raises(ValueError) as info:
        net.load_state_dict(sd)
    msg = str(info.value)
    assert "blocks.0.bn.running_var" in msg
    assert "heads.2.weight" in msg
    assert "stem.conv.weight" in msg and "(4, 3, 3, 3)" in msg and "(4, 3, 5, 5)" in msg
    assert "missing" in msg and "unexpected" in msg
    for k, v in net.state_dict().items():  # a failed strict load changes nothing
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("problem", ["missing", "unexpected", "shape"])
def test_load_state_dict_strict_refuses_each_kind_of_problem_on_its_own(problem):
    net = TinyNet()
    sd = net.state_dict()
    if problem == "missing":
        del sd["heads.1.bias"]
    elif problem == "unexpected":
        sd["head.1.bias"] = np.zeros(3, np.float32)
    else:
        sd["heads.1.bias"] = np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"head(s)?\.1\.bias"):
        net.load_state_dict(sd)


def test_load_state_dict_non_strict_loads_what_matches_and_returns_the_lists():
    net, other = TinyNet(seed=0), TinyNet(seed=3)
    sd = other.state_dict()
    del sd["scale"]
    sd["extra.weight"] = np.zeros(3, np.float32)
    sd["heads.0.bias"] = np.zeros(5, np.float32)
    result = net.load_state_dict(sd, strict=False)
    assert result["missing"] == ["scale"]
    assert result["unexpected"] == ["extra.weight"]
    assert len(result["mismatched"]) == 1 and "heads.0.bias" in result["mismatched"][0]
    np.testing.assert_array_equal(net.stem.conv.weight.data, other.stem.conv.weight.data)
    assert net.scale.data[0] == 2.0
    assert net.heads[0].bias.data.shape == (2,)


def test_load_state_dict_ignores_num_batches_tracked():
    net = TinyNet()
    sd = net.state_dict()
    sd["stem.bn.num_batches_tracked"] = np.array(7)
    sd["blocks.1.bn.num_batches_tracked"] = np.array(7)
    net.load_state_dict(sd)  # no "unexpected keys" error
    assert "stem.bn.num_batches_tracked" not in net.state_dict()


def test_load_state_dict_rejects_non_mappings():
    with pytest.raises(ValueError):
        TinyNet().load_state_dict([("scale", np.ones(1))])


@pytest.mark.parametrize("module_dtype,state_dtype", [(np.float64, np.float32), (np.float32, np.float64)])
def test_load_state_dict_keeps_the_module_dtype(module_dtype, state_dtype):
    src = TinyNet(seed=5)
    dst = TinyNet(seed=6).astype(module_dtype)
    sd = {k: v.astype(state_dtype) for k, v in src.state_dict().items()}
    dst.load_state_dict(sd)
    for k, v in dst.state_dict().items():
        assert v.dtype == module_dtype, k
        np.testing.assert_allclose(v, sd[k], rtol=1e-6)
    for p in dst.parameters():
        assert p.grad.dtype == module_dtype


# ----------------------------------------------------------------------------- astype
def test_astype_casts_parameters_grads_and_buffers_in_place_and_returns_self():
    net = TinyNet()
    params = list(net.parameters())
    values = {k: v.copy() for k, v in net.state_dict().items()}
    assert net.dtype == np.float32
    assert net.astype(np.float64) is net
    assert net.dtype == np.float64
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # same Parameter objects
    for p in net.parameters():
        assert p.data.dtype == p.grad.dtype == np.float64
    for _, b in net.named_buffers():
        assert b.dtype == np.float64
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, values[k])  # values unchanged
    x = np.random.default_rng(0).standard_normal((1, 3, 6, 6))
    assert net(x)[0].dtype == np.float64
    with pytest.raises(ValueError, match="float32"):
        net(x.astype(np.float32))


def test_astype_rejects_non_floating_dtypes():
    with pytest.raises(ValueError, match="int"):
        TinyNet().astype(np.int32)


# ----------------------------------------------------------------------------- containers
def test_sequential_runs_forward_in_order_and_backward_in_reverse():
    rng = np.random.default_rng(0)
    seq = Sequential(Conv2d(2, 3, 3, padding=1, rng=rng), LeakyReLU(0.1), Conv2d(3, 2, 1, rng=rng))
    assert len(seq) == 3 and isinstance(seq[1], LeakyReLU) and list(seq) == [seq[0], seq[1], seq[2]]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = seq(x)
    np.testing.assert_array_equal(y, seq[2](seq[1](seq[0](x))))
    dout = rng.standard_normal(y.shape).astype(np.float32)
    dx = seq.backward(dout)
    grads = [p.grad.copy() for p in seq.parameters()]
    seq.zero_grad()
    seq[2](seq[1](seq[0](x)))
    dx_manual = seq[0].backward(seq[1].backward(seq[2].backward(dout)))
    np.testing.assert_array_equal(dx, dx_manual)
    for g, p in zip(grads, seq.parameters(), strict=True):
        np.testing.assert_array_equal(g, p.grad)


def test_sequential_append_and_validation():
    seq = Sequential()
    seq.append(SiLU()).append(MaxPool2d(2))
    assert len(seq) == 2 and isinstance(seq[1], MaxPool2d)
    with pytest.raises(ValueError, match="item 1"):
        Sequential(SiLU(), np.zeros(3))


def test_module_list_names_and_validation():
    ml = ModuleList([Conv2d(1, 2, 1)])
    ml.append(BatchNorm2d(2))
    assert len(ml) == 2 and isinstance(ml[1], BatchNorm2d) and list(ml) == [ml[0], ml[1]]
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                     "1.running_var"]
    with pytest.raises(ValueError, match="Module"):
        ml.append(lambda x: x)


# ----------------------------------------------------------------------------- PyTorch-like constructors
@pytest.mark.parametrize("cls,expected", [
    (Conv2d, [("in_channels", inspect.Parameter.empty), ("out_channels", inspect.Parameter.empty),
              ("kernel_size", inspect.Parameter.empty), ("stride", 1), ("padding", 0), ("groups", 1),
              ("bias", True)]),
    (BatchNorm2d, [("num_features", inspect.Parameter.empty), ("eps", 1e-5), ("momentum", 0.1)]),
    (MaxPool2d, [("kernel_size", inspect.Parameter.empty), ("stride", None), ("padding", 0)]),
])
def test_constructors_follow_pytorch_signatures(cls, expected):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in params[:len(expected)]] == expected


def test_layers_accept_pytorch_positional_arguments_and_are_called_as_functions():
    conv = Conv2d(4, 6, 3, 2, 1, 2, False)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.groups) == (
        4, 6, 3, 2, 1, 2)
    assert conv.bias is None and conv.weight.shape == (6, 2, 3, 3)
    bn = BatchNorm2d(6, 1e-3, 0.03)
    assert (bn.eps, bn.momentum) == (1e-3, 0.03)
    pool = MaxPool2d(3, 2, 1)
    assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    assert MaxPool2d(2).stride == 2  # stride defaults to kernel_size
    x = np.random.default_rng(0).standard_normal((1, 4, 7, 7)).astype(np.float32)
    np.testing.assert_array_equal(conv(x), conv.forward(x))
    assert conv(x).shape == (1, 6, 4, 4)
