"""`Trainer`: the official YOLOX training loop, step by step.

One step: forward (train mode) -> `yolox_loss` -> `model.backward` -> SGD step at the scheduled lr -> EMA
update. Around it: the no-augmentation switch (mosaic off, L1 loss on), evaluation of the EMA weights
(COCO AP), a CSV/JSON log, curves, and checkpoints that resume bit for bit.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..nn import Module
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .ema import ModelEMA
from .optim import SGD
from .schedule import YoloxWarmCos

LOSS_KEYS = ("total", "iou", "obj", "cls", "l1")
CHECKPOINT_NAME = "last.npz"


class NonFiniteLossError(RuntimeError):
    """The loss (or the network output, or its gradient) became NaN or infinite; training stopped."""


# ------------------------------------------------------------------------------------------- evaluation
def predict_dataset(model: Module, dataset, img_size: int, batch_size: int = 16, conf_thre: float = 0.01,
                    nms_thre: float = 0.65, indices=None) -> list[tuple[int, np.ndarray]]:
    """Run `model` (eval mode) on letterboxed images of `dataset`.

    Returns `[(image_id, det)]` with det (N, 7) `[x1, y1, x2, y2, obj, cls_prob, class]` in original-image
    pixels (boxes divided by the letterbox ratio, as the official evaluator does). Anchors whose decoded
    output is not finite (an overflowed size) are dropped.
    """
    from ..data.preprocess import letterbox
    from ..postprocess import postprocess

    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    indices = range(len(dataset)) if indices is None else list(indices)
    num_classes = int(model.num_classes)
    was_training = model.training
    model.eval()
    out: list[tuple[int, np.ndarray]] = []
    try:
        chunk: list[tuple[np.ndarray, float, int]] = []
        for n, i in enumerate(indices):
            img, _, _, image_id = dataset[int(i)]
            chw, ratio = letterbox(img, (img_size, img_size))
            chunk.append((chw, ratio, image_id))
            if len(chunk) == batch_size or n == len(indices) - 1:
                x = np.stack([c[0] for c in chunk]).astype(model.dtype, copy=False)
                with np.errstate(over="ignore"):  # exp() of a huge size logit: handled below
                    decoded = np.asarray(model(x))
                bad = ~np.isfinite(decoded).all(axis=2)
                if bad.any():  # exp() of a huge size logit overflowed: such anchors cannot be boxes
                    decoded = decoded.copy()
                    decoded[bad] = 0.0
                dets = postprocess(decoded, num_classes, conf_thre, nms_thre)
                for (_, ratio, image_id), det in zip(chunk, dets):
                    det = np.array(det, dtype=np.float32).reshape(-1, 7)
                    det[:, :4] /= ratio
                    out.append((image_id, det))
                chunk = []
    finally:
        model.train(was_training)
    return out


def detections_to_coco(predictions, category_ids) -> list[dict]:
    """COCO results records (bbox [x, y, w, h], score = obj x cls_prob) from `predict_dataset` output."""
    records = []
    for image_id, det in predictions:
        for x1, y1, x2, y2, obj, cls_prob, cls in det.tolist():
            records.append({"image_id": image_id, "category_id": int(category_ids[int(cls)]),
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": obj * cls_prob})
    return records


def evaluate_coco(model: Module, dataset, img_size: int, batch_size: int = 16, conf_thre: float = 0.01,
                  nms_thre: float = 0.65) -> dict:
    """COCO box AP of `model` on `dataset` (which provides `coco_gt()`), via `yolox_np.eval.coco_eval`."""
    from ..eval import coco_eval

    gt = dataset.coco_gt()
    category_ids = sorted(int(c["id"]) for c in gt["categories"])
    if len(category_ids) != model.num_classes:
        raise ValueError(f"the dataset has {len(category_ids)} categories but the model predicts "
                         f"{model.num_classes} classes")
    preds = predict_dataset(model, dataset, img_size, batch_size, conf_thre, nms_thre)
    result = coco_eval(gt, detections_to_coco(preds, category_ids))
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float, np.floating, np.integer))}


# ------------------------------------------------------------------------------------------- plots
def plot_curves(train_rows: list[dict], eval_rows: list[dict], path, smooth: int = 20) -> Path:
    """Loss terms per iteration (moving average over `smooth` steps), learning rate, and AP / AP50 per
    epoch, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if train_rows:
        it = np.array([r["iteration"] for r in train_rows])
        k = max(1, min(int(smooth), len(train_rows) // 10))
        for key in LOSS_KEYS:
            v = np.array([r[key] for r in train_rows], dtype=np.float64)
            x = it
            if key == "l1":  # only on in the no-aug phase
                on = v > 0
                if on.sum() < k:
                    continue
                x, v = it[on], v[on]
            avg = np.convolve(v, np.ones(k) / k, mode="valid")
            line, = axes[0].plot(x[k - 1:], avg, label=key, lw=2 if key == "total" else 1)
            if key == "total" and k > 1:
                axes[0].plot(it, v, color=line.get_color(), alpha=0.2, lw=0.5)
        axes[0].set_yscale("log")
        axes[0].legend()
        axes[1].plot(it, [r["lr"] for r in train_rows])
    axes[0].set(title="training loss (moving average)", xlabel="iteration")
    axes[1].set(title="learning rate (yoloxwarmcos)", xlabel="iteration")
    if eval_rows:
        ep = [r["epoch"] for r in eval_rows]
        for key in ("AP", "AP50"):
            axes[2].plot(ep, [r[key] for r in eval_rows], "o-", label=key)
        axes[2].set_ylim(0, 1)
        axes[2].legend()
    axes[2].set(title="validation (EMA weights)", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------- Ctrl-C
class _DeferredInterrupt:
    """Within the block, the first Ctrl-C only sets `requested` (the trainer stops after the current
    step, so the saved state is exactly that of a completed step); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _single_threaded_blas():
    """OpenBLAS on one thread while training. The convolutions share their work across the cores with their
    own threads; OpenBLAS's threads busy-wait, and as soon as another process competes for the cores a step
    ran about 7x slower with them (measured on 2 cores: 2.3 s instead of 0.34 s for 16 images at 128 px)."""
    try:
        from ..nn.functional import blas_single_threaded
    except ImportError:  # pragma: no cover - engine without the switch
        return contextlib.nullcontext()
    return blas_single_threaded()


# ------------------------------------------------------------------------------------------- Trainer
class Trainer:
    """Trains `model` on batches from `loader` (a `yolox_np.data.DataLoader`) as `config` says.

    `val_dataset` (with `coco_gt()`) is evaluated with the EMA weights every `config.eval_interval`
    epochs and after the last one. Files in `out_dir`: `last.npz` (checkpoint), `train_log.csv` (one
    row per step), `eval_log.csv`, `metrics.json`, `curves.png`, and at the end `model_ema.npz` and
    `model_ema.pth` (official format).
    """

    def __init__(self, model: Module, loader, config: TrainConfig, val_dataset=None, out_dir=None,
                 loss_fn: Callable | None = None, progress: bool = True, echo: Callable[[str], None] = print):
        if not isinstance(model, Module):
            raise ValueError(f"Trainer needs a yolox_np Module, got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise ValueError(f"Trainer needs a TrainConfig, got {type(config).__name__}")
        config.validate()
        if len(loader) < 1:
            raise ValueError("the training loader yields no batch")
        if loss_fn is None:
            from ..loss import yolox_loss as loss_fn
        self.model, self.loader, self.config = model, loader, config
        self.val_dataset = val_dataset
        self.out_dir = Path(out_dir if out_dir is not None else config.out)
        self.loss_fn = loss_fn
        self.progress, self.echo = bool(progress), echo
        self.iters_per_epoch = len(loader)
        self.optimizer = SGD(model, lr=0.0, momentum=config.momentum, nesterov=True,
                             weight_decay=config.weight_decay)
        self.schedule = YoloxWarmCos(config.base_lr, self.iters_per_epoch, config.epochs, config.warmup_epochs,
                                     config.no_aug_epochs, config.min_lr_ratio)
        self.ema = ModelEMA(model, config.ema_decay, config.ema_ramp) if config.ema else None
        self.epoch = 0          # current (0-based) epoch
        self.iteration = 0      # optimizer steps done
        self.use_l1 = False
        self.train_rows: list[dict] = []
        self.eval_rows: list[dict] = []
        self.elapsed = 0.0      # training seconds over all sessions of this run
        self._phase = "idle"
        loader.set_epoch(0)

    # -- properties -------------------------------------------------------------------------------
    @property
    def eval_model(self) -> Module:
        """The weights used for evaluation and export: the EMA copy (or the model without EMA)."""
        return self.ema.module if self.ema is not None else self.model

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    @property
    def total_iters(self) -> int:
        n = self.config.epochs * self.iters_per_epoch
        return min(n, self.config.max_steps) if self.config.max_steps else n

    def in_no_aug_phase(self, epoch: int) -> bool:
        """Official switch: from 0-based epoch `epochs - no_aug_epochs - 1` on (one epoch before the
        constant-lr tail). With `no_aug_epochs = 0` there is no such phase."""
        n = self.config.no_aug_epochs
        return n > 0 and epoch + 1 >= self.config.epochs - n

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self, images: np.ndarray, targets: list) -> dict:
        """One optimizer step on a batch; returns the log row (losses, lr, num_fg).

        Raises NonFiniteLossError (weights and BN statistics untouched) when the output, the loss or a
        gradient is not finite.
        """
        with _single_threaded_blas():
            return self._train_step(images, targets)

    def _train_step(self, images: np.ndarray, targets: list) -> dict:
        lr = self.schedule(self.iteration)
        self.optimizer.lr = lr
        model = self.model
        self._snapshot_buffers()
        model.train()
        model.zero_grad()
        self._phase = "forward"
        raw, grids, strides = model(images)
        if not np.all(np.isfinite(raw)):
            self._non_finite("the network output")
        self._phase = "loss"
        out = self.loss_fn(raw, grids, strides, targets, use_l1=self.use_l1)
        values = {k: float(out[k]) for k in LOSS_KEYS}
        if not all(math.isfinite(v) for v in values.values()):
            self._non_finite(f"the loss ({', '.join(f'{k}={v}' for k, v in values.items())})")
        if not np.all(np.isfinite(out["grad"])):
            self._non_finite("the loss gradient")
        self._phase = "backward"
        model.backward(out["grad"])
        for name, p in model.named_parameters():
            if not np.all(np.isfinite(p.grad)):
                self._non_finite(f"the gradient of {name}")
        self._phase = "update"
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(model)
        self.iteration += 1
        self._phase = "idle"
        return {"epoch": self.epoch, "iteration": self.iteration, "lr": lr, **values,
                "num_fg": int(out["num_fg"])}

    def _non_finite(self, what: str):
        self._restore_buffers_if_mid_step()
        ckpt = self.checkpoint_path
        kept = f"the last good checkpoint {ckpt} is kept" if ckpt.is_file() else "no checkpoint was written"
        raise NonFiniteLossError(
            f"training stopped: {what} is not finite at epoch {self.epoch + 1}, step {self.iteration + 1}; "
            f"{kept}. Try a lower learning rate (--lr-per-img)."
        )

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train until `config.epochs` (or `config.max_steps`) are done; returns `summary()`."""
        from tqdm import tqdm

        self.out_dir.mkdir(parents=True, exist_ok=True)
        cfg, ipe = self.config, self.iters_per_epoch
        self._loader_state = self._current_loader_state()
        with _DeferredInterrupt() as interrupt, _single_threaded_blas():
            try:
                while self.epoch < cfg.epochs:
                    if self.iteration >= (self.epoch + 1) * ipe:
                        self._end_epoch()
                        continue
                    if self.iteration >= self.total_iters:
                        break  # max_steps reached inside an epoch
                    self._start_epoch()
                    bar = tqdm(total=ipe, initial=self.iteration - self.epoch * ipe, disable=not self.progress,
                               desc=f"epoch {self.epoch + 1}/{cfg.epochs}", unit="it", leave=False,
                               dynamic_ncols=True)
                    t_last = time.perf_counter()
                    for images, targets, _ in self.loader:
                        row = self.train_step(images, targets)
                        self._loader_state = self._current_loader_state()
                        now = time.perf_counter()
                        row["seconds"] = now - t_last
                        self.elapsed += now - t_last
                        t_last = now
                        self.train_rows.append(row)
                        bar.update(1)
                        bar.set_postfix_str(
                            " ".join(f"{k} {row[k]:.3f}" for k in LOSS_KEYS if k != "l1" or self.use_l1)
                            + f" lr {row['lr']:.2e} {len(images) / max(row['seconds'], 1e-9):.1f} img/s")
                        if interrupt.requested:
                            raise KeyboardInterrupt
                        if self.iteration >= self.total_iters:
                            break
                    bar.close()
            except KeyboardInterrupt:
                self._restore_buffers_if_mid_step()
                path = self.save_checkpoint()
                self.write_logs()
                self.echo(f"interrupted at epoch {self.epoch + 1}, step {self.iteration}: checkpoint saved to "
                          f"{path} (continue with --resume)")
                raise
            except NonFiniteLossError:
                self.write_logs()
                raise
        self.save_checkpoint()
        if self.epoch >= cfg.epochs:
            self.export()
        self.write_logs()
        return self.summary()

    def _current_loader_state(self):
        return self.loader.state_dict() if hasattr(self.loader, "state_dict") else None

    def _start_epoch(self) -> None:
        if self.in_no_aug_phase(self.epoch):
            augment = getattr(self.loader, "augment", None)
            if augment is not None and getattr(augment, "enable_mosaic", False):
                augment.close_mosaic()
            if not self.use_l1:
                self.echo(f"epoch {self.epoch + 1}: no-augmentation phase (mosaic off), L1 loss on")
            self.use_l1 = True
        if getattr(self.loader, "epoch", self.epoch) != self.epoch:
            raise RuntimeError(f"loader is at epoch {self.loader.epoch} but the trainer at {self.epoch}")

    def _end_epoch(self) -> None:
        cfg = self.config
        rows = [r for r in self.train_rows if r["epoch"] == self.epoch]
        msg = f"epoch {self.epoch + 1}/{cfg.epochs}: " + " ".join(
            f"{k} {np.mean([r[k] for r in rows]):.3f}" for k in LOSS_KEYS) if rows else ""
        last = self.epoch + 1 == cfg.epochs
        if self.val_dataset is not None and (last or (cfg.eval_interval and (self.epoch + 1) % cfg.eval_interval == 0)):
            metrics = self.evaluate()
            self.eval_rows.append({"epoch": self.epoch + 1, "iteration": self.iteration, **metrics})
            msg += f" | val AP {metrics['AP']:.3f} AP50 {metrics['AP50']:.3f}"
        self.echo(msg + f" | {self.elapsed:.0f} s")
        self.epoch += 1
        self.save_checkpoint()
        self.write_logs()

    def evaluate(self, dataset=None) -> dict:
        dataset = self.val_dataset if dataset is None else dataset
        if dataset is None:
            raise ValueError("no validation dataset to evaluate on")
        return evaluate_coco(self.eval_model, dataset, self.config.img_size, max(self.config.batch, 8),
                             self.config.conf_thre, self.config.nms_thre)

    # -- BN statistics of an interrupted step -----------------------------------------------------
    def _snapshot_buffers(self) -> None:
        self._buffers = {k: v.copy() for k, v in self.model.named_buffers()}

    def _restore_buffers_if_mid_step(self) -> None:
        """A step interrupted before its update has moved only BN running statistics: put them back,
        so the checkpoint is the state after the last completed step."""
        if self._phase in ("forward", "loss", "backward") and getattr(self, "_buffers", None):
            live = dict(self.model.named_buffers())
            for k, v in self._buffers.items():
                live[k][...] = v
        self._phase = "idle"

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "model": dict(self.model.state_dict()),
            "ema": None if self.ema is None else {**self.ema.state_dict(),
                                                  "module": dict(self.ema.module.state_dict())},
            "optimizer": self.optimizer.state_dict(),
            "position": {"epoch": self.epoch, "iteration": self.iteration, "use_l1": self.use_l1,
                         "iters_per_epoch": self.iters_per_epoch},
            # the loader as it stood after the last completed step (it runs one batch ahead mid-step)
            "loader": getattr(self, "_loader_state", None) or self._current_loader_state(),
            "history": {"train": self.train_rows, "eval": self.eval_rows, "elapsed": self.elapsed},
        }

    def load_state_dict(self, state: dict) -> None:
        pos = state["position"]
        if int(pos["iters_per_epoch"]) != self.iters_per_epoch:
            raise ValueError(f"the checkpoint has {pos['iters_per_epoch']} steps per epoch, this run "
                             f"{self.iters_per_epoch}; resume with the same data and --batch")
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            if state.get("ema") is None:
                raise ValueError("the checkpoint has no EMA weights but this run uses EMA")
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.iteration = int(pos["epoch"]), int(pos["iteration"])
        self.use_l1 = bool(pos["use_l1"])
        if state.get("loader") is not None and hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict(state["loader"])
        self._loader_state = self._current_loader_state()
        hist = state.get("history") or {}
        self.train_rows = list(hist.get("train", []))
        self.eval_rows = list(hist.get("eval", []))
        self.elapsed = float(hist.get("elapsed", 0.0))

    def save_checkpoint(self, path=None) -> Path:
        path = Path(path) if path is not None else self.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_checkpoint(path, self.state_dict())

    def resume(self, path=None) -> None:
        """Continue exactly from a checkpoint (default: `out_dir/last.npz`)."""
        path = Path(path) if path is not None else self.checkpoint_path
        state = load_checkpoint(path)
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError) as e:
            raise ValueError(f"checkpoint {path} lacks training state ({e})") from e
        except ValueError as e:
            raise ValueError(f"checkpoint {path} does not fit this run: {e}") from e

    # -- outputs ----------------------------------------------------------------------------------
    def summary(self) -> dict:
        final = self.eval_rows[-1] if self.eval_rows else {}
        return {
            "epochs": self.epoch, "iterations": self.iteration, "train_seconds": round(self.elapsed, 2),
            "final_loss": self.train_rows[-1]["total"] if self.train_rows else None,
            "AP": final.get("AP"), "AP50": final.get("AP50"),
            "best_AP50": max((r["AP50"] for r in self.eval_rows), default=None),
        }

    def write_logs(self) -> None:
        """`train_log.csv`, `eval_log.csv`, `metrics.json` and `curves.png` in `out_dir`."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, rows in (("train_log.csv", self.train_rows), ("eval_log.csv", self.eval_rows)):
            if not rows:
                continue
            keys = list(dict.fromkeys(k for r in rows for k in r))
            with open(self.out_dir / name, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                w.writerows(rows)
        metrics = {"summary": self.summary(), "eval": self.eval_rows, "config": self.config.to_dict()}
        (self.out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
        if self.train_rows:
            plot_curves(self.train_rows, self.eval_rows, self.out_dir / "curves.png")

    def export(self) -> list[Path]:
        """The final EMA weights as `model_ema.npz` and, in official PyTorch format, `model_ema.pth`."""
        written = []
        try:
            from ..weights import save_npz, save_weights
        except ImportError:  # pragma: no cover - weights package absent
            return written
        state = self.eval_model.state_dict()
        save_npz(state, self.out_dir / "model_ema.npz")
        written.append(self.out_dir / "model_ema.npz")
        try:
            save_weights(self.eval_model, self.out_dir / "model_ema.pth")
            written.append(self.out_dir / "model_ema.pth")
        except (ValueError, TypeError) as e:
            self.echo(f"note: official .pth export skipped ({e})")
        return written


# ------------------------------------------------------------------------------------------- set-up
# Shapes-dataset settings of `--data shapes` (sizes relative to the input side); validation images come
# from a different seed, so they are never seen in training.
SHAPES_OPTIONS = {"min_objects": 1, "max_objects": 4, "min_size_frac": 0.1, "max_size_frac": 0.5}
VAL_SEED_OFFSET = 10_000

# The demo's small model, chosen by measurement (AP per CPU second on shapes at 128 px): YOLOX-Darknet53's
# structure (Darknet + SPP, YOLOFPN, decoupled head, LeakyReLU) at 1/8 width with one residual block per
# stage: 0.57 M parameters, about 0.19 s for forward + backward of 16 images on one core. It learned faster
# per second than a 1/4-width Darknet (2.3 M) and than CSPDarknet + PAFPN at Nano depth and 1/8 width.
DEMO_MODEL = {"width": 0.125, "blocks": (1, 1, 1, 1, 1)}


@dataclass
class Run:
    """Everything a `Trainer` needs, built from a `TrainConfig` by `build_run`."""

    model: Module
    loader: object
    val_dataset: object
    train_dataset: object
    class_names: list


def build_model(name: str, num_classes: int, seed: int = 0) -> Module:
    """`"demo"` (DEMO_MODEL) or any name of `yolox_np.models.get_model`, initialised from `seed`."""
    from ..models import get_model, yolox_darknet53

    if name == "demo":
        return yolox_darknet53(num_classes, width=DEMO_MODEL["width"], blocks=DEMO_MODEL["blocks"], seed=seed)
    try:
        return get_model(name, num_classes=num_classes, seed=seed)
    except (KeyError, ValueError) as e:
        raise ConfigError(f"--model {e}") from None


def shapes_datasets(config: TrainConfig):
    """The training and held-out validation shapes datasets of `config` (images at the input size)."""
    from ..data import ShapesDataset

    size = config.img_size
    kw = dict(img_size=(size, size), min_objects=SHAPES_OPTIONS["min_objects"],
              max_objects=SHAPES_OPTIONS["max_objects"], min_size=max(3.0, SHAPES_OPTIONS["min_size_frac"] * size),
              max_size=SHAPES_OPTIONS["max_size_frac"] * size)
    train = ShapesDataset(config.num_train, seed=config.seed, **kw)
    val = ShapesDataset(config.num_val, seed=config.seed + VAL_SEED_OFFSET, **kw)
    return train, val


def _coco_dataset(ann: str, images: str | None, option: str):
    from ..data import CocoDataset

    ann_path = Path(ann)
    if not ann_path.is_file():
        raise ConfigError(f"{option}: COCO annotation file not found: {ann}")
    images_dir = Path(images) if images else ann_path.parent / "images"
    if not images_dir.is_dir():
        raise ConfigError(f"{option}: image folder not found: {images_dir} (set it with "
                          f"{'--images' if option == '--data' else '--val-images'})")
    try:
        return CocoDataset(images_dir, ann_path)
    except ValueError as e:
        raise ConfigError(f"{option}: {e}") from None


def build_run(config: TrainConfig) -> Run:
    """Datasets, loader (with the configured augmentation) and model of a run."""
    from ..data import DataLoader, YoloxAugment

    config.validate()
    if config.data == "shapes":
        train, val = shapes_datasets(config)
    else:
        train = _coco_dataset(config.data, config.images, "--data")
        val = _coco_dataset(config.val_data, config.val_images, "--val-data") if config.val_data else None
        if len(train) < config.batch:
            raise ConfigError(f"--batch must not exceed the {len(train)} training images, got {config.batch}")
    names = list(train.class_names)
    augment = YoloxAugment(mosaic_prob=config.mosaic_prob, mixup_prob=config.mixup_prob,
                           enable_mixup=config.mixup_prob > 0, hsv_prob=config.hsv_prob, flip_prob=config.flip_prob,
                           mosaic_scale=(0.5, 1.5))
    loader = DataLoader(train, config.batch, shuffle=True, seed=config.seed, img_size=(config.img_size,) * 2,
                        augment=augment, drop_last=True)
    model = build_model(config.model, len(names), seed=config.seed)
    return Run(model=model, loader=loader, val_dataset=val, train_dataset=train, class_names=names)
