"""A single-process batch loader with seeded shuffling and exactly resumable randomness."""

from __future__ import annotations

import math

import numpy as np

from yolox_np.data.augment import YoloxAugment, val_transform

# Tags keep the shuffling stream apart from the per-sample streams (SeedSequence pads short entropy
# with zeros, so [seed, epoch] and [seed, epoch, 0] would otherwise coincide).
_SHUFFLE_TAG = 0
_SAMPLE_TAG = 1


class DataLoader:
    """Batches of letterboxed images and YOLOX targets.

    Iterating yields ``(images (B, 3, H, W) float32 BGR 0..255, targets, image_ids)`` where ``targets`` is a
    list of B arrays (G_i, 5) ``[class, cx, cy, w, h]`` in input pixels and ``image_ids`` a list of B ids.
    ``augment=None`` only letterboxes (every box kept); a :class:`YoloxAugment` applies the training
    augmentation. All randomness of an epoch derives from ``(seed, epoch)``: the order from one stream and
    sample k of the epoch from its own stream ``(seed, epoch, k)``, so results do not depend on how far
    the loader got before, and :meth:`state_dict` (epoch and position) is enough to resume exactly.
    After a complete pass the epoch advances by one; :meth:`set_epoch` chooses it explicitly.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, seed: int = 0, img_size=(416, 416),
                 augment: YoloxAugment | None = None, drop_last: bool = False):
        if len(dataset) == 0:
            raise ValueError("dataset is empty")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        try:
            height, width = (int(v) for v in img_size)
        except (TypeError, ValueError) as err:
            raise ValueError(f"img_size must be (H, W), got {img_size!r}") from err
        if height <= 0 or width <= 0:
            raise ValueError(f"img_size must be positive, got {img_size!r}")
        if augment is not None and not callable(augment):
            raise ValueError(f"augment must be None or a YoloxAugment, got {type(augment).__name__}")
        if drop_last and len(dataset) < batch_size:
            raise ValueError(f"drop_last with batch_size {batch_size} > {len(dataset)} images leaves no batch")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.img_size = (height, width)
        self.augment = augment
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self._next_batch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first batch at the next iteration."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)
        self._next_batch = 0

    def order(self, epoch: int | None = None) -> np.ndarray:
        """Dataset indices of an epoch in the order they are served."""
        epoch = self.epoch if epoch is None else int(epoch)
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch, _SHUFFLE_TAG]).permutation(n)

    def _load(self, index: int, position: int):
        if self.augment is None:
            img, boxes, classes, image_id = self.dataset[index]
            chw, targets = val_transform(img, boxes, classes, self.img_size)
            return chw, targets, image_id
        rng = np.random.default_rng([self.seed, self.epoch, _SAMPLE_TAG, position])
        return self.augment(self.dataset, index, self.img_size, rng)

    def __iter__(self):
        order = self.order()
        for b in range(self._next_batch, len(self)):
            positions = range(b * self.batch_size, min((b + 1) * self.batch_size, len(order)))
            samples = [self._load(int(order[p]), p) for p in positions]
            self._next_batch = b + 1
            if self._next_batch == len(self):
                self.epoch += 1
                self._next_batch = 0
            images = np.stack([s[0] for s in samples]).astype(np.float32, copy=False)
            yield images, [s[1] for s in samples], [s[2] for s in samples]

    def _mosaic_flag(self):
        flag = getattr(self.augment, "enable_mosaic", None)
        return None if flag is None else bool(flag)

    def state_dict(self) -> dict:
        """Everything needed to continue exactly where the loader stands (plain Python values)."""
        return {
            "seed": self.seed,
            "epoch": self.epoch,
            "next_batch": self._next_batch,
            "batch_size": self.batch_size,
            "num_samples": len(self.dataset),
            "shuffle": self.shuffle,
            "enable_mosaic": self._mosaic_flag(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; refuses a state from a different dataset size, batch size or
        shuffling, since resuming would then not be exact."""
        required = {"seed", "epoch", "next_batch", "batch_size", "num_samples", "shuffle"}
        if not isinstance(state, dict) or not required <= state.keys():
            missing = sorted(required - set(state)) if isinstance(state, dict) else sorted(required)
            raise ValueError(f"loader state is missing {missing}")
        for key, mine in (("batch_size", self.batch_size), ("num_samples", len(self.dataset)),
                          ("shuffle", self.shuffle)):
            if state[key] != mine:
                raise ValueError(f"loader state has {key}={state[key]!r} but this loader has {key}={mine!r}")
        if not 0 <= int(state["next_batch"]) < len(self):
            raise ValueError(f"loader state next_batch={state['next_batch']} is outside 0..{len(self) - 1}")
        if int(state["seed"]) < 0 or int(state["epoch"]) < 0:
            raise ValueError(f"loader state has a negative seed or epoch: {state['seed']}, {state['epoch']}")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._next_batch = int(state["next_batch"])
        if state.get("enable_mosaic") is not None and self._mosaic_flag() is not None:
            self.augment.enable_mosaic = bool(state["enable_mosaic"])
