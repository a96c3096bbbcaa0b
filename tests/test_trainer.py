"""Trainer, configuration and command line: resume bit for bit, Ctrl-C, non-finite loss, overfitting."""

import os
import signal

import numpy as np
import pytest

from yolox_np.boxes import box_iou, decode
from yolox_np.data import DataLoader, ShapesDataset, YoloxAugment
from yolox_np.loss import sigmoid, yolox_loss
from yolox_np.models import yolox_csp
from yolox_np.postprocess import postprocess
from yolox_np.train.checkpoint import load_checkpoint
from yolox_np.train.config import ConfigError, TrainConfig
from yolox_np.train.trainer import NonFiniteLossError, Trainer, build_model

S = 64


def _tiny_run(tmp_path, name, max_steps, loss_fn=None, seed=0):
    """6 images, batch 2 (3 steps per epoch), 3 epochs with the no-aug switch at epoch 2; augmentation on."""
    ds = ShapesDataset(6, img_size=(S, S), seed=1, max_objects=2, min_size=10, max_size=30)
    aug = YoloxAugment(mosaic_prob=0.5, enable_mixup=False, mosaic_scale=(0.5, 1.5))
    loader = DataLoader(ds, 2, shuffle=True, seed=seed, img_size=(S, S), augment=aug, drop_last=True)
    cfg = TrainConfig(img_size=S, batch=2, epochs=3, warmup_epochs=1, no_aug_epochs=1, max_steps=max_steps,
                      out=str(tmp_path / name), ema_ramp=3.0, num_train=6)
    model = yolox_csp(6, 0.33, 0.125, seed=seed)
    return Trainer(model, loader, cfg, out_dir=tmp_path / name, loss_fn=loss_fn, progress=False,
                   echo=lambda s: None)


