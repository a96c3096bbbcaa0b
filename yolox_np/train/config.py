"""`TrainConfig`: every training option, its default (the demo's configuration) and its rule.

Field names are the command-line option names with `-` replaced by `_` (`img_size` is `--img-size`), so a
validation error can name the option the user typed: `--img-size must be a multiple of 32, got 100`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


class ConfigError(ValueError):
    """An invalid training option; the message is one line naming the option and the rule."""


@dataclass
class TrainConfig:
    """Training options. The defaults are the demo's configuration (shapes, from scratch, ~10 min, 2 cores)."""

    data: str = "shapes"             # "shapes" or a COCO instances JSON
    images: str | None = None        # image folder of a COCO dataset (default: `images/` next to the JSON)
    val_data: str | None = None      # COCO JSON of the validation split (shapes: a held-out generated split)
    val_images: str | None = None
    model: str = "demo"              # a name for yolox_np.models.get_model, or "demo" (the demo's small model)
    img_size: int = 128
    epochs: int = 16
    batch: int = 16
    out: str = "runs/train"
    resume: bool = False
    seed: int = 0
    # shapes dataset
    num_train: int = 1600
    num_val: int = 128
    # optimisation (official recipe; lr = lr_per_img * batch)
    lr_per_img: float = 0.04 / 64     # 4x the official rate: a short schedule learns faster
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    no_aug_epochs: int = 2
    min_lr_ratio: float = 0.05
    ema: bool = True
    ema_decay: float = 0.9998
    ema_ramp: float = 2000.0
    # augmentation
    mosaic_prob: float = 0.0
    mixup_prob: float = 0.0
    hsv_prob: float = 1.0
    flip_prob: float = 0.5
    # evaluation and logging
    eval_interval: int = 3
    conf_thre: float = 0.01
    nms_thre: float = 0.65
    max_steps: int = 0               # stop after this many optimizer steps in total (0: no limit)

    @staticmethod
    def option(name: str) -> str:
        """The command-line spelling of field `name`."""
        return "--" + name.replace("_", "-")

    def _fail(self, name: str, rule: str) -> None:
        raise ConfigError(f"{self.option(name)} {rule}, got {getattr(self, name)!r}")

    def validate(self) -> TrainConfig:
        """Raise ConfigError for the first invalid option; returns self when all are valid."""
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int", int) and (isinstance(v, bool) or not isinstance(v, int)):
                self._fail(f.name, "must be an integer")
            if f.type in ("float", float):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    self._fail(f.name, "must be a finite number")
        if not isinstance(self.data, str) or not self.data:
            self._fail("data", "must be 'shapes' or the path of a COCO instances JSON")
        if not isinstance(self.model, str) or not self.model:
            self._fail("model", "must be a model name")
        if self.img_size < 32:
            self._fail("img_size", "must be at least 32")
        if self.img_size % 32:
            self._fail("img_size", "must be a multiple of 32")
        if self.epochs < 1:
            self._fail("epochs", "must be at least 1")
        if self.batch < 1:
            self._fail("batch", "must be at least 1")
        if not isinstance(self.out, str) or not self.out:
            self._fail("out", "must be a folder path")
        if self.seed < 0:
            self._fail("seed", "must be >= 0")
        if self.num_train < 1:
            self._fail("num_train", "must be at least 1")
        if self.num_val < 1:
            self._fail("num_val", "must be at least 1")
        if self.data == "shapes" and self.num_train < self.batch:
            raise ConfigError(f"--batch must not exceed --num-train ({self.num_train}), got {self.batch}")
        if self.lr_per_img <= 0:
            self._fail("lr_per_img", "must be > 0")
        if not 0 <= self.momentum < 1:
            self._fail("momentum", "must be in [0, 1)")
        if self.weight_decay < 0:
            self._fail("weight_decay", "must be >= 0")
        if self.warmup_epochs < 0:
            self._fail("warmup_epochs", "must be >= 0")
        if self.no_aug_epochs < 0:
            self._fail("no_aug_epochs", "must be >= 0")
        if self.warmup_epochs + self.no_aug_epochs > self.epochs:
            raise ConfigError(
                f"--warmup-epochs + --no-aug-epochs must not exceed --epochs ({self.epochs}), got "
                f"{self.warmup_epochs} + {self.no_aug_epochs}"
            )
        if not 0 <= self.min_lr_ratio <= 1:
            self._fail("min_lr_ratio", "must be in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            self._fail("ema_decay", "must be in [0, 1)")
        if self.ema_ramp <= 0:
            self._fail("ema_ramp", "must be > 0")
        for name in ("mosaic_prob", "mixup_prob", "hsv_prob", "flip_prob", "conf_thre", "nms_thre"):
            if not 0 <= getattr(self, name) <= 1:
                self._fail(name, "must be in [0, 1]")
        if self.eval_interval < 0:
            self._fail("eval_interval", "must be >= 0 (0: evaluate only at the end)")
        if self.max_steps < 0:
            self._fail("max_steps", "must be >= 0 (0: no limit)")
        return self

    @property
    def base_lr(self) -> float:
        """The official per-image rate times the batch size."""
        return self.lr_per_img * self.batch

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(cls.option(k) for k in unknown)}")
        return cls(**d)
