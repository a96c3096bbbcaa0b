"""Finite-difference checks of every layer's backward, of a composite network, and of gradcheck itself."""

import numpy as np
import pytest

from yolox_np.nn import (
    Add,
    BatchNorm2d,
    Concat,
    Conv2d,
    LeakyReLU,
    MaxPool2d,
    Module,
    Sequential,
    Sigmoid,
    SiLU,
    Upsample,
    concat,
    concat_backward,
    gradcheck,
    numerical_grad,
    rel_error,
)

TOL = 1e-6


def distinct_values(shape, rng):
    """Shuffled values with gaps of 0.1, so no max-pool window has a tie within the probe step."""
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * 0.1 - 0.05 * n + rng.uniform(-0.01, 0.01, shape)


# ----------------------------------------------------------------------------- the helpers themselves
def test_rel_error_definition():
    a = np.array([3.0, 4.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == pytest.approx(1.0)
    assert rel_error(a, 1.1 * a) == pytest.approx(0.5 / 10.5)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_numerical_grad_of_a_known_function_and_restores_the_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    before = x.copy()
    idx, num = numerical_grad(lambda: float(np.sum(np.sin(x) * x)), x)
    np.testing.assert_array_equal(idx, np.arange(12))
    np.testing.assert_allclose(num, (np.cos(x) * x + np.sin(x)).ravel(), rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(x, before)
    idx, num = numerical_grad(lambda: float(np.sum(x ** 3)), x, max_entries=5, rng=np.random.default_rng(1))
    assert len(idx) == len(set(idx.tolist())) == 5
    np.testing.assert_allclose(num, 3 * x.ravel()[idx] ** 2, rtol=1e-8)


def test_gradcheck_validates_its_arguments():
    x = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match="float64"):
        gradcheck(SiLU(), x.astype(np.float32))
    with pytest.raises(ValueError, match="astype"):
        gradcheck(Conv2d(1, 1, 1), x)  # float32 parameters
    with pytest.raises(ValueError, match="backward"):
        gradcheck(lambda v: v * 2, x)


def test_gradcheck_of_a_plain_function():
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert gradcheck(lambda v: v ** 2, x, backward=lambda d: 2 * x * d) < TOL
    assert gradcheck(lambda v: v ** 2, x, backward=lambda d: x * d) > 0.1


# ----------------------------------------------------------------------------- every layer
# (in, out, kernel, stride, padding, groups, bias, H, W); batch 2 everywhere
CONV_CASES = [
    (3, 4, 1, 1, 0, 1, True, 5, 7),
    (3, 4, 1, 2, 0, 1, True, 5, 7),
    (3, 4, 3, 1, 0, 1, True, 5, 7),
    (3, 4, 3, 1, 1, 1, True, 5, 7),
    (3, 4, 3, 2, 0, 1, False, 7, 5),
    (3, 4, 3, 2, 1, 1, True, 7, 5),
    (4, 6, 3, 1, 1, 2, True, 5, 5),
    (4, 6, 1, 1, 0, 2, False, 5, 5),
    (4, 4, 3, 1, 1, 4, True, 5, 7),
    (4, 4, 3, 2, 1, 4, True, 7, 7),
    (3, 3, 3, 2, 0, 3, False, 5, 7),
    (2, 4, 3, 1, 1, 2, True, 5, 5),
    (2, 3, 5, 2, 2, 1, True, 7, 6),
]
CONV_IDS = [f"c{a}-{b}-k{k}s{s}p{p}g{g}{'' if bias else '-nobias'}-{h}x{w}"
            for a, b, k, s, p, g, bias, h, w in CONV_CASES]


@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_gradcheck(case):
    cin, cout, k, s, p, g, bias, h, w = case
    rng = np.random.default_rng(0)
    conv = Conv2d(cin, cout, k, s, p, g, bias, rng=rng).astype(np.float64)
    x = rng.standard_normal((2, cin, h, w))
    assert gradcheck(conv, x, max_entries=None) < TOL


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 2, 1, 3)], ids=["2x3x5x7", "3x2x1x3"])
def test_batchnorm_gradcheck(training, shape):
    rng = np.random.default_rng(1)
    bn = BatchNorm2d(shape[1], eps=1e-3).astype(np.float64).train(training)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, shape[1])
    bn.bias.data[...] = rng.standard_normal(shape[1])
    bn.running_mean[...] = rng.standard_normal(shape[1])
    bn.running_var[...] = rng.uniform(0.5, 2.0, shape[1])
    x = rng.normal(1.0, 2.0, shape)
    assert gradcheck(bn, x, max_entries=None) < TOL


