"""yolox-np: YOLOX in NumPy with hand-written backpropagation and Numba kernels."""

__version__ = "0.1.0"
