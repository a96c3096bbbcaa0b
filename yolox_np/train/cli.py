"""`yolox-np train`: options (one per `TrainConfig` field, with the demo's defaults) and the run.

Invalid values end with one line naming the option and the rule (exit code 2), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from .config import ConfigError, TrainConfig

HELP = {
    "data": "'shapes' (procedural shapes, generated) or a COCO instances JSON",
    "images": "image folder of the COCO dataset (default: images/ next to the JSON)",
    "val_data": "COCO instances JSON of the validation split (shapes: a held-out generated split)",
    "val_images": "image folder of the validation split (default: images/ next to its JSON)",
    "model": "'demo' (the small model of the demo) or a model name: nano, tiny, s, m, l, x, darknet53",
    "img_size": "square input size, a multiple of 32",
    "epochs": "number of epochs",
    "batch": "images per step",
    "out": "output folder (checkpoint, logs, curves, final weights)",
    "resume": "continue exactly from OUT/last.npz",
    "seed": "seed of the data order, augmentation and initial weights",
    "num_train": "shapes: number of training images",
    "num_val": "shapes: number of held-out validation images",
    "lr_per_img": "learning rate per image (lr = lr_per_img x batch; official 0.01/64)",
    "momentum": "SGD momentum (Nesterov)",
    "weight_decay": "weight decay of conv weights (not BN, not biases)",
    "warmup_epochs": "epochs of quadratic lr warm-up",
    "no_aug_epochs": "final epochs at the minimum lr; mosaic off and L1 loss on from one epoch earlier",
    "min_lr_ratio": "minimum lr as a fraction of the base lr",
    "ema": "keep an exponential moving average of the weights (used for evaluation and export)",
    "ema_decay": "EMA decay (ramped as decay x (1 - exp(-updates / ema_ramp)))",
    "ema_ramp": "EMA ramp length in updates",
    "mosaic_prob": "probability of mosaic (+ random affine) per sample",
    "mixup_prob": "probability of MixUp after a mosaic",
    "hsv_prob": "probability of HSV jitter",
    "flip_prob": "probability of a horizontal flip",
    "eval_interval": "evaluate every N epochs (and after the last); 0: only after the last",
    "conf_thre": "score threshold of the evaluation",
    "nms_thre": "NMS IoU threshold of the evaluation",
    "max_steps": "stop after this many optimizer steps in total (0: no limit)",
}


def _typed(kind, option):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {noun}, got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def add_train_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one option per `TrainConfig` field (`img_size` -> `--img-size`); defaults are the config's."""
    for f in fields(TrainConfig):
        option = TrainConfig.option(f.name)
        default = f.default if f.default is not MISSING else None
        help_text = HELP.get(f.name, "")
        if f.type in ("bool", bool):
            if default:
                parser.add_argument(option, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                    help=help_text)
            else:
                parser.add_argument(option, dest=f.name, action="store_true", help=help_text)
        elif f.type in ("int", int):
            parser.add_argument(option, dest=f.name, type=_typed(int, option), default=default, metavar="N",
                                help=f"{help_text} (default: {default})")
        elif f.type in ("float", float):
            parser.add_argument(option, dest=f.name, type=_typed(float, option), default=default, metavar="X",
                                help=f"{help_text} (default: {default:g})")
        else:
            parser.add_argument(option, dest=f.name, default=default, metavar=f.name.upper().replace("_", "-"),
                                help=f"{help_text} (default: {default})")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)}
    return TrainConfig(**values).validate()


def _fail(message: str, code: int = 2) -> int:
    print(f"yolox-np train: error: {message}", file=sys.stderr)
    return code


def run_train(args: argparse.Namespace) -> int:
    """Run `yolox-np train`; returns the exit code (0 ok, 1 stopped by a non-finite loss, 2 bad input,
    130 interrupted)."""
    from .checkpoint import CheckpointError, load_checkpoint
    from .trainer import NonFiniteLossError, Trainer, build_run

    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        return _fail(str(e))
    state = None
    if cfg.resume:
        path = Path(cfg.out) / "last.npz"
        try:
            state = load_checkpoint(path)
        except FileNotFoundError:
            return _fail(f"--resume: no checkpoint at {path}")
        except CheckpointError as e:
            return _fail(f"--resume: {e}")
        try:
            stored = TrainConfig.from_dict(state["config"])
        except (KeyError, TypeError, ConfigError) as e:
            return _fail(f"--resume: checkpoint {path} has no usable training options ({e})")
        stored.out, stored.resume = cfg.out, True
        if stored.max_steps != cfg.max_steps:
            stored.max_steps = cfg.max_steps
        cfg = stored
        print(f"resuming from {path} (epoch {state['position']['epoch'] + 1}, step {state['position']['iteration']});"
              " the options stored in the checkpoint apply")
    try:
        run = build_run(cfg)
    except ConfigError as e:
        return _fail(str(e))
    except (FileNotFoundError, ValueError) as e:
        return _fail(f"--data: {e}")
    trainer = Trainer(run.model, run.loader, cfg, val_dataset=run.val_dataset, out_dir=cfg.out)
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except (KeyError, TypeError, ValueError) as e:
            return _fail(f"--resume: checkpoint {Path(cfg.out) / 'last.npz'} does not fit this run ({e})")
    try:
        summary = trainer.fit()
    except NonFiniteLossError as e:
        return _fail(str(e), code=1)
    except KeyboardInterrupt:
        return 130
    ap = summary.get("AP")
    ap_text = f"AP {ap:.3f} AP50 {summary['AP50']:.3f}" if ap is not None else "no evaluation"
    print(f"done: {summary['iterations']} steps in {summary['train_seconds']:.0f} s, {ap_text}; outputs in {cfg.out}")
    return 0
