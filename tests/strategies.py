"""Hypothesis strategies shared by the test-suite (one place, as in minitorch)."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

finite_f64 = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)


def arrays(shape, dtype=np.float64, lo=-3.0, hi=3.0):
    """Arrays of a fixed shape with finite values in [lo, hi]."""
    return hnp.arrays(dtype, shape, elements=st.floats(lo, hi, allow_nan=False, width=64))
