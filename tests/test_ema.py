"""EMA with YOLOX's ramp, on parameters and BatchNorm buffers, against hand-computed values."""

import math

import numpy as np
import pytest

from yolox_np.nn import BatchNorm2d, Module, Parameter, Sequential
from yolox_np.train.ema import ModelEMA, ema_decay


class OneParam(Module):
    def __init__(self):
        super().__init__()
        self.weight = Parameter(np.array([1.0, 2.0], dtype=np.float64))


def test_decay_ramp_values():
    assert ema_decay(0) == 0.0
    assert ema_decay(2000) == pytest.approx(0.9998 * (1 - math.exp(-1)))  # 0.631994...
    assert ema_decay(2000) == pytest.approx(0.6319941347, abs=1e-9)
    assert ema_decay(1) == pytest.approx(0.000499775046, abs=1e-12)
    assert ema_decay(10**7) == pytest.approx(0.9998)


def test_two_updates_by_hand():
    model = OneParam()
    ema = ModelEMA(model)
    model.weight.data[...] = (3.0, 0.0)
    d1 = ema.update(model)
    assert d1 == pytest.approx(0.9998 * (1 - math.exp(-1 / 2000)))
    np.testing.assert_allclose(ema.module.weight.data, (d1 * 1 + (1 - d1) * 3, d1 * 2 + (1 - d1) * 0))
    prev = ema.module.weight.data.copy()
    model.weight.data[...] = (-1.0, 4.0)
    d2 = ema.update(model)
    assert d2 == pytest.approx(0.9998 * (1 - math.exp(-2 / 2000)))
    np.testing.assert_allclose(ema.module.weight.data, d2 * prev + (1 - d2) * np.array([-1.0, 4.0]))
    assert ema.updates == 2


def test_bn_buffers_are_averaged_and_copy_is_in_eval_mode():
    model = Sequential(BatchNorm2d(2))
    ema = ModelEMA(model, decay=0.5, ramp=1.0)
    assert not ema.module.training and model.training
    model[0].running_mean[...] = (4.0, -4.0)
    model[0].running_var[...] = (2.0, 3.0)
    d = ema.update(model)  # 0.5 * (1 - e^-1)
    assert d == pytest.approx(0.5 * (1 - math.exp(-1)))
    np.testing.assert_allclose(ema.module[0].running_mean, (1 - d) * np.array([4.0, -4.0]), rtol=1e-6)
    np.testing.assert_allclose(ema.module[0].running_var, d + (1 - d) * np.array([2.0, 3.0]), rtol=1e-6)


def test_ema_does_not_alias_model():
    model = OneParam()
    ema = ModelEMA(model)
    model.weight.data[...] = 100.0
    np.testing.assert_array_equal(ema.module.weight.data, (1.0, 2.0))


def test_state_dict_round_trip():
    model = OneParam()
    ema = ModelEMA(model)
    model.weight.data[...] = (5.0, 5.0)
    ema.update(model)
    other = ModelEMA(OneParam())
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1
    np.testing.assert_array_equal(other.module.weight.data, ema.module.weight.data)
    model.weight.data[...] = (0.0, 1.0)
    ema.update(model)
    other.update(model)
    np.testing.assert_array_equal(other.module.weight.data, ema.module.weight.data)


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay"):
        ema_decay(1, decay=1.0)
    with pytest.raises(ValueError, match="updates"):
        ema_decay(-1)
    with pytest.raises(ValueError, match="Module"):
        ModelEMA(np.zeros(3))
    with pytest.raises(ValueError, match="does not match"):
        ModelEMA(OneParam()).update(Sequential(BatchNorm2d(2)))
