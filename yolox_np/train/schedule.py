"""The "yoloxwarmcos" learning-rate schedule of official YOLOX, per iteration.

Quadratic warm-up from `warmup_lr_start` over the first `warmup_epochs`, cosine decay down to
`min_lr_ratio * base_lr`, then constant at that minimum for the last `no_aug_epochs`.
"""

from __future__ import annotations

import math


def yoloxwarmcos_lr(it: int, base_lr: float, warmup_iters: int, total_iters: int, no_aug_iters: int,
                    min_lr_ratio: float = 0.05, warmup_lr_start: float = 0.0) -> float:
    """Learning rate of global iteration `it` (0-based; the lr used by step `it`).

    W = warmup_iters, T = total_iters, Z = no_aug_iters, lr_min = min_lr_ratio * base_lr:
    it <= W: (base_lr - warmup_lr_start) * (it / W)^2 + warmup_lr_start;  it >= T - Z: lr_min;
    else lr_min + 0.5 (base_lr - lr_min) (1 + cos(pi (it - W) / (T - W - Z))).
    With W = 0 there is no warm-up (the official code would divide by zero at it = 0).
    """
    for name, v in (("it", it), ("warmup_iters", warmup_iters), ("total_iters", total_iters),
                    ("no_aug_iters", no_aug_iters)):
        if int(v) != v or v < 0:
            raise ValueError(f"yoloxwarmcos_lr: {name} must be a non-negative integer, got {v!r}")
    if not (math.isfinite(base_lr) and base_lr >= 0):
        raise ValueError(f"yoloxwarmcos_lr: base_lr must be finite and >= 0, got {base_lr}")
    if not (0 <= min_lr_ratio <= 1):
        raise ValueError(f"yoloxwarmcos_lr: min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if warmup_iters + no_aug_iters > total_iters:
        raise ValueError(
            f"yoloxwarmcos_lr: warm-up ({warmup_iters}) + no-aug ({no_aug_iters}) iterations exceed the "
            f"total ({total_iters})"
        )
    ### BEGIN SOLUTION
    # HINT: three regions: quadratic warm-up (it <= W), constant minimum (it >= T - Z), cosine in between.
    lr_min = base_lr * min_lr_ratio
    if warmup_iters > 0 and it <= warmup_iters:
        return (base_lr - warmup_lr_start) * (it / warmup_iters) ** 2 + warmup_lr_start
    if it >= total_iters - no_aug_iters:
        return lr_min
    span = total_iters - warmup_iters - no_aug_iters
    return lr_min + 0.5 * (base_lr - lr_min) * (1.0 + math.cos(math.pi * (it - warmup_iters) / span))
    ### END SOLUTION


class YoloxWarmCos:
    """The schedule bound to a run: `sched(it)` gives the lr of global iteration `it`.

    `no_aug_epochs` is the length of the constant-minimum tail (official: 15 of 300 epochs).
    """

    def __init__(self, base_lr: float, iters_per_epoch: int, total_epochs: int, warmup_epochs: int = 5,
                 no_aug_epochs: int = 15, min_lr_ratio: float = 0.05, warmup_lr_start: float = 0.0):
        if int(iters_per_epoch) != iters_per_epoch or iters_per_epoch < 1:
            raise ValueError(f"iters_per_epoch must be a positive integer, got {iters_per_epoch!r}")
        if int(total_epochs) != total_epochs or total_epochs < 1:
            raise ValueError(f"total_epochs must be a positive integer, got {total_epochs!r}")
        if warmup_epochs < 0 or no_aug_epochs < 0 or warmup_epochs + no_aug_epochs > total_epochs:
            raise ValueError(
                f"warmup_epochs ({warmup_epochs}) and no_aug_epochs ({no_aug_epochs}) must be >= 0 and "
                f"together at most total_epochs ({total_epochs})"
            )
        self.base_lr = float(base_lr)
        self.iters_per_epoch = int(iters_per_epoch)
        self.total_iters = int(total_epochs) * self.iters_per_epoch
        self.warmup_iters = int(round(warmup_epochs * self.iters_per_epoch))
        self.no_aug_iters = int(no_aug_epochs) * self.iters_per_epoch
        self.min_lr_ratio = float(min_lr_ratio)
        self.warmup_lr_start = float(warmup_lr_start)
        yoloxwarmcos_lr(0, self.base_lr, self.warmup_iters, self.total_iters, self.no_aug_iters,
                        self.min_lr_ratio, self.warmup_lr_start)  # validates the numbers once

    def __call__(self, it: int) -> float:
        return yoloxwarmcos_lr(it, self.base_lr, self.warmup_iters, self.total_iters, self.no_aug_iters,
                               self.min_lr_ratio, self.warmup_lr_start)
