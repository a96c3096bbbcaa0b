"""Training: SGD (Nesterov) with YOLOX's parameter groups, the yoloxwarmcos schedule, EMA, atomic
checkpoints, the `Trainer` loop, the `yolox-np train` options and the shapes demo."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import ConfigError, TrainConfig
from .ema import ModelEMA, ema_decay
from .optim import SGD, parameter_groups, sgd_nesterov_update
from .schedule import YoloxWarmCos, yoloxwarmcos_lr
from .trainer import NonFiniteLossError, Trainer, build_model, build_run, evaluate_coco, predict_dataset

__all__ = [
    "SGD", "CheckpointError", "ConfigError", "ModelEMA", "NonFiniteLossError", "TrainConfig", "Trainer",
    "YoloxWarmCos", "build_model", "build_run", "ema_decay", "evaluate_coco", "load_checkpoint",
    "parameter_groups", "predict_dataset", "save_checkpoint", "sgd_nesterov_update", "yoloxwarmcos_lr",
]
