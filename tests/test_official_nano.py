"""Acceptance with the official YOLOX-Nano weights: every weight format, every golden photo, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import require_assets

from yolox_np.cli import main as cli_main
from yolox_np.detector import Detector
from yolox_np.models import yolox_nano
from yolox_np.weights import load_weights

FORMATS = ["yolox_nano.onnx", "yolox_nano_from_onnx.pth", "yolox_nano_fused.npz"]
PHOTOS = ["chelsea.png", "coffee.jpg", "astronaut.jpg", "rocket.jpg", "camera.png", "coins.png"]


@pytest.fixture(scope="module")
def assets():
    return require_assets()


@pytest.fixture(scope="module")
def models(assets):
    out = {}
    for name in FORMATS:
        m = yolox_nano(num_classes=80)
        load_weights(m, assets / "yolox_nano" / name)
        out[name] = m.eval()
    return out


def _raw_with_sigmoid(model, x):
    """The ONNX export's output: raw box columns, sigmoid obj and cls (decode_in_inference=False)."""
    model.decode_in_inference = False
    try:
        return model(x)
    finally:
        model.decode_in_inference = True


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("photo", ["chelsea", "coffee"])
def test_raw_output_matches_the_golden_file(models, assets, fmt, photo):
    g = np.load(assets / "yolox_nano" / f"golden_{photo}.npz")
    out = _raw_with_sigmoid(models[fmt], g["input"])
    assert out.shape == g["raw_output"].shape
    np.testing.assert_allclose(out, g["raw_output"], atol=1e-3, rtol=0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_detections_match_the_golden_files_on_every_photo(models, assets, fmt):
    det = Detector(models[fmt], img_size=416, conf=0.3, nms=0.45)
    for photo in PHOTOS:
        g = np.load(assets / "yolox_nano" / f"golden_{photo.rsplit('.', 1)[0]}.npz")
        d = det(assets / "images" / photo)
        want = g["detections"]  # x1, y1, x2, y2, score, class, obj
        assert len(d) == len(want), f"{photo}: {len(d)} detections, golden has {len(want)}"
        np.testing.assert_array_equal(d.classes, want[:, 5].astype(int), err_msg=photo)
        np.testing.assert_allclose(d.boxes, want[:, :4], atol=1.0, rtol=0, err_msg=photo)
        np.testing.assert_allclose(d.scores, want[:, 4], atol=1e-3, rtol=0, err_msg=photo)


def test_detect_command_finds_the_cat(assets, tmp_path, capsys):
    photo = assets / "images" / "chelsea.png"
    code = cli_main(["detect", str(photo), "--model", "nano", "--weights",
                     str(assets / "yolox_nano" / "yolox_nano.onnx"), "--out", str(tmp_path)])
    assert code == 0
    records = json.loads((tmp_path / "detections.json").read_text())
    assert [r["category_name"] for r in records] == ["cat"]
    x, y, w, h = records[0]["bbox"]
    assert w > 300 and h > 250 and records[0]["score"] > 0.6
    assert (tmp_path / "chelsea_det.png").stat().st_size > 10_000


def test_detect_command_reports_bad_files_and_goes_on(assets, tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "yolox_np.cli", "detect", str(bad),
                           str(assets / "images" / "coffee.jpg"), "--weights",
                           str(assets / "yolox_nano" / "yolox_nano_fused.npz"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "notes.txt" in proc.stderr and "Traceback" not in proc.stderr
    names = sorted(r["category_name"] for r in json.loads((out / "detections.json").read_text()))
    assert names == ["cup", "dining table"]


def test_detect_command_refuses_a_corrupt_checkpoint_in_one_line(tmp_path, assets):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "yolox_np.cli", "detect", str(assets / "images" / "chelsea.png"),
                           "--weights", str(bad), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "--weights" in proc.stderr and "Traceback" not in proc.stderr
