"""Hypothesis strategies shared by the test-suite (one place, as in minitorch)."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite_f64 = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


def arrays(shape, dtype=np.float64, lo=-3.0, hi=3.0):
    """Arrays of a fixed shape with finite values in [lo, hi]."""
    return hnp.arrays(dtype, shape, elements=st.floats(lo, hi, allow_nan=False, width=64))


# --- boxes (xyxy, pixels) -------------------------------------------------------------------------


@st.composite
def xyxy_boxes(draw, n, lo=-50.0, hi=50.0, min_size=0.0, max_size=60.0):
    """(n, 4) float64 xyxy boxes with corners in [lo, hi] and sides in [min_size, max_size]."""
    coord = st.floats(lo, hi, allow_nan=False, width=64)
    size = st.floats(min_size, max_size, allow_nan=False, width=64)
    xy = draw(hnp.arrays(np.float64, (n, 2), elements=coord))
    wh = draw(hnp.arrays(np.float64, (n, 2), elements=size))
    return np.concatenate([xy, xy + wh], axis=1)


# --- nn layer configurations ------------------------------------------------------------------------


@st.composite
def conv_configs(draw, max_batch=2, max_size=9):
    """Valid Conv2d configurations: a dict of the constructor arguments plus `batch`, `height`, `width`.

    Covers plain, grouped, depthwise (groups = in_channels, with channel multiplier 1 or 2) and bias-free
    convolutions; the padded input is always at least as large as the kernel.
    """
    kernel_size = draw(st.sampled_from([1, 2, 3, 5]))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel_size // 2 + 1))
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "plain":
        groups, in_channels, out_channels = 1, draw(st.integers(1, 4)), draw(st.integers(1, 4))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        in_channels, out_channels = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    else:
        groups = in_channels = draw(st.integers(1, 4))
        out_channels = in_channels * draw(st.integers(1, 2))
    smallest = max(1, kernel_size - 2 * padding)
    return {
        "in_channels": in_channels, "out_channels": out_channels, "kernel_size": kernel_size,
        "stride": stride, "padding": padding, "groups": groups, "bias": draw(st.booleans()),
        "batch": draw(st.integers(1, max_batch)),
        "height": draw(st.integers(smallest, max_size)), "width": draw(st.integers(smallest, max_size)),
    }


@st.composite
def pool_configs(draw, max_batch=2, max_size=9):
    """Valid MaxPool2d configurations (PyTorch's rule padding <= kernel_size // 2) with an input shape."""
    kernel_size = draw(st.integers(1, 5))
    stride = draw(st.integers(1, 3))
    padding = draw(st.integers(0, kernel_size // 2))
    smallest = max(1, kernel_size - 2 * padding)
    return {
        "kernel_size": kernel_size, "stride": stride, "padding": padding,
        "batch": draw(st.integers(1, max_batch)), "channels": draw(st.integers(1, 3)),
        "height": draw(st.integers(smallest, max_size)), "width": draw(st.integers(smallest, max_size)),
    }
