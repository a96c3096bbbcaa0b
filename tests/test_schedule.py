"""The yoloxwarmcos schedule against values computed by hand from the official formula."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yolox_np.train.schedule import YoloxWarmCos, yoloxwarmcos_lr

# base lr 0.01, warm-up W = 10, total T = 100, no-aug tail Z = 20, lr_min = 0.0005
ARGS = dict(base_lr=0.01, warmup_iters=10, total_iters=100, no_aug_iters=20)


@pytest.mark.parametrize(
    "it, expected",
    [
        (0, 0.0),                       # starts at warmup_lr_start = 0
        (5, 0.0025),                    # 0.01 * (5/10)^2
        (10, 0.01),                     # end of warm-up: base lr
        (45, 0.0005 + 0.5 * 0.0095),    # cosine half-way: cos(pi * 35 / 70) = 0
        (80, 0.0005),                   # T - Z: constant minimum begins
        (99, 0.0005),
    ],
)
def test_hand_computed_points(it, expected):
    assert yoloxwarmcos_lr(it, **ARGS) == pytest.approx(expected, abs=1e-15)


def test_just_after_warmup_and_before_tail():
    # it = 11: 0.0005 + 0.00475 * (1 + cos(pi / 70)); it = 79: 0.0005 + 0.00475 * (1 + cos(69 pi / 70))
    assert yoloxwarmcos_lr(11, **ARGS) == pytest.approx(0.0005 + 0.00475 * (1 + math.cos(math.pi / 70)))
    assert yoloxwarmcos_lr(79, **ARGS) == pytest.approx(0.0005 + 0.00475 * (1 + math.cos(69 * math.pi / 70)))


def test_warmup_start_and_ratio():
    # warmup_lr_start 0.002: it = 5 -> (0.01 - 0.002) * 0.25 + 0.002 = 0.004
    assert yoloxwarmcos_lr(5, **ARGS, warmup_lr_start=0.002) == pytest.approx(0.004)
    assert yoloxwarmcos_lr(90, **ARGS, min_lr_ratio=0.1) == pytest.approx(0.001)


def test_no_warmup_starts_at_base_lr():
    assert yoloxwarmcos_lr(0, 0.02, 0, 50, 0) == pytest.approx(0.02)


def test_epoch_wrapper_matches_official_setting():
    # official: 300 epochs, 5 warm-up, 15 no-aug; 7 iterations per epoch
    sched = YoloxWarmCos(0.01, iters_per_epoch=7, total_epochs=300, warmup_epochs=5, no_aug_epochs=15)
    assert sched(35) == pytest.approx(0.01)
    assert sched(285 * 7) == pytest.approx(0.0005)
    assert sched(285 * 7 - 1) > 0.0005


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 20), st.integers(0, 20), st.integers(1, 60))
def test_shape_properties(w, z, extra):
    t = w + z + extra
    lrs = [yoloxwarmcos_lr(i, 0.01, w, t, z) for i in range(t + 1)]
    assert all(0 <= v <= 0.01 + 1e-15 for v in lrs)
    assert all(a <= b + 1e-15 for a, b in zip(lrs[: w + 1], lrs[1 : w + 1]))   # rising warm-up
    assert all(a >= b - 1e-15 for a, b in zip(lrs[w:], lrs[w + 1 :]))          # then never rising
    assert all(v == pytest.approx(0.0005) for v in lrs[t - z :])


def test_bad_arguments():
    with pytest.raises(ValueError, match="exceed"):
        yoloxwarmcos_lr(0, 0.01, 60, 100, 50)
    with pytest.raises(ValueError, match="it must be"):
        yoloxwarmcos_lr(-1, **ARGS)
    with pytest.raises(ValueError, match="base_lr"):
        yoloxwarmcos_lr(0, float("nan"), 1, 2, 0)
    with pytest.raises(ValueError, match="iters_per_epoch"):
        YoloxWarmCos(0.01, 0, 10)
    with pytest.raises(ValueError, match="warmup_epochs"):
        YoloxWarmCos(0.01, 5, 10, warmup_epochs=8, no_aug_epochs=5)