def _assert_same_state(a: Trainer, b: Trainer):
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb, err_msg=ka)
    for (ka, va), (_, vb) in zip(a.ema.module.state_dict().items(), b.ema.module.state_dict().items()):
        np.testing.assert_array_equal(va, vb, err_msg=f"ema {ka}")
    assert a.optimizer.buffers.keys() == b.optimizer.buffers.keys()
    for k in a.optimizer.buffers:
        np.testing.assert_array_equal(a.optimizer.buffers[k], b.optimizer.buffers[k], err_msg=f"momentum {k}")
    assert (a.iteration, a.ema.updates, a.use_l1) == (b.iteration, b.ema.updates, b.use_l1)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Five steps in one go (crossing an epoch boundary and the no-aug switch)."""
    t = _tiny_run(tmp_path_factory.mktemp("straight"), "run", max_steps=5)
    t.fit()
    return t


def test_resume_is_bit_for_bit(tmp_path, straight):
    first = _tiny_run(tmp_path, "run", max_steps=2)  # stops mid-epoch
    first.fit()
    assert load_checkpoint(tmp_path / "run" / "last.npz")["position"]["iteration"] == 2
    second = _tiny_run(tmp_path, "run", max_steps=5, seed=0)
    second.resume()
    assert second.iteration == 2
    second.fit()
    _assert_same_state(straight, second)
    assert [r["total"] for r in second.train_rows] == [r["total"] for r in straight.train_rows]
    assert straight.use_l1 and straight.iteration == 5


def test_keyboard_interrupt_inside_a_step_saves_the_last_completed_step(tmp_path, straight):
    calls = {"n": 0}

    def interrupting_loss(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # inside step 4, after its forward pass moved the BN statistics
            raise KeyboardInterrupt
        return yolox_loss(*args, **kw)

    t = _tiny_run(tmp_path, "run", max_steps=5, loss_fn=interrupting_loss)
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert load_checkpoint(tmp_path / "run" / "last.npz")["position"]["iteration"] == 3
    resumed = _tiny_run(tmp_path, "run", max_steps=5)
    resumed.resume()
    resumed.fit()
    _assert_same_state(straight, resumed)


def test_ctrl_c_signal_finishes_the_step_then_saves(tmp_path, straight):
    calls = {"n": 0}

    def loss_with_ctrl_c(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # deferred by the trainer until the step is complete
        return yolox_loss(*args, **kw)

    t = _tiny_run(tmp_path, "run", max_steps=5, loss_fn=loss_with_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert load_checkpoint(tmp_path / "run" / "last.npz")["position"]["iteration"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = _tiny_run(tmp_path, "run", max_steps=5)
    resumed.resume()
    resumed.fit()
    _assert_same_state(straight, resumed)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def exploding_loss(*args, **kw):
        calls["n"] += 1
        out = yolox_loss(*args, **kw)
        if calls["n"] == 5:  # epoch 2, after the checkpoint of epoch 1 was written
            out["total"] = float("nan")
        return out

    t = _tiny_run(tmp_path, "run", max_steps=0, loss_fn=exploding_loss)
    path = tmp_path / "run" / "last.npz"
    with pytest.raises(NonFiniteLossError, match=r"loss .*not finite at epoch 2, step 5.*last good checkpoint"):
        t.fit()
    saved = load_checkpoint(path)
    assert saved["position"]["iteration"] == 3 and saved["position"]["epoch"] == 1
    assert t.iteration == 4  # the bad step changed nothing
    assert sorted(os.listdir(tmp_path / "run")) == ["curves.png", "last.npz", "metrics.json", "train_log.csv"]


def test_non_finite_network_output_is_caught(tmp_path):
    t = _tiny_run(tmp_path, "run", max_steps=1)
    t.model.head.obj_preds[0].bias.data[...] = np.inf
    images, targets, _ = next(iter(t.loader))
    before = t.model.state_dict()
    with pytest.raises(NonFiniteLossError, match="network output is not finite"):
        t.train_step(images, targets)
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_learning_rate_follows_schedule_and_l1_switch(tmp_path, straight):
    lrs = [r["lr"] for r in straight.train_rows]
    assert lrs[0] == 0.0  # the first step runs at lr 0 (quadratic warm-up from 0)
    base = straight.config.lr_per_img * 2
    assert lrs[1] == pytest.approx(base * (1 / 3) ** 2) and lrs[3] == pytest.approx(base)
    assert [r["l1"] > 0 for r in straight.train_rows] == [False, False, False, True, True]
    assert not straight.loader.augment.enable_mosaic


# ------------------------------------------------------------------------------------------ overfit
@pytest.mark.slow
def test_overfit_two_images():
    """A tiny model on 2 images: the loss falls 10x and both objects are found (class and IoU > 0.5).

    Detections use the train-mode forward (batch statistics, as in training): with two 64-pixel images
    a stride-32 map holds 2 x 2 x 2 values per channel, so the unbiased running variance of eval mode
    differs noticeably from the batch variance the network was fitted with.
    """
    size = 64
    ds = ShapesDataset(2, img_size=(size, size), seed=4, min_objects=1, max_objects=1, min_size=16, max_size=32,
                       clutter=False)
    loader = DataLoader(ds, 2, shuffle=False, img_size=(size, size))
    cfg = TrainConfig(img_size=size, batch=2, num_train=2, epochs=400, warmup_epochs=5, no_aug_epochs=0,
                      lr_per_img=0.002 / 2, ema=False)
    model = yolox_csp(6, 0.33, 0.125, seed=0)
    trainer = Trainer(model, loader, cfg, out_dir="unused", progress=False, echo=lambda s: None)
    losses = []
    for _ in range(cfg.epochs):
        for images, targets, _ in loader:
            losses.append(trainer.train_step(images, targets)["total"])
    assert np.mean(losses[-10:]) < losses[0] / 10, (losses[0], losses[-10:])
    model.train()
    raw, grids, strides = model(images)
    decoded = decode(raw, grids, strides)
    decoded[..., 4:] = sigmoid(raw[..., 4:])
    for i, det in enumerate(postprocess(decoded, 6, conf_thre=0.3, nms_thre=0.45)):
        _, boxes, classes, _ = ds[i]
        assert len(det) == 1, det
        assert int(det[0, 6]) == int(classes[0])
        assert box_iou(det[:1, :4], boxes)[0, 0] > 0.5


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "changes, message",
    [
        ({"epochs": -1}, "--epochs must be at least 1, got -1"),
        ({"epochs": 0}, "--epochs must be at least 1, got 0"),
        ({"img_size": 100}, "--img-size must be a multiple of 32, got 100"),
        ({"img_size": 0}, "--img-size must be at least 32, got 0"),
        ({"batch": 0}, "--batch must be at least 1, got 0"),
        ({"lr_per_img": -0.1}, "--lr-per-img must be > 0, got -0.1"),
        ({"lr_per_img": float("nan")}, "--lr-per-img must be a finite number, got nan"),
        ({"momentum": 1.0}, r"--momentum must be in \[0, 1\), got 1.0"),
        ({"flip_prob": 1.5}, r"--flip-prob must be in \[0, 1\], got 1.5"),
        ({"epochs": 4, "warmup_epochs": 3, "no_aug_epochs": 2}, "--warmup-epochs \\+ --no-aug-epochs must not exceed"),
        ({"batch": 64, "num_train": 10}, "--batch must not exceed --num-train"),
        ({"epochs": 2.5}, "--epochs must be an integer, got 2.5"),
        ({"eval_interval": -1}, "--eval-interval must be >= 0"),
    ],
)
def test_config_errors_name_option_and_rule(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes).validate()


def test_default_config_is_valid_and_lr_scales_with_batch():
    cfg = TrainConfig().validate()
    assert cfg.base_lr == pytest.approx(cfg.lr_per_img * cfg.batch)
    assert TrainConfig(lr_per_img=0.01 / 64, batch=64).base_lr == pytest.approx(0.01)  # the official rate
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="--bogus"):
        TrainConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--img-size", "100"], "--img-size must be a multiple of 32, got 100"),
        (["--epochs", "-3"], "--epochs must be at least 1, got -3"),
        (["--batch", "0"], "--batch must be at least 1, got 0"),
    ],
)
def test_cli_bad_values_give_one_line(argv, message, capsys, tmp_path):
    from yolox_np.cli import main

    code = main(["train", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_non_number_is_refused(capsys, tmp_path):
    from yolox_np.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--out", str(tmp_path), "--epochs", "ten"])
    assert exc.value.code == 2
    assert "--epochs: must be an integer, got 'ten'" in capsys.readouterr().err


def test_cli_resume_without_checkpoint(capsys, tmp_path):
    from yolox_np.cli import main

    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "--resume: no checkpoint at" in capsys.readouterr().err


def test_cli_end_to_end_small_run(tmp_path, capsys):
    """A whole tiny run through the command line: logs, curves, checkpoint and official-format weights."""
    from yolox_np.cli import main
    from yolox_np.weights import load_weights

    out = tmp_path / "run"
    code = main(["train", "--data", "shapes", "--out", str(out), "--img-size", "64", "--epochs", "2",
                 "--batch", "2", "--num-train", "4", "--num-val", "2", "--warmup-epochs", "1",
                 "--no-aug-epochs", "1", "--eval-interval", "1"])
    assert code == 0, capsys.readouterr().err
    for name in ("last.npz", "train_log.csv", "eval_log.csv", "metrics.json", "curves.png", "model_ema.npz",
                 "model_ema.pth"):
        assert (out / name).is_file(), name
    assert "AP50" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "last.npz")
    fresh = build_model("demo", 6, seed=123)
    load_weights(fresh, out / "model_ema.pth")
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, ckpt["ema"]["module"][k], err_msg=k)
