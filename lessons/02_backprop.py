# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Backpropagation by hand, and how to trust it
#
# **Goals**
# - see the contract every layer keeps: `forward` caches, `backward` returns the input gradient and adds to
#   the parameter gradients;
# - derive the backward of a convolution and of batch normalisation;
# - check any backward against finite differences in float64 with `gradcheck`.

# %%
import numpy as np

from yolox_np import nn
from yolox_np.nn import functional as F

rng = np.random.default_rng(0)

# %% [markdown]
# ## The contract
# A layer's `forward(x)` keeps what it needs; `backward(dout)` receives ∂L/∂y and returns ∂L/∂x. Parameter
# gradients are **accumulated** (`+=`), so a weight used by two paths collects both contributions.

# %%
conv = nn.Conv2d(3, 4, 3, stride=1, padding=1)
x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
y = conv(x)
dout = np.ones_like(y)
dx = conv.backward(dout)
g1 = conv.weight.grad.copy()
conv.backward(dout)
print("dx shape", dx.shape, "| grads doubled after a second backward:", np.allclose(conv.weight.grad, 2 * g1))
conv.zero_grad()

# %% [markdown]
# ## Convolution backward
# With `col = im2col(x)` the forward is `Y = W·col`, so `∂L/∂W = dY·colᵀ`, `∂L/∂col = Wᵀ·dY`, and `∂L/∂x`
# is `col2im(∂L/∂col)`: every copy that im2col made sends its gradient back to the same input pixel, so the
# pieces are *added*. The bias gradient is the sum of `dY` over batch and positions.

# %% [markdown]
# ## Checking a gradient
# The central difference `(f(x + h) − f(x − h)) / 2h` approximates each partial derivative with error
# O(h²). `gradcheck` compares it with the analytic gradient for a random upstream gradient, in float64
# (float32 would drown the difference in rounding), and returns a relative error.

# %%
conv64 = nn.Conv2d(3, 4, 3, stride=2, padding=1).astype(np.float64)
print("conv, stride 2:", nn.gradcheck(conv64, rng.standard_normal((2, 3, 7, 6))))
dw = nn.Conv2d(4, 4, 3, padding=1, groups=4).astype(np.float64)
print("depthwise conv:", nn.gradcheck(dw, rng.standard_normal((2, 4, 5, 5))))
bn = nn.BatchNorm2d(3).astype(np.float64)
print("batch norm (train):", nn.gradcheck(bn, rng.standard_normal((4, 3, 3, 3))))

# %% [markdown]
# A check must be able to fail. Here is a SiLU whose backward forgets one term of the product rule:

# %%
class WrongSiLU(nn.SiLU):
    def backward(self, dout):
        return dout * self._s  # misses x * s * (1 - s)


print("wrong SiLU:", nn.gradcheck(WrongSiLU(), rng.standard_normal((2, 3, 4, 4))))
print("right SiLU:", nn.gradcheck(nn.SiLU(), rng.standard_normal((2, 3, 4, 4))))

# %% [markdown]
# ## Batch normalisation backward
# In train mode `x̂ = (x − μ)/σ` uses the batch's own mean and variance, so every output depends on every
# input of its channel. With `n = N·H·W` values per channel and `g = γ·dout`:
# `dx = (g − mean(g) − x̂·mean(g·x̂)) / σ`.

# %%
x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
y, cache, _, _ = F.batchnorm_forward_train(x, gamma, beta, 1e-5)
print("per-channel mean of x-hat:", np.round(cache[0].mean(axis=(0, 2, 3)), 12))
print("per-channel var of x-hat: ", np.round(cache[0].var(axis=(0, 2, 3)), 6))

# %% [markdown]
# ## Summary
# - Backward = chain rule, one layer at a time; parameter gradients accumulate.
# - Convolution backward is two more matrix products and a col2im scatter-add.
# - `gradcheck` in float64 turns "I think it is right" into a number: below 1e-6 here.
#
# ## Exercises
# 1. **`conv_backward`** (graded): write `yolox_np.nn.functional.conv2d_naive_backward(dout, x, w, b,
#    stride, padding, groups)` returning `(dx, dw, db)` with loops.
# 2. **`batchnorm_backward`** (graded): write `yolox_np.nn.functional.batchnorm_backward(dout, cache)` with
#    `cache = (x_hat, inv_std, gamma)`.
# 3. Why does the gradient check use a *random* upstream gradient rather than all ones?

# %%
from yolox_np.grading import check

print(check("conv_backward", F.conv2d_naive_backward))
print(check("batchnorm_backward", F.batchnorm_backward))
