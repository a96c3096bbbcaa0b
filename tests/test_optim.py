"""SGD (momentum 0.9, Nesterov) and YOLOX's parameter groups, against numbers worked out by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.nn import BatchNorm2d, Conv2d, Module, Parameter, Sequential
from yolox_np.train.optim import SGD, parameter_groups, sgd_nesterov_update


class OneParam(Module):
    def __init__(self, values):
        super().__init__()
        self.weight = Parameter(np.array(values, dtype=np.float64))


def test_three_nesterov_steps_match_hand_computation():
    # w = (1, -2), constant gradient (0.5, 1), lr 0.1, momentum 0.9, weight decay 0.1, worked by hand:
    # step 1: g = (0.6, 0.8), buf = g, w -= 0.1 * (g + 0.9 buf) = 0.1 * (1.14, 1.52)     -> (0.886, -2.152)
    # step 2: g = (0.5886, 0.7848), buf = (1.1286, 1.5048), update 0.1 * (1.60434, 2.13912)
    #                                                                                  -> (0.725566, -2.365912)
    # step 3: g = (0.5725566, 0.7634088), buf = (1.5882966, 2.1177288), update 0.1 * (2.00202354, 2.66936472)
    #                                                                                  -> (0.525363646, -2.632848472)
    m = OneParam([1.0, -2.0])
    opt = SGD([{"params": dict(m.named_parameters()), "weight_decay": 0.1}], lr=0.1, momentum=0.9)
    expected_w = [(0.886, -2.152), (0.725566, -2.365912), (0.525363646, -2.632848472)]
    expected_buf = [(0.6, 0.8), (1.1286, 1.5048), (1.5882966, 2.1177288)]
    for w, buf in zip(expected_w, expected_buf):
        m.weight.grad[...] = (0.5, 1.0)
        opt.step()
        np.testing.assert_allclose(m.weight.data, w, rtol=0, atol=1e-12)
        np.testing.assert_allclose(opt.buffers["weight"], buf, rtol=0, atol=1e-12)


def test_plain_momentum_without_nesterov():
    # w = 3, grad 2, lr 0.5, momentum 0.5, no decay: buf 2 -> w = 2; buf 0.5*2+2 = 3 -> w = 0.5
    w = np.array([3.0])
    buf = sgd_nesterov_update(w, np.array([2.0]), None, 0.5, momentum=0.5, nesterov=False)
    np.testing.assert_allclose(w, [2.0])
    sgd_nesterov_update(w, np.array([2.0]), buf, 0.5, momentum=0.5, nesterov=False)
    np.testing.assert_allclose(w, [0.5])


def test_first_step_at_lr_zero_creates_momentum_buffer():
    m = OneParam([1.0, 1.0])
    opt = SGD([{"params": dict(m.named_parameters()), "weight_decay": 0.0}], lr=0.0)
    m.weight.grad[...] = (1.0, -1.0)
    opt.step()
    np.testing.assert_array_equal(m.weight.data, [1.0, 1.0])
    np.testing.assert_array_equal(opt.buffers["weight"], [1.0, -1.0])
    # second step at lr 1: buf = 0.9 * (1, -1) + (1, -1) = (1.9, -1.9); w -= (1, -1) + 0.9 * buf
    opt.lr = 1.0
    opt.step()
    np.testing.assert_allclose(m.weight.data, [1.0 - 2.71, 1.0 + 2.71], atol=1e-12)


def _conv_bn_model():
    rng = np.random.default_rng(0)
    return Sequential(Conv2d(2, 3, 3, padding=1, bias=False, rng=rng), BatchNorm2d(3), Conv2d(3, 4, 1, rng=rng))


def test_parameter_groups_decay_only_conv_weights():
    groups = {g["name"]: g for g in parameter_groups(_conv_bn_model(), weight_decay=5e-4)}
    assert list(groups["weight"]["params"]) == ["0.weight", "2.weight"]
    assert list(groups["bn_weight"]["params"]) == ["1.weight"]
    assert list(groups["bias"]["params"]) == ["1.bias", "2.bias"]
    assert groups["weight"]["weight_decay"] == 5e-4
    assert groups["bn_weight"]["weight_decay"] == 0 and groups["bias"]["weight_decay"] == 0


def test_weight_decay_shrinks_conv_weights_but_not_bn_or_bias():
    model = _conv_bn_model()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = SGD(model, lr=0.1, weight_decay=0.01)
    model.zero_grad()
    opt.step()  # zero gradients: only decay acts; first step w -= lr * (1 + 0.9) * wd * w
    after = model.state_dict()
    for k in ("0.weight", "2.weight"):
        np.testing.assert_allclose(after[k], before[k] * (1 - 0.1 * 1.9 * 0.01), rtol=1e-6)
    for k in ("1.weight", "1.bias", "2.bias"):
        np.testing.assert_array_equal(after[k], before[k])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=3), st.floats(0, 1), st.floats(0, 0.9),
       st.floats(0, 0.1), st.booleans())
def test_update_matches_naive_loop(grads, lr, momentum, wd, nesterov):
    # independent scalar transcription of PyTorch's SGD, applied to two steps
    if nesterov and momentum == 0:
        momentum = 0.5
    w = np.array([0.3, -1.2, 2.0])
    ref = w.tolist()
    buf = None
    ref_buf = [None] * 3
    for _ in range(2):
        buf = sgd_nesterov_update(w, np.array(grads), buf, lr, momentum, wd, nesterov)
        for i in range(3):
            g = grads[i] + wd * ref[i]
            ref_buf[i] = g if ref_buf[i] is None else momentum * ref_buf[i] + g
            d = g + momentum * ref_buf[i] if nesterov else ref_buf[i]
            ref[i] -= lr * d
    np.testing.assert_allclose(w, ref, rtol=1e-12, atol=1e-12)


def test_state_dict_round_trip_continues_identically():
    m1, m2 = OneParam([1.0, 2.0]), OneParam([1.0, 2.0])
    o1 = SGD([{"params": dict(m1.named_parameters()), "weight_decay": 0.01}], lr=0.1)
    m1.weight.grad[...] = (1.0, 2.0)
    o1.step()
    m2.load_state_dict(m1.state_dict())
    o2 = SGD([{"params": dict(m2.named_parameters()), "weight_decay": 0.01}], lr=0.0)
    o2.load_state_dict(o1.state_dict())
    assert o2.lr == 0.1
    for m, o in ((m1, o1), (m2, o2)):
        m.weight.grad[...] = (-1.0, 0.5)
        o.step()
    np.testing.assert_array_equal(m1.weight.data, m2.weight.data)


def test_bad_inputs_raise():
    m = OneParam([1.0])
    with pytest.raises(ValueError, match="learning rate"):
        SGD(m, lr=-1.0)
    with pytest.raises(ValueError, match="momentum"):
        SGD(m, momentum=1.5)
    opt = SGD(m)
    with pytest.raises(ValueError, match="learning rate"):
        opt.lr = float("nan")
    with pytest.raises(ValueError, match="unknown parameter"):
        opt.load_state_dict({"momentum_buffers": {"nope": np.zeros(1)}})
    with pytest.raises(ValueError, match="shape"):
        opt.load_state_dict({"momentum_buffers": {"weight": np.zeros(3)}})
    with pytest.raises(ValueError, match="shape"):
        sgd_nesterov_update(np.zeros(2), np.zeros(3), None, 0.1)