@pytest.mark.parametrize("layer", [LeakyReLU(0.1), LeakyReLU(), SiLU(), Sigmoid()],
                         ids=["leaky0.1", "leaky0.01", "silu", "sigmoid"])
def test_activation_gradcheck(layer):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.05, 4.0, (2, 3, 5, 7)) * rng.choice([-1.0, 1.0], (2, 3, 5, 7))  # away from the kink
    assert gradcheck(layer, x, max_entries=None) < TOL


@pytest.mark.parametrize("k,s,p,h,w", [(2, 2, 0, 5, 7), (3, 1, 1, 5, 7), (3, 2, 1, 7, 5), (5, 1, 2, 5, 5),
                                       (1, 1, 0, 3, 3), (2, 1, 1, 4, 5)],
                         ids=["k2s2", "k3s1p1", "k3s2p1", "k5s1p2", "k1", "k2s1p1"])
def test_maxpool_gradcheck(k, s, p, h, w):
    x = distinct_values((2, 3, h, w), np.random.default_rng(3))
    assert gradcheck(MaxPool2d(k, s, p), x, max_entries=None) < TOL


def test_upsample_gradcheck():
    x = np.random.default_rng(4).standard_normal((2, 3, 3, 5))
    assert gradcheck(Upsample(), x, max_entries=None) < TOL


def test_concat_and_add_gradcheck():
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((2, c, 3, 5)) for c in (1, 3, 2)]
    cat = Concat()
    assert gradcheck(lambda *v: cat(list(v)), xs, backward=cat.backward, max_entries=None) < TOL
    _, sizes = concat(xs)
    assert gradcheck(lambda *v: concat(v)[0], xs, backward=lambda d: concat_backward(d, sizes),
                     max_entries=None) < TOL
    assert gradcheck(Add(), [rng.standard_normal((2, 3, 3, 5)) for _ in range(2)], max_entries=None) < TOL


def test_sequential_gradcheck():
    rng = np.random.default_rng(6)
    # convolutions feeding a BN have no bias, as in YOLOX (see the zero-gradient test below)
    seq = Sequential(Conv2d(3, 4, 3, 2, 1, bias=False, rng=rng), BatchNorm2d(4), SiLU(),
                     Conv2d(4, 4, 3, 1, 1, groups=4, bias=False, rng=rng), BatchNorm2d(4), LeakyReLU(0.1),
                     Conv2d(4, 2, 1, rng=rng)).astype(np.float64)
    x = rng.standard_normal((2, 3, 7, 7))
    assert gradcheck(seq, x) < TOL
    seq.eval()
    assert gradcheck(seq, x) < TOL


# ----------------------------------------------------------------------------- a composite network
class ResidualConcatNet(Module):
    """A small CSP-like network in which tensors feed several consumers.

    h = stem(x) feeds the residual branch, the residual add and a skip concatenation; r = h + branch(h)
    feeds max-pooling and a concatenation. Backward must add up the gradients of every use.
    """

    def __init__(self, rng):
        super().__init__()
        self.stem = Conv2d(3, 4, 3, padding=1, bias=False, rng=rng)
        self.stem_bn = BatchNorm2d(4)
        self.stem_act = SiLU()
        self.branch_conv = Conv2d(4, 4, 3, padding=1, groups=4, bias=False, rng=rng)
        self.branch_bn = BatchNorm2d(4)
        self.branch_act = LeakyReLU(0.1)
        self.add = Add()
        self.pool = MaxPool2d(3, 1, 1)
        self.cat = Concat()
        self.down = Conv2d(8, 6, 3, stride=2, padding=1, rng=rng)
        self.up = Upsample()
        self.skip_cat = Concat()
        self.head = Conv2d(10, 2, 1, rng=rng)
        self.out_act = Sigmoid()

    def forward(self, x):
        h = self.stem_act(self.stem_bn(self.stem(x)))
        r = self.add(h, self.branch_act(self.branch_bn(self.branch_conv(h))))
        c = self.cat([r, self.pool(r)])
        u = self.up(self.down(c))
        return self.out_act(self.head(self.skip_cat([u, h])))

    def backward(self, dout, drop_skip_gradient=False):
        du, dh_skip = self.skip_cat.backward(self.head.backward(self.out_act.backward(dout)))
        dr_cat, dpool = self.cat.backward(self.down.backward(self.up.backward(du)))
        dr = dr_cat + self.pool.backward(dpool)
        dh_residual, dbranch = self.add.backward(dr)
        dh_branch = self.branch_conv.backward(self.branch_bn.backward(self.branch_act.backward(dbranch)))
        dh = dh_residual + dh_branch
        if not drop_skip_gradient:
            dh = dh + dh_skip
        return self.stem.backward(self.stem_bn.backward(self.stem_act.backward(dh)))


