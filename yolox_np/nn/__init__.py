"""The neural-network engine: modules with hand-written backward passes (NCHW, NumPy + Numba)."""

from .functional import conv2d_backward, conv2d_forward, conv2d_naive
from .gradcheck import gradcheck, numerical_grad, rel_error
from .layers import (
    Add,
    BatchNorm2d,
    Concat,
    Conv2d,
    Identity,
    LeakyReLU,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SiLU,
    Upsample,
    concat,
    concat_backward,
)
from .module import Module, ModuleList, Parameter, Sequential

__all__ = [
    "Add", "BatchNorm2d", "Concat", "Conv2d", "Identity", "LeakyReLU", "MaxPool2d", "Module", "ModuleList",
    "Parameter", "ReLU", "Sequential", "Sigmoid", "SiLU", "Upsample", "concat", "concat_backward",
    "conv2d_backward", "conv2d_forward", "conv2d_naive", "gradcheck", "numerical_grad", "rel_error",
]