class ResidualConcatNetMissingABranch(ResidualConcatNet):
    def backward(self, dout):
        return super().backward(dout, drop_skip_gradient=True)


def make_net(cls=ResidualConcatNet, training=True):
    rng = np.random.default_rng(7)
    net = cls(rng).astype(np.float64).train(training)
    for bn in (net.stem_bn, net.branch_bn):
        bn.weight.data[...] = rng.uniform(0.5, 1.5, 4)
        bn.bias.data[...] = rng.normal(0, 0.3, 4)
        bn.running_mean[...] = rng.normal(0, 0.3, 4)
        bn.running_var[...] = rng.uniform(0.5, 1.5, 4)
    return net, rng.standard_normal((2, 3, 6, 6))


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_composite_network_gradcheck(training):
    net, x = make_net(training=training)
    assert net(x).shape == (2, 2, 6, 6)
    assert gradcheck(net, x, max_entries=80) < TOL


def test_composite_network_that_drops_a_branch_gradient_fails_gradcheck():
    net, x = make_net(ResidualConcatNetMissingABranch)
    assert gradcheck(net, x, max_entries=40) > 1e-2


# ----------------------------------------------------------------------------- gradcheck can fail
class SiLUMissingATerm(SiLU):
    def backward(self, dout):
        return dout * self._s  # forgets x * s * (1 - s)


class ConvWithFlippedWeightGradient(Conv2d):
    """Correct input gradient, wrong parameter gradient (kernel flipped: a classic correlation mix-up)."""

    def backward(self, dout):
        before = self.weight.grad.copy()
        dx = super().backward(dout)
        self.weight.grad[...] = before + (self.weight.grad - before)[:, :, ::-1, ::-1]
        return dx


class BatchNormTreatingStatisticsAsConstants(BatchNorm2d):
    """Train-mode BN whose dx ignores that the batch mean and variance depend on x."""

    def forward(self, x):
        self.seen = x
        return super().forward(x)

    def backward(self, dout):
        super().backward(dout)
        inv_std = 1 / np.sqrt(self.seen.var(axis=(0, 2, 3)) + self.eps)
        return dout * (self.weight.data * inv_std).reshape(1, -1, 1, 1)


def test_gradcheck_detects_a_wrong_input_gradient():
    x = np.random.default_rng(8).standard_normal((2, 3, 4, 5))
    assert gradcheck(SiLUMissingATerm(), x) > 1e-2
    bn = BatchNormTreatingStatisticsAsConstants(3).astype(np.float64)
    assert gradcheck(bn, x) > 1e-2
    assert gradcheck(BatchNorm2d(3).astype(np.float64), x) < TOL  # the correct layer passes


def test_gradcheck_detects_a_wrong_parameter_gradient_only_when_parameters_are_checked():
    rng = np.random.default_rng(9)
    conv = ConvWithFlippedWeightGradient(2, 3, 3, padding=1, rng=rng).astype(np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    assert gradcheck(conv, x) > 1e-2
    assert gradcheck(conv, x, check_params=False) < TOL


def test_gradcheck_accepts_a_non_contiguous_input():
    """A transposed view is a valid float64 input: the check must either probe it correctly or refuse it."""
    x = np.random.default_rng(10).standard_normal((2, 3, 5, 4)).transpose(0, 1, 3, 2)
    assert not x.flags.c_contiguous
    try:
        err = gradcheck(SiLU(), x)
    except ValueError as e:
        assert "contiguous" in str(e)
    else:
        assert err < TOL


def test_gradcheck_passes_a_parameter_whose_true_gradient_is_zero():
    """A conv bias in front of a train-mode BN has gradient exactly 0 (BN removes any per-channel shift).

    The finite differences of that bias are round-off noise of about eps * |f| / h; a correct layer must
    not be reported with a relative error of about 1 because of it.
    """
    rng = np.random.default_rng(11)
    conv = Conv2d(3, 4, 3, 2, 1, rng=rng)
    seq = Sequential(conv, BatchNorm2d(4), SiLU()).astype(np.float64)
    x = rng.standard_normal((2, 3, 7, 7))
    assert gradcheck(seq, x, check_params=False) < TOL
    seq(x)
    seq.zero_grad()
    seq.backward(rng.standard_normal((2, 4, 4, 4)))
    assert np.abs(conv.bias.grad).max() < 1e-12  # the analytic gradient really is 0
    assert gradcheck(seq, x) < TOL
